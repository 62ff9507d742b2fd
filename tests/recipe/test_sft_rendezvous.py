"""The SFT stage's torchrun rendezvous: one node without MASTER_PORT uses ``--standalone`` (a free port,
so two runs on one machine never collide on 29500: measured, the CPU main job's SFT died with
EADDRINUSE beside another run); several nodes, or a MASTER_PORT given, use the static rendezvous."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def torchrun_args(tmp_path: Path, python, **env_extra: str) -> list[str]:
    sft = tmp_path / "sft.parquet"
    sft.write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "NNODES", "CPU_TRAIN", "DRY_RUN")}
    env.update(**python.env, STAGES="sft", SFT_DATA=str(sft), MODEL_PATH=str(tmp_path),
               OUTPUT_DIR=str(tmp_path / "out"), HOME=str(tmp_path), **env_extra)
    proc = subprocess.run(["bash", str(ROOT / "examples/run_qwen7b_srpo.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = python.calls()
    runs = [c for c in calls if c[:2] == ["-m", "torch.distributed.run"]]
    assert len(runs) == 1, calls
    return runs[0][: runs[0].index("verl.trainer.sft_trainer")]


def test_one_node_without_a_port_is_standalone(tmp_path, recording_python):
    args = torchrun_args(tmp_path, recording_python)
    assert "--standalone" in args and not any(a.startswith("--master_port") for a in args)


@pytest.mark.parametrize("env, port", [({"MASTER_PORT": "29611"}, "29611"), ({"NNODES": "2"}, "29500")])
def test_a_port_or_several_nodes_is_static(tmp_path, recording_python, env, port):
    args = torchrun_args(tmp_path, recording_python, **env)
    assert "--standalone" not in args and f"--master_port={port}" in args
