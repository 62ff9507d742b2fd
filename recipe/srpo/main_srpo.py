"""Thin GRPO entry point: verl 0.9.1's ``main_ppo`` plus SRPO's training-time reflection metrics.

Run it exactly like ``python -m verl.trainer.main_ppo``; its default config is
``recipe/srpo/config/srpo_trainer.yaml`` (verl's ``ppo_trainer`` plus SRPO's
settings), found from any working directory::

    python -m recipe.srpo.main_srpo actor_rollout_ref.model.path=... data.train_files=...

What it adds to verl, and nothing else:

- it refuses the legacy top-level ``custom_reward_function`` key, which verl
  0.9.1 composes without error but ignores at run time (the run would then be
  scored by verl's default scorer);
- it logs ``training/srpo/*`` every step (fix/break rates, means of the reward's
  terms: see :mod:`recipe.srpo.metrics`), which verl's trainer logs only for
  validation.  This is done by swapping verl's registered ``sync`` trainer for a
  subclass inside the Ray task runner; everything else is verl's own code.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import ray
from omegaconf import DictConfig

from recipe.srpo.checks import ConfigError, check_no_legacy_reward_key

logger = logging.getLogger(__name__)


def srpo_trainer_cls() -> type:
    """verl's sync PPO trainer with SRPO's reflection metrics added to every training step."""
    import numpy as np
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from recipe.srpo.metrics import reflection_metrics, reward_infos_from_extra_fields

    class SRPOTrainerSync(PPOTrainerSync):
        def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
            super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
            import transfer_queue as tq

            keep = np.array([not tag.get("is_padding", False) for tag in batch.tags], dtype=bool)
            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
            infos = reward_infos_from_extra_fields(list(data["extra_fields"]), keep=keep.tolist())
            metrics.update(reflection_metrics(infos))

    return SRPOTrainerSync


def use_srpo_trainer() -> type:
    """Make verl's ``sync`` trainer mode build :func:`srpo_trainer_cls` (in the calling process)."""
    from verl.trainer.ppo.v1 import trainer_base

    cls = srpo_trainer_cls()
    trainer_base.TRAINER_REGISTRY["sync"] = cls
    return cls


def _verl_task_runner_cls() -> type:
    """The plain Python class behind verl's ``@ray.remote`` ``TaskRunnerV1``."""
    from verl.trainer.main_ppo import TaskRunnerV1

    try:
        return TaskRunnerV1.__ray_metadata__.modified_class.__ray_actor_class__
    except AttributeError as exc:  # a Ray release that stores the class elsewhere
        raise RuntimeError(
            "cannot reach verl's TaskRunnerV1 class through this Ray version; run "
            "python -m verl.trainer.main_ppo with the same overrides instead (no training-time SRPO metrics)"
        ) from exc


def make_task_runner() -> Any:
    """A Ray actor class: verl's TaskRunnerV1 that first installs the SRPO trainer."""
    base = _verl_task_runner_cls()

    class SRPOTaskRunner(base):  # type: ignore[misc, valid-type]
        def run(self, config: DictConfig):
            use_srpo_trainer()
            return super().run(config)

    return ray.remote(SRPOTaskRunner)


def check_config(config: DictConfig) -> None:
    """The checks ``main`` runs before starting Ray (verl's own validation plus the recipe's)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    check_no_legacy_reward_key(config)
    if not config.trainer.use_v1 or config.trainer.v1.trainer_mode != "sync":
        raise ConfigError(
            "recipe.srpo.main_srpo adds its metrics to verl's V1 sync trainer: keep trainer.use_v1=true and "
            "trainer.v1.trainer_mode=sync, or run python -m verl.trainer.main_ppo with the same overrides"
        )
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))


def run(config: DictConfig) -> None:
    from verl.trainer.main_ppo import run_ppo
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    check_config(config)
    run_ppo(config, task_runner_class=make_task_runner())


@hydra.main(config_path="config", config_name="srpo_trainer", version_base=None)
def main(config: DictConfig) -> None:
    run(config)


if __name__ == "__main__":
    main()
