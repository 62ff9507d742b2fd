"""Pure pieces of one sample's journey: prompts, parsing of each reply, the target, the filter.

Nothing here does I/O except reading the prompt files beside this module (once per process).
The format rules are ``srpo_reward``'s own: a two-block attempt ``<think>T</think>
<answer>A</answer>`` is checked by placing it inside a five-block frame and asking
:func:`srpo_reward.format.parse_response`, so the builder can never accept a block that the
reward would reject (nested tags, text between blocks, empty blocks, ...).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srpo_data.stage1.builder.config import stable_hash

PROMPT_DIR = Path(__file__).with_name("prompts")
PROMPT_FILES = ("attempt", "judge", "judge_fix", "reflection_system", "reflection", "reflection_fix", "revise")
#: The prompt files each step's request is built from: only these enter its step key, so
#: editing one prompt redoes only the steps that used it (and, through the upstream key, the
#: steps after them).
STEP_PROMPTS: dict[str, tuple[str, ...]] = {
    "attempt": ("attempt",),
    "judge": ("judge",),
    # a retry of the judge after a reply that was not JSON adds its own corrective turn
    "judge_retry": ("judge", "judge_fix"),
    "reflection": ("reflection_system", "reflection"),
    # a retry of the reflection after a reply that was not JSON adds the corrective turn
    "reflection_retry": ("reflection_system", "reflection", "reflection_fix"),
    "revision": ("revise",),
}
_PLACEHOLDER_RE = re.compile(r"\{(question|attempt|answer|ground_truth|verdict|reflection|reason)\}")
#: Version of the step-key layout; bump it to invalidate every stored step on purpose.
#: 2: one prompt digest per step (STEP_PROMPTS) instead of one digest of every prompt.
KEY_VERSION = 2
#: The corrective turn of each step that asks for JSON: it asks again for that step's object.
FIX_PROMPTS = {"reflection": "reflection_fix", "judge": "judge_fix"}
#: Stand-in text for the blocks around a two-block span when it is checked inside the frame.
_FILLER = "x"


@functools.lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    if name not in PROMPT_FILES:
        raise KeyError(f"unknown prompt {name!r}; known: {PROMPT_FILES}")
    return (PROMPT_DIR / f"{name}.txt").read_text(encoding="utf-8").strip("\n")


def prompt_digest(names: tuple[str, ...] | None = None) -> str:
    """Hash of the prompt files ``names`` (default: all): editing a prompt invalidates the
    stored steps that used it."""
    names = PROMPT_FILES if names is None else names
    return hashlib.sha256("\0".join(f"{n}\0{load_prompt(n)}" for n in names).encode("utf-8")).hexdigest()[:16]


def render(template: str, **values: str) -> str:
    """Fill ``{name}`` placeholders in one pass (a value containing ``{answer}`` stays literal)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise KeyError(f"prompt placeholder {{{name}}} has no value")
        return values[name]

    return _PLACEHOLDER_RE.sub(sub, template)


def user_message(text: str, image_urls: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def attempt_messages(question: str, image_urls: list[str]) -> list[dict[str, Any]]:
    return [user_message(render(load_prompt("attempt"), question=question), image_urls)]


def reflection_messages(
    question: str, image_urls: list[str], attempt: str, answer: str | None, ground_truth: str, correct: bool
) -> list[dict[str, Any]]:
    text = render(
        load_prompt("reflection"),
        question=question,
        attempt=attempt,
        answer=answer if answer else "(none)",
        ground_truth=ground_truth,
        verdict="correct" if correct else "wrong",
    )
    return [{"role": "system", "content": load_prompt("reflection_system")}, user_message(text, image_urls)]


def corrective_messages(
    base: list[dict[str, Any]], bad_reply: str, reason: str, step: str = "reflection"
) -> list[dict[str, Any]]:
    """``base`` plus the reply that was not the JSON asked for and a user turn that says what
    was wrong and asks again for ``step``'s own object (:data:`FIX_PROMPTS`: the reflection's
    ``{"reflection": ...}``, the judge's ``{"score": n}``): a retry that differs from the first
    request (with a seed or temperature 0 the identical request would return the identical reply)."""
    if step not in FIX_PROMPTS:
        raise KeyError(f"no corrective prompt for step {step!r}; known: {sorted(FIX_PROMPTS)}")
    fix = render(load_prompt(FIX_PROMPTS[step]), reason=reason.replace("_", " "))
    return [*base, {"role": "assistant", "content": bad_reply}, {"role": "user", "content": fix}]


def judge_messages(question: str, image_urls: list[str], attempt: str, ground_truth: str) -> list[dict[str, Any]]:
    text = render(load_prompt("judge"), question=question, attempt=attempt, ground_truth=ground_truth)
    return [user_message(text, image_urls)]


def parse_judge_score(text: str) -> tuple[float | None, str]:
    """(score, "ok") from the judge's JSON reply ``{"score": n}``, or (None, reason)."""
    from srpo_data.stage1.builder.client import parse_json_object

    obj = parse_json_object(text)
    if obj is None:
        return None, "not_json"
    value = obj.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None, "no_score_field"
    return float(value), "ok"


def revise_messages(question: str, image_urls: list[str], attempt: str, reflection: str) -> list[dict[str, Any]]:
    text = render(load_prompt("revise"), question=question, attempt=attempt, reflection=reflection)
    return [user_message(text, image_urls)]


@dataclass(frozen=True)
class TwoBlocks:
    """A ``<think>``/``<answer>`` pair as the reward's parser saw it."""

    ok: bool
    reason: str
    think: str | None = None
    answer_block: str | None = None
    answer: str | None = None


def parse_two_blocks(text: str, position: str) -> TwoBlocks:
    """Check ``text`` as the first (``position="first"``) or second attempt of the five blocks."""
    from srpo_reward.format import parse_response

    body = text.strip()
    if "<think>" not in body or "<answer>" not in body:
        return TwoBlocks(False, "missing_block")
    if position == "first":
        framed = f"{body} <reflection>{_FILLER}</reflection> <think>{_FILLER}</think> <answer>{_FILLER}</answer>"
    elif position == "second":
        framed = f"<think>{_FILLER}</think> <answer>{_FILLER}</answer> <reflection>{_FILLER}</reflection> {body}"
    else:
        raise ValueError(f"position must be 'first' or 'second', got {position!r}")
    p = parse_response(framed)
    if not p.ok:
        return TwoBlocks(False, p.reason)
    if position == "first":
        return TwoBlocks(True, "ok", p.think1, p.answer1, p.first_answer)
    return TwoBlocks(True, "ok", p.think2, p.answer2, p.final_answer)


def parse_reflection(text: str) -> tuple[str | None, str]:
    """(reflection, "ok") from the teacher's JSON reply, or (None, reason)."""
    from srpo_data.stage1.builder.client import parse_json_object

    obj = parse_json_object(text)
    if obj is None:
        return None, "not_json"
    value = obj.get("reflection")
    if not isinstance(value, str):
        return None, "no_reflection_field"
    value = value.strip()
    if not value:
        return None, "empty_reflection"
    return value, "ok"


def build_target(think1: str, answer1: str, reflection: str, think2: str, answer2: str) -> str:
    """The SFT target: the full five-block format that stage 2 rewards."""
    return (
        f"<think>{think1}</think> <answer>{answer1}</answer> "
        f"<reflection>{reflection}</reflection> "
        f"<think>{think2}</think> <answer>{answer2}</answer>"
    )


_CHOICE_RE = re.compile(r"^\(?([a-e])\)?\.?$")


def _normalize(text: str) -> str:
    text = text.replace("\\boxed", " ").replace("$", " ")
    return re.sub(r"\s+", " ", text).strip().lower()


def quotes_ground_truth(reflection: str, ground_truth: str) -> bool:
    """Whether the reflection states the ground truth (a leak the SFT data must not teach).

    - A choice letter (``B``, ``(B)``) counts as quoted when it appears as an option:
      ``option B``, ``choice (B)``, ``answer is B``, ``(B)``, ``\\boxed{B}``.  A bare ``B``
      (e.g. a point's name) does not.
    - Anything else counts as quoted when it appears as a whole token: ``12`` is quoted by
      ``equals 12.`` but not by ``120`` or ``1.12``.  This is strict on purpose: a short numeric
      answer that also occurs as an intermediate value drops the sample (counted).

    The ground truth is read as the grader reads it (:func:`srpo_reward.grading.normalize_ground_truth`):
    ``The answer is 5`` is quoted by ``5``, and ``A: 57`` by option A or by ``57``.
    """
    from srpo_reward.grading import normalize_ground_truth

    golds = normalize_ground_truth(ground_truth) or (ground_truth,)
    return any(_quotes(reflection, g) for g in golds)


def _quotes(reflection: str, ground_truth: str) -> bool:
    gt = _normalize(ground_truth)
    if not gt:
        return False
    refl = reflection.lower()
    m = _CHOICE_RE.match(gt)
    if m:
        letter = m.group(1)
        patterns = (
            rf"\b(?:option|choice|answer)(?:\s+(?:is|was|should be|must be|would be))?\s*[:=]?\s*\(?{letter}\)?(?![a-z0-9])",
            rf"\({letter}\)",
            rf"\\boxed\{{\s*{letter}\s*\}}",
        )
        return any(re.search(p, refl) for p in patterns)
    text = _normalize(reflection)
    return re.search(rf"(?<![a-z0-9.]){re.escape(gt)}(?![a-z0-9]|\.\d)", text) is not None


def step_key(
    sample_id: str,
    step: str,
    endpoint: dict[str, Any],
    upstream: str = "",
    try_index: int = 0,
    prompts: tuple[str, ...] | None = None,
) -> str:
    """Stable cache key of one paid call: sample, step, endpoint fingerprint, the digest of the
    prompt files the call used (``prompts``, default :data:`STEP_PROMPTS` of ``step``), upstream."""
    if prompts is None:
        name = step if try_index == 0 or step not in ("reflection", "judge") else f"{step}_retry"
        prompts = STEP_PROMPTS.get(name, PROMPT_FILES)
    return stable_hash(
        {
            "v": KEY_VERSION,
            "sample": sample_id,
            "step": step,
            "try": try_index,
            "endpoint": endpoint,
            "prompts": prompt_digest(prompts),
            "upstream": upstream,
        }
    )
