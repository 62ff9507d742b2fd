"""The SRPO response format and answer extraction.

A valid response is exactly::

    <think>T1</think> <answer>A1</answer> <reflection>R</reflection> <think>T2</think> <answer>A2</answer>

five non-empty blocks in this order, separated only by whitespace, with no
tag of the three kinds inside a block and nothing but whitespace after the
last ``</answer>`` (verl's decode already stripped the chat end token).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The block names, in the order a valid response has them.
EXPECTED_BLOCKS = ("think", "answer", "reflection", "think", "answer")

#: Any opening or closing tag of the three kinds the format uses.
_TAG_RE = re.compile(r"<(/?)(think|answer|reflection)>")
#: An innermost ``<answer>...</answer>`` (no ``<answer>`` inside), for the lenient scan.
_ANSWER_BLOCK_RE = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.DOTALL)
_INLINE_MATH_RE = re.compile(r"\$+")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


@dataclass(frozen=True)
class Block:
    name: str
    content: str  # raw, not stripped
    start: int  # index of "<" of the opening tag
    end: int  # index just after ">" of the closing tag


@dataclass(frozen=True)
class ParsedResponse:
    """What :func:`parse_response` found.  ``reason`` is ``"ok"`` or a short failure code."""

    ok: bool
    reason: str
    think1: str | None = None
    answer1: str | None = None
    reflection: str | None = None
    think2: str | None = None
    answer2: str | None = None
    #: Answer extracted from the first ``<answer>`` block (also when the format is invalid).
    first_answer: str | None = None
    #: Answer extracted from the last ``<answer>`` block (also when the format is invalid).
    final_answer: str | None = None
    #: The raw span ``<think>T1</think> <answer>A1</answer>`` (the first attempt), when ok.
    first_attempt: str | None = None
    #: Number of ``<answer>`` blocks found by a lenient scan (0 when there is none).
    num_answers: int = 0


#: A brace, or a backslash with the character it escapes (``\{`` is content, not a brace).
_BRACE_RE = re.compile(r"\\.|[{}]", re.S)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, or None.

    One linear pass with a stack of open braces, so adversarial input such as
    thousands of unclosed ``\\boxed{`` costs O(n), not O(n^2).
    """
    box_opens = {m.end() - 1 for m in _BOXED_RE.finditer(text)}  # index of each box's "{"
    if not box_opens:
        return None
    stack: list[int] = []
    best: tuple[int, int] | None = None
    for m in _BRACE_RE.finditer(text):  # only braces and escapes: ordinary text is skipped in C
        tok = m.group()
        if tok == "{":
            stack.append(m.start())
        elif tok == "}" and stack:
            start = stack.pop()
            if start in box_opens and (best is None or start > best[0]):
                best = (start, m.start())
    return None if best is None else text[best[0] + 1 : best[1]]


def extract_answer(block: str) -> str:
    """The answer in an ``<answer>`` block: its last balanced ``\\boxed{}``, else the block without ``$``."""
    boxed = last_boxed(block)
    if boxed is not None:
        return boxed.strip()
    return _INLINE_MATH_RE.sub("", block).strip()


def _scan_blocks(text: str) -> tuple[list[Block], str | None]:
    """Split ``text`` into top-level blocks; returns (blocks, failure reason or None)."""
    blocks: list[Block] = []
    open_name: str | None = None
    open_start = content_start = 0
    for m in _TAG_RE.finditer(text):
        closing, name = m.group(1) == "/", m.group(2)
        if open_name is None:
            if closing:
                return blocks, "unbalanced_tag"
            open_name, open_start, content_start = name, m.start(), m.end()
        else:
            if not closing:
                return blocks, "nested_tag"
            if name != open_name:
                return blocks, "nested_tag"
            blocks.append(Block(name, text[content_start : m.start()], open_start, m.end()))
            open_name = None
    if open_name is not None:
        return blocks, "unclosed_tag"
    return blocks, None


def _lenient_answers(text: str) -> list[str]:
    return [extract_answer(m.group(1)) for m in _ANSWER_BLOCK_RE.finditer(text)]


def parse_response(text: str) -> ParsedResponse:
    """Check the five-block format and extract both answers.  Never raises for a ``str``."""
    answers = _lenient_answers(text)
    loose = {
        "first_answer": answers[0] if answers else None,
        "final_answer": answers[-1] if answers else None,
        "num_answers": len(answers),
    }

    def fail(reason: str) -> ParsedResponse:
        return ParsedResponse(ok=False, reason=reason, **loose)

    blocks, reason = _scan_blocks(text)
    if reason is not None:
        return fail(reason)
    if not blocks:
        return fail("no_blocks")
    names = tuple(b.name for b in blocks)
    if len(blocks) > len(EXPECTED_BLOCKS):
        return fail("extra_block")
    if names != EXPECTED_BLOCKS[: len(names)]:
        return fail("wrong_order")
    if len(blocks) < len(EXPECTED_BLOCKS):
        return fail("missing_block")
    if any(not b.content.strip() for b in blocks):
        return fail("empty_block")
    if text[: blocks[0].start].strip():
        return fail("leading_text")
    for prev, nxt in zip(blocks, blocks[1:]):
        if text[prev.end : nxt.start].strip():
            return fail("text_between_blocks")
    if text[blocks[-1].end :].strip():
        return fail("trailing_text")
    t1, a1, r, t2, a2 = (b.content.strip() for b in blocks)
    a1_answer, a2_answer = extract_answer(a1), extract_answer(a2)
    if not a1_answer or not a2_answer:
        return fail("empty_answer")
    return ParsedResponse(
        ok=True,
        reason="ok",
        think1=t1,
        answer1=a1,
        reflection=r,
        think2=t2,
        answer2=a2,
        first_answer=a1_answer,
        final_answer=a2_answer,
        first_attempt=text[blocks[0].start : blocks[1].end],
        num_answers=2,
    )


def is_valid_format(text: str) -> bool:
    return parse_response(text).ok


def reflection_well_formed(parsed: ParsedResponse) -> bool:
    """I_ref's condition: exactly one non-empty reflection block between the two attempts."""
    return parsed.ok and bool(parsed.reflection)
