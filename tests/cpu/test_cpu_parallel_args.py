"""CPU_TRAIN=1 with SFT_SP=2 and NNODES=2 (examples/cpu_train_setup.sh): the overrides each needs reach its
stage, and what a CPU cannot run is refused before any work, with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Records the stages' commands (torchrun, main_srpo, the dry run) without running them; anything else (the
# setup's own checks: config.json, recipe.srpo.cpu.layout, compose) runs in the real interpreter.
_WRAPPER = """#!/usr/bin/env bash
case "$1 $2" in
    "-m torch.distributed.run"|"-m recipe.srpo.main_srpo"|"-m recipe.srpo.dry_run"|"-m srpo_data.prepare_rl")
        { printf 'CALL'; printf '\\t%s' "$@"; printf '\\n'; } >> "$STUB_LOG"; exit 0 ;;
esac
exec "$REAL_PYTHON" "$@"
"""


def tiny_config(folder: Path, model_type: str) -> Path:
    folder.mkdir()
    text = {"hidden_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1}
    cfg = {"model_type": model_type, "vision_config": {"num_heads": 2}}
    cfg.update({"text_config": text} if model_type == "qwen3_vl" else text)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def run(tmp_path: Path, model: Path, **env_extra: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    wrapper = tmp_path / "python"
    wrapper.write_text(_WRAPPER)
    wrapper.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    sft = tmp_path / "sft.parquet"
    sft.touch()
    env = {k: v for k, v in os.environ.items()
           if k not in ("NNODES", "GPUS_PER_NODE", "ROLLOUT_TP", "SFT_SP", "RAY_ADDRESS", "DRY_RUN", "MASTER_PORT")}
    env.update(PYTHON=str(wrapper), REAL_PYTHON=sys.executable, STUB_LOG=str(log), CPU_TRAIN="1",
               MODEL_PATH=str(model), POLICY_PATH=str(model), SFT_DATA=str(sft), OUTPUT_DIR=str(tmp_path / "out"),
               HOME=str(tmp_path), **env_extra)
    proc = subprocess.run(["bash", str(ROOT / "examples/run_qwen7b_srpo.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    return proc, [line.split("\t")[1:] for line in log.read_text().splitlines()]


def test_sft_sp_2_runs_verls_unpadded_path(tmp_path):
    proc, calls = run(tmp_path, tiny_config(tmp_path / "m", "qwen2_5_vl"), STAGES="sft", NNODES="2", SFT_SP="2",
                      MASTER_PORT="29777")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (torchrun,) = [c for c in calls if c[:2] == ["-m", "torch.distributed.run"]]
    assert "engine.ulysses_sequence_parallel_size=2" in torchrun and "model.use_remove_padding=true" in torchrun
    assert "--nnodes=2" in torchrun and "--master_port=29777" in torchrun


def test_sft_sp_2_is_refused_for_qwen3vl_before_any_work(tmp_path):
    proc, calls = run(tmp_path, tiny_config(tmp_path / "m", "qwen3_vl"), STAGES="sft", NNODES="2", SFT_SP="2")
    assert proc.returncode != 0
    assert "SFT_SP=2 refused for qwen3_vl" in proc.stderr and "monkey_patch.py:544-552" in proc.stderr
    assert calls == []


def test_nnodes_2_grpo_without_a_cluster_is_refused_before_any_work(tmp_path):
    proc, calls = run(tmp_path, tiny_config(tmp_path / "m", "qwen2_5_vl"), STAGES="grpo", NNODES="2")
    assert proc.returncode != 0
    assert "start one and set RAY_ADDRESS" in proc.stderr
    assert calls == []


@pytest.mark.parametrize("dry_run", ["0", "1"])
def test_nnodes_2_grpo_joins_the_cluster_with_the_runs_environment(tmp_path, dry_run):
    proc, calls = run(tmp_path, tiny_config(tmp_path / "m", "qwen2_5_vl"), STAGES="grpo", NNODES="2",
                      RAY_ADDRESS="127.0.0.1:30001", SRPO_CPU_SYNC_DUMP_DIR="/tmp/sync-dumps", DRY_RUN=dry_run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (grpo,) = [c for c in calls if c[1] in ("recipe.srpo.main_srpo", "recipe.srpo.dry_run")]
    for arg in ("+ray_kwargs.ray_init.address=127.0.0.1:30001", "ray_kwargs.ray_init.num_cpus=null",
                "ray_kwargs.ray_init.num_gpus=null", "trainer.nnodes=2",
                "+ray_kwargs.ray_init.runtime_env.env_vars.VERL_PLATFORM='cpu'",
                "+ray_kwargs.ray_init.runtime_env.env_vars.SRPO_CPU_SYNC_DUMP_DIR='/tmp/sync-dumps'",
                "+ray_kwargs.ray_init.runtime_env.env_vars.TOKENIZERS_PARALLELISM='false'"):
        assert arg in grpo, (arg, grpo)
