"""Configuration checks shared by the GRPO entry point and the dry run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration that would waste a GPU run; the message names the fix."""


def check_no_legacy_reward_key(config: DictConfig) -> None:
    """Fail if the legacy top-level ``custom_reward_function`` is set.

    verl 0.9.1 still declares ``custom_reward_function.{path,name}`` at the top
    level (for old scripts) and composes it without error, but its trainer reads
    only ``reward.custom_reward_function``: a run configured the old way is
    silently scored by verl's default scorer.
    """
    legacy = OmegaConf.select(config, "custom_reward_function", default=None)
    if legacy is None:
        return
    values = OmegaConf.to_container(legacy, resolve=False) if isinstance(legacy, DictConfig) else legacy
    set_keys = {k: v for k, v in dict(values).items() if v not in (None, {}, "")}
    if set_keys:
        moved = " ".join(f"reward.custom_reward_function.{k}={v}" for k, v in set_keys.items())
        raise ConfigError(
            f"legacy key custom_reward_function.{'/'.join(set_keys)} is set: verl 0.9.1 ignores it at run time "
            f"and would score with its default reward. Remove it and use {moved} instead"
        )


def check_reward_kwargs(reward_kwargs: Mapping[str, Any]) -> Any:
    """Build ``srpo_reward.RewardConfig`` from the YAML's ``reward_kwargs`` (a misspelled weight raises)."""
    from srpo_reward import RewardConfig

    try:
        return RewardConfig.from_kwargs(**dict(reward_kwargs))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"reward.custom_reward_function.reward_kwargs: {exc}") from exc


def check_image_patch(data_cfg: Any, processor: Any) -> str:
    """``data.image_patch_size`` (verl's RL data config: 14) must be the model processor's patch size.

    verl 0.9.1's ``RLHFDataset`` resizes every image to multiples of ``2 * data.image_patch_size``
    (qwen-vl-utils) before the processor rounds it to its own multiple, while the rollout's agent loop
    reads the patch from the processor: with Qwen3-VL (patch 16) and the default 14, the dataset's
    length filter counts other image tokens than the rollout (a 100x80 image: 12 instead of 6).
    """
    model_patch = getattr(getattr(processor, "image_processor", None), "patch_size", None)
    configured = data_cfg.get("image_patch_size", None)
    if model_patch is None or configured is None:
        return f"data.image_patch_size={configured}, processor patch {model_patch}: nothing to compare"
    if int(configured) != int(model_patch):
        raise ConfigError(
            f"data.image_patch_size={configured} but the model's processor has patch size {model_patch}: verl's RL "
            f"dataset would resize images to multiples of {2 * int(configured)} before the processor rounds them to "
            f"{2 * int(model_patch)}, so its length filter counts other image tokens than the rollout. "
            f"Set data.image_patch_size={model_patch} (IMAGE_PATCH={model_patch} in the run scripts)"
        )
    return f"data.image_patch_size={configured} = the processor's patch size"
