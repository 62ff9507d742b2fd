"""The thin GRPO entry point: verl's trainer plus training-time reflection metrics."""

from __future__ import annotations

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
