"""examples/cpu_learn.sh up to its data stage: the scripted endpoint, the real builder, the paper's mix.

The whole learning run (about 30 minutes on 2 cores) is a command, not a CI test (docs/cpu_training.md,
"The learning run"); this runs its first two stages as the script does and checks the SFT data it makes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from srpo_data.offline import learn_task
from srpo_reward import grade_answer
from srpo_reward.format import parse_response

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cpu_learn_data_stage_builds_five_block_sft_data_with_the_papers_mix(tmp_path):
    env = {**os.environ, "WORKSPACE": str(tmp_path), "PYTHON": sys.executable, "STOP_AFTER": "data",
           "TRAIN_ROWS": "96", "TEST_ROWS": "8"}
    env.pop("VERL_PLATFORM", None)
    proc = subprocess.run(["bash", str(ROOT / "examples/cpu_learn.sh")], env=env, capture_output=True, text=True,
                          timeout=800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "STOP_AFTER=data: stopping" in out and not (tmp_path / "logs/sft.done").exists()
    summary = json.loads((tmp_path / "data/sft/summary.json").read_text())
    assert summary["complete"] and summary["samples_in"] == 96 and summary["failed_total"] == 0
    assert abs(summary["mix"]["first_right"] - 0.3) <= 0.05, summary["mix"]
    sft = pd.read_parquet(tmp_path / "data/sft/sft.parquet")
    assert len(sft) == summary["kept"] > 40
    corpus_lines = set(learn_task.corpus().splitlines())  # the tokenizer learned the targets as the builder wrote them
    for _, row in sft.iterrows():
        target = row["messages"][-1]["content"]
        parsed = parse_response(target)
        assert parsed.ok, target  # the reward's own format check
        first, rest = target.split(" <reflection>", 1)
        assert {first, "<reflection>" + rest.split(" <think>", 1)[0], "<think>" + rest.split(" <think>", 1)[1]} <= corpus_lines
        assert grade_answer(parsed.final_answer, row["ground_truth"]).correct
        assert grade_answer(parsed.first_answer, row["ground_truth"]).correct == bool(row["first_correct"])
    # the endpoint really was asked: one attempt and one revision per sample, one reflection per sample
    assert summary["this_run"]["policy"]["requests"] == 2 * 96 and summary["this_run"]["teacher"]["requests"] == 96
