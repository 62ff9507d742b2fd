"""vLLM-CPU's environment for a small shared machine (no imports: usable from tests and tools).

Used by the CPU platform for rollout servers (:mod:`srpo_verl_plugins.cpu.platform`), by the CPU
patches for every process started later, and by the test suite's vLLM fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: vLLM-CPU's settings for a small shared machine, each overridable from the environment:
#: the CPU platform (vLLM-CPU selects it only with VLLM_TARGET_DEVICE=cpu), a 1 GiB KV cache,
#: no OpenMP thread pinning (pinning to cores that other workers use stalls), one OpenMP thread
#: per process (2 cores are shared by trainer, rollout and reward).
VLLM_CPU_DEFAULTS: dict[str, str] = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "OMP_NUM_THREADS": "1",
}


def vllm_cpu_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """vLLM-CPU's environment: :data:`VLLM_CPU_DEFAULTS` with the caller's values winning."""
    environ = os.environ if environ is None else environ
    return {key: environ.get(key, default) for key, default in VLLM_CPU_DEFAULTS.items()}
