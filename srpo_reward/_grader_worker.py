"""A grading worker process: reads JSON requests on stdin, writes JSON results on stdout.

Started by :mod:`srpo_reward.workers` as ``python -m srpo_reward._grader_worker TARGET``
(TARGET = ``module:function``, called as ``function(gold, pred) -> (status, correct)``).
A request is ``{"tasks": [[gold, pred], ...]}`` (a sample's answers in one round trip);
the worker writes one result line per task as soon as it has it, so the parent keeps
the verdicts that arrived before a time limit.
A plain subprocess rather than ``multiprocessing``: spawn/forkserver re-import the
parent's ``__main__`` (a user's training script) in the child, which this avoids.
The parent enforces the time limit by killing this process.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys


def main(target: str) -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # anything the graded code prints must not corrupt the protocol
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:  # warm the heavy imports so they do not count against the first task's limit
        from srpo_reward.mathverify import warm_up

        warm_up()
    except Exception:
        pass
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            tasks = json.loads(line)["tasks"]
        except Exception:
            tasks = [None]
        for task in tasks:
            try:
                status, correct = func(task[0], task[1])
                resp = {"status": str(status), "correct": bool(correct)}
            except Exception as exc:  # reported to the parent as an "error" grade
                resp = {"status": "error", "correct": False, "error": type(exc).__name__}
            out.write(json.dumps(resp) + "\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
