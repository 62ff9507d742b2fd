"""A tiny random-weight Qwen2.5-VL, built fully offline, for tests.

Nothing here touches a model hub.  The folder written by
:func:`build_tiny_qwen25vl` has the same files and field names as the hub's
``Qwen/Qwen2.5-VL-7B-Instruct`` (flat ``config.json`` with a nested
``vision_config``, ``model.safetensors``, ``tokenizer.json`` /
``tokenizer_config.json``, ``chat_template.jinja``, ``preprocessor_config.json``,
``generation_config.json``) but tiny dimensions:

- the vocabulary is a byte-level BPE (Qwen2's pre-tokenizer) trained at build
  time on a small built-in corpus, followed by Qwen2.5's 22 special tokens in
  the hub's order, each a single id;
- the image processor keeps Qwen2.5-VL's patch size 14, merge size 2 and
  temporal patch size 2 (so image token counts follow the real rule
  ``(h/14) * (w/14) / 4``) but a small ``max_pixels`` so tests stay fast.

Token counts of plain text are therefore larger than with the real Qwen
vocabulary (a few hundred merges instead of 151k); image token counts are the
real ones for a given resized image size.

Usage::

    python -m srpo_data.offline.tiny_qwen --out /tmp/tiny_qwen25vl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any

# Qwen2.5's added tokens in the hub order (ids follow the regular vocabulary).
# ``special`` mirrors the hub's tokenizer_config.json: the tool-call and FIM
# tokens are added tokens but not "special" (they are kept when decoding with
# skip_special_tokens=True).
QWEN25_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)

# The chat template shipped with Qwen/Qwen2.5-VL-7B-Instruct (chat_template.json).
QWEN25_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Image processor settings: Qwen2.5-VL's geometry, small pixel budget.
PATCH_SIZE = 14
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
MIN_PIXELS = 4 * 28 * 28  # 2x2 merged tokens at least
MAX_PIXELS = 256 * 28 * 28  # at most 256 image tokens per image (448x448 fits exactly)

# Text model: hidden 64 as 2 heads of 32 (1 KV head), so mrope_section sums to 32 / 2 = 16.
# head_dim 32 is the smallest that vLLM-CPU's attention accepts ("Unsupported CPU attention
# configuration: head_dim=16" with 4 heads of 16); tests/offline/test_tiny_qwen_vllm.py serves it.
TEXT_DIMS: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 4096,
    "max_window_layers": 2,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "sliding_window": 4096,
    "use_sliding_window": False,
}
MROPE_SECTION = [4, 6, 6]
HEAD_DIM = TEXT_DIMS["hidden_size"] // TEXT_DIMS["num_attention_heads"]
assert sum(MROPE_SECTION) * 2 == HEAD_DIM, "mrope_section must cover head_dim / 2"
#: The default width; :func:`build_tiny_qwen25vl` takes others (multiples of HEAD_DIM).
WIDTH = TEXT_DIMS["hidden_size"]
VISION_DIMS: dict[str, Any] = {
    "depth": 2,
    "hidden_act": "silu",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "in_chans": 3,
    "out_hidden_size": TEXT_DIMS["hidden_size"],
    "patch_size": PATCH_SIZE,
    "spatial_merge_size": MERGE_SIZE,
    "spatial_patch_size": PATCH_SIZE,
    "window_size": 112,
    "fullatt_block_indexes": [1],
    "tokens_per_second": 2,
    "temporal_patch_size": TEMPORAL_PATCH_SIZE,
}


def dims(width: int = WIDTH) -> tuple[dict[str, Any], dict[str, Any]]:
    """(text, vision) dimensions of a tiny model ``width`` wide: heads of HEAD_DIM (the smallest vLLM-CPU
    serves, so the mrope sections stay), half as many KV heads (at least 1), an MLP twice as wide; the vision
    tower is the same, projecting to ``width``.  ``dims()`` is TEXT_DIMS and VISION_DIMS."""
    if width <= 0 or width % HEAD_DIM:
        raise ValueError(f"width must be a positive multiple of {HEAD_DIM} (heads of {HEAD_DIM}), got {width}")
    heads = width // HEAD_DIM
    text = {**TEXT_DIMS, "hidden_size": width, "intermediate_size": 2 * width, "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 2)}
    return text, {**VISION_DIMS, "out_hidden_size": width}

BPE_VOCAB_SIZE = 1024  # 256 byte symbols + merges learned from _CORPUS
SEED = 0

# Files that make a complete model folder (checked for idempotency).
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "chat_template.jinja",
)
_DONE_MARKER = ".tiny_qwen_complete"

_CORPUS = """
You are a helpful assistant. Look at the image and answer the question.
First think about the problem step by step, then give the final answer.
<think> The triangle has two equal sides, so the base angles are equal. </think>
<answer> \\boxed{42} </answer> <reflection> I checked the sum of the angles again. </reflection>
Find the value of x. Find the area of the shaded region. Find the perimeter of the figure.
What is the length of the side AB? Round your answer to the nearest tenth.
Choices: (A) 3 (B) 4 (C) 5 (D) 6. The answer is B. Option C is correct.
The function f(x) = 2x + 3 is increasing. The derivative of sin x is cos x.
A circle with radius 5 has circumference 10 pi and area 25 pi.
In the figure, line m is parallel to line n. The angle 1 measures 60 degrees.
How many objects are left after subtracting all red cubes? The chart shows the sales per year.
0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 0.5 1/2 \\frac{1}{2} \\sqrt{2} x^2 + y^2 = r^2
The quick brown fox jumps over the lazy dog. Therefore, the answer is correct.
"""


def build_fingerprint(width: int = WIDTH, corpus_extra: str = "") -> str:
    """A hash of everything that decides the built folder's content.

    Written into the done-marker: a folder built from another configuration (e.g. the former
    4 heads of 16, which vLLM-CPU refuses) is not "complete" and is rebuilt, so no cache of
    built models (the demo workspace, ``--out DIR`` reused) can hand out a stale model.
    """
    import hashlib

    text, vision = dims(width)
    spec = {
        "format": 2,
        "text": text,
        "mrope": MROPE_SECTION,
        "vision": vision,
        "pixels": [PATCH_SIZE, MERGE_SIZE, TEMPORAL_PATCH_SIZE, MIN_PIXELS, MAX_PIXELS],
        "tokens": QWEN25_ADDED_TOKENS,
        "bpe": [BPE_VOCAB_SIZE, _CORPUS, corpus_extra] if corpus_extra else [BPE_VOCAB_SIZE, _CORPUS],
        "template": QWEN25_VL_CHAT_TEMPLATE,
        "seed": SEED,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _complete(out_dir: Path) -> bool:
    marker = out_dir / _DONE_MARKER
    if not marker.is_file() or not all((out_dir / name).is_file() for name in REQUIRED_FILES):
        return False
    return marker.read_text(encoding="utf-8").strip() == build_fingerprint()


def _train_byte_level_bpe(corpus: str = _CORPUS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn a small byte-level BPE with Qwen2's pre-tokenizer on ``corpus``; returns (vocab, merges)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus.strip().splitlines() * 4, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges  # type: ignore[arg-type]


def _build_tokenizer(
    out_dir: Path,
    added_tokens: tuple[tuple[str, bool], ...] = QWEN25_ADDED_TOKENS,
    chat_template: str = QWEN25_VL_CHAT_TEMPLATE,
    corpus: str = _CORPUS,
) -> dict[str, int]:
    """Write the tokenizer files; return the ids of the added tokens.

    ``added_tokens`` (text, special) in the hub's order follow the BPE vocabulary; the Qwen3-VL
    builder (:mod:`srpo_data.offline.tiny_qwen3vl`) passes Qwen3's tokens and its own template.  The BPE is learned
    on ``corpus``.
    """
    from tokenizers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    vocab, merges = _train_byte_level_bpe(corpus)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        errors="replace",
        model_max_length=TEXT_DIMS["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    # Added tokens in the hub's order, appended after the BPE vocabulary.
    for text, special in added_tokens:
        tokenizer.add_tokens([AddedToken(text, special=special, normalized=False)], special_tokens=special)
    # As in the hub's tokenizer_config.json of the Instruct model.
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(out_dir)
    ids = {text: tokenizer.convert_tokens_to_ids(text) for text, _ in added_tokens}
    expected = list(range(len(vocab), len(vocab) + len(added_tokens)))
    if list(ids.values()) != expected:
        raise RuntimeError(f"added token ids are not contiguous after the vocabulary: {ids}")
    return ids


def _hub_config(ids: dict[str, int], vocab_size: int, width: int = WIDTH) -> dict[str, Any]:
    """config.json in the hub's flat layout (text fields top level, vision_config nested)."""
    text, vision = dims(width)
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "model_type": "qwen2_5_vl",
        **text,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "use_cache": True,
        "vision_config": vision,
        "rope_scaling": {"type": "mrope", "mrope_section": list(MROPE_SECTION)},
        "vocab_size": vocab_size,
    }


def _preprocessor_config() -> dict[str, Any]:
    return {
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "patch_size": PATCH_SIZE,
        "temporal_patch_size": TEMPORAL_PATCH_SIZE,
        "merge_size": MERGE_SIZE,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
    }


#: The sampling fields of the hub's Qwen2.5-VL-7B-Instruct generation_config.json.
QWEN25_VL_SAMPLING: dict[str, Any] = {"repetition_penalty": 1.05, "temperature": 0.1, "top_p": 0.001, "top_k": 1}


def _generation_config(ids: dict[str, int], sampling: dict[str, Any] = QWEN25_VL_SAMPLING) -> dict[str, Any]:
    # Same fields as the hub's generation_config.json (Qwen2.5-VL and Qwen3-VL differ only in sampling).
    return {
        "bos_token_id": ids["<|endoftext|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "do_sample": True,
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        **sampling,
    }


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _build_into(tmp: Path, width: int = WIDTH, corpus_extra: str = "") -> None:
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = _build_tokenizer(tmp, corpus=_CORPUS + corpus_extra)
    n_tokens = max(ids.values()) + 1
    vocab_size = ((n_tokens + 63) // 64) * 64  # padded like the hub's 152064 > 151665
    hub_config = _hub_config(ids, vocab_size, width)
    config = Qwen2_5_VLConfig(**{k: v for k, v in hub_config.items() if k != "architectures"})

    torch.manual_seed(SEED)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.save_pretrained(tmp, safe_serialization=True)
    # Replace the re-serialised config with the hub's flat layout and our generation config.
    _write_json(tmp / "config.json", hub_config)
    _write_json(tmp / "generation_config.json", _generation_config(ids))
    _write_json(tmp / "preprocessor_config.json", _preprocessor_config())
    (tmp / "chat_template.jinja").write_text(QWEN25_VL_CHAT_TEMPLATE, encoding="utf-8")
    (tmp / _DONE_MARKER).write_text(build_fingerprint(width, corpus_extra) + "\n", encoding="utf-8")


def build_tiny_qwen25vl(out_dir: str | os.PathLike[str], width: int = WIDTH, corpus_extra: str = "") -> Path:
    """Build (or reuse) a tiny random-weight Qwen2.5-VL folder at ``out_dir``.

    Idempotent: when ``out_dir`` already holds a complete model of the current
    configuration (its marker holds :func:`build_fingerprint`) it is returned
    untouched; a folder built from another configuration is rebuilt in place.
    The build goes to a sibling temporary folder whose files are moved in at
    the end (the marker last), so an interrupted build never looks complete.

    ``corpus_extra``: more lines for the tokenizer's BPE to learn from (the learning run's task words, so
    that ``hexagon`` is one token as in Qwen's real vocabulary, not five); part of the fingerprint.
    """
    dims(width)  # a bad width is refused before any work
    return build_folder(out_dir, lambda tmp: _build_into(tmp, width, corpus_extra),
                        build_fingerprint(width, corpus_extra), REQUIRED_FILES)


def build_folder(
    out_dir: str | os.PathLike[str],
    build_into: Callable[[Path], None],
    fingerprint: str,
    required: tuple[str, ...],
) -> Path:
    """Build (or reuse) a model folder: ``build_into(tmp)`` writes it, the done-marker holds ``fingerprint``.

    Shared by the tiny Qwen2.5-VL and Qwen3-VL builders; ``build_into`` must write the marker last.
    """
    out = Path(out_dir)
    marker = out / _DONE_MARKER
    if (
        marker.is_file()
        and all((out / name).is_file() for name in required)
        and marker.read_text(encoding="utf-8").strip() == fingerprint
    ):
        return out
    out.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # stale or partial: not complete while rebuilding
    tmp = Path(tempfile.mkdtemp(prefix=".tiny_qwen_build_", dir=out.parent))
    try:
        build_into(tmp)
        for item in sorted(tmp.iterdir(), key=lambda p: p.name == _DONE_MARKER):  # marker last
            item.chmod(0o644)
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a tiny random-weight Qwen2.5-VL folder offline (for tests).")
    parser.add_argument("--out", required=True, help="output folder (reused if it already holds a complete model)")
    parser.add_argument("--width", type=int, default=WIDTH,
                        help=f"hidden size, a multiple of {HEAD_DIM} (default {WIDTH}; the learning run uses 128)")
    args = parser.parse_args(argv)
    try:
        path = build_tiny_qwen25vl(args.out, args.width)
    except ValueError as e:
        parser.error(str(e))
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    print(f"tiny Qwen2.5-VL ready at {path} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
