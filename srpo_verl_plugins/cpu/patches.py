"""The narrow patches verl 0.9.1 and vLLM-CPU 0.28 need to train on a CPU (and only there).

The verl bugs that every platform meets are not here: they are fixed recipe-wide, in every
verl process, by :mod:`srpo_verl_plugins.verl_fixes` (Qwen2.5-VL's 3-D position ids, once a patch
of this module).  What stays here exists only because there is no GPU: the backend string,
the FSDP engine's device lookup, vLLM-CPU's environment and weight repacking, and the test
hook that dumps vLLM's weights after a sync.

Each function below works around one piece of upstream code (file and line of the
pinned, installed versions), is idempotent, returns whether it changed anything,
and is tested on its own (tests/recipe/test_cpu_platform.py).  None of them runs
unless the CPU platform is selected (``VERL_PLATFORM=cpu``): :mod:`srpo_verl_plugins.cpu.plugin`
applies them, and GPU runs never import this module.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

# when_imported is shared with the recipe-wide verl fixes; fix_3d_position_ids, once a CPU patch,
# now applies on every platform (srpo_verl_plugins/verl_fixes.py) and is re-exported here for old imports.
from srpo_verl_plugins.verl_fixes import (  # noqa: F401
    POSITION_IDS_FIX_USERS,
    consistent_ragged_idx,
    fix_3d_position_ids,
    patch_position_ids_fix,
    when_imported,
)

from srpo_verl_plugins.versions import VLLM_CPU_RELEASE, written_for

logger = logging.getLogger(__name__)

_FLAG = "_srpo_cpu_patched"


def normalise_backend(backend: Any) -> Any:
    """``"cpu:gloo,cpu:gloo"`` -> ``"gloo"``; any other backend is returned unchanged.

    verl builds ``f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"``
    (``verl/utils/distributed.py:63`` and ``:89``), which on the CPU platform names the
    ``cpu`` device twice, and ``torch.distributed.init_process_group`` rejects a device
    given twice.  Only a device:backend list whose every backend is gloo is collapsed.
    """
    if not isinstance(backend, str) or "," not in backend:
        return backend
    pairs = [item.strip().split(":", 1) for item in backend.split(",")]
    if all(len(p) == 2 and p[1].strip() == "gloo" for p in pairs):
        return "gloo"
    return backend


def patch_process_group_backend() -> bool:
    """Wrap ``torch.distributed.init_process_group`` to apply :func:`normalise_backend`.

    Patched on ``torch.distributed`` itself because verl calls it by attribute
    (``torch.distributed.init_process_group(backend=...)``), so the import order of
    verl's modules does not matter.
    """
    import torch.distributed as dist

    current = dist.init_process_group
    if getattr(current, _FLAG, False):
        return False

    @functools.wraps(current)
    def init_process_group(*args: Any, **kwargs: Any) -> Any:
        if "backend" in kwargs:
            kwargs["backend"] = normalise_backend(kwargs["backend"])
        elif args:
            args = (normalise_backend(args[0]), *args[1:])
        return current(*args, **kwargs)

    setattr(init_process_group, _FLAG, True)
    dist.init_process_group = init_process_group
    return True


def select_fsdp_engine(environ: dict[str, str] | None = None) -> bool:
    """Let verl pick its FSDP engine on the CPU platform (``VERL_ENGINE_DEVICE=cuda``).

    verl registers its FSDP engines for ``cuda`` and ``npu`` only
    (``verl/workers/engine/fsdp/transformer_impl.py:1143``) and looks them up by the
    platform's device name (``verl/workers/engine/base.py:399-430``), which would fail
    for ``cpu``.  verl's own override, ``VERL_ENGINE_DEVICE``, selects the CUDA
    registration; the engine then places everything on the platform's device, the CPU.
    A value the user set is kept.
    """
    environ = os.environ if environ is None else environ
    if environ.get("VERL_ENGINE_DEVICE"):
        return False
    environ["VERL_ENGINE_DEVICE"] = "cuda"
    return True


def set_vllm_cpu_env(environ: dict[str, str] | None = None) -> bool:
    """Put vLLM-CPU's settings (:data:`srpo_verl_plugins.cpu.vllm_env.VLLM_CPU_DEFAULTS`) into the environment.

    Processes started later (Ray workers, vLLM's engine core) inherit them; values the
    user set are kept.
    """
    from srpo_verl_plugins.cpu.vllm_env import vllm_cpu_env

    environ = os.environ if environ is None else environ
    changed = False
    for key, value in vllm_cpu_env(environ).items():
        if key not in environ:
            environ[key] = value
            changed = True
    return changed


def keep_plain_linear_weights(utils_module: Any, vllm_version: str | None = None) -> bool:
    """Make vLLM-CPU keep every linear layer's plain ``weight`` Parameter after loading.

    vLLM-CPU repacks each unquantized linear weight into a oneDNN or sgl-kernel
    layout and drops the original (``vllm/model_executor/layers/linear.py:198-202``
    calls ``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``,
    ``vllm/model_executor/layers/utils.py:269-372``).  verl's weight sync loads new
    weights in place through each parameter's ``weight_loader``, so after the repack
    it fails with ``'Parameter' object has no attribute 'weight_loader'``, and a
    repacked copy would not see the new values anyway.  With this patch 2-D linear
    weights use plain ``torch.nn.functional.linear`` on the live parameter (slower
    than oneDNN, exact, and updated by every sync); other layers (3-D MoE experts,
    conv) keep vLLM's own dispatch.  Written for vLLM-CPU 0.28.0: under another vLLM nothing is
    changed (one warning says so); ``vllm_version`` stands for the running one (tests).
    """
    if not written_for("the vLLM-CPU linear-weights patch", "vllm", VLLM_CPU_RELEASE, distribution="vllm-cpu",
                       found=vllm_version):
        return False
    current = utils_module.dispatch_cpu_unquantized_gemm
    if getattr(current, _FLAG, False):
        return False

    import torch

    @functools.wraps(current)
    def dispatch_cpu_unquantized_gemm(layer: Any, remove_weight: bool) -> None:
        weight = getattr(layer, "weight", None)
        if weight is None or weight.is_meta or weight.ndim != 2:
            return current(layer, remove_weight)
        layer.cpu_linear = lambda x, weight, bias: torch.nn.functional.linear(x, weight, bias)

    setattr(dispatch_cpu_unquantized_gemm, _FLAG, True)
    utils_module.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm
    return True


#: Set to a folder to make every vLLM rollout worker save its weights after each weight sync
#: (a test hook of the CPU runs: :mod:`recipe.srpo.cpu.verify_run` compares them with the actor's).
SYNC_DUMP_ENV = "SRPO_CPU_SYNC_DUMP_DIR"


def dump_weights_after_sync(utils_module: Any) -> bool:
    """With ``SRPO_CPU_SYNC_DUMP_DIR`` set, save vLLM's weights after every sync from the actor.

    Wraps verl's ``vLLMColocateWorkerExtension.update_weights_from_ipc``
    (``verl/workers/rollout/vllm_rollout/utils.py:248-353``), which runs inside vLLM's
    worker process: after verl's own code has loaded the new weights and run vLLM's
    post-load processing, the model's parameters, under vLLM's names, go to
    ``<dir>/sync-<pid>-<n>.safetensors`` (n counts syncs in that process, from 0).
    This reads what vLLM will really generate with, so a sync that silently loaded
    nothing (or into a repacked copy) shows up as a difference from the actor's
    checkpoint.  Without the variable nothing is saved.
    """
    ext = utils_module.vLLMColocateWorkerExtension
    current = ext.update_weights_from_ipc
    if getattr(current, _FLAG, False):
        return False
    counter = {"n": 0}

    @functools.wraps(current)
    def update_weights_from_ipc(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = current(self, *args, **kwargs)
        folder = os.environ.get(SYNC_DUMP_ENV)
        if folder:
            from safetensors.torch import save_file

            os.makedirs(folder, exist_ok=True)
            tensors = {
                name: param.detach().to("cpu").contiguous().clone()
                for name, param in self.model_runner.model.named_parameters()
            }
            path = os.path.join(folder, f"sync-{os.getpid()}-{counter['n']:03d}.safetensors")
            save_file(tensors, path + ".tmp")
            os.replace(path + ".tmp", path)
            counter["n"] += 1
        return result

    setattr(update_weights_from_ipc, _FLAG, True)
    ext.update_weights_from_ipc = update_weights_from_ipc
    return True


VLLM_GEMM_MODULE = "vllm.model_executor.layers.utils"
VERL_VLLM_WORKER_MODULE = "verl.workers.rollout.vllm_rollout.utils"


def apply_all() -> dict[str, bool]:
    """Apply every CPU patch; return which ones changed something (False: already applied)."""
    applied = {
        "process_group_backend": patch_process_group_backend(),
        "fsdp_engine_device": select_fsdp_engine(),
        "vllm_cpu_env": set_vllm_cpu_env(),
    }
    when_imported(VLLM_GEMM_MODULE, keep_plain_linear_weights)
    when_imported(VERL_VLLM_WORKER_MODULE, dump_weights_after_sync)
    # Ulysses SP (SFT_SP=2) on a CPU: SDPA where verl's Qwen2-VL attention calls flash-attn.
    from srpo_verl_plugins.cpu.sdpa_attention import QWEN2_VL_MODULE, sdpa_for_flash_attention

    when_imported(QWEN2_VL_MODULE, sdpa_for_flash_attention)
    return applied
