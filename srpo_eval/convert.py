"""Convert a benchmark's public release (local copy) to verl RL parquet with the SRPO prompt.

    python -m srpo_eval.convert --benchmark mathvista --input MathVista/data --output mathvista.parquet [--limit N]

``--input`` is a parquet file, a folder of parquet shards (the files of the
benchmark's split are picked by the hub's naming, ``<split>-00000-of-00001-....parquet``
or ``<split>.parquet``), or a JSON/JSONL file (MathVista's ``annot_testmini.json``,
MathVerse's ``testmini.json``) whose image paths are relative to its folder.

Rows are built with :func:`srpo_data.rl.rows.build_rl_row` (the same row builder
and image checks as the RL preprocessors).  ``extra_info`` carries what grading
needs: ``id``, ``benchmark``, ``answer_type`` (``multiple_choice``, ``integer``,
``float``, ``list``, ``expression``, ``text``) and ``options`` (the option texts
in letter order), plus the benchmark's own answer (``original_answer``).

Rows that cannot be converted are skipped with a reason, counted in the closing
summary and listed in ``<output>.skipped.jsonl``.  The output is written to a
temporary file and renamed; an existing output is kept unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from srpo_eval.benchmarks import BENCHMARKS, EvalExample

#: String fields added to ``extra_info`` beyond ``srpo_data.rl.rows``' base ones.
EXTRA_KEYS = (
    "benchmark", "answer_type", "original_answer", "precision", "unit", "subject", "variant",
    "question_type", "task", "skills", "level",
)
#: Separator of MathVista's skills in ``extra_info["skills"]`` (one string field).
SKILLS_SEP = "; "
#: Rows per parquet write.
WRITE_BATCH = 64


def output_schema():
    """``srpo_data.rl.rows.rl_arrow_schema`` plus ``extra_info.options`` (a list of strings)."""
    import pyarrow as pa
    from srpo_data.rl.rows import rl_arrow_schema

    base = rl_arrow_schema(EXTRA_KEYS)
    extra_type = base.field("extra_info").type
    fields = [extra_type.field(i) for i in range(extra_type.num_fields)] + [pa.field("options", pa.list_(pa.string()))]
    idx = base.get_field_index("extra_info")
    return base.set(idx, pa.field("extra_info", pa.struct(fields)))


def split_files(folder: Path, split: str) -> list[Path]:
    """Parquet shards of ``split`` under ``folder`` (hub naming), from a single config folder."""
    pattern = re.compile(rf"^{re.escape(split)}(?:-\d+-of-\d+(?:-[0-9a-f]+)?)?\.parquet$")
    files = sorted(p for p in folder.rglob("*.parquet") if pattern.match(p.name))
    if not files:
        raise FileNotFoundError(f"no parquet file of split {split!r} under {folder} (expected e.g. {split}-00000-of-00001.parquet)")
    parents = sorted({str(p.parent.relative_to(folder)) for p in files})
    if len(parents) > 1:
        raise ValueError(f"{folder} holds split {split!r} of several configs ({', '.join(parents)}); point --input at one of them")
    return files


def read_records(path: Path, split: str) -> Iterator[dict[str, Any]]:
    """The benchmark's records, one dict per row, streamed (parquet) or loaded (JSON)."""
    if path.is_dir():
        files = split_files(path, split)
    elif path.suffix == ".parquet":
        files = [path]
    elif path.suffix in (".json", ".jsonl"):
        yield from _read_json(path)
        return
    else:
        raise ValueError(f"unsupported input {path}: expected a parquet file or folder, or a .json/.jsonl file")
    import pyarrow.parquet as pq

    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=WRITE_BATCH):
            yield from batch.to_pylist()


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
        return
    obj = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(obj, Mapping):  # MathVista's annot_testmini.json: {pid: record}
        obj = list(obj.values())
    if not isinstance(obj, list):
        raise ValueError(f"{path}: expected a JSON list of records or an object of records")
    yield from obj


def example_to_row(ex: EvalExample, index: int, image_options: Any) -> dict[str, Any]:
    """The verl RL row of one example (``srpo_data.rl.rows.build_rl_row`` plus ``extra_info.options``)."""
    from srpo_data.rl.rows import build_rl_row

    row = build_rl_row(
        question=ex.question,
        answer=ex.original_answer,
        images=ex.images,
        data_source=ex.benchmark,
        index=index,
        split=ex.split,
        extra={
            "id": ex.id,
            "benchmark": ex.benchmark,
            "answer_type": ex.answer_type,
            "original_answer": ex.original_answer,
            "precision": None if ex.precision is None else repr(ex.precision),
            "unit": ex.unit or None,
            "subject": ex.subject or None,
            "variant": ex.variant or None,
            "question_type": ex.question_type or None,
            "task": ex.task or None,
            "skills": SKILLS_SEP.join(ex.skills) or None,
            "level": ex.level or None,
        },
        image_options=image_options,
        ground_truth=ex.ground_truth,
    )
    row["extra_info"]["answer"] = ex.ground_truth
    row["extra_info"]["options"] = list(ex.options)
    return row


def convert(
    benchmark: str,
    input_path: str | Path,
    output: str | Path,
    limit: int | None = None,
    split: str | None = None,
    image_root: str | Path | None = None,
    max_pixels: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Convert one benchmark; returns the summary (rows written, skipped by reason, answer types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from srpo_data.rl.rows import ImageOptions, SkipRow
    from tqdm import tqdm

    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {sorted(BENCHMARKS)}")
    spec = BENCHMARKS[benchmark]
    split = split or spec.default_split
    input_path, output = Path(input_path), Path(output)
    if not input_path.exists():
        raise FileNotFoundError(f"input not found: {input_path}")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    root = Path(image_root) if image_root else (input_path if input_path.is_dir() else input_path.parent)
    image_options = ImageOptions(root=root, max_pixels=max_pixels)
    schema = output_schema()
    skipped: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    types: Counter[str] = Counter()
    seen_ids: set[str] = set()
    written = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=output.name, suffix=".tmp")
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[dict[str, Any]] = []
            records = read_records(input_path, split)
            for index, raw in enumerate(tqdm(records, desc=f"converting {benchmark}", unit="row")):
                if limit is not None and index >= limit:
                    break
                try:
                    ex = spec.make_example(raw, index, split)
                    if ex.id in seen_ids:
                        raise SkipRow("bad_example", f"duplicate id {ex.id}")
                    row = example_to_row(ex, index, image_options)
                except SkipRow as e:
                    reasons[e.reason] += 1
                    skipped.append({"index": index, "reason": e.reason, "detail": e.detail})
                    continue
                seen_ids.add(ex.id)
                types[ex.answer_type] += 1
                batch.append(row)
                if len(batch) >= WRITE_BATCH:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    written += len(batch)
                    batch.clear()
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written += len(batch)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    skipped_path = output.with_name(output.name + ".skipped.jsonl")
    if skipped:
        with skipped_path.open("w", encoding="utf-8") as f:
            for rec in skipped:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    elif skipped_path.exists():
        skipped_path.unlink()
    return {
        "benchmark": benchmark,
        "split": split,
        "written": written,
        "skipped": sum(reasons.values()),
        "skipped_by_reason": dict(reasons),
        "answer_types": dict(types),
        "output": str(output),
        "skipped_report": str(skipped_path) if skipped else None,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srpo_eval.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    p.add_argument("--input", required=True, help="parquet file or folder, or JSON/JSONL, of the benchmark's release")
    p.add_argument("--output", required=True, help="output parquet (verl RL layout)")
    p.add_argument("--limit", type=int, help="only the first N rows of the input")
    p.add_argument("--split", help="split to pick in a folder (default: testmini for MathVista/MathVerse, test otherwise)")
    p.add_argument("--image-root", help="folder that image paths are relative to (default: the input's folder)")
    p.add_argument("--max-pixels", type=int, help="downscale larger images to this many pixels (default: keep size)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        s = convert(
            args.benchmark, args.input, args.output, args.limit, args.split, args.image_root, args.max_pixels, args.overwrite
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{s['benchmark']} ({s['split']}): {s['written']} rows written, {s['skipped']} skipped "
        f"{s['skipped_by_reason'] or ''}; answer types {s['answer_types']} -> {s['output']}"
    )
    if s["skipped_report"]:
        print(f"skipped rows listed in {s['skipped_report']}")
    if s["written"] == 0:
        print("error: no row could be converted", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
