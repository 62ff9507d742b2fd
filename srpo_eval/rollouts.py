"""Rollout records: the JSONL that ``srpo_eval.generate`` writes, and the imports of other layouts.

One JSON object per line.  Our own layout (what ``generate`` writes)::

    {"id": "mathvista-12", "sample": 0, "response": "<think>...</answer>",
     "finish_reason": "stop", "response_tokens": 311, "source": "vllm"}

Layouts read as well (detected per line):

- a user's JSONL of responses: ``{"id": ..., "response": "..."}`` or
  ``{"id": ..., "responses": ["...", "..."]}`` (several samples of one
  question); ``finish_reason`` is optional;
- verl 0.9.1's validation dump (``trainer.validation_data_dir``: one
  ``<step>.jsonl`` per validation, written by ``RayPPOTrainer._write_generations``
  with keys ``input``, ``output``, ``gts``, ``score``, ``step`` plus one key per
  reward extra info).  It has no question id (``uid`` is a random uuid), so the
  question is found by its text: the decoded ``input`` must contain the
  question's prompt (images are special tokens that the decode drops) and
  ``gts`` must equal its ground truth.

A line that cannot be used is kept as a :class:`Rollout` with ``error`` set,
so the report counts it; nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from srpo_eval.data import DataItem, DataSet, normalize_text

#: Error codes of unusable lines, with what they mean (the report prints these).
ERRORS = {
    "bad_json": "the line is not a JSON object",
    "missing_fields": "neither an id with a response nor a verl dump record (input/output)",
    "missing_response": "the response is missing or not a string",
    "unknown_id": "the id is not a question of the data",
    "no_matching_question": "verl dump record whose prompt and ground truth match no question",
    "ambiguous_question": "verl dump record matching several questions that are graded differently",
    "repeated_line": "the same id and response as an earlier line, without a sample index (not a new sample)",
    "duplicate_sample": "an (id, sample) pair given by an earlier line",
}


@dataclass
class Rollout:
    """One response to one question (or an unusable line, with ``error`` set)."""

    id: str | None
    response: str | None
    sample: int = 0
    finish_reason: str | None = None
    response_tokens: int | None = None
    source: str = "jsonl"
    error: str | None = None
    #: Where it came from: ``file:line`` (for the report's list of bad lines).
    origin: str = ""
    #: True when a verl dump record matched several questions with identical grading.
    ambiguous: bool = False

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if not (k in ("error", "origin", "ambiguous") and not v)}


class DumpMatcher:
    """Finds the question of a verl validation-dump record from its decoded prompt and ground truth."""

    def __init__(self, data: DataSet):
        self._by_gt: dict[str, list[tuple[str, DataItem]]] = defaultdict(list)
        for item in data.items.values():
            self._by_gt[item.ground_truth.strip()].append((normalize_text(item.prompt_text), item))

    @staticmethod
    def _grading_key(item: DataItem) -> tuple:
        return (item.benchmark, item.ground_truth, item.answer_type, item.options)

    def match(self, decoded_input: str, gts: Any) -> tuple[DataItem | None, str | None, bool]:
        """(item, error code, ambiguous): the question whose prompt the decoded input contains."""
        gt = str(gts).strip() if gts is not None else ""
        haystack = normalize_text(decoded_input or "")
        found = [(p, it) for p, it in self._by_gt.get(gt, []) if p and p in haystack]
        if not found:
            return None, "no_matching_question", False
        longest = max(len(p) for p, _ in found)
        best = [it for p, it in found if len(p) == longest]
        if len(best) == 1:
            return best[0], None, False
        if len({self._grading_key(it) for it in best}) == 1:
            return best[0], None, True
        return None, "ambiguous_question", False


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_lines(
    lines: Iterable[str], data: DataSet, origin: str = "", source: str = "jsonl"
) -> Iterator[Rollout]:
    """Pure: turn JSONL lines of any supported layout into rollouts (errors included)."""
    matcher: DumpMatcher | None = None
    seen: Counter[str] = Counter()
    seen_text: set[tuple[str, str]] = set()
    seen_sample: set[tuple[str, int]] = set()
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{origin}:{lineno}"
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict):
            yield Rollout(id=None, response=None, error="bad_json", origin=where)
            continue
        finish = rec.get("finish_reason")
        finish = str(finish) if finish is not None else None
        tokens = _as_int(rec.get("response_tokens"))
        if rec.get("error") in ERRORS and rec.get("id") is None:
            # a record that ``generate --rollouts`` kept unusable: keep its code and first origin
            yield Rollout(id=None, response=None, source=str(rec.get("source") or source), error=str(rec["error"]),
                          origin=f"{where} (from {rec['origin']})" if rec.get("origin") else where)
            continue
        if "id" in rec and rec["id"] is not None:
            qid = str(rec["id"])
            if "responses" in rec and "response" not in rec:
                responses = rec["responses"]
                if not isinstance(responses, list) or not responses:
                    yield Rollout(id=qid, response=None, error="missing_response", origin=where)
                    continue
            else:
                responses = [rec.get("response")]
            rec_source = str(rec.get("source") or source)
            for k, resp in enumerate(responses):
                given = _as_int(rec.get("sample")) if len(responses) == 1 else None
                sample = seen[qid] if given is None else given
                error = None
                if not isinstance(resp, str):
                    error, resp = "missing_response", None
                elif qid not in data.items:
                    error = "unknown_id"
                elif given is None and len(responses) == 1 and (qid, resp) in seen_text:
                    error = "repeated_line"
                elif (qid, sample) in seen_sample:
                    error = "duplicate_sample"
                if error is None:
                    seen[qid] = max(seen[qid], sample) + 1
                    seen_text.add((qid, resp))
                    seen_sample.add((qid, sample))
                yield Rollout(
                    id=qid,
                    response=resp,
                    sample=sample,
                    finish_reason=finish,
                    response_tokens=tokens if len(responses) == 1 else None,
                    source=rec_source,
                    error=error,
                    origin=where,
                )
        elif "output" in rec and "input" in rec:
            if matcher is None:
                matcher = DumpMatcher(data)
            resp = rec.get("output")
            if not isinstance(resp, str):
                yield Rollout(id=None, response=None, source="verl_dump", error="missing_response", origin=where)
                continue
            item, error, ambiguous = matcher.match(str(rec.get("input") or ""), rec.get("gts"))
            qid = item.id if item is not None else None
            sample = 0
            if qid is not None:
                sample = seen[qid]
                seen[qid] += 1
            yield Rollout(
                id=qid,
                response=resp,
                sample=sample,
                finish_reason=finish,
                source="verl_dump",
                error=error,
                origin=where,
                ambiguous=ambiguous,
            )
        else:
            yield Rollout(id=None, response=None, error="missing_fields", origin=where)


def read_rollouts(path: str | Path, data: DataSet) -> list[Rollout]:
    """All rollouts of a JSONL file (verl dump, user JSONL or our own), unusable lines included."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"rollouts file not found: {path}")
    with path.open(encoding="utf-8", errors="replace") as f:
        return list(parse_lines(f, data, origin=path.name))


def done_ids(path: str | Path) -> set[str]:
    """Ids already present (with a string response) in our own rollout JSONL, for resuming."""
    path = Path(path)
    done: set[str] = set()
    if not path.exists():
        return done
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run: that question is generated again
            if isinstance(rec, dict) and rec.get("id") is not None and isinstance(rec.get("response"), str):
                done.add(str(rec["id"]))
    return done


def append_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Append records, one JSON object per line, flushed; returns how many were written."""
    path = Path(path)
    n = 0
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as f:
            f.seek(-1, 2)
            cut = f.read(1) != b"\n"
        if cut:  # an interrupted run left half a line: end it so the next record starts clean
            with path.open("a", encoding="utf-8") as f:
                f.write("\n")
    with path.open("a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
        f.flush()
    return n
