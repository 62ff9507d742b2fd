"""Input rows for the builder: verl RL parquet (from ``srpo_data.prepare_rl``) or JSONL + image folder.

Each row becomes a :class:`Sample` whose ``sample_id`` is a hash of its content (question,
ground truth, image bytes), so the id does not depend on row order and a rerun on the same data
finds its stored steps.  Rows that cannot be used are yielded as :class:`BadRow` with a reason.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Rows read from a parquet file per batch (images stay in memory only per batch).
PARQUET_BATCH_ROWS = 64
IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class Sample:
    """One question with its image(s) and ground truth."""

    sample_id: str
    row: int
    question: str
    ground_truth: str
    images: tuple[bytes, ...]
    #: The user turn(s) of the SFT target, with one ``<image>`` per image (the RL row's own
    #: prompt when the input is an RL parquet, so SFT and RL prompts are the same text).
    sft_prompt: tuple[dict[str, str], ...]
    data_source: str = ""
    #: Image paths relative to the image folder (JSONL input), for ``image_url_prefix``.
    image_refs: tuple[str, ...] = ()
    #: The id the input gave the row, if any (kept in the outputs for traceability).
    source_id: str = ""
    #: Released SFT data (``input_format: srpo_sft``): the attempt and the reflection are given,
    #: only the revise step is called.
    given_attempt: str = ""
    given_reflection: str = ""


@dataclass(frozen=True)
class BadRow:
    """An input row the builder cannot use; listed in ``bad_input.jsonl`` with its reason."""

    row: int
    reason: str
    #: The id the input gave the row, if any.
    source_id: str = ""
    #: A short detail (e.g. the image that could not be decoded).
    detail: str = ""


def check_image(data: bytes) -> str | None:
    """None if ``data`` decodes as an image, else a short reason (the row becomes a bad row:
    an image the builder cannot send must never end the run)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        if image_mime(data) is None:  # it will be re-encoded as PNG before sending: try it
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return type(exc).__name__
    return None


def content_id(question: str, ground_truth: str, images: tuple[bytes, ...]) -> str:
    h = hashlib.sha256()
    for part in (question.encode("utf-8"), ground_truth.encode("utf-8"), *(hashlib.sha256(b).digest() for b in images)):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:32]


def image_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def to_browser_image(data: bytes) -> tuple[bytes, str]:
    """Bytes and MIME type every OpenAI-compatible server accepts (other formats become PNG)."""
    mime = image_mime(data)
    if mime is not None:
        return data, mime
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="PNG")
    return buf.getvalue(), "image/png"


def data_url(data: bytes) -> str:
    payload, mime = to_browser_image(data)
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def default_sft_prompt(question: str, n_images: int) -> tuple[dict[str, str], ...]:
    from srpo_reward.prompts import render_prompt

    return ({"role": "user", "content": IMAGE_TOKEN * n_images + render_prompt(question)},)


def _check_prompt(prompt: Any, n_images: int) -> tuple[dict[str, str], ...] | str:
    if not isinstance(prompt, list) or not prompt:
        return "prompt_not_messages"
    msgs = []
    for m in prompt:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return "prompt_not_messages"
        msgs.append({"role": m["role"], "content": m["content"]})
    if msgs[-1]["role"] != "user":
        return "prompt_last_not_user"
    n_tokens = sum(m["content"].count(IMAGE_TOKEN) for m in msgs)
    if n_tokens != n_images:
        return "image_token_count_mismatch"
    return tuple(msgs)


def _question_and_truth(question: Any, gt: Any, row: int) -> tuple[str, str] | BadRow:
    """A non-empty question and ground truth (a number becomes its string), or the reason why not."""
    if not isinstance(question, str) or not question.strip():
        return BadRow(row, "missing_question")
    if isinstance(gt, int | float) and not isinstance(gt, bool):
        gt = str(gt)
    if not isinstance(gt, str) or not gt.strip():
        return BadRow(row, "missing_ground_truth")
    return question, gt


def _read_image(root: Path, ref: str, row: int) -> bytes | BadRow:
    """The bytes of image ``ref`` under the resolved folder ``root``; a path leaving it is refused."""
    p = (root / ref).resolve()
    if not p.is_relative_to(root):
        return BadRow(row, "image_outside_folder")
    if not p.is_file():
        return BadRow(row, "missing_image")
    return p.read_bytes()


def _rl_row(rec: dict[str, Any], row: int, base: Path) -> Sample | BadRow:
    extra = rec.get("extra_info") or {}
    reward = rec.get("reward_model") or {}
    checked = _question_and_truth(extra.get("question"), reward.get("ground_truth", extra.get("answer")), row)
    if isinstance(checked, BadRow):
        return checked
    question, gt = checked
    images: list[bytes] = []
    for img in rec.get("images") or []:
        data = img.get("bytes") if isinstance(img, dict) else None
        if data is None and isinstance(img, dict) and img.get("path"):
            data = _read_image(base.resolve(), img["path"], row)
            if isinstance(data, BadRow):
                return data
        if not data:
            return BadRow(row, "missing_image")
        problem = check_image(bytes(data))
        if problem is not None:
            return BadRow(row, "unreadable_image", detail=problem)
        images.append(bytes(data))
    prompt = _check_prompt(rec.get("prompt"), len(images))
    if isinstance(prompt, str):
        return BadRow(row, prompt)
    imgs = tuple(images)
    return Sample(
        sample_id=content_id(question, gt, imgs),
        row=row,
        question=question,
        ground_truth=gt.strip(),
        images=imgs,
        sft_prompt=prompt,
        data_source=str(rec.get("data_source") or ""),
        source_id=str(extra.get("index", "")),
    )


def iter_parquet(path: Path, limit: int | None = None) -> Iterator[Sample | BadRow]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    row = 0
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for rec in batch.to_pylist():
            if limit is not None and row >= limit:
                return
            item = _rl_row(rec, row, path.parent)
            if isinstance(item, BadRow):
                item = dataclasses.replace(item, source_id=str((rec.get("extra_info") or {}).get("index", "")))
            yield item
            row += 1


def _jsonl_row(
    rec: Any,
    row: int,
    image_dir: Path,
    keys: dict[str, str],
) -> Sample | BadRow:
    if not isinstance(rec, dict):
        return BadRow(row, "not_an_object")
    checked = _question_and_truth(rec.get(keys["question"]), rec.get(keys["answer"]), row)
    if isinstance(checked, BadRow):
        return checked
    question, gt = checked
    refs = rec.get(keys["images"], rec.get("image", []))
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        return BadRow(row, "bad_image_field")
    root = image_dir.resolve()
    images = []
    for ref in refs:
        data = _read_image(root, ref, row)
        if isinstance(data, BadRow):
            return data
        problem = check_image(data)
        if problem is not None:
            return BadRow(row, "unreadable_image", detail=f"{ref}: {problem}")
        images.append(data)
    imgs = tuple(images)
    return Sample(
        sample_id=content_id(question, gt, imgs),
        row=row,
        question=question,
        ground_truth=gt.strip(),
        images=imgs,
        sft_prompt=default_sft_prompt(question, len(imgs)),
        data_source=str(rec.get("data_source", "jsonl")),
        image_refs=tuple(refs),
        source_id=str(rec.get(keys["id"], "")),
    )


def iter_jsonl(
    path: Path, image_dir: Path | None, keys: dict[str, str], limit: int | None = None
) -> Iterator[Sample | BadRow]:
    folder = image_dir if image_dir is not None else path.parent
    with path.open(encoding="utf-8") as fh:
        row = 0
        for line in fh:
            if not line.strip():
                continue
            if limit is not None and row >= limit:
                return
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                yield BadRow(row, "bad_json")
            else:
                item = _jsonl_row(rec, row, folder, keys)
                if isinstance(item, BadRow) and isinstance(rec, dict) and rec.get(keys["id"]) is not None:
                    item = dataclasses.replace(item, source_id=str(rec.get(keys["id"])))
                yield item
            row += 1


def iter_release(
    path: Path,
    source: str,
    image_dir: Path | None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> Iterator[Sample | BadRow]:
    """Samples of a public stage-1 release (:mod:`srpo_data.stage1.sources`), images under
    ``image_dir`` (default: the file's folder)."""
    from srpo_data.stage1.sources import SourceSkip, iter_source

    folder = image_dir if image_dir is not None else path.parent
    keys = {"question": "question", "answer": "answer", "images": "images", "id": "id"}
    row = 0
    for item in iter_source(path, source, sample=sample, seed=seed):
        if limit is not None and row >= limit:
            return
        if isinstance(item, SourceSkip):
            yield BadRow(row, item.reason, source_id=item.source_id, detail=f"record {item.index}")
        else:
            got = _jsonl_row(item, row, folder, keys)
            if isinstance(got, BadRow):
                yield dataclasses.replace(got, source_id=item["id"])
            elif "attempt" in item:
                given = (item["attempt"], item["reflection"])
                yield dataclasses.replace(
                    got,
                    sample_id=content_id(got.question + "\0" + "\0".join(given), got.ground_truth, got.images),
                    given_attempt=given[0],
                    given_reflection=given[1],
                )
            else:
                yield got
        row += 1


def count_rows(path: Path, limit: int | None = None) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        n = pq.ParquetFile(path).metadata.num_rows
    else:
        with path.open(encoding="utf-8") as fh:
            n = sum(1 for line in fh if line.strip())
    return min(n, limit) if limit is not None else n


def iter_samples(
    path: Path,
    *,
    image_dir: Path | None = None,
    keys: dict[str, str] | None = None,
    limit: int | None = None,
    input_format: str = "auto",
    sample: int | None = None,
    sample_seed: int = 0,
) -> Iterator[Sample | BadRow]:
    """Samples (or bad rows) of ``path`` in file order: ``.parquet`` or ``.jsonl``/``.json`` lines,
    or a public release (``input_format``: ``mulberry``, ``llava_cot``, ``mathv360k``)."""
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if input_format != "auto":
        return iter_release(path, input_format, image_dir, limit, sample, sample_seed)
    if path.suffix == ".parquet":
        return iter_parquet(path, limit)
    if path.suffix in (".jsonl", ".json"):
        k = {"question": "question", "answer": "answer", "images": "images", "id": "id"}
        k.update(keys or {})
        return iter_jsonl(path, image_dir, k, limit)
    raise ValueError(f"input must be .parquet (verl RL schema) or .jsonl, got {path}")
