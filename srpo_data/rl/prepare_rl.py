"""Convert a public multimodal RL set into verl 0.9.1 RL parquet with the SRPO prompt.

    python -m srpo_data.prepare_rl --source geometry3k --input data/geometry3k \\
        --split train --output data/srpo/geo3k_train.parquet

Exit codes: 0 done; 1 too many rows dropped (more than ``--max-drop-share``,
or every row) -- the output is then not written, the skip report is;
2 usage or input error (bad flag, missing input, output exists without
``--overwrite``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srpo_data.rl.readers import InputError, count_examples, describe_input, iter_examples
from srpo_data.rl.rows import DEFAULT_PIXEL_LIMIT, ImageOptions, SkipRow, rl_arrow_schema, row_images
from srpo_data.rl.sources import SOURCES, get_source

EXIT_OK = 0
EXIT_TOO_MANY_DROPPED = 1
EXIT_USAGE = 2

WRITE_BATCH_ROWS = 64  # rows per parquet row group write (images make rows large)


@dataclass(frozen=True)
class LengthCheck:
    """Prompt-length limit: verl's ``data.max_prompt_length`` for the model at ``model``."""

    model: str
    max_prompt_length: int
    on_too_long: str = "drop"  # or "resize"


@dataclass
class Outcome:
    """One input row: its built ``row`` or the ``skip`` reason; ``resized`` for length fits."""

    index: int
    row: dict[str, Any] | None = None
    skip: SkipRow | None = None
    resized: bool = False
    example_id: str | None = None


@dataclass
class Summary:
    read: int = 0
    written: int = 0
    resized: int = 0
    skipped: Counter = field(default_factory=Counter)
    output: Path | None = None
    report: Path | None = None
    exit_code: int = EXIT_OK

    @property
    def dropped(self) -> int:
        return sum(self.skipped.values())

    def lines(self) -> list[str]:
        out = [f"rows read: {self.read}", f"rows written: {self.written}" + (f" -> {self.output}" if self.output else "")]
        if self.resized:
            out.append(f"rows with images shrunk to fit max_prompt_length: {self.resized}")
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        out.append(f"rows skipped: {self.dropped} ({reasons})" + (f" -> {self.report}" if self.report else ""))
        return out


# --- conversion (pure apart from reading images) ------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(source: Any, split: str, length: LengthCheck | None) -> None:
    _WORKER["source"] = source
    _WORKER["split"] = split
    _WORKER["length"] = length
    _WORKER["counter"] = None
    if length is not None:
        from srpo_data.rl.prompt_length import PromptLengthCounter

        _WORKER["counter"] = PromptLengthCounter.from_model(length.model)


def _convert_one(item: tuple[int, dict[str, Any]]) -> Outcome:
    index, example = item
    source, split, length, counter = _WORKER["source"], _WORKER["split"], _WORKER["length"], _WORKER["counter"]
    example_id = next((str(example[k]) for k in ("id", "qid") if example.get(k) not in (None, "")), None)
    try:
        row = source.make_row(example, index, split)
        resized = False
        if length is not None:
            from srpo_data.rl.prompt_length import fit_prompt

            content = row["prompt"][0]["content"]
            images, _, resized = fit_prompt(
                counter, content, row_images(row), length.max_prompt_length, resize=length.on_too_long == "resize"
            )
            if resized:
                row["images"] = [{"bytes": img.data} for img in images]
        return Outcome(index, row=row, resized=resized, example_id=example_id)
    except SkipRow as skip:
        return Outcome(index, skip=skip, example_id=example_id)


def convert_examples(
    examples: Iterable[dict[str, Any]],
    source: Any,
    split: str,
    length: LengthCheck | None = None,
    workers: int = 1,
) -> Iterator[Outcome]:
    """Yield one :class:`Outcome` per example, in input order."""
    numbered = enumerate(examples)
    if workers <= 1:
        _init_worker(source, split, length)
        for item in numbered:
            yield _convert_one(item)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(source, split, length)) as pool:
        yield from pool.imap(_convert_one, numbered, chunksize=8)


# --- output ---------------------------------------------------------------------------


def report_path(output: Path) -> Path:
    """The skip report written next to ``output``: ``NAME.skipped.jsonl``."""
    return output.with_name(output.stem + ".skipped.jsonl")


def _temp_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def prepare(
    *,
    source: Any,
    input_path: str,
    output: Path,
    split: str = "train",
    input_split: str | None = None,
    limit: int | None = None,
    length: LengthCheck | None = None,
    overwrite: bool = False,
    max_drop_share: float | None = None,
    workers: int = 1,
    progress: bool = True,
) -> Summary:
    """Convert ``input_path`` with ``source`` into ``output`` (atomic) plus its skip report.

    Raises :class:`FileExistsError` if ``output`` exists and not ``overwrite``,
    :class:`srpo_data.rl.readers.InputError` for an unreadable input.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    if max_drop_share is not None and not 0.0 <= max_drop_share <= 1.0:
        raise ValueError(f"max_drop_share must be within [0, 1], got {max_drop_share}")
    output.parent.mkdir(parents=True, exist_ok=True)
    spec = describe_input(input_path, input_split)
    total = count_examples(spec, input_split)
    if limit is not None:
        total = limit if total is None else min(total, limit)

    def examples() -> Iterator[dict[str, Any]]:
        for n, example in enumerate(iter_examples(spec, input_split)):
            if limit is not None and n >= limit:
                return
            yield example

    schema = rl_arrow_schema(source.extra_keys)
    summary = Summary()
    tmp_out, tmp_report = _temp_beside(output), _temp_beside(report_path(output))
    writer = None
    try:
        batch: list[dict[str, Any]] = []
        with tmp_report.open("w", encoding="utf-8") as report, tqdm(
            total=total, desc=f"prepare {source.name}", unit="row", disable=not progress
        ) as bar:
            for outcome in convert_examples(examples(), source, split, length, workers):
                summary.read += 1
                bar.update(1)
                if outcome.skip is not None:
                    summary.skipped[outcome.skip.reason] += 1
                    report.write(
                        json.dumps(
                            {
                                "index": outcome.index,
                                "id": outcome.example_id,
                                "action": "dropped",
                                "reason": outcome.skip.reason,
                                "detail": outcome.skip.detail,
                            }
                        )
                        + "\n"
                    )
                    continue
                if outcome.resized:
                    summary.resized += 1
                    report.write(
                        json.dumps({"index": outcome.index, "id": outcome.example_id, "action": "resized"}) + "\n"
                    )
                batch.append(outcome.row)
                summary.written += 1
                if len(batch) >= WRITE_BATCH_ROWS:
                    if writer is None:
                        writer = pq.ParquetWriter(tmp_out, schema)
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch.clear()
                bar.set_postfix(written=summary.written, skipped=summary.dropped, refresh=False)
            if batch:
                if writer is None:
                    writer = pq.ParquetWriter(tmp_out, schema)
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        if writer is not None:
            writer.close()
            writer = None

        too_many = summary.written == 0 or (
            max_drop_share is not None and summary.read and summary.dropped / summary.read > max_drop_share
        )
        os.replace(tmp_report, report_path(output))
        summary.report = report_path(output)
        if too_many:
            summary.exit_code = EXIT_TOO_MANY_DROPPED
        else:
            os.replace(tmp_out, output)
            summary.output = output
        return summary
    finally:
        if writer is not None:
            writer.close()
        for tmp in (tmp_out, tmp_report):
            tmp.unlink(missing_ok=True)


# --- command line ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m srpo_data.prepare_rl",
        description="Convert a multimodal RL data set into verl RL parquet with the SRPO format prompt.",
    )
    parser.add_argument("--source", required=True, choices=sorted(SOURCES), help="input layout")
    parser.add_argument(
        "--input",
        required=True,
        help="parquet file or folder, HF save_to_disk folder, .jsonl/.json/.csv file (or a hub name when online)",
    )
    parser.add_argument("--output", required=True, type=Path, help="output .parquet file")
    parser.add_argument(
        "--split",
        default=None,
        help="split to read from a folder of parquet files (NAME-*.parquet or NAME/ subfolder) or a saved "
        "DatasetDict, and to record in extra_info.split (default: read everything, record 'train')",
    )
    parser.add_argument("--limit", type=int, default=None, help="convert only the first N input rows")
    parser.add_argument("--image-root", type=Path, default=None, help="folder image paths are relative to (default: the input's folder); paths leaving it are refused")
    parser.add_argument("--max-pixels", type=int, default=None, help="downscale images over this many pixels (default: keep size)")
    parser.add_argument("--pixel-limit", type=int, default=DEFAULT_PIXEL_LIMIT, help=f"skip images over this many pixels as decompression bombs (default: {DEFAULT_PIXEL_LIMIT})")
    parser.add_argument("--max-prompt-length", type=int, default=None, help="verl data.max_prompt_length to check rows against (needs --model)")
    parser.add_argument("--model", default=None, help="local model folder whose processor counts prompt tokens")
    parser.add_argument("--on-too-long", choices=("drop", "resize"), default="drop", help="over-long rows: drop them or shrink their images (default: drop)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--max-drop-share", type=float, default=None, help="exit 1 (and write no output) when more than this share of rows is skipped (default: only when all are)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument("--data-source", default=None, help="override the data_source column")
    generic = parser.add_argument_group("generic source columns")
    generic.add_argument("--question-key", default=None, help="question column (default: question)")
    generic.add_argument("--answer-key", default=None, help="answer column (default: answer)")
    generic.add_argument("--image-key", default=None, help="image column (default: images, else image)")
    generic.add_argument("--id-key", default=None, help="id column (default: id)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    columns = {
        "question_key": args.question_key,
        "answer_key": args.answer_key,
        "image_key": args.image_key,
        "id_key": args.id_key,
    }
    if args.source != "generic" and any(v is not None for v in columns.values()):
        parser.error("--question-key/--answer-key/--image-key/--id-key apply to --source generic only")
    if (args.max_prompt_length is None) != (args.model is None):
        parser.error("--max-prompt-length and --model go together")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.max_drop_share is not None and not 0.0 <= args.max_drop_share <= 1.0:
        parser.error("--max-drop-share must be within [0, 1]")
    if args.output.suffix != ".parquet":
        parser.error("--output must end in .parquet")

    input_path = Path(args.input)
    root = args.image_root or (input_path if input_path.is_dir() else input_path.parent)
    try:
        images = ImageOptions(root=root, pixel_limit=args.pixel_limit, max_pixels=args.max_pixels)
    except ValueError as err:
        parser.error(str(err))
    source = get_source(args.source, images=images, data_source=args.data_source, **columns)
    length = None
    if args.model is not None:
        length = LengthCheck(args.model, args.max_prompt_length, args.on_too_long)
    try:
        summary = prepare(
            source=source,
            input_path=args.input,
            output=args.output,
            split=args.split or "train",
            input_split=args.split,
            limit=args.limit,
            length=length,
            overwrite=args.overwrite,
            max_drop_share=args.max_drop_share,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except (FileExistsError, InputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    for line in summary.lines():
        print(line)
    if summary.exit_code == EXIT_TOO_MANY_DROPPED:
        allowed = "fewer than all" if args.max_drop_share is None else f"at most {args.max_drop_share:.1%}"
        print(
            f"error: {summary.dropped} of {summary.read} rows skipped (allowed: {allowed}); "
            f"no output written, see {summary.report}",
            file=sys.stderr,
        )
    return summary.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
