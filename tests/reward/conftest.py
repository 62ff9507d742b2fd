"""Fixtures of the reward tests: a call in a worker thread (as verl's reward loop makes it),
and grading workers that run a test function (``_slow_grader``) instead of math-verify."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from srpo_reward import verdicts, workers


@pytest.fixture
def in_thread():
    """``in_thread(fn)``: ``fn()`` run in a fresh thread (not the main one), failing if it hangs."""

    def run(fn):
        box = []
        t = threading.Thread(target=lambda: box.append(fn()))
        t.start()
        t.join(timeout=120)
        assert not t.is_alive(), "grading hung"
        return box[0]

    return run


@pytest.fixture
def grader_target(monkeypatch):
    """``grader_target(name, workers=None)``: a fresh pool whose workers run
    ``_slow_grader.<name>`` (with ``workers`` processes when given); no verdict cached.
    The pool is stopped after the test."""

    def use(name: str, size: int | None = None) -> None:
        monkeypatch.syspath_prepend(str(Path(__file__).parent))
        monkeypatch.setattr(verdicts, "WORKER_TARGET", f"_slow_grader:{name}")
        if size is not None:
            monkeypatch.setenv("SRPO_GRADER_WORKERS", str(size))
        workers.shutdown_pool()
        monkeypatch.setattr(workers, "_pool", None)  # a new pool, of the size asked for
        verdicts.verdict_cache.clear()

    yield use
    workers.shutdown_pool()


@pytest.fixture
def trips(monkeypatch):
    """The round trips made to grading workers, as they are made: ``(worker pid, [pred, ...])``."""
    seen = []
    real = workers.Worker.grade_many

    def grade_many(self, tasks, deadline, results):
        seen.append((self.proc.pid, [pred for _, pred in tasks]))
        return real(self, tasks, deadline, results)

    monkeypatch.setattr(workers.Worker, "grade_many", grade_many)
    return seen
