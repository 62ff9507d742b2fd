"""The guard (``srpo_reward.guard``): what never reaches math-verify, and how a refusal is scored."""

import pytest

from srpo_reward import compute_score
from srpo_reward.grading import grade_answer
from srpo_reward.guard import guard_reason


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("9^{9^{9^{9}}}", "power_tower"),
        ("9^{9^{9}}", "power_tower"),
        ("2^{1000000}", "huge_exponent"),
        ("100000!", "huge_factorial"),
        ("(" * 2000 + "1" + ")" * 2000, "too_deep"),
        ("1" * 500, "huge_number"),
        ("\\boxed{1}" * 30, "too_many_boxes"),
        ("x" * 20000, "too_long"),
        ("2^{3^4}", None),
        ("x^2+y^2=z^2", None),
        ("\\frac{5\\sqrt{2}}{2}", None),
        ("**Final Answer** **bold** **x**", None),
    ],
)
def test_guard(answer, reason):
    assert guard_reason(answer) == reason


def test_refused_sample_is_a_visible_grade_error_and_never_raises():
    text = ("<think>t</think> <answer>\\boxed{9^{9^{9^{9}}}}</answer> <reflection>r</reflection> "
            "<think>t</think> <answer>\\boxed{" + "(" * 3000 + "}</answer>")
    out = compute_score("adv", text, "3")
    assert out["grade_error"] == 1.0 and out["acc"] == 0.0 and out["reward_error"] == 0.0


def test_one_megabyte_answer_is_refused():
    g = grade_answer("x + " * 250_000, "1")
    assert (g.correct, g.status) == (False, "refused")


def test_power_tower_is_refused_by_the_guard_before_math_verify(in_thread):
    # math-verify never returns on this one when its own (signal) timeout is off.
    g = in_thread(lambda: grade_answer("9^{9^{9^{9}}}", "3", timeout=2))
    assert (g.correct, g.status, g.method) == (False, "refused", "guard")
