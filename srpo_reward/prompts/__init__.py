"""The SRPO format prompt, kept as a file beside the format checker that parses its output."""

from __future__ import annotations

import functools
from pathlib import Path

#: The template; ``{question}`` is replaced by the question text (no other braces are interpreted,
#: so ``\boxed{}`` in the template is literal).
FORMAT_PROMPT_PATH = Path(__file__).with_name("srpo_format.txt")
QUESTION_PLACEHOLDER = "{question}"
_EXAMPLE_MARKER = "Example:\n"


@functools.lru_cache(maxsize=None)
def load_format_prompt() -> str:
    """The raw template (read once per process, on first use)."""
    text = FORMAT_PROMPT_PATH.read_text(encoding="utf-8").rstrip("\n")
    if text.count(QUESTION_PLACEHOLDER) != 1:
        raise ValueError(f"{FORMAT_PROMPT_PATH} must contain {QUESTION_PLACEHOLDER} exactly once")
    return text


def render_prompt(question: str) -> str:
    """The user text that asks for the five blocks.  Callers put one ``<image>`` per image before it."""
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {type(question).__name__}")
    return load_format_prompt().replace(QUESTION_PLACEHOLDER, question.strip(), 1)


def format_prompt_example() -> str:
    """The example response that the template shows the model (it must pass the format checker)."""
    template = load_format_prompt()
    _, marker, example = template.partition(_EXAMPLE_MARKER)
    if not marker:
        raise ValueError(f"{FORMAT_PROMPT_PATH} has no {_EXAMPLE_MARKER!r} section")
    return example.strip()
