"""Readers of the paper's stage-1 sources, in their published layouts, to the builder's input rows.

Each reader turns one record of a release into the builder's JSONL record (``question``,
``answer``, ``images``: paths relative to the release's image folder, ``id``,
``data_source``), or into a :class:`SourceSkip` with a reason.  The builder reads them with
``input_format: <name>`` (``python -m srpo_data.build_reflections --input-format mulberry``)
and ``image_dir`` set to the unpacked image folder.  Layouts (checked against the dataset cards
and the releases' own code; a release can change, so a record that does not fit is skipped with
a reason, never guessed):

- ``mulberry`` (HuanjinYao/Mulberry-SFT, ``mulberry_sft.json`` plus ``mulberry_images.tar``):
  a JSON list in LLaMA-Factory's sharegpt layout, ``messages`` (``role``/``content``) and
  ``images`` (paths).  The user turn holds the question with one ``<image>`` per image; the
  assistant's step-by-step answer ends with ``### The final answer is: X`` (the phrase the
  release's CoMCTS code splits on): X is the ground truth.
- ``llava_cot`` (Xkev/LLaVA-CoT-100k, ``train.jsonl`` plus the ``image.zip.part-*`` archive):
  one JSON object per line, ``id``, ``image`` (one path), ``conversations``
  (``from``: ``human``/``gpt``, ``value``).  The answer is staged
  ``<SUMMARY>..</SUMMARY><CAPTION>..</CAPTION><REASONING>..</REASONING><CONCLUSION>..</CONCLUSION>``:
  the CONCLUSION is the ground truth (often a short sentence rather than a bare value).
- ``mathv360k`` (Zhiqiang007/MathV360K, ``train_samples_all_tuning.json`` plus ``data_images``):
  a JSON list, ``id``, ``image`` (one path relative to ``data_images/``, starting with the
  sub-dataset's folder, e.g. ``TabMWP/images/..``), ``conversations`` (``from``/``value``): the
  first ``gpt`` value is the ground truth.

- ``srpo_sft`` (the authors' released SFT data, SRPOMLLMs/srpo-sft-data): LLaMA-Factory sharegpt,
  as the authors trained with (``messages`` with ``role``/``content``, or ``conversations``
  with ``from``/``value``; ``images``).  The release itself could not be inspected here, so
  both sharegpt spellings are accepted and a record in neither is skipped (``bad_layout``).
  Its targets are ``<think>T1</think> <answer>A1</answer> <reflection>R</reflection>
  <answer>A2</answer>``: the second ``<think>`` is missing, so they disagree with the RL format
  (:func:`inspect_srpo_sft` counts them).  Read by the builder, each record becomes a sample
  whose attempt and reflection are given: only the revise step is called, to write the missing
  T2/A2, and A2 is graded against the release's own A2 (the release has no separate ground
  truth; its A2 is the answer the authors' filter accepted).

Only the first question/answer pair of a multi-turn record is used (later turns depend on
earlier answers).  ``--sample N`` keeps a deterministic sample of N records (:func:`sample_ids`).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_TOKEN = "<image>"
MULBERRY_FINAL = re.compile(r"###\s*The final answer is\s*:?\s*(.+?)\s*$", re.S | re.I)
LLAVA_COT_CONCLUSION = re.compile(r"<CONCLUSION>(.*?)</CONCLUSION>", re.S)


@dataclass(frozen=True)
class SourceSkip:
    """A record of a release that does not give a usable row, and why."""

    index: int
    reason: str
    source_id: str = ""


def _strip_image_tokens(text: str) -> str:
    return text.replace(IMAGE_TOKEN, "").strip()


def _turns(conversations: Any, role_key: str, text_key: str) -> list[tuple[str, str]] | None:
    if not isinstance(conversations, list):
        return None
    out = []
    for turn in conversations:
        if not isinstance(turn, dict) or not isinstance(turn.get(role_key), str) or not isinstance(turn.get(text_key), str):
            return None
        out.append((turn[role_key], turn[text_key]))
    return out


def _first_pair(turns: list[tuple[str, str]], user: str, assistant: str) -> tuple[str, str] | None:
    for i, (role, text) in enumerate(turns):
        if role == user:
            for role2, text2 in turns[i + 1 :]:
                if role2 == assistant:
                    return text, text2
            return None
    return None


def _row(index: int, source: str, question: str, answer: str, images: list[str], source_id: str) -> dict[str, Any] | SourceSkip:
    question = _strip_image_tokens(question)
    if not question:
        return SourceSkip(index, "missing_question", source_id)
    if not answer.strip():
        return SourceSkip(index, "missing_answer", source_id)
    return {"id": source_id or f"{source}-{index}", "question": question, "answer": answer.strip(), "images": images,
            "data_source": source}


def mulberry_row(rec: Any, index: int) -> dict[str, Any] | SourceSkip:
    """One record of ``mulberry_sft.json`` (LLaMA-Factory sharegpt: ``messages``, ``images``)."""
    if not isinstance(rec, dict):
        return SourceSkip(index, "not_an_object")
    sid = str(rec.get("id", "")) if rec.get("id") is not None else ""
    turns = _turns(rec.get("messages"), "role", "content")
    images = rec.get("images")
    if turns is None or not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        return SourceSkip(index, "bad_layout", sid)
    pair = _first_pair(turns, "user", "assistant")
    if pair is None:
        return SourceSkip(index, "no_question_answer_pair", sid)
    question, response = pair
    m = MULBERRY_FINAL.search(response)
    if m is None:
        return SourceSkip(index, "no_final_answer", sid)
    return _row(index, "mulberry", question, m.group(1), list(images), sid)


def _llava_layout(rec: Any, index: int, source: str) -> tuple[str, str, list[str], str] | SourceSkip:
    if not isinstance(rec, dict):
        return SourceSkip(index, "not_an_object")
    sid = str(rec.get("id", "")) if rec.get("id") is not None else ""
    turns = _turns(rec.get("conversations"), "from", "value")
    image = rec.get("image")
    if turns is None or not isinstance(image, str) or not image:
        return SourceSkip(index, "bad_layout", sid)
    pair = _first_pair(turns, "human", "gpt")
    if pair is None:
        return SourceSkip(index, "no_question_answer_pair", sid)
    return pair[0], pair[1], [image], sid


def llava_cot_row(rec: Any, index: int) -> dict[str, Any] | SourceSkip:
    """One line of LLaVA-CoT-100k's ``train.jsonl`` (``id``, ``image``, ``conversations``)."""
    got = _llava_layout(rec, index, "llava_cot")
    if isinstance(got, SourceSkip):
        return got
    question, response, images, sid = got
    m = LLAVA_COT_CONCLUSION.search(response)
    if m is None:
        return SourceSkip(index, "no_conclusion", sid)
    return _row(index, "llava_cot", question, m.group(1), images, sid)


def mathv360k_row(rec: Any, index: int) -> dict[str, Any] | SourceSkip:
    """One record of MathV360K's ``train_samples_all_tuning.json`` (``id``, ``image``, ``conversations``)."""
    got = _llava_layout(rec, index, "mathv360k")
    if isinstance(got, SourceSkip):
        return got
    question, answer, images, sid = got
    return _row(index, "mathv360k", question, answer, images, sid)


SRPO_TARGET = re.compile(
    r"^\s*<think>(?P<t1>.*?)</think>\s*<answer>(?P<a1>.*?)</answer>\s*<reflection>(?P<r>.*?)</reflection>\s*"
    r"(?:<think>(?P<t2>.*?)</think>\s*)?<answer>(?P<a2>.*?)</answer>\s*$",
    re.S,
)


def srpo_target_kind(target: str) -> str:
    """``five_blocks``, ``missing_second_think`` (the release's layout) or ``unparsable``."""
    m = SRPO_TARGET.match(target)
    if m is None:
        return "unparsable"
    return "five_blocks" if m.group("t2") is not None else "missing_second_think"


def srpo_sft_row(rec: Any, index: int) -> dict[str, Any] | SourceSkip:
    """One record of the released SRPO SFT data: the question, the given attempt and
    reflection, and the release's A2 as the ground truth."""
    if not isinstance(rec, dict):
        return SourceSkip(index, "not_an_object")
    sid = str(rec.get("id", "")) if rec.get("id") is not None else ""
    if "messages" in rec:
        turns, user, assistant = _turns(rec.get("messages"), "role", "content"), "user", "assistant"
    else:
        turns, user, assistant = _turns(rec.get("conversations"), "from", "value"), "human", "gpt"
    images = rec.get("images", [])
    if turns is None or not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        return SourceSkip(index, "bad_layout", sid)
    pair = _first_pair(turns, user, assistant)
    if pair is None:
        return SourceSkip(index, "no_question_answer_pair", sid)
    question, target = pair
    m = SRPO_TARGET.match(target)
    if m is None:
        return SourceSkip(index, "target_unparsable", sid)
    from srpo_reward.format import extract_answer  # the reward's own answer extraction

    gold = extract_answer(m.group("a2"))
    row = _row(index, "srpo_sft", question, gold or "", list(images), sid)
    if isinstance(row, dict):
        row["attempt"] = f"<think>{m.group('t1')}</think> <answer>{m.group('a1')}</answer>"
        row["reflection"] = m.group("r").strip()
        row["release_target"] = srpo_target_kind(target)
    return row


def inspect_srpo_sft(path: Path) -> dict[str, int]:
    """What the released SFT data holds and lacks: records by target layout."""
    counts: dict[str, int] = {"records": 0, "five_blocks": 0, "missing_second_think": 0, "unparsable": 0, "bad_layout": 0}
    for i, rec in enumerate(iter_records(path)):
        counts["records"] += 1
        got = srpo_sft_row(rec, i)
        if isinstance(got, SourceSkip):
            counts["unparsable" if got.reason == "target_unparsable" else "bad_layout"] += 1
        else:
            counts[got["release_target"]] += 1
    return counts


READERS: dict[str, Callable[[Any, int], dict[str, Any] | SourceSkip]] = {
    "srpo_sft": srpo_sft_row,
    "mulberry": mulberry_row,
    "llava_cot": llava_cot_row,
    "mathv360k": mathv360k_row,
}


def iter_records(path: Path) -> Iterator[Any]:
    """The records of a JSON list (streamed with ijson when installed) or of a JSONL file.

    A line of a JSONL file that is not JSON is yielded as None (the reader skips it)."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        try:
            import ijson
        except ImportError:  # pragma: no cover - ijson is in the venv; plain json as a fallback
            with path.open(encoding="utf-8") as fh:
                yield from json.load(fh)
            return
        with path.open("rb") as fh:
            yield from ijson.items(fh, "item", use_float=True)
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield None


def _rank(seed: int, index: int, rec: Any) -> bytes:
    """Sampling rank of a record: a hash of the seed and its content (not of its position)."""
    blob = json.dumps(rec, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(seed.to_bytes(8, "big", signed=True) + blob).digest()


def sample_ids(path: Path, n: int, seed: int = 0) -> set[int]:
    """Indices of the ``n`` records with the smallest ranks: the same sample on every run and
    on every machine, whatever the file order; memory O(n)."""
    heap: list[tuple[bytes, int]] = []  # max-heap by rank via negated bytes
    for i, rec in enumerate(iter_records(path)):
        r = _rank(seed, i, rec)
        neg = bytes(255 - b for b in r)
        if len(heap) < n:
            heapq.heappush(heap, (neg, i))
        elif neg > heap[0][0]:
            heapq.heapreplace(heap, (neg, i))
    return {i for _, i in heap}


def iter_source(
    path: Path, source: str, *, sample: int | None = None, seed: int = 0
) -> Iterator[dict[str, Any] | SourceSkip]:
    """Builder rows (or skips) of a release file, in file order; ``sample`` keeps N records."""
    if source not in READERS:
        raise ValueError(f"unknown source {source!r}; known: {sorted(READERS)}")
    reader = READERS[source]
    keep = sample_ids(path, sample, seed) if sample is not None else None
    for i, rec in enumerate(iter_records(path)):
        if keep is not None and i not in keep:
            continue
        if rec is None:
            yield SourceSkip(i, "bad_json")
            continue
        yield reader(rec, i)


def main(argv: list[str] | None = None) -> int:
    """``python -m srpo_data.stage1_sources inspect FILE``: what the released SRPO SFT data
    lacks; ``rows --source NAME FILE [--sample N]``: the builder rows of a release, as JSONL."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m srpo_data.stage1_sources", description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    ins = sub.add_parser("inspect", help="count the released SRPO SFT targets by layout")
    ins.add_argument("file", type=Path)
    rows = sub.add_parser("rows", help="print the builder rows of a release as JSONL")
    rows.add_argument("file", type=Path)
    rows.add_argument("--source", required=True, choices=sorted(READERS))
    rows.add_argument("--sample", type=int)
    rows.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.cmd == "inspect":
        counts = inspect_srpo_sft(args.file)
        print(json.dumps(counts))
        if counts["missing_second_think"]:
            print(
                f"{counts['missing_second_think']} of {counts['records']} targets lack the second <think> (the RL format "
                "has five blocks); complete them with: python -m srpo_data.build_reflections --input-format srpo_sft ...",
                file=sys.stderr,
            )
        return 0
    for item in iter_source(args.file, args.source, sample=args.sample, seed=args.seed):
        print(json.dumps(item if isinstance(item, dict) else {"skip": item.reason, "index": item.index}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
