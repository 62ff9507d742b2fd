"""The number path: a plain number with its unit, currency, ``%`` or degree sign, thousands
separators and decimal commas (``1,000 cm``, ``45^\\circ``, ``\\$5``, ``x = 3``, ``50\\%``), and
equality within a relative tolerance (``50%`` equals ``50`` and ``0.5``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .text import normalize_text

_NUMBER_RE = re.compile(r"^([-+−]?)(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?")
#: A decimal comma, read as math-verify reads it, where it cannot be a list: ``0,111``,
#: ``1,22``, ``1000,99`` (two decimals).  ``1,2`` stays a list of two answers and a group of
#: three digits after a nonzero integer part stays a thousands separator (``1,000``).
_DECIMAL_COMMA_RE = re.compile(r"^([-+−]?(?:0|\d+(?=,\d{2}(?![\d,]))|0)),(\d+)(?![\d,])")
_UNIT_WORD = r"[A-Za-zµ°]+(?:\^\{?-?\d\}?)?"
_SUFFIX_RE = re.compile(
    r"^\s*(?P<pct>\\?%|percent)?\s*(?P<deg>°|\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|degrees?)?"
    rf"\s*(?:{_UNIT_WORD}(?:\s*/\s*{_UNIT_WORD})?(?:\s+{_UNIT_WORD})*)?\s*$"
)
_CURRENCY_RE = re.compile(r"^(?:\\\$|\$|USD|US\$|€|£)\s*")
_LHS_RE = re.compile(r"^[A-Za-z]\w*\s*=\s*")
_SPACE_THOUSANDS_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:(?:\s|\\[,;!: ]|~|\{,\}|,\\!)\d{3})+(?![\d])")


def collapse_thousands(s: str) -> str:
    """``1 000``, ``1\\,000``, ``14{,}916`` -> ``1000`` (a space is never a decimal point)."""
    return _SPACE_THOUSANDS_RE.sub(lambda m: re.sub(r"\D", "", m.group(0)), s)



@dataclass(frozen=True)
class Number:
    value: float
    percent: bool


def parse_number(text: str) -> Number | None:
    """A plain number with optional unit, ``%`` or degree sign (``"1,000 cm"``, ``"45^\\circ"``), or None."""
    s = normalize_text(text)
    s = _LHS_RE.sub("", s)
    s = _CURRENCY_RE.sub("", s).replace("\\%", "%")
    s = collapse_thousands(s)
    s = _DECIMAL_COMMA_RE.sub(r"\1.\2", s)
    m = _NUMBER_RE.match(s)
    if not m or not (m.group(2) or m.group(3)):
        return None
    suffix = _SUFFIX_RE.match(s[m.end() :])
    if suffix is None:
        return None
    digits = (m.group(2) or "0").replace(",", "") + (m.group(3) or "")
    try:
        value = float(digits)
    except ValueError:
        return None
    if m.group(1) in ("-", "−"):
        value = -value
    return Number(value, percent=bool(suffix.group("pct")))


def numbers_equal(gold: Number, pred: Number, rel_tol: float) -> bool:
    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9)

    if close(gold.value, pred.value):
        return True
    if gold.percent != pred.percent:  # "50%" vs "0.5"
        scaled = gold.value / 100 if gold.percent else gold.value * 100
        return close(scaled, pred.value)
    return False
