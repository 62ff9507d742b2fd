"""Grade one rollout: format, first and final answer, transition, lengths.

Uses ``srpo_reward``'s own parser (:func:`srpo_reward.format.parse_response`)
and length unit (:func:`srpo_reward.length.count_units`); answers are judged
by each benchmark's official rule (:mod:`srpo_eval.official`, which uses
``srpo_reward``'s grader wherever the rules agree).

Transitions are defined for every response, so the four cells add up to the
number of responses.  Only a well-formed response has two attempts; any other
response has one answer, its last ``<answer>`` block (or the judge's extraction
when it has none), and counts as right-right or wrong-wrong: an ``<answer>``
hidden in a ``<think>`` is never a "first answer" that a reflection fixed.
This keeps ``acc_first = (RR + RW) / n`` and ``acc_final = (RR + WR) / n``.
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
    #: Official rule that decided the final answer (see :class:`srpo_eval.official.Verdict`).
    final_rule: str = "none"
    #: Where the graded answer came from: ``tags`` (the ``<answer>`` blocks), ``judge`` or ``none``.
    answer_source: str = "tags"
    #: Well-formed and A2 differs from A1 (as text, spaces ignored).
    answer_changed: bool = False
    #: The policy's own token count of the response, when the rollout carries it.
    response_tokens: int | None = None

    @property
    def transition(self) -> str:
        return ("right" if self.first_correct else "wrong") + "_" + ("right" if self.final_correct else "wrong")


def grade(pred: str | None, item: DataItem, timeout: float = 5.0) -> tuple[bool, str]:
    """(correct, status) for one extracted answer, by the benchmark's official rule."""
    from srpo_eval.official import official_verdict

    v = official_verdict(pred, item, timeout)
    return v.correct, v.status


def usable_answer(text: str) -> str | None:
    """The answer the rules grade: A2 of a well-formed response, else the last ``<answer>`` block's."""
    from srpo_reward.format import parse_response

    parsed = parse_response(text)
    return parsed.final_answer if parsed.final_answer else None


def score_rollout(
    rollout: Rollout,
    item: DataItem,
    unit: str = "approx_tokens",
    timeout: float = 5.0,
    judged_answer: str | None = None,
) -> SampleResult:
    """Grade one usable rollout (``rollout.response`` is a string) against its question.

    ``judged_answer`` (the judge's extraction) is used only when the response has no
    ``<answer>`` block with content.
    """
    from srpo_eval.official import official_verdict
    from srpo_reward.format import parse_response
    from srpo_reward.length import count_units

    text = rollout.response or ""
    parsed = parse_response(text)
    source = "tags"
    if parsed.ok:
        first_pred, final_pred = parsed.first_answer, parsed.final_answer
    else:
        final_pred = parsed.final_answer or None
        if final_pred is None and judged_answer:
            final_pred, source = judged_answer, "judge"
        elif final_pred is None:
            source = "none"
        first_pred = final_pred
    final_v = official_verdict(final_pred, item, timeout)
    first_v = final_v if not parsed.ok else official_verdict(first_pred, item, timeout)
    first_ok, first_status = first_v.correct, first_v.status
    final_ok, final_status = final_v.correct, final_v.status
    changed = bool(parsed.ok and (first_pred or "").replace(" ", "") != (final_pred or "").replace(" ", ""))
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
        has_first_answer=first_pred is not None,
        truncated=truncated,
        first_status=first_status,
        final_status=final_status,
        len_total=count_units(text, unit),
        len_first=count_units(parsed.first_attempt, unit) if parsed.ok and parsed.first_attempt else None,
        len_reflection=count_units(parsed.reflection, unit) if parsed.ok and parsed.reflection else None,
        first_answer=first_pred,
        final_answer=final_pred,
        final_rule=final_v.rule,
        answer_source=source,
        answer_changed=changed,
        response_tokens=rollout.response_tokens,
    )
