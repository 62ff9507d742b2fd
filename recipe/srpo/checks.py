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
