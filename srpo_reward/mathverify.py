"""The bridge to math-verify: how a ground truth and an answer block are given to its parser
(:func:`math_verify_grade`, ``verify(parse(gold), parse(pred))``, gold first), and the warm-up
a grading worker runs before it takes tasks.

This runs inside the grading workers (:mod:`srpo_reward.workers`), never in the caller's
process during training: math-verify's own timeouts (``signal.alarm``) are off here, and the
parent enforces the time limit by killing the worker.
"""

from __future__ import annotations

import functools
import re

def boxed(s: str) -> str:
    return "\\boxed{" + s + "}"


_DELIMITED_RE = re.compile(r"\$|\\\(|\\\[|\\boxed|\\fbox|\\begin\{(?:align|equation)")
#: Two words of prose in a row (outside LaTeX commands and ``\text{}``): an answer in words.
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}[.,;:]?\s+[A-Za-z]{2,}(?![A-Za-z])")
_TEXT_ARG_RE = re.compile(r"\\(?:text|mathrm|textbf|mbox|operatorname)\s*\{[^{}]*\}")


def _is_prose(s: str) -> bool:
    return bool(_PROSE_RE.search(_TEXT_ARG_RE.sub(" ", s)))


def _math_of(parsed: list) -> bool:
    return any(not isinstance(x, str) for x in parsed)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> list:
    """Gold first as written when it carries math delimiters (math-verify's own extraction),
    else as one boxed expression; a bare gold that is not math as boxed falls back to
    math-verify's plain-expression extraction."""
    from math_verify import parse

    if _DELIMITED_RE.search(gold):
        parsed = parse(gold, parsing_timeout=None)
        if _math_of(parsed):
            return parsed
    parsed = parse(boxed(gold.replace("$", "")), parsing_timeout=None)
    if _math_of(parsed):
        return parsed
    return parse(gold, parsing_timeout=None)


def _parse_pred(pred: str) -> list:
    """The answer the way math-verify's own extraction expects it: the block as written
    (every ``\\boxed{}``, ``$..$`` math, plain expressions, relations, sets, matrices).
    A bare block that is not prose (``1+x^2``, ``(1,2)``) is first read as one math span
    (math-verify would otherwise take its last number); prose never is."""
    from math_verify import parse

    if not _DELIMITED_RE.search(pred) and not _is_prose(pred):
        parsed = parse("$" + pred + "$", parsing_timeout=None)
        if _math_of(parsed):
            return parsed
    return parse(pred, parsing_timeout=None)


def math_verify_grade(gold: str, pred: str) -> tuple[str, bool]:
    """Runs in a worker process: (status, correct).  No signal-based timeouts here: the
    parent enforces the limit by killing the worker."""
    from math_verify import verify

    gold_parsed = _parse_gold(gold)
    if not _math_of(gold_parsed):
        # Nothing but math-verify's raw-string fallback: the gold is not math we can check.
        return "gold_unparsable", False
    pred_parsed = _parse_pred(pred)
    if not pred_parsed:
        return "ok", False
    return "ok", bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


#: Pairs each worker grades before it reports ready: sympy's first simplification of each
#: kind of expression costs 0.1-0.5 s (caches, lazy imports), later ones a few ms.
WARM_UP_PAIRS = (
    ("1", "x+1"),
    ("x^2+2x+1", "\\boxed{(x+1)^2}"),
    ("\\frac{3}{4}", "\\boxed{0.75}"),
    ("2\\sqrt{3}", "\\boxed{\\sqrt{12}}"),
    ("\\frac{\\pi}{6}", "\\boxed{\\pi/6}"),
    ("(2,-3)", "\\boxed{(2, -3)}"),
    ("[-1, 3)", "\\boxed{[-1,3)}"),
    ("y=2x+1", "\\boxed{y = 1 + 2x}"),
    ("$x \\geq 5$", "so $x \\ge 5$"),
    ("\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", "\\boxed{\\begin{bmatrix}1 & 0 \\\\ 0 & 1\\end{bmatrix}}"),
    ("\\{1,2\\}", "\\boxed{1}, \\boxed{2}"),
    ("2.74", "Soucis : 2,74 $ a.."),
)


def warm_up() -> None:
    """Import math-verify and grade a few typical pairs (run by each worker before it
    reports ready), so that a fresh worker's first answers fit in the time budget."""
    for gold, pred in WARM_UP_PAIRS:
        try:
            math_verify_grade(gold, pred)
        except Exception:
            pass
