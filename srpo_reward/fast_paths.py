"""The fast paths, in order, for one answer against the acceptable ground truths: multiple
choice, plain numbers, words, closed forms (:mod:`srpo_reward.numeric`).  :func:`prepare`
either decides (a :class:`~srpo_reward.grade.Grade`) or says which ``(gold, answer)`` pairs
math-verify must decide; :func:`combine` merges the verdicts over acceptable golds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from . import numeric
from .choices import MULTIPLE_CHOICE_TYPES, choice_letter, gold_choice_letter, option_letters
from .grade import Grade
from .guard import MAX_BOXES, MAX_MATH_CHARS
from .mathverify import boxed
from .plain_number import numbers_equal, parse_number
from .text import all_boxed, normalize_text

#: Words (``east``, ``isosceles triangle``): compared as words, never given to math-verify.
_WORDS_RE = re.compile(r"[A-Za-z]{3,}(?:[ -][A-Za-z]+)*")


@dataclass(frozen=True)
class Prepared:
    grade: Grade | None  # decided without math-verify
    tasks: tuple[tuple[str, str], ...] = ()  # (gold, pred) pairs for math-verify, any of them


def _fast(pred: str, boxes: list[str], gold: str, letters: str, options, answer_type, rel_tol) -> Grade | None:
    """The fast paths for one acceptable gold: a Grade, or None when math-verify must decide."""
    single = boxes[0] if len(boxes) == 1 else (pred if not boxes else None)
    gold_letter = gold_choice_letter(gold, options, letters)
    if answer_type in MULTIPLE_CHOICE_TYPES and gold_letter is None:
        return Grade(False, "gold_unparsable", "choice")
    if gold_letter is not None:
        named = {choice_letter(b, options, letters) for b in (boxes or [pred])}
        return Grade(named == {gold_letter}, "ok", "choice")
    if single is None:
        return None  # several boxed answers: math-verify reads them as a set
    if not single.strip():
        return Grade(False, "no_answer")
    gold_num = parse_number(gold)
    if gold_num is not None:
        pred_num = parse_number(single)
        if pred_num is not None:
            return Grade(numbers_equal(gold_num, pred_num, rel_tol), "ok", "number")
    gold_norm = normalize_text(gold)
    if _WORDS_RE.fullmatch(gold_norm):
        # Words ("east", "isosceles triangle"): math-verify would read them as products of
        # symbols, and "seat" would then equal "east".  Compare the words instead.
        return Grade(gold_norm.casefold() == normalize_text(single).casefold(), "ok", "text")
    # Closed-form numbers, tuples and intervals (fractions, roots, pi): their values settle
    # it where math-verify cannot disagree; anything else, or a near value, goes to it.
    verdict = numeric.compare(gold_norm, normalize_text(single))
    if verdict is not None:
        return Grade(verdict, "ok", "numeric")
    return None


def _mv_pred(pred: str, boxes: list[str]) -> str:
    if len(pred) <= MAX_MATH_CHARS or not boxes:
        return pred.strip()
    return " ".join(boxed(b) for b in boxes)  # a long block: only its boxed answers


def prepare(pred: Any, golds: tuple[str, ...], options, answer_type, rel_tol) -> Prepared:
    if not isinstance(pred, str) or not pred.strip():
        return Prepared(Grade(False, "no_answer"))
    if not golds:
        return Prepared(Grade(False, "gold_unparsable"))
    letters = option_letters(options, answer_type)
    boxes = all_boxed(pred)
    if len(boxes) > MAX_BOXES:
        return Prepared(Grade(False, "refused", "guard"))
    if boxes and not any(b.strip() for b in boxes):
        return Prepared(Grade(False, "no_answer"))
    if len(pred) > MAX_MATH_CHARS:  # the guard, before any regex: only the boxed answers count
        if not boxes or sum(map(len, boxes)) > MAX_MATH_CHARS:
            return Prepared(Grade(False, "refused", "guard"))
        pred = " ".join(boxed(b) for b in boxes)
    decided: list[Grade] = []
    tasks: list[tuple[str, str]] = []
    for gold in golds:
        if len(gold) > MAX_MATH_CHARS:
            decided.append(Grade(False, "refused", "guard"))
            continue
        g = _fast(pred, boxes, gold, letters, options, answer_type, rel_tol)
        if g is not None and g.correct:
            return Prepared(g)
        if g is None:
            tasks.append((gold, _mv_pred(pred, boxes)))
        else:
            decided.append(g)
    if tasks:
        return Prepared(None, tuple(tasks))
    ok = [g for g in decided if g.status == "ok"]
    return Prepared((ok or decided)[0])


def combine(grades: Sequence[Grade]) -> Grade:
    """Any acceptable gold that matches wins; else the most informative failure."""
    for g in grades:
        if g.correct:
            return g
    for status in ("ok", "timeout", "error", "refused", "gold_unparsable"):
        for g in grades:
            if g.status == status:
                return g
    return grades[0]
