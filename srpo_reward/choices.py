"""The multiple-choice path: which option letters a question has, the one letter an answer
names (``B``, ``(B)``, ``B.``, ``Option B: ...``, ``The answer is B``, or the option's text),
and the gold's letter.  An answer naming several letters (``A or B``) names none."""

from __future__ import annotations

import functools
import re
from typing import Sequence

from .text import normalize_text

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_letters(options: Sequence[str] | None = None, answer_type: str | None = None) -> str:
    """The letters a question's options can have: one per known option (MMMU-Pro has up to
    ten, A-J), else A-E, or A-J when the data says it is multiple choice."""
    if options:
        return _ALPHABET[: max(2, min(len(options), len(_ALPHABET)))]
    return _ALPHABET[:10] if answer_type in MULTIPLE_CHOICE_TYPES else _ALPHABET[:5]


MULTIPLE_CHOICE_TYPES = ("multiple_choice", "choice")


@functools.lru_cache(maxsize=32)
def _choice_patterns(letters: str) -> tuple[re.Pattern, re.Pattern, re.Pattern, re.Pattern, re.Pattern]:
    cls = f"[{letters}]"
    only = re.compile(rf"^\(?\s*({cls})\s*\)?\s*[.:)]?$", re.IGNORECASE)
    # "Option B ...", "the answer is B", "(B) ...", "B. ...", "B: ...", "B) ..."; a bare letter
    # followed by a space is not enough ("A right triangle" names no option).
    prefix = re.compile(
        r"^(?:(?:(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:：]?\s*)"
        rf"(?-i:\(?({cls})\)?)(?=[.:)\s]|$)|(?-i:\(({cls})\)|({cls})(?=[.:)]|$)))",
        re.IGNORECASE,
    )
    paren = re.compile(rf"\(({cls})\)")
    conj = re.compile(rf"\b({cls})\s*(?:,|or|and|/|&)\s*\(?({cls})\b")
    gold = re.compile(rf"\(?({cls})\)?\.?")
    return only, prefix, paren, conj, gold


def _option_text_letter(s: str, options: Sequence[str] | None, letters: str) -> str | None:
    if not options:
        return None
    key = s.casefold()
    hits = [letters[i] for i, opt in enumerate(options[: len(letters)]) if normalize_text(str(opt)).casefold() == key]
    return hits[0] if len(hits) == 1 else None


def choice_letter(text: str, options: Sequence[str] | None = None, letters: str | None = None) -> str | None:
    """The one option letter an answer names, or None when it names none or several."""
    letters = letters or option_letters(options)
    only, prefix, paren, conj, _ = _choice_patterns(letters)
    s = normalize_text(text)
    m = only.match(s)
    if m:
        return m.group(1).upper()
    m = prefix.match(s)
    if m:
        named = {next(g for g in m.groups() if g)}
        named.update(paren.findall(s))
        for a, b in conj.findall(s):
            named.update((a, b))
        return named.pop() if len(named) == 1 else None
    return _option_text_letter(s, options, letters)


def gold_choice_letter(gold: str, options: Sequence[str] | None = None, letters: str | None = None) -> str | None:
    """The gold's option letter: a lone option letter, or an option text when the options are known."""
    letters = letters or option_letters(options)
    s = normalize_text(gold)
    m = _choice_patterns(letters)[4].fullmatch(s)
    if m:
        return m.group(1)
    return _option_text_letter(s, options, letters)
