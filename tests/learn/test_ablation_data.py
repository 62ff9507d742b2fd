"""The ablation study's first stages on a small case (CI): the count task through the real data stage, then the
gate on a model that misses it (the untrained tiny model stands in for the SFT model): the study stops before any
GRPO run, with the numbers, and the verifier fails it.  The whole study (about 2 hours on 2 cores by the
estimate of docs/ablation.md) is a command, not a CI test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from srpo_data.offline import count_task as ct
from srpo_reward import grade_answer
from srpo_reward.format import parse_response

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--train-rows", "96", "--test-rows", "8", "--eval-samples", "2", "--max-new-tokens", "24"]


def study(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VERL_PLATFORM", None)
    return subprocess.run([sys.executable, "-m", "recipe.srpo.cpu.ablation", "--workspace", str(ws), *SMALL, *args],
                          env=env, capture_output=True, text=True, timeout=800, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_data_stage_builds_the_count_task_and_a_model_that_misses_the_gate_stops_the_study(tmp_path):
    ws = tmp_path / "ws"
    proc = study(ws, "--stop-after", "data")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    summary = json.loads((ws / "data/sft/summary.json").read_text())
    assert summary["complete"] and summary["samples_in"] == 96 and summary["failed_total"] == 0
    assert abs(summary["mix"]["first_right"] - ct.FIRST_RIGHT) <= 0.05, summary["mix"]
    assert summary["dropped"].get("final_wrong", 0) > 0  # the scripted revisions slip, and the builder drops those
    assert summary["this_run"]["policy"]["requests"] == 2 * 96 and summary["this_run"]["teacher"]["requests"] == 96
    sft = pd.read_parquet(ws / "data/sft/sft.parquet")
    corpus = set(ct.corpus().splitlines())
    kinds = set()
    for _, row in sft.iterrows():
        target = row["messages"][-1]["content"]
        parsed = parse_response(target)
        assert parsed.ok and grade_answer(parsed.final_answer, row["ground_truth"]).correct, target
        first, rest = target.split(" <reflection>", 1)
        refl, second = rest.split(" <think>", 1)
        assert {first, "<reflection>" + refl, "<think>" + second} <= corpus  # the tokenizer learned the builder's form
        kinds.add(grade_answer(parsed.first_answer, row["ground_truth"]).correct == bool(row["first_correct"]))
        assert "I read the list of words and count the word" in first  # the same words, right or wrong
    assert kinds == {True}
    assert set(sft["first_correct"]) == {True, False}

    # the untrained tiny model as the "SFT model": it writes no format, the gate misses, the study stops there
    shutil.copytree(ws / "tiny-qwen", ws / "outputs" / "sft_merged")
    for stage in ("sft", "merge"):
        (ws / "logs" / f"{stage}.done").write_text("0\n")
    proc = study(ws)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out[-4000:]
    assert "[FAIL] gate well_formed: 0.000 of 16 (95% Wilson 0.000 to" in out and "gate MISSED" in out
    assert "stops before any GRPO run" in out and not (ws / "runs").exists()
    assert json.loads((ws / "gate.json").read_text())["passed"] is False
    # the same study with other settings is refused, naming the difference
    proc = subprocess.run([sys.executable, "-m", "recipe.srpo.cpu.ablation", "--workspace", str(ws), *SMALL,
                           "--grpo-steps", "3"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2 and "grpo_steps: 6 (the study's) vs 3 (this run's)" in proc.stderr
    # the verifier fails the study: its gate was missed and no run was made
    proc = subprocess.run([sys.executable, "-m", "recipe.srpo.cpu.verify_ablation", "--workspace", str(ws)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 1
    assert "[FAIL] gate: the SFT model passed" in proc.stdout and "[FAIL] runs:" in proc.stdout
