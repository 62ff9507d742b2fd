"""The CPU dry run: both run scripts pass it with the tiny model, and each misconfiguration fails it clearly.

Data is made the way a user makes it: the RL parquet by the run script's own data stage
(``srpo_data.prepare_rl`` on a geometry3k-layout folder), the SFT parquet by the reflection
builder's writer.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _data import write_builder_sft, write_raw_geometry3k  # noqa: E402

from recipe.srpo import dry_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {"7b": ROOT / "examples/run_qwen7b_srpo.sh", "32b": ROOT / "examples/run_qwen32b_srpo.sh"}


@pytest.fixture(scope="module")
def recipe_env(tmp_path_factory, tiny_qwen_dir):
    """Environment for the run scripts: tiny model, data made by the project's preprocessors."""
    root = tmp_path_factory.mktemp("srpo_recipe")
    data = root / "data"
    write_raw_geometry3k(data / "raw/geometry3k", train_rows=128, test_rows=8)
    write_builder_sft(data / "sft", rows=256)
    (data / "reflection_builder.yaml").write_text(
        'policy: {base_url: "http://localhost:8000/v1", model: policy}\n'
        'teacher: {base_url: "http://localhost:8001/v1", model: teacher}\n'
    )
    env = {
        **os.environ,
        "MODEL_PATH": str(tiny_qwen_dir),
        "DATA_DIR": str(data),
        "OUTPUT_DIR": str(root / "out"),
        "PYTHON": sys.executable,
        "TOKENIZERS_PARALLELISM": "false",
    }
    # The real data stage (CPU-only): srpo_data.prepare_rl writes the RL parquet files.
    real = subprocess.run(
        ["bash", str(SCRIPTS["7b"])], env={**env, "STAGES": "data", "SFT_DATA": str(data / "sft/sft.parquet")},
        capture_output=True, text=True, timeout=300,
    )
    assert real.returncode == 0, real.stderr[-3000:]
    assert (data / "rl/train.parquet").is_file() and (data / "rl/val.parquet").is_file()
    return env


def run_script(script: Path, env: dict, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *args], env={**env, "DRY_RUN": "1", **extra_env},
        capture_output=True, text=True, timeout=400,
    )


@pytest.mark.slow
@pytest.mark.parametrize("size, gpus", [pytest.param("7b", 8, id="7b-8gpu"), pytest.param("32b", 32, id="32b-4x8gpu")])
def test_script_dry_run_passes_every_stage(recipe_env, size, gpus):
    proc = run_script(SCRIPTS[size], recipe_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "[FAIL]" not in out
    assert out.count("DRY RUN PASSED: data stage") == 3  # two prepare_rl calls + the reflection builder
    for stage in ("sft", "merge", "grpo"):
        assert f"DRY RUN PASSED: {stage} stage" in out
    assert f"verl validate_config -- {gpus} GPUs, batch 128 x n=8" in out
    assert "equal direct compute_score" in out
    assert "done: 4 stage(s)" in out
    assert not Path(recipe_env["OUTPUT_DIR"]).exists()  # a dry run writes nothing


@pytest.mark.slow
def test_script_stops_at_the_first_failing_stage(recipe_env):
    proc = run_script(SCRIPTS["7b"], recipe_env, "data.train_batch_sizee=64", STAGES="sft,grpo")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "DRY RUN PASSED: sft stage" in out
    assert "[FAIL] grpo: compose" in out and "Did you mean 'data.train_batch_size'" in out
    assert "done:" not in out


def test_script_routes_sft_prefixed_overrides_to_the_sft_stage(recipe_env):
    proc = run_script(SCRIPTS["7b"], recipe_env, "sft.optim.lrr=2e-5", STAGES="sft")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "[FAIL] sft: compose -- override 'optim.lrr=2e-5'" in out and "Did you mean 'optim.lr'?" in out


def test_script_rejects_an_unknown_stage(recipe_env):
    proc = run_script(SCRIPTS["7b"], recipe_env, STAGES="sft,rl")
    assert proc.returncode != 0
    assert "unknown stage 'rl'" in proc.stderr


def grpo_argv(env: dict, *extra: str) -> list[str]:
    """The GRPO stage's arguments as run_qwen7b_srpo.sh builds them (8 GPUs)."""
    data = Path(env["DATA_DIR"])
    return [
        "grpo", "--stand-in-model", env["MODEL_PATH"], "--",
        f"actor_rollout_ref.model.path={env['MODEL_PATH']}",
        f"data.train_files={data / 'rl/train.parquet'}",
        f"data.val_files={data / 'rl/val.parquet'}",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=2",
        "trainer.nnodes=1",
        "trainer.n_gpus_per_node=8",
        *extra,
    ]


def sft_argv(env: dict, *extra: str) -> list[str]:
    data = Path(env["DATA_DIR"])
    return ["sft", "--", f"model.path={env['MODEL_PATH']}", f"data.train_files={data / 'sft/sft.parquet'}",
            "trainer.nnodes=1", "trainer.n_gpus_per_node=8", *extra]


def dry(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = dry_run.run(argv, out=out)
    return code, out.getvalue()


@pytest.mark.parametrize(
    "extra, check, fix",
    [
        pytest.param(["data.train_batch_sizee=64"], "compose", "Did you mean 'data.train_batch_size'?",
                     id="misspelled-override-key"),
        pytest.param(["trainer.n_gpus_per_node=7"], "verl validate_config",
                     "data.train_batch_size must be a multiple of 7", id="gpus-do-not-divide-batch"),
        pytest.param(["actor_rollout_ref.rollout.tensor_model_parallel_size=3"], "batch arithmetic",
                     "tensor_model_parallel_size=3 does not divide the 8 GPUs", id="rollout-tp-does-not-divide"),
        pytest.param(["data.train_files=/nonexistent/train.parquet"], "RL data",
                     "/nonexistent/train.parquet does not exist", id="missing-data-file"),
        pytest.param(["reward.custom_reward_function.reward_kwargs.eff_fixd=0.6"], "compose",
                     "Did you mean 'reward.custom_reward_function.reward_kwargs.eff_fixed'?",
                     id="misspelled-reward-weight"),
        pytest.param(["+reward.custom_reward_function.reward_kwargs.eff_fixd=0.6"], "reward weights",
                     "did you mean 'eff_fixed'?", id="misspelled-reward-weight-with-plus"),
        pytest.param(["custom_reward_function.path=pkg://srpo_reward"], "legacy reward key",
                     "use reward.custom_reward_function.path=pkg://srpo_reward instead", id="legacy-reward-key"),
        pytest.param(["actor_rollout_ref.model.external_lib=null"], "vision freeze",
                     "Restore model.external_lib=recipe.srpo.freeze_vision", id="freeze-hook-removed"),
        pytest.param(["algorithm.filter_groups.metric=accuracy"], "scored rollouts", "use metric=acc",
                     id="filter-metric-not-in-reward"),
    ],
)
def test_grpo_dry_run_fails_clearly(recipe_env, extra, check, fix):
    code, out = dry(grpo_argv(recipe_env, *extra))
    assert code == 1
    fail_lines = [line for line in out.splitlines() if line.startswith("[FAIL]")]
    assert len(fail_lines) == 1 and fail_lines[0].startswith(f"[FAIL] grpo: {check} -- "), out
    assert fix in fail_lines[0]
    assert f"DRY RUN FAILED: grpo stage, check '{check}'" in out


@pytest.mark.parametrize(
    "extra, check, fix",
    [
        pytest.param(["data.train_batch_size=100"], "batch size", "Use a multiple of 8", id="batch-not-divisible"),
        pytest.param(["data.train_files=/nonexistent/sft.parquet"], "SFT data", "set SFT_DATA", id="missing-sft-file"),
        pytest.param(["optim.lrr=1e-5"], "compose", "Did you mean 'optim.lr'?", id="misspelled-key"),
    ],
)
def test_sft_dry_run_fails_clearly(recipe_env, extra, check, fix):
    code, out = dry(sft_argv(recipe_env, *extra))
    assert code == 1
    assert f"[FAIL] sft: {check} -- " in out and fix in out


def test_merge_dry_run_refuses_a_non_fsdp_backend(tmp_path):
    code, out = dry(["merge", "--", "merge", "--backend", "megatron", "--local_dir", str(tmp_path / "ck"),
                     "--target_dir", str(tmp_path / "hf")])
    assert code == 1 and "use 'merge --backend fsdp'" in out
    assert not (tmp_path / "hf").exists()  # verl's own config builder would have created it


@pytest.mark.parametrize(
    "argv, fix",
    [
        pytest.param(["--source", "nope", "--input", "x", "--output", "y.parquet"], "invalid choice: 'nope'",
                     id="prepare-rl-bad-source"),
        pytest.param(["--source", "geometry3k", "--input", "/nonexistent/raw", "--output", "y.parquet"],
                     "/nonexistent/raw does not exist", id="prepare-rl-missing-input"),
    ],
)
def test_data_dry_run_fails_clearly(argv, fix):
    code, out = dry(["data", "--module", "srpo_data.prepare_rl", "--", *argv])
    assert code == 1 and fix in out


def test_data_dry_run_checks_the_builder_config(tmp_path):
    argv = ["--config", str(tmp_path / "missing.yaml"), "--input", "x.parquet", "--out", str(tmp_path / "sft")]
    code, out = dry(["data", "--module", "srpo_data.build_reflections", "--", *argv])
    assert code == 1
    assert "[FAIL] data: build_reflections arguments -- " in out and "missing.yaml" in out


SMOKE = ROOT / "examples/smoke_gpu.sh"


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
def test_smoke_script_arguments_pass_the_dry_run(recipe_env):
    proc = subprocess.run(["bash", str(SMOKE)], env={**recipe_env, "DRY_RUN": "1", "GPUS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "DRY RUN PASSED: grpo stage" in proc.stdout


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: the refusal path does not apply")
def test_smoke_script_refuses_to_train_without_a_gpu(recipe_env):
    proc = subprocess.run(["bash", str(SMOKE)], env=recipe_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no NVIDIA GPU here" in proc.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not _has_gpu(), reason="needs a CUDA GPU (and vLLM): two real GRPO steps")
@pytest.mark.skipif("SRPO_SMOKE_MODEL" not in os.environ,
                    reason="set SRPO_SMOKE_MODEL to a local small Qwen2.5-VL folder (nothing is downloaded)")
def test_smoke_script_two_grpo_steps_on_gpu(recipe_env, tmp_path):
    env = {**recipe_env, "MODEL_PATH": os.environ["SRPO_SMOKE_MODEL"], "OUTPUT_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(SMOKE)], env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "training/srpo/fix_rate" in proc.stdout
