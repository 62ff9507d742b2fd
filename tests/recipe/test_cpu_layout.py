"""recipe.srpo.cpu.layout: a parallel layout this CPU cannot run is refused before any work, with the numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recipe.srpo.cpu.layout import Layout, LayoutError, check_layout, main, model_heads

ROOT = Path(__file__).resolve().parents[2]
TINY = {"text heads": 2, "text KV heads": 1, "vision heads": 2}


def test_two_ranks_tp2_fits_two_cores():
    lines = check_layout(Layout(gpus_per_node=2, rollout_tp=2), cores=2, free_gib=20.0, heads=TINY)
    assert "ranks: 2 on 2 cores" in lines and any("1 vLLM engine(s) of 2 rank(s)" in line for line in lines)
    assert check_layout(Layout(gpus_per_node=2, rollout_tp=1), cores=2, free_gib=20.0, heads=TINY)


@pytest.mark.parametrize("layout, free, heads, reason", [
    (Layout(gpus_per_node=4), 50.0, TINY, "4 ranks (NNODES=1 x GPUS_PER_NODE=4) on 2 cores"),
    (Layout(nnodes=2, gpus_per_node=2), 50.0, TINY, "4 ranks (NNODES=2 x GPUS_PER_NODE=2) on 2 cores"),
    (Layout(gpus_per_node=2), 9.0, TINY, "2 ranks need about 11.0 GiB (6.0 GiB for the run, 2.5 GiB a rank, measured) "
                                         "but 9.0 GiB is free"),
    (Layout(gpus_per_node=2, rollout_tp=4), 50.0, TINY, "ROLLOUT_TP=4 does not divide the 2 ranks"),
    (Layout(gpus_per_node=2, rollout_tp=2), 50.0, {"text heads": 3}, "does not divide the model's 3 text heads"),
    (Layout(gpus_per_node=2, rollout_tp=2), 50.0, {"text heads": 2, "vision heads": 3}, "3 vision heads"),
    (Layout(gpus_per_node=2, rollout_tp=2), 50.0, {"text heads": 6, "text KV heads": 3}, "ROLLOUT_TP=2 and the model's 3 KV heads"),
    (Layout(gpus_per_node=2, sft_sp=2), 50.0, {"text heads": 3}, "SFT_SP=2 does not divide the model's 3 text attention heads"),
    (Layout(gpus_per_node=2, sft_sp=2), 50.0, {"text heads": 6, "text KV heads": 3}, "SFT_SP=2 and the model's 3 KV heads"),
    (Layout(gpus_per_node=0), 50.0, TINY, "gpus_per_node=0: must be at least 1"),
])
def test_refused_with_the_numbers(layout, free, heads, reason):
    with pytest.raises(LayoutError) as err:
        check_layout(layout, cores=2, free_gib=free, heads=heads)
    assert reason in str(err.value)


def test_model_heads_of_both_families(tiny_qwen_dir, tiny_qwen3vl_dir):
    for folder in (tiny_qwen_dir, tiny_qwen3vl_dir):
        heads = model_heads(folder)
        assert heads["text heads"] >= 1 and heads["vision heads"] >= 1 and "text KV heads" in heads


def test_cli_exit_status(capsys):
    assert main(["--gpus-per-node", "1"]) == 0
    assert main(["--gpus-per-node", "64"]) == 2
    assert "cpu layout: REFUSED: 64 ranks" in capsys.readouterr().err


@pytest.mark.slow
def test_run_script_refuses_before_any_stage(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "CPU_TRAIN": "1", "GPUS_PER_NODE": "64", "STAGES": "data,sft",
           "MODEL_PATH": str(tmp_path / "model"), "DATA_DIR": str(tmp_path / "data"), "OUTPUT_DIR": str(tmp_path / "out")}
    env.pop("ROLLOUT_TP", None)
    run = subprocess.run(["bash", str(ROOT / "examples/run_qwen7b_srpo.sh")], env=env, capture_output=True, text=True,
                         timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "cpu layout: REFUSED: 64 ranks (NNODES=1 x GPUS_PER_NODE=64)" in out and "refused (the reason above)" in out
    assert "stage data" not in out and not (tmp_path / "out").exists()  # nothing ran
