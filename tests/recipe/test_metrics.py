"""Training-time reflection metrics added by recipe.srpo.main_srpo."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from recipe.srpo.metrics import reflection_metrics, reward_infos_from_extra_fields, step_reflection_metrics


def row(acc_first, acc, fmt=1.0):
    fixed = float(not acc_first and acc)
    kept = float(acc_first and acc)
    broke = float(acc_first and not acc)
    wrong = float(not acc_first and not acc)
    return {"score": 1.0, "acc": float(acc), "acc_first": float(acc_first), "format": fmt,
            "fixed": fixed, "kept": kept, "broke": broke, "stayed_wrong": wrong}


@pytest.mark.parametrize(
    "rows, expected",
    [
        pytest.param(
            [row(0, 1), row(0, 0), row(1, 1), row(1, 0)],
            {"fix_rate": 0.5, "break_rate": 0.5, "acc/mean": 0.5, "fixed/mean": 0.25, "responses": 4.0},
            id="one-of-each",
        ),
        pytest.param(
            [row(0, 1), row(0, 1), row(0, 0)],
            {"fix_rate": 2 / 3, "acc_first/mean": 0.0, "kept/mean": 0.0},
            id="all-first-wrong",
        ),
        pytest.param([row(1, 1), row(1, 1)], {"break_rate": 0.0, "acc/mean": 1.0}, id="all-kept"),
    ],
)
def test_reflection_metrics(rows, expected):
    out = reflection_metrics(rows)
    for key, value in expected.items():
        assert out[f"training/srpo/{key}"] == pytest.approx(value)


def test_rates_without_denominator_are_nan_not_zero():
    out = reflection_metrics([row(1, 1)])
    assert math.isnan(out["training/srpo/fix_rate"])


def test_empty_step():
    assert reflection_metrics([]) == {"training/srpo/responses": 0.0}


def test_key_missing_in_some_rows_is_not_averaged():
    rows = [row(0, 1), {**row(1, 1)}]
    del rows[1]["format"]
    out = reflection_metrics(rows)
    assert "training/srpo/format/mean" not in out and "training/srpo/acc/mean" in out


def test_reward_infos_from_extra_fields_unwraps_and_drops_padding():
    fields = [
        {"reward_extra_info": {"acc": 1.0}},
        SimpleNamespace(data={"reward_extra_info": {"acc": 0.0}}),  # tensordict NonTensorData-like
        {"reward_extra_info": {"acc": 1.0}},  # padding row
        {"other": 1},  # no reward dict
    ]
    infos = reward_infos_from_extra_fields(fields, keep=[True, True, False, True])
    assert infos == [{"acc": 1.0}, {"acc": 0.0}]


def test_step_metrics_log_trained_and_prefilter_sets():
    trained = [row(0, 1), row(0, 0)]
    evicted = [row(1, 1), row(1, 1), row(1, 0), row(1, 1)]  # e.g. an all-right group and a surplus one
    out = step_reflection_metrics(trained, evicted)
    assert out["training/srpo/responses"] == 2.0 and math.isnan(out["training/srpo/break_rate"])
    assert out["training/srpo/prefilter/responses"] == 6.0
    assert out["training/srpo/prefilter/break_rate"] == pytest.approx(0.25)
    assert out["training/srpo/prefilter/fix_rate"] == pytest.approx(0.5)


def test_step_metrics_without_evictions_are_equal():
    rows = [row(0, 1), row(1, 0)]
    out = step_reflection_metrics(rows, [])
    trained = {k.removeprefix("training/srpo/"): v for k, v in out.items() if "/prefilter/" not in k}
    prefilter = {k.removeprefix("training/srpo/prefilter/"): v for k, v in out.items() if "/prefilter/" in k}
    assert trained == prefilter and trained["fix_rate"] == 1.0
