"""Ground truths as the grader reads them: :func:`normalize_ground_truth` turns a dataset's
``ground_truth`` (a string, a number, a numpy scalar, a list of acceptable answers) into the
tuple of acceptable answer strings, normalised (lead-ins, LaTeX ``%``, thousands separators,
descriptive left-hand sides).  Public: ``srpo_eval`` and stage 1 read golds with it too."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from .plain_number import collapse_thousands, parse_number
from .text import normalize_text

_UNESCAPED_PCT_RE = re.compile(r"(?<!\\)%")
#: A descriptive left-hand side (two or more words, or ``\text{..}``), as MathVerse writes
#: free-form answers: ``Surface Area $=9236.28 \mathrm{~m}^{2}$``.
_DESCRIPTIVE_LHS_RE = re.compile(
    r"^\s*(?:\\text\s*\{[^{}$=]*\}|[A-Za-z][A-Za-z'’]*(?:\s+[A-Za-z'’()]+)+|[A-Za-z]{2,}[A-Za-z'’]*)\s*(\$*)\s*=\s*(?=\S)"
)

#: The lead-in of a gold written as a sentence, as MathV360K's answers read (``The answer is
#: 5``) and Mulberry's search inputs (``Answer:B``): it is not part of the answer.
_GOLD_LEAD_IN_RE = re.compile(r"^(?:(?:the\s+)?(?:final\s+)?answer\s+is\s*:?|answer\s*:)\s*(?=\S)", re.I)
#: An option letter with its value, as Mulberry's final answers read (``A: 57``, ``(B) 45``):
#: the letter and the value are each an acceptable answer.
_GOLD_LETTER_VALUE_RE = re.compile(r"^(?:([A-J])\s*:|\(([A-J])\))\s*(\S.*)$")

def normalize_ground_truth(gold: Any) -> tuple[str, ...]:
    """The acceptable answers a ground truth names, normalised the way the grader reads them.

    Public so that benchmark scoring (``srpo_eval``) and stage 1 (``srpo_data.stage1.builder``) read
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
        s = collapse_thousands(s)
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
