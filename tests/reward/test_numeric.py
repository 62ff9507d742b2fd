"""The closed-form numeric fast path: what it reads, and that it never disagrees with
math-verify (``math_verify_grade``, run here in-process) where it decides."""

from __future__ import annotations

import itertools
import logging
import math

import pytest

from srpo_reward import numeric
from srpo_reward.grading import grade_answer
from srpo_reward.mathverify import math_verify_grade
from srpo_reward.surd import Surd


@pytest.mark.parametrize(
    "text, value",
    [
        ("\\frac{3}{4}", 0.75),
        ("\\dfrac{5}{\\sqrt{2}}", 5 / math.sqrt(2)),
        ("2\\sqrt{3}", 2 * math.sqrt(3)),
        ("2 \\sqrt 3", 2 * math.sqrt(3)),
        ("\\sqrt[3]{27}", 3.0),
        ("\\frac{\\pi}{6}", math.pi / 6),
        ("\\pi/6", math.pi / 6),
        ("\\pi \\cdot 4", 4 * math.pi),
        ("-1+\\sqrt{5}", math.sqrt(5) - 1),
        ("−3", -3.0),
        ("2^{10}", 1024.0),
        ("\\left(1+2\\right)\\times 3", 9.0),
        ("$0.5$", 0.5),
        ("\\frac{5}{2}\\sqrt{2}", 2.5 * math.sqrt(2)),
    ],
)
def test_reads_closed_forms(text, value):
    assert numeric.value_of(text) == pytest.approx(value, rel=1e-12)


def test_reads_tuples_and_intervals():
    assert numeric.value_of("(2, -3)") == ("(", (2.0, -3.0), ")")
    assert numeric.value_of("[-1,\\frac{1}{2})") == ("[", (-1.0, 0.5), ")")
    # an infinite endpoint's bracket is open, as math-verify reads it
    assert numeric.value_of("[-\\infty, 3]") == ("(", (-math.inf, 3.0), "]")
    assert numeric.value_of("[2, +\\infty)") == ("[", (2.0, math.inf), ")")


def test_reads_sets():
    assert numeric.value_of("\\{1, \\frac{1}{2}\\}") == numeric.NumberSet((1.0, 0.5))
    assert numeric.value_of("\\left\\{-1,3\\right\\}") == numeric.NumberSet((-1.0, 3.0))


@pytest.mark.parametrize(
    "text",
    [
        "e^{2}", "3i", "60^\\circ", "50\\%", "5!", "\\{\\}", "\\{x, 2\\}", "\\{1, \\{2\\}\\}", "\\infty",
        "(1, \\infty, 2)", "\\{1, 2\\} \\cup \\{3\\}", "1,2", "2^{100}", "9^{9^{9}}",
        "\\sqrt{-4}", "(-8)^{1/3}", "\\frac{1}{0}", "1/2\\sqrt{2}", "\\log 2", "", "1" * 300, "\\frac12",
        "x^{20}", "\\sqrt{x}", "\\sqrt{x^2}", "\\frac{1}{\\sqrt{x}}", "\\sqrt[3]{2}x", "\\frac{x}{1+\\sqrt{2}}", "\\sin x", "x plus y", "X+1", "x=1", "(x, 1)",
        "((x^{16})^{16})^{16}", "(" * 150 + "1" + ")" * 150,
    ],
)
def test_anything_else_is_left_to_math_verify(text):
    assert numeric.value_of(text) is None


def test_reads_expressions_with_pi_and_roots_exactly():
    got = numeric.value_of("\\frac{\\sqrt{12}}{8}a^2")
    a = [p["a"] for p in numeric._POINTS]
    assert got == numeric.Polynomial(tuple(Surd({3: v * v / 4}) for v in a))  # sqrt(12) = 2 sqrt(3)
    assert numeric.value_of("\\frac{x}{\\sqrt{5}}") == numeric.value_of("\\frac{\\sqrt{5}}{5}x")
    assert numeric.compare("\\pi r^2", "r^2\\pi") is True
    assert numeric.compare("\\sqrt{2}\\sqrt{6}x", "2\\sqrt{3}x") is True
    assert numeric.compare("2\\pi r", "\\pi r") is False
    # exact, so a term a million times smaller still counts (floats would call these equal)
    assert numeric.compare("\\sqrt{3}\\frac{1}{x} + \\frac{\\pi}{3}r^3", "\\frac{\\pi}{3}r^3 + \\frac{\\pi}{3}\\frac{1}{x}") is False
    assert numeric.compare("x^2 + \\pi", "x^2 + \\frac{355}{113}") is False


def test_trailing_units_of_math_verify_are_left_to_it():
    # math-verify strips "h" (hours) and "t" after a digit, "}" or a space: x+2t is x+2 to it.
    assert numeric.compare("x+2t", "x+2") is None
    assert numeric.compare("\\pi r^{2} h", "\\pi r^{2}") is None
    assert numeric.compare("x+2", "x+2") is True
    # the list is math-verify's own (latex2sympy2_extended's units), cut to what reads as variables
    from latex2sympy2_extended import math_normalization

    theirs = {u for u in math_normalization.units if u.isalpha() and len(u) <= 2}
    assert set(numeric.MATH_VERIFY_SHORT_UNITS) == theirs


def test_near_values_are_left_to_math_verify():
    # math-verify rounds decimals to 6 places: 0.333333 is 1/3 there, 0.3333 is not.
    assert numeric.compare("\\frac{1}{3}", "0.333333") is None
    assert numeric.compare("\\frac{1}{3}", "0.3333") is None
    assert numeric.compare("\\frac{1}{3}", "0.33") is False
    # a point against an interval with the same values: math-verify decides
    assert numeric.compare("(1, 2)", "[1, 2]") is None
    assert numeric.compare("(1, 2)", "[1, 3]") is False


# Closed forms as RL sets write them, with equivalent forms and near misses.
FORMS = [
    "\\frac{3}{4}", "0.75", "\\dfrac{3}{4}", "3/4", "\\frac{6}{8}", "\\frac{4}{3}", "\\frac{2}{3}",
    "2\\sqrt{3}", "\\sqrt{12}", "2 \\sqrt 3", "3\\sqrt{2}", "4\\sqrt{3}", "\\sqrt{3}",
    "\\frac{\\pi}{6}", "\\pi/6", "\\frac{\\pi}{3}", "\\frac{2\\pi}{12}", "4\\pi", "\\pi \\cdot 4", "8\\pi",
    "\\frac{5\\sqrt{2}}{2}", "\\frac{5}{\\sqrt{2}}", "\\frac{5}{2}\\sqrt{2}", "5\\sqrt{2}", "\\frac{5}{2}",
    "\\sqrt{5}-1", "-1+\\sqrt{5}", "1-\\sqrt{5}", "\\sqrt{5}+1", "24", "24.0", "-24", "2^{3}", "8",
    "\\sqrt[3]{8}", "2", "0.5", "\\frac{1}{2}", "0.333333", "\\frac{1}{3}", "1.5", "\\frac{3}{2}",
    "(2,-3)", "(2, -3)", "\\left(2,-3\\right)", "(-3,2)", "(2,3)", "[-1, 3)", "[-1,3)", "(-1, 3)", "[-1, 3]",
    "(\\frac{1}{2}, \\sqrt{2})", "(0.5, \\sqrt{2})",
    "x^2+2x+1", "(x+1)^2", "1+2x+x^2", "x^2+1", "(x-1)^2", "x^{2}+2x+1", "2x+1", "1+2x", "2x-1", "x+1",
    "y=2x+1", "y = 1 + 2x", "y=2x-1", "y=x+1", "x=2x+1", "t+1", "\\frac{x^2-1}{x-1}", "3xy", "3yx", "x(x+1)",
    "x^2+x", "a^2-b^2", "(a-b)(a+b)", "\\frac{1}{2}x", "0.5x", "\\frac{x}{2}",
]


# Sets and intervals with infinite ends, where math-verify has rules of its own: duplicates
# collapse, order does not count, an infinite end's bracket is ignored, a half-open interval
# whose ends are reversed is the empty set (``[5, 3)`` equals ``[6, 2)``).
SET_FORMS = [
    "\\{1, 3\\}", "\\{3, 1\\}", "\\{1,3\\}", "\\left\\{1, 3\\right\\}", "\\{1, 1, 3\\}", "\\{1\\}", "\\{1, 3, 4\\}",
    "\\{1, 4\\}", "\\{\\frac{1}{2}, 3\\}", "\\{0.5, 3\\}", "\\{-1, 3\\}", "\\{\\sqrt{2}, \\pi\\}", "\\{\\pi, \\sqrt 2\\}",
    "\\{2\\}", "\\{2, 2\\}", "\\{2, 3\\}", "\\{2.0001, 3\\}", "(1, 3)", "2",
    "(-\\infty, 3]", "(-\\infty,3]", "[-\\infty, 3]", "(-\\infty, 3)", "(-\\infty, 4]", "[3, \\infty)", "(3, \\infty)",
    "[3, +\\infty)", "(\\infty, 3)", "(-\\infty, \\infty)", "(-\\infty,+\\infty)", "(-\\infty, 3.0000001]",
    "[5, 3)", "[6, 2)", "(5, 3]", "[3, 3)", "(5, 3)", "[5, 3]",
]


# Geometry's answers: pi and roots of constants with variables; trailing letters math-verify
# takes for units; decimals against pi and roots.
ROOT_PI_FORMS = [
    "\\frac{\\sqrt{3}}{4}a^2", "\\frac{\\sqrt{3}a^2}{4}", "\\frac{a^2\\sqrt{3}}{4}", "0.25\\sqrt{3}a^2", "\\frac{\\sqrt{3}}{2}a^2",
    "\\frac{\\sqrt{3}}{4}a", "\\pi r^2", "r^2\\pi", "\\pi r^{2} h", "\\pi r^2h", "h\\pi r^2", "\\frac{1}{3}\\pi r^2 h",
    "\\frac{\\pi r^2 h}{3}", "2\\pi r", "\\pi d", "2 \\pi r", "\\pi r", "\\frac{\\sqrt{5}}{x}", "\\sqrt{5}/x",
    "\\frac{1}{x}\\sqrt{5}", "\\frac{x}{\\sqrt{5}}", "\\sqrt{5}x", "x", "\\pi x + \\pi", "\\pi(x+1)", "\\frac{\\pi}{x}",
    "\\sqrt{2}x", "x\\sqrt{2}", "\\sqrt{8}x", "2\\sqrt{2}x", "\\pi", "\\frac{x}{2}", "0.5x", "\\frac{\\sqrt{4}}{4}x",
    "\\sqrt[3]{2}x", "4\\pi r^2", "\\frac{4}{3}\\pi r^3", "x+2t", "x+2", "2t", "x^2 s", "x^2",
    "0.5\\pi r^2", "\\frac{\\pi r^2}{2}", "3.14r^2", "0.433a^2", "\\sqrt{2}\\sqrt{6}x", "2\\sqrt{3}x", "\\sqrt{12}x",
    "\\frac{x+1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}(x+1)", "\\pi^2 x", "x\\pi\\pi", "\\sqrt{\\frac{3}{4}}a", "\\frac{\\sqrt{3}}{2}a",
]


def _agrees_with_math_verify(forms: list[str]) -> tuple[int, int]:
    """Every verdict of the fast path on all pairs of ``forms`` equals math-verify's;
    returns (pairs decided, pairs of the same kind)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    def kind(s: str) -> type:
        return type(numeric.value_of(s.split("=")[-1]))

    decided = same_kind = 0
    for gold, pred in itertools.product(forms, repeat=2):
        same_kind += kind(gold) is kind(pred)
        verdict = numeric.compare(gold, pred)
        if verdict is None:
            continue
        decided += 1
        status, correct = math_verify_grade(gold, "\\boxed{" + pred + "}")
        assert status == "ok" and correct == verdict, (gold, pred, verdict)
    return decided, same_kind


def test_never_disagrees_with_math_verify():
    decided, same_kind = _agrees_with_math_verify(FORMS)
    assert decided > 0.9 * same_kind  # it decides nearly all number-number and tuple-tuple pairs


def test_expressions_with_pi_and_roots_never_disagree_with_math_verify():
    decided, same_kind = _agrees_with_math_verify(ROOT_PI_FORMS)
    assert decided > 0.5 * len(ROOT_PI_FORMS) ** 2


def test_sets_and_infinite_intervals_never_disagree_with_math_verify():
    decided, same_kind = _agrees_with_math_verify(SET_FORMS)
    assert decided > 0.6 * same_kind  # duplicates, empty and point-or-interval pairs go to math-verify
    # math-verify's own rules, decided or left to it, never contradicted
    assert numeric.compare("\\{1, 3\\}", "\\{3, 1\\}") is True
    assert numeric.compare("(-\\infty, 3]", "[-\\infty, 3]") is True
    assert numeric.compare("[5, 3)", "[6, 2)") is None
    assert numeric.compare("\\{2\\}", "\\{2, 2\\}") is None


def test_grade_answer_uses_it_and_math_verify_for_the_rest():
    assert grade_answer("\\boxed{\\frac{5}{\\sqrt{2}}}", "\\frac{5\\sqrt{2}}{2}").method == "numeric"
    assert grade_answer("\\boxed{(x+1)^2}", "x^2+2x+1").method == "numeric"
    grade = grade_answer("\\boxed{\\sin^2 x + \\cos^2 x}", "1", timeout=30)
    assert (grade.correct, grade.method) == (True, "math_verify")
