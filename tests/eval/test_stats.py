"""Intervals, paired tests, pass@k / maj@k, breakdowns and the Table-1 layout of the report."""

from __future__ import annotations

import math

import pytest

from eval_lookalikes import eval_row, response, write_eval_parquet, write_jsonl
from srpo_eval.report import build_report
from srpo_eval.scoring import SampleResult
from srpo_eval.stats import (
    bootstrap_draws,
    coverage_warning,
    interval,
    majority_right,
    mcnemar_p,
    pass_at_k,
    paired_binary,
    sampling_block,
)


def res(qid: str, sample: int, final: bool, first: bool | None = None, answer: str | None = None, bench: str = "mathvista") -> SampleResult:
    first = final if first is None else first
    return SampleResult(
        id=qid, benchmark=bench, sample=sample, format_ok=True, format_reason="ok", first_correct=first,
        final_correct=final, has_first_answer=True, truncated=False, first_status="ok", final_status="ok",
        len_total=10, len_first=4, len_reflection=2, first_answer=answer, final_answer=answer,
    )


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        pytest.param(4, 0, 1, 0.0, id="none-right"),
        pytest.param(4, 4, 2, 1.0, id="all-right"),
        pytest.param(4, 1, 1, 0.25, id="pass1-is-the-share"),
        pytest.param(4, 1, 2, 1 - math.comb(3, 2) / math.comb(4, 2), id="pass2-unbiased"),
        pytest.param(4, 2, 4, 1.0, id="k-equals-n"),
    ],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_majority_vote():
    # two votes for "7" (right), one for "8": the majority is right
    assert majority_right([res("q", 0, False, answer="8"), res("q", 1, True, answer="7"), res("q", 2, True, answer=" 7 ")])
    # a tie goes to the answer seen first
    assert not majority_right([res("q", 0, False, answer="8"), res("q", 1, True, answer="7")])
    assert not majority_right([res("q", 0, False, answer=None)])


def test_sampling_block_only_with_several_samples():
    assert sampling_block([res("a", 0, True), res("b", 0, False)]) is None
    rs = [res("a", s, s == 0, answer=str(s)) for s in range(4)] + [res("b", s, True, answer="x") for s in range(4)]
    block = sampling_block(rs)
    assert list(block["pass_at"]) == ["1", "2", "4"]
    assert block["pass_at"]["1"] == pytest.approx((0.25 + 1) / 2)
    assert block["pass_at"]["4"] == pytest.approx(1.0)
    assert block["maj_at"]["1"] == pytest.approx(1.0)  # both questions' first sample is right
    assert block["maj_at"]["4"] == pytest.approx(1.0)  # a four-way tie in "a" goes to the first answer, which is right


def test_mcnemar_exact_values():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 5) == pytest.approx(2 * 0.5**5)  # two-sided exact binomial
    assert mcnemar_p(10, 10) == pytest.approx(1.0)


def test_paired_binary_counts_discordant_pairs():
    a = [True, True, False, False, False]
    b = [True, False, True, True, False]
    out = paired_binary(a, b, n_boot=500)
    assert (out["only_a"], out["only_b"], out["n"]) == (1, 2, 5)
    assert out["difference"] == pytest.approx(0.2)
    assert out["mcnemar_p"] == pytest.approx(1.0)
    lo, hi = out["ci95"]
    assert lo <= 0.2 <= hi


def test_bootstrap_interval_is_reproducible_and_covers_the_mean():
    vals = [1.0] * 30 + [0.0] * 70
    lo, hi = interval(bootstrap_draws(vals))
    assert lo < 0.3 < hi and hi - lo < 0.25
    assert interval(bootstrap_draws(vals)) == [lo, hi]
    assert interval(bootstrap_draws([])) is None


def test_coverage_warning():
    assert coverage_warning(["a", "b"], [{"1", "2"}, {"1", "2"}]) is None
    msg = coverage_warning(["a", "b"], [{"1", "2"}, {"1"}])
    assert "different questions" in msg and "1 in common" in msg


# ------------------------------------------------------------------ the report
@pytest.fixture
def two_runs(tmp_path):
    rows, i = [], 0
    for bench in ("mathvista", "mathverse", "mathvision", "mmmu_pro", "mmmu_pro_vision"):
        for k in range(4):
            row = eval_row(f"{bench}-{k}", bench, "B", "multiple_choice", ["1", "2", "3", "4"], f"Q {bench} {k}", i)
            row["extra_info"]["subject"] = "geometry" if k % 2 else "algebra"
            row["extra_info"]["skills"] = "arithmetic reasoning; logical reasoning" if k == 0 else "logical reasoning"
            rows.append(row)
            i += 1
    data = write_eval_parquet(tmp_path / "eval.parquet", rows)
    ids = [r["extra_info"]["id"] for r in rows]
    # run a: every first answer wrong, fixed on even k; run b: all right; b skips the last question
    a = [{"id": q, "response": response("A", "B" if int(q[-1]) % 2 == 0 else "A"), "response_tokens": 100} for q in ids]
    b = [{"id": q, "response": response("B", "B")} for q in ids[:-1]]
    pa, pb = write_jsonl(tmp_path / "a.jsonl", a), write_jsonl(tmp_path / "b.jsonl", b)
    return build_report([pa, pb], [data], tmp_path / "out", names=["grpo", "srpo"], plots=False, n_boot=300), tmp_path


def test_table1_columns_and_unweighted_average(two_runs):
    report, _ = two_runs
    t = report["runs"][0]["table1"]
    assert [t[c]["accuracy"] for c in ("MathVista", "MathVerse", "MathVision", "MMMU-Pro")] == [0.5, 0.5, 0.5, 0.5]
    assert t["MMMU-Pro"]["benchmarks"] == ["mmmu_pro", "mmmu_pro_vision"]
    tb = report["runs"][1]["table1"]
    assert tb["average"]["accuracy"] == pytest.approx(1.0)
    lo, hi = t["average"]["ci95"]
    assert lo <= 0.5 <= hi


def test_mmmu_pro_column_is_the_mean_of_its_two_settings(tmp_path):
    rows = [eval_row("s-1", "mmmu_pro", "B", "multiple_choice", ["1", "2"], "q1", 0),
            eval_row("s-2", "mmmu_pro", "B", "multiple_choice", ["1", "2"], "q2", 1),
            eval_row("v-1", "mmmu_pro_vision", "B", "multiple_choice", ["1", "2"], "q3", 2)]
    data = write_eval_parquet(tmp_path / "e.parquet", rows)
    run = write_jsonl(tmp_path / "r.jsonl", [{"id": "s-1", "response": response("B", "B")}, {"id": "s-2", "response": response("B", "B")},
                                            {"id": "v-1", "response": response("A", "A")}])
    t = build_report([run], [data], tmp_path / "o", plots=False, n_boot=100)["runs"][0]["table1"]
    assert t["MMMU-Pro"]["accuracy"] == pytest.approx(0.5)  # (1.0 + 0.0) / 2, not 2/3 pooled
    assert t["average"]["accuracy"] == pytest.approx(0.5) and t["average"]["columns"] == ["MMMU-Pro"]


def test_paired_comparison_and_warning(two_runs):
    report, _ = two_runs
    cmp = report["comparison"]
    assert cmp["paired_runs"] == ["grpo", "srpo"]
    assert "different questions" in cmp["coverage_warning"]
    acc = cmp["paired"]["overall"]["accuracy"]
    assert acc["n"] == 19 and acc["only_b"] == 9 and acc["only_a"] == 0
    assert acc["mcnemar_p"] == pytest.approx(2 * 0.5**9)
    assert cmp["table1_difference"]["MathVista"]["difference"] == pytest.approx(0.5)
    # fix rate: no question has a wrong first answer in both runs (b is always right first)
    assert cmp["paired"]["overall"]["fix_rate"]["n"] == 0


def test_breakdowns_per_category(two_runs):
    report, _ = two_runs
    mv = report["runs"][0]["benchmarks"]["mathvista"]["breakdowns"]
    assert mv["subject"]["categories"]["algebra"]["acc_final"] == 1.0  # k = 0, 2 are fixed
    assert mv["subject"]["categories"]["geometry"]["acc_final"] == 0.0
    skills = mv["skills"]["categories"]
    assert skills["logical reasoning"]["questions"] == 4 and skills["arithmetic reasoning"]["questions"] == 1


def test_report_md_layout(two_runs):
    _, tmp = two_runs
    md = (tmp / "out" / "report.md").read_text()
    table = md.index("| run | MathVista | MathVerse | MathVision | MMMU-Pro | average |")
    reflection = md.index("## Reflection")
    assert table < reflection
    assert "| grpo | 50.0 [" in md and "| srpo − grpo (paired) | +50.0 [" in md
    assert "**Warning:** runs cover different questions" in md
    # real token counts shown when the rollouts carry them (run a), n/a otherwise (run b)
    row_a = next(line for line in md.splitlines() if line.startswith("| grpo | 50.0% | n/a |"))
    assert "| 100.00 |" in row_a
