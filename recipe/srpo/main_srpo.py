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

Where the online filter sits (verl 0.9.1, ``verl/trainer/ppo/v1/``): the trainer's
``_step_once`` asks the replay buffer for a batch (``ReplayBuffer.sample``).  The buffer
evicts every finished group whose filter metric has no spread
(``_dapo_filtered_keys`` -> ``_evict_terminal_groups`` -> ``_clear_groups``, which deletes
the group's trajectories from TransferQueue) and refills with new prompts until enough
groups remain, then discards the surplus (``_clear_groups`` again).  So the batch that
reaches ``_compute_metrics`` is the post-filter one (``training/srpo/*``), and the only
place the evicted responses can still be read is ``_clear_groups``, just before they are
deleted: :func:`srpo_replay_buffer_cls` records their reward dicts there, and the trainer
logs ``training/srpo/prefilter/*`` from trained + evicted.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import ray
from omegaconf import DictConfig

from recipe.srpo.checks import ConfigError, check_no_legacy_reward_key

logger = logging.getLogger(__name__)


def srpo_replay_buffer_cls() -> type:
    """verl's sync ``ReplayBuffer`` that keeps the reward dicts of the train groups it deletes.

    ``_clear_groups`` is where verl 0.9.1 deletes the groups its online filter evicted (and the
    surplus groups it does not train on) from TransferQueue; this override reads their
    ``extra_fields`` first.  :meth:`pop_evicted_infos` hands them to the trainer once per step.
    """
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    from recipe.srpo.metrics import reward_infos_from_extra_fields

    class SRPOReplayBuffer(ReplayBuffer):
        def _clear_groups(self, partition_id: str, uids: set[str]) -> None:
            if partition_id == "train" and uids:
                import transfer_queue as tq

                partition = self.partitions[partition_id]
                keys = sorted(key for key in partition if key.split("_")[0] in uids)
                keep = [not partition[key].get("is_padding", False) for key in keys]
                if keys:
                    data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["extra_fields"])
                    infos = reward_infos_from_extra_fields(list(data["extra_fields"]), keep=keep)
                    self.__dict__.setdefault("srpo_evicted_infos", []).extend(infos)
            super()._clear_groups(partition_id, uids)

        def pop_evicted_infos(self) -> list[dict]:
            """The reward dicts recorded since the last call (the step's evicted and surplus responses)."""
            return self.__dict__.pop("srpo_evicted_infos", [])

    return SRPOReplayBuffer


def srpo_trainer_cls() -> type:
    """verl's sync PPO trainer with SRPO's reflection metrics added to every training step."""
    import numpy as np
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from recipe.srpo.metrics import reflection_metrics, reward_infos_from_extra_fields, step_reflection_metrics

    buffer_cls = srpo_replay_buffer_cls()

    class SRPOTrainerSync(PPOTrainerSync):
        def _build_replay_buffer(self):
            buffer = super()._build_replay_buffer()
            # verl builds its own ReplayBuffer with kwargs it derives from the config; the subclass adds
            # no state to construct, so the built object is switched to it rather than rebuilt.
            if type(buffer) is ReplayBuffer:
                buffer.__class__ = buffer_cls
            else:
                logger.warning(
                    "custom sampler %s: training/srpo/prefilter/* is not logged (the evicted groups cannot be read)",
                    type(buffer).__name__,
                )
            return buffer

        def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
            super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
            import transfer_queue as tq

            keep = np.array([not tag.get("is_padding", False) for tag in batch.tags], dtype=bool)
            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
            infos = reward_infos_from_extra_fields(list(data["extra_fields"]), keep=keep.tolist())
            buffer = getattr(self, "replay_buffer", None)
            if isinstance(buffer, buffer_cls):
                metrics.update(step_reflection_metrics(infos, buffer.pop_evicted_infos()))
            else:
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


def check_cpu_platform(config: DictConfig, environ: Any = None) -> None:
    """``trainer.device=cpu`` (``+cpu=grpo``) needs the CPU platform, selected by ``VERL_PLATFORM=cpu``.

    Without it verl would detect no accelerator, fall back to CUDA and fail far from the cause.
    """
    from recipe.srpo.cpu.plugin import cpu_selected

    if str(config.trainer.get("device", "")) == "cpu" and not cpu_selected(environ):
        raise ConfigError(
            "trainer.device=cpu needs verl's CPU platform: set VERL_PLATFORM=cpu in the environment "
            "(CPU_TRAIN=1 of the run scripts and examples/cpu_train.sh do)"
        )


def run(config: DictConfig) -> None:
    from verl.trainer.main_ppo import run_ppo
    from verl.utils.device import auto_set_device

    check_cpu_platform(config)
    auto_set_device(config)
    check_config(config)
    run_ppo(config, task_runner_class=make_task_runner())


@hydra.main(config_path="config", config_name="srpo_trainer", version_base=None)
def main(config: DictConfig) -> None:
    run(config)


if __name__ == "__main__":
    main()
