"""``torch.cpu`` as verl's device module: what verl calls on ``get_torch_device()``, for a CPU.

verl 0.9.1 calls the platform's ``device_module`` as if it were ``torch.cuda``
(``get_torch_device().empty_cache()``, ``.mem_get_info()``, ``.get_rng_state()``,
``.set_device(rank)``, ...).  ``torch.cpu`` has streams, events, ``synchronize`` and
``set_device`` but none of the memory or RNG calls.  This object answers those the
way a CPU means them (no device cache to empty, host memory as "device" memory,
the global CPU generator as the device RNG) and forwards everything else to
``torch.cpu``; a name neither has raises ``AttributeError`` as usual.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import psutil
import torch


class CPUDeviceModule:
    """A stand-in for ``torch.cuda`` that runs every call on the CPU."""

    def __init__(self, base: ModuleType = torch.cpu):
        self._base = base

    def __getattr__(self, name: str) -> Any:  # only called for names not defined below
        return getattr(self._base, name)

    def __repr__(self) -> str:
        return "<srpo CPUDeviceModule over torch.cpu>"

    # devices
    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def current_device(self) -> str:
        return "cpu"

    def set_device(self, device: Any) -> None:
        """Every rank of a CPU run shares the one host device: nothing to select."""

    def get_device_name(self, device: Any = None) -> str:
        return "cpu"

    def synchronize(self, device: Any = None) -> None:
        """CPU kernels run synchronously."""

    # memory: there is no device cache; "device" memory is host memory
    def empty_cache(self) -> None:
        pass

    def ipc_collect(self) -> None:
        pass

    def set_per_process_memory_fraction(self, fraction: float, device: Any = None) -> None:
        pass

    def mem_get_info(self, device: Any = None) -> tuple[int, int]:
        vm = psutil.virtual_memory()
        return int(vm.available), int(vm.total)

    def memory_allocated(self, device: Any = None) -> int:
        return 0

    def memory_reserved(self, device: Any = None) -> int:
        return 0

    def max_memory_allocated(self, device: Any = None) -> int:
        return 0

    def max_memory_reserved(self, device: Any = None) -> int:
        return 0

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        pass

    # RNG: the CPU generator is the "device" generator
    def get_rng_state(self, device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    def set_rng_state(self, state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)


CPU_DEVICE_MODULE = CPUDeviceModule()
