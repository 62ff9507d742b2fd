"""Exact arithmetic for the closed-form reader: :class:`Surd`, a rational linear combination
of square roots of square-free integers (``\\frac{5}{\\sqrt{2}}`` is ``{2: 5/2}``), and
:class:`Unsupported`, what the reader raises on anything outside its subset.

Used by :mod:`srpo_reward.numeric_reader` for expressions where pi or a root enters; every
operation bounds its work (:data:`MAX_BITS`, :data:`MAX_RADICAND`, :data:`MAX_SURD_TERMS`)
and refuses past it, so that a pathological answer costs microseconds, not minutes.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

#: Largest power computed exactly, in bits of its numerator or denominator.
MAX_BITS = 8192
#: Largest radicand (numerator times denominator) reduced to a square-free root.
MAX_RADICAND = 10**8
#: Most distinct square roots in one value (each new prime doubles them: work stays bounded).
MAX_SURD_TERMS = 8


class Unsupported(Exception):
    """Outside what the closed-form reader reads: math-verify decides."""


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
            raise Unsupported("too many roots")
        for q in self.c.values():
            if max(q.numerator.bit_length(), q.denominator.bit_length()) > MAX_BITS:
                raise Unsupported("too large")

    @staticmethod
    def of(x: Any) -> Surd:
        return x if isinstance(x, Surd) else Surd({1: Fraction(x)})

    def rational(self) -> Fraction:
        if set(self.c) - {1}:
            raise Unsupported("a root where a rational number is needed")
        return self.c.get(1, Fraction(0))

    def sqrt(self) -> Surd:
        q = self.rational()
        if q < 0 or q.numerator * q.denominator > MAX_RADICAND:
            raise Unsupported("radicand")
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
            raise ZeroDivisionError("zero") if not self.c else Unsupported("a sum in a denominator")
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

