"""main_srpo names a verl worker that died: its rank, pid, and the GRPO step and stage (not a bare traceback)."""

from __future__ import annotations

import contextlib
import types

import pytest

from recipe.srpo import main_srpo

#: The message of the ActorDiedError verl raised when rank 1's WorkerDict was killed (kill -9) in a
#: GPUS_PER_NODE=2 CPU run, as Ray 2.60 wrote it.
RAY_MESSAGE = """The actor died unexpectedly before finishing this task.
	class_name: create_colocated_worker_cls.<locals>.WorkerDict
	actor_id: 7eb37f5051e27e27a73278c201000000
	pid: 21341
	name: tQJlHKWorkerDict_0:1
	namespace: e8e6c0b1-2eee-4d8f-9c45-3d3ada51f0e9
	ip: 192.0.2.2
The actor is dead because its worker process has died."""


def test_dead_worker_named_by_rank_pid_step_and_stage():
    progress = {"step": 3, "stages": ["step"], "failed_in": "old_log_prob"}
    line = main_srpo.describe_dead_worker(RuntimeError(RAY_MESSAGE), progress)
    assert line.startswith("srpo: rank 1 of the actor/rollout workers (tQJlHKWorkerDict_0:1, pid 21341) died; found at")
    assert "GRPO step 3, stage 'old_log_prob'" in line
    startup = main_srpo.describe_dead_worker(RuntimeError(RAY_MESSAGE), {"step": 0, "stages": [], "failed_in": None})
    assert "GRPO startup (before step 1" in startup
    other = main_srpo.describe_dead_worker(RuntimeError("no actor name here"), progress)
    assert other.startswith("srpo: a worker (RuntimeError)")


def test_track_stages_records_the_stage_an_error_left_through(monkeypatch):
    monkeypatch.setattr(main_srpo, "PROGRESS", {"step": 0, "stages": [], "failed_in": None})
    seen = []

    @contextlib.contextmanager
    def marked_timer(name, timing_raw, **kwargs):
        seen.append(name)
        yield

    module = types.SimpleNamespace(marked_timer=marked_timer)
    assert main_srpo.track_stages(module) and not main_srpo.track_stages(module)
    # the wrapper was bound to the PROGRESS of its module at call time
    progress = main_srpo.PROGRESS
    with module.marked_timer("step", {}):
        with module.marked_timer("gen", {}):
            assert progress["stages"] == ["step", "gen"]
    assert progress["stages"] == [] and seen == ["step", "gen"] and progress["failed_in"] is None
    with pytest.raises(KeyError):
        with module.marked_timer("step", {}):
            with module.marked_timer("update_actor", {}, color="red"):
                raise KeyError("rank died")
    assert progress["failed_in"] == "update_actor" and progress["stages"] == []
