"""The four evaluation benchmarks of the SRPO paper, from their public releases.

Each ``*_example(raw, index)`` is a pure function from one record of the
benchmark's own release to an :class:`EvalExample` (question text with its
options, ground truth, answer type, raw image references).  Layouts, as
published on the Hugging Face hub:

- **MathVista** (``AI4Math/MathVista``, split ``testmini``, 1,000 rows):
  ``pid, question, image`` (a path such as ``images/1.jpg``), ``decoded_image``
  (image struct with bytes), ``choices`` (list or null), ``unit``, ``precision``,
  ``answer`` (for multiple choice the *text* of the right choice),
  ``question_type`` (``multi_choice``/``free_form``), ``answer_type``
  (``text``/``integer``/``float``/``list``), ``metadata``, ``query``.
  A multiple-choice answer is mapped to its option letter.
- **MathVerse** (``AI4Math/MathVerse``, ``testmini.parquet``, 3,940 rows):
  ``sample_index, problem_index, problem_version, question`` (multiple-choice
  options are inside the text, ``Choices: A:... B:...``), ``image`` (image
  struct), ``answer`` (a letter for multiple choice), ``question_type``
  (``multi-choice``/``free-form``), ``metadata``, ``query_wo, query_cot,
  question_for_eval``.  Vision-only versions have the question in the image.
- **MathVision** (``MathLLMs/MathVision``, split ``test``, 3,040 rows):
  ``id, question`` (with ``<image1>`` markers), ``options`` (list, empty for
  free-form), ``image`` (a path), ``decoded_image`` (image struct), ``answer``
  (a letter A-E for multiple choice), ``solution, level, subject``.
- **MMMU-Pro** (``MMMU/MMMU_Pro``, split ``test``): config ``standard (10
  options)`` / ``standard (4 options)`` has ``id, question`` (with ``<image N>``
  references), ``options`` (a Python-literal list in a string), ``explanation,
  image_1 .. image_7`` (image structs or null), ``img_type, answer`` (a letter,
  up to J), ``topic_difficulty, subject``; config ``vision`` has ``id, image,
  options, answer, subject`` (question and options are inside the screenshot).
  The standard config is benchmark ``mmmu_pro``, the vision one ``mmmu_pro_vision``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from srpo_data.rl.rows import (
    REASON_BAD_EXAMPLE,
    REASON_EMPTY_QUESTION,
    REASON_MISSING_ANSWER,
    REASON_MISSING_IMAGE,
    SkipRow,
)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class EvalExample:
    """One benchmark question, before images are loaded and the SRPO prompt is applied."""

    id: str
    benchmark: str
    split: str
    #: The question as shown to the model (options listed when they are not in the image),
    #: without ``<image>`` placeholders.
    question: str
    #: What the grader compares with: an option letter for multiple choice.
    ground_truth: str
    answer_type: str
    options: tuple[str, ...] = ()
    #: Raw image references in order: ``{"bytes", "path"}`` structs, paths, or PIL images.
    images: tuple[Any, ...] = ()
    #: The benchmark's own answer field, unchanged (e.g. the option text in MathVista).
    original_answer: str = ""
    precision: float | None = None
    unit: str = ""
    subject: str = ""
    #: e.g. MathVerse's problem version, MMMU-Pro's setting.
    variant: str = ""
    #: The release's own question type (``multi_choice``, ``free-form``, ...).
    question_type: str = ""
    #: MathVista's ``metadata.task`` and ``metadata.skills``; MathVision's ``level``.
    task: str = ""
    skills: tuple[str, ...] = ()
    level: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


# -------------------------------------------------------------------- helpers
def _text(raw: Mapping[str, Any], key: str) -> str:
    v = raw.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _require(raw: Mapping[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in raw]
    if missing:
        raise SkipRow(REASON_BAD_EXAMPLE, "missing field(s) " + ", ".join(missing))


def _nonempty_image(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, Mapping):
        return bool(v.get("bytes")) or bool(v.get("path"))
    if isinstance(v, str):
        return bool(v.strip())
    return True


def _pick_image(raw: Mapping[str, Any], *keys: str) -> tuple[Any, ...]:
    """The first non-empty image among ``keys`` (e.g. ``decoded_image`` before the ``image`` path)."""
    for k in keys:
        if _nonempty_image(raw.get(k)):
            return (raw[k],)
    raise SkipRow(REASON_MISSING_IMAGE, f"none of {', '.join(keys)} is set")


def options_list(value: Any) -> list[str]:
    """Options as a list of strings, from a list/array or from MMMU's Python-literal string."""
    if value is None:
        return []
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return []
        try:
            parsed = ast.literal_eval(s)
        except (ValueError, SyntaxError) as e:
            raise SkipRow(REASON_BAD_EXAMPLE, f"cannot parse options {s[:60]!r}") from e
        value = parsed
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise SkipRow(REASON_BAD_EXAMPLE, f"options of type {type(value).__name__}")
    return [str(v).strip() for v in value]


def format_choices(options: Sequence[str]) -> str:
    """``Choices:`` then ``(A) text`` lines; just the letters when the options are the letters themselves."""
    letters = LETTERS[: len(options)]
    if all(o.strip().upper().strip("()") == letters[i] for i, o in enumerate(options)):
        return "Choices: " + ", ".join(f"({c})" for c in letters)
    return "Choices:\n" + "\n".join(f"({letters[i]}) {o}" for i, o in enumerate(options))


CHOICE_HINT = "Answer with the letter of the correct option."


def option_letter_by_text(answer: str, options: Sequence[str]) -> str | None:
    """The letter of the option whose text is ``answer`` (exact, then case-insensitive, then
    numeric, then with LaTeX written as text: ``60^\\circ`` is ``60°``).

    Several hits are accepted only when those options are the same text (MathVista pid 781,
    choices ``9, 12, 18, 18``): the first one's letter; the report grades MathVista by the
    option text, so either letter is right there.
    """
    from srpo_eval.official import latex_to_text

    s = answer.strip()
    for same in (
        lambda o: o == s,
        lambda o: o.strip().casefold() == s.casefold(),
        lambda o: _as_float(o) is not None and _as_float(o) == _as_float(s),
        lambda o: latex_to_text(o).replace(" ", "").casefold() == latex_to_text(s).replace(" ", "").casefold(),
    ):
        hits = [i for i, o in enumerate(options) if same(o)]
        if len(hits) == 1 or (hits and len({options[i].strip() for i in hits}) == 1):
            return LETTERS[hits[0]]
        if len(hits) > 1:
            return None
    return None


def _as_float(s: str) -> float | None:
    try:
        return float(s.strip())
    except ValueError:
        return None


def letter_of(answer: str, options: Sequence[str]) -> str | None:
    """The option letter of ``answer``: a letter within range (``B``, ``(B)``), else the text of exactly one option."""
    m = re.fullmatch(r"\(?([A-Za-z])\)?\.?", answer.strip())
    if m and (not options or m.group(1).upper() in LETTERS[: len(options)]):
        return m.group(1).upper()
    return option_letter_by_text(answer, options)


_NUMBER_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)")


def free_form_type(answer: str) -> str:
    """``integer`` / ``float`` for a plain number, else ``expression``."""
    s = answer.strip().replace(",", "")
    if _NUMBER_RE.fullmatch(s):
        return "float" if "." in s else "integer"
    return "expression"


def _precision_hint(precision: float | None) -> str:
    if precision is None or (isinstance(precision, float) and math.isnan(precision)):
        return "Answer with a number."
    p = int(precision)
    if p <= 0:
        return "Answer with an integer."
    return f"Answer with a number rounded to {p} decimal place{'s' if p > 1 else ''}."


# --------------------------------------------------------------- MathVista
def mathvista_example(raw: Mapping[str, Any], index: int, split: str = "testmini") -> EvalExample:
    _require(raw, "pid", "question", "answer", "question_type")
    question, answer = _text(raw, "question"), _text(raw, "answer")
    if not question:
        raise SkipRow(REASON_EMPTY_QUESTION)
    if not answer:
        raise SkipRow(REASON_MISSING_ANSWER)
    images = _pick_image(raw, "decoded_image", "image")
    qtype = _text(raw, "question_type")
    precision = raw.get("precision")
    precision = float(precision) if isinstance(precision, (int, float)) and not math.isnan(precision) else None
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), Mapping) else {}
    skills = meta.get("skills")
    skills = tuple(str(x) for x in (skills.tolist() if hasattr(skills, "tolist") else skills or ()))
    common = dict(
        id=f"mathvista-{_text(raw, 'pid')}",
        benchmark="mathvista",
        split=split,
        images=images,
        original_answer=answer,
        precision=precision,
        unit=_text(raw, "unit"),
        subject=_text(meta, "category"),
        variant=qtype,
        question_type=qtype,
        task=_text(meta, "task"),
        skills=skills,
    )
    if qtype == "multi_choice":
        options = options_list(raw.get("choices"))
        if len(options) < 2:
            raise SkipRow(REASON_BAD_EXAMPLE, "multiple choice with fewer than two choices")
        letter = option_letter_by_text(answer, options)  # MathVista's answer is the option text
        if letter is None:
            raise SkipRow(REASON_BAD_EXAMPLE, f"answer {answer[:60]!r} is not one of the options")
        text = f"{question}\n{format_choices(options)}\n{CHOICE_HINT}"
        return EvalExample(question=text, ground_truth=letter, answer_type="multiple_choice", options=tuple(options), **common)
    atype = _text(raw, "answer_type") or free_form_type(answer)
    if atype == "integer":
        hint = "Answer with an integer."
    elif atype == "float":
        hint = _precision_hint(precision)
    elif atype == "list":
        hint = "Answer with a Python list, e.g. [1, 2, 3]."
    else:
        hint = ""
        atype = "text" if atype == "text" else "expression"
    text = f"{question}\n{hint}".strip()
    return EvalExample(question=text, ground_truth=answer, answer_type=atype, **common)


# --------------------------------------------------------------- MathVerse
_CHOICES_SPLIT_RE = re.compile(r"\n\s*Choices?\s*:?\s*\n", re.IGNORECASE)
_OPTION_LINE_RE = re.compile(r"^\s*\(?([A-H])\)?\s*[:：.)]\s*(.*\S)?\s*$")


def mathverse_options(question: str) -> list[str]:
    """Option texts listed after ``Choices:`` in a MathVerse question (empty when there are none)."""
    parts = _CHOICES_SPLIT_RE.split(question, maxsplit=1)
    if len(parts) < 2:
        return []
    options = []
    for line in parts[1].splitlines():
        m = _OPTION_LINE_RE.match(line)
        if not m:
            continue
        if m.group(1) != LETTERS[len(options)]:
            break
        options.append((m.group(2) or "").strip())
    return options


def mathverse_example(raw: Mapping[str, Any], index: int, split: str = "testmini") -> EvalExample:
    _require(raw, "sample_index", "answer", "question_type")
    answer = _text(raw, "answer")
    if not answer:
        raise SkipRow(REASON_MISSING_ANSWER)
    images = _pick_image(raw, "image")
    question = _text(raw, "question")
    version = _text(raw, "problem_version")
    if not question:  # vision-only versions: the whole problem is in the diagram
        question = "Answer the question shown in the image."
    qtype = _text(raw, "question_type")
    common = dict(
        id=f"mathverse-{_text(raw, 'sample_index')}",
        benchmark="mathverse",
        split=split,
        images=images,
        original_answer=answer,
        subject=_text(raw.get("metadata") or {}, "subject") if isinstance(raw.get("metadata"), Mapping) else "",
        variant=version,
        question_type=qtype,
    )
    if qtype.startswith("multi"):
        options = mathverse_options(question)
        letter = letter_of(answer, options)
        if letter is not None:
            return EvalExample(
                question=f"{question}\n{CHOICE_HINT}",
                ground_truth=letter,
                answer_type="multiple_choice",
                options=tuple(options),
                **common,
            )
        # A multiple-choice row whose answer is not a letter: graded as a free-form answer.
    return EvalExample(question=question, ground_truth=answer, answer_type=free_form_type(answer), **common)


# -------------------------------------------------------------- MathVision
_IMAGE_MARK_RE = re.compile(r"<image\s*\d*>", re.IGNORECASE)


def mathvision_example(raw: Mapping[str, Any], index: int, split: str = "test") -> EvalExample:
    _require(raw, "id", "question", "answer")
    question, answer = _IMAGE_MARK_RE.sub("", _text(raw, "question")).strip(), _text(raw, "answer")
    if not question:
        raise SkipRow(REASON_EMPTY_QUESTION)
    if not answer:
        raise SkipRow(REASON_MISSING_ANSWER)
    images = _pick_image(raw, "decoded_image", "image")
    options = options_list(raw.get("options"))
    level = raw.get("level")
    common = dict(
        id=f"mathvision-{_text(raw, 'id')}",
        benchmark="mathvision",
        split=split,
        images=images,
        original_answer=answer,
        subject=_text(raw, "subject"),
        variant=f"level-{level}" if level is not None else "",
        level=_text(raw, "level"),
    )
    if options:
        letter = letter_of(answer, options)
        if letter is None:
            raise SkipRow(REASON_BAD_EXAMPLE, f"answer {answer[:60]!r} is not one of the options")
        text = f"{question}\n{format_choices(options)}\n{CHOICE_HINT}"
        return EvalExample(question=text, ground_truth=letter, answer_type="multiple_choice", options=tuple(options), **common)
    return EvalExample(question=question, ground_truth=answer, answer_type=free_form_type(answer), **common)


# ----------------------------------------------------------------- MMMU-Pro
MMMU_IMAGE_KEYS = tuple(f"image_{k}" for k in range(1, 8))


def mmmu_pro_example(raw: Mapping[str, Any], index: int, split: str = "test") -> EvalExample:
    _require(raw, "id", "options", "answer")
    answer = _text(raw, "answer")
    options = options_list(raw.get("options"))
    if len(options) < 2:
        raise SkipRow(REASON_BAD_EXAMPLE, "fewer than two options")
    letter = letter_of(answer, options)
    if letter is None:
        raise SkipRow(REASON_BAD_EXAMPLE, f"answer {answer[:60]!r} is not one of the options")
    if "question" in raw:  # standard setting: question text, options listed, up to seven images
        question = _text(raw, "question")
        if not question:
            raise SkipRow(REASON_EMPTY_QUESTION)
        images = tuple(raw[k] for k in MMMU_IMAGE_KEYS if _nonempty_image(raw.get(k)))
        if not images:
            raise SkipRow(REASON_MISSING_IMAGE, "no image_1..image_7")
        benchmark, text, setting = "mmmu_pro", f"{question}\n{format_choices(options)}\n{CHOICE_HINT}", "standard"
    else:  # vision setting: the screenshot holds question and options
        images = _pick_image(raw, "image")
        benchmark, setting = "mmmu_pro_vision", "vision"
        text = f"Answer the multiple-choice question shown in the image. {CHOICE_HINT}"
    return EvalExample(
        id=f"{benchmark}-{_text(raw, 'id')}",
        benchmark=benchmark,
        split=split,
        question=text,
        ground_truth=letter,
        answer_type="multiple_choice",
        options=tuple(options),
        images=images,
        original_answer=answer,
        subject=_text(raw, "subject"),
        variant=setting,
    )


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    default_split: str
    make_example: Callable[[Mapping[str, Any], int, str], EvalExample]
    release: str


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "mathvista": BenchmarkSpec("mathvista", "testmini", mathvista_example, "AI4Math/MathVista"),
    "mathverse": BenchmarkSpec("mathverse", "testmini", mathverse_example, "AI4Math/MathVerse"),
    "mathvision": BenchmarkSpec("mathvision", "test", mathvision_example, "MathLLMs/MathVision"),
    "mmmu_pro": BenchmarkSpec("mmmu_pro", "test", mmmu_pro_example, "MMMU/MMMU_Pro"),
}
