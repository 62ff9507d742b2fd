"""Answer text helpers shared by the grader's paths: :func:`normalize_text` (math delimiters,
``\\text{}`` wrappers and spacing commands stripped) and :func:`all_boxed` (every outermost
``\\boxed{}`` of an answer block, in order)."""

from __future__ import annotations

import functools
import re

from .guard import MAX_BOXES

_TEXT_CMD_RE = re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_SPACING_RE = re.compile(r"\\[,!;:> ]|\\q?quad|~")
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right)\b")


#: Texts up to this length are normalised once and remembered (a group's ground truth is read
#: for each of its answers, by several paths); longer ones are never kept.
CACHED_CHARS = 512


def normalize_text(s: str) -> str:
    """Strip math delimiters, ``\\text{}`` wrappers and spacing commands."""
    return _normalize_cached(s) if len(s) <= CACHED_CHARS else _normalize(s)


@functools.lru_cache(maxsize=16384)
def _normalize_cached(s: str) -> str:
    return _normalize(s)


def _normalize(s: str) -> str:
    s = s.strip()
    s = s.replace("\\$", "").replace("$", "")  # a currency sign, then math delimiters
    s = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", s).strip()
    for _ in range(3):  # nested \text{\textbf{..}}
        s = _TEXT_CMD_RE.sub(r"\1", s)
    s = _SPACING_RE.sub(" ", s)
    s = _LEFT_RIGHT_RE.sub("", s)
    return re.sub(r"\s+", " ", s).strip().rstrip(".").strip()


_BOX_START_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def all_boxed(text: str, limit: int = MAX_BOXES + 1) -> list[str]:
    """Contents of the outermost balanced ``\\boxed{}``/``\\fbox{}`` of ``text``, in order (at most ``limit``)."""
    out: list[str] = []
    pos = 0
    while len(out) < limit:
        m = _BOX_START_RE.search(text, pos)
        if not m:
            break
        depth, i, n = 1, m.end(), len(text)
        while i < n and depth:
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            i += 1
        if depth:
            break  # unclosed: nothing after it is balanced either
        out.append(text[m.end() : i - 1])
        pos = i
    return out

