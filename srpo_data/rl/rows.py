"""Shared pieces for turning (question, answer, images) into verl 0.9.1 RL rows.

Used by the RL preprocessors (:mod:`srpo_data.rl.sources`) and by the eval
benchmark converters.  Everything here is a pure function of its inputs
(files are only read, never written).

Row schema (what ``verl.utils.dataset.rl_dataset.RLHFDataset`` reads)::

    data_source   str
    prompt        [{"role": "user", "content": "<image><image>...SRPO prompt"}]
    images        [{"bytes": b"..."}]          # PNG or JPEG, one per <image>, in order
    ability       str                           # "math"
    reward_model  {"style": "rule", "ground_truth": str}
    extra_info    {"split", "index", "question", "answer", "id", ...source extras (str or None)}

Bad input raises :class:`SkipRow` with one of the ``REASON_*`` codes; callers
count and report them instead of failing the whole run.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

# --- skip reasons -----------------------------------------------------------------
REASON_EMPTY_QUESTION = "empty_question"
REASON_MISSING_ANSWER = "missing_answer"
REASON_NON_STRING_ANSWER = "non_string_answer"
REASON_MISSING_IMAGE = "missing_image"
REASON_UNREADABLE_IMAGE = "unreadable_image"
REASON_IMAGE_TOO_LARGE = "image_too_large"
REASON_PATH_ESCAPE = "path_escape"
REASON_PLACEHOLDER_MISMATCH = "image_placeholder_mismatch"
REASON_BAD_EXAMPLE = "bad_example"
REASON_PROMPT_TOO_LONG = "prompt_too_long"

SKIP_REASONS: tuple[str, ...] = (
    REASON_EMPTY_QUESTION,
    REASON_MISSING_ANSWER,
    REASON_NON_STRING_ANSWER,
    REASON_MISSING_IMAGE,
    REASON_UNREADABLE_IMAGE,
    REASON_IMAGE_TOO_LARGE,
    REASON_PATH_ESCAPE,
    REASON_PLACEHOLDER_MISMATCH,
    REASON_BAD_EXAMPLE,
    REASON_PROMPT_TOO_LONG,
)

# Pixel count above which an image is treated as a decompression bomb and the
# row skipped.  Same value as Pillow's own warning threshold
# (``PIL.Image.MAX_IMAGE_PIXELS``): ~89.5 MP, e.g. 9460x9460.
DEFAULT_PIXEL_LIMIT = 89_478_485

IMAGE_PLACEHOLDER = "<image>"
DEFAULT_ABILITY = "math"
# extra_info keys every row has, whatever the source.
BASE_EXTRA_KEYS: tuple[str, ...] = ("split", "index", "question", "answer", "id")


class SkipRow(Exception):
    """A row that cannot be converted; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}; expected one of {SKIP_REASONS}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageOptions:
    """How images are located and checked.

    ``root``: folder that relative image paths are resolved against; a path
    that resolves outside it (``..``, absolute elsewhere, symlink out) is
    refused.  ``None`` refuses every path-only image.
    ``pixel_limit``: images with more pixels are refused (decompression bombs).
    ``max_pixels``: images with more pixels are downscaled (aspect kept) to
    fit; ``None`` keeps the original size.
    """

    root: Path | None = None
    pixel_limit: int = DEFAULT_PIXEL_LIMIT
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        if self.pixel_limit <= 0:
            raise ValueError(f"pixel_limit must be positive, got {self.pixel_limit}")
        if self.max_pixels is not None and self.max_pixels <= 0:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")


@dataclass(frozen=True)
class LoadedImage:
    """Validated image bytes (PNG or JPEG) and their pixel size."""

    data: bytes
    width: int
    height: int
    format: str  # "PNG" or "JPEG"
    resized: bool = False


# --- image loading ------------------------------------------------------------------


def resolve_image_path(path: str | os.PathLike[str], root: Path | None) -> Path:
    """Resolve ``path`` (relative to ``root``; ``file://`` allowed) and refuse escapes."""
    text = os.fspath(path)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if root is None:
        raise SkipRow(REASON_PATH_ESCAPE, f"image path {text!r} given but no image root folder is set")
    root_resolved = Path(root).resolve()
    candidate = Path(text)
    full = (candidate if candidate.is_absolute() else root_resolved / candidate).resolve()
    if not full.is_relative_to(root_resolved):
        raise SkipRow(REASON_PATH_ESCAPE, f"image path {text!r} resolves outside {root_resolved}")
    return full


def _read_source(image: Any, options: ImageOptions) -> bytes | Image.Image:
    """Turn one image value (bytes, dict, path, PIL image) into bytes or a PIL image."""
    if image is None:
        raise SkipRow(REASON_MISSING_IMAGE, "image value is empty")
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if isinstance(image, Mapping):
        data = image.get("bytes")
        if data:
            return bytes(data)
        path = image.get("path") or image.get("image") or image.get("image_url")
        if isinstance(path, Mapping):  # {"image_url": {"url": ...}}
            path = path.get("url")
        if not path:
            raise SkipRow(REASON_MISSING_IMAGE, "image entry has neither bytes nor a path")
        image = path
    if isinstance(image, str | os.PathLike):
        text = os.fspath(image)
        if text.startswith(("http://", "https://", "data:")):
            raise SkipRow(REASON_MISSING_IMAGE, f"remote or inline image not supported: {text[:60]!r}")
        full = resolve_image_path(text, options.root)
        try:
            return full.read_bytes()
        except FileNotFoundError:
            raise SkipRow(REASON_MISSING_IMAGE, f"no such file: {full}") from None
        except IsADirectoryError:
            raise SkipRow(REASON_MISSING_IMAGE, f"is a folder, not an image: {full}") from None
        except OSError as err:
            raise SkipRow(REASON_UNREADABLE_IMAGE, f"cannot read {full}: {err}") from None
    raise SkipRow(REASON_BAD_EXAMPLE, f"unsupported image value of type {type(image).__name__}")


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.save(buf, format="JPEG", quality=95)
    else:
        if img.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        img.save(buf, format="PNG")
    return buf.getvalue()


def fit_within(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """Largest (w, h) with the same aspect ratio and ``w * h <= max_pixels`` (at least 1x1)."""
    if width * height <= max_pixels:
        return width, height
    scale = (max_pixels / (width * height)) ** 0.5
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    while w * h > max_pixels and (w > 1 or h > 1):  # guard float rounding
        if w >= h:
            w -= 1
        else:
            h -= 1
    return w, h


def load_image(image: Any, options: ImageOptions) -> LoadedImage:
    """Load, validate and normalise one image to PNG/JPEG bytes.

    Raises :class:`SkipRow` for a missing file, an unreadable or truncated
    image, one over ``options.pixel_limit`` pixels, or a path that leaves
    ``options.root``.  PNG and JPEG bytes are kept as they are unless the image
    must be downscaled to ``options.max_pixels``; other formats become PNG.
    """
    source = _read_source(image, options)
    if isinstance(source, Image.Image):
        img, raw = source, None
        width, height = img.size
        if width * height > options.pixel_limit:
            raise SkipRow(REASON_IMAGE_TOO_LARGE, f"{width}x{height} is over {options.pixel_limit} pixels")
    else:
        raw = source
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(raw))
                width, height = img.size
                if width * height > options.pixel_limit:
                    raise SkipRow(REASON_IMAGE_TOO_LARGE, f"{width}x{height} is over {options.pixel_limit} pixels")
                img.load()  # full decode: catches truncated files
        except SkipRow:
            raise
        except Image.DecompressionBombError as err:
            raise SkipRow(REASON_IMAGE_TOO_LARGE, str(err)) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise SkipRow(REASON_UNREADABLE_IMAGE, f"{type(err).__name__}: {err}") from None
    if width <= 0 or height <= 0:
        raise SkipRow(REASON_UNREADABLE_IMAGE, f"image has size {width}x{height}")

    fmt = img.format if img.format in ("PNG", "JPEG") else "PNG"
    resized = False
    if options.max_pixels is not None and width * height > options.max_pixels:
        new_w, new_h = fit_within(width, height, options.max_pixels)
        img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
        width, height, resized = new_w, new_h, True
    if raw is not None and not resized and img.format in ("PNG", "JPEG"):
        return LoadedImage(raw, width, height, img.format)
    return LoadedImage(_encode(img, fmt), width, height, fmt, resized)


def resize_loaded(image: LoadedImage, max_pixels: int) -> LoadedImage:
    """Downscale already validated image bytes to at most ``max_pixels`` pixels."""
    if image.width * image.height <= max_pixels:
        return image
    with Image.open(io.BytesIO(image.data)) as img:
        new_w, new_h = fit_within(image.width, image.height, max_pixels)
        small = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
        return LoadedImage(_encode(small, image.format), new_w, new_h, image.format, True)


# --- text fields -------------------------------------------------------------------

_PLACEHOLDER_RE = re.compile(re.escape(IMAGE_PLACEHOLDER))


def clean_question(question: Any, n_images: int) -> str:
    """Strip ``<image>`` placeholders from ``question``; refuse empty or mismatched ones.

    A question may carry no placeholder or exactly one per image (verl/geo3k
    style); the placeholders are re-added in front of the SRPO prompt.
    """
    if question is None or not isinstance(question, str):
        raise SkipRow(REASON_EMPTY_QUESTION, f"question is {type(question).__name__}, not text")
    count = len(_PLACEHOLDER_RE.findall(question))
    if count not in (0, n_images):
        raise SkipRow(REASON_PLACEHOLDER_MISMATCH, f"{count} <image> placeholders for {n_images} images")
    text = _PLACEHOLDER_RE.sub("", question).strip()
    if not text:
        raise SkipRow(REASON_EMPTY_QUESTION, "question is empty")
    return text


def check_answer(answer: Any) -> str:
    """The answer as a stripped, non-empty string, or :class:`SkipRow`."""
    if answer is None:
        raise SkipRow(REASON_MISSING_ANSWER, "answer is missing")
    if not isinstance(answer, str):
        raise SkipRow(REASON_NON_STRING_ANSWER, f"answer is {type(answer).__name__}: {answer!r}"[:200])
    text = answer.strip()
    if not text:
        raise SkipRow(REASON_MISSING_ANSWER, "answer is empty")
    return text


def unwrap_boxed(answer: str) -> str:
    r"""``\boxed{X}`` (the whole string, balanced braces) -> ``X``; anything else unchanged."""
    text = answer.strip()
    prefix = "\\boxed{"
    if not (text.startswith(prefix) and text.endswith("}")):
        return answer
    depth = 0
    for pos in range(len(prefix) - 1, len(text)):
        char = text[pos]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[len(prefix) : -1].strip() if pos == len(text) - 1 else answer
    return answer


def _extra_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value)


def render_user_content(question: str, n_images: int) -> str:
    """One ``<image>`` per image, then the SRPO format prompt around ``question``."""
    from srpo_reward.prompts import render_prompt

    return IMAGE_PLACEHOLDER * n_images + render_prompt(question)


def build_rl_row(
    *,
    question: Any,
    answer: Any,
    images: Sequence[Any],
    data_source: str,
    index: int,
    split: str,
    extra: Mapping[str, Any] | None = None,
    image_options: ImageOptions | None = None,
    ability: str = DEFAULT_ABILITY,
    ground_truth: str | None = None,
) -> dict[str, Any]:
    """Build one verl RL row; raise :class:`SkipRow` on bad input.

    ``images`` are raw image values (bytes, ``{"bytes", "path"}`` dicts, paths
    relative to ``image_options.root``, PIL images).  ``extra`` values are
    stored as strings (``None`` kept) under ``extra_info``; ``ground_truth``
    defaults to the cleaned answer.
    """
    options = image_options or ImageOptions()
    images = list(images)
    text = clean_question(question, len(images))
    gold = check_answer(answer)
    loaded = [load_image(img, options) for img in images]
    extra_info: dict[str, Any] = {
        "split": split,
        "index": int(index),
        "question": text,
        "answer": gold,
        "id": None,
    }
    for key, value in (extra or {}).items():
        if key in ("split", "index", "question", "answer"):
            raise ValueError(f"extra key {key!r} would overwrite a base extra_info field")
        extra_info[key] = _extra_value(value)
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": render_user_content(text, len(loaded))}],
        "images": [{"bytes": img.data} for img in loaded],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": ground_truth if ground_truth is not None else gold},
        "extra_info": extra_info,
    }


def image_sizes(row: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(width, height) of each image of a built row (reads only the headers)."""
    sizes = []
    for entry in row.get("images") or []:
        with Image.open(io.BytesIO(entry["bytes"])) as img:
            sizes.append(img.size)
    return sizes


def rl_arrow_schema(extra_keys: Sequence[str] = ()):
    """The pyarrow schema of RL rows whose extra_info has ``extra_keys`` beyond the base ones."""
    import pyarrow as pa

    extra_fields = [
        pa.field("split", pa.string()),
        pa.field("index", pa.int64()),
        pa.field("question", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("id", pa.string()),
    ] + [pa.field(key, pa.string()) for key in extra_keys if key not in BASE_EXTRA_KEYS]
    return pa.schema(
        [
            pa.field("data_source", pa.string()),
            pa.field(
                "prompt",
                pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])),
            ),
            pa.field("images", pa.list_(pa.struct([pa.field("bytes", pa.binary())]))),
            pa.field("ability", pa.string()),
            pa.field(
                "reward_model",
                pa.struct([pa.field("style", pa.string()), pa.field("ground_truth", pa.string())]),
            ),
            pa.field("extra_info", pa.struct(extra_fields)),
        ]
    )


def row_images(row: Mapping[str, Any]) -> list[LoadedImage]:
    """The images of a built row as :class:`LoadedImage` (reads only the headers)."""
    out = []
    for entry in row.get("images") or []:
        data = entry["bytes"]
        with Image.open(io.BytesIO(data)) as img:
            out.append(LoadedImage(data, img.size[0], img.size[1], img.format or "PNG"))
    return out
