"""The multiple-choice path (``srpo_reward.choices``): the one option letter an answer names."""

import pytest

from srpo_reward.choices import choice_letter
from srpo_reward.grading import grade_answer


@pytest.mark.parametrize(
    "text, letter",
    [
        pytest.param("\\boxed{B}", None, id="boxed-not-extracted-here"),  # extract_answer removes \boxed first
        pytest.param("Answer: (E)", "E", id="answer-colon"),
        pytest.param("A, C", None, id="two-letters-comma"),
        pytest.param("$B$", "B", id="math-dollars"),
        pytest.param("a cat", None, id="article-is-not-a-letter"),
        pytest.param("B) 45", "B", id="letter-paren-then-text"),
        pytest.param("A right triangle", None, id="bare-letter-then-words-is-not-a-choice"),
        pytest.param("The answer is C because", "C", id="answer-is-then-words"),
    ],
)
def test_choice_letter(text, letter):
    assert choice_letter(text) == letter


def test_ten_options_mmmu_pro_style():
    options = [str(10 * i) for i in range(1, 11)]  # A..J
    assert grade_answer("J", "J", options=options, answer_type="multiple_choice").correct
    assert grade_answer("(G) 70", "G", options=options).correct
    assert grade_answer("100", "J", options=options).correct  # the option's text
    g = grade_answer("F", "J", options=options)
    assert (g.correct, g.status) == (False, "ok")  # a verdict, not a grader error
    # without options, a multiple-choice row still accepts letters up to J
    assert grade_answer("H", "H", answer_type="multiple_choice").correct
    # ... but a plain gold "H" with no such hint is not multiple choice (A-E only)
    assert grade_answer("H", "H").method != "choice"


def test_multiple_choice_with_option_texts():
    options = ["12", "15", "18", "21"]
    assert grade_answer("15", "B", options=options).correct  # answer given as the option text
    assert grade_answer("B", "15", options=options).correct  # gold given as the option text
    g = grade_answer("18", "B", options=options)
    assert (g.correct, g.status) == (False, "ok")
    g = grade_answer("B", "not an option", options=options, answer_type="multiple_choice")
    assert g.status == "gold_unparsable" and not g.correct
