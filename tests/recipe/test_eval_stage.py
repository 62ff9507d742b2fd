"""The run scripts' eval stage (STAGES=...,eval): dry-runnable, refuses an empty EVAL_DIR.

The real stage (merge, generate with base/SFT/policy, one report) runs at the end of
examples/cpu_train.sh, tested in tests/cpu/test_cpu_train.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import write_geo3k_parquet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def run_eval_stage(tmp_path: Path, model: Path, script: str = "run_qwen7b_srpo.sh") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "DRY_RUN": "1", "STAGES": "eval", "MODEL_PATH": str(model),
           "DATA_DIR": str(tmp_path / "data"), "OUTPUT_DIR": str(tmp_path / "out")}
    return subprocess.run(["bash", str(ROOT / "examples" / script)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_eval_stage_refuses_an_empty_eval_dir(tmp_path, tiny_qwen_dir):
    proc = run_eval_stage(tmp_path, tiny_qwen_dir)
    assert proc.returncode != 0
    assert f"EVAL_DIR={tmp_path / 'data/eval'}" in proc.stderr and "srpo_eval.convert" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("script", ["run_qwen7b_srpo.sh", "run_qwen32b_srpo.sh"])
def test_eval_stage_dry_run_checks_merge_generate_and_report(tmp_path, tiny_qwen_dir, script):
    write_geo3k_parquet(tmp_path / "data/eval/mathvista_like.parquet", rows=2, split="test")
    write_geo3k_parquet(tmp_path / "data/eval/mathverse_like.parquet", rows=2, split="test")
    proc = run_eval_stage(tmp_path, tiny_qwen_dir, script)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert out.count("DRY RUN PASSED: merge stage") == 1
    # base and the trained policy (no SFT model yet, no merge stage) on two files, then the report
    assert out.count("DRY RUN PASSED: eval stage") == 2 * 2 + 1
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
