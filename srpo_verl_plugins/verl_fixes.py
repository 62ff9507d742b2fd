"""Fixes for verl 0.9.1 bugs that every platform meets (GPU and CPU alike), loaded in every verl process.

This module is a ``verl.plugins`` entry point (``srpo_verl_fixes`` in ``pyproject.toml``): verl
imports it at ``import verl`` (``verl/__init__.py:55-76``) in the driver and in every Ray worker,
so a fix here reaches the processes where the bug bites, whatever the platform.  The CPU-only
workarounds live apart, in :mod:`srpo_verl_plugins.cpu.patches`, and stay off unless
``VERL_PLATFORM=cpu``.  ``SRPO_VERL_FIXES=0`` turns these fixes off (to reproduce upstream
behaviour); verl's own ``VERL_USE_EXTERNAL_PLUGINS`` policy also applies.  Under any verl but 0.9.1
nothing is installed and one warning says so (:func:`srpo_verl_plugins.versions.written_for`).

Each fix names the upstream file:line, changes behaviour only where verl would fail, is
idempotent, and is tested with verl's own function outside the CPU platform
(``tests/recipe/test_verl_fixes.py``).

- :func:`fix_3d_position_ids`: verl's ``maybe_fix_3d_position_ids`` forces the ragged index of
  Qwen2.5-VL's 3-D position ids to 2, which breaks every batch whose sequences all have one
  length (``split_with_sizes expects split_sizes to sum exactly to ...``): early RL with long
  reasoning, where every response stops at ``max_response_length``, hits it on a GPU too.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from srpo_verl_plugins.versions import VERL_RELEASE, written_for

logger = logging.getLogger(__name__)

#: ``SRPO_VERL_FIXES=0`` turns the fixes of this module off.
ENABLE_ENV = "SRPO_VERL_FIXES"


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a callback on a module right after its first import (for modules not imported yet)."""

    def __init__(self, name: str, callback: Callable[[Any], Any]):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module
        callback = self.callback

        def exec_then_patch(module: Any) -> None:
            exec_module(module)
            callback(module)

        spec.loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec


def when_imported(name: str, callback: Callable[[Any], Any]) -> None:
    """Call ``callback(module)`` now if ``name`` is imported, else right after its import.

    So that a plugin which verl loads in every process at ``import verl`` imports nothing
    (vLLM, verl's workers) in processes that never use it.
    """
    if name in sys.modules:
        callback(sys.modules[name])
        return
    if not any(isinstance(f, _AfterImport) and f.name == name and f.callback is callback for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, callback))


def consistent_ragged_idx(nested: Any) -> int:
    """The ragged index that matches a jagged tensor's packed values and offsets.

    For ragged index ``r`` the packed values hold the ragged dimension at ``r - 1``,
    whose size is the last offset.  A tensor whose index already fits keeps it.
    """
    current = int(nested._ragged_idx)
    total = int(nested.offsets()[-1])
    fits = [d + 1 for d in range(nested._values.dim()) if nested._values.shape[d] == total]
    return current if current in fits or not fits else fits[-1]


def fix_3d_position_ids(data: Any) -> None:
    """verl's ``maybe_fix_3d_position_ids``, made right for every layout of the nested tensor.

    verl stores each sample's ``position_ids`` (shape ``(4, seq)``) in a jagged nested tensor
    and, because TensorDict pickling can lose its ragged index, forces that index to 2
    (``verl/utils/tensordict_utils.py:910-915``) on the whole batch before indexing it
    (``verl/workers/engine_workers.py:252``, then ``:289`` -> ``tensordict_utils.py:610``).
    When every sequence of the batch has the same length, the tensor is built with its ragged
    dimension at index 1 (the 4 rows), and forcing 2 makes the next ``index_select_tensor_dict``
    fail: ``split_with_sizes expects split_sizes to sum exactly to 545 (input tensor's size at
    dimension 1), but got split_sizes=[4, 4, ...]``.  This picks the index that matches the
    packed values instead, which repairs a lost index and leaves a right one alone.
    """
    import torch

    pos = data["position_ids"] if "position_ids" in data.keys() else None
    if isinstance(pos, torch.Tensor) and pos.is_nested and pos.dim() == 3:
        pos._ragged_idx = consistent_ragged_idx(pos)


#: Modules that bind ``maybe_fix_3d_position_ids`` by name (``from ... import``), in verl 0.9.1.
POSITION_IDS_FIX_USERS = (
    "verl.utils.tensordict_utils",
    "verl.workers.engine_workers",
    "verl.workers.engine.base",
    "verl.workers.engine_workers_tinker",
)


def patch_position_ids_fix(module: Any) -> bool:
    """Rebind ``module.maybe_fix_3d_position_ids`` to :func:`fix_3d_position_ids`; False if nothing to do."""
    if not hasattr(module, "maybe_fix_3d_position_ids") or module.maybe_fix_3d_position_ids is fix_3d_position_ids:
        return False
    module.maybe_fix_3d_position_ids = fix_3d_position_ids
    return True


def enabled(environ: dict[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(ENABLE_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def apply_all() -> None:
    """Install every fix (each module is patched when it is first imported, or now if it already is)."""
    for name in POSITION_IDS_FIX_USERS:
        when_imported(name, patch_position_ids_fix)


def install(verl_version: str | None = None, environ: dict[str, str] | None = None) -> bool:
    """Install the fixes if they are on and verl is the release they were written for; True if installed.

    ``verl_version`` stands for the running verl's version (tests); by default it is read.
    """
    if not enabled(environ):
        return False
    if not written_for("the verl fixes of srpo_verl_plugins.verl_fixes", "verl", VERL_RELEASE, found=verl_version):
        return False
    apply_all()
    return True


try:
    install()
except Exception:  # verl swallows a plugin's import error at debug level: say it louder
    logger.warning("srpo: the recipe's verl fixes failed to load", exc_info=True)
    raise
