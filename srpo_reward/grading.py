"""Is an extracted answer correct?  The grader's front: :func:`grade_answer` and
:func:`grade_answers`; fast paths first, then math-verify under a hard time limit.

Order (``SRPO_SPEC.md``, "Answer grading"):

1. multiple choice (:mod:`~srpo_reward.choices`): the ground truth is one letter A-E (A-J,
   or one letter per option, when the data gives the options or says it is multiple
   choice), or an option text when the options are known; the answer must name exactly
   one option letter;
2. numbers (:mod:`~srpo_reward.plain_number`): numeric equality with a relative
   tolerance; units, thousands separators and a trailing degree or percent sign are handled;
   words are compared as words; closed forms (:mod:`~srpo_reward.numeric`) by their values
   where math-verify cannot disagree;
3. everything else: math-verify (:mod:`~srpo_reward.mathverify`),
   ``verify(parse(gold), parse(pred))``, gold first, after the guard
   (:mod:`~srpo_reward.guard`), with a verdict cache (:mod:`~srpo_reward.verdicts`), in
   killable worker processes (:mod:`~srpo_reward.workers`).

Ground truths are read by :func:`~srpo_reward.ground_truth.normalize_ground_truth`;
:mod:`~srpo_reward.fast_paths` holds the order above for one answer.  :func:`grade_answer`
never raises and never hangs; failures are a ``Grade`` with a status other than ``"ok"``,
and score 0.  The names other code imports from this module stay importable here.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from .choices import MULTIPLE_CHOICE_TYPES, choice_letter, gold_choice_letter, option_letters
from .fast_paths import combine, prepare
from .grade import ERROR_STATUSES, Grade
from .ground_truth import MAX_GOLD_ALTERNATIVES, normalize_ground_truth
from .guard import MAX_BOXES, MAX_MATH_CHARS, guard_reason
from .mathverify import math_verify_grade, warm_up
from .plain_number import Number, numbers_equal, parse_number
from .text import all_boxed, normalize_text
from .verdicts import run_math_verify, verdict_cache
from .workers import shutdown_pool

__all__ = [
    "ERROR_STATUSES",
    "MAX_BOXES",
    "MAX_GOLD_ALTERNATIVES",
    "MAX_MATH_CHARS",
    "MULTIPLE_CHOICE_TYPES",
    "Grade",
    "Number",
    "all_boxed",
    "choice_letter",
    "gold_choice_letter",
    "grade_answer",
    "grade_answers",
    "guard_reason",
    "math_verify_grade",
    "normalize_ground_truth",
    "normalize_text",
    "numbers_equal",
    "option_letters",
    "parse_number",
    "shutdown_pool",
    "verdict_cache",
    "warm_up",
]


def grade_answers(
    preds: Sequence[str | None],
    gold: Any,
    timeout: float = 1.0,
    *,
    options: Sequence[str] | None = None,
    answer_type: str | None = None,
    rel_tol: float = 1e-4,
) -> list[Grade]:
    """Grade several answers against one ground truth within ONE time budget of ``timeout``
    seconds in all (a sample's two answers: one worker round trip, one deadline).

    ``gold`` may be a list of acceptable answers (any of them counts).  Never raises.
    """
    deadline = time.monotonic() + timeout
    try:
        golds = normalize_ground_truth(gold)
        prepared = [prepare(p, golds, options, answer_type, rel_tol) for p in preds]
        tasks = [t for p in prepared for t in p.tasks]
        verdicts = dict(zip(tasks, run_math_verify(tasks, deadline))) if tasks else {}
        return [p.grade if p.grade is not None else combine([verdicts[t] for t in p.tasks]) for p in prepared]
    except Exception:  # a grader bug must never take a training step down
        return [Grade(False, "error") for _ in preds]


def grade_answer(
    pred: str | None,
    gold: Any,
    timeout: float = 1.0,
    *,
    options: Sequence[str] | None = None,
    answer_type: str | None = None,
    rel_tol: float = 1e-4,
) -> Grade:
    """Grade ``pred`` (an answer, or a raw answer block) against ``gold``.  Never raises,
    never runs longer than about ``timeout`` seconds.

    ``options`` (the option texts, in order A, B, ...) and ``answer_type``
    (``"multiple_choice"`` forces the choice rule) come from ``extra_info`` when
    the data carries them.  ``gold`` may be a list of acceptable answers.
    """
    return grade_answers([pred], gold, timeout, options=options, answer_type=answer_type, rel_tol=rel_tol)[0]
