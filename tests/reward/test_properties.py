"""Property tests: for any text, compute_score never raises, keeps its keys, and stays in bounds."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srpo_reward import SCORE_KEYS, RewardConfig, compute_score, parse_response

TAGS = ["<think>", "</think>", "<answer>", "</answer>", "<reflection>", "</reflection>", "\\boxed{", "}", "$"]
ANSWERS = ["5", "\\frac{1}{2}", "B", "x^2+1", "1,000", "45^\\circ", "", "\\boxed{3}", "(C)"]
GOLDS = ["5", "0.5", "B", "x^2+1", "1000", "\\frac{", "", "east"]

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid_response(a1, a2):
    return f"<think>step</think> <answer>{a1}</answer> <reflection>look again</reflection> <think>step 2</think> <answer>{a2}</answer>"


@st.composite
def mutated_responses(draw):
    text = valid_response(draw(st.sampled_from(ANSWERS)), draw(st.sampled_from(ANSWERS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        i = draw(st.integers(0, len(text)))
        if op == "insert":
            piece = draw(st.one_of(st.sampled_from(TAGS), st.text(max_size=8)))
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            j = draw(st.integers(i, min(len(text), i + 12)))
            text = text[:i] + text[j:]
        else:
            j = draw(st.integers(i, len(text)))
            text = text[:j] + text[i:j] + text[j:]
    return text


def check(out, cfg=RewardConfig()):
    assert tuple(out) == SCORE_KEYS
    assert all(type(v) is float for v in out.values())
    lo, hi = cfg.score_bounds()
    assert lo - 1e-9 <= out["score"] <= hi + 1e-9
    for key in ("acc", "acc_first", "format", "fixed", "kept", "broke", "stayed_wrong", "reward_error"):
        assert out[key] in (0.0, 1.0)
    assert 0.0 <= out["f_len"] <= 1.0
    assert out["reward_error"] == 0.0  # no unexpected exception on any input
    total = sum(out[k] for k in ("fixed", "kept", "broke", "stayed_wrong"))
    assert total == out["format"]


@SETTINGS
@given(text=st.text(max_size=300), gold=st.sampled_from(GOLDS))
def test_arbitrary_text(text, gold):
    check(compute_score("any", text, gold))


@SETTINGS
@given(text=mutated_responses(), gold=st.sampled_from(GOLDS))
def test_mutated_valid_responses(text, gold):
    out = compute_score("any", text, gold)
    check(out)
    assert out["format"] == float(parse_response(text).ok)


weights = st.floats(-2, 2, allow_nan=False)


@SETTINGS
@given(
    text=mutated_responses(),
    fmt=weights,
    acc=weights,
    fixed=weights,
    kept=weights,
    broke=weights,
    alpha=weights,
    final=weights,
)
def test_bounds_hold_for_any_weights(text, fmt, acc, fixed, kept, broke, alpha, final):
    kw = dict(format_weight=fmt, acc_weight=acc, eff_fixed=fixed, eff_kept=kept, eff_broke=broke, len_alpha=alpha,
              final_acc_weight=final)
    check(compute_score("any", text, "5", **kw), RewardConfig(**kw))


@pytest.mark.parametrize("gold", [None, 3, 2.5, ["5"], {"x": 1}, b"5", float("nan")])
def test_odd_ground_truth_types_never_raise(gold):
    check(compute_score("any", valid_response("5", "5"), gold))
