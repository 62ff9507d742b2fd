"""verl's platform interface for a machine without accelerators: ``VERL_PLATFORM=cpu``.

verl 0.9.1 resolves every device call through ``verl.plugin.platform`` (CUDA, NPU and
ROCm are built in) and lets a plugin register more (``PlatformRegistry.register``,
``verl/plugin/platform/platform_manager.py``).  This platform runs every verl
process on the host CPU:

- the device is ``"cpu"`` (verl passes ``current_device()`` straight to ``.to()``);
- collectives use ``gloo``;
- the device module is :class:`~srpo_verl_plugins.cpu.device.CPUDeviceModule` (memory and
  RNG calls answered for a CPU);
- Ray places workers on declared ``GPU`` slots (a CPU run starts Ray with
  ``num_gpus`` logical slots: verl's resource pools count only GPU/NPU,
  ``verl/single_controller/ray/base.py:228-231``), so one "GPU" is one worker process;
- no CUDA IPC: the rollout weight sync goes through shared memory
  (``verl/workers/rollout/vllm_rollout/vllm_rollout.py:143``);
- vLLM servers get vLLM-CPU's environment (:func:`vllm_cpu_env`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from verl.plugin.platform import PlatformBase, PlatformRegistry

from srpo_verl_plugins.cpu.device import CPU_DEVICE_MODULE
from srpo_verl_plugins.cpu.vllm_env import vllm_cpu_env

#: The name selected with ``VERL_PLATFORM=cpu``.
PLATFORM_NAME = "cpu"

@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """Every verl process on the host CPU (tiny models: tests and CPU training runs)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> Any:
        return CPU_DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: a CPU run is chosen with VERL_PLATFORM=cpu, so a GPU machine that
        # has this plugin installed keeps verl's own detection.
        return False

    def current_device(self) -> str:  # type: ignore[override]  # verl hands it to .to()
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        CPU_DEVICE_MODULE.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        CPU_DEVICE_MODULE.manual_seed_all(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets it for actors holding GPU slots; on a CPU it names logical slots only.
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def rollout_env_vars(self) -> dict[str, str]:
        return vllm_cpu_env()

    def cudart(self) -> Any:
        return None
