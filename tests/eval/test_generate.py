"""Generation with the tiny Qwen2.5-VL on CPU, resuming, backend choice, and rollout imports."""

from __future__ import annotations

import json
import subprocess

import pyarrow.parquet as pq
import pytest

from eval_lookalikes import read_jsonl, response, run_vllm_generate, write_jsonl
from srpo_eval.data import load_data
from srpo_eval.generate import (
    HFGenerator,
    choose_backend,
    import_rollouts,
    main,
    parse_args,
    run_generation,
    structured_messages,
    vllm_engine_kwargs,
)


@pytest.mark.parametrize(
    "requested,vllm_installed,cuda,vllm_cpu,expected",
    [
        pytest.param("auto", True, True, False, "vllm", id="auto-gpu-vllm"),
        pytest.param("auto", True, False, False, "hf", id="auto-no-gpu"),
        pytest.param("auto", True, False, True, "hf", id="auto-vllm-cpu-stays-hf"),
        pytest.param("auto", False, True, False, "hf", id="auto-no-vllm"),
        pytest.param("hf", True, True, False, "hf", id="hf-forced"),
        pytest.param("vllm", True, True, False, "vllm", id="vllm-ok"),
        pytest.param("vllm", True, False, True, "vllm", id="vllm-cpu"),
        pytest.param("vllm", False, True, False, ValueError, id="vllm-missing"),
        pytest.param("vllm", True, False, False, ValueError, id="vllm-no-gpu-no-cpu-platform"),
        pytest.param("tpu", True, True, False, ValueError, id="unknown"),
    ],
)
def test_choose_backend(requested, vllm_installed, cuda, vllm_cpu, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            choose_backend(requested, vllm_installed, cuda, vllm_cpu)
    else:
        assert choose_backend(requested, vllm_installed, cuda, vllm_cpu) == expected


def test_structured_messages_keep_image_and_text_order():
    msgs = [{"role": "user", "content": "<image><image>Compare them."}]
    assert structured_messages(msgs) == [
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare them."}]}
    ]


@pytest.fixture(scope="module")
def tiny_generator(tiny_qwen_dir):
    return HFGenerator(tiny_qwen_dir, max_new_tokens=4)


def test_hf_backend_decodes_as_vllm_does_without_the_hub_repetition_penalty(tiny_generator, eval_parquet, tmp_path,
                                                                           monkeypatch):
    # the tiny model carries the hub's generation_config (repetition_penalty 1.05); measured on the learning
    # run's SFT model, that penalty costs about 10 points of well-formed samples, so the backends must agree
    assert tiny_generator.model.generation_config.repetition_penalty == 1.05
    seen = []
    real = tiny_generator.model.generate
    monkeypatch.setattr(tiny_generator.model, "generate", lambda **kw: seen.append(kw) or real(**kw))
    run_generation(tiny_generator, eval_parquet, tmp_path / "r.jsonl", limit=1)
    assert seen and all(kw["repetition_penalty"] == 1.0 and kw["do_sample"] is False for kw in seen)


def test_hf_generation_resumes_and_skips_done_ids(tiny_generator, eval_parquet, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    s1 = run_generation(tiny_generator, eval_parquet, out, limit=1, model_name="tiny")
    assert (s1["generated"], s1["already_done"]) == (1, 0)
    recs = read_jsonl(out)
    assert [r["id"] for r in recs] == ["mmmu_pro-test_Art_1"]
    r = recs[0]
    assert isinstance(r["response"], str) and r["source"] == "hf" and r["model"] == "tiny"
    assert 1 <= r["response_tokens"] <= 4 and r["finish_reason"] in ("stop", "length")
    # a second run only generates what is missing
    s2 = run_generation(tiny_generator, eval_parquet, out)
    assert (s2["generated"], s2["already_done"], s2["questions"]) == (1, 1, 2)
    assert [r["id"] for r in read_jsonl(out)] == ["mmmu_pro-test_Art_1", "mmmu_pro-test_Math_2"]
    # nothing left: no new line
    assert run_generation(tiny_generator, eval_parquet, out)["generated"] == 0
    assert len(read_jsonl(out)) == 2


def test_interrupted_half_line_is_regenerated_on_a_new_line(tiny_generator, eval_parquet, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    run_generation(tiny_generator, eval_parquet, out, limit=1)
    with out.open("a") as f:
        f.write('{"id": "mmmu_pro-test_Math_2", "resp')  # killed mid-write
    s = run_generation(tiny_generator, eval_parquet, out)
    assert s["generated"] == 1
    lines = out.read_text().splitlines()
    assert lines[1] == '{"id": "mmmu_pro-test_Math_2", "resp'
    assert json.loads(lines[2])["id"] == "mmmu_pro-test_Math_2"


def test_generate_cli_with_tiny_model(tiny_qwen_dir, eval_parquet, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    rc = main(["--model", str(tiny_qwen_dir), "--data", str(eval_parquet), "--out", str(out), "--backend", "hf", "--max-new-tokens", "3", "--limit", "1"])
    assert rc == 0
    assert "1 generated, 0 already done, of 1 questions" in capsys.readouterr().out
    assert len(read_jsonl(out)) == 1


@pytest.mark.parametrize(
    "installed,cuda,cpu_platform,says",
    [
        pytest.param(False, False, False, "vllm is not installed", id="no-vllm"),
        pytest.param(True, False, False, "no CPU platform", id="gpu-build-without-gpu"),
    ],
)
def test_generate_cli_refuses_vllm_it_cannot_run(tiny_qwen_dir, eval_parquet, tmp_path, capsys, monkeypatch,
                                                 installed, cuda, cpu_platform, says):
    import srpo_eval.generate as g

    monkeypatch.setattr(g, "has_vllm", lambda: installed)
    monkeypatch.setattr(g, "has_cuda", lambda: cuda)
    monkeypatch.setattr(g, "vllm_runs_on_cpu", lambda: cpu_platform)
    rc = main(["--model", str(tiny_qwen_dir), "--data", str(eval_parquet), "--out", str(tmp_path / "x.jsonl"), "--backend", "vllm"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--backend vllm" in err and says in err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(
    "flags,environ,vllm_cpu,utilization,kv_bytes",
    [
        pytest.param([], {}, True, 0.9, 1024**3, id="cpu-default-fixed-kv-cache"),
        pytest.param(["--cpu-kv-cache-gib", "3"], {}, True, 0.9, 3 * 1024**3, id="cpu-kv-cache-gib"),
        pytest.param(["--gpu-memory-utilization", "0.3"], {}, True, 0.3, None, id="cpu-asked-utilization"),
        pytest.param([], {"VLLM_CPU_KVCACHE_SPACE": "2"}, True, 0.9, None, id="cpu-env-kv-cache"),
        pytest.param([], {}, False, 0.9, None, id="gpu-default"),
        pytest.param(["--gpu-memory-utilization", "0.5"], {}, False, 0.5, None, id="gpu-asked-utilization"),
    ],
)
def test_vllm_cpu_gets_a_fixed_kv_cache_not_a_share_of_the_ram(flags, environ, vllm_cpu, utilization, kv_bytes):
    # vLLM-CPU 0.28 reads gpu_memory_utilization as the share of all RAM to reserve and refuses to start
    # unless that much is free (measured: 0.9 failed with 19.7 of 23.5 GiB free beside a training run).
    args = parse_args(["--model", "m", "--data", "d.parquet", "--out", "o.jsonl", "--backend", "vllm", *flags])
    kwargs = vllm_engine_kwargs(args, vllm_cpu, environ)
    assert kwargs["gpu_memory_utilization"] == utilization
    assert kwargs.get("kv_cache_memory_bytes") == kv_bytes
    assert kwargs["enforce_eager"] is vllm_cpu


@pytest.mark.slow
def test_vllm_backend_cli_with_tiny_model_on_cpu(tiny_qwen_dir, eval_parquet, tmp_path, vllm_cpu_env):
    """``python -m srpo_eval.generate --backend vllm`` as a user runs it: vLLM-CPU without a GPU
    (on a GPU machine, its GPU), both questions (the first has two images), then a resumed run
    that has nothing left to do and loads no model."""
    out = tmp_path / "vllm.jsonl"
    env = {k: v for k, v in vllm_cpu_env.items() if k != "VLLM_TARGET_DEVICE"}  # generate sets it itself
    cmd = run_vllm_generate(tiny_qwen_dir, eval_parquet, out, env, tmp_path)
    recs = read_jsonl(out)
    # The resumed run gets a model folder that no loader can read: it succeeds only if it loads no model.
    no_model = tmp_path / "no-model"
    no_model.mkdir()
    resume = [str(no_model) if a == str(tiny_qwen_dir) else a for a in cmd]
    again = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "0 generated, 2 already done, of 2 questions" in again.stdout
    assert read_jsonl(out) == recs
    # ... and that folder does stop a run that has a question left to generate (the check can fail).
    partial = tmp_path / "partial.jsonl"
    partial.write_text(out.read_text().splitlines(keepends=True)[0])
    left = [str(partial) if a == str(out) else a for a in resume]
    one_left = subprocess.run(left, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert one_left.returncode != 0 and str(no_model) in one_left.stderr, one_left.stderr[-4000:]
    assert read_jsonl(partial) == recs[:1]


# ------------------------------------------------------------------- imports
def test_import_user_jsonl(eval_parquet, tmp_path):
    src = write_jsonl(
        tmp_path / "theirs.jsonl",
        [
            {"id": "mmmu_pro-test_Art_1", "responses": [response("J", "J"), response("A", "J")]},
            {"id": "not-a-question", "response": "x"},
            {"id": "mmmu_pro-test_Math_2"},
            "{broken",
        ],
    )
    out = tmp_path / "ours.jsonl"
    s = import_rollouts(src, [eval_parquet], out)
    assert s["matched"] == 2
    assert s["unusable"] == {"unknown_id": 1, "missing_response": 1, "bad_json": 1}
    assert s["questions_without_response"] == 1
    recs = read_jsonl(out)
    assert len(recs) == 5  # unusable lines are kept, with their error
    assert [(r["id"], r["sample"]) for r in recs[:2]] == [("mmmu_pro-test_Art_1", 0), ("mmmu_pro-test_Art_1", 1)]
    assert sorted(r.get("error") for r in recs[2:]) == ["bad_json", "missing_response", "unknown_id"]


@pytest.mark.slow
def test_import_verl_validation_dump(tiny_qwen_dir, eval_parquet, tmp_path):
    """A dump written by verl 0.9.1's own writer, with inputs decoded as verl decodes them."""
    from transformers import AutoProcessor
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    proc = AutoProcessor.from_pretrained(str(tiny_qwen_dir), local_files_only=True)
    rows = pq.read_table(eval_parquet).to_pylist()
    inputs, gts = [], []
    for row in rows:
        text = proc.apply_chat_template(structured_messages(row["prompt"]), add_generation_prompt=True, tokenize=False)
        ids = proc.tokenizer(text.replace("<|image_pad|>", "<|image_pad|>" * 4))["input_ids"]
        inputs.append(proc.tokenizer.decode(ids, skip_special_tokens=True))  # as RayPPOTrainer._validate does
        gts.append(row["reward_model"]["ground_truth"])
    inputs.append("user\nsome other question\nassistant\n")
    gts.append("A")
    outputs = [response("J", "J"), response("A", "B"), "x"]
    dump = tmp_path / "val"
    RayPPOTrainer._write_generations(inputs, outputs, gts, [1.0, 0.5, 0.0], {"acc": [1.0, 1.0, 0.0]}, str(dump), 7)
    out = tmp_path / "ours.jsonl"
    s = import_rollouts(dump / "7.jsonl", [eval_parquet], out)
    assert s["matched"] == 2 and s["unusable"] == {"no_matching_question": 1}
    recs = read_jsonl(out)
    assert [r["id"] for r in recs[:2]] == ["mmmu_pro-test_Art_1", "mmmu_pro-test_Math_2"]
    assert all(r["source"] == "verl_dump" for r in recs)
    assert load_data([eval_parquet]).items["mmmu_pro-test_Art_1"].ground_truth == "J"
