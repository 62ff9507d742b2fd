"""A GRPO run that cannot get a batch stops with a clear error instead of refilling forever.

The random tiny Qwen2.5-VL as the policy (no SFT: it never writes the SRPO format), the real SRPO
reward (``srpo_reward.compute_score`` through the recipe's reward manager), the online acc filter on:
every response scores acc 0, so verl 0.9.1's V1 trainer would evict every group and refill forever
(tried: still running after 600 s, 0 steps).  With ``algorithm.filter_groups.max_num_gen_batches=2``
the recipe's replay buffer must end the run after two generation rounds with RefillBoundError.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.cpu_train
@pytest.mark.timeout(1200)
def test_grpo_on_a_format_less_policy_stops_within_the_bound(tmp_path, vllm_cpu_env):
    demo = subprocess.run([sys.executable, "-m", "srpo_data.offline.demo", "--out", str(tmp_path), "--train-rows", "8",
                           "--test-rows", "2", "--sft-rows", "4"], capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
    env = {**os.environ, "PYTHON": sys.executable, "CPU_TRAIN": "1", "MODEL_PATH": str(tmp_path / "tiny-qwen"),
           "DATA_DIR": str(tmp_path / "data"), "OUTPUT_DIR": str(tmp_path / "outputs"),
           "SFT_DATA": str(tmp_path / "data/sft/sft.parquet"), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("VERL_PLATFORM", None)
    script = str(ROOT / "examples/run_qwen7b_srpo.sh")
    data = subprocess.run(["bash", script], env={**env, "STAGES": "data"}, capture_output=True, text=True, timeout=600)
    assert data.returncode == 0, data.stderr[-3000:]
    # the random model itself is the policy; the reward is the recipe's default, srpo_reward.compute_score
    proc = subprocess.run(
        ["bash", script, "algorithm.filter_groups.max_num_gen_batches=2", "trainer.total_training_steps=2"],
        env={**env, "STAGES": "grpo", "POLICY_PATH": str(tmp_path / "tiny-qwen")},
        capture_output=True, text=True, timeout=1100,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert "RefillBoundError" in out, out[-6000:]
    assert "GRPO step 1 stopped after 2 generation rounds (4 prompts) without a full batch" in out, out[-6000:]
    assert "evicted every group without spread in 'acc' (acc=0 in every response: 4 group(s))" in out
    assert "well-formed rate 0.0%" in out and "check the SFT stage" in out
    assert "step:1 -" not in out  # no training step ran
