"""Generation with the tiny Qwen2.5-VL on CPU, resuming, backend choice, and rollout imports."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eval_lookalikes import response, write_jsonl
from srpo_eval.convert import convert
from srpo_eval.data import load_data
from srpo_eval.generate import (
    HFGenerator,
    choose_backend,
    has_cuda,
    has_vllm,
    import_rollouts,
    main,
    run_generation,
    structured_messages,
)


@pytest.mark.parametrize(
    "requested,vllm_installed,cuda,expected",
    [
        pytest.param("auto", True, True, "vllm", id="auto-gpu-vllm"),
        pytest.param("auto", True, False, "hf", id="auto-no-gpu"),
        pytest.param("auto", False, True, "hf", id="auto-no-vllm"),
        pytest.param("hf", True, True, "hf", id="hf-forced"),
        pytest.param("vllm", True, True, "vllm", id="vllm-ok"),
        pytest.param("vllm", False, True, ValueError, id="vllm-missing"),
        pytest.param("vllm", True, False, ValueError, id="vllm-no-gpu"),
        pytest.param("tpu", True, True, ValueError, id="unknown"),
    ],
)
def test_choose_backend(requested, vllm_installed, cuda, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            choose_backend(requested, vllm_installed, cuda)
    else:
        assert choose_backend(requested, vllm_installed, cuda) == expected


def test_structured_messages_keep_image_and_text_order():
    msgs = [{"role": "user", "content": "<image><image>Compare them."}]
    assert structured_messages(msgs) == [
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare them."}]}
    ]


@pytest.fixture
def eval_parquet(releases, tmp_path) -> Path:
    """MMMU-Pro look-alike (first row has two images) converted to an eval parquet."""
    out = tmp_path / "mmmu.parquet"
    convert("mmmu_pro", releases["mmmu_pro"], out)
    return out


@pytest.fixture(scope="module")
def tiny_generator(tiny_qwen_dir):
    return HFGenerator(tiny_qwen_dir, max_new_tokens=4)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_hf_generation_resumes_and_skips_done_ids(tiny_generator, eval_parquet, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    s1 = run_generation(tiny_generator, eval_parquet, out, limit=1, model_name="tiny")
    assert (s1["generated"], s1["already_done"]) == (1, 0)
    recs = _lines(out)
    assert [r["id"] for r in recs] == ["mmmu_pro-test_Art_1"]
    r = recs[0]
    assert isinstance(r["response"], str) and r["source"] == "hf" and r["model"] == "tiny"
    assert 1 <= r["response_tokens"] <= 4 and r["finish_reason"] in ("stop", "length")
    # a second run only generates what is missing
    s2 = run_generation(tiny_generator, eval_parquet, out)
    assert (s2["generated"], s2["already_done"], s2["questions"]) == (1, 1, 2)
    assert [r["id"] for r in _lines(out)] == ["mmmu_pro-test_Art_1", "mmmu_pro-test_Math_2"]
    # nothing left: no new line
    assert run_generation(tiny_generator, eval_parquet, out)["generated"] == 0
    assert len(_lines(out)) == 2


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
    assert len(_lines(out)) == 1


def test_generate_cli_refuses_vllm_without_gpu(tiny_qwen_dir, eval_parquet, tmp_path, capsys):
    if has_vllm() and has_cuda():
        pytest.skip("vLLM and a GPU are present: the refusal cannot happen here")
    rc = main(["--model", str(tiny_qwen_dir), "--data", str(eval_parquet), "--out", str(tmp_path / "x.jsonl"), "--backend", "vllm"])
    assert rc == 2
    assert "--backend vllm" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not (has_vllm() and has_cuda()), reason="vLLM backend needs vllm installed and a CUDA GPU (none here)")
def test_vllm_generation_with_tiny_model(tiny_qwen_dir, eval_parquet, tmp_path):
    from srpo_eval.generate import VLLMGenerator

    gen = VLLMGenerator(tiny_qwen_dir, max_new_tokens=4, max_images=2, gpu_memory_utilization=0.3)
    out = tmp_path / "vllm.jsonl"
    s = run_generation(gen, eval_parquet, out, batch_size=2)
    assert s["generated"] == 2
    assert all(r["source"] == "vllm" and isinstance(r["response"], str) for r in _lines(out))


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
    recs = _lines(out)
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
    recs = _lines(out)
    assert [r["id"] for r in recs[:2]] == ["mmmu_pro-test_Art_1", "mmmu_pro-test_Math_2"]
    assert all(r["source"] == "verl_dump" for r in recs)
    assert load_data([eval_parquet]).items["mmmu_pro-test_Art_1"].ground_truth == "J"
