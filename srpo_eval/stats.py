"""Statistics of the report: intervals, paired tests, pass@k and maj@k (pure functions, numpy/scipy).

- Accuracy of a benchmark is the mean over its answered questions of the question's
  mean correctness over its samples (one sample per question: plain accuracy).
- 95% intervals: percentile bootstrap over questions (``n_boot`` resamples, fixed
  seed, so a report is reproducible).  A mean of benchmarks (the paper's
  unweighted average, MMMU-Pro's mean of its two settings) takes the mean of the
  benchmarks' bootstrap draws.
- Two runs: over the questions both answered, the difference (second minus
  first) with its paired-bootstrap interval, and McNemar's exact test on the first
  sample's correctness (``scipy.stats.binomtest`` on the discordant pairs).  Fix
  rate: over the questions whose first answer was wrong in both runs, did the
  reflection fix it; harm rate: over those right in both, did it break it.
- pass@k: the unbiased estimator ``1 - C(n - c, k) / C(n, k)`` (Chen et al. 2021)
  averaged over questions with at least k samples; maj@k: the most frequent
  final answer among the first k samples (ties: the one seen first) is right.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from srpo_eval.scoring import SampleResult

#: Bootstrap resamples (``--bootstrap``) and the seed of the resampling.
N_BOOT = 2000
SEED = 0
LEVEL = 0.95


def by_question(results: Sequence[SampleResult]) -> dict[str, list[SampleResult]]:
    """Graded responses grouped by question id, each group in sample order."""
    groups: dict[str, list[SampleResult]] = defaultdict(list)
    for r in results:
        groups[r.id].append(r)
    return {q: sorted(rs, key=lambda r: r.sample) for q, rs in groups.items()}


def question_scores(results: Sequence[SampleResult], field: str = "final_correct") -> dict[str, float]:
    """Per question, the mean of ``field`` over its samples."""
    return {q: sum(getattr(r, field) for r in rs) / len(rs) for q, rs in by_question(results).items()}


def bootstrap_draws(values: Sequence[float], n_boot: int = N_BOOT, seed: int = SEED):
    """``n_boot`` bootstrap means of ``values`` (an empty array when there are none)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    return v[idx].mean(axis=1)


def interval(draws, level: float = LEVEL) -> list[float] | None:
    import numpy as np

    if draws is None or len(draws) == 0:
        return None
    a = (1 - level) / 2
    lo, hi = np.quantile(draws, [a, 1 - a])
    return [float(lo), float(hi)]


def accuracy_block(results: Sequence[SampleResult], n_boot: int = N_BOOT) -> dict[str, Any]:
    """Per-question accuracy of the final and first answers with bootstrap intervals."""
    out: dict[str, Any] = {}
    for key, field in (("final", "final_correct"), ("first", "first_correct")):
        scores = list(question_scores(results, field).values())
        out[key] = {
            "accuracy": sum(scores) / len(scores) if scores else None,
            "ci95": interval(bootstrap_draws(scores, n_boot)),
            "questions": len(scores),
        }
    return out


def mean_of_benchmarks(per_bench: Mapping[str, Sequence[float]], n_boot: int = N_BOOT) -> dict[str, Any]:
    """Unweighted mean of benchmark accuracies, with the interval of the mean of their draws."""
    import numpy as np

    parts = {b: v for b, v in per_bench.items() if len(v)}
    if not parts:
        return {"accuracy": None, "ci95": None, "benchmarks": []}
    acc = sum(sum(v) / len(v) for v in parts.values()) / len(parts)
    # a different seed per benchmark: independent resamples of independent question sets
    draws = np.mean([bootstrap_draws(v, n_boot, SEED + k) for k, v in enumerate(parts.values())], axis=0)
    return {"accuracy": acc, "ci95": interval(draws), "benchmarks": sorted(parts)}


# ------------------------------------------------------------------- paired tests
def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts (1.0 when there are none)."""
    from scipy.stats import binomtest

    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


def paired_binary(a: Sequence[bool], b: Sequence[bool], n_boot: int = N_BOOT) -> dict[str, Any]:
    """Difference of two paired binary outcomes (b minus a): rate, paired-bootstrap interval, McNemar."""
    import numpy as np

    n = len(a)
    if n == 0:
        return {"n": 0, "rate_a": None, "rate_b": None, "difference": None, "ci95": None,
                "only_a": 0, "only_b": 0, "mcnemar_p": None}
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    only_a = int(sum(x and not y for x, y in zip(a, b)))
    only_b = int(sum(y and not x for x, y in zip(a, b)))
    return {
        "n": n,
        "rate_a": sum(a) / n,
        "rate_b": sum(b) / n,
        "difference": float(d.mean()),
        "ci95": interval(bootstrap_draws(d, n_boot)),
        "only_a": only_a,
        "only_b": only_b,
        "mcnemar_p": mcnemar_p(only_a, only_b),
    }


def paired_comparison(first: Sequence[SampleResult], second: Sequence[SampleResult], n_boot: int = N_BOOT) -> dict[str, Any]:
    """Second run minus first run over the questions both answered (sample 0 of each, or the lowest)."""
    qa, qb = by_question(first), by_question(second)
    common = sorted(set(qa) & set(qb))
    a0 = [qa[q][0] for q in common]
    b0 = [qb[q][0] for q in common]
    acc = paired_binary([r.final_correct for r in a0], [r.final_correct for r in b0], n_boot)
    wrong_both = [(x, y) for x, y in zip(a0, b0) if not x.first_correct and not y.first_correct]
    right_both = [(x, y) for x, y in zip(a0, b0) if x.first_correct and y.first_correct]
    fix = paired_binary([x.final_correct for x, _ in wrong_both], [y.final_correct for _, y in wrong_both], n_boot)
    harm = paired_binary([not x.final_correct for x, _ in right_both], [not y.final_correct for _, y in right_both], n_boot)
    return {
        "questions_common": len(common),
        "questions_only_first": len(set(qa) - set(qb)),
        "questions_only_second": len(set(qb) - set(qa)),
        "accuracy": acc,
        "fix_rate": fix,
        "harm_rate": harm,
    }


def coverage_warning(names: Sequence[str], answered: Sequence[set[str]]) -> str | None:
    """A sentence when the runs answered different question sets (their numbers are then not comparable)."""
    if len(answered) < 2:
        return None
    union = set().union(*answered)
    common = set.intersection(*map(set, answered))
    if union == common:
        return None
    parts = ", ".join(f"{n} {len(s)}" for n, s in zip(names, answered))
    return (
        f"runs cover different questions ({parts}; {len(common)} in common): their accuracies are over different "
        f"question sets; the paired comparison uses the {len(common)} common ones"
    )


# --------------------------------------------------------------- pass@k, maj@k
def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one question with ``c`` right out of ``n`` samples."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _vote_key(r: SampleResult) -> str | None:
    a = r.final_answer
    return None if not a else " ".join(a.split()).casefold()


def majority_right(samples: Sequence[SampleResult]) -> bool:
    """Is the most frequent final answer (ties: the first seen) right?  No answer at all: wrong."""
    keys = [_vote_key(r) for r in samples]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(k for k in keys if k is not None and votes[k] == top)
    return any(r.final_correct for r, k in zip(samples, keys) if k == winner)


def ks_for(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def sampling_block(results: Sequence[SampleResult]) -> dict[str, Any] | None:
    """pass@k and maj@k when some question has several samples (None otherwise)."""
    groups = by_question(results)
    if not groups:
        return None
    counts = [len(rs) for rs in groups.values()]
    if max(counts) < 2:
        return None
    out: dict[str, Any] = {"samples_min": min(counts), "samples_max": max(counts), "pass_at": {}, "maj_at": {}}
    for k in ks_for(min(counts)):
        out["pass_at"][str(k)] = sum(pass_at_k(len(rs), sum(r.final_correct for r in rs), k) for rs in groups.values()) / len(groups)
        out["maj_at"][str(k)] = sum(majority_right(rs[:k]) for rs in groups.values()) / len(groups)
    return out
