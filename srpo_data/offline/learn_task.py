"""A task the tiny Qwen2.5-VL can learn on a CPU, for the learning run (``examples/cpu_learn.sh``).

    python -m srpo_data.offline.learn_task --out WS

The rule is a small lookup: every question names one figure (``The red tile is a pentagon.``)
and asks for its number of sides, either as a number (geometry3k's style: ``5``) or as the
letter of a fixed list of choices (MathVista's multiple-choice style: ``(A) 3 (B) 4 (C) 5
(D) 6`` -> ``C``).  Only the shape word decides the answer; the colour and the object are
noise, and the held-out split uses (colour, object, shape) combinations that the train split
never shows, so a model that answers them learned the rule, not the strings.  The image is a
plain coloured square (the vision tower is frozen in both stages; it carries nothing).

Written under ``WS`` (the demo workspace layout of :mod:`srpo_data.offline.demo`):

- ``tiny-qwen/``: the random-weight model (:func:`srpo_data.offline.tiny_qwen.build_tiny_qwen25vl`, 128 wide:
  :data:`LEARN_WIDTH`), its tokenizer's BPE also learned on the task's text (:func:`corpus`);
- ``data/raw/geometry3k/``: the task in the public hiyouga/geometry3k parquet layout
  (``problem``, ``answer``, ``images``), the input of ``srpo_data.prepare_rl``;
- ``data/stage1_answers.json``: question -> ground truth, for the scripted stage-1 endpoint
  (``python -m srpo_data.offline.fake_endpoint --answers``), which plays the policy (first attempts
  that read the shape at ``--right-rate``, else a guess, always wrong), and the teacher (a JSON
  reflection); the real builder (``srpo_data.build_reflections``) asks it, grades, mixes and
  writes the SFT data, so the chain is data -> stage 1 -> SFT -> merge -> GRPO, every stage
  the real one;
- ``data/reflection_builder.yaml``: the builder's endpoint config (policy and teacher at
  ``--endpoint-url``), with the paper's 30% first-right mix.

Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

#: The shape word decides the answer: its number of sides.
SHAPES: dict[str, int] = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}
#: Choices of the multiple-choice questions, always in this order.
CHOICES = "(A) 3 (B) 4 (C) 5 (D) 6"
LETTERS = {3: "A", 4: "B", 5: "C", 6: "D"}
COLOURS = ("red", "blue", "green", "yellow", "black", "white", "orange", "purple")
OBJECTS = ("tile", "sign", "card", "flag", "plate", "board")


def combos() -> list[tuple[str, str, str]]:
    return [(c, o, s) for c in COLOURS for o in OBJECTS for s in SHAPES]


def split_of(combo: tuple[str, str, str]) -> str:
    """One combination in eight is held out: those whose colour, object and shape positions sum to 0 mod 8
    (every shape, colour and object is in both splits; only the combination is new)."""
    colour, obj, shape = combo
    held_out = (COLOURS.index(colour) + OBJECTS.index(obj) + list(SHAPES).index(shape)) % 8 == 0
    return "test" if held_out else "train"


def question(combo: tuple[str, str, str], style: str) -> tuple[str, str]:
    """(question with one ``<image>``, ground truth) for a (colour, object, shape) combination."""
    colour, obj, shape = combo
    sides = SHAPES[shape]
    fact = f"The {colour} {obj} is a {shape}."
    if style == "choice":  # never contains the number-style question (the scripted endpoint matches substrings)
        return f"<image>{fact} Choices: {CHOICES}. Which choice is its number of sides?", LETTERS[sides]
    return f"<image>{fact} How many sides does it have?", str(sides)


def rows(split: str, n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n`` rows (question, ground truth, colour) of a split, cycling through its combinations and both styles."""
    pool = [(c, style) for c in combos() if split_of(c) == split for style in ("number", "choice")]
    random.Random(f"{seed}-{split}").shuffle(pool)
    out = []
    for i in range(n):
        combo, style = pool[i % len(pool)]
        q, a = question(combo, style)
        out.append((q, a, combo[0]))
    return out


COLOUR_RGB = {"red": (220, 40, 40), "blue": (40, 60, 220), "green": (40, 180, 60), "yellow": (230, 220, 40),
              "black": (10, 10, 10), "white": (245, 245, 245), "orange": (240, 140, 20), "purple": (140, 40, 180)}


def png(colour: str) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (56, 56), COLOUR_RGB[colour]).save(buf, format="PNG")
    return buf.getvalue()


#: The scripted stage-1 policy's guess: a first attempt that is wrong guesses this many sides.
MISCOUNT = {3: 4, 4: 5, 5: 6, 6: 5}


def attempt(shape: str, sides: int, choice: bool, guess: bool = False) -> str:
    """The scripted policy's two blocks: the fact it read (or a guess, which is always wrong), then the answer in
    the question's style.

    A wrong first attempt opens with ``I guess``, a right one with the shape it read: the reflection's verdict
    (``I guessed`` / ``I read``) follows from the attempt's first word.  Measured on the first task, whose wrong
    attempts were miscounts written like the right ones (``A pentagon has 6 sides.``): the SFT'd 128-wide model
    could not tell its own right attempts from its wrong ones (0.54 nats per sample on the reflection's first
    word, about the 30/70 prior's 0.61), and a verdict that contradicts the attempt is where sampled rollouts
    drifted out of the format (71.9% well-formed at temperature 1.0).
    """
    count = MISCOUNT[sides] if guess else sides
    fact = f"I guess it has {count} sides" if guess else f"A {shape} has {count} sides"
    if choice:
        return (f"<think> {fact}: choice {LETTERS[count]}. </think> "
                f"<answer> \\boxed{{{LETTERS[count]}}} </answer>")
    return f"<think> {fact}. </think> <answer> \\boxed{{{count}}} </answer>"


def reflection(shape: str, wrong: bool) -> str:
    """The scripted teacher's reflection, in the student's voice, never quoting the answer."""
    if wrong:
        return f"I guessed; I should read the shape, a {shape}, and count its sides."
    return f"I read the shape, a {shape}, and counted its sides correctly."


def scripted_reply(body: dict, script, nth: int = 0) -> str:
    """The stage-1 endpoint's texts for this task
    (``fake_endpoint --reply srpo_data.offline.learn_task:scripted_reply``).

    - the policy's first attempt: the shape's count with probability ``script.right_rate`` (a hash of the
      question, so reruns agree), else a guess (:data:`MISCOUNT`'s wrong count);
    - the teacher's reflection (JSON), in the student's voice, never quoting the answer;
    - the revision: the shape's count, with probability ``script.revise_right_rate`` (else a guess).
    """
    from srpo_data.offline.fake_endpoint import _h, _question_of, _text_of

    system, user = _text_of(body.get("messages", []))
    q, _ = _question_of(user, script)
    shape = next((s for s in SHAPES if f" a {s}." in q), "square")
    sides, choice = SHAPES[shape], "Choices:" in q
    frac = lambda salt: (_h(q, f"{salt}{script.seed}") % 10_000) / 10_000  # noqa: E731
    if system:  # the teacher (the verdict line of prompts/reflection.txt)
        return json.dumps({"reflection": reflection(shape, wrong="The student's answer is wrong." in user)})
    if "Your reflection on it:" in user:
        return attempt(shape, sides, choice, guess=frac("rev") >= script.revise_right_rate)
    return attempt(shape, sides, choice, guess=frac("first") >= script.right_rate)


#: The learning run's model width: the default 64-wide tiny model, SFT'd to a loss of 0.008, still wrote
#: only 56-79% well-formed rollouts at temperature 1.0 (stray tokens inside the blocks: too little capacity
#: to keep the five blocks apart); 128 wide (4 heads of 32) is still a few MB and as cheap per step on a CPU.
LEARN_WIDTH = 128


def corpus() -> str:
    """The task's own text, for the tiny tokenizer's BPE (:func:`srpo_data.offline.tiny_qwen.build_tiny_qwen25vl`'s
    ``corpus_extra``): the SRPO format prompt, every question, every scripted attempt and reflection.

    The default tiny tokenizer learns from a few lines of generic text (596 tokens), so ``hexagon`` is five
    tokens and a five-block target about 114; Qwen2.5-VL's real 151k vocabulary holds such words whole.
    Measured on the first task: every token of a target is another chance for a temperature-1.0 sample to
    slip out of the format, and the SFT'd model slipped in about one rollout of five.
    """
    from srpo_reward.prompts import load_format_prompt

    lines = load_format_prompt().replace("{question}", "").splitlines()
    for combo in combos():
        colour, obj, shape = combo
        for style in ("number", "choice"):
            lines.append(question(combo, style)[0].replace("<image>", ""))
            for guess in (False, True):
                text = attempt(shape, SHAPES[shape], style == "choice", guess)
                lines += [text, tight(text)]  # as sent, and as the builder writes the SFT target
        for verdict in (reflection(shape, wrong=True), reflection(shape, wrong=False)):
            lines += [verdict, f"<reflection>{verdict}</reflection>"]
    return "\n".join(dict.fromkeys(line for line in lines if line.strip())) + "\n"


def tight(text: str) -> str:
    """A block text as the stage-1 builder writes it into the SFT target: no spaces just inside the tags
    (``srpo_data.stage1.builder.steps.build_target`` of the parsed blocks; tests/learn/test_cpu_learn_data.py checks
    that every attempt of the builder's targets is a line of :func:`corpus`)."""
    import re

    return re.sub(r"\s+(</)", r"\1", re.sub(r"(<(?:think|answer|reflection)>)\s+", r"\1", text))


def write_task(out: Path, train_rows: int, test_rows: int, endpoint_url: str, seed: int = 0,
               first_right: float = 0.3, width: int = LEARN_WIDTH) -> dict[str, Path]:
    return write_layout(Path(out), {"train": rows("train", train_rows, seed), "test": rows("test", test_rows, seed)},
                        endpoint_url, first_right, width, corpus())


def builder_yaml(endpoint_url: str, first_right: float) -> str:
    """The stage-1 builder's config: the scripted endpoint plays policy and teacher."""
    return ("# The scripted stage-1 endpoint (srpo_data.offline.fake_endpoint) plays policy and teacher.\n"
            f'policy: {{base_url: "{endpoint_url}", model: policy, concurrency: 8}}\n'
            f'teacher: {{base_url: "{endpoint_url}", model: teacher, concurrency: 8}}\n'
            f"target_first_right: {first_right}\n"
            "progress: false\n")


def write_layout(out: Path, splits: dict[str, list[tuple[str, str, str]]], endpoint_url: str, first_right: float,
                 width: int, corpus_text: str) -> dict[str, Path]:
    """A task's workspace: its rows (question, ground truth, colour) per split in the geometry3k layout, the
    stage-1 answer key, the builder's endpoint config and the tiny model (its tokenizer also learned on
    ``corpus_text``).  Shared by this task and :mod:`srpo_data.offline.count_task`."""
    import pandas as pd

    from srpo_data.offline.tiny_qwen import build_tiny_qwen25vl

    data = out / "data"
    raw = data / "raw" / "geometry3k"
    raw.mkdir(parents=True, exist_ok=True)
    answers: dict[str, str] = {}
    for split, split_rows in splits.items():
        records = []
        for i, (q, a, colour) in enumerate(split_rows):
            records.append({"problem": q, "answer": a, "images": [{"bytes": png(colour), "path": None}],
                            "id": f"{split}-{i}"})
            answers[q.replace("<image>", "").strip()] = a
        pd.DataFrame(records).to_parquet(raw / f"{split}-00000-of-00001.parquet")
    (data / "stage1_answers.json").write_text(json.dumps(answers, indent=1, sort_keys=True))
    (data / "reflection_builder.yaml").write_text(builder_yaml(endpoint_url, first_right))
    return {"model": build_tiny_qwen25vl(out / "tiny-qwen", width, corpus_extra=corpus_text), "raw": raw,
            "answers": data / "stage1_answers.json", "builder_yaml": data / "reflection_builder.yaml", "data": data}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--train-rows", type=int, default=256)
    ap.add_argument("--test-rows", type=int, default=32)
    ap.add_argument("--endpoint-url", default="http://127.0.0.1:8010/v1", help="the scripted stage-1 endpoint")
    ap.add_argument("--first-right", type=float, default=0.3, help="the builder's target share of first-right samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=LEARN_WIDTH, help=f"the tiny model's width (default {LEARN_WIDTH})")
    args = ap.parse_args(argv)
    paths = write_task(args.out, args.train_rows, args.test_rows, args.endpoint_url, args.seed, args.first_right,
                       args.width)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
