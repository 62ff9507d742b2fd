"""The grading workers: math-verify in a small pool of subprocesses
(``python -m srpo_reward._grader_worker TARGET``), killable, so that a hard time limit works
from any thread, in Ray workers, and after the caller was pickled.

A worker that passes its deadline is killed and replaced at once (its start overlaps other
work).  The pool starts on first need, ``SRPO_GRADER_WORKERS`` workers (default
:data:`DEFAULT_WORKERS`), and a forked child starts its own; a group's answers go to the worker
that parsed its gold when it is free.  :mod:`srpo_reward.verdicts` decides what is sent; this
module only moves tasks and verdicts.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from typing import Sequence

#: Worker processes for math-verify; override with ``SRPO_GRADER_WORKERS``.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Ground truths the pool remembers per worker (a worker keeps 4096 gold parses).
GOLDS_REMEMBERED = 256


class Worker:
    """One ``python -m srpo_reward._grader_worker`` subprocess, used by one thread at a time.

    Started without waiting: it imports math-verify while the pool hands out other workers,
    and reports ``{"ready": true}`` when it can take tasks.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        env = dict(os.environ)
        # The child imports what the parent can import (like multiprocessing's spawn does).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "srpo_reward._grader_worker", target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.ready = False
        self._buf = b""  # bytes read from the worker's stdout, not yet a whole line
        #: Ground truths this worker was given lately (it keeps their parses): the pool gives a
        #: group's later answers to the same worker when it is free, so the gold is parsed once.
        self.golds: OrderedDict[str, None] = OrderedDict()

    def remember(self, gold: str | None) -> None:
        if gold is not None:
            self.golds[gold] = None
            self.golds.move_to_end(gold)
            while len(self.golds) > GOLDS_REMEMBERED:
                self.golds.popitem(last=False)

    def _readline(self, deadline: float) -> str | None:
        """One line from the worker, ``""`` if it died, or None when the deadline passes.

        Reads the pipe's file descriptor itself: a buffered reader may already hold the
        next line when ``select`` reports the pipe empty (two results written at once),
        which would wait for a line that has already arrived."""
        fd = self.proc.stdout.fileno()  # never read through self.proc.stdout's buffer
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line, self._buf = self._buf[: end + 1], self._buf[end + 1 :]
                return line.decode("utf-8", "replace")
            left = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(0.0, left))
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return ""  # the worker died
                self._buf += chunk
                continue
            if left <= 0:
                return None

    def poll_ready(self) -> bool:
        """True once the worker has reported ready (never blocks); raises if it died starting."""
        if not self.ready:
            line = self._readline(0.0)
            if line == "":
                raise RuntimeError("grading worker died while starting")
            self.ready = line is not None
        return self.ready

    def grade_many(self, tasks: Sequence[tuple[str, str]], deadline: float, results: list) -> None:
        """Grade ``(gold, pred)`` pairs in one round trip; appends ``(status, correct)`` to
        ``results`` as they arrive.  Raises ``TimeoutError`` at ``deadline``."""
        self.proc.stdin.write((json.dumps({"tasks": [list(t) for t in tasks]}) + "\n").encode())
        self.proc.stdin.flush()
        for _ in tasks:
            line = self._readline(deadline)
            if line is None:
                raise TimeoutError
            if not line:
                raise RuntimeError("grading worker died")
            resp = json.loads(line)
            results.append((str(resp["status"]), bool(resp["correct"])))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except Exception:
                pass


class WorkerPool:
    """``size`` workers, all started on first use; a thread takes an idle ready one and gives
    it back.  A killed worker is replaced at once, so its start overlaps other work."""

    #: Seconds between checks for a starting worker that became ready.
    POLL_S = 0.005

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[Worker] = []
        self.count = 0
        self.cond = threading.Condition()
        self.pid = os.getpid()
        #: Set once every worker was ready: until then the pool is cold (the workers import
        #: sympy, competing for the CPU) and callers wait longer.
        self.warm = False

    def _fill(self, target: str) -> None:
        while self.count < self.size:
            self.idle.append(Worker(target))
            self.count += 1

    def acquire(self, target: str, deadline: float, gold: str | None = None) -> Worker | None:
        """An idle ready worker, or None if none is free by ``deadline``: one that was given
        ``gold`` before if there is one among the idle ready workers."""
        with self.cond:
            while True:
                self._fill(target)
                usable: list[Worker] = []
                for worker in list(self.idle):
                    try:
                        ok = worker.target == target and worker.alive() and worker.poll_ready()
                    except Exception:
                        ok = False
                    if ok:
                        usable.append(worker)
                    elif worker.target != target or not worker.alive():
                        self.idle.remove(worker)
                        worker.kill()
                        self.count -= 1
                if usable:
                    worker = next((w for w in usable if gold in w.golds), usable[0])
                    self.idle.remove(worker)
                    self.warm = self.warm or all(w.ready for w in self.idle)
                    worker.remember(gold)
                    return worker
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                # Idle but not ready: a starting worker, polled.  None idle: every worker is
                # busy, and the release of one notifies.
                self.cond.wait(min(left, self.POLL_S) if self.idle else left)

    def release(self, worker: Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self.cond:
            if healthy:
                self.idle.append(worker)
            else:
                self.count -= 1
                try:
                    self._fill(worker.target)
                except Exception:
                    pass
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            workers, self.idle = self.idle, []
            self.count -= len(workers)
        for worker in workers:
            worker.kill()


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # a forked child starts its own workers
            size = int(os.environ.get("SRPO_GRADER_WORKERS", DEFAULT_WORKERS))
            _pool = WorkerPool(max(1, size))
        return _pool


def shutdown_pool() -> None:
    """Stop the idle worker processes (also registered with ``atexit``)."""
    with _pool_lock:
        if _pool is not None and _pool.pid == os.getpid():
            _pool.close()


atexit.register(shutdown_pool)
