""":class:`Grade`, the verdict on one answer and how it was reached, and the statuses that
count as a grading failure.  Every module of the grader returns it; nothing here computes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grade:
    correct: bool
    #: ``ok``, ``no_answer``, ``gold_unparsable``, ``timeout``, ``error`` or ``refused``
    #: (the guard kept a pathological answer from math-verify).
    status: str
    #: ``choice``, ``number``, ``text``, ``numeric``, ``math_verify``, ``guard`` or ``none``.
    method: str = "none"


#: Grade statuses that count as a grading failure (``grade_error`` in the reward).
ERROR_STATUSES = ("timeout", "error", "refused")
