"""Grade one rollout: format, first and final answer, transition, lengths.

Uses ``srpo_reward``'s own parser (:func:`srpo_reward.format.parse_response`),
grader (:func:`srpo_reward.grading.grade_answer`, given the question's
``answer_type`` and ``options`` from ``extra_info``) and length unit
(:func:`srpo_reward.length.count_units`), so the report agrees with the
training reward.

Transitions are defined for every response, so the four cells add up to the
number of responses: a response with one ``<answer>`` has first = final answer
(right-right or wrong-wrong), one with none is wrong-wrong.  This keeps
``acc_first = (RR + RW) / n`` and ``acc_final = (RR + WR) / n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from srpo_eval.data import DataItem
from srpo_eval.rollouts import Rollout

#: Cell names of the transition matrix: first answer right/wrong, then final answer right/wrong.
TRANSITIONS = ("right_right", "wrong_right", "right_wrong", "wrong_wrong")

#: Parse failures that look like a response cut off by the token limit.
CUT_OFF_REASONS = frozenset({"unclosed_tag"})


@dataclass(frozen=True)
class SampleResult:
    """Everything the report needs about one graded response."""

    id: str
    benchmark: str
    sample: int
    format_ok: bool
    format_reason: str
    first_correct: bool
    final_correct: bool
    has_first_answer: bool
    #: ``finish_reason == "length"``, or (when the finish reason is unknown) an unclosed tag.
    truncated: bool
    #: Grade statuses of the first and final answers (``ok``, ``no_answer``, ``timeout``, ...).
    first_status: str
    final_status: str
    len_total: int
    #: First attempt (T1 + A1) and reflection lengths; None when the format is invalid.
    len_first: int | None
    len_reflection: int | None
    first_answer: str | None
    final_answer: str | None

    @property
    def transition(self) -> str:
        return ("right" if self.first_correct else "wrong") + "_" + ("right" if self.final_correct else "wrong")


def grade(pred: str | None, item: DataItem, timeout: float = 5.0) -> tuple[bool, str]:
    """(correct, status) for one extracted answer, with the question's answer type."""
    from srpo_reward.grading import grade_answer

    g = grade_answer(
        pred,
        item.ground_truth,
        timeout,
        options=list(item.options) or None,
        answer_type=item.answer_type,
    )
    return g.correct, g.status


def score_rollout(rollout: Rollout, item: DataItem, unit: str = "approx_tokens", timeout: float = 5.0) -> SampleResult:
    """Grade one usable rollout (``rollout.response`` is a string) against its question."""
    from srpo_reward.format import parse_response
    from srpo_reward.length import count_units

    text = rollout.response or ""
    parsed = parse_response(text)
    first_ok, first_status = grade(parsed.first_answer, item, timeout)
    if parsed.num_answers <= 1:
        final_ok, final_status = first_ok, first_status
    else:
        final_ok, final_status = grade(parsed.final_answer, item, timeout)
    if rollout.finish_reason is not None:
        truncated = rollout.finish_reason == "length"
    else:
        truncated = parsed.reason in CUT_OFF_REASONS
    return SampleResult(
        id=item.id,
        benchmark=item.benchmark,
        sample=rollout.sample,
        format_ok=parsed.ok,
        format_reason=parsed.reason,
        first_correct=first_ok,
        final_correct=final_ok,
        has_first_answer=parsed.first_answer is not None,
        truncated=truncated,
        first_status=first_status,
        final_status=final_status,
        len_total=count_units(text, unit),
        len_first=count_units(parsed.first_attempt, unit) if parsed.ok and parsed.first_attempt else None,
        len_reflection=count_units(parsed.reflection, unit) if parsed.ok and parsed.reflection else None,
        first_answer=parsed.first_answer,
        final_answer=parsed.final_answer,
    )
