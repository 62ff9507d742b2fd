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
import os
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from .format import last_boxed

#: Seconds a caller waits beyond ``timeout`` for a free worker (the pool may be busy
#: with other threads' tasks, or starting a replacement worker after a kill).
QUEUE_ALLOWANCE_S = 60.0
#: Worker processes for math-verify; override with ``SRPO_GRADER_WORKERS``.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Grade:
    correct: bool
    #: ``ok``, ``no_answer``, ``gold_unparsable``, ``timeout`` or ``error``.
    status: str
    #: ``choice``, ``number``, ``text``, ``math_verify`` or ``none``.
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


# ------------------------------------------------------------ math-verify in workers
def _boxed(s: str) -> str:
    return "\\boxed{" + s + "}"


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> list:
    from math_verify import parse

    return parse(_boxed(gold), parsing_timeout=None)


def math_verify_grade(gold: str, pred: str) -> tuple[str, bool]:
    """Runs in a worker process: (status, correct).  No signal-based timeouts here: the
    parent enforces the limit by killing the worker."""
    from math_verify import parse, verify

    gold_parsed = _parse_gold(gold)
    if not any(not isinstance(x, str) for x in gold_parsed):
        # Nothing but math-verify's raw-string fallback: the gold is not math we can check.
        return "gold_unparsable", False
    pred_parsed = parse(_boxed(pred), parsing_timeout=None)
    if not pred_parsed:
        return "ok", False
    return "ok", bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def warm_up() -> None:
    """Import math-verify and parse once (run by each worker before it reports ready)."""
    _parse_gold("1")


#: ``module:function`` the workers run; a test may point it at a slow function.
WORKER_TARGET = "srpo_reward.grading:math_verify_grade"


class _Worker:
    """One ``python -m srpo_reward._grader_worker`` subprocess, used by one thread at a time."""

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
            text=True,
            bufsize=1,
        )
        self.ready = False

    def _readline(self, deadline: float) -> str | None:
        """One line from the worker, ``""`` if it died, or None when the deadline passes."""
        fd = self.proc.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                return fd.readline()  # "" when the worker died

    def grade(self, gold: str, pred: str, timeout: float) -> tuple[str, bool]:
        if not self.ready:
            if not self._readline(time.monotonic() + QUEUE_ALLOWANCE_S):
                raise RuntimeError("grading worker did not start")
            self.ready = True
        self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred}) + "\n")
        self.proc.stdin.flush()
        line = self._readline(time.monotonic() + timeout)
        if line is None:
            raise TimeoutError
        if not line:
            raise RuntimeError("grading worker died")
        resp = json.loads(line)
        return resp["status"], resp["correct"]

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
    """Up to ``size`` workers; a thread takes an idle one (or starts one) and gives it back."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[_Worker] = []
        self.count = 0
        self.cond = threading.Condition()
        self.pid = os.getpid()

    def acquire(self, target: str, wait: float) -> _Worker | None:
        deadline = time.monotonic() + wait
        with self.cond:
            while True:
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive() and worker.target == target:
                        return worker
                    worker.kill()
                    self.count -= 1
                if self.count < self.size:
                    self.count += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
        try:
            return _Worker(target)
        except Exception:
            with self.cond:
                self.count -= 1
                self.cond.notify()
            raise

    def release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self.cond:
            if healthy:
                self.idle.append(worker)
            else:
                self.count -= 1
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


def _run_math_verify(gold: str, pred: str, timeout: float) -> Grade:
    pool = _get_pool()
    try:
        worker = pool.acquire(WORKER_TARGET, QUEUE_ALLOWANCE_S)
    except Exception:
        return Grade(False, "error", "math_verify")
    if worker is None:
        return Grade(False, "timeout", "math_verify")
    healthy = False
    try:
        status, correct = worker.grade(gold, pred, timeout)
        healthy = True
    except TimeoutError:
        return Grade(False, "timeout", "math_verify")
    except Exception:  # the worker died or wrote garbage
        return Grade(False, "error", "math_verify")
    finally:
        pool.release(worker, healthy)
    return Grade(bool(correct) and status == "ok", status, "math_verify")


# ---------------------------------------------------------------------- entry point
def grade_answer(
    pred: str | None,
    gold: Any,
    timeout: float = 5.0,
    *,
    options: Sequence[str] | None = None,
    answer_type: str | None = None,
    rel_tol: float = 1e-4,
) -> Grade:
    """Grade ``pred`` against ``gold``.  Never raises, never runs longer than about ``timeout``.

    ``options`` (the option texts, in order A, B, ...) and ``answer_type``
    (``"multiple_choice"`` forces the choice rule) come from ``extra_info`` when
    the data carries them.
    """
    try:
        if not isinstance(pred, str) or not pred.strip():
            return Grade(False, "no_answer")
        boxed = last_boxed(pred)  # callers may pass a raw answer block
        if boxed is not None:
            pred = boxed
            if not pred.strip():
                return Grade(False, "no_answer")
        if isinstance(gold, (int, float)) and not isinstance(gold, bool):
            gold = repr(gold) if isinstance(gold, float) else str(gold)
        if isinstance(gold, (list, tuple)) and len(gold) == 1:
            gold = gold[0]
        if not isinstance(gold, str) or not normalize_text(gold):
            return Grade(False, "gold_unparsable")

        letters = option_letters(options, answer_type)
        gold_letter = gold_choice_letter(gold, options, letters)
        if answer_type in MULTIPLE_CHOICE_TYPES and gold_letter is None:
            return Grade(False, "gold_unparsable", "choice")
        if gold_letter is not None:
            return Grade(choice_letter(pred, options, letters) == gold_letter, "ok", "choice")

        gold_num = parse_number(gold)
        if gold_num is not None:
            pred_num = parse_number(pred)
            if pred_num is not None:
                return Grade(numbers_equal(gold_num, pred_num, rel_tol), "ok", "number")

        gold_norm = normalize_text(gold)
        if _WORDS_RE.fullmatch(gold_norm):
            # Words ("east", "isosceles triangle"): math-verify would read them as products of
            # symbols, and "seat" would then equal "east".  Compare the words instead.
            return Grade(gold_norm.casefold() == normalize_text(pred).casefold(), "ok", "text")

        return _run_math_verify(gold.replace("$", "").strip(), pred.replace("$", "").strip(), timeout)
    except Exception:  # a grader bug must never take a training step down
        return Grade(False, "error")
