"""A grading function that never finishes in time, for the time-limit tests.

The grading workers import it by name (``tests.reward._slow_grader:sleepy_grade``
is not a package path, so the tests put this folder on ``sys.path``).
"""

import time


def sleepy_grade(gold: str, pred: str) -> tuple[str, bool]:
    time.sleep(3600)
    return "ok", True


def crashing_grade(gold: str, pred: str) -> tuple[str, bool]:
    import os

    os._exit(3)


def steady_grade(gold: str, pred: str) -> tuple[str, bool]:
    """Takes 0.3 s per answer and says "equal": a worker that is slow but always in time."""
    time.sleep(0.3)
    return "ok", True


def instant_grade(gold: str, pred: str) -> tuple[str, bool]:
    """Answers at once: a sample's verdicts reach the parent's pipe together."""
    return "ok", pred == gold


def hang_on_cube_grade(gold: str, pred: str) -> tuple[str, bool]:
    """Never finishes on an answer with ``\\sin^3``; says "equal" at once to any other: a stuck
    worker and a working one tell apart."""
    if "\\sin^3" in pred:
        time.sleep(3600)
    return "ok", True


def gated_grade(gold: str, pred: str) -> tuple[str, bool]:
    """On an answer with ``\\sin^3``: creates the file ``$SRPO_TEST_STARTED``, then waits until the
    test creates ``$SRPO_TEST_GATE`` (an event the test controls, not a duration).  Says "equal"
    to every answer."""
    import os
    from pathlib import Path

    if "\\sin^3" in pred:
        Path(os.environ["SRPO_TEST_STARTED"]).touch()
        gate = Path(os.environ["SRPO_TEST_GATE"])
        for _ in range(60_000):  # at most 10 minutes
            if gate.exists():
                break
            time.sleep(0.01)
    return "ok", True
