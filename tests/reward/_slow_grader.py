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
