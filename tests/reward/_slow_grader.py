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
