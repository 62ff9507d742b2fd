"""Readers of the paper's stage-1 sources, in their published layouts, to the builder's input rows.

Each reader turns one record of a release into the builder's JSONL record (``question``,
``answer``, ``images``: paths relative to the release's image folder, ``id``,
``data_source``), or into a :class:`SourceSkip` with a reason.  The builder reads them with
``input_format: <name>`` (``python -m srpo_data.build_reflections --input-format mulberry``)
and ``image_dir`` set to the unpacked image folder.  A record the release's own tooling
accepts is read; anything else is skipped with a reason, never guessed, and never turned
into a different kind of sample (an ``<image>`` with no image to go with it is refused as
``image_token_count_mismatch``, not read as a text-only question).  Where each layout was
read (public sources; none of their code is used here):

- ``mulberry`` (HuanjinYao/Mulberry-SFT, ``mulberry_sft.json`` plus ``mulberry_images.tar``).
  Written by ``comcts/code/data_construction.py`` of github.com/HJYao00/Mulberry: a JSON list
  of ``{"messages": [user, assistant], "images": data['image']}``, where ``data['image']`` is
  ONE path (a string; ``comcts/README.md`` shows the input's ``"image"`` field) and the user
  turn is ``'<image>' + question``; the README registers it with LLaMA-Factory as sharegpt
  (``role``/``content``, ``user``/``assistant``).  ``images`` is read the way LLaMA-Factory's
  ``DatasetConverter._find_medias`` (``src/llamafactory/data/converter.py``) reads it: absent
  or ``[]`` -> no image, a string -> one image, a list of strings -> those images; and, as its
  ``mm_plugin._validate_messages`` demands, the ``<image>`` tokens of the messages must number
  the images.  The assistant's answer ends with ``### The final answer is:`` (the phrase
  ``reformat_reasoning`` writes and ``comcts.py`` splits on) and then X, the ground truth;
  the search prompt (``comcts/code/prompt.py``) asks for the option "along with its content"
  on multiple choice, so X reads ``C``, ``A: 57`` or ``B: 45`` (``comcts/README.md``'s
  outputs).  X is kept as written; the grader reads ``A: 57`` as the letter A or the value 57
  (:func:`srpo_reward.grading.normalize_ground_truth`, the same for reward and evaluation).
- ``llava_cot`` (Xkev/LLaVA-CoT-100k, ``train.jsonl`` plus the ``image.zip.part-*`` archive):
  one JSON object per line, ``id``, ``image`` (one path), ``conversations`` (``from``:
  ``human``/``gpt``, ``value``), as the dataset card lists the files and as public loaders of
  it read it (``load_dataset("Xkev/LLaVA-CoT-100k")`` with ``samples["image"]`` and
  ``c[0]["value"]``/``c[1]["value"]`` in github.com/ZixuanLiu4869/LLaVA-Sco
  ``dataset_generation.py``; ``train/datasets/cot_dataset.py`` there skips lines without
  ``"image"`` and attaches the image to the first user turn, with no ``<image>`` in the text).
  The answer is staged ``<SUMMARY>..</SUMMARY><CAPTION>..</CAPTION><REASONING>..</REASONING>
  <CONCLUSION>..</CONCLUSION>``: the CONCLUSION is the ground truth (often a short sentence
  rather than a bare value).  A line without ``image`` is a bad record (``missing_image``), as that
  loader skips it: the release is a set of image questions, and its tooling never trains one as text.
- ``mathv360k`` (Zhiqiang007/MathV360K, ``train_samples_all_tuning.json`` plus ``data_images``):
  LLaVA-1.5's layout (github.com/HZQ950419/Math-LLaVA trains on it with LLaVA's
  ``train.py``: ``--data_path ./train_samples_all_tuning.json --image_folder ./data_images``;
  its README shows ``data_images/TabMWP/images/..``): a JSON list, ``id``, ``image`` (one path
  relative to ``data_images/``), ``conversations`` (``from``/``value``); the human turn holds
  ``<image>`` at most once.  The first ``gpt`` value is the ground truth; it may read ``The
  answer is 5`` (a public preprocessor of its CLEVR-Math part in LLaVA-OneVision-Data
  matches exactly ``The answer is (-?\\d+)``), which the grader reads as ``5``.  A record
  without ``image`` is read as text-only when its text has no ``<image>``: MathV360K is trained
  with LLaVA-1.5's own ``train.py``, whose loader trains such records as text-only (its parent
  mix, LLaVA-1.5's ``llava_v1_5_mix665k.json``, holds text-only ShareGPT conversations); with an
  ``<image>`` it is refused.

- ``srpo_sft`` (the authors' released SFT data, SRPOMLLMs/srpo-sft-data): LLaMA-Factory sharegpt,
  as the authors trained with (``srpo_sft/LLaMA-Factory/data/dataset_info.json`` of
  github.com/SUSTechBruce/SRPO_MLLMs: ``messages`` with ``role``/``content``, a ``system`` tag,
  ``images``); ``conversations`` with ``from``/``value`` is accepted too.  Each record is
  what ``build_training_data_prompt`` (``utils/prompt_utils.py``) writes: a system message, a
  user turn ``Question:<question>Q</question>\\nImage: <image>\\n`` and the target; the
  question is read back from ``<question>...</question>`` as their ``utils/data_utils.py``
  does (an empty one is reported as ``missing_question``; a user turn without the markup is
  taken whole).  Targets are ``<think>T1</think>\\n<answer>A1</answer>\\n<reflection>R
  </reflection>\\n<answer>A2</answer>`` with A2 the ground truth: the second ``<think>`` is
  missing, so they disagree with the RL format (:func:`inspect_srpo_sft` counts them).  Read
  by the builder, each record becomes a sample whose attempt and reflection are given: only
  the revise step is called, to write the missing T2/A2, and A2 is graded against the
  release's own A2.

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


def _source_id(rec: dict[str, Any]) -> str:
    return str(rec["id"]) if rec.get("id") is not None else ""


def sharegpt_images(value: Any) -> list[str] | None:
    """The image paths of a sharegpt record's ``images`` as LLaMA-Factory reads them (absent or
    ``[]``: none; a string: one; a list of strings: those), or None for anything else."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else None
    if isinstance(value, list) and all(isinstance(p, str) and p for p in value):
        return list(value)
    return None


def _image_tokens(turns: list[tuple[str, str]]) -> int:
    return sum(text.count(IMAGE_TOKEN) for _, text in turns)


def mulberry_row(rec: Any, index: int) -> dict[str, Any] | SourceSkip:
    """One record of ``mulberry_sft.json`` (LLaMA-Factory sharegpt: ``messages``, ``images``)."""
    if not isinstance(rec, dict):
        return SourceSkip(index, "not_an_object")
    sid = _source_id(rec)
    turns = _turns(rec.get("messages"), "role", "content")
    images = sharegpt_images(rec.get("images"))
    if turns is None or images is None:
        return SourceSkip(index, "bad_layout", sid)
    if _image_tokens(turns) != len(images):
        return SourceSkip(index, "image_token_count_mismatch", sid)
    pair = _first_pair(turns, "user", "assistant")
    if pair is None:
        return SourceSkip(index, "no_question_answer_pair", sid)
    question, response = pair
    m = MULBERRY_FINAL.search(response)
    if m is None:
        return SourceSkip(index, "no_final_answer", sid)
    return _row(index, "mulberry", question, m.group(1), images, sid)


def _llava_layout(rec: Any, index: int, source: str) -> tuple[str, str, list[str], str] | SourceSkip:
    """LLaVA-1.5's record: one ``image`` path (or none: text-only) and ``conversations``."""
    if not isinstance(rec, dict):
        return SourceSkip(index, "not_an_object")
    sid = _source_id(rec)
    turns = _turns(rec.get("conversations"), "from", "value")
    image = rec.get("image")
    if turns is None or (image is not None and (not isinstance(image, str) or not image)):
        return SourceSkip(index, "bad_layout", sid)
    images = [image] if image is not None else []
    # LLaVA moves the one <image> of the first turn to its start, or attaches the image when the
    # text has none; more tokens than images (or a token without an image) it cannot pair
    if _image_tokens(turns) > len(images):
        return SourceSkip(index, "image_token_count_mismatch", sid)
    pair = _first_pair(turns, "human", "gpt")
    if pair is None:
        return SourceSkip(index, "no_question_answer_pair", sid)
    return pair[0], pair[1], images, sid


def llava_cot_row(rec: Any, index: int) -> dict[str, Any] | SourceSkip:
    """One line of LLaVA-CoT-100k's ``train.jsonl`` (``id``, ``image``, ``conversations``); a line
    without ``image`` is ``missing_image`` (the release's loader skips it)."""
    if isinstance(rec, dict) and rec.get("image") is None:
        return SourceSkip(index, "missing_image", _source_id(rec))
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


#: The question inside the authors' user turn (``Question:<question>Q</question>\nImage: <image>``).
SRPO_QUESTION = re.compile(r"<question>(.*?)</question>", re.S)


def srpo_sft_question(user_turn: str) -> str:
    """The question of the authors' user turn: the text inside ``<question>...</question>``
    (as their ``utils/data_utils.py`` reads it back), or the whole turn without the markup."""
    m = SRPO_QUESTION.search(user_turn)
    return m.group(1).strip() if m else user_turn


def srpo_sft_row(rec: Any, index: int) -> dict[str, Any] | SourceSkip:
    """One record of the released SRPO SFT data: the question, the given attempt and
    reflection, and the release's A2 as the ground truth."""
    if not isinstance(rec, dict):
        return SourceSkip(index, "not_an_object")
    sid = _source_id(rec)
    if "messages" in rec:
        turns, user, assistant = _turns(rec.get("messages"), "role", "content"), "user", "assistant"
    else:
        turns, user, assistant = _turns(rec.get("conversations"), "from", "value"), "human", "gpt"
    images = sharegpt_images(rec.get("images"))
    if turns is None or images is None:
        return SourceSkip(index, "bad_layout", sid)
    if _image_tokens(turns) != len(images):
        return SourceSkip(index, "image_token_count_mismatch", sid)
    pair = _first_pair(turns, user, assistant)
    if pair is None:
        return SourceSkip(index, "no_question_answer_pair", sid)
    question, target = pair
    m = SRPO_TARGET.match(target)
    if m is None:
        return SourceSkip(index, "target_unparsable", sid)
    from srpo_reward.format import extract_answer  # the reward's own answer extraction

    gold = extract_answer(m.group("a2"))
    row = _row(index, "srpo_sft", srpo_sft_question(question), gold or "", images, sid)
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
    """``python -m srpo_data.stage1.sources inspect FILE``: what the released SRPO SFT data
    lacks; ``rows --source NAME FILE [--sample N]``: the builder rows of a release, as JSONL."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m srpo_data.stage1.sources", description=main.__doc__)
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
