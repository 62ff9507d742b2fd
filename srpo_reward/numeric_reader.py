"""The closed-form reader: a tokenizer and a small recursive-descent evaluator of LaTeX
numbers and expressions (digits, decimals, ``\\frac``, ``\\sqrt``, ``\\pi``, ``+ - * /``,
``\\cdot``, ``\\times``, ``\\div``, ``^`` with a small exponent, implicit products, one-letter
variables), with no ``eval``.

:func:`scalar` gives a float for a constant, or, given an environment of exact values for the
variables and pi, an exact value (a ``Fraction``, or a :class:`~srpo_reward.surd.Surd` where
pi or a root enters).  Anything else raises :class:`~srpo_reward.surd.Unsupported`.
:mod:`srpo_reward.numeric` builds answers' values and verdicts on it.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .surd import MAX_BITS, Surd, Unsupported

#: Largest exponent evaluated (beyond it, math-verify decides).
MAX_EXPONENT = 64
#: Largest exponent of a variable expression (evaluated exactly, with fractions).
MAX_POLY_EXPONENT = 16
#: Letters read as variables (``e`` and ``i`` are constants to math-verify).
VARIABLES = frozenset("abcdfghjklmnopqrstuvwxyz")

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?|\.\d+)|(?P<cmd>\\[A-Za-z]+)|(?P<var>[a-z])|(?P<op>[-+*/^(){}\[\],=−]))"
)
_IGNORED = {"\\left", "\\right", "\\displaystyle"}
_TIMES = {"\\cdot", "\\times", "*"}
_FRACS = {"\\frac", "\\dfrac", "\\tfrac"}
_SPACES_RE = re.compile(r"\\[,!;: ]|\\q?quad|~")


def tokenize(s: str) -> list[str]:
    s = _SPACES_RE.sub(" ", s).strip()
    out: list[str] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if not m or m.end() == pos:
            if s[pos:].strip() == "":
                break
            raise Unsupported(s[pos:])
        pos = m.end()
        tok = m.group("num") or m.group("cmd") or m.group("var") or m.group("op")
        if m.group("var") and tok not in VARIABLES:
            raise Unsupported(tok)
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
            raise Unsupported(f"expected {expected!r}, got {tok!r}")
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
                    raise Unsupported("implicit product after a division")
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
                raise Unsupported("exponent")
            if isinstance(base, Fraction):  # ((x^{16})^{16})^{16}: millions of digits
                bits = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(int(exponent))
                if bits > MAX_BITS:
                    raise Unsupported("too large")
            return base ** int(exponent)  # a Surd refuses a coefficient past MAX_BITS itself
        if abs(exponent) > MAX_EXPONENT:
            raise Unsupported("exponent")
        if base < 0 and exponent != int(exponent):
            raise Unsupported("complex power")
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
                    raise Unsupported("a variable or pi under a root")
                return Surd.of(self.env[tok]) if self.surd else self.env[tok]
            if tok[0].isdigit() or tok[0] == ".":
                return Surd.of(Fraction(tok)) if self.surd else Fraction(tok)
            raise Unsupported(tok)
        if tok == "\\pi":
            return math.pi
        if tok[0].isdigit() or tok[0] == ".":
            return float(tok)
        raise Unsupported(tok)

    def atom(self) -> float:
        tok = self.peek()
        if tok is None:
            raise Unsupported("end")
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
                    raise Unsupported("root index")
            radicand = self.group() if self.peek() == "{" else self.atom_single()
            self.constant_only = outer
            if self.env is not None:
                if index != 2:
                    raise Unsupported("a cube root in an expression with variables")
                return radicand.sqrt()
            if radicand < 0:
                raise Unsupported("negative radicand")
            return radicand ** (1.0 / index)
        return self.atom_single()


def _rational(value: Fraction | Surd) -> Fraction:
    return value.rational() if isinstance(value, Surd) else value


def scalar(tokens: list[str], env: dict[str, Fraction] | None = None):
    reader = _Reader(tokens, env)
    value = reader.expr()
    if reader.peek() is not None:
        raise Unsupported(reader.peek())
    if env is None and not math.isfinite(value):
        raise Unsupported("not finite")
    return value

