"""Writers of the kept samples: verl SFT parquet, LLaMA-Factory sharegpt JSON, and the summary.

- ``sft.parquet``: one row per kept sample, ``messages`` (user turn(s) with one ``<image>`` per
  image, then the assistant's five-block target) and ``images`` (``[{"bytes": ...}]``): what
  verl 0.9.1's ``MultiTurnSFTDataset`` reads (``data.messages_key=messages``,
  ``data.image_key=images``, its defaults).
- ``sharegpt.json`` + ``images/`` + ``dataset_info.json``: the same conversations for
  LLaMA-Factory (``formatting: sharegpt``, image paths relative to the output folder, which is
  LLaMA-Factory's ``dataset_dir``).
- ``summary.json``: counts.

Every file is written under a temporary name and renamed, so a crash never leaves half a file.
Rows follow input order, so two runs over the same stored steps write identical files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from srpo_data.stage1.builder.inputs import Sample, image_mime

SFT_PARQUET = "sft.parquet"
SHAREGPT_JSON = "sharegpt.json"
DATASET_INFO = "dataset_info.json"
SUMMARY_JSON = "summary.json"
IMAGES_DIR = "images"

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def sft_messages(sample: Sample, target: str) -> list[dict[str, str]]:
    return [*(dict(m) for m in sample.sft_prompt), {"role": "assistant", "content": target}]


def _sft_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("images", pa.list_(pa.struct([("bytes", pa.binary())]))),
            ("id", pa.string()),
            ("source_id", pa.string()),
            ("data_source", pa.string()),
            ("ground_truth", pa.string()),
            ("first_correct", pa.bool_()),
        ]
    )


def write_outputs(
    out: Path, kept: Iterable[tuple[Sample, str, bool]], dataset_name: str
) -> dict[str, Any]:
    """Write parquet, sharegpt JSON, images and dataset_info for ``(sample, target, first_correct)``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _sft_schema()
    img_dir = out / IMAGES_DIR
    img_dir.mkdir(parents=True, exist_ok=True)
    parquet_tmp = out / (SFT_PARQUET + ".tmp")
    sharegpt_tmp = out / (SHAREGPT_JSON + ".tmp")
    rows: list[dict[str, Any]] = []
    referenced: set[str] = set()
    n = 0
    # sharegpt.json is written as it goes (one conversation at a time), in the layout that
    # json.dumps(..., indent=2) gives a list, so memory does not grow with the kept samples.
    with pq.ParquetWriter(parquet_tmp, schema) as writer, sharegpt_tmp.open("w", encoding="utf-8") as sg:
        sg.write("[")

        def flush() -> None:
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows.clear()

        for sample, target, first_correct in kept:
            messages = sft_messages(sample, target)
            rows.append(
                {
                    "messages": messages,
                    "images": [{"bytes": b} for b in sample.images],
                    "id": sample.sample_id,
                    "source_id": sample.source_id,
                    "data_source": sample.data_source,
                    "ground_truth": sample.ground_truth,
                    "first_correct": first_correct,
                }
            )
            paths = []
            for i, data in enumerate(sample.images):
                name = f"{sample.sample_id}_{i}.{_EXT.get(image_mime(data) or '', 'png')}"
                p = img_dir / name
                if not p.exists():
                    if image_mime(data) is None:
                        from srpo_data.stage1.builder.inputs import to_browser_image

                        data = to_browser_image(data)[0]
                    _atomic_write_bytes(p, data)
                paths.append(f"{IMAGES_DIR}/{name}")
                referenced.add(name)
            entry = json.dumps({"messages": messages, "images": paths, "id": sample.sample_id}, ensure_ascii=False, indent=2)
            sg.write(("," if n else "") + "\n" + "\n".join("  " + line for line in entry.splitlines()))
            n += 1
            if len(rows) >= 256:
                flush()
        flush()
        sg.write("\n]\n" if n else "]\n")
        sg.flush()
        os.fsync(sg.fileno())
    os.replace(parquet_tmp, out / SFT_PARQUET)
    for stale in img_dir.iterdir():  # images of samples an earlier run kept and this one did not
        if stale.name not in referenced:
            stale.unlink()
    os.replace(sharegpt_tmp, out / SHAREGPT_JSON)
    info_path = out / DATASET_INFO
    info: dict[str, Any] = {}
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            info = {}
    info[dataset_name] = dataset_info_entry()
    write_json(info_path, info)
    return {"rows": n, "parquet": SFT_PARQUET, "sharegpt": SHAREGPT_JSON, "dataset_info": DATASET_INFO}


def dataset_info_entry(file_name: str = SHAREGPT_JSON) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entry for the sharegpt file (OpenAI-style roles)."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }
