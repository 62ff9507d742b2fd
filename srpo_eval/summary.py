"""Aggregate graded rollouts into the report's numbers (pure functions over plain data).

Definitions (per benchmark and over all benchmarks; every response counts once):

- ``acc_first`` / ``acc_final``: share of responses whose first / final answer is right;
- ``transitions``: counts of right_right, wrong_right, right_wrong, wrong_wrong
  (first answer, then final answer), summing to ``responses``;
- ``fix_rate = wrong_right / (wrong_right + wrong_wrong)`` (of the first answers that were
  wrong, the share the reflection fixed), ``harm_rate = right_wrong / (right_right + right_wrong)``
  (of the first answers that were right, the share the reflection broke); None when the
  denominator is 0;
- ``format_failure_rate``: share of responses without the five-block format;
- lengths in ``srpo_reward``'s unit; ``ratio_to_target = L / (len_target_ratio * L1)``
  for well-formed responses (1.0 is what the length reward pays most for).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from srpo_eval.data import DataSet
from srpo_eval.rollouts import ERRORS, Rollout
from srpo_eval.scoring import TRANSITIONS, SampleResult

#: How many bad lines are listed by origin (file:line) in the JSON.
MAX_LISTED = 50


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean, median, p10, p90, min, max of a list of numbers (None entries when empty)."""
    vals = sorted(float(v) for v in values)
    n = len(vals)
    if not n:
        return {"n": 0, "mean": None, "median": None, "p10": None, "p90": None, "min": None, "max": None}

    def q(p: float) -> float:
        k = (n - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)

    return {
        "n": n,
        "mean": statistics.fmean(vals),
        "median": q(0.5),
        "p10": q(0.1),
        "p90": q(0.9),
        "min": vals[0],
        "max": vals[-1],
    }


def transition_block(results: Sequence[SampleResult]) -> dict[str, Any]:
    counts = Counter(r.transition for r in results)
    cells = {t: counts.get(t, 0) for t in TRANSITIONS}
    first_wrong = cells["wrong_right"] + cells["wrong_wrong"]
    first_right = cells["right_right"] + cells["right_wrong"]
    return {
        "responses": len(results),
        "transitions": cells,
        "transition_rates": {t: _rate(c, len(results)) for t, c in cells.items()},
        "fix_rate": _rate(cells["wrong_right"], first_wrong),
        "harm_rate": _rate(cells["right_wrong"], first_right),
    }


def length_block(results: Sequence[SampleResult], target_ratio: float = 2.0, max_ratio: float = 2.5) -> dict[str, Any]:
    well = [r for r in results if r.format_ok and r.len_first]
    ratios = [r.len_total / (target_ratio * r.len_first) for r in well]
    # f_len >= exp(-1) exactly when |L - T| <= T_max - T, i.e. the ratio lies in this band.
    band = (max_ratio - target_ratio) / target_ratio
    return {
        "target_ratio": target_ratio,
        "first_attempt": describe([r.len_first for r in well]),
        "reflection": describe([r.len_reflection for r in well if r.len_reflection is not None]),
        "total": describe([r.len_total for r in results]),
        "total_well_formed": describe([r.len_total for r in well]),
        "ratio_to_target": describe(ratios),
        "share_near_target": _rate(sum(1 for x in ratios if abs(x - 1.0) <= band), len(ratios)),
    }


def metrics(results: Sequence[SampleResult], question_ids: Iterable[str], target_ratio: float = 2.0, max_ratio: float = 2.5) -> dict[str, Any]:
    """All numbers of one benchmark (or of all of them) from its graded responses."""
    qids = set(question_ids)
    answered = {r.id for r in results}
    n = len(results)
    statuses: Counter[str] = Counter()
    for r in results:
        statuses[f"first:{r.first_status}"] += 1
        statuses[f"final:{r.final_status}"] += 1
    failures = Counter(r.format_reason for r in results if not r.format_ok)
    block = transition_block(results)
    well = [r for r in results if r.format_ok]
    return {
        "questions": len(qids),
        "questions_answered": len(answered & qids),
        "questions_missing": len(qids - answered),
        #: The ids of those questions (the first MAX_LISTED, sorted).
        "missing_ids": sorted(qids - answered)[:MAX_LISTED],
        "responses": n,
        "acc_first": _rate(sum(r.first_correct for r in results), n),
        "acc_final": _rate(sum(r.final_correct for r in results), n),
        **{k: block[k] for k in ("transitions", "transition_rates", "fix_rate", "harm_rate")},
        "well_formed": transition_block(well),
        "format_failure_rate": _rate(n - len(well), n),
        "format_failures": dict(sorted(failures.items())),
        "truncated": sum(r.truncated for r in results),
        "truncated_rate": _rate(sum(r.truncated for r in results), n),
        "no_first_answer": sum(not r.has_first_answer for r in results),
        "grade_status": {k: v for k, v in sorted(statuses.items()) if not k.endswith(":ok")},
        "lengths": length_block(results, target_ratio, max_ratio),
    }


def input_block(rollouts: Sequence[Rollout], results: Sequence[SampleResult]) -> dict[str, Any]:
    """What was read and what could not be used (never dropped silently: every line is here)."""
    errors = Counter(r.error for r in rollouts if r.error)
    bad = [{"origin": r.origin, "error": r.error, "id": r.id} for r in rollouts if r.error]
    keys = Counter((r.id, r.sample) for r in results)
    return {
        "records": len(rollouts),
        "usable": len(results),
        "unusable": sum(errors.values()),
        "errors": {code: errors.get(code, 0) for code in ERRORS},
        "error_meanings": ERRORS,
        "unusable_examples": bad[:MAX_LISTED],
        "matched_by_text_ambiguous": sum(1 for r in rollouts if r.ambiguous and not r.error),
        "duplicate_samples": sum(c - 1 for c in keys.values() if c > 1),
    }


def summarize_run(
    name: str,
    rollouts: Sequence[Rollout],
    results: Sequence[SampleResult],
    data: DataSet,
    target_ratio: float = 2.0,
    max_ratio: float = 2.5,
) -> dict[str, Any]:
    """The JSON summary of one run: input problems, data problems, per-benchmark and overall metrics."""
    by_bench: dict[str, list[SampleResult]] = {b: [] for b in data.benchmarks()}
    for r in results:
        by_bench.setdefault(r.benchmark, []).append(r)
    ids_by_bench: dict[str, list[str]] = {b: [] for b in by_bench}
    for it in data.items.values():
        ids_by_bench.setdefault(it.benchmark, []).append(it.id)
    return {
        "run": name,
        "input": input_block(rollouts, results),
        "data": {
            "questions": len(data.items),
            "duplicate_ids": data.duplicate_ids[:MAX_LISTED],
            "duplicate_id_count": len(data.duplicate_ids),
            "missing_ground_truth": data.missing_ground_truth[:MAX_LISTED],
            "missing_ground_truth_count": len(data.missing_ground_truth),
        },
        "benchmarks": {
            b: metrics(rs, ids_by_bench.get(b, []), target_ratio, max_ratio) for b, rs in sorted(by_bench.items())
        },
        "overall": metrics(results, data.items.keys(), target_ratio, max_ratio),
    }


#: Metrics shown side by side for two runs (key path, label, is a rate).
COMPARE_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("acc_first", "acc first", True),
    ("acc_final", "acc final", True),
    ("transitions.right_right", "right-right", False),
    ("transitions.wrong_right", "wrong-right", False),
    ("transitions.right_wrong", "right-wrong", False),
    ("transitions.wrong_wrong", "wrong-wrong", False),
    ("fix_rate", "fix rate", True),
    ("harm_rate", "harm rate", True),
    ("format_failure_rate", "format failure rate", True),
    ("truncated_rate", "truncated rate", True),
    ("lengths.first_attempt.mean", "first attempt length (mean)", False),
    ("lengths.reflection.mean", "reflection length (mean)", False),
    ("lengths.total.mean", "response length (mean)", False),
    ("lengths.ratio_to_target.median", "L / (2 L1) (median)", False),
)


def lookup(d: Mapping[str, Any], path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def compare(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Side by side: for each benchmark (and overall), each metric of each run and last minus first."""
    names = [r["run"] for r in runs]
    scopes = sorted({b for r in runs for b in r["benchmarks"]}) + ["overall"]
    out: dict[str, Any] = {"runs": names, "scopes": {}}
    for scope in scopes:
        rows = {}
        for path, _label, _is_rate in COMPARE_ROWS:
            vals = [lookup(r["overall"] if scope == "overall" else r["benchmarks"].get(scope, {}), path) for r in runs]
            delta = vals[-1] - vals[0] if all(isinstance(v, (int, float)) for v in vals) else None
            rows[path] = {"values": vals, "delta": delta}
        out["scopes"][scope] = rows
    return out
