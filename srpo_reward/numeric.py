"""Exact values of closed-form numeric answers (``\\frac{5}{\\sqrt{2}}``, ``2\\sqrt{3}``,
``\\pi/6``, ``(2, -3)``, ``[-1, 3)``, ``(-\\infty, 2]``, ``\\{1, 3\\}``), for a fast path that
decides before math-verify.

math-verify parses every answer with an ANTLR LaTeX grammar whose prediction costs a few
milliseconds per answer even when warm; most RL ground truths are numbers written with
fractions, roots and pi, which a small recursive-descent reader evaluates in microseconds.
It reads only that subset: digits, decimals, ``\\frac``/``\\dfrac``/``\\tfrac``, ``\\sqrt``
(also ``\\sqrt[n]{}``), ``\\pi``, ``+ - * /``, ``\\cdot``, ``\\times``, ``\\div``, ``^`` with a
small exponent, parentheses and braces, implicit products (``2\\sqrt{3}``, ``4\\pi``); tuples
and intervals of such numbers (an interval's endpoint may be ``\\infty``), and sets of them
(``\\{1, 3\\}``, compared as sets).  Expressions in one-letter variables are compared by
their exact values at three fixed rational points, pi being one more variable there and
square roots of constants exact :class:`Surd` numbers (``\\frac{\\sqrt{3}}{4}a^2``,
``\\pi r^2``; a root of a variable is refused).  Any other token (``e``, ``i``, a word,
``\\circ``, a comma outside a tuple) makes it return None, and math-verify decides; so does an
answer ending in one of math-verify's unit letters (:data:`MATH_VERIFY_SHORT_UNITS`).  Nothing is evaluated with ``eval``.

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
from typing import Any

#: Largest exponent evaluated (beyond it, math-verify decides).
MAX_EXPONENT = 64
#: Longest answer read (characters).
MAX_CHARS = 200

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?|\.\d+)|(?P<cmd>\\[A-Za-z]+)|(?P<var>[a-z])|(?P<op>[-+*/^(){}\[\],=−]))"
)
#: Letters read as variables (``e`` and ``i`` are constants to math-verify).
VARIABLES = frozenset("abcdfghjklmnopqrstuvwxyz")
#: Largest exponent of a variable expression (evaluated exactly, with fractions).
MAX_POLY_EXPONENT = 16
#: Largest power computed exactly, in bits of its numerator or denominator.
MAX_BITS = 8192
#: Exact points at which expressions in variables are compared: two polynomials (or rational
#: functions) of modest degree that agree at all of them are identical.
#: pi is one more variable there (it is transcendental, so an identity in x and pi holds
#: for the real pi exactly when it holds as a formal one).
_POINTS = tuple(
    {v: Fraction(1_000_003 + 7919 * k * (j + 1), 97 + j + 13 * k) for j, v in enumerate(sorted(VARIABLES) + ["\\pi"])}
    for k in range(3)
)
#: Largest radicand (numerator times denominator) reduced to a square-free root.
MAX_RADICAND = 10**8
#: Most distinct square roots in one value (each new prime doubles them: work stays bounded).
MAX_SURD_TERMS = 8
_IGNORED = {"\\left", "\\right", "\\displaystyle"}
_TIMES = {"\\cdot", "\\times", "*"}
_FRACS = {"\\frac", "\\dfrac", "\\tfrac"}
_CMD_RE = re.compile(r"\\[A-Za-z]+")
_WORD_RE = re.compile(r"[A-Za-z]{3,}")
_SPACES_RE = re.compile(r"\\[,!;: ]|\\q?quad|~")


class _Unsupported(Exception):
    pass


def _square_free(n: int) -> tuple[int, int]:
    """``(k, m)`` with ``n == k * k * m`` and ``m`` square-free (trial division)."""
    k = m = 1
    d = 2
    while d * d <= n:
        e = 0
        while n % d == 0:
            n //= d
            e += 1
        k *= d ** (e // 2)
        m *= d ** (e % 2)
        d += 1
    return k, m * n


class Surd:
    """An exact number ``q_1 + q_2 \\sqrt{2} + q_3 \\sqrt{3} + ...``: rational coefficients
    of square roots of square-free integers, ``{m: q}`` with no zero coefficient.  Division
    only by a single term (``\\frac{x}{\\sqrt{5}}``); a sum of roots in a denominator is refused."""

    __slots__ = ("c",)

    def __init__(self, c: dict[int, Fraction]) -> None:
        self.c = {m: q for m, q in c.items() if q}
        if len(self.c) > MAX_SURD_TERMS:
            raise _Unsupported("too many roots")
        for q in self.c.values():
            if max(q.numerator.bit_length(), q.denominator.bit_length()) > MAX_BITS:
                raise _Unsupported("too large")

    @staticmethod
    def of(x: Any) -> Surd:
        return x if isinstance(x, Surd) else Surd({1: Fraction(x)})

    def rational(self) -> Fraction:
        if set(self.c) - {1}:
            raise _Unsupported("a root where a rational number is needed")
        return self.c.get(1, Fraction(0))

    def sqrt(self) -> Surd:
        q = self.rational()
        if q < 0 or q.numerator * q.denominator > MAX_RADICAND:
            raise _Unsupported("radicand")
        k, m = _square_free(q.numerator * q.denominator)  # sqrt(p/r) = sqrt(p r) / r
        return Surd({m: Fraction(k, q.denominator)})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (int, Fraction)):
            other = Surd.of(other)
        return isinstance(other, Surd) and self.c == other.c

    def __hash__(self) -> int:
        if set(self.c) <= {1}:  # equal to a Fraction, so hashed like it
            return hash(self.c.get(1, Fraction(0)))
        return hash(frozenset(self.c.items()))

    def __repr__(self) -> str:
        return f"Surd({self.c})"

    def __add__(self, other: Any) -> Surd:
        c = dict(self.c)
        for m, q in Surd.of(other).c.items():
            c[m] = c.get(m, 0) + q
        return Surd(c)

    __radd__ = __add__

    def __neg__(self) -> Surd:
        return Surd({m: -q for m, q in self.c.items()})

    def __sub__(self, other: Any) -> Surd:
        return self + -Surd.of(other)

    def __rsub__(self, other: Any) -> Surd:
        return Surd.of(other) - self

    def __mul__(self, other: Any) -> Surd:
        c: dict[int, Fraction] = {}
        for m1, q1 in self.c.items():
            for m2, q2 in Surd.of(other).c.items():
                g = math.gcd(m1, m2)  # sqrt(m1 m2) = g sqrt(m1/g * m2/g), square-free again
                m = (m1 // g) * (m2 // g)
                c[m] = c.get(m, 0) + q1 * q2 * g
        return Surd(c)

    __rmul__ = __mul__

    def inverse(self) -> Surd:
        if len(self.c) != 1:
            raise ZeroDivisionError("zero") if not self.c else _Unsupported("a sum in a denominator")
        ((m, q),) = self.c.items()
        return Surd({m: 1 / (q * m)})  # 1/(q sqrt(m)) = sqrt(m)/(q m)

    def __truediv__(self, other: Any) -> Surd:
        return self * Surd.of(other).inverse()

    def __rtruediv__(self, other: Any) -> Surd:
        return Surd.of(other) * self.inverse()

    def __pow__(self, n: int) -> Surd:
        base = self if n >= 0 else self.inverse()
        out = Surd.of(1)
        n = abs(n)
        while n:  # by squaring
            if n & 1:
                out = out * base
            n >>= 1
            if n:
                base = base * base
        return out


def _tokens(s: str) -> list[str]:
    s = _SPACES_RE.sub(" ", s).strip()
    out: list[str] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if not m or m.end() == pos:
            if s[pos:].strip() == "":
                break
            raise _Unsupported(s[pos:])
        pos = m.end()
        tok = m.group("num") or m.group("cmd") or m.group("var") or m.group("op")
        if m.group("var") and tok not in VARIABLES:
            raise _Unsupported(tok)
        if tok in _IGNORED:
            continue
        out.append("-" if tok == "−" else "/" if tok == "\\div" else tok)
    return out


class _Reader:
    """Floats for constants; with ``env`` (values of the variables and of pi) exact values:
    fractions, or :class:`Surd` numbers where pi or a root enters, a square root being taken
    of constants only (never of a variable: ``\\sqrt{x^2}`` is not ``x`` to math-verify)."""

    def __init__(self, tokens: list[str], env: dict[str, Fraction] | None = None) -> None:
        self.t = tokens
        self.i = 0
        self.env = env
        #: Surd values only where pi or a root enters; plain fractions are much faster.
        self.surd = env is not None and ("\\pi" in tokens or "\\sqrt" in tokens)
        #: Inside a root's radicand or index: variables (and pi) refused.
        self.constant_only = False

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Unsupported(f"expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def expr(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self) -> float:
        value = self.unary()
        divided = False
        while True:
            tok = self.peek()
            if tok in _TIMES:
                self.take()
                value *= self.unary()
            elif tok == "/":
                self.take()
                value /= self.unary()
                divided = True
            elif tok is not None and (tok in ("(", "{", "\\pi", "\\sqrt") or tok in _FRACS or tok[0].isdigit()
                                      or tok in VARIABLES):
                if divided:  # "1/2\sqrt{2}": readers disagree on what is divided
                    raise _Unsupported("implicit product after a division")
                value *= self.power()
            else:
                return value

    def unary(self) -> float:
        if self.peek() in ("-", "+"):
            sign = -1.0 if self.take() == "-" else 1.0
            return sign * self.unary()
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.group() if self.peek() == "{" else self.atom_single()
        if self.env is not None:
            exponent = _rational(exponent)
            if exponent != int(exponent) or abs(exponent) > MAX_POLY_EXPONENT:
                raise _Unsupported("exponent")
            if isinstance(base, Fraction):  # ((x^{16})^{16})^{16}: millions of digits
                bits = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(int(exponent))
                if bits > MAX_BITS:
                    raise _Unsupported("too large")
            return base ** int(exponent)  # a Surd refuses a coefficient past MAX_BITS itself
        if abs(exponent) > MAX_EXPONENT:
            raise _Unsupported("exponent")
        if base < 0 and exponent != int(exponent):
            raise _Unsupported("complex power")
        return base**exponent

    def group(self) -> float:
        self.take("{")
        value = self.expr()
        self.take("}")
        return value

    def atom_single(self) -> float:
        """A one-token argument (``\\sqrt 3``, ``x^2``): a number, pi or a variable."""
        tok = self.take()
        if self.env is not None:
            if tok in VARIABLES or tok == "\\pi":
                if self.constant_only:
                    raise _Unsupported("a variable or pi under a root")
                return Surd.of(self.env[tok]) if self.surd else self.env[tok]
            if tok[0].isdigit() or tok[0] == ".":
                return Surd.of(Fraction(tok)) if self.surd else Fraction(tok)
            raise _Unsupported(tok)
        if tok == "\\pi":
            return math.pi
        if tok[0].isdigit() or tok[0] == ".":
            return float(tok)
        raise _Unsupported(tok)

    def atom(self) -> float:
        tok = self.peek()
        if tok is None:
            raise _Unsupported("end")
        if tok == "(":
            self.take()
            value = self.expr()
            self.take(")")
            return value
        if tok == "{":
            return self.group()
        if tok in _FRACS:
            self.take()
            num = self.group()
            den = self.group()
            return num / den
        if tok == "\\sqrt":
            self.take()
            outer, self.constant_only = self.constant_only, True
            index = 2.0
            if self.peek() == "[":
                self.take()
                index = self.expr()
                self.take("]")
                if self.env is not None:
                    index = _rational(index)
                if index != int(index) or not 2 <= index <= MAX_EXPONENT:
                    raise _Unsupported("root index")
            radicand = self.group() if self.peek() == "{" else self.atom_single()
            self.constant_only = outer
            if self.env is not None:
                if index != 2:
                    raise _Unsupported("a cube root in an expression with variables")
                return radicand.sqrt()
            if radicand < 0:
                raise _Unsupported("negative radicand")
            return radicand ** (1.0 / index)
        return self.atom_single()


def _rational(value: Fraction | Surd) -> Fraction:
    return value.rational() if isinstance(value, Surd) else value


def _scalar(tokens: list[str], env: dict[str, Fraction] | None = None):
    reader = _Reader(tokens, env)
    value = reader.expr()
    if reader.peek() is not None:
        raise _Unsupported(reader.peek())
    if env is None and not math.isfinite(value):
        raise _Unsupported("not finite")
    return value


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
    return _INFINITY.get(tuple(tokens)) or _scalar(tokens)


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
            tokens = _tokens(braced.group("inner"))
            if not tokens:
                return None  # the empty set: math-verify decides
            return NumberSet(tuple(_scalar(p) for p in _split_top(tokens)))
        tokens = _tokens(s)
        if not tokens or "=" in tokens:
            return None
        if any(t in VARIABLES for t in tokens):
            if "," in tokens:
                return None
            return Polynomial(tuple(_scalar(tokens, env) for env in _POINTS))
        if tokens[0] in ("(", "[") and tokens[-1] in (")", "]") and "," in tokens:
            parts = _split_top(tokens[1:-1])
            if len(parts) == 2:  # an interval or a point: an endpoint may be infinite
                lo, hi = _endpoint(parts[0]), _endpoint(parts[1])
                opening = "(" if math.isinf(lo) else tokens[0]
                closing = ")" if math.isinf(hi) else tokens[-1]
                return opening, (lo, hi), closing
            if len(parts) > 2:
                return tokens[0], tuple(_scalar(p) for p in parts), tokens[-1]
        if "," in tokens:
            return None
        return _scalar(tokens)
    except (_Unsupported, ArithmeticError, ValueError, TypeError, RecursionError):
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
