"""The Qwen3-VL run scripts: the arguments each stage gets, read without running a stage.

``PYTHON`` is a stub that records its arguments, so ``DRY_RUN=1`` hands the stub the argument
list of every stage (``python -m recipe.srpo.dry_run <stage> ...``) and nothing heavy runs.  The
tiny Qwen3-VL trained by run_qwen3vl8b_srpo.sh, and both Qwen3-VL scripts' dry run (CPU_TRAIN=1) on its
workspace, are in tests/cpu/test_cpu_train.py (``MODEL_FAMILY=qwen3vl bash examples/cpu_train.sh``); the
whole dry run with the GPU arguments, ``MODEL_FAMILY=qwen3vl bash examples/cpu_dry_run.sh``, is a command
(docs/qwen3vl.md says when it last ran), not a CI test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: script -> (default model folder under $HOME/models, experiment, nodes, SFT Ulysses SP, rollout TP)
SCRIPTS = {
    "run_qwen3vl8b_srpo.sh": ("Qwen3-VL-8B-Instruct", "srpo_qwen3vl_8b", 1, 1, 2),
    "run_qwen3vl32b_srpo.sh": ("Qwen3-VL-32B-Instruct", "srpo_qwen3vl_32b", 4, 2, 4),
    "run_qwen7b_srpo.sh": ("Qwen2.5-VL-7B-Instruct", "srpo_qwen25vl_7b", 1, 1, 2),
    "run_qwen32b_srpo.sh": ("Qwen2.5-VL-32B-Instruct", "srpo_qwen25vl_32b", 4, 2, 4),
}


def stage_args(tmp_path: Path, python, script: str, *extra: str, **env_extra: str) -> dict[str, list[str]]:
    """{stage: the arguments after '--'} that ``DRY_RUN=1 STAGES=sft,merge,grpo`` gives the dry run
    (``python``: the ``recording_python`` fixture of conftest.py)."""
    env = {**os.environ, **python.env, "DRY_RUN": "1", "STAGES": "sft,merge,grpo",
           "HOME": str(tmp_path / "home"), "SRPO_CONFIG_DIR": str(ROOT / "recipe/srpo/config"), **env_extra}
    for key in ("MODEL_PATH", "OUTPUT_DIR", "EXPERIMENT", "SFT_MAX_IMAGE_PIXELS", "CPU_TRAIN", "NNODES"):
        if key not in env_extra:
            env.pop(key, None)
    proc = subprocess.run(["bash", str(ROOT / "examples" / script), *extra], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stages = {}
    for call in python.calls():
        assert call[:2] == ["-m", "recipe.srpo.dry_run"], call
        stages[call[2]] = call[call.index("--") + 1 :]
    return stages


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_stage_arguments(tmp_path, recording_python, script):
    model, experiment, nodes, sp, tp = SCRIPTS[script]
    args = stage_args(tmp_path, recording_python, script)
    assert set(args) == {"sft", "merge", "grpo"}
    home = tmp_path / "home"
    sft, grpo = args["sft"], args["grpo"]
    assert f"model.path={home}/models/{model}" in sft
    assert f"trainer.nnodes={nodes}" in sft and f"engine.ulysses_sequence_parallel_size={sp}" in sft
    assert f"trainer.experiment_name={experiment}_sft" in sft
    assert f"trainer.default_local_dir={home}/outputs/{experiment}/sft" in sft
    assert f"actor_rollout_ref.model.path={home}/outputs/{experiment}/sft_merged" in grpo
    assert f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp}" in grpo
    assert f"trainer.nnodes={nodes}" in grpo and f"trainer.experiment_name={experiment}" in grpo
    caps = [a for a in sft if a.startswith("data.max_image_pixels=")]
    if "qwen3vl" in script:
        # the paper's 262144 px = 334 Qwen2.5-VL tokens (28x28 px each); 334 Qwen3-VL tokens (32x32) = 342016 px
        assert caps == ["data.max_image_pixels=342016"]
    else:
        assert caps == []  # the Qwen2.5-VL scripts keep the YAML's 262144
    assert not any(a.startswith("data.max_image_pixels=") for a in grpo)  # RL: the processor's own limit
    patches = [a for a in grpo if a.startswith("data.image_patch_size=")]
    # Qwen3-VL's patch 16 replaces verl's RL default 14 (Qwen2.5-VL's, which its scripts keep)
    assert patches == (["data.image_patch_size=16"] if "qwen3vl" in script else [])


@pytest.mark.parametrize("script", ["run_qwen3vl8b_srpo.sh", "run_qwen3vl32b_srpo.sh"])
def test_user_settings_win(tmp_path, recording_python, script):
    args = stage_args(tmp_path, recording_python, script, "sft.data.max_image_pixels=100352", "trainer.total_epochs=1",
                      MODEL_PATH="/models/thinking-instruct-template", SFT_MAX_IMAGE_PIXELS="200704")
    sft = args["sft"]
    assert "model.path=/models/thinking-instruct-template" in sft
    # the script's cap, then the user's sft. override after it (Hydra: the last one wins)
    caps = [a for a in sft if a.startswith("data.max_image_pixels=")]
    assert caps == ["data.max_image_pixels=200704", "data.max_image_pixels=100352"]
    assert "trainer.total_epochs=1" in args["grpo"] and "trainer.total_epochs=1" not in sft


def test_demo_workspace_of_the_qwen3vl_family(tmp_path):
    import json

    from srpo_data.offline.demo import main

    assert main(["--out", str(tmp_path), "--family", "qwen3vl", "--train-rows", "2", "--test-rows", "1",
                 "--sft-rows", "2"]) == 0
    config = json.loads((tmp_path / "tiny-qwen/config.json").read_text())
    assert config["model_type"] == "qwen3_vl"  # the folder name the CPU scripts use for either family


@pytest.mark.parametrize("script, folder_var", [("cpu_dry_run.sh", "DEMO_DIR"), ("cpu_train.sh", "WORKSPACE")])
def test_the_cpu_scripts_refuse_an_unknown_family_before_any_work(tmp_path, script, folder_var):
    env = {**os.environ, "MODEL_FAMILY": "qwen4vl", folder_var: str(tmp_path / "ws")}
    proc = subprocess.run(["bash", str(ROOT / "examples" / script)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert f"{script.removesuffix('.sh')}: unknown MODEL_FAMILY=qwen4vl; use qwen25vl or qwen3vl" in proc.stderr
    assert not (tmp_path / "ws").exists()
