"""math-verify's verdicts: the guard, a bounded cache per (ground truth, answer), a pair that
another thread is grading right now waited for, and one worker round trip per call for the
rest, all within one deadline.

A GRPO group's rollouts share a ground truth and repeat answers, and verl's reward loop grades
them in several threads at once: each distinct pair goes to math-verify once.
:func:`run_math_verify` is what the grader's front calls for the answers no fast path decided.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Sequence

from . import guard, workers
from .grade import Grade

#: Seconds a caller waits beyond ``timeout`` for a free worker (the pool may be busy
#: with other threads' tasks, or starting a replacement worker after a kill).
QUEUE_ALLOWANCE_S = 60.0
#: Longest wait for a free worker once the pool is warm (on top of the grading budget).
QUEUE_WAIT_S = 30.0
#: ``module:function`` the workers run; a test may point it at a slow function.
WORKER_TARGET = "srpo_reward.mathverify:math_verify_grade"


class _VerdictCache:
    """math-verify verdicts per (target, gold, pred), shared by the threads of a process.

    A GRPO group's rollouts share a ground truth and repeat answers, so most of a
    group's answers are graded once.  Only final verdicts (``ok``, ``gold_unparsable``)
    are kept, never a timeout or an error.  Least recently used entries go first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, str, str], tuple[str, bool]] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str, str]) -> tuple[str, bool] | None:
        with self.lock:
            value = self.data.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self.data.move_to_end(key)
            return value

    def put(self, key: tuple[str, str, str], value: tuple[str, bool]) -> None:
        if self.size <= 0 or value[0] not in ("ok", "gold_unparsable"):
            return
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
            self.hits = self.misses = 0


#: Entries of the verdict cache (``SRPO_GRADE_CACHE``, 0 turns it off).
DEFAULT_CACHE_SIZE = 65536
verdict_cache = _VerdictCache(int(os.environ.get("SRPO_GRADE_CACHE", DEFAULT_CACHE_SIZE)))


class _Flights:
    """The (target, gold, pred) pairs some thread is grading right now.  A thread that needs one
    of them waits for that verdict instead of grading it again (verl's reward loop scores a
    group's rollouts in several executor threads at once, and they repeat answers)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[tuple[str, str, str], threading.Event] = {}

    def claim(self, keys: Sequence[tuple[str, str, str]]):
        """(the keys this thread must grade, the events of those another thread is grading)."""
        mine, theirs = [], {}
        with self.lock:
            for key in keys:
                if key in self.running:
                    theirs[key] = self.running[key]
                else:
                    self.running[key] = threading.Event()
                    mine.append(key)
        return mine, theirs

    def done(self, keys: Sequence[tuple[str, str, str]]) -> None:
        with self.lock:
            for key in keys:
                self.running.pop(key).set()


_flights = _Flights()


def run_math_verify(tasks: Sequence[tuple[str, str]], deadline: float) -> list[Grade]:
    """Grade ``(gold, pred)`` pairs with math-verify within ``deadline``: each from the cache,
    from another thread grading it now, or in this call's one worker round trip.  A pair
    without a verdict in time is a ``timeout``."""
    target = WORKER_TARGET
    grades: list[Grade | None] = [None] * len(tasks)
    todo: list[int] = []
    for i, (gold, pred) in enumerate(tasks):
        reason = guard.guard_reason(pred) or guard.guard_reason(gold)
        if reason is not None:
            grades[i] = Grade(False, "refused", "guard")
            continue
        hit = verdict_cache.get((target, gold, pred))
        if hit is not None:
            grades[i] = Grade(hit[1] and hit[0] == "ok", hit[0], "math_verify")
        else:
            todo.append(i)
    unique = list(dict.fromkeys(tasks[i] for i in todo))
    if unique:
        verdicts, failure = _grade(target, unique, deadline)
        for i in todo:
            verdict = verdicts.get(tasks[i])
            if verdict is None:
                grades[i] = Grade(False, failure or "error", "math_verify")
            else:
                grades[i] = Grade(verdict[1] and verdict[0] == "ok", verdict[0], "math_verify")
    return [g if g is not None else Grade(False, "error") for g in grades]


def _grade(target: str, pairs: list[tuple[str, str]], deadline: float) -> tuple[dict, str]:
    """Verdicts of ``pairs`` (none cached), and the failure of those without one."""
    mine, theirs = _flights.claim([(target, *pair) for pair in pairs])
    verdicts: dict[tuple[str, str], tuple[str, bool]] = {}
    failure = ""
    try:
        if mine:
            verdicts, failure = _round_trip(target, [key[1:] for key in mine], deadline)
            for pair, verdict in verdicts.items():
                verdict_cache.put((target, *pair), verdict)
    finally:
        _flights.done(mine)
    left = []
    for key, event in theirs.items():  # the other thread waits at most as long as this one would
        event.wait(max(0.0, deadline - time.monotonic()) + QUEUE_WAIT_S)
        hit = verdict_cache.get(key)
        if hit is None:  # it failed (a timeout is never cached) or the cache is off: try here
            left.append(key[1:])
        else:
            verdicts[key[1:]] = hit
    if left:
        more, failure_left = _round_trip(target, left, deadline)
        verdicts.update(more)
        failure = failure or failure_left
    return verdicts, failure


def _round_trip(target: str, unique: list[tuple[str, str]], deadline: float) -> tuple[dict, str]:
    """One worker round trip for ``unique`` pairs: their verdicts in by ``deadline``, and the
    failure (``timeout``/``error``) of the rest."""
    results: list[tuple[str, bool]] = []
    failure = ""
    pool = workers.get_pool()
    # The budget is for grading: waiting for a free worker (other samples' turns, in verl's
    # executor threads) is bounded separately, so that concurrency never turns a right
    # answer into a timeout.  The process's first grades also wait for the workers to start.
    budget = max(0.0, deadline - time.monotonic())
    wait = QUEUE_WAIT_S if pool.warm else QUEUE_ALLOWANCE_S
    try:
        worker = pool.acquire(target, time.monotonic() + budget + wait, unique[0][0])
    except Exception:
        worker, failure = None, "error"
    deadline = time.monotonic() + budget
    if worker is None:
        failure = failure or "timeout"
    else:
        healthy = False
        try:
            worker.grade_many(unique, deadline, results)
            healthy = True
        except TimeoutError:
            failure = "timeout"
        except Exception:  # the worker died or wrote garbage
            failure = "error"
        finally:
            pool.release(worker, healthy)
    return dict(zip(unique, results)), failure
