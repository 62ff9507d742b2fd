"""Thin GRPO entry point: verl 0.9.1's ``main_ppo`` plus SRPO's training-time reflection metrics.

Run it exactly like ``python -m verl.trainer.main_ppo``; its default config is
``recipe/srpo/config/srpo_trainer.yaml`` (verl's ``ppo_trainer`` plus SRPO's
settings), found from any working directory::

    python -m recipe.srpo.main_srpo actor_rollout_ref.model.path=... data.train_files=...

What it adds to verl, and nothing else:

- it refuses the legacy top-level ``custom_reward_function`` key, which verl
  0.9.1 composes without error but ignores at run time (the run would then be
  scored by verl's default scorer);
- it honours ``algorithm.filter_groups.max_num_gen_batches``, which verl 0.9.1's V1 trainer
  ignores: a step that spends that many generation rounds without a full batch (every group
  without spread in ``acc``, e.g. a policy that never writes the format) stops the run with
  :class:`RefillBoundError` instead of refilling forever (:func:`srpo_replay_buffer_cls`);
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
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hydra
import ray
from omegaconf import DictConfig

from recipe.srpo.checks import ConfigError, check_no_legacy_reward_key

logger = logging.getLogger(__name__)


class RefillBoundError(RuntimeError):
    """A GRPO step spent ``algorithm.filter_groups.max_num_gen_batches`` generation rounds without a full batch."""


@dataclass
class StepRounds:
    """One step's generation rounds under the online filter (the refill bound's state, one per ``sample``)."""

    #: the training step and the groups its batch needs
    step: int
    batch_size: int
    #: prompts of the step's first round (verl's ``prepare_step`` submits ``train_batch_size``)
    first_round: int
    #: prompts the buffer may still ask for beyond the first round
    budget: int
    #: groups with spread the last poll found (sampleable)
    sampleable: int = 0
    #: prompts refilled so far this step
    refilled: int = 0
    #: groups the filter evicted this step, by the value every response shared (``{0.0: 12}``)
    evicted_by_value: Counter = field(default_factory=Counter)

    def take(self, wanted: int) -> int:
        granted = max(0, min(wanted, self.budget - self.refilled))
        self.refilled += granted
        return granted

    @property
    def exhausted(self) -> bool:
        return self.refilled >= self.budget

    @property
    def rounds(self) -> float:
        return (self.first_round + self.refilled) / self.first_round


def refill_bound_message(metric: str, max_rounds: int, rounds: StepRounds, evicted: list[dict]) -> str:
    """The error a step without a full batch ends with: the cause, the rounds spent, what the policy wrote."""
    values = ", ".join(f"{metric}={value:g} in every response: {n} group(s)" for value, n in sorted(rounds.evicted_by_value.items()))
    scores = [float(info["score"]) for info in evicted if isinstance(info.get("score"), (int, float))]
    formats = [float(info["format"]) for info in evicted if isinstance(info.get("format"), (int, float))]
    last = "no reward dicts of the evicted responses were readable"
    if scores:
        last = f"mean reward {sum(scores) / len(scores):.3f}"
        if formats:
            last += f", well-formed rate {sum(formats) / len(formats):.1%}"
        last += f" over the {len(scores)} evicted responses"
    return (
        f"GRPO step {rounds.step} stopped after {rounds.rounds:g} generation rounds "
        f"({rounds.first_round + rounds.refilled} prompts) without a full batch: the online filter "
        f"(algorithm.filter_groups, metric {metric!r}) evicted every group without spread in {metric!r} "
        f"({values or 'no group'}), and only {rounds.sampleable} of the {rounds.batch_size} groups a batch "
        "needs had spread. "
        f"Last rounds: {last}. "
        "A well-formed rate near 0 means the policy does not write the SRPO format: check the SFT stage "
        "(its data must have the five blocks, and it must train long enough), or the policy path. "
        f"An all-right {metric} means the prompts are too easy for the policy. "
        f"algorithm.filter_groups.max_num_gen_batches={max_rounds} bounds the rounds per step "
        "(0: no bound, verl 0.9.1's own behaviour, which refills forever)."
    )


def srpo_replay_buffer_cls() -> type:
    """verl's sync ``ReplayBuffer`` that keeps the evicted groups' reward dicts and bounds the refills.

    - ``_clear_groups`` is where verl 0.9.1 deletes the groups its online filter evicted (and the
      surplus groups it does not train on) from TransferQueue; this override reads their
      ``extra_fields`` first.  :meth:`pop_evicted_infos` hands them to the trainer once per step.
    - The refill bound: verl 0.9.1's V1 trainer ignores ``algorithm.filter_groups.max_num_gen_batches``
      (``verl/trainer/ppo/v1/trainer_base.py:205-211`` only logs a warning), so a policy whose groups
      never have spread (a random or format-less policy: ``acc`` 0 everywhere) refills forever.  Here
      ``sample`` counts the prompts refilled in one step; with ``srpo_max_rounds`` > 0, once
      ``(max_rounds - 1) * train_batch_size`` prompts beyond the first round were asked for and all of
      them finished without a full batch, it raises :class:`RefillBoundError`
      (:func:`refill_bound_message`).  Set by :func:`srpo_trainer_cls` from the config.
    """
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    from recipe.srpo.metrics import reward_infos_from_extra_fields

    class SRPOReplayBuffer(ReplayBuffer):
        #: algorithm.filter_groups.max_num_gen_batches (0: no bound)
        srpo_max_rounds: int = 0

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

        # ---------------------------------------------------------------- the refill bound
        def sample(self, global_steps: int, partition_id: str, batch_size: int):
            bounded = (
                partition_id == "train" and self.filter_groups_metric is not None and self.srpo_max_rounds > 0
            )
            if bounded:
                first = int(self.train_batch_size or batch_size)
                self._srpo_rounds = StepRounds(step=global_steps, batch_size=batch_size, first_round=first,
                                               budget=(self.srpo_max_rounds - 1) * first)
            try:
                return super().sample(global_steps, partition_id, batch_size)
            finally:
                self.__dict__.pop("_srpo_rounds", None)

        def srpo_refill(self, num_prompts: int) -> Any:
            """verl's refill, within the step's remaining budget of prompts."""
            rounds = self.__dict__.get("_srpo_rounds")
            if rounds is not None:
                num_prompts = rounds.take(num_prompts)
                if num_prompts <= 0:
                    return 0
            return self.srpo_verl_refill(num_prompts)

        def _evict_terminal_groups(self, global_steps, partition_id, eviction_reasons):
            result = super()._evict_terminal_groups(global_steps, partition_id, eviction_reasons)
            rounds = self.__dict__.get("_srpo_rounds")
            if rounds is not None:  # only set while a train step samples
                rounds.evicted_by_value.update(eviction_reasons[3])
            return result

        def _sampleable_terminal_keys(self, partition_id, eviction_reasons):
            keys = super()._sampleable_terminal_keys(partition_id, eviction_reasons)
            rounds = self.__dict__.get("_srpo_rounds")
            if rounds is not None:
                rounds.sampleable = len(keys)
            return keys

        def _wait_for_next_poll(self, partition_id: str, last_debug_time: float) -> float:
            rounds = self.__dict__.get("_srpo_rounds")
            inflight = len(self.pending_keys[partition_id]) + len(self.running_keys[partition_id])
            if rounds is not None and rounds.exhausted and inflight == 0:
                evicted = self.__dict__.get("srpo_evicted_infos", [])
                raise RefillBoundError(
                    refill_bound_message(str(self.filter_groups_metric), self.srpo_max_rounds, rounds, evicted)
                )
            return super()._wait_for_next_poll(partition_id, last_debug_time)

    return SRPOReplayBuffer


def install_refill_bound(buffer: Any, config: DictConfig) -> int:
    """Give a :func:`srpo_replay_buffer_cls` buffer the config's ``max_num_gen_batches``; returns it."""
    filter_groups = config.algorithm.get("filter_groups", None) or {}
    max_rounds = int(filter_groups.get("max_num_gen_batches", 0) or 0) if filter_groups.get("enable", False) else 0
    buffer.srpo_max_rounds = max(0, max_rounds)
    if buffer.refill_fn is not None and getattr(buffer, "srpo_verl_refill", None) is None:
        buffer.srpo_verl_refill = buffer.refill_fn
        buffer.refill_fn = buffer.srpo_refill
    if buffer.srpo_max_rounds:
        logger.info(
            "srpo: algorithm.filter_groups.max_num_gen_batches=%d is honoured by the recipe's replay buffer "
            "(verl's warning that it is ignored does not apply)", buffer.srpo_max_rounds,
        )
    return buffer.srpo_max_rounds


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
                install_refill_bound(buffer, self.config)
            else:
                logger.warning(
                    "custom sampler %s: training/srpo/prefilter/* is not logged (the evicted groups cannot be read) "
                    "and algorithm.filter_groups.max_num_gen_batches is not enforced by the recipe",
                    type(buffer).__name__,
                )
            return buffer

        def step(self, metrics, timing_raw):
            PROGRESS["step"] = self.global_steps
            return super().step(metrics, timing_raw)

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
    track_stages(trainer_base)
    return cls


#: Where the GRPO trainer is: the step (verl's global_steps) and the stages of verl's step timer open now
#: (``marked_timer("gen")``, ``"update_actor"``, ...), and the innermost stage an exception left through.
PROGRESS: dict[str, Any] = {"step": 0, "stages": [], "failed_in": None}


def track_stages(module: Any) -> bool:
    """Record in :data:`PROGRESS` the stages of ``module.marked_timer`` (verl's trainer_base step timer)."""
    import contextlib

    current = module.marked_timer
    if getattr(current, "_srpo_tracks", False):
        return False

    @contextlib.contextmanager
    def marked_timer(name: str, *args: Any, **kwargs: Any):
        PROGRESS["stages"].append(name)
        try:
            with current(name, *args, **kwargs) as value:
                yield value
        except BaseException:
            PROGRESS["failed_in"] = PROGRESS["failed_in"] or name
            raise
        finally:
            PROGRESS["stages"].pop()

    marked_timer._srpo_tracks = True  # type: ignore[attr-defined]
    module.marked_timer = marked_timer
    return True


DEAD_WORKER = re.compile(r"^\s*name: (\S*?WorkerDict\S*?)(?::(\d+))?\s", re.MULTILINE)
DEAD_PID = re.compile(r"\bpid: (\d+)")


def describe_dead_worker(exc: BaseException, progress: dict[str, Any] = PROGRESS) -> str:
    """One line for a verl worker that died (``ray.exceptions.RayActorError``): which rank of the actor/rollout
    worker group (verl names its Ray actors ``<prefix>WorkerDict_<node>:<rank>``), its pid, and the GRPO step
    and stage of the trainer when the death surfaced."""
    text = str(exc)
    worker, pid = DEAD_WORKER.search(text), DEAD_PID.search(text)
    who = (f"rank {worker.group(2)} of the actor/rollout workers ({worker.group(1)}:{worker.group(2)}"
           if worker and worker.group(2) else f"a worker ({worker.group(1) if worker else type(exc).__name__}")
    who += f", pid {pid.group(1)})" if pid else ")"
    stage = progress.get("failed_in") or (progress["stages"][-1] if progress.get("stages") else None)
    step = progress.get("step") or 0
    where = (f"GRPO step {step}, stage '{stage}'" if step and stage else f"GRPO step {step}" if step
             else f"GRPO startup (before step 1{', ' + stage if stage else ''}: model init and the first weight sync)")
    return f"srpo: {who} died; found at {where}; the run stops (the other ranks cannot go on without it)"


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
            try:
                return super().run(config)
            except ray.exceptions.RayActorError as exc:  # a worker process died: name it, then stop
                message = describe_dead_worker(exc)
                logger.error(message)
                raise RuntimeError(message) from exc

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
    from srpo_verl_plugins.cpu.plugin import cpu_selected

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
