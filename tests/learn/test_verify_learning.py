"""The learning run's verifier (recipe/srpo/cpu/verify_learning.py), on console logs built from the real reward."""

from __future__ import annotations

import random

import pytest

from recipe.srpo.cpu import verify_learning as vl
from recipe.srpo.metrics import PREFILTER_PREFIX, reflection_metrics
from srpo_reward import compute_score

BASELINE = dict(acc_weight=0.0, eff_fixed=0.5, eff_kept=0.5, eff_broke=0.0, eff_stayed_wrong=0.0, ref_weight=0.0,
                len_alpha=0.0)


def response(first: str, final: str, well_formed: bool = True) -> str:
    text = (f"<think> The tile is a square. </think> <answer> \\boxed{{{first}}} </answer> <reflection> Check the "
            f"sides again. </reflection> <think> A square has four sides. </think> <answer> \\boxed{{{final}}} </answer>")
    return text if well_formed else text.replace("</reflection>", "")


def sample_step(rng: random.Random, p_first: float, n: int = 32, weights: dict | None = None) -> list[dict]:
    out = []
    for i in range(n):
        first = "4" if rng.random() < p_first else "5"
        final = "4" if rng.random() < 0.9 else "3"
        # one response in eight breaks the format, every step (the format check is not the subject here)
        out.append(compute_score("learn", response(first, final, i % 8 != 0), "4", None, **(weights or {})))
    return out


def console_line(step: int, infos: list[dict], evicted: int = 1) -> str:
    metrics = {**reflection_metrics(infos, PREFILTER_PREFIX), "response_length/mean": 150.0,
               "training/filter_groups/evicted_samples": float(evicted)}
    return f"(SRPOTaskRunner pid=7) step:{step} - " + " - ".join(f"{k}:{v}" for k, v in metrics.items())


def test_srpo_reward_recomputed_from_the_logged_means_is_the_papers():
    rng = random.Random(0)
    paper = sample_step(rng, 0.4)
    rows_paper = reflection_metrics(paper, PREFILTER_PREFIX)
    assert vl.srpo_reward_of(rows_paper) == pytest.approx(sum(r["score"] for r in paper) / len(paper), abs=1e-9)
    # the baseline's dicts (its own weights) still give the SRPO reward of the same responses
    rng = random.Random(0)
    baseline = sample_step(rng, 0.4, weights=BASELINE)
    assert vl.srpo_reward_of(reflection_metrics(baseline, PREFILTER_PREFIX)) == pytest.approx(
        sum(r["score"] for r in paper) / len(paper), abs=1e-9)
    assert sum(r["score"] for r in baseline) != sum(r["score"] for r in paper)


def workspace(tmp_path, p_first_by_step, baseline_p=0.4):
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(1)
    lines = [console_line(s + 1, sample_step(rng, p)) for s, p in enumerate(p_first_by_step)]
    (logs / "grpo.log").write_text("noise\n" + "\n".join(lines) + "\n")
    lines = [console_line(s + 1, sample_step(rng, baseline_p, weights=BASELINE)) for s in range(len(p_first_by_step))]
    (logs / "grpo_baseline.log").write_text("\n".join(lines) + "\n")
    return tmp_path


def by_name(checks):
    return {c.name: c for c in checks}


def test_a_run_whose_first_answers_improve_passes(tmp_path):
    ws = workspace(tmp_path, [0.2 + 0.025 * s for s in range(30)])
    checks, table, notes = vl.verify(ws)
    named = by_name(checks)
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    assert "exceeds the first 5" in " ".join(named)
    assert len(table.rows["srpo"]) == 30 and len(table.rows["grpo_baseline"]) == 30
    assert any(n.startswith("grpo_baseline") and "fix_rate" in n and "harm_rate" in n for n in notes)
    written = table.write(tmp_path / "out")
    assert [p.name for p in written] == ["steps.csv", "steps.md", "learning.png"]
    assert (tmp_path / "out" / "learning.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "out" / "steps.csv").read_text().splitlines()) == 61


def test_a_flat_run_fails_the_learning_check(tmp_path):
    ws = workspace(tmp_path, [0.4] * 30)
    named = by_name(vl.verify(ws)[0])
    learned = next(c for name, c in named.items() if "exceeds the first" in name)
    assert not learned.ok and "bootstrap interval" in learned.detail


def test_too_few_steps_fail(tmp_path):
    ws = workspace(tmp_path, [0.4] * 12)
    named = by_name(vl.verify(ws)[0])
    assert not named["srpo: GRPO steps logged"].ok and "12 steps" in named["srpo: GRPO steps logged"].detail


def test_bootstrap_interval_excludes_zero_only_for_a_real_shift():
    diff, lo, hi = vl.bootstrap_diff([1.0, 1.1, 1.05, 1.08, 1.02], [0.5, 0.55, 0.52, 0.49, 0.51])
    assert diff == pytest.approx(0.536, abs=1e-3) and 0 < lo < diff < hi
    diff, lo, hi = vl.bootstrap_diff([0.5, 0.7, 0.4, 0.6, 0.5], [0.6, 0.4, 0.5, 0.7, 0.5])
    assert lo < 0 < hi


def test_the_sft_check_pools_both_runs_first_step_weighted_by_responses(tmp_path):
    """Both runs' first step are the SFT model's own rollouts: 24/32 (75%) and 56/64 (87.5%) are 80/96 together."""
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(2)

    def step(n, malformed_every):
        return [compute_score("learn", response("4", "4", i % malformed_every != 0), "4", None) for i in range(n)]

    (logs / "grpo.log").write_text(console_line(1, step(32, 4)) + "\n" + console_line(2, sample_step(rng, 0.4)) + "\n")
    (logs / "grpo_baseline.log").write_text(console_line(1, step(64, 8)) + "\n")
    named = by_name(vl.verify(tmp_path, min_steps=1)[0])
    sft = named["sft: >= 80% of the SFT model's sampled rollouts are well-formed"]
    assert sft.ok and sft.detail.startswith("83.3% of 96 rollouts"), sft.detail
    assert "srpo step 1 75.0% of 32" in sft.detail and "grpo_baseline step 1 87.5% of 64" in sft.detail
    # the SRPO run's first step alone (75%) fails
    (logs / "grpo_baseline.log").unlink()
    sft = by_name(vl.verify(tmp_path, min_steps=1)[0])["sft: >= 80% of the SFT model's sampled rollouts are well-formed"]
    assert not sft.ok and sft.detail.startswith("75.0% of 32 rollouts"), sft.detail


def test_the_sft_check_fails_when_no_step_logged_its_responses(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "grpo.log").write_text("no step lines\n")
    sft = by_name(vl.verify(tmp_path, min_steps=1)[0])["sft: >= 80% of the SFT model's sampled rollouts are well-formed"]
    assert not sft.ok and "no GRPO step" in sft.detail


def test_wilson_interval():
    lo, hi = vl.wilson(0.8, 100)
    assert lo == pytest.approx(0.711, abs=1e-3) and hi == pytest.approx(0.867, abs=1e-3)
