"""Datasets that verl 0.9.1 loads through ``data.custom_cls.{path,name}``.

``SRPODataset`` (RL, stage 2) is verl's ``RLHFDataset`` with one change: the
user turn of every prompt is rewritten on the fly into the SRPO format prompt
(``srpo_reward.prompts.render_prompt``), with one ``<image>`` placeholder per
image in front of it.  A geo3k-style parquet made by verl's own preprocessing
(``prompt`` = chat messages, ``images``, ``reward_model.ground_truth``,
``extra_info.question``) therefore works unchanged, and so does a parquet made
by ``srpo_data.prepare_rl`` (whose prompt already is the SRPO prompt: left as is).

``SRPOSFTDataset`` (SFT, stage 1) is verl's ``MultiTurnSFTDataset`` with the
paper's image size cap (``data.max_image_pixels``) applied to every image.

The question text is taken from ``extra_info.question`` when the row has it
(verl's geo3k preprocessing stores the bare problem there), otherwise from the
user turn with its media placeholders removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.dataset.rl_dataset import RLHFDataset

from srpo_reward.prompts import QUESTION_PLACEHOLDER, load_format_prompt, render_prompt

_MEDIA_PLACEHOLDER = re.compile(r"<image>|<video>|<audio>")


def template_body() -> str:
    """The fixed text that every rendered SRPO prompt contains (the template minus ``{question}``)."""
    before, _, after = load_format_prompt().partition(QUESTION_PLACEHOLDER)
    return after.strip() or before.strip()


def has_srpo_prompt(text: str) -> bool:
    """True if ``text`` already carries the SRPO format prompt."""
    return template_body() in text


def strip_media_placeholders(text: str) -> str:
    return _MEDIA_PLACEHOLDER.sub("", text).strip()


def question_of(messages: Sequence[Mapping[str, Any]], extra_info: Mapping[str, Any] | None) -> str:
    """The bare question of a row: ``extra_info.question`` if present, else the last user turn's text."""
    if isinstance(extra_info, Mapping):
        question = extra_info.get("question")
        if isinstance(question, str) and question.strip():
            return strip_media_placeholders(question)
    user = _last_user_index(messages)
    content = messages[user]["content"]
    if not isinstance(content, str):
        raise TypeError(f"the user turn's content must be a string with <image> placeholders, got {type(content)}")
    return strip_media_placeholders(content)


def _last_user_index(messages: Sequence[Mapping[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    raise ValueError("the prompt has no user turn")


def apply_srpo_prompt(messages: Sequence[Mapping[str, Any]], extra_info: Mapping[str, Any] | None) -> list[dict]:
    """Return new chat messages whose last user turn is the SRPO format prompt.

    The user turn keeps its media: as many ``<image>``/``<video>`` placeholders as it
    had, in their original order, placed before the prompt text.  Messages that
    already carry the SRPO prompt are returned unchanged (as copies).
    """
    new = [dict(m) for m in messages]
    user = _last_user_index(new)
    content = new[user]["content"]
    if not isinstance(content, str):
        raise TypeError(f"the user turn's content must be a string with <image> placeholders, got {type(content)}")
    if has_srpo_prompt(content):
        return new
    media = "".join(_MEDIA_PLACEHOLDER.findall(content))
    new[user]["content"] = media + render_prompt(question_of(messages, extra_info))
    return new


def cap_image_pixels(images: Sequence[Any] | None, max_pixels: int | None) -> list[Any] | None:
    """Add ``max_pixels`` to every dict image (qwen-vl-utils then resizes within it); other types pass through."""
    if images is None or max_pixels is None:
        return None if images is None else list(images)
    if max_pixels <= 0:
        raise ValueError(f"data.max_image_pixels must be positive or null, got {max_pixels}")
    capped = []
    for image in images:
        if isinstance(image, Mapping):
            image = {**image, "max_pixels": int(max_pixels)}
        capped.append(image)
    return capped


class SRPODataset(RLHFDataset):
    """verl's RLHFDataset with the SRPO format prompt applied to every row on the fly."""

    def _build_messages(self, example: dict, key: str):
        row = dict(example)
        row[key] = apply_srpo_prompt(list(example[key]), example.get("extra_info"))
        images = row.get(self.image_key)
        max_pixels = self.config.get("max_image_pixels", None)
        if images is not None and max_pixels is not None:
            row[self.image_key] = cap_image_pixels(images, max_pixels)
        return super()._build_messages(row, key)


def is_qwen3vl_processor(processor: Any) -> bool:
    """True for the processor of a Qwen3-VL model (dense or MoE both use ``Qwen3VLProcessor``)."""
    return processor is not None and type(processor).__name__.startswith("Qwen3VL")


def has_video(example: Mapping[str, Any], video_key: str, messages_key: str) -> bool:
    """True if an SFT row carries a video: a non-empty video column or a ``<video>`` placeholder."""
    videos = example.get(video_key)
    if videos is not None and len(videos) > 0:
        return True
    messages = example.get(messages_key)
    return messages is not None and any(
        isinstance(m, Mapping) and isinstance(m.get("content"), str) and "<video>" in m["content"] for m in messages
    )


#: Why the SFT stage refuses video rows for Qwen3-VL (measured, ../shared/QWEN3_VL.md).
QWEN3VL_SFT_VIDEO = (
    "an SFT row has a video and the model is Qwen3-VL: verl 0.9.1's SFT dataset "
    "(verl/utils/dataset/multiturn_sft_dataset.py) computes position ids with the Qwen2-VL get_rope_index for every "
    "Qwen2VLImageProcessor, which crashes on a Qwen3-VL video (IndexError at verl/models/transformers/qwen2_vl.py:119: "
    "Qwen3-VL has one <|vision_start|> group per frame); images are unaffected. Drop the video rows from the SFT "
    "data (the SRPO data is image-only), or train them with Qwen2.5-VL"
)


class SRPOSFTDataset(MultiTurnSFTDataset):
    """verl's MultiTurnSFTDataset with ``data.max_image_pixels`` applied to every image.

    Video rows are refused for Qwen3-VL (:data:`QWEN3VL_SFT_VIDEO`) with a message instead of verl's crash.
    """

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1):
        self.max_image_pixels: int | None = config.get("max_image_pixels", None)
        super().__init__(parquet_files, tokenizer, config, processor=processor, max_samples=max_samples)

    def _build_messages(self, example: dict):
        if is_qwen3vl_processor(self.processor) and has_video(example, self.video_key, self.messages_key):
            raise ValueError(QWEN3VL_SFT_VIDEO)
        max_pixels = self.max_image_pixels
        if max_pixels is not None and self.image_key in example and example[self.image_key] is not None:
            example = {**example, self.image_key: cap_image_pixels(list(example[self.image_key]), max_pixels)}
        return super()._build_messages(example)
