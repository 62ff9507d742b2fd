"""Is an extracted answer correct?  Fast paths first, then math-verify under a hard time limit.

Order (``SRPO_SPEC.md``, "Answer grading"):

1. multiple choice: the ground truth is one letter A-E (A-J, or one letter per option,
   when the data gives the options or says it is multiple choice), or an option text
   when the options are known; the answer must name exactly one option letter;
2. numbers: numeric equality with a relative tolerance; units, thousands
   separators and a trailing degree or percent sign are handled;
3. everything else: math-verify, ``verify(parse(gold), parse(pred))``, gold first.

math-verify's own timeouts use ``signal.alarm``, which raises at once off the main
thread (verl 0.9.1 calls a sync ``compute_score`` from ``loop.run_in_executor``),
and without them some inputs (``\\boxed{9^{9^{9^{9}}}}``) never return.  So it runs
in a small pool of worker subprocesses (``python -m srpo_reward._grader_worker``,
started on first need): a task that passes its time limit has its worker killed
and replaced.  This works from any thread, in Ray workers, and after the caller
was pickled.  The gold is parsed once per worker and reused (a GRPO group of n
rollouts shares one ground truth).

:func:`grade_answer` never raises and never hangs; failures are a ``Grade`` with a
status other than ``"ok"``, and score 0.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import numbers
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

from . import numeric


#: Seconds a caller waits beyond ``timeout`` for a free worker (the pool may be busy
#: with other threads' tasks, or starting a replacement worker after a kill).
QUEUE_ALLOWANCE_S = 60.0
#: Longest wait for a free worker once the pool is warm (on top of the grading budget).
QUEUE_WAIT_S = 30.0
#: Worker processes for math-verify; override with ``SRPO_GRADER_WORKERS``.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Grade:
    correct: bool
    #: ``ok``, ``no_answer``, ``gold_unparsable``, ``timeout``, ``error`` or ``refused``
    #: (the guard kept a pathological answer from math-verify).
    status: str
    #: ``choice``, ``number``, ``text``, ``numeric``, ``math_verify``, ``guard`` or ``none``.
    method: str = "none"


# --------------------------------------------------------------------------- text
_TEXT_CMD_RE = re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_SPACING_RE = re.compile(r"\\[,!;:> ]|\\q?quad|~")
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right)\b")


def normalize_text(s: str) -> str:
    """Strip math delimiters, ``\\text{}`` wrappers and spacing commands."""
    s = s.strip()
    s = s.replace("\\$", "").replace("$", "")  # a currency sign, then math delimiters
    s = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", s).strip()
    for _ in range(3):  # nested \text{\textbf{..}}
        s = _TEXT_CMD_RE.sub(r"\1", s)
    s = _SPACING_RE.sub(" ", s)
    s = _LEFT_RIGHT_RE.sub("", s)
    return re.sub(r"\s+", " ", s).strip().rstrip(".").strip()


# ------------------------------------------------------------------ multiple choice
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_letters(options: Sequence[str] | None = None, answer_type: str | None = None) -> str:
    """The letters a question's options can have: one per known option (MMMU-Pro has up to
    ten, A-J), else A-E, or A-J when the data says it is multiple choice."""
    if options:
        return _ALPHABET[: max(2, min(len(options), len(_ALPHABET)))]
    return _ALPHABET[:10] if answer_type in MULTIPLE_CHOICE_TYPES else _ALPHABET[:5]


MULTIPLE_CHOICE_TYPES = ("multiple_choice", "choice")


@functools.lru_cache(maxsize=32)
def _choice_patterns(letters: str) -> tuple[re.Pattern, re.Pattern, re.Pattern, re.Pattern, re.Pattern]:
    cls = f"[{letters}]"
    only = re.compile(rf"^\(?\s*({cls})\s*\)?\s*[.:)]?$", re.IGNORECASE)
    # "Option B ...", "the answer is B", "(B) ...", "B. ...", "B: ...", "B) ..."; a bare letter
    # followed by a space is not enough ("A right triangle" names no option).
    prefix = re.compile(
        r"^(?:(?:(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:：]?\s*)"
        rf"(?-i:\(?({cls})\)?)(?=[.:)\s]|$)|(?-i:\(({cls})\)|({cls})(?=[.:)]|$)))",
        re.IGNORECASE,
    )
    paren = re.compile(rf"\(({cls})\)")
    conj = re.compile(rf"\b({cls})\s*(?:,|or|and|/|&)\s*\(?({cls})\b")
    gold = re.compile(rf"\(?({cls})\)?\.?")
    return only, prefix, paren, conj, gold


def _option_text_letter(s: str, options: Sequence[str] | None, letters: str) -> str | None:
    if not options:
        return None
    key = s.casefold()
    hits = [letters[i] for i, opt in enumerate(options[: len(letters)]) if normalize_text(str(opt)).casefold() == key]
    return hits[0] if len(hits) == 1 else None


def choice_letter(text: str, options: Sequence[str] | None = None, letters: str | None = None) -> str | None:
    """The one option letter an answer names, or None when it names none or several."""
    letters = letters or option_letters(options)
    only, prefix, paren, conj, _ = _choice_patterns(letters)
    s = normalize_text(text)
    m = only.match(s)
    if m:
        return m.group(1).upper()
    m = prefix.match(s)
    if m:
        named = {next(g for g in m.groups() if g)}
        named.update(paren.findall(s))
        for a, b in conj.findall(s):
            named.update((a, b))
        return named.pop() if len(named) == 1 else None
    return _option_text_letter(s, options, letters)


def gold_choice_letter(gold: str, options: Sequence[str] | None = None, letters: str | None = None) -> str | None:
    """The gold's option letter: a lone option letter, or an option text when the options are known."""
    letters = letters or option_letters(options)
    s = normalize_text(gold)
    m = _choice_patterns(letters)[4].fullmatch(s)
    if m:
        return m.group(1)
    return _option_text_letter(s, options, letters)


# -------------------------------------------------------------------------- numbers
_NUMBER_RE = re.compile(r"^([-+−]?)(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?")
#: A decimal comma, read as math-verify reads it, where it cannot be a list: ``0,111``,
#: ``1,22``, ``1000,99`` (two decimals).  ``1,2`` stays a list of two answers and a group of
#: three digits after a nonzero integer part stays a thousands separator (``1,000``).
_DECIMAL_COMMA_RE = re.compile(r"^([-+−]?(?:0|\d+(?=,\d{2}(?![\d,]))|0)),(\d+)(?![\d,])")
_UNIT_WORD = r"[A-Za-zµ°]+(?:\^\{?-?\d\}?)?"
_SUFFIX_RE = re.compile(
    r"^\s*(?P<pct>\\?%|percent)?\s*(?P<deg>°|\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|degrees?)?"
    rf"\s*(?:{_UNIT_WORD}(?:\s*/\s*{_UNIT_WORD})?(?:\s+{_UNIT_WORD})*)?\s*$"
)
_CURRENCY_RE = re.compile(r"^(?:\\\$|\$|USD|US\$|€|£)\s*")
_LHS_RE = re.compile(r"^[A-Za-z]\w*\s*=\s*")


@dataclass(frozen=True)
class Number:
    value: float
    percent: bool


def parse_number(text: str) -> Number | None:
    """A plain number with optional unit, ``%`` or degree sign (``"1,000 cm"``, ``"45^\\circ"``), or None."""
    s = normalize_text(text)
    s = _LHS_RE.sub("", s)
    s = _CURRENCY_RE.sub("", s).replace("\\%", "%")
    s = _collapse_thousands(s)
    s = _DECIMAL_COMMA_RE.sub(r"\1.\2", s)
    m = _NUMBER_RE.match(s)
    if not m or not (m.group(2) or m.group(3)):
        return None
    suffix = _SUFFIX_RE.match(s[m.end() :])
    if suffix is None:
        return None
    digits = (m.group(2) or "0").replace(",", "") + (m.group(3) or "")
    try:
        value = float(digits)
    except ValueError:
        return None
    if m.group(1) in ("-", "−"):
        value = -value
    return Number(value, percent=bool(suffix.group("pct")))


def numbers_equal(gold: Number, pred: Number, rel_tol: float) -> bool:
    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9)

    if close(gold.value, pred.value):
        return True
    if gold.percent != pred.percent:  # "50%" vs "0.5"
        scaled = gold.value / 100 if gold.percent else gold.value * 100
        return close(scaled, pred.value)
    return False


_WORDS_RE = re.compile(r"[A-Za-z]{3,}(?:[ -][A-Za-z]+)*")


# ------------------------------------------------------------ ground truths
_UNESCAPED_PCT_RE = re.compile(r"(?<!\\)%")
_SPACE_THOUSANDS_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:(?:\s|\\[,;!: ]|~|\{,\}|,\\!)\d{3})+(?![\d])")
#: A descriptive left-hand side (two or more words, or ``\text{..}``), as MathVerse writes
#: free-form answers: ``Surface Area $=9236.28 \mathrm{~m}^{2}$``.
_DESCRIPTIVE_LHS_RE = re.compile(
    r"^\s*(?:\\text\s*\{[^{}$=]*\}|[A-Za-z][A-Za-z'’]*(?:\s+[A-Za-z'’()]+)+|[A-Za-z]{2,}[A-Za-z'’]*)\s*(\$*)\s*=\s*(?=\S)"
)


def _collapse_thousands(s: str) -> str:
    """``1 000``, ``1\\,000``, ``14{,}916`` -> ``1000`` (a space is never a decimal point)."""
    return _SPACE_THOUSANDS_RE.sub(lambda m: re.sub(r"\D", "", m.group(0)), s)


#: The lead-in of a gold written as a sentence, as MathV360K's answers read (``The answer is
#: 5``) and Mulberry's search inputs (``Answer:B``): it is not part of the answer.
_GOLD_LEAD_IN_RE = re.compile(r"^(?:(?:the\s+)?(?:final\s+)?answer\s+is\s*:?|answer\s*:)\s*(?=\S)", re.I)
#: An option letter with its value, as Mulberry's final answers read (``A: 57``, ``(B) 45``):
#: the letter and the value are each an acceptable answer.
_GOLD_LETTER_VALUE_RE = re.compile(r"^(?:([A-J])\s*:|\(([A-J])\))\s*(\S.*)$")


def normalize_ground_truth(gold: Any) -> tuple[str, ...]:
    """The acceptable answers a ground truth names, normalised the way the grader reads them.

    Public so that benchmark scoring (``srpo_eval``) and stage 1 (``srpo_data.builder``) read
    ground truths exactly like the reward.  A list or tuple of strings is a list of
    acceptable answers (any of them counts); a real number (``int``, ``float`` or a numpy
    scalar such as ``np.int64``, ``np.float32``) becomes its shortest decimal text; in each
    string a lead-in (``The answer is 5``, ``Answer: B``) and a trailing sentence period
    (``12.``) are dropped, an option letter with its value (``A: 57``) gives both the letter
    and the value, a LaTeX comment sign ``%`` becomes ``\\%``, thousands separators written
    with spaces (``1 000``, ``1\\,000``, ``14{,}916``) are removed, and a descriptive
    left-hand side (``Surface Area $=9236.28 \\mathrm{~m}^{2}$`` -> ``$9236.28
    \\mathrm{~m}^{2}$``) is dropped.  Empty answers are dropped; ``()`` means the gold has
    nothing gradable.

    >>> normalize_ground_truth(["1 000", "$100%$"])
    ('1000', '$100\\\\%$')
    >>> normalize_ground_truth("A: 57"), normalize_ground_truth("The answer is 12.")
    (('A', '57'), ('12',))
    """
    if isinstance(gold, bool) or gold is None:
        return ()
    if isinstance(gold, numbers.Real):
        if not math.isfinite(gold):
            return ()
        if isinstance(gold, numbers.Integral):
            return (str(int(gold)),)
        # repr of a Python float; str of a numpy float32 is its shortest text (0.1, not 0.100000001)
        return (repr(float(gold)) if isinstance(gold, float) else str(gold),)
    if isinstance(gold, str):
        s = gold.strip()
        s = _GOLD_LEAD_IN_RE.sub("", s)
        if s.endswith(".") and not s.endswith("..") and ("." not in s[:-1] or parse_number(s[:-1]) is not None):
            s = s[:-1].rstrip()  # a sentence's period (``12.``, ``B.``), not the one of ``U.S.``
        m = _GOLD_LETTER_VALUE_RE.match(s)
        if m:
            return normalize_ground_truth([m.group(1) or m.group(2), m.group(3)])
        if not s:
            return ()
        s = _UNESCAPED_PCT_RE.sub(r"\\%", s)
        s = _collapse_thousands(s)
        m = _DESCRIPTIVE_LHS_RE.match(s)
        if m:
            s = m.group(1) + s[m.end():]
        s = s.strip()
        return (s,) if normalize_text(s) else ()
    if isinstance(gold, (list, tuple)) or type(gold).__name__ == "ndarray":
        out: list[str] = []
        for item in list(gold)[:MAX_GOLD_ALTERNATIVES]:
            if isinstance(item, (list, tuple)):
                continue  # no nesting: a list of lists is not a list of acceptable answers
            for alt in normalize_ground_truth(item):
                if alt not in out:
                    out.append(alt)
        return tuple(out)
    return ()


#: At most this many acceptable answers of a list ground truth are tried.
MAX_GOLD_ALTERNATIVES = 16


# ------------------------------------------------------------------------- the guard
#: Answers longer than this (characters) are not given to math-verify whole (only their
#: boxed answers, or nothing): parsing cost grows with length.  math-verify takes about
#: 5 ms on an 11,000-character solution from its own regression tables.
MAX_MATH_CHARS = 16000
#: More ``\boxed{}`` than this in one answer: not an answer, a spray.
MAX_BOXES = 20
#: Bracket nesting deeper than this: sympy's parser recurses per level.
MAX_NESTING = 40
#: A literal integer with more digits, an exponent above this, a factorial above this,
#: or a tower of more powers than this makes sympy compute numbers with millions of digits.
MAX_DIGITS = 200
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1_000
MAX_POWER_CHAIN = 2

_POW_RE = re.compile(r"\^\s*\{?\s*\(?\s*(\d+)")
_FACT_RE = re.compile(r"(\d+)\s*\}?\s*\)?\s*!")
_FACT_CMD_RE = re.compile(r"\\(?:factorial|Gamma)\b|\\binom\s*\{\s*\d{5,}")
_DIGITS_RE = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))
_POW2_RE = re.compile(r"\^\s*\{\s*\(?\s*(\d+)\s*\)?\s*\^\s*\{?\s*(\d+)")
#: ``a^{b^{c^..}}``, ``a^{b^c^d}``, ``a^b^c^d`` or ``2**3**4**5``: three stacked powers.
_POW_CHAIN_RE = re.compile(
    r"\^\s*\{[^{}]*\^\s*\{?[^{}]*\^|\^\s*\w+\s*\^\s*\w+\s*\^|\d\s*\*\*\s*\(?\s*\d+\s*\*\*\s*\(?\s*\d+\s*\*\*"
)


def _max_nesting(s: str) -> int:
    depth = best = 0
    for ch in s:
        if ch in "{([":
            depth += 1
            if depth > best:
                best = depth
        elif ch in "})]" and depth:
            depth -= 1
    return best


def guard_reason(s: str) -> str | None:
    """Why math-verify must not see ``s`` (an answer or a ground truth), or None.

    Cheap (linear in ``len(s)``) checks for what makes sympy slow: huge literals,
    exponents and factorials, power towers, deep nesting, very long or box-sprayed
    answers.  A refused answer is graded wrong with status ``refused``.
    """
    if len(s) > MAX_MATH_CHARS:
        return "too_long"
    if s.count("\\boxed") + s.count("\\fbox") > MAX_BOXES:
        return "too_many_boxes"
    if _max_nesting(s) > MAX_NESTING:
        return "too_deep"
    if _DIGITS_RE.search(s):
        return "huge_number"
    if any(int(m.group(1)) > MAX_EXPONENT for m in _POW_RE.finditer(s) if len(m.group(1)) < 12) or any(
        len(m.group(1)) >= 12 for m in _POW_RE.finditer(s)
    ):
        return "huge_exponent"
    if any(len(m.group(1)) > 6 or int(m.group(1)) > MAX_FACTORIAL for m in _FACT_RE.finditer(s)):
        return "huge_factorial"
    if _FACT_CMD_RE.search(s):
        return "huge_factorial"
    if _POW_CHAIN_RE.search(s):
        return "power_tower"
    for m in _POW2_RE.finditer(s):  # 9^{9^{9}}: the inner power is the exponent
        base, exp = int(m.group(1)[:12]), int(m.group(2)[:12])
        if base > 1 and exp * math.log10(base) > math.log10(MAX_EXPONENT):
            return "power_tower"
    return None


# ------------------------------------------------------------ math-verify in workers
def _boxed(s: str) -> str:
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
    parsed = parse(_boxed(gold.replace("$", "")), parsing_timeout=None)
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


#: ``module:function`` the workers run; a test may point it at a slow function.
WORKER_TARGET = "srpo_reward.grading:math_verify_grade"


class _Worker:
    """One ``python -m srpo_reward._grader_worker`` subprocess, used by one thread at a time.

    Started without waiting: it imports math-verify while the pool hands out other workers,
    and reports ``{"ready": true}`` when it can take tasks.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        env = dict(os.environ)
        # The child imports what the parent can import (like multiprocessing's spawn does).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "srpo_reward._grader_worker", target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.ready = False
        self._buf = b""  # bytes read from the worker's stdout, not yet a whole line

    def _readline(self, deadline: float) -> str | None:
        """One line from the worker, ``""`` if it died, or None when the deadline passes.

        Reads the pipe's file descriptor itself: a buffered reader may already hold the
        next line when ``select`` reports the pipe empty (two results written at once),
        which would wait for a line that has already arrived."""
        fd = self.proc.stdout.fileno()  # never read through self.proc.stdout's buffer
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line, self._buf = self._buf[: end + 1], self._buf[end + 1 :]
                return line.decode("utf-8", "replace")
            left = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(0.0, left))
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return ""  # the worker died
                self._buf += chunk
                continue
            if left <= 0:
                return None

    def poll_ready(self) -> bool:
        """True once the worker has reported ready (never blocks); raises if it died starting."""
        if not self.ready:
            line = self._readline(0.0)
            if line == "":
                raise RuntimeError("grading worker died while starting")
            self.ready = line is not None
        return self.ready

    def grade_many(self, tasks: Sequence[tuple[str, str]], deadline: float, results: list) -> None:
        """Grade ``(gold, pred)`` pairs in one round trip; appends ``(status, correct)`` to
        ``results`` as they arrive.  Raises ``TimeoutError`` at ``deadline``."""
        self.proc.stdin.write((json.dumps({"tasks": [list(t) for t in tasks]}) + "\n").encode())
        self.proc.stdin.flush()
        for _ in tasks:
            line = self._readline(deadline)
            if line is None:
                raise TimeoutError
            if not line:
                raise RuntimeError("grading worker died")
            resp = json.loads(line)
            results.append((str(resp["status"]), bool(resp["correct"])))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except Exception:
                pass


class _WorkerPool:
    """``size`` workers, all started on first use; a thread takes an idle ready one and gives
    it back.  A killed worker is replaced at once, so its start overlaps other work."""

    #: Seconds between checks for a worker that became ready or idle.
    POLL_S = 0.005

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[_Worker] = []
        self.count = 0
        self.cond = threading.Condition()
        self.pid = os.getpid()
        #: Set once every worker was ready: until then the pool is cold (the workers import
        #: sympy, competing for the CPU) and callers wait longer.
        self.warm = False

    def _fill(self, target: str) -> None:
        while self.count < self.size:
            self.idle.append(_Worker(target))
            self.count += 1

    def acquire(self, target: str, deadline: float) -> _Worker | None:
        """An idle ready worker, or None if none is free by ``deadline``."""
        with self.cond:
            while True:
                self._fill(target)
                for worker in list(self.idle):
                    try:
                        usable = worker.target == target and worker.alive() and worker.poll_ready()
                    except Exception:
                        usable = False
                    if usable:
                        self.idle.remove(worker)
                        self.warm = self.warm or all(w.ready for w in self.idle)
                        return worker
                    if worker.target != target or not worker.alive():
                        self.idle.remove(worker)
                        worker.kill()
                        self.count -= 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, self.POLL_S))

    def release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self.cond:
            if healthy:
                self.idle.append(worker)
            else:
                self.count -= 1
                try:
                    self._fill(worker.target)
                except Exception:
                    pass
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            workers, self.idle = self.idle, []
            self.count -= len(workers)
        for worker in workers:
            worker.kill()


_pool: _WorkerPool | None = None
_pool_lock = threading.Lock()


def _get_pool() -> _WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # a forked child starts its own workers
            size = int(os.environ.get("SRPO_GRADER_WORKERS", DEFAULT_WORKERS))
            _pool = _WorkerPool(max(1, size))
        return _pool


def shutdown_pool() -> None:
    """Stop the idle worker processes (also registered with ``atexit``)."""
    with _pool_lock:
        if _pool is not None and _pool.pid == os.getpid():
            _pool.close()


atexit.register(shutdown_pool)


# ------------------------------------------------------------------------- the cache
class _VerdictCache:
    """math-verify verdicts per (target, gold, pred), shared by the threads of a process.

    A GRPO group's rollouts share a ground truth and repeat answers, so most of a
    group's answers are graded once.  Only final verdicts (``ok``, ``gold_unparsable``)
    are kept, never a timeout or an error.  Least recently used entries go first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, str, str], tuple[str, bool]] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str, str]) -> tuple[str, bool] | None:
        with self.lock:
            value = self.data.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self.data.move_to_end(key)
            return value

    def put(self, key: tuple[str, str, str], value: tuple[str, bool]) -> None:
        if self.size <= 0 or value[0] not in ("ok", "gold_unparsable"):
            return
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
            self.hits = self.misses = 0


#: Entries of the verdict cache (``SRPO_GRADE_CACHE``, 0 turns it off).
DEFAULT_CACHE_SIZE = 65536
verdict_cache = _VerdictCache(int(os.environ.get("SRPO_GRADE_CACHE", DEFAULT_CACHE_SIZE)))


def _run_math_verify(tasks: Sequence[tuple[str, str]], deadline: float) -> list[Grade]:
    """Grade ``(gold, pred)`` pairs with math-verify, from the cache or in one worker round
    trip, all within ``deadline``; a pair without a verdict in time is a ``timeout``."""
    target = WORKER_TARGET
    grades: list[Grade | None] = [None] * len(tasks)
    todo: list[int] = []
    for i, (gold, pred) in enumerate(tasks):
        reason = guard_reason(pred) or guard_reason(gold)
        if reason is not None:
            grades[i] = Grade(False, "refused", "guard")
            continue
        hit = verdict_cache.get((target, gold, pred))
        if hit is not None:
            grades[i] = Grade(hit[1] and hit[0] == "ok", hit[0], "math_verify")
        else:
            todo.append(i)
    unique = list(dict.fromkeys(tasks[i] for i in todo))
    if unique:
        results: list[tuple[str, bool]] = []
        failure = ""
        pool = _get_pool()
        # The budget is for grading: waiting for a free worker (other samples' turns, in verl's
        # executor threads) is bounded separately, so that concurrency never turns a right
        # answer into a timeout.  The process's first grades also wait for the workers to start.
        budget = max(0.0, deadline - time.monotonic())
        wait = QUEUE_WAIT_S if pool.warm else QUEUE_ALLOWANCE_S
        try:
            worker = pool.acquire(target, time.monotonic() + budget + wait)
        except Exception:
            worker, failure = None, "error"
        deadline = time.monotonic() + budget
        if worker is None:
            failure = failure or "timeout"
        else:
            healthy = False
            try:
                worker.grade_many(unique, deadline, results)
                healthy = True
            except TimeoutError:
                failure = "timeout"
            except Exception:  # the worker died or wrote garbage
                failure = "error"
            finally:
                pool.release(worker, healthy)
        verdicts = dict(zip(unique, results))
        for task, verdict in verdicts.items():
            verdict_cache.put((target, *task), verdict)
        for i in todo:
            verdict = verdicts.get(tasks[i])
            if verdict is None:
                grades[i] = Grade(False, failure or "error", "math_verify")
            else:
                grades[i] = Grade(verdict[1] and verdict[0] == "ok", verdict[0], "math_verify")
    return [g if g is not None else Grade(False, "error") for g in grades]


# ---------------------------------------------------------------------- entry point
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


_BOX_START_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")

#: Grade statuses that count as a grading failure (``grade_error`` in the reward).
ERROR_STATUSES = ("timeout", "error", "refused")


@dataclass(frozen=True)
class _Prepared:
    grade: Grade | None  # decided without math-verify
    tasks: tuple[tuple[str, str], ...] = ()  # (gold, pred) pairs for math-verify, any of them


def _fast(pred: str, boxes: list[str], gold: str, letters: str, options, answer_type, rel_tol) -> Grade | None:
    """The fast paths for one acceptable gold: a Grade, or None when math-verify must decide."""
    single = boxes[0] if len(boxes) == 1 else (pred if not boxes else None)
    gold_letter = gold_choice_letter(gold, options, letters)
    if answer_type in MULTIPLE_CHOICE_TYPES and gold_letter is None:
        return Grade(False, "gold_unparsable", "choice")
    if gold_letter is not None:
        named = {choice_letter(b, options, letters) for b in (boxes or [pred])}
        return Grade(named == {gold_letter}, "ok", "choice")
    if single is None:
        return None  # several boxed answers: math-verify reads them as a set
    if not single.strip():
        return Grade(False, "no_answer")
    gold_num = parse_number(gold)
    if gold_num is not None:
        pred_num = parse_number(single)
        if pred_num is not None:
            return Grade(numbers_equal(gold_num, pred_num, rel_tol), "ok", "number")
    gold_norm = normalize_text(gold)
    if _WORDS_RE.fullmatch(gold_norm):
        # Words ("east", "isosceles triangle"): math-verify would read them as products of
        # symbols, and "seat" would then equal "east".  Compare the words instead.
        return Grade(gold_norm.casefold() == normalize_text(single).casefold(), "ok", "text")
    # Closed-form numbers, tuples and intervals (fractions, roots, pi): their values settle
    # it where math-verify cannot disagree; anything else, or a near value, goes to it.
    verdict = numeric.compare(gold_norm, normalize_text(single))
    if verdict is not None:
        return Grade(verdict, "ok", "numeric")
    return None


def _mv_pred(pred: str, boxes: list[str]) -> str:
    if len(pred) <= MAX_MATH_CHARS or not boxes:
        return pred.strip()
    return " ".join(_boxed(b) for b in boxes)  # a long block: only its boxed answers


def _prepare(pred: Any, golds: tuple[str, ...], options, answer_type, rel_tol) -> _Prepared:
    if not isinstance(pred, str) or not pred.strip():
        return _Prepared(Grade(False, "no_answer"))
    if not golds:
        return _Prepared(Grade(False, "gold_unparsable"))
    letters = option_letters(options, answer_type)
    boxes = all_boxed(pred)
    if len(boxes) > MAX_BOXES:
        return _Prepared(Grade(False, "refused", "guard"))
    if boxes and not any(b.strip() for b in boxes):
        return _Prepared(Grade(False, "no_answer"))
    if len(pred) > MAX_MATH_CHARS:  # the guard, before any regex: only the boxed answers count
        if not boxes or sum(map(len, boxes)) > MAX_MATH_CHARS:
            return _Prepared(Grade(False, "refused", "guard"))
        pred = " ".join(_boxed(b) for b in boxes)
    decided: list[Grade] = []
    tasks: list[tuple[str, str]] = []
    for gold in golds:
        if len(gold) > MAX_MATH_CHARS:
            decided.append(Grade(False, "refused", "guard"))
            continue
        g = _fast(pred, boxes, gold, letters, options, answer_type, rel_tol)
        if g is not None and g.correct:
            return _Prepared(g)
        if g is None:
            tasks.append((gold, _mv_pred(pred, boxes)))
        else:
            decided.append(g)
    if tasks:
        return _Prepared(None, tuple(tasks))
    ok = [g for g in decided if g.status == "ok"]
    return _Prepared((ok or decided)[0])


def _combine(grades: Sequence[Grade]) -> Grade:
    """Any acceptable gold that matches wins; else the most informative failure."""
    for g in grades:
        if g.correct:
            return g
    for status in ("ok", "timeout", "error", "refused", "gold_unparsable"):
        for g in grades:
            if g.status == status:
                return g
    return grades[0]


def grade_answers(
    preds: Sequence[str | None],
    gold: Any,
    timeout: float = 1.0,
    *,
    options: Sequence[str] | None = None,
    answer_type: str | None = None,
    rel_tol: float = 1e-4,
) -> list[Grade]:
    """Grade several answers against one ground truth within ONE time budget of ``timeout``
    seconds in all (a sample's two answers: one worker round trip, one deadline).

    ``gold`` may be a list of acceptable answers (any of them counts).  Never raises.
    """
    deadline = time.monotonic() + timeout
    try:
        golds = normalize_ground_truth(gold)
        prepared = [_prepare(p, golds, options, answer_type, rel_tol) for p in preds]
        tasks = [t for p in prepared for t in p.tasks]
        verdicts = dict(zip(tasks, _run_math_verify(tasks, deadline))) if tasks else {}
        return [p.grade if p.grade is not None else _combine([verdicts[t] for t in p.tasks]) for p in prepared]
    except Exception:  # a grader bug must never take a training step down
        return [Grade(False, "error") for _ in preds]


def grade_answer(
    pred: str | None,
    gold: Any,
    timeout: float = 1.0,
    *,
    options: Sequence[str] | None = None,
    answer_type: str | None = None,
    rel_tol: float = 1e-4,
) -> Grade:
    """Grade ``pred`` (an answer, or a raw answer block) against ``gold``.  Never raises,
    never runs longer than about ``timeout`` seconds.

    ``options`` (the option texts, in order A, B, ...) and ``answer_type``
    (``"multiple_choice"`` forces the choice rule) come from ``extra_info`` when
    the data carries them.  ``gold`` may be a list of acceptable answers.
    """
    return grade_answers([pred], gold, timeout, options=options, answer_type=answer_type, rel_tol=rel_tol)[0]
