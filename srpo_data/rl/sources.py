"""One ``make_row(example, index, split) -> dict`` per public RL source, and a registry.

Each source is a small frozen dataclass (picklable, so rows can be built in
worker processes) holding the image options and column names; its
``make_row`` is a pure function of the example.  Column layouts:

- ``geometry3k`` (hiyouga/geometry3k): ``problem`` (starts with ``<image>``),
  ``answer``, ``images`` (list of images).
- ``mmk12`` (FanqingM/MMK12): ``id``, ``subject``, ``question``, ``answer``,
  ``image`` (one image).
- ``srpo`` (the SRPO RL set, bruce360568/SRPO_RL_datasets; MM-Eureka layout):
  ``id``, ``message`` (a JSON string or list of chat messages whose user
  content holds ``{"type": "image", "image": "file:///..."}`` items and text),
  ``answer``.
- ``virl39k`` (TIGER-Lab/ViRL39K): ``qid``, ``question`` (with ``<image>``
  placeholders), ``answer`` (``\\boxed{...}``), ``image`` (list of paths
  relative to the unzipped ``images.zip`` folder), ``category``, ``source``,
  ``PassRate_32BTrained``, ``PassRate_7BBase``.
- ``thinklite`` (russwang/ThinkLite-VL-70k / -hard-11k): ``problem``,
  ``answer``, ``image``; ``id`` when present.
- ``generic``: any JSONL/CSV/parquet with ``question``, ``answer`` and
  ``image`` or ``images`` columns (names configurable); image paths are
  relative to the image root folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from srpo_data.rl.rows import (
    REASON_BAD_EXAMPLE,
    ImageOptions,
    SkipRow,
    build_rl_row,
    unwrap_boxed,
)


def as_image_list(value: Any) -> list[Any]:
    """A column value holding zero, one or several images, as a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist") and not isinstance(value, bytes | str):  # numpy arrays from pandas
        return list(value.tolist())
    if isinstance(value, str) and value.strip().startswith("["):  # JSON list in a CSV cell
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return parsed if isinstance(parsed, list) else [value]
    if isinstance(value, str) and not value.strip():
        return []
    return [value]


def _id(example: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = example.get(key)
        if value is not None and value != "":
            return str(value)
    return None


def _boxed_answer_row(
    source: Any, *, question: Any, answer: Any, images: list[Any], index: int, split: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """A row of a source whose answers may be a whole ``\\boxed{X}`` (the ground truth is then ``X``)."""
    return build_rl_row(
        question=question,
        answer=answer,
        images=images,
        data_source=source.data_source,
        index=index,
        split=split,
        extra=extra,
        image_options=source.images,
        ground_truth=unwrap_boxed(answer) if isinstance(answer, str) else None,
    )


@dataclass(frozen=True)
class Geometry3K:
    name: ClassVar[str] = "geometry3k"
    extra_keys: ClassVar[tuple[str, ...]] = ()
    images: ImageOptions = field(default_factory=ImageOptions)
    data_source: str = "hiyouga/geometry3k"

    def make_row(self, example: Mapping[str, Any], index: int, split: str) -> dict[str, Any]:
        return build_rl_row(
            question=example.get("problem"),
            answer=example.get("answer"),
            images=as_image_list(example.get("images")),
            data_source=self.data_source,
            index=index,
            split=split,
            extra={"id": _id(example, "id")},
            image_options=self.images,
        )


@dataclass(frozen=True)
class MMK12:
    name: ClassVar[str] = "mmk12"
    extra_keys: ClassVar[tuple[str, ...]] = ("subject",)
    images: ImageOptions = field(default_factory=ImageOptions)
    data_source: str = "FanqingM/MMK12"

    def make_row(self, example: Mapping[str, Any], index: int, split: str) -> dict[str, Any]:
        answer = example.get("answer")
        return _boxed_answer_row(
            self,
            question=example.get("question"),
            answer=answer,
            images=as_image_list(example.get("image")),
            index=index,
            split=split,
            extra={"id": _id(example, "id"), "subject": example.get("subject")},
        )


def parse_chat_message(message: Any) -> tuple[str, list[Any]]:
    """(question text, image values) from an MM-Eureka style ``message`` value.

    System messages are dropped (the SRPO prompt replaces them); text items of
    user messages are joined with newlines, image items collected in order.
    """
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except json.JSONDecodeError as err:
            raise SkipRow(REASON_BAD_EXAMPLE, f"message is not valid JSON: {err}") from None
    if hasattr(message, "tolist"):
        message = message.tolist()
    if not isinstance(message, list):
        raise SkipRow(REASON_BAD_EXAMPLE, f"message must be a list of chat turns, got {type(message).__name__}")
    texts: list[str] = []
    images: list[Any] = []
    for turn in message:
        if not isinstance(turn, Mapping) or turn.get("role") != "user":
            continue
        content = turn.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise SkipRow(REASON_BAD_EXAMPLE, "user content must be text or a list of items")
        for item in content:
            if not isinstance(item, Mapping):
                raise SkipRow(REASON_BAD_EXAMPLE, "content item is not an object")
            kind = item.get("type")
            if kind == "text" or (kind is None and "text" in item):
                texts.append(str(item.get("text") or ""))
            elif kind in ("image", "image_url") or "image" in item or "image_url" in item:
                images.append(item.get("image") or item.get("image_url"))
            else:
                raise SkipRow(REASON_BAD_EXAMPLE, f"unsupported content item type {kind!r}")
    return "\n".join(t for t in texts if t), images


@dataclass(frozen=True)
class SRPORL:
    name: ClassVar[str] = "srpo"
    extra_keys: ClassVar[tuple[str, ...]] = ()
    images: ImageOptions = field(default_factory=ImageOptions)
    data_source: str = "srpo_rl"
    message_key: str = "message"

    def make_row(self, example: Mapping[str, Any], index: int, split: str) -> dict[str, Any]:
        question, images = parse_chat_message(example.get(self.message_key))
        answer = example.get("answer")
        return _boxed_answer_row(
            self,
            question=question,
            answer=answer,
            images=images,
            index=index,
            split=split,
            extra={"id": _id(example, "id")},
        )


@dataclass(frozen=True)
class ViRL39K:
    name: ClassVar[str] = "virl39k"
    extra_keys: ClassVar[tuple[str, ...]] = ("category", "source", "PassRate_32BTrained", "PassRate_7BBase")
    images: ImageOptions = field(default_factory=ImageOptions)
    data_source: str = "TIGER-Lab/ViRL39K"

    def make_row(self, example: Mapping[str, Any], index: int, split: str) -> dict[str, Any]:
        answer = example.get("answer")
        return _boxed_answer_row(
            self,
            question=example.get("question"),
            answer=answer,
            images=as_image_list(example.get("image")),
            index=index,
            split=split,
            extra={"id": _id(example, "qid", "id"), **{k: example.get(k) for k in self.extra_keys}},
        )


@dataclass(frozen=True)
class ThinkLite:
    name: ClassVar[str] = "thinklite"
    extra_keys: ClassVar[tuple[str, ...]] = ()
    images: ImageOptions = field(default_factory=ImageOptions)
    data_source: str = "russwang/ThinkLite-VL"

    def make_row(self, example: Mapping[str, Any], index: int, split: str) -> dict[str, Any]:
        question = example.get("problem", example.get("question"))
        image_value = example.get("image", example.get("images"))
        answer = example.get("answer")
        return _boxed_answer_row(
            self,
            question=question,
            answer=answer,
            images=as_image_list(image_value),
            index=index,
            split=split,
            extra={"id": _id(example, "id", "ID")},
        )


@dataclass(frozen=True)
class Generic:
    """Any table with a question, an answer and image path(s); column names configurable.

    ``image_key=None`` looks for an ``images`` column, then ``image``.
    """

    name: ClassVar[str] = "generic"
    extra_keys: ClassVar[tuple[str, ...]] = ()
    images: ImageOptions = field(default_factory=ImageOptions)
    data_source: str = "generic"
    question_key: str = "question"
    answer_key: str = "answer"
    image_key: str | None = None
    id_key: str = "id"

    def make_row(self, example: Mapping[str, Any], index: int, split: str) -> dict[str, Any]:
        if self.image_key is not None:
            image_value = example.get(self.image_key)
        else:
            image_value = example.get("images", example.get("image"))
        return build_rl_row(
            question=example.get(self.question_key),
            answer=example.get(self.answer_key),
            images=as_image_list(image_value),
            data_source=self.data_source,
            index=index,
            split=split,
            extra={"id": _id(example, self.id_key)},
            image_options=self.images,
        )


SOURCES: dict[str, type] = {
    cls.name: cls for cls in (Geometry3K, MMK12, SRPORL, ViRL39K, ThinkLite, Generic)
}


def get_source(name: str, **kwargs: Any) -> Any:
    """Build the source called ``name``; unknown names list the valid ones."""
    try:
        cls: Callable[..., Any] = SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; choose one of: {', '.join(sorted(SOURCES))}") from None
    return cls(**{k: v for k, v in kwargs.items() if v is not None})
