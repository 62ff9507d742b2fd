"""The grader's front (``srpo_reward.grading``): which path decides each answer, failures that
score zero, and answers read the way math-verify's own extraction reads them."""

import pytest

from srpo_reward.grading import grade_answer


@pytest.mark.parametrize(
    "pred, gold, correct, method",
    [
        # multiple choice: exactly one option letter recognised
        pytest.param("B", "B", True, "choice", id="mc-bare"),
        pytest.param("(B)", "B", True, "choice", id="mc-parens"),
        pytest.param("B.", "B", True, "choice", id="mc-dot"),
        pytest.param("b", "B", True, "choice", id="mc-lowercase-alone"),
        pytest.param("Option B: 45 degrees", "B", True, "choice", id="mc-option-prefix"),
        pytest.param("The answer is C", "C", True, "choice", id="mc-answer-is"),
        pytest.param("(D) 12 cm", "D", True, "choice", id="mc-letter-then-text"),
        pytest.param("B", "(B)", True, "choice", id="mc-gold-in-parens"),
        pytest.param("\\boxed{B}", "B", True, "choice", id="mc-boxed"),
        pytest.param("so \\boxed{\\frac{1}{2}}", "0.5", True, "numeric", id="raw-block-with-boxed"),
        pytest.param("A or B", "A", False, "choice", id="mc-two-letters-is-wrong"),
        pytest.param("(A) (B)", "A", False, "choice", id="mc-two-parens-is-wrong"),
        pytest.param("C", "B", False, "choice", id="mc-wrong-letter"),
        pytest.param("45", "B", False, "choice", id="mc-no-letter"),
        # numbers
        pytest.param("1,000", "1000", True, "number", id="num-thousands-separator"),
        pytest.param("1000.0", "1,000", True, "number", id="num-decimal-vs-separator"),
        pytest.param("45^\\circ", "45", True, "number", id="num-degree-latex"),
        pytest.param("45°", "45^{\\circ}", True, "number", id="num-degree-sign"),
        pytest.param("50\\%", "50", True, "number", id="num-percent-latex"),
        pytest.param("0.5", "50%", True, "number", id="num-percent-vs-fraction"),
        pytest.param("5 cm", "5", True, "number", id="num-unit"),
        pytest.param("12 \\text{ cm}^2", "12", True, "number", id="num-text-unit"),
        pytest.param("x = 3", "3", True, "number", id="num-lhs"),
        pytest.param("\\$5", "5", True, "number", id="num-currency"),
        pytest.param("3.14159", "3.1416", True, "number", id="num-rel-tol"),
        pytest.param("3.2", "3.1416", False, "number", id="num-outside-tol"),
        pytest.param("-2", "2", False, "number", id="num-sign"),
        pytest.param("3", "4", False, "number", id="num-wrong"),
        # math-verify
        pytest.param("0.5", "\\frac{1}{2}", True, "numeric", id="numeric-fraction-vs-decimal"),
        pytest.param("\\frac{2}{4}", "0.5", True, "numeric", id="numeric-fraction-unreduced"),
        pytest.param("\\sqrt{12}", "2\\sqrt{3}", True, "numeric", id="numeric-radical"),
        pytest.param("0.333333", "\\frac{1}{3}", True, "math_verify", id="mv-near-value-rounded"),
        pytest.param("1+x^2", "x^2+1", True, "numeric", id="numeric-expression"),
        pytest.param("2\\sin x \\cos x", "\\sin 2x", True, "math_verify", id="mv-trig-identity"),
        pytest.param("3\\pi", "3π", True, "math_verify", id="mv-pi-unicode"),
        pytest.param("\\{2,1\\}", "\\{1,2\\}", True, "numeric", id="numeric-set"),
        pytest.param("\\{2\\}", "\\{1,2\\}", False, "numeric", id="numeric-set-missing-element"),
        pytest.param("[-\\infty, 3]", "(-\\infty,3]", True, "numeric", id="numeric-infinite-end-is-open"),
        pytest.param("\\{x,1\\}", "\\{1,x\\}", True, "math_verify", id="mv-set-of-expressions"),
        pytest.param("2x+1", "y=2x+1", True, "numeric", id="numeric-equation-rhs"),
        pytest.param("\\frac{1}{3}", "\\frac{1}{2}", False, "numeric", id="numeric-wrong-fraction"),
        # words
        pytest.param("East", "east", True, "text", id="text-case"),
        pytest.param("seat", "east", False, "text", id="text-anagram-is-wrong"),
    ],
)
def test_grade_table(pred, gold, correct, method):
    g = grade_answer(pred, gold)
    assert (g.correct, g.method, g.status) == (correct, method, "ok")


@pytest.mark.parametrize(
    "pred, gold, status",
    [
        pytest.param(None, "3", "no_answer", id="no-answer"),
        pytest.param("   ", "3", "no_answer", id="blank-answer"),
        pytest.param("3", "", "gold_unparsable", id="empty-gold"),
        pytest.param("3", None, "gold_unparsable", id="none-gold"),
        pytest.param("3", {"a": 1}, "gold_unparsable", id="dict-gold"),
        pytest.param("\\frac{1}{2}", "\\frac{", "gold_unparsable", id="broken-latex-gold"),
        pytest.param("anything", "$$", "gold_unparsable", id="only-dollars-gold"),
    ],
)
def test_grade_failures_score_zero(pred, gold, status):
    g = grade_answer(pred, gold)
    assert g.status == status
    assert g.correct is False


@pytest.mark.parametrize(
    "pred, gold, correct",
    [
        pytest.param("100\\%", "$100%$", True, id="percent-gold"),
        pytest.param("1000", "1 000", True, id="space-thousands-gold"),
        pytest.param("9236.28", "Surface Area $=9236.28 \\mathrm{~m}^{2}$", True, id="mathverse-lhs-units"),
        pytest.param("9200", "Surface Area $=9236.28 \\mathrm{~m}^{2}$", False, id="mathverse-wrong"),
        pytest.param("four", ["4", "four"], True, id="any-of-list"),
        pytest.param("\\boxed{1} and \\boxed{2}", "\\{1,2\\}", True, id="all-boxes-are-a-set"),
        pytest.param("\\boxed{2}", "\\{1,2\\}", False, id="one-box-of-a-set-is-wrong"),
        pytest.param("so $x \\geq 5$ holds", "x \\ge 5", True, id="relation-in-prose"),
        pytest.param("$\\begin{bmatrix}1&0\\\\0&1\\end{bmatrix}$", "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", True, id="matrix-env"),
        pytest.param("1,2", "1.2", False, id="comma-list-is-not-a-decimal"),
        pytest.param("1000,99", "1000.99", True, id="decimal-comma-like-math-verify"),
    ],
)
def test_grading_like_math_verify(pred, gold, correct):
    g = grade_answer(pred, gold, timeout=30)
    assert (g.correct, g.status) == (correct, "ok")  # a wrong row is a verdict, not a grader error
