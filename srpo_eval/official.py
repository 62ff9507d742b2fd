"""Each benchmark's official scoring rule, applied to an already extracted answer.

The official scorers (read from their repositories; none of their code is copied):

- **MathVista** (``lupantech/MathVista``, ``evaluation/calculate_score.py``): a
  multiple-choice extraction ``(B)`` or ``B`` becomes the text of that choice,
  anything else becomes the *most similar choice* (Levenshtein distance, first of
  the nearest); the question is right when that choice's text equals the answer
  text (so pid 781, choices ``9, 12, 18, 18``, answer ``18``, is right with C or
  D).  Free-form answers follow the official code exactly: ``integer``:
  ``str(int(float(x)))`` equals the answer (so ``7.9`` is right for 7, and ``1,000``
  is wrong for 1000: Python's ``float`` refuses it); ``float``:
  ``str(round(float(x), precision))`` equals the answer (the row's ``precision``, no
  tolerance); ``list`` and ``text``: string equality with the answer as the release
  writes it (``[2,4]`` is wrong for ``[2, 4]``, ``Yes`` for ``yes``).  The extracted
  answer is the ``<answer>`` block's last ``\\boxed{}`` (or the block), stripped; the
  official's GPT extraction step is the judge path (:mod:`srpo_eval.judge`), where an
  extractor normalises an answer.

  **Departure, multiple choice only:** the letter is read with ``srpo_reward``'s
  choice reader first (``B.``, ``Answer: B``, ``(B) equal to`` name B; the official
  takes only ``(B)`` or a bare ``B`` and sends anything else to the most similar
  choice), and the most-similar comparison uses :func:`latex_to_text` of both sides
  (``60^\\circ`` is the option ``60°``).  Reason: the official code scores the
  output of its GPT extractor, which turns such answers into a letter or an option's
  text; our rule path scores the policy's own answer block without that step, and an
  edit distance from ``B.`` to the option texts would pick an option at random.
- **MathVerse** (``ZrrSkywalker/MathVerse``, ``evaluation/score_answer_s2.py``):
  a GPT judge compares the extraction with the answer as the release writes it
  (``Surface Area $=9236.28 \\mathrm{~m}^{2}$``, ``Center $=(20,10)$``).  The
  offline rule grades with ``srpo_reward``'s grader, which reads such golds
  (``srpo_reward.normalize_ground_truth``), then with the gold stripped of its
  label, ``$`` and trailing units here (:func:`mathverse_gold`) as a fallback.
- **MathVision** (``mathllm/MATH-V``, ``evaluation/evaluate.py``): right when
  the answer equals the gold letter *or* the text of the gold option.
- **MMMU-Pro** (``MMMU-Benchmark/MMMU``, ``mmmu-pro/evaluate.py``): an option
  letter is looked for as ``(B)``, then ``B `` then ``B.``, then (answers longer
  than five words) as an option's text; several candidates: the last one in the
  answer wins.  The official scorer then guesses at random when nothing is found;
  here such an answer is wrong, with status ``no_choice`` (counted in the report).
  Its overall score is the mean of the standard (10 options) and vision settings.

``srpo_reward``'s grader decides first wherever the rules agree (an option
letter, numbers within MathVerse/MathVision, math-verify for expressions).

Ground truths go to ``srpo_reward`` as the release writes them (it normalises them,
issue 10); :func:`mathverse_gold` and :func:`latex_to_text` (option texts) are this
module's own, used where ``srpo_reward``'s reading does not decide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from srpo_eval.data import DataItem

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Verdict:
    correct: bool
    #: ``ok``, ``no_answer``, ``no_choice``, ``not_a_number``, ``gold_unparsable``, ``timeout``, ``error``.
    status: str
    #: Which rule decided: ``choice``, ``most_similar_choice``, ``integer``, ``precision``, ``list``,
    #: ``exact``, ``option_text``, or ``srpo_reward:<method>``.
    rule: str


# --------------------------------------------------------------------- helpers
def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


_LATEX_TEXT = (
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree"), "°"),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\(?:text|mathrm|textrm|mathbf|textbf)\s*\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\d?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"\1/\2"),
    (re.compile(r"\\sqrt\s*\{([^{}]*)\}"), r"√\1"),
    (re.compile(r"\\pi\b"), "π"),
    (re.compile(r"\\(?:left|right)\b|\\[,;!: ]|~"), ""),
)


def latex_to_text(s: str) -> str:
    """``60^\\circ`` -> ``60°``, ``\\frac{1}{2}`` -> ``1/2``, ``$`` removed, spaces collapsed."""
    s = s.replace("\\$", "$").replace("$", "")
    for pat, rep in _LATEX_TEXT:
        s = pat.sub(rep, s)
    return re.sub(r"\s+", " ", s).strip()


def same_text(a: str, b: str) -> bool:
    """Equal as written, or after :func:`latex_to_text` (ignoring spaces and case)."""
    if a.strip() == b.strip():
        return True
    na, nb = latex_to_text(a).replace(" ", "").casefold(), latex_to_text(b).replace(" ", "").casefold()
    return bool(na) and na == nb


def reward_grade(pred: str | None, gold: str, item: DataItem, timeout: float, *, options: Sequence[str] | None = None, answer_type: str | None = None) -> Verdict:
    from srpo_reward.grading import grade_answer

    g = grade_answer(pred, gold, timeout, options=list(options) if options else None, answer_type=answer_type)
    return Verdict(g.correct, g.status, f"srpo_reward:{g.method}")


def _bare(pred: str | None) -> str:
    from srpo_reward.format import last_boxed

    if not isinstance(pred, str):
        return ""
    boxed = last_boxed(pred)
    return (boxed if boxed is not None else pred).strip()


def _precision(value: object) -> int | None:
    try:
        p = float(value)  # extra_info stores it as text (repr of the release's float)
    except (TypeError, ValueError):
        return None
    return None if p != p else int(p)


# ------------------------------------------------------------------- MathVista
def mathvista_choice(pred: str, options: Sequence[str]) -> tuple[int, str]:
    """(option index, rule): the letter named, else the most similar option text."""
    from srpo_reward.grading import choice_letter

    letters = LETTERS[: len(options)]
    letter = choice_letter(pred, options, letters)
    if letter is None:
        m = re.search(r"\(([a-zA-Z])\)", pred)
        cand = m.group(1).upper() if m else pred.strip()
        letter = cand if len(cand) == 1 and cand in letters else None
    if letter is not None:
        return letters.index(letter), "choice"
    target = latex_to_text(pred)
    dists = [levenshtein(target, latex_to_text(o)) for o in options]
    return dists.index(min(dists)), "most_similar_choice"


def mathvista_verdict(pred: str | None, item: DataItem, timeout: float = 5.0) -> Verdict:
    pred = _bare(pred)
    if not pred:
        return Verdict(False, "no_answer", "none")
    extra = item.extra_info
    answer = str(extra.get("original_answer") or item.ground_truth).strip()
    if item.answer_type == "multiple_choice" and item.options:
        k = LETTERS.find(item.ground_truth.strip().upper())
        gold_text = item.options[k] if len(item.ground_truth.strip()) == 1 and 0 <= k < len(item.options) else answer
        idx, rule = mathvista_choice(pred, item.options)
        # the chosen option's TEXT is compared, so duplicated options (pid 781) are all right
        return Verdict(same_text(item.options[idx], gold_text), "ok", rule)
    # Free-form answers: calculate_score.py's normalize_extracted_answer and safe_equal, exactly
    # (Python's float(); a string comparison with the answer as the release writes it).
    atype = item.answer_type
    if atype in ("integer", "float"):
        try:
            if atype == "integer":
                normalised = str(int(float(pred)))
            else:
                p = _precision(extra.get("precision"))
                if p is None:  # the release gives every float row a precision; else the gold's decimals
                    p = len(answer.split(".")[1]) if "." in answer else 0
                normalised = str(round(float(pred), p))
        except (ValueError, OverflowError):  # the official's bare except: no prediction, wrong
            return Verdict(False, "not_a_number", atype)
        return Verdict(normalised == answer, "ok", "integer" if atype == "integer" else "precision")
    if atype == "list":
        return Verdict(pred == answer, "ok", "list")  # str(extraction) == answer: "[2,4]" is not "[2, 4]"
    return Verdict(pred == answer, "ok", "exact")


# ------------------------------------------------------------------- MathVerse
_LABEL_RE = re.compile(r"^[^=]*?[A-Za-z][^=]*=\s*")
_TRAIL_UNIT_RE = re.compile(
    r"\s*(?:\\mathrm\s*\{[^{}]*\}|\\text\s*\{[^{}]*\}|(?<=\d)\s*(?:[a-zA-Z]{1,3}))(?:\s*\^\s*\{?\s*\d\s*\}?)?\s*$"
)


def mathverse_gold(answer: str) -> str:
    """A MathVerse free-form gold as a grader expects it.

    ``Surface Area $=9236.28 \\mathrm{~m}^{2}$`` -> ``9236.28``; ``Center $=(20,10)$``
    -> ``(20,10)``; ``$y=2x+1$`` stays an equation; plain answers are unchanged.
    """
    s = answer.strip()
    if "=" in s:
        left = s.split("=", 1)[0]
        words = re.sub(r"\\[A-Za-z]+|[$\\{}()]", " ", left).split()
        # a label of words ("Surface Area", "Center"), not an equation's variable ("y", "x^2")
        if words and all(len(w) >= 3 and w.isalpha() for w in words):
            s = s.split("=", 1)[1]
    s = s.replace("\\$", "").replace("$", "").strip()
    for _ in range(2):
        t = _TRAIL_UNIT_RE.sub("", s).strip()
        if t and re.search(r"\d|\)|\}", t):
            s = t
    return s.strip().rstrip(".").strip()


def mathverse_verdict(pred: str | None, item: DataItem, timeout: float = 5.0) -> Verdict:
    if item.answer_type == "multiple_choice":
        return reward_grade(pred, item.ground_truth, item, timeout, options=item.options, answer_type="multiple_choice")
    # srpo_reward reads the release's forms itself (normalize_ground_truth, issue 10); this
    # module's mathverse_gold is the fallback for what it leaves (e.g. a trailing unit word)
    v = reward_grade(pred, item.ground_truth, item, timeout)
    gold = mathverse_gold(item.ground_truth)
    if not v.correct and gold != item.ground_truth:
        alt = reward_grade(pred, gold, item, timeout)
        if alt.correct:
            return alt
    return v


# ------------------------------------------------------------------ MathVision
def mathvision_verdict(pred: str | None, item: DataItem, timeout: float = 5.0) -> Verdict:
    if item.answer_type != "multiple_choice" or not item.options:
        return reward_grade(pred, item.ground_truth, item, timeout, answer_type=item.answer_type)
    v = reward_grade(pred, item.ground_truth, item, timeout, options=item.options, answer_type="multiple_choice")
    if v.correct or v.status != "ok":
        return v
    k = LETTERS.find(item.ground_truth.strip().upper())
    if 0 <= k < len(item.options) and _bare(pred):
        value = item.options[k]
        if same_text(_bare(pred), value) or reward_grade(pred, value, item, timeout).correct:
            return Verdict(True, "ok", "option_text")
    return v


# -------------------------------------------------------------------- MMMU-Pro
def mmmu_pro_letter(pred: str, options: Sequence[str]) -> str | None:
    """The option letter of an answer by MMMU-Pro's candidate rules, or None (the official scorer guesses)."""
    from srpo_reward.grading import choice_letter

    letters = LETTERS[: len(options)]
    letter = choice_letter(pred, options, letters)
    if letter is not None:
        return letter
    s = " " + pred.strip().strip(",.!?;:'") + " "
    found = [(s.rfind(f"({c})"), c) for c in letters if f"({c})" in s]
    if not found:
        found = [(s.rfind(f" {c} "), c) for c in letters if f"{c} " in s]
    if not found:
        found = [(s.rfind(f"{c}."), c) for c in letters if f"{c}." in s]
    if not found and len(s.split()) > 5:
        low = s.lower()
        found = [(low.rfind(o.lower()), c) for c, o in zip(letters, options) if o and o.lower() in low]
    if not found:
        return None
    return max(found)[1]


def mmmu_pro_verdict(pred: str | None, item: DataItem, timeout: float = 5.0) -> Verdict:
    pred = _bare(pred)
    if not pred:
        return Verdict(False, "no_answer", "none")
    letter = mmmu_pro_letter(pred, list(item.options) or list(LETTERS[:10]))
    if letter is None:
        return Verdict(False, "no_choice", "choice")
    return Verdict(letter == item.ground_truth.strip().upper(), "ok", "choice")


RULES = {
    "mathvista": mathvista_verdict,
    "mathverse": mathverse_verdict,
    "mathvision": mathvision_verdict,
    "mmmu_pro": mmmu_pro_verdict,
    "mmmu_pro_vision": mmmu_pro_verdict,
}


def official_verdict(pred: str | None, item: DataItem, timeout: float = 5.0) -> Verdict:
    """The benchmark's official rule; ``srpo_reward``'s grader for any other benchmark."""
    rule = RULES.get(item.benchmark)
    if rule is None:
        return reward_grade(pred, item.ground_truth, item, timeout, options=item.options, answer_type=item.answer_type)
    try:
        return rule(pred, item, timeout)
    except Exception:  # a rule bug must not take the report down; counted as status "error"
        return Verdict(False, "error", "none")
