"""Exact arithmetic of the closed-form reader (``srpo_reward.surd``)."""

import math
import random
from fractions import Fraction

import pytest

from srpo_reward.surd import Surd, Unsupported


def _float(s: Surd) -> float:
    return sum(float(q) * math.sqrt(m) for m, q in s.c.items())


def test_surd_arithmetic_matches_floats():
    rng = random.Random(0)
    roots = [Surd.of(Fraction(n, d)).sqrt() for n, d in [(2, 1), (3, 1), (12, 1), (3, 4), (8, 9), (6, 1), (50, 7)]]
    assert roots[2] == Surd({3: Fraction(2)})  # sqrt(12) = 2 sqrt(3)
    assert roots[0] * roots[0] == Surd.of(2) == Fraction(2)
    assert hash(Surd.of(Fraction(2, 3))) == hash(Fraction(2, 3))  # equal, so hashed alike
    for _ in range(300):
        a = rng.choice(roots) * Fraction(rng.randint(-9, 9), rng.randint(1, 9)) + rng.randint(-5, 5)
        b = rng.choice(roots) * Fraction(rng.randint(1, 9), rng.randint(1, 9))  # one term: invertible
        for got, want in [(a + b, _float(a) + _float(b)), (a - b, _float(a) - _float(b)),
                          (a * b, _float(a) * _float(b)), (a / b, _float(a) / _float(b)), (a ** 3, _float(a) ** 3)]:
            assert _float(got) == pytest.approx(want, rel=1e-9, abs=1e-12)
    with pytest.raises(Unsupported):
        Surd.of(1) / (roots[0] + 1)  # a sum of roots in a denominator
