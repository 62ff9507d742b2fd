"""The thin GRPO entry point: verl's trainer plus training-time reflection metrics."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from recipe.srpo.checks import ConfigError
from recipe.srpo.dry_run import GRPO_CONFIG, compose
from recipe.srpo.main_srpo import check_config, make_task_runner, srpo_trainer_cls, use_srpo_trainer


def test_trainer_logs_reflection_metrics_each_step(monkeypatch):
    import transfer_queue
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    cls = srpo_trainer_cls()
    base_calls = []
    monkeypatch.setattr(PPOTrainer, "_compute_metrics", lambda self, *a: base_calls.append(a))
    stored = {
        "k0": {"reward_extra_info": {"acc": 1.0, "acc_first": 0.0, "fixed": 1.0, "kept": 0.0, "broke": 0.0,
                                     "stayed_wrong": 0.0}},
        "k1": {"reward_extra_info": {"acc": 0.0, "acc_first": 0.0, "fixed": 0.0, "kept": 0.0, "broke": 0.0,
                                     "stayed_wrong": 1.0}},
        "pad": {"reward_extra_info": {"acc": 1.0, "acc_first": 1.0, "fixed": 0.0, "kept": 1.0, "broke": 0.0,
                                      "stayed_wrong": 0.0}},
    }

    def kv_batch_get(keys, partition_id, select_fields):
        assert partition_id == "train" and select_fields == ["extra_fields"]
        return {"extra_fields": [stored[k] for k in keys]}

    monkeypatch.setattr(transfer_queue, "kv_batch_get", kv_batch_get)
    trainer = cls.__new__(cls)  # no GPUs: only the metrics hook is exercised
    batch = SimpleNamespace(keys=["k0", "k1", "pad"], partition_id="train", tags=[{}, {}, {"is_padding": True}])
    metrics = {}
    trainer._compute_metrics(batch, metrics, {}, 3, 0)
    assert len(base_calls) == 1  # verl's own metrics still computed
    assert metrics["training/srpo/responses"] == 2.0  # padding dropped
    assert metrics["training/srpo/fix_rate"] == 0.5
    assert metrics["training/srpo/acc/mean"] == 0.5


def reward(acc_first, acc):
    return {"reward_extra_info": {
        "acc": float(acc), "acc_first": float(acc_first), "fixed": float(not acc_first and acc),
        "kept": float(acc_first and acc), "broke": float(acc_first and not acc),
        "stayed_wrong": float(not acc_first and not acc),
    }}


class FakeTransferQueue:
    """The four TransferQueue calls verl 0.9.1's sync ReplayBuffer and the metrics hook make, over a dict.

    A group added with ``running_polls=n`` is generating (status ``running``, no responses yet) for the
    next ``n`` polls (``kv_list`` calls), then finished.  Polling more than :attr:`MAX_POLLS` times fails
    the test: a sampler that neither finishes nor stops fails fast instead of spinning until the timeout.
    """

    MAX_POLLS = 2000

    def __init__(self, groups):
        # groups: {uid: (global_steps, [extra_fields of each response])}
        self.store = {"train": {}}
        self.polls = 0
        self.running = {}  # uid -> (poll at which it finishes, its finished entries)
        self.add(groups)

    @staticmethod
    def entries(uid, steps, responses):
        out = {uid: ({"is_prompt": True, "status": "finished", "global_steps": steps}, None)}
        for i, extra in enumerate(responses):
            tag = {"global_steps": steps, "min_global_steps": steps, "max_global_steps": steps}
            out[f"{uid}_{i}"] = (tag, extra)
        return out

    def add(self, groups, running_polls=0):
        for uid, (steps, responses) in groups.items():
            finished = self.entries(uid, steps, responses)
            if running_polls:
                self.running[uid] = (self.polls + running_polls, finished)
                self.store["train"][uid] = ({"is_prompt": True, "status": "running", "global_steps": steps}, None)
            else:
                self.store["train"].update(finished)

    def kv_list(self):
        self.polls += 1
        assert self.polls <= self.MAX_POLLS, f"polled {self.MAX_POLLS} times: the step neither finished nor stopped"
        for uid, (ready, finished) in list(self.running.items()):
            if self.polls >= ready:
                self.store["train"].update(finished)
                del self.running[uid]
        return {pid: {key: tag for key, (tag, _) in items.items()} for pid, items in self.store.items()}

    def kv_batch_get(self, keys, partition_id, select_fields):
        assert select_fields == ["extra_fields"]
        return {"extra_fields": [self.store[partition_id][key][1] for key in keys]}

    def kv_clear(self, partition_id, keys):
        for key in keys:
            self.store[partition_id].pop(key, None)


def test_prefilter_metrics_see_the_groups_verls_filter_evicted(monkeypatch):
    """verl's own sync ReplayBuffer.sample (online filter on acc) with a dict for TransferQueue, no Ray."""
    import transfer_queue
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    fake = FakeTransferQueue({
        "g0": (1, [reward(0, 1), reward(0, 0)]),  # mixed: trained
        "g1": (1, [reward(1, 1), reward(1, 1)]),  # all right: evicted by the filter
        "g2": (1, [reward(0, 1), reward(0, 0)]),  # mixed: trained
        "g3": (2, [reward(1, 0), reward(1, 1)]),  # mixed but newest: surplus, discarded
    })
    for name in ("kv_list", "kv_batch_get", "kv_clear"):
        monkeypatch.setattr(transfer_queue, name, getattr(fake, name))
    monkeypatch.setattr(PPOTrainer, "_compute_metrics", lambda self, *a: None)

    cls = srpo_trainer_cls()
    trainer = cls.__new__(cls)  # no GPUs, no Ray: verl's replay-buffer factory and the metrics hook only
    trainer.config = compose(GRPO_CONFIG, ["data.train_batch_size=2"])
    trainer.trainer_mode = "sync"
    trainer._add_prompts_to_generate = lambda n: pytest.fail("no refill expected: enough groups have signal")
    trainer.replay_buffer = trainer._build_replay_buffer()
    batch, filter_metrics = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert filter_metrics["training/filter_groups/evicted_samples"] == 1  # g1, by verl's filter
    assert sorted({key.split("_")[0] for key in batch.keys}) == ["g0", "g2"]

    metrics = {}
    trainer._compute_metrics(batch, metrics, {}, 1, 0)
    # trained (post-filter): only first-wrong responses, half of them fixed
    assert metrics["training/srpo/responses"] == 4.0
    assert metrics["training/srpo/fix_rate"] == 0.5
    assert math.isnan(metrics["training/srpo/break_rate"])
    # everything the policy generated: g1's two kept answers and g3's broken one count too
    assert metrics["training/srpo/prefilter/responses"] == 8.0
    assert metrics["training/srpo/prefilter/fix_rate"] == 0.5
    assert metrics["training/srpo/prefilter/break_rate"] == 0.25
    assert metrics["training/srpo/prefilter/acc/mean"] == 5 / 8
    # recorded once: the next step starts empty
    assert trainer.replay_buffer.pop_evicted_infos() == []


def test_use_srpo_trainer_swaps_the_sync_trainer(monkeypatch):
    from verl.trainer.ppo.v1 import trainer_base
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    monkeypatch.setitem(trainer_base.TRAINER_REGISTRY, "sync", PPOTrainerSync)
    cls = use_srpo_trainer()
    assert trainer_base.get_trainer_cls("sync") is cls
    assert issubclass(cls, PPOTrainerSync)


def test_task_runner_extends_verls():
    import ray
    from verl.trainer.main_ppo import TaskRunnerV1

    runner = make_task_runner()
    assert isinstance(runner, ray.actor.ActorClass)
    base = TaskRunnerV1.__ray_metadata__.modified_class.__ray_actor_class__
    assert issubclass(runner.__ray_metadata__.modified_class.__ray_actor_class__, base)


@pytest.mark.parametrize(
    "overrides, match",
    [
        pytest.param(["custom_reward_function.path=pkg://srpo_reward"], "legacy key", id="legacy-reward-key"),
        pytest.param(["trainer.v1.trainer_mode=colocate_async"], "trainer_mode=sync", id="async-trainer"),
        pytest.param(["trainer.use_v1=false"], "use_v1=true", id="legacy-trainer"),
    ],
)
def test_check_config_refuses(overrides, match):
    cfg = compose(GRPO_CONFIG, overrides)
    with pytest.raises(ConfigError, match=match):
        check_config(cfg)


def test_check_config_accepts_the_recipe():
    check_config(compose(GRPO_CONFIG, []))


def refill_trainer(monkeypatch, groups, overrides, new_group, running_polls=0):
    """verl's replay-buffer factory over a FakeTransferQueue; each refilled prompt becomes ``new_group(n)``,
    generating for ``running_polls`` polls before it finishes."""
    import transfer_queue
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    fake = FakeTransferQueue(groups)
    for name in ("kv_list", "kv_batch_get", "kv_clear"):
        monkeypatch.setattr(transfer_queue, name, getattr(fake, name))
    monkeypatch.setattr(PPOTrainer, "_compute_metrics", lambda self, *a: None)
    refilled = []

    def refill(n):
        # Without the bound verl refills forever: fail instead of hanging.
        assert len(refilled) < 200, "refilled 200 prompts: the bound did not stop the step"
        for _ in range(n):
            uid = f"r{len(refilled)}"
            refilled.append(uid)
            fake.add({uid: (1, new_group(len(refilled)))}, running_polls=running_polls)
        return n

    cls = srpo_trainer_cls()
    trainer = cls.__new__(cls)
    trainer.config = compose(GRPO_CONFIG, ["data.train_batch_size=2", *overrides])
    trainer.trainer_mode = "sync"
    trainer._add_prompts_to_generate = refill
    trainer.replay_buffer = trainer._build_replay_buffer()
    trainer.replay_buffer.poll_interval = 0.0
    return trainer, refilled


def scored(acc, fmt=0.0, score=0.0):
    extra = reward(acc, acc)
    extra["reward_extra_info"].update(format=float(fmt), score=float(score))
    return extra


def test_refill_bound_stops_a_step_whose_groups_never_have_spread(monkeypatch):
    """A random policy: acc 0 and no format everywhere, so verl's filter evicts every group forever."""
    from recipe.srpo.main_srpo import RefillBoundError

    zero = lambda n: [scored(0), scored(0)]  # noqa: E731
    trainer, refilled = refill_trainer(
        monkeypatch, {"g0": (1, zero(0)), "g1": (1, zero(0))},
        ["algorithm.filter_groups.max_num_gen_batches=3"], zero)
    with pytest.raises(RefillBoundError) as err:
        trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert len(refilled) == 4  # rounds 2 and 3: (3 - 1) x train_batch_size prompts, then the error
    message = str(err.value)
    assert "after 3 generation rounds (6 prompts)" in message
    assert "evicted every group without spread in 'acc'" in message
    assert "acc=0 in every response: 6 group(s)" in message
    assert "only 0 of the 2 groups" in message
    assert "mean reward 0.000, well-formed rate 0.0% over the 12 evicted responses" in message
    assert "check the SFT stage" in message and "max_num_gen_batches=3" in message


def test_refill_bound_lets_a_step_finish_within_the_bound(monkeypatch):
    """Groups with spread arrive in the second round: the step gets its batch, no error."""
    mixed = lambda n: [scored(0), scored(1)] if n >= 2 else [scored(1), scored(1)]  # noqa: E731
    trainer, refilled = refill_trainer(
        monkeypatch, {"g0": (1, [scored(1), scored(1)]), "g1": (1, [scored(0), scored(0)])},
        ["algorithm.filter_groups.max_num_gen_batches=3"], mixed)
    batch, metrics = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert metrics["training/filter_groups/evicted_samples"] >= 2
    kept = {key.split("_")[0] for key in batch.keys}
    assert len(kept) == 2 and kept <= {f"r{i}" for i in range(len(refilled))}
    assert len(refilled) <= 4


def test_refill_bound_zero_keeps_verls_unbounded_refill(monkeypatch):
    """max_num_gen_batches=0: verl's behaviour (refill until a batch has spread), here reached at prompt 9."""
    late = lambda n: [scored(0), scored(1)] if n >= 9 else [scored(0), scored(0)]  # noqa: E731
    trainer, refilled = refill_trainer(
        monkeypatch, {"g0": (1, [scored(0), scored(0)]), "g1": (1, [scored(0), scored(0)])},
        ["algorithm.filter_groups.max_num_gen_batches=0"], late)
    batch, _ = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert len(refilled) >= 10 and len({key.split("_")[0] for key in batch.keys}) == 2


def test_refill_bound_waits_for_the_last_rounds_prompts(monkeypatch):
    """The budget runs out when the last round is asked for, while its prompts still generate: the bound
    waits for them (they have spread here, so the step gets its batch) instead of stopping at once."""
    late = lambda n: [scored(0), scored(1)]  # noqa: E731
    trainer, refilled = refill_trainer(
        monkeypatch, {"g0": (1, [scored(0), scored(0)]), "g1": (1, [scored(0), scored(0)])},
        ["algorithm.filter_groups.max_num_gen_batches=2"], late, running_polls=3)
    batch, _ = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert refilled == ["r0", "r1"]  # the whole budget: (2 - 1) x train_batch_size
    assert {key.split("_")[0] for key in batch.keys} == {"r0", "r1"}


def test_refill_bound_stops_after_the_last_round_finished_without_spread(monkeypatch):
    """The same, but the last round's groups have no spread either: the error comes once they finished."""
    zero = lambda n: [scored(0), scored(0)]  # noqa: E731
    trainer, refilled = refill_trainer(
        monkeypatch, {"g0": (1, zero(0)), "g1": (1, zero(0))},
        ["algorithm.filter_groups.max_num_gen_batches=2"], zero, running_polls=3)
    from recipe.srpo.main_srpo import RefillBoundError

    with pytest.raises(RefillBoundError, match=r"after 2 generation rounds \(4 prompts\)") as err:
        trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert refilled == ["r0", "r1"] and "acc=0 in every response: 4 group(s)" in str(err.value)


def test_recipe_bounds_the_refill_by_default(monkeypatch):
    """The recipe's own config (max_num_gen_batches 10 in srpo_trainer.yaml) through verl's replay-buffer
    factory: a step without spread stops after 10 rounds."""
    from recipe.srpo.main_srpo import RefillBoundError, srpo_replay_buffer_cls

    assert srpo_replay_buffer_cls().srpo_max_rounds == 0  # the bound comes from the config, not the class
    zero = lambda n: [scored(0), scored(0)]  # noqa: E731
    trainer, refilled = refill_trainer(monkeypatch, {"g0": (1, zero(0)), "g1": (1, zero(0))}, [], zero)
    assert trainer.config.algorithm.filter_groups.enable
    assert trainer.replay_buffer.srpo_max_rounds == 10
    with pytest.raises(RefillBoundError, match=r"after 10 generation rounds \(20 prompts\)"):
        trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert len(refilled) == 18  # (10 - 1) x train_batch_size
