"""Ground truths in the forms the public releases write them (issue 19), read the same way by
the reward, stage 1 and the evaluation: all three go through ``normalize_ground_truth``."""

from __future__ import annotations

import numpy as np
import pytest

from srpo_reward import compute_score, normalize_ground_truth
from srpo_reward.grading import grade_answer


@pytest.mark.parametrize(
    "gold, expected",
    [
        # Mulberry-SFT: ``### The final answer is:`` then a letter, or a letter with its value
        pytest.param("C", ("C",), id="mulberry-letter"),
        pytest.param("A: 57", ("A", "57"), id="mulberry-letter-value"),
        pytest.param("B: 45", ("B", "45"), id="mulberry-letter-value-b"),
        pytest.param("D: 90.", ("D", "90"), id="mulberry-letter-value-period"),
        pytest.param("(B) 45", ("B", "45"), id="letter-in-parens-value"),
        pytest.param("Answer:B", ("B",), id="mulberry-search-input-answer-colon"),
        # MathV360K: the gpt turn, bare or as a sentence
        pytest.param("7", ("7",), id="mathv360k-bare"),
        pytest.param("The answer is 5", ("5",), id="mathv360k-answer-is"),
        pytest.param("The answer is 12.", ("12",), id="mathv360k-answer-is-period"),
        pytest.param("The answer is C", ("C",), id="mathv360k-answer-is-letter"),
        pytest.param("the answer is: 3.5", ("3.5",), id="answer-is-colon"),
        # a period that is not a sentence's stays
        pytest.param("U.S.", ("U.S.",), id="abbreviation-keeps-period"),
        pytest.param("12.5", ("12.5",), id="decimal"),
        # numbers of any real type, numpy scalars included (parquet readers hand them out)
        pytest.param(np.int64(12), ("12",), id="np-int64"),
        pytest.param(np.float32(0.1), ("0.1",), id="np-float32-shortest"),
        pytest.param(np.float64(2.5), ("2.5",), id="np-float64"),
        pytest.param(np.float64("nan"), (), id="np-nan"),
        pytest.param(np.bool_(True), (), id="np-bool-is-not-a-number"),
        pytest.param(True, (), id="bool-is-not-a-number"),
    ],
)
def test_normalize_ground_truth_release_forms(gold, expected) -> None:
    assert normalize_ground_truth(gold) == expected


@pytest.mark.parametrize(
    "pred, gold, correct",
    [
        pytest.param("A", "A: 57", True, id="letter-of-letter-value"),
        pytest.param("57", "A: 57", True, id="value-of-letter-value"),
        pytest.param("\\boxed{A: 57}", "A: 57", True, id="letter-value-boxed"),
        pytest.param("B", "A: 57", False, id="other-letter"),
        pytest.param("113", "A: 57", False, id="other-value"),
        pytest.param("5", "The answer is 5", True, id="answer-is-no-period"),
        pytest.param("12", "The answer is 12.", True, id="answer-is-period"),
        pytest.param("6", "The answer is 5", False, id="answer-is-wrong"),
        pytest.param("C", "The answer is C", True, id="answer-is-letter"),
        pytest.param("12", np.int64(12), True, id="np-int64"),
        pytest.param("12", np.float32(12), True, id="np-float32"),
        pytest.param("0.1", np.float32(0.1), True, id="np-float32-fraction"),
        pytest.param("13", np.int64(12), False, id="np-int64-wrong"),
    ],
)
def test_grade_answer_release_forms(pred, gold, correct) -> None:
    g = grade_answer(pred, gold, timeout=10)
    assert (g.correct, g.status) == (correct, "ok")


@pytest.mark.parametrize(
    "gold",
    [np.int64(12), np.float32(12), np.float64(12.0), 12, "The answer is 12"],
    ids=["np-int64", "np-float32", "np-float64", "int", "answer-is"],
)
def test_compute_score_accepts_any_real_ground_truth(gold) -> None:
    response = "<think>a</think> <answer>\\boxed{12}</answer> <reflection>ok</reflection> <think>b</think> <answer>\\boxed{12}</answer>"
    out = compute_score("srpo", response, gold, {})
    assert out["gold_unparsable"] == 0.0 and out["acc_first"] == 1.0 and out["acc"] == 1.0
