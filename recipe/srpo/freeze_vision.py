"""Freeze the vision tower and its projector of a Qwen2.5-VL policy inside verl 0.9.1.

Why this module exists: SRPO trains with the vision tower frozen (SFT: tower and
projector frozen; GRPO: tower frozen).  verl 0.9.1 declares
``actor_rollout_ref.actor.freeze_vision_tower`` but nothing in its FSDP engine
reads it, and its SFT trainer has no such option at all, so setting the key
changes nothing.  verl does offer one hook that runs in every process that builds
a model: ``model.external_lib`` names a module that ``HFModelConfig`` imports
before the engine builds the model.  The recipe's configs point that hook here
(``actor_rollout_ref.model.external_lib`` for GRPO, ``model.external_lib`` for
SFT); importing this module wraps ``FSDPEngine._build_module`` so that, right
after verl loads the Hugging Face model and before FSDP wraps it, every parameter
of the vision tower (``model.visual``, which includes the ``merger`` projector)
gets ``requires_grad=False``.  The optimizer then never updates them (AdamW skips
parameters without gradients) and FSDP2 (set by the recipe) handles frozen and
trainable parameters side by side.

The import side effect is the contract of verl's ``external_lib`` hook; the
patch is idempotent and only touches the training engine's model-building step.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch

logger = logging.getLogger(__name__)

#: Name prefixes (relative to the Hugging Face model) of the modules frozen by default.
#: Qwen2.5-VL in transformers 5 keeps the tower and its merger (the projector) under
#: ``model.visual``; older layouts used a top-level ``visual``.
VISION_PREFIXES: tuple[str, ...] = ("model.visual.", "visual.")

_PATCH_FLAG = "_srpo_freeze_vision_patched"


def is_vision_param(name: str, prefixes: Iterable[str] = VISION_PREFIXES) -> bool:
    """True if the parameter ``name`` belongs to the vision tower or its projector."""
    return any(name.startswith(prefix) for prefix in prefixes)


def freeze_vision(module: torch.nn.Module, prefixes: Iterable[str] = VISION_PREFIXES) -> int:
    """Set ``requires_grad=False`` on every vision parameter of ``module``; return how many were frozen.

    Raises ``ValueError`` if the model has no parameter under ``prefixes`` (a model
    without a vision tower, or a layout this recipe does not know), since training
    would then silently update what the user meant to freeze.
    """
    prefixes = tuple(prefixes)
    frozen = 0
    for name, param in module.named_parameters():
        if is_vision_param(name, prefixes):
            param.requires_grad_(False)
            frozen += 1
    if frozen == 0:
        raise ValueError(
            f"no vision parameters found under {prefixes} in {type(module).__name__}; "
            "remove model.external_lib=recipe.srpo.freeze_vision for a text-only model"
        )
    return frozen


def _wrap_build_module(build_module: Callable[..., torch.nn.Module]) -> Callable[..., torch.nn.Module]:
    @functools.wraps(build_module)
    def build_module_frozen_vision(self: Any, *args: Any, **kwargs: Any) -> torch.nn.Module:
        module = build_module(self, *args, **kwargs)
        engine_config = getattr(self, "engine_config", None)
        if getattr(engine_config, "forward_only", False):
            return module  # reference / inference copies are never trained
        frozen = freeze_vision(module)
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        logger.warning("SRPO: froze %d vision parameters; %d trainable weights remain", frozen, trainable)
        return module

    setattr(build_module_frozen_vision, _PATCH_FLAG, True)
    return build_module_frozen_vision


def install(engine_cls: type | None = None) -> bool:
    """Wrap ``engine_cls._build_module`` (default: verl's FSDP engine); return False if already wrapped."""
    if engine_cls is None:
        from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

        engine_cls = FSDPEngine
    current = engine_cls.__dict__.get("_build_module")
    if current is None:
        current = getattr(engine_cls, "_build_module")
    if getattr(current, _PATCH_FLAG, False):
        return False
    engine_cls._build_module = _wrap_build_module(current)
    return True


def is_installed(engine_cls: type | None = None) -> bool:
    """True if the freeze is active for ``engine_cls`` (default: verl's FSDP engine)."""
    if engine_cls is None:
        from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

        engine_cls = FSDPEngine
    return bool(getattr(getattr(engine_cls, "_build_module", None), _PATCH_FLAG, False))


# verl's model.external_lib hook only imports this module: installing here is that hook's contract.
install()
