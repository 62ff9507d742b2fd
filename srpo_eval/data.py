"""The questions of an evaluation parquet (verl RL layout), without their images.

Every question gets a stable id: ``extra_info["id"]`` when the converters of
:mod:`srpo_eval.benchmarks` wrote it, else ``"<data_source>-<extra_info.index>"``
(so any verl RL parquet, e.g. one from ``srpo_data.prepare_rl``, can be
evaluated too).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The answer types the converters write into ``extra_info["answer_type"]``.
ANSWER_TYPES = ("multiple_choice", "integer", "float", "list", "expression", "text")

#: Columns read for the report (images are not needed there and can be large).
QUESTION_COLUMNS = ("data_source", "prompt", "reward_model", "extra_info")


@dataclass(frozen=True)
class DataItem:
    """One evaluation question."""

    id: str
    benchmark: str
    ground_truth: str
    #: One of :data:`ANSWER_TYPES`; ``"expression"`` when the parquet does not say.
    answer_type: str = "expression"
    #: Option texts of a multiple-choice question, in letter order (A, B, ...).
    options: tuple[str, ...] = ()
    #: The user turn of the prompt (with its ``<image>`` placeholders).
    prompt_text: str = ""
    #: The rest of ``extra_info`` (kept for scripts reading the report's JSON).
    extra_info: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class DataSet:
    """Questions by id, in file order, plus the problems found while loading."""

    items: dict[str, DataItem]
    duplicate_ids: list[str] = field(default_factory=list)
    missing_ground_truth: list[str] = field(default_factory=list)

    def benchmarks(self) -> list[str]:
        return sorted({it.benchmark for it in self.items.values()})


def user_text(prompt: Any) -> str:
    """The text of the last user message of a verl ``prompt`` column (chat messages or a string)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        for msg in reversed(list(prompt)):
            if isinstance(msg, Mapping) and msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, Sequence):  # already structured content
                    return "".join(
                        "<image>" if c.get("type") == "image" else str(c.get("text", ""))
                        for c in content
                        if isinstance(c, Mapping)
                    )
    return ""


def question_id(row: Mapping[str, Any], position: int) -> str:
    """``extra_info["id"]`` if set, else ``"<data_source>-<extra_info.index or row position>"``."""
    extra = row.get("extra_info") or {}
    if not isinstance(extra, Mapping):
        extra = {}
    qid = extra.get("id")
    if qid is None or qid == "":
        data_source = str(row.get("data_source") or extra.get("benchmark") or "unknown")
        qid = f"{data_source}-{extra.get('index', position)}"
    return str(qid)


def item_from_row(row: Mapping[str, Any], position: int) -> DataItem | None:
    """A :class:`DataItem` from one parquet row, or None if it has no ground truth."""
    extra = row.get("extra_info") or {}
    if not isinstance(extra, Mapping):
        extra = {}
    data_source = str(row.get("data_source") or extra.get("benchmark") or "unknown")
    benchmark = str(extra.get("benchmark") or data_source)
    rm = row.get("reward_model") or {}
    gt = rm.get("ground_truth") if isinstance(rm, Mapping) else None
    if gt is None or (isinstance(gt, str) and not gt.strip()):
        return None
    answer_type = extra.get("answer_type") or "expression"
    if answer_type not in ANSWER_TYPES:
        answer_type = "expression"
    options = extra.get("options") or ()
    if isinstance(options, str):  # some writers store the list as JSON or a Python literal
        try:
            options = ast.literal_eval(options)
        except (ValueError, SyntaxError):
            options = ()
        if not isinstance(options, (list, tuple)):
            options = ()
    return DataItem(
        id=question_id(row, position),
        benchmark=benchmark,
        ground_truth=str(gt),
        answer_type=str(answer_type),
        options=tuple(str(o) for o in options),
        prompt_text=user_text(row.get("prompt")),
        extra_info=dict(extra),
    )


def items_from_rows(rows: Iterable[Mapping[str, Any]]) -> DataSet:
    """Pure: build the question set; duplicate ids and rows without ground truth are recorded."""
    ds = DataSet(items={})
    for pos, row in enumerate(rows):
        item = item_from_row(row, pos)
        if item is None:
            extra = row.get("extra_info") or {}
            ds.missing_ground_truth.append(str(extra.get("id", f"row-{pos}")))
            continue
        if item.id in ds.items:
            ds.duplicate_ids.append(item.id)
            continue
        ds.items[item.id] = item
    return ds


def load_data(paths: Sequence[str | Path]) -> DataSet:
    """Read the question columns of one or more verl RL parquet files."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"data file not found: {path}")
        schema_names = set(pq.read_schema(path).names)
        missing = {"prompt", "reward_model"} - schema_names
        if missing:
            raise ValueError(f"{path} is not a verl RL parquet: missing column(s) {sorted(missing)}")
        cols = [c for c in QUESTION_COLUMNS if c in schema_names]
        rows.extend(pq.read_table(path, columns=cols).to_pylist())
    return items_from_rows(rows)


_WS_RE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Whitespace collapsed, ``<image>`` placeholders removed: how a prompt is compared with a decoded one."""
    return _WS_RE.sub(" ", text.replace("<image>", " ")).strip()
