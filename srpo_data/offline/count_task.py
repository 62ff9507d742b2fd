"""The ablation study's task (``python -m recipe.srpo.cpu.ablation``): count a word in a list.

    python -m srpo_data.offline.count_task --out WS

Every question shows a list of 4 to 10 words from a small vocabulary and asks how often one of
them occurs (``Words: cat dog cat sun. How many times does the word cat appear?`` -> ``2``).
The answer depends on the whole list, so a reflection has real work to do:

- the scripted stage-1 policy's FIRST attempt states a count in one line (``I read the list of
  words and count the word cat in it: 2.``); a wrong one is the same sentence with a count one off, so an error reads
  exactly like a right attempt; errors depend on the content: the longer the list, the more
  slips (:func:`first_right_probability`);
- the teacher's reflection says what to do and never the verdict: the same text for a right and a
  wrong attempt (:func:`reflection`);
- the SECOND attempt does extra work: it goes through the list word by word and numbers each
  occurrence (``cat 1, dog, cat 2, sun. So 2.``), and can itself slip (skip one occurrence or number a
  word that is not the target), more often on long lists (:func:`revision_right_probability`);
  so the reflection can fix a wrong first answer and can break a right one;
- the second attempt's length grows with the list, so L / L1 varies and the length term acts.

The real builder (``srpo_data.build_reflections``) drops wrong revisions and mixes first-right
and first-wrong samples (``target_first_right``, 0.5 here: see docs/ablation.md, "the gate").
The image is a plain coloured square (noise: the vision tower is frozen). Held-out questions
are lists whose content hash puts them in the test split, never in train.

Written under ``WS`` like :mod:`srpo_data.offline.learn_task`: ``tiny-qwen/``, ``data/raw/geometry3k/``,
``data/stage1_answers.json``, ``data/reflection_builder.yaml``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from srpo_data.offline.learn_task import COLOUR_RGB, LEARN_WIDTH, tight, write_layout

#: The vocabulary of the lists.
WORDS = ("cat", "dog", "sun", "cup", "hat", "pen")
#: Shortest and longest list.
MIN_LEN, MAX_LEN = 4, 10
#: Most occurrences of the counted word.
MAX_COUNT = 5
#: The builder's share of first-right samples for this task (the paper's is 0.3; docs/ablation.md says why).
FIRST_RIGHT = 0.5
#: How much the first attempt's right rate falls from the shortest to the longest list (centred on the mean).
FIRST_SLOPE = 0.3
#: How much the revision's right rate falls from the shortest to the longest list.
REVISE_SLOPE = 0.15


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def split_of(words: tuple[str, ...], target: str) -> str:
    """One list in four is held out, by a hash of its content (so a list is in one split only)."""
    return "test" if _hash(" ".join(words) + "|" + target) % 4 == 0 else "train"


def make_list(rng: random.Random) -> tuple[tuple[str, ...], str]:
    n = rng.randint(MIN_LEN, MAX_LEN)
    target = rng.choice(WORDS)
    k = rng.randint(1, min(MAX_COUNT, n - 1))
    others = [w for w in WORDS if w != target]
    words = [target] * k + [rng.choice(others) for _ in range(n - k)]
    rng.shuffle(words)
    return tuple(words), target


def question(words: tuple[str, ...], target: str) -> tuple[str, str]:
    """(question with one ``<image>``, ground truth)."""
    return (f"<image>Words: {' '.join(words)}. How many times does the word {target} appear?",
            str(words.count(target)))


def parse_question(text: str) -> tuple[tuple[str, ...], str]:
    """The (words, target) of a question text (the inverse of :func:`question`)."""
    body = text.split("Words: ", 1)[1]
    listed, rest = body.split(". How many times does the word ", 1)
    return tuple(listed.split()), rest.split(" appear?", 1)[0]


def rows(split: str, n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n`` distinct rows (question, ground truth, colour) of a split."""
    rng = random.Random(f"count-{seed}")
    out, seen = [], set()
    colours = list(COLOUR_RGB)
    while len(out) < n:
        words, target = make_list(rng)
        if split_of(words, target) != split or (words, target) in seen:
            continue
        seen.add((words, target))
        q, a = question(words, target)
        out.append((q, a, colours[_hash(q) % len(colours)]))
    return out


def first_right_probability(n_words: int, right_rate: float) -> float:
    """The scripted first attempt's chance to be right: ``right_rate`` at the mean length, less on longer lists."""
    mid = (MIN_LEN + MAX_LEN) / 2
    return min(1.0, max(0.0, right_rate - FIRST_SLOPE * (n_words - mid) / (MAX_LEN - MIN_LEN)))


def revision_right_probability(n_words: int, revise_right_rate: float) -> float:
    """The scripted second attempt's chance to be right (it enumerates, so it slips less, but more on long lists)."""
    mid = (MIN_LEN + MAX_LEN) / 2
    return min(1.0, max(0.0, revise_right_rate - REVISE_SLOPE * (n_words - mid) / (MAX_LEN - MIN_LEN)))


def slipped(count: int, up: bool) -> int:
    """A count one off: one up or one down (never below 0)."""
    return count + 1 if up or count == 0 else count - 1


def first_attempt(target: str, count: int) -> str:
    """The first attempt: a count stated in one line, right or not (the text does not say which)."""
    return (f"<think> I read the list of words and count the word {target} in it: {count}. </think> "
            f"<answer> \\boxed{{{count}}} </answer>")


def enumeration(words: tuple[str, ...], target: str, slip: int | None = None) -> tuple[str, int]:
    """The second attempt's work: every word in order, each occurrence of ``target`` numbered.

    ``slip``: the index of one word read wrongly (an occurrence skipped, or another word numbered).
    Returns (text, count it reaches).
    """
    parts, k = [], 0
    for i, w in enumerate(words):
        counted = (w == target) != (i == slip)
        if counted:
            k += 1
            parts.append(f"{w} {k}")
        else:
            parts.append(w)
    return ", ".join(parts), k


def second_attempt(words: tuple[str, ...], target: str, slip: int | None = None) -> str:
    work, k = enumeration(words, target, slip)
    return f"<think> {work}. So {k}. </think> <answer> \\boxed{{{k}}} </answer>"


def reflection(target: str) -> str:
    """The teacher's reflection, in the student's voice: what to do, never the verdict nor the answer."""
    return f"I will number each {target}."


def _frac(text: str, salt: str) -> float:
    return (_hash(salt + text) % 10_000) / 10_000


def scripted_texts(q: str, right_rate: float, revise_right_rate: float, seed: int = 0) -> dict[str, str | bool]:
    """What the scripted endpoint writes for a question: the first attempt, the reflection, the revision."""
    words, target = parse_question(q)
    count = words.count(target)
    first_ok = _frac(q, f"first{seed}") < first_right_probability(len(words), right_rate)
    first_count = count if first_ok else slipped(count, _frac(q, f"dir{seed}") < 0.5)
    rev_ok = _frac(q, f"rev{seed}") < revision_right_probability(len(words), revise_right_rate)
    slip = None if rev_ok else _hash(f"slip{seed}{q}") % len(words)
    return {"first": first_attempt(target, first_count), "reflection": reflection(target),
            "revision": second_attempt(words, target, slip), "first_right": first_ok, "revision_right": rev_ok}


def scripted_reply(body: dict, script, nth: int = 0) -> str:
    """The stage-1 endpoint's texts (``fake_endpoint --reply srpo_data.offline.count_task:scripted_reply``).

    The teacher's reply is the same whatever the verdict line says; the first attempt is right with
    :func:`first_right_probability` (``script.right_rate`` at the mean length), the revision with
    :func:`revision_right_probability` (``script.revise_right_rate``); decisions are hashes of the question.
    """
    from srpo_data.offline.fake_endpoint import _question_of, _text_of

    system, user = _text_of(body.get("messages", []))
    q, _ = _question_of(user, script)
    texts = scripted_texts(q, script.right_rate, script.revise_right_rate, script.seed)
    if system:
        return json.dumps({"reflection": texts["reflection"]})
    if "Your reflection on it:" in user:
        return str(texts["revision"])
    return str(texts["first"])


def corpus(n_train: int = 1024, n_test: int = 256, seed: int = 0) -> str:
    """The task's own text for the tiny tokenizer's BPE: the format prompt and, for the questions of
    ``rows(split, n, seed)``, every question, both kinds of first attempt, the reflection, revisions (as sent,
    and as the builder writes them: :func:`srpo_data.offline.learn_task.tight`)."""
    from srpo_reward.prompts import load_format_prompt

    lines = load_format_prompt().replace("{question}", "").splitlines()
    for split, n in (("train", n_train), ("test", n_test)):
        for q, _, _ in rows(split, n, seed):
            text = q.replace("<image>", "")
            words, target = parse_question(text)
            count = words.count(target)
            lines.append(text)
            for attempt in (first_attempt(target, count), first_attempt(target, slipped(count, True)),
                            first_attempt(target, slipped(count, False)), second_attempt(words, target)):
                lines += [attempt, tight(attempt)]
            lines += [reflection(target), f"<reflection>{reflection(target)}</reflection>"]
    return "\n".join(dict.fromkeys(line for line in lines if line.strip())) + "\n"


def write_task(out: Path, train_rows: int, test_rows: int, endpoint_url: str, seed: int = 0,
               first_right: float = FIRST_RIGHT, width: int = LEARN_WIDTH) -> dict[str, Path]:
    return write_layout(Path(out), {"train": rows("train", train_rows, seed), "test": rows("test", test_rows, seed)},
                        endpoint_url, first_right, width, corpus())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--train-rows", type=int, default=512)
    ap.add_argument("--test-rows", type=int, default=96)
    ap.add_argument("--endpoint-url", default="http://127.0.0.1:8010/v1", help="the scripted stage-1 endpoint")
    ap.add_argument("--first-right", type=float, default=FIRST_RIGHT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for name, path in write_task(args.out, args.train_rows, args.test_rows, args.endpoint_url, args.seed,
                                 args.first_right).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
