"""Prompt length of an RL row as verl 0.9.1 will see it: text tokens plus image tokens.

verl's ``RLHFDataset`` resizes each image twice before counting: first
``qwen_vl_utils.fetch_image`` (``smart_resize`` to multiples of
``2 * patch_size`` within its own min/max pixels), then the model's image
processor (``smart_resize`` within the processor's min/max pixels).  The
number of ``<|image_pad|>`` tokens is then ``grid_h * grid_w / merge_size**2``.
:class:`PromptLengthCounter` reproduces that arithmetic from the image sizes
alone (no pixel tensors), so a 37K-row set is checked in seconds; the tests
compare it against the real processor output.

When the prompt is over ``max_prompt_length`` the row is either dropped or its
images are shrunk until it fits (:func:`fit_prompt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from srpo_data.rl.rows import REASON_PROMPT_TOO_LONG, LoadedImage, SkipRow, resize_loaded

SPATIAL_MERGE_SIZE = 2  # qwen_vl_utils.vision_process.SPATIAL_MERGE_SIZE


@dataclass
class PromptLengthCounter:
    """Counts prompt tokens for a processor loaded with ``verl.utils.hf_processor``."""

    processor: Any

    @classmethod
    def from_model(cls, model_path: str) -> PromptLengthCounter:
        from verl.utils import hf_processor

        processor = hf_processor(model_path)
        if processor is None:
            raise RuntimeError(
                f"verl.utils.hf_processor({model_path!r}) returned no multimodal processor "
                "(text-only model, or torchvision missing): image tokens cannot be counted"
            )
        return cls(processor)

    @property
    def image_pad_token(self) -> str:
        return getattr(self.processor, "image_token", "<|image_pad|>")

    def image_tokens(self, width: int, height: int) -> int:
        """``<|image_pad|>`` tokens for one image of the given original size."""
        from qwen_vl_utils.vision_process import IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, smart_resize

        image_processor = self.processor.image_processor
        patch = image_processor.patch_size
        factor = patch * SPATIAL_MERGE_SIZE
        h1, w1 = smart_resize(
            height,
            width,
            factor=factor,
            min_pixels=IMAGE_MIN_TOKEN_NUM * factor**2,
            max_pixels=IMAGE_MAX_TOKEN_NUM * factor**2,
        )
        patches = image_processor.get_number_of_image_patches(h1, w1, {})
        return patches // (image_processor.merge_size**2)

    def text_tokens(self, content: str, n_images: int) -> int:
        """Tokens of the chat-templated prompt with one pad token per image."""
        messages = [{"role": "user", "content": _content_list(content, n_images)}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count(self, content: str, sizes: Sequence[tuple[int, int]]) -> int:
        """Prompt tokens of a row whose user ``content`` holds one ``<image>`` per size."""
        # each image contributes one <|image_pad|> to text_tokens; it expands to image_tokens
        return self.text_tokens(content, len(sizes)) + sum(self.image_tokens(w, h) - 1 for w, h in sizes)


def _content_list(content: str, n_images: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    pieces = content.split("<image>")
    if len(pieces) - 1 != n_images:
        raise ValueError(f"content has {len(pieces) - 1} <image> placeholders for {n_images} images")
    for i, piece in enumerate(pieces):
        if i > 0:
            parts.append({"type": "image"})
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def fit_prompt(
    counter: PromptLengthCounter,
    content: str,
    images: list[LoadedImage],
    max_prompt_length: int,
    resize: bool,
    shrink: float = 0.8,
) -> tuple[list[LoadedImage], int, bool]:
    """Return (images, prompt length, resized?) fitting ``max_prompt_length``.

    Without ``resize`` an over-long row raises :class:`SkipRow`
    (``prompt_too_long``).  With it every image of the row is scaled by
    ``shrink`` (in pixel count) until the prompt fits or the images reach
    the processor's minimum, in which case the row is dropped too.
    """
    sizes = [(img.width, img.height) for img in images]
    length = counter.count(content, sizes)
    if length <= max_prompt_length:
        return images, length, False
    if not resize or not images:
        raise SkipRow(REASON_PROMPT_TOO_LONG, f"{length} tokens > max_prompt_length {max_prompt_length}")
    text_only = counter.text_tokens(content, len(images)) - len(images)
    if text_only + 4 * len(images) > max_prompt_length:  # 4 tokens: the smallest image
        raise SkipRow(REASON_PROMPT_TOO_LONG, f"text alone is {text_only} tokens > {max_prompt_length}")
    pixels = [w * h for w, h in sizes]
    current = list(images)
    for _ in range(60):
        pixels = [max(1, int(p * shrink)) for p in pixels]
        trial = [(_scaled(w, h, p)) for (w, h), p in zip(sizes, pixels, strict=True)]
        length = counter.count(content, trial)
        if length <= max_prompt_length:
            current = [resize_loaded(img, w * h) for img, (w, h) in zip(images, trial, strict=True)]
            real = counter.count(content, [(img.width, img.height) for img in current])
            if real <= max_prompt_length:
                return current, real, True
    raise SkipRow(REASON_PROMPT_TOO_LONG, f"still {length} tokens after shrinking images")


def _scaled(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    from srpo_data.rl.rows import fit_within

    return fit_within(width, height, max_pixels)
