"""The guard: cheap checks (linear in the text's length) that keep what makes sympy slow away
from math-verify (power towers, huge literals, exponents and factorials, deep nesting, box
sprays, very long answers).  An answer or ground truth it refuses is graded wrong with status
``refused``; the worker time limit stays the last line of defence."""

from __future__ import annotations

import math
import re

#: Answers longer than this (characters) are not given to math-verify whole (only their
#: boxed answers, or nothing): parsing cost grows with length.  math-verify takes about
#: 5 ms on an 11,000-character solution from its own regression tables.
MAX_MATH_CHARS = 16000
#: More ``\boxed{}`` than this in one answer: not an answer, a spray.
MAX_BOXES = 20
#: Bracket nesting deeper than this: sympy's parser recurses per level.
MAX_NESTING = 40
#: A literal integer with more digits, an exponent above this, a factorial above this,
#: or a tower of more powers than this makes sympy compute numbers with millions of digits.
MAX_DIGITS = 200
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1_000
MAX_POWER_CHAIN = 2

_POW_RE = re.compile(r"\^\s*\{?\s*\(?\s*(\d+)")
_FACT_RE = re.compile(r"(\d+)\s*\}?\s*\)?\s*!")
_FACT_CMD_RE = re.compile(r"\\(?:factorial|Gamma)\b|\\binom\s*\{\s*\d{5,}")
_DIGITS_RE = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))
_POW2_RE = re.compile(r"\^\s*\{\s*\(?\s*(\d+)\s*\)?\s*\^\s*\{?\s*(\d+)")
#: ``a^{b^{c^..}}``, ``a^{b^c^d}``, ``a^b^c^d`` or ``2**3**4**5``: three stacked powers.
_POW_CHAIN_RE = re.compile(
    r"\^\s*\{[^{}]*\^\s*\{?[^{}]*\^|\^\s*\w+\s*\^\s*\w+\s*\^|\d\s*\*\*\s*\(?\s*\d+\s*\*\*\s*\(?\s*\d+\s*\*\*"
)


def _max_nesting(s: str) -> int:
    depth = best = 0
    for ch in s:
        if ch in "{([":
            depth += 1
            if depth > best:
                best = depth
        elif ch in "})]" and depth:
            depth -= 1
    return best


def guard_reason(s: str) -> str | None:
    """Why math-verify must not see ``s`` (an answer or a ground truth), or None.

    Cheap (linear in ``len(s)``) checks for what makes sympy slow: huge literals,
    exponents and factorials, power towers, deep nesting, very long or box-sprayed
    answers.  A refused answer is graded wrong with status ``refused``.
    """
    if len(s) > MAX_MATH_CHARS:
        return "too_long"
    if s.count("\\boxed") + s.count("\\fbox") > MAX_BOXES:
        return "too_many_boxes"
    if _max_nesting(s) > MAX_NESTING:
        return "too_deep"
    if _DIGITS_RE.search(s):
        return "huge_number"
    if any(int(m.group(1)) > MAX_EXPONENT for m in _POW_RE.finditer(s) if len(m.group(1)) < 12) or any(
        len(m.group(1)) >= 12 for m in _POW_RE.finditer(s)
    ):
        return "huge_exponent"
    if any(len(m.group(1)) > 6 or int(m.group(1)) > MAX_FACTORIAL for m in _FACT_RE.finditer(s)):
        return "huge_factorial"
    if _FACT_CMD_RE.search(s):
        return "huge_factorial"
    if _POW_CHAIN_RE.search(s):
        return "power_tower"
    for m in _POW2_RE.finditer(s):  # 9^{9^{9}}: the inner power is the exponent
        base, exp = int(m.group(1)[:12]), int(m.group(2)[:12])
        if base > 1 and exp * math.log10(base) > math.log10(MAX_EXPONENT):
            return "power_tower"
    return None
