"""compute_score: hand-computed totals, configuration, keys, and how verl 0.9.1 calls it."""

import asyncio
import concurrent.futures
import dataclasses
import math
import pickle

import pytest

from srpo_reward import SCORE_KEYS, RewardConfig, SRPOReward, compute_score
from srpo_reward.length import count_units


def resp(a1, a2, reflection="check the steps", t1="reasoning one", t2="reasoning two"):
    return f"<think>{t1}</think> <answer>{a1}</answer> <reflection>{reflection}</reflection> <think>{t2}</think> <answer>{a2}</answer>"


#: L / L1 = 2 exactly: f_len = 1, so alpha * f_len = 0.1.
AT_TARGET = {"srpo_token_counts": {"total": 200, "first_attempt": 100}}
#: L / L1 = 2.5 (T_max): f_len = exp(-1).
AT_MAX = {"srpo_token_counts": {"total": 250, "first_attempt": 100}}


@pytest.mark.parametrize(
    "a1, a2, total, transition",
    [
        # format .5 + acc .5 + kept .25 + ref .25 + len .1
        pytest.param("\\boxed{5}", "\\boxed{5}", 1.6, "kept", id="right-right"),
        # format .5 + acc 0 + fixed .5 + ref .25 + len .1
        pytest.param("\\boxed{7}", "\\boxed{5}", 1.35, "fixed", id="wrong-right"),
        # format .5 + acc .5 + broke -.25 + ref .25 + len .1
        pytest.param("\\boxed{5}", "\\boxed{7}", 1.1, "broke", id="right-wrong"),
        # format .5 + acc 0 + stayed 0 + ref .25 + len .1
        pytest.param("\\boxed{7}", "\\boxed{8}", 0.85, "stayed_wrong", id="wrong-wrong"),
    ],
)
def test_transitions_hand_computed(a1, a2, total, transition):
    out = compute_score("geo3k", resp(a1, a2), "5", AT_TARGET)
    assert out["score"] == pytest.approx(total)
    assert out["format"] == 1.0 and out["f_len"] == pytest.approx(1.0) and out["len_ratio"] == pytest.approx(2.0)
    assert out[transition] == 1.0
    assert sum(out[k] for k in ("fixed", "kept", "broke", "stayed_wrong")) == 1.0
    assert out["acc"] == float(transition in ("fixed", "kept"))
    assert out["acc_first"] == float(transition in ("kept", "broke"))
    assert out["grade_error"] == out["reward_error"] == 0.0  # a wrong answer is a verdict, not a grader error


def test_length_term_at_t_max():
    out = compute_score("geo3k", resp("5", "5"), "5", AT_MAX)
    assert out["f_len"] == pytest.approx(math.exp(-1))
    assert out["score"] == pytest.approx(1.5 + 0.1 * math.exp(-1))


def test_length_default_unit_is_ratio_of_approx_tokens():
    text = resp("5", "5", reflection="the area formula is right " * 3)
    out = compute_score("geo3k", text, "5")
    first = "<think>reasoning one</think> <answer>5</answer>"
    assert out["len_ratio"] == pytest.approx(count_units(text) / count_units(first))
    expected_f = math.exp(-(((out["len_ratio"] - 2.0) / 0.5) ** 2))
    assert out["f_len"] == pytest.approx(expected_f)


@pytest.mark.parametrize(
    "text, score, acc_first, acc",
    [
        pytest.param("<think>t</think> <answer>5</answer>", 0.5, 1.0, 1.0, id="one-attempt-right: acc only"),
        pytest.param("<think>t</think> <answer>4</answer>", 0.0, 0.0, 0.0, id="one-attempt-wrong"),
        pytest.param(resp("5", "5") + " extra", 0.5, 1.0, 1.0, id="trailing-text: no format, no reflection terms"),
        pytest.param(resp("4", "5").replace("<reflection>check the steps</reflection>", ""), 0.0, 0.0, 1.0, id="no-reflection"),
        # the hidden answer counts as the first one: no format, and A1 = 9 is wrong
        pytest.param(resp("5", "5", t1="t <answer>9</answer>"), 0.0, 0.0, 1.0, id="nested-answer-hack"),
        pytest.param(resp("5", "<answer>5</answer>"), 0.5, 1.0, 1.0, id="nested-in-answer"),
        pytest.param("The answer is 5", 0.0, 0.0, 0.0, id="no-blocks"),
        pytest.param("", 0.0, 0.0, 0.0, id="empty"),
        pytest.param(resp("5", ""), 0.5, 1.0, 0.0, id="empty-final-answer-is-not-correct"),
    ],
)
def test_format_failures(text, score, acc_first, acc):
    out = compute_score("geo3k", text, "5", AT_TARGET)
    assert out["format"] == 0.0
    assert out["r_eff"] == out["r_ref"] == out["r_len"] == out["f_len"] == 0.0
    assert sum(out[k] for k in ("fixed", "kept", "broke", "stayed_wrong")) == 0.0
    assert (out["score"], out["acc_first"], out["acc"]) == (pytest.approx(score), acc_first, acc)
    assert out["grade_error"] == out["reward_error"] == 0.0


def test_unparsable_ground_truth_earns_nothing_and_is_counted():
    out = compute_score("geo3k", resp("\\frac{", "\\frac{"), "\\frac{", AT_TARGET)
    assert out["gold_unparsable"] == 1.0
    assert out["acc"] == out["acc_first"] == 0.0
    # format and reflection terms are still paid, accuracy and fixed/kept are not
    assert out["score"] == pytest.approx(0.5 + 0.0 + 0.0 + 0.25 + 0.1)


@pytest.mark.parametrize(
    "kwargs, total_rr, total_wr",
    [
        pytest.param({}, 1.6, 1.35, id="paper-default"),
        pytest.param({"eff_fixed": 0.6}, 1.6, 1.45, id="override-one-weight"),
        pytest.param({"preset": "released"}, 2.1, 2.35, id="released-ranks-wrong-right-higher"),
        pytest.param({"preset": "released", "eff_fixed": 0.5}, 2.1, 1.35, id="preset-then-override"),
        pytest.param({"len_alpha": 0.0, "ref_weight": 0.0}, 1.25, 1.0, id="ablate-length-and-ref"),
    ],
)
def test_reward_kwargs(kwargs, total_rr, total_wr):
    rr = compute_score("geo3k", resp("5", "5"), "5", AT_TARGET, **kwargs)
    wr = compute_score("geo3k", resp("7", "5"), "5", AT_TARGET, **kwargs)
    assert (rr["score"], wr["score"]) == (pytest.approx(total_rr), pytest.approx(total_wr))


#: The standard GRPO reward "format + accuracy" of the ablation study (recipe.srpo.cpu.ablation's
#: format_and_final_acc_only arm): 0.5 for the format, 0.5 for a right final answer, nothing else.
FORMAT_AND_FINAL_ACC = dict(acc_weight=0.0, final_acc_weight=0.5, eff_fixed=0.0, eff_kept=0.0, eff_broke=0.0,
                            eff_stayed_wrong=0.0, ref_weight=0.0, len_alpha=0.0)


@pytest.mark.parametrize(
    "text, score",
    [
        pytest.param(resp("5", "5"), 1.0, id="right-right"),
        pytest.param(resp("7", "5"), 1.0, id="wrong-right: the same as right-right"),
        pytest.param(resp("5", "7"), 0.5, id="right-wrong: format only"),
        # the final answer's accuracy is paid without the format, as acc_weight is for A1
        pytest.param(resp("7", "5") + " extra", 0.5, id="malformed, final right"),
        pytest.param(resp("5", "7") + " extra", 0.0, id="malformed, only the first right"),
        pytest.param("<think>t</think> <answer>5</answer>", 0.5, id="one attempt, right"),
    ],
)
def test_final_acc_weight_makes_format_plus_final_accuracy(text, score):
    out = compute_score("geo3k", text, "5", AT_TARGET, **FORMAT_AND_FINAL_ACC)
    assert out["score"] == pytest.approx(score)
    assert out["r_acc"] == pytest.approx(0.5 * out["acc"]) and out["r_eff"] == out["r_ref"] == out["r_len"] == 0.0
    # off by default: the paper's reward is unchanged
    assert RewardConfig().final_acc_weight == 0.0


def test_paper_default_ranks_right_right_above_wrong_right():
    rr = compute_score("x", resp("5", "5"), "5", AT_TARGET)["score"]
    wr = compute_score("x", resp("7", "5"), "5", AT_TARGET)["score"]
    assert rr > wr


def test_misspelled_weight_is_an_error_naming_valid_ones():
    with pytest.raises(TypeError) as err:
        compute_score("geo3k", resp("5", "5"), "5", None, eff_fixd=0.6)
    msg = str(err.value)
    assert "eff_fixd" in msg and "did you mean 'eff_fixed'" in msg and "len_alpha" in msg


@pytest.mark.parametrize(
    "kwargs, error",
    [
        pytest.param({"eff_fixed": "high"}, TypeError, id="string-weight"),
        pytest.param({"eff_fixed": True}, TypeError, id="bool-weight"),
        pytest.param({"len_alpha": float("nan")}, ValueError, id="nan"),
        pytest.param({"len_max_ratio": 1.5}, ValueError, id="max-below-target"),
        pytest.param({"grade_timeout": 0}, ValueError, id="zero-timeout"),
        pytest.param({"length_unit": "bytes"}, ValueError, id="unknown-unit"),
        pytest.param({"preset": "mine"}, ValueError, id="unknown-preset"),
    ],
)
def test_invalid_config_values(kwargs, error):
    with pytest.raises(error):
        RewardConfig.from_kwargs(**kwargs)


def test_config_is_frozen_and_coerces_ints():
    cfg = RewardConfig.from_kwargs(eff_fixed=1)
    assert isinstance(cfg.eff_fixed, float)
    with pytest.raises(dataclasses.FrozenInstanceError, match="eff_fixed"):
        cfg.eff_fixed = 2.0  # type: ignore[misc]
    assert cfg.eff_fixed == 1.0


def test_verl_manager_kwargs_are_accepted():
    out = compute_score("geo3k", resp("5", "5"), "5", None, reward_router_address=None, reward_model_tokenizer=object())
    assert out["kept"] == 1.0


def test_same_keys_and_numeric_on_every_path():
    cases = [
        (resp("5", "5"), "5", None),
        ("garbage", "5", None),
        (None, "5", None),
        (resp("5", "5"), None, {"options": 3}),
        (resp("B", "B"), "B", {"options": ["1", "2"], "answer_type": "multiple_choice"}),
    ]
    for text, gold, extra in cases:
        out = compute_score("geo3k", text, gold, extra)
        assert tuple(out) == SCORE_KEYS
        assert all(type(v) is float for v in out.values())


def test_unexpected_error_scores_zero_and_is_visible(monkeypatch):
    import srpo_reward.reward as reward_mod

    def boom(*a, **k):
        raise RuntimeError("bug")

    monkeypatch.setattr(reward_mod, "parse_response", boom)
    out = compute_score("geo3k", resp("5", "5"), "5")
    assert out["reward_error"] == 1.0 and out["score"] == 0.0 and tuple(out) == SCORE_KEYS


def test_pickled_reward_scores_the_same():
    reward = SRPOReward(RewardConfig.from_kwargs(eff_fixed=0.7))
    clone = pickle.loads(pickle.dumps(reward))
    text = resp("7", "\\frac{10}{2}")
    assert clone("geo3k", text, "5", AT_TARGET) == reward("geo3k", text, "5", AT_TARGET)
    assert clone.config == reward.config


def test_worker_thread_and_asyncio_executor_match_direct_calls():
    texts = [resp("\\frac{1}{2}", "0.5"), resp("x^2+1", "1+x^2"), resp("7", "5"), resp("B", "(B)")]
    golds = ["0.5", "x^2+1", "5", "B"]
    direct = [compute_score("geo3k", t, g) for t, g in zip(texts, golds)]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda tg: compute_score("geo3k", *tg), zip(texts, golds)))

    async def via_executor():
        loop = asyncio.get_running_loop()
        # exactly how verl 0.9.1's NaiveRewardManager calls a sync compute_score
        calls = [
            loop.run_in_executor(
                None,
                lambda t=t, g=g: compute_score(data_source="geo3k", solution_str=t, ground_truth=g, extra_info={}),
            )
            for t, g in zip(texts, golds)
        ]
        return await asyncio.gather(*calls)

    assert threaded == direct
    assert asyncio.run(via_executor()) == direct
    assert [d["acc"] for d in direct] == [1.0, 1.0, 1.0, 1.0]


def test_loadable_through_verls_own_loader():
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://srpo_reward",
                    "name": "compute_score",
                    "reward_kwargs": {"eff_fixed": 0.6},
                }
            }
        }
    )
    fn = get_custom_reward_fn(cfg)
    out = fn(data_source="geo3k", solution_str=resp("7", "5"), ground_truth="5", extra_info=AT_TARGET)
    assert out["r_eff"] == pytest.approx(0.6)
