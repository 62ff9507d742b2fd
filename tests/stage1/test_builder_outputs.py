"""Outputs: RL parquet in, verl SFT parquet out (loaded by verl's MultiTurnSFTDataset), sharegpt."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builder_helpers import build_config, make_question_set
from srpo_data.stage1.builder.run import build
from srpo_reward.format import parse_response


@pytest.fixture
def built_from_rl_parquet(tmp_path: Path, fake_server):  # type: ignore[no-untyped-def]
    from srpo_data.rl.prepare_rl import main as prepare_main

    jsonl, answers = make_question_set(tmp_path / "data", 10)
    rl = tmp_path / "rl.parquet"
    assert prepare_main(["--source", "generic", "--input", str(jsonl), "--output", str(rl), "--no-progress"]) == 0
    srv = fake_server(answers=answers)
    out = tmp_path / "out"
    summary = build(build_config(rl, out, srv.base_url))
    assert summary["complete"] and summary["kept"] >= 2
    return rl, out, summary


def test_sft_rows_reuse_the_rl_prompt_and_hold_the_five_block_target(built_from_rl_parquet) -> None:  # type: ignore[no-untyped-def]
    rl, out, summary = built_from_rl_parquet
    rl_rows = pq.read_table(rl).to_pylist()
    rl_prompts = {json.dumps(r["prompt"]) for r in rl_rows}
    rows = pq.read_table(out / "sft.parquet").to_pylist()
    assert len(rows) == summary["kept"]
    assert sum(r["first_correct"] for r in rows) == summary["kept_first_right"]
    for r in rows:
        *prompt, answer = r["messages"]
        assert json.dumps(prompt) in rl_prompts  # the same user text stage 2 trains with
        assert answer["role"] == "assistant"
        assert parse_response(answer["content"]).ok
        assert len(r["images"]) == prompt[-1]["content"].count("<image>") == 1
    share = json.loads((out / "sharegpt.json").read_text())
    assert [s["messages"] for s in share] == [r["messages"] for r in rows]
    for s in share:
        assert all((out / p).is_file() for p in s["images"])
    info = json.loads((out / "dataset_info.json").read_text())
    entry = info["srpo_reflection_sft"]
    assert entry["file_name"] == "sharegpt.json" and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "images": "images"}


@pytest.mark.slow
def test_verl_multiturn_sft_dataset_loads_the_parquet(built_from_rl_parquet, tiny_qwen_dir) -> None:  # type: ignore[no-untyped-def]
    from omegaconf import OmegaConf
    from verl.utils import hf_processor, hf_tokenizer
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    _, out, summary = built_from_rl_parquet
    tokenizer = hf_tokenizer(str(tiny_qwen_dir))
    processor = hf_processor(str(tiny_qwen_dir))
    assert processor is not None, "verl returned no processor: images would be dropped silently"
    config = OmegaConf.create({"max_length": 8192, "truncation": "error", "messages_key": "messages", "image_key": "images"})
    ds = MultiTurnSFTDataset(str(out / "sft.parquet"), tokenizer, config, processor=processor)
    assert len(ds) == summary["kept"]
    rows = pq.read_table(out / "sft.parquet").to_pylist()
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size ** 2
    for i in range(len(ds)):
        item = ds[i]
        ids, mask = item["input_ids"], item["loss_mask"]
        mm = item["multi_modal_inputs"]
        assert "pixel_values" in mm and "image_grid_thw" in mm
        assert int((ids == image_pad).sum()) == int(mm["image_grid_thw"].prod(dim=-1).sum()) // merge
        # The trained tokens are the assistant turn: the five-block target.
        trained = tokenizer.decode(ids[mask.bool()])
        assert rows[i]["messages"][-1]["content"] in trained
        assert item["position_ids"].shape[0] == 4  # Qwen2.5-VL's (text + 3 rope) position ids
