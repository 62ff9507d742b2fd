"""Ground truths as the grader reads them (``srpo_reward.ground_truth``)."""

import pytest

from srpo_reward.grading import grade_answer
from srpo_reward.ground_truth import normalize_ground_truth


@pytest.mark.parametrize(
    "gold, alternatives",
    [
        pytest.param("$100%$", ("$100\\%$",), id="latex-percent-is-not-a-comment"),
        pytest.param("1 000", ("1000",), id="space-thousands"),
        pytest.param("14{,}916", ("14916",), id="brace-comma-thousands"),
        pytest.param("Surface Area $=9236.28 \\mathrm{~m}^{2}$", ("$9236.28 \\mathrm{~m}^{2}$",), id="descriptive-lhs"),
        pytest.param("x = 3", ("x = 3",), id="one-letter-lhs-kept"),
        pytest.param(["4", "four", "4"], ("4", "four"), id="list-of-acceptable"),
        pytest.param(2.5, ("2.5",), id="float"),
        pytest.param(None, (), id="none"),
        pytest.param(" ", (), id="blank"),
    ],
)
def test_normalize_ground_truth(gold, alternatives):
    assert normalize_ground_truth(gold) == alternatives


def test_gold_number_types_are_accepted():
    assert grade_answer("3", 3).correct
    assert grade_answer("0.25", 0.25).correct
    assert grade_answer("7", ["7"]).correct
