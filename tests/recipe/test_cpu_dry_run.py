"""The README's CPU dry-run command, exactly as written: examples/cpu_dry_run.sh."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_demo_workspace(tmp_path):
    from srpo_data.offline.demo import main
    from srpo_reward import parse_response

    assert main(["--out", str(tmp_path), "--train-rows", "4", "--test-rows", "2", "--sft-rows", "3"]) == 0
    assert (tmp_path / "tiny-qwen/config.json").is_file()
    raw = pd.read_parquet(tmp_path / "data/raw/geometry3k/train-00000-of-00001.parquet")
    assert len(raw) == 4 and set(raw.columns) >= {"problem", "answer", "images"}
    sft = pd.read_parquet(tmp_path / "data/sft/sft.parquet")
    assert len(sft) == 3
    assert all(parse_response(m[-1]["content"]).ok for m in sft["messages"])


@pytest.mark.slow
def test_cpu_dry_run_script(tmp_path):
    env = {**os.environ, "DEMO_DIR": str(tmp_path / "demo"), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "examples/cpu_dry_run.sh")], env=env, capture_output=True,
                          text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert out.count("DRY RUN PASSED: grpo stage") == 2  # 7B and 32B
    assert "cpu_dry_run: both scripts passed their dry run" in out
    assert (tmp_path / "demo/data/rl/train.parquet").is_file()  # the data stage ran for real
    assert not (tmp_path / "demo/outputs").exists()  # the dry runs wrote nothing
