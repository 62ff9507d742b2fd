"""The closed-form fast path: values of numeric answers (``\\frac{5}{\\sqrt{2}}``, ``2\\sqrt{3}``,
``\\pi/6``, ``(2, -3)``, ``[-1, 3)``, ``(-\\infty, 2]``, ``\\{1, 3\\}``, ``\\frac{\\sqrt{3}}{4}a^2``)
and :func:`compare`, a verdict that never contradicts math-verify.

math-verify parses every answer with an ANTLR LaTeX grammar whose prediction costs a few
milliseconds per answer even when warm; most RL ground truths are numbers written with
fractions, roots and pi, which :mod:`srpo_reward.numeric_reader` evaluates in microseconds.
Tuples and intervals of such numbers (an endpoint may be ``\\infty``) and sets of them are read
here.  Expressions in one-letter variables are compared by their exact values at three fixed
rational points (:data:`_POINTS`; pi is one more variable there, square roots of constants
are exact :class:`~srpo_reward.surd.Surd` numbers; a root of a variable is refused).  Any
other token (``e``, ``i``, a word, ``\\circ``, a comma outside a tuple) gives None, and
math-verify decides; so does an answer ending in one of math-verify's unit letters
(:data:`MATH_VERIFY_SHORT_UNITS`).

:func:`compare` decides only where math-verify cannot disagree: equal when the values agree
to 1e-9 (relative), different when they differ by more than 1e-3 of the larger magnitude (and
of 1: math-verify rounds decimals to 6 places), and None in between.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass
from fractions import Fraction

from .numeric_reader import VARIABLES, scalar, tokenize
from .surd import Surd, Unsupported

#: Longest answer read (characters).
MAX_CHARS = 200
#: Exact points at which expressions in variables are compared: two polynomials (or rational
#: functions) of modest degree that agree at all of them are identical.
#: pi is one more variable there (it is transcendental, so an identity in x and pi holds
#: for the real pi exactly when it holds as a formal one).
_POINTS = tuple(
    {v: Fraction(1_000_003 + 7919 * k * (j + 1), 97 + j + 13 * k) for j, v in enumerate(sorted(VARIABLES) + ["\\pi"])}
    for k in range(3)
)
_CMD_RE = re.compile(r"\\[A-Za-z]+")
_WORD_RE = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class Polynomial:
    """An expression in variables (with pi and square roots of constants), as its exact
    values at :data:`_POINTS` (fractions, or :class:`Surd` numbers where pi or a root enters)."""

    values: tuple[Fraction | Surd, ...]


@dataclass(frozen=True)
class NumberSet:
    """A set of closed-form numbers, ``\\{1, \\frac{1}{2}\\}``."""

    values: tuple[float, ...]


#: ``\{...\}`` (also ``\left\{...\right\}``) with no brace-set inside.
_SET_RE = re.compile(r"(?:\\left\s*)?\\\{(?P<inner>(?:(?!\\[{}]).)*?)(?:\\right\s*)?\\\}", re.S)
_INFINITY = {("\\infty",): math.inf, ("+", "\\infty"): math.inf, ("-", "\\infty"): -math.inf}


def _endpoint(tokens: list[str]) -> float:
    """An interval's endpoint: a closed-form number or (+/-) ``\\infty``."""
    return _INFINITY.get(tuple(tokens)) or scalar(tokens)


def _split_top(tokens: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for tok in tokens:
        if tok in ("(", "{", "["):
            depth += 1
        elif tok in (")", "}", "]"):
            depth -= 1
        if tok == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return parts


def value_of(text: str) -> float | Polynomial | NumberSet | tuple[str, tuple[float, ...], str] | None:
    """The value of a closed-form numeric answer, a :class:`Polynomial` for an expression
    in variables, a tuple/interval as ``(open, values, close)`` (the bracket at an infinite
    endpoint is always open: math-verify reads ``[-\\infty, 3]`` as ``(-\\infty, 3]``), a
    :class:`NumberSet`, or None when it is outside the subset this module reads."""
    s = text.strip().strip("$").strip()
    if not s or len(s) > MAX_CHARS:
        return None
    return _value_of(s)


@functools.lru_cache(maxsize=4096)  # a group's ground truth is read for each of its answers
def _value_of(s: str) -> float | Polynomial | NumberSet | tuple[str, tuple[float, ...], str] | None:
    if _WORD_RE.search(_CMD_RE.sub(" ", s)):
        return None  # a word is prose or a unit, not a product of variables
    try:
        braced = _SET_RE.fullmatch(s)
        if braced is not None:
            tokens = tokenize(braced.group("inner"))
            if not tokens:
                return None  # the empty set: math-verify decides
            return NumberSet(tuple(scalar(p) for p in _split_top(tokens)))
        tokens = tokenize(s)
        if not tokens or "=" in tokens:
            return None
        if any(t in VARIABLES for t in tokens):
            if "," in tokens:
                return None
            return Polynomial(tuple(scalar(tokens, env) for env in _POINTS))
        if tokens[0] in ("(", "[") and tokens[-1] in (")", "]") and "," in tokens:
            parts = _split_top(tokens[1:-1])
            if len(parts) == 2:  # an interval or a point: an endpoint may be infinite
                lo, hi = _endpoint(parts[0]), _endpoint(parts[1])
                opening = "(" if math.isinf(lo) else tokens[0]
                closing = ")" if math.isinf(hi) else tokens[-1]
                return opening, (lo, hi), closing
            if len(parts) > 2:
                return tokens[0], tuple(scalar(p) for p in parts), tokens[-1]
        if "," in tokens:
            return None
        return scalar(tokens)
    except (Unsupported, ArithmeticError, ValueError, TypeError, RecursionError):
        return None


def _close(a: float, b: float) -> bool | None:
    if math.isinf(a) or math.isinf(b):
        return a == b
    diff = abs(a - b)
    scale = max(1.0, abs(a), abs(b))
    if diff <= 1e-9 * scale:
        return True
    if diff > 1e-3 * scale:
        return False
    return None


#: math-verify (through latex2sympy2_extended 1.11's ``units_regex``) strips a trailing unit
#: after a digit, ``}`` or a space: ``\\pi r^{2} h`` is ``\\pi r^{2}`` (hours) and ``x+2t`` is
#: ``x+2`` to it.  These are its units that this module could read as variables (one or two
#: letters; longer words are refused anyway), with its optional plural ``s``; an answer that
#: ends in one goes to math-verify, so the fast path never contradicts that reading.
MATH_VERIFY_SHORT_UNITS = (
    "ab am bc by c cc cm d dm ft g gm h hr kg km l lb lt m mm mp mt o pm rd rs s sq st t th yr".split()
)
_TRAILING_UNIT_RE = re.compile(r"(?:\d|\}|\s)\s*(?:%s)s?\s*$" % "|".join(sorted(MATH_VERIFY_SHORT_UNITS, key=len, reverse=True)))

_ASSIGNMENT_RE = re.compile(r"^\s*([a-z])\s*=([^=]*)$")


def _split_assignment(s: str) -> tuple[str | None, str] | None:
    """``("y", "2x+1")`` for ``y=2x+1``, ``(None, s)`` without ``=``, None for anything else."""
    if "=" not in s:
        return None, s
    m = _ASSIGNMENT_RE.match(s.strip().strip("$"))
    if m is None or m.group(1) not in VARIABLES:
        return None
    return m.group(1), m.group(2)


def compare(gold: str, pred: str) -> bool | None:
    """True/False when both are closed-form answers whose values settle it, else None.

    Equations follow math-verify: ``y=2x+1`` against ``y = 1 + 2x`` compares the right
    sides, against ``x=2x+1`` is different, against a bare ``2x+1`` compares the right side."""
    if _TRAILING_UNIT_RE.search(gold) or _TRAILING_UNIT_RE.search(pred):
        return None  # math-verify drops a trailing unit-like letter (``2t`` is 2 to it)
    g_side, p_side = _split_assignment(gold), _split_assignment(pred)
    if g_side is None or p_side is None:
        return None
    (g_var, gold), (p_var, pred) = g_side, p_side
    if p_var is not None and g_var is None:
        return None  # math-verify reads a relation against a bare gold its own way
    g = value_of(gold)
    if g is None:
        return None
    p = value_of(pred)
    if p is None:
        return None
    if g_var is not None and p_var is not None and g_var != p_var:
        return False  # x=1 is not y=1
    if type(g) is not type(p):
        return None  # a number against a tuple: math-verify's reading of either may differ
    if isinstance(g, Polynomial):
        return g == p
    if isinstance(g, float):
        return _close(g, p)  # type: ignore[arg-type]
    if isinstance(g, NumberSet):
        return _compare_sets(g.values, p.values)  # type: ignore[union-attr]
    (g_open, g_vals, g_close), (p_open, p_vals, p_close) = g, p  # type: ignore[misc]
    if len(g_vals) != len(p_vals):
        return None
    if _maybe_empty(g) or _maybe_empty(p):
        return None  # math-verify reads [5, 3) as the empty set, equal to [6, 2)
    verdict = _all_close(g_vals, p_vals)
    if verdict is not True:
        return verdict
    if (g_open, g_close) == (p_open, p_close):
        return True
    if g_open + g_close in ("[)", "(]") or p_open + p_close in ("[)", "(]"):
        return False  # a half-open interval against any other interval or a point
    return None  # "(1, 2)" against "[1, 2]": a point or an interval, math-verify decides


def _all_close(a: tuple[float, ...], b: tuple[float, ...]) -> bool | None:
    """Pairwise: False if any pair clearly differs, None if any is too near to tell, else True."""
    verdicts = [_close(x, y) for x, y in zip(a, b)]
    if False in verdicts:
        return False
    if None in verdicts:
        return None
    return True


def _maybe_empty(interval: tuple[str, tuple[float, ...], str]) -> bool:
    """A half-open interval whose lower end is not clearly below its upper end (empty, or nearly)."""
    opening, vals, closing = interval
    if opening + closing not in ("[)", "(]") or len(vals) != 2:
        return False
    return not (vals[0] < vals[1] and _close(vals[0], vals[1]) is False)


def _compare_sets(gold: tuple[float, ...], pred: tuple[float, ...]) -> bool | None:
    """Sets of numbers: decided only when the elements of each set are clearly apart (no
    duplicates, no near values), so that matching them in sorted order is the only matching."""
    for values in (gold, pred):
        if len(values) > 32 or any(_close(a, b) is not False for a, b in itertools.combinations(values, 2)):
            return None
    if len(gold) != len(pred):
        return False
    return _all_close(tuple(sorted(gold)), tuple(sorted(pred)))
