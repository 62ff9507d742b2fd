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
from _data import write_builder_sft, write_geo3k_parquet, write_raw_geometry3k, write_raw_geometry3k_sizes  # noqa: E402

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
    proc = run_script(SCRIPTS["7b"], recipe_env, "data.train_batch_sizee=64", STAGES="sft,grpo",
                      POLICY_PATH=recipe_env["MODEL_PATH"])
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
        # 2 nodes x 6 GPUs, TP 4: 12 GPUs divide into 3 replicas, but the second straddles the two nodes
        pytest.param(["trainer.nnodes=2", "trainer.n_gpus_per_node=6", "data.train_batch_size=96",
                      "actor_rollout_ref.actor.ppo_mini_batch_size=96",
                      "actor_rollout_ref.rollout.tensor_model_parallel_size=4"], "batch arithmetic",
                     "does not divide the 6 GPUs per node", id="rollout-tp-does-not-divide-a-node"),
        pytest.param(["actor_rollout_ref.actor.use_kl_loss=true"], "KL term", "a KL loss that weighs nothing",
                     id="kl-loss-on-with-zero-coefficient"),
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
        pytest.param(["data.max_token_len_per_gpu=2048"], "micro batches", "at least 4096",
                     id="token-budget-below-cutoff"),
    ],
)
def test_sft_dry_run_fails_clearly(recipe_env, extra, check, fix):
    code, out = dry(sft_argv(recipe_env, *extra))
    assert code == 1
    assert f"[FAIL] sft: {check} -- " in out and fix in out


def test_grpo_dry_run_accepts_a_vllm_replica_over_whole_nodes(recipe_env):
    # verl 0.9.1 places a replica larger than a node on whole nodes (multi-node replicas): a note, not a refusal
    code, out = dry(grpo_argv(recipe_env, "trainer.nnodes=2", "actor_rollout_ref.rollout.tensor_model_parallel_size=16"))
    assert code == 0, out
    assert "[NOTE] grpo: batch arithmetic -- each vLLM replica spans 2 nodes" in out
    assert "1 vLLM replicas of 16 GPUs (TP=16), each over 2 nodes" in out


def test_grpo_dry_run_reports_the_kl_term_off(recipe_env):
    code, out = dry(grpo_argv(recipe_env))
    assert code == 0, out
    assert "[  OK] grpo: KL term -- off (use_kl_loss=false, use_kl_in_reward=false): no reference model is built" in out


# Prompt lengths with the tiny model: a 56x56 image gives about 500 tokens, 224x224 about 560.
SHORT, LONG, MAX_PROMPT = 56, 224, 540


def test_grpo_dry_run_runs_verls_length_filter_over_the_whole_train_file(recipe_env, tmp_path):
    # the first 3 rows fit (the rows the detailed check reads); the other 125 are over data.max_prompt_length
    train = write_geo3k_parquet(tmp_path / "train.parquet", rows=128, sizes=[SHORT] * 3 + [LONG] * 125)
    code, out = dry(grpo_argv(recipe_env, f"data.train_files={train}", f"data.max_prompt_length={MAX_PROMPT}"))
    assert code == 1
    fail = [line for line in out.splitlines() if line.startswith("[FAIL]")]
    assert len(fail) == 1 and fail[0].startswith("[FAIL] grpo: RL train length filter -- "), out
    assert "keeps 3 of the 128 rows" in fail[0] and "125 dropped" in fail[0]
    assert "fewer than one batch (128): verl would train 0 steps" in fail[0]


def test_grpo_dry_run_counts_dropped_prompts_when_a_batch_survives(recipe_env, tmp_path):
    train = write_geo3k_parquet(tmp_path / "train.parquet", rows=130, sizes=[SHORT] * 128 + [LONG] * 2)
    code, out = dry(grpo_argv(recipe_env, f"data.train_files={train}", f"data.max_prompt_length={MAX_PROMPT}"))
    assert code == 0, out
    assert "over all 130 rows of" in out and "128 kept, 2 dropped" in out
    assert "[NOTE] grpo: RL train length filter -- 2 prompts of" in out


def test_data_stage_sizes_prompts_as_the_grpo_stage_counts_them(recipe_env, tmp_path):
    """The data stage gets the GRPO stage's max_prompt_length and model: verl's filter then drops nothing."""
    data = tmp_path / "data"
    write_raw_geometry3k_sizes(data / "raw/geometry3k", [SHORT] * 64 + [LONG] * 64, test_rows=4)
    env = {**recipe_env, "DATA_DIR": str(data), "OUTPUT_DIR": str(tmp_path / "out")}
    real = subprocess.run(
        ["bash", str(SCRIPTS["7b"]), f"data.max_prompt_length={MAX_PROMPT}"],
        env={**env, "STAGES": "data", "SFT_DATA": str(data / "sft.parquet")}, capture_output=True, text=True,
        timeout=300,
    )
    assert real.returncode == 0, real.stderr[-3000:]
    assert "rows with images shrunk to fit max_prompt_length: 64" in real.stdout  # RL_ON_TOO_LONG=resize
    code, out = dry(grpo_argv(env, "data.train_batch_size=64", "actor_rollout_ref.actor.ppo_mini_batch_size=64",
                              f"data.max_prompt_length={MAX_PROMPT}"))
    assert code == 0, out
    assert "over all 128 rows of" in out and "128 kept, 0 dropped" in out


def test_grpo_stage_refuses_a_missing_policy_without_a_merge_stage(recipe_env, tmp_path):
    for dry_run in ("1", "0"):  # the real run refuses it too, before anything starts
        proc = subprocess.run(["bash", str(SCRIPTS["7b"])], capture_output=True, text=True, timeout=120,
                              env={**recipe_env, "STAGES": "grpo", "POLICY_PATH": "/typo", "DRY_RUN": dry_run})
        assert proc.returncode != 0
        assert "POLICY_PATH=/typo is not a model folder" in proc.stderr and "no merge stage" in proc.stderr
        assert "DRY RUN PASSED" not in proc.stdout


@pytest.mark.slow
def test_base_model_stands_in_only_while_the_merge_stage_is_scheduled(recipe_env):
    proc = run_script(SCRIPTS["7b"], recipe_env, STAGES="merge,grpo")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "holds no model yet (the merge stage writes it); checking with its base model" in out


def test_sft_micro_bsz_is_refused_with_the_knob_that_works(recipe_env):
    proc = run_script(SCRIPTS["7b"], recipe_env, STAGES="sft", SFT_MICRO_BSZ="2")
    assert proc.returncode != 0
    assert "SFT_MICRO_BSZ=2 would have no effect" in proc.stderr and "SFT_MAX_TOKENS_PER_GPU" in proc.stderr


def test_sft_max_tokens_per_gpu_reaches_verls_dynamic_batching(recipe_env):
    proc = run_script(SCRIPTS["7b"], recipe_env, STAGES="sft", SFT_MAX_TOKENS_PER_GPU="12288")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "dynamic batching: up to data.max_token_len_per_gpu=12288 tokens per GPU" in proc.stdout


def test_run_script_defaults_to_the_repos_environment(recipe_env, tmp_path):
    venv_python = ROOT / ".venv/bin/python"
    if not venv_python.exists():
        pytest.skip("no .venv in the repo (bash scripts/setup.sh creates it)")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python3").write_text("#!/bin/sh\necho 'not the project python' >&2\nexit 3\n")
    (fake_bin / "python3").chmod(0o755)
    env = {k: v for k, v in recipe_env.items() if k != "PYTHON"}
    env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", str(SCRIPTS["32b"])], env={**env, "DRY_RUN": "1", "STAGES": "merge"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not the project python" not in proc.stderr and "DRY RUN PASSED: merge stage" in proc.stdout


def test_cpu_dry_run_workspace_is_fresh_per_run(tmp_path):
    # a python that records where the demo workspace goes, then stops the script
    log = tmp_path / "calls.txt"
    stub = tmp_path / "python"
    stub.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexit 7\n")
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DEMO_DIR"}
    env.update(PYTHON=str(stub), TMPDIR=str(tmp_path))
    outs = []
    for _ in range(2):
        proc = subprocess.run(["bash", str(ROOT / "examples/cpu_dry_run.sh")], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 7
        outs.append(log.read_text().splitlines()[-1].split("--out ")[1].split(" --")[0])  # before --family
    assert outs[0] != outs[1]
    assert all(Path(o).parent == tmp_path and Path(o).is_dir() for o in outs)


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
    env = {k: v for k, v in recipe_env.items() if k != "GPUS"}  # no nvidia-smi here: the dry run picks 1 GPU
    proc = subprocess.run(["bash", str(SMOKE)], env={**env, "DRY_RUN": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "DRY RUN PASSED: grpo stage" in proc.stdout
    assert "verl validate_config -- 1 GPUs, batch 8 x n=8" in proc.stdout
    assert "filter metric 'acc' present" in proc.stdout  # the online filter stays on in the smoke run


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: the refusal path does not apply")
def test_smoke_script_refuses_to_train_without_a_gpu(recipe_env):
    proc = subprocess.run(["bash", str(SMOKE)], env=recipe_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no NVIDIA GPU here" in proc.stderr


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _has_gpu(), reason="needs a CUDA GPU (torch sees none here): two real GRPO steps with vLLM")
def test_smoke_script_two_grpo_steps_on_gpu(recipe_env, tmp_path):
    """examples/smoke_gpu.sh on the suite's tiny model: two GRPO steps, each logging every SRPO metric.

    The tiny model has random weights and earns 0 from the SRPO reward everywhere, so every group
    would be all wrong and the online filter would stop the run (max_num_gen_batches); the CPU
    run's toy reward (recipe/srpo/cpu/toy_reward.py: the SRPO reward plus a synthetic accuracy)
    gives it groups with spread, as in examples/cpu_train.sh."""
    import math

    from recipe.srpo.cpu.verify_run import expected_srpo_keys, parse_step_lines

    env = {**recipe_env, "OUTPUT_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(SMOKE), "reward.custom_reward_function.path=pkg://recipe.srpo.cpu.toy_reward"],
                          env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "smoke_gpu.sh: PASSED: 2 GRPO steps ran" in proc.stderr
    steps = parse_step_lines(proc.stdout)
    assert sorted(steps) == [1, 2], sorted(steps)
    for step, logged in steps.items():
        missing = [k for k in expected_srpo_keys() if k not in logged]
        assert missing == [], (step, missing)
        values = {k: logged[k] for k in expected_srpo_keys()}
        assert all(isinstance(v, float) and math.isfinite(v) for v in values.values()), (step, values)
        trained, generated = values["training/srpo/responses"], values["training/srpo/prefilter/responses"]
        assert trained > 0 and trained % 8 == 0 and generated >= trained  # whole groups of n=8 responses
        # the filter kept only groups with spread in acc: neither all right nor all wrong overall
        assert 0.0 < values["training/srpo/acc/mean"] < 1.0
        assert values["training/srpo/reward_error/mean"] == 0.0
