"""Read input examples (dicts) lazily from a local parquet file or folder, an HF
``save_to_disk`` folder, JSONL/JSON or CSV, or (online only) a hub name.

Images stay undecoded: HF ``Image`` columns come out as ``{"bytes", "path"}``
dicts, which :func:`srpo_data.rl.rows.load_image` validates itself.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """The input path cannot be read (missing, unknown layout, ambiguous split)."""


@dataclass(frozen=True)
class InputSpec:
    """What was found at the input path: its kind, the files, and the default image root."""

    kind: str  # "parquet", "hf_disk", "jsonl", "json", "csv", "hub"
    path: str
    files: tuple[Path, ...] = ()
    image_root: Path | None = None


def _split_filter(files: list[Path], split: str | None, root: Path) -> list[Path]:
    if split is None:
        return files
    chosen = [
        f
        for f in files
        if f.name.startswith(f"{split}-") or f.name.startswith(f"{split}.") or split in f.relative_to(root).parts[:-1]
    ]
    if not chosen:
        names = ", ".join(str(f.relative_to(root)) for f in files[:10])
        raise InputError(f"no parquet file for split {split!r} under {root} (found: {names})")
    return chosen


def describe_input(path: str, split: str | None = None) -> InputSpec:
    """Find out what ``path`` is.  Raises :class:`InputError` with a clear message."""
    p = Path(path)
    if p.is_file():
        suffix = p.suffix.lower()
        kinds = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "json", ".csv": "csv"}
        if suffix not in kinds:
            raise InputError(f"unsupported input file type {suffix!r}: use .parquet, .jsonl, .json or .csv")
        return InputSpec(kinds[suffix], str(p), (p,), p.parent)
    if p.is_dir():
        if (p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file():
            return InputSpec("hf_disk", str(p), (), p)
        parquet = sorted(p.rglob("*.parquet"))
        if parquet:
            return InputSpec("parquet", str(p), tuple(_split_filter(parquet, split, p)), p)
        jsonl = sorted(p.glob("*.jsonl"))
        if len(jsonl) == 1:
            return InputSpec("jsonl", str(jsonl[0]), (jsonl[0],), p)
        raise InputError(f"{p} holds no parquet files, no save_to_disk dataset and not exactly one .jsonl file")
    if "/" in path and not path.startswith((".", "/")) and path.count("/") == 1:
        return InputSpec("hub", path)
    raise InputError(f"input {path!r} does not exist")


def _iter_parquet(files: tuple[Path, ...], batch_size: int = 256) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for file in files:
        pf = pq.ParquetFile(file)
        for batch in pf.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()


def _undecoded(ds: Any) -> Any:
    """Cast HF Image columns (also inside lists) to ``decode=False``."""
    from datasets import Image as HFImage
    from datasets import List, Sequence

    for name, feature in ds.features.items():
        if isinstance(feature, HFImage):
            ds = ds.cast_column(name, HFImage(decode=False))
        elif isinstance(feature, List | Sequence) and isinstance(feature.feature, HFImage):
            ds = ds.cast_column(name, type(feature)(HFImage(decode=False)))
    return ds


def _pick_split(obj: Any, split: str | None, where: str) -> Any:
    from datasets import DatasetDict

    if not isinstance(obj, DatasetDict):
        return obj
    if split is None:
        if len(obj) == 1:
            return next(iter(obj.values()))
        raise InputError(f"{where} has splits {sorted(obj)}; choose one with --split")
    if split not in obj:
        raise InputError(f"{where} has no split {split!r}; it has {sorted(obj)}")
    return obj[split]


def _iter_hf(ds: Any) -> Iterator[dict[str, Any]]:
    yield from _undecoded(ds)


def iter_examples(spec: InputSpec, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the examples of ``spec`` one by one, in file order."""
    if spec.kind == "parquet":
        yield from _iter_parquet(spec.files)
    elif spec.kind == "jsonl":
        for file in spec.files:
            with file.open(encoding="utf-8") as handle:
                for lineno, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise InputError(f"{file}:{lineno}: invalid JSON: {err}") from None
                    yield value if isinstance(value, dict) else {"_invalid": value}
    elif spec.kind == "json":
        data = json.loads(spec.files[0].read_text(encoding="utf-8"))
        if isinstance(data, dict):  # {"train": [...], "test": [...]} or a single record
            if split is not None and isinstance(data.get(split), list):
                data = data[split]
            else:
                data = [data]
        if not isinstance(data, list):
            raise InputError(f"{spec.path}: expected a JSON list of objects")
        for value in data:
            yield value if isinstance(value, dict) else {"_invalid": value}
    elif spec.kind == "csv":
        with spec.files[0].open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    elif spec.kind == "hf_disk":
        from datasets import load_from_disk

        yield from _iter_hf(_pick_split(load_from_disk(spec.path), split, spec.path))
    elif spec.kind == "hub":
        from datasets import load_dataset

        yield from _iter_hf(load_dataset(spec.path, split=split or "train"))
    else:  # pragma: no cover - describe_input only makes the kinds above
        raise InputError(f"unknown input kind {spec.kind!r}")


def count_examples(spec: InputSpec, split: str | None = None) -> int | None:
    """Row count when cheap to know (parquet metadata, HF datasets), else ``None``."""
    if spec.kind == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in spec.files)
    if spec.kind == "hf_disk":
        from datasets import load_from_disk

        return len(_pick_split(load_from_disk(spec.path), split, spec.path))
    return None
