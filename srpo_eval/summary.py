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


def metrics(
    results: Sequence[SampleResult],
    question_ids: Iterable[str],
    target_ratio: float = 2.0,
    max_ratio: float = 2.5,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """All numbers of one benchmark (or of all of them) from its graded responses."""
    from srpo_eval.stats import accuracy_block, sampling_block

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
        #: Per-question accuracy with 95% bootstrap intervals (what Table 1 shows).
        "accuracy": accuracy_block(results, n_boot),
        "reflection": reflection_block(results),
        #: pass@k / maj@k, when questions have several samples.
        "sampling": sampling_block(results),
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
    n_boot: int = 2000,
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
            b: {**metrics(rs, ids_by_bench.get(b, []), target_ratio, max_ratio, n_boot), "breakdowns": breakdowns(rs, data, b)}
            for b, rs in sorted(by_bench.items())
        },
        #: Pooled over every response: MathVerse's 3,940 rows dominate it; Table 1 uses ``table1``.
        "overall": metrics(results, data.items.keys(), target_ratio, max_ratio, n_boot),
        "table1": table1(results, n_boot),
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


# ------------------------------------------------------- breakdowns and Table 1
#: Per benchmark, the ``extra_info`` fields the official scorers break results down by
#: (MathVista: task and skills, a question counting once per skill; MathVerse: problem
#: version; MathVision: subject and level; MMMU-Pro: subject), and a label for each.
BREAKDOWNS: dict[str, tuple[tuple[str, str], ...]] = {
    "mathvista": (("task", "task"), ("skills", "skill"), ("subject", "category"), ("question_type", "question type")),
    "mathverse": (("variant", "problem version"), ("subject", "subject")),
    "mathvision": (("subject", "subject"), ("level", "level")),
    "mmmu_pro": (("subject", "subject"),),
    "mmmu_pro_vision": (("subject", "subject"),),
}
#: Fields holding several values in one string (``srpo_eval.convert.SKILLS_SEP``).
MULTI_VALUED = {"skills": "; "}

#: The paper's Table 1 columns and the benchmarks each one averages (MMMU-Pro's official
#: overall is the mean of its standard (10 options) and vision settings).
TABLE1_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("MathVista", ("mathvista",)),
    ("MathVerse", ("mathverse",)),
    ("MathVision", ("mathvision",)),
    ("MMMU-Pro", ("mmmu_pro", "mmmu_pro_vision")),
)


def breakdowns(results: Sequence[SampleResult], data: DataSet, benchmark: str) -> dict[str, Any]:
    """Per category of each breakdown field: questions, responses, final and first accuracy."""
    out: dict[str, Any] = {}
    for field, label in BREAKDOWNS.get(benchmark, ()):
        groups: dict[str, list[SampleResult]] = {}
        for r in results:
            raw = data.items[r.id].extra_info.get(field) if r.id in data.items else None
            if raw is None or raw == "":
                continue
            values = str(raw).split(MULTI_VALUED[field]) if field in MULTI_VALUED else [str(raw)]
            for v in values:
                groups.setdefault(v.strip(), []).append(r)
        if not groups:
            continue
        out[field] = {
            "label": label,
            "categories": {
                v: {
                    "questions": len({r.id for r in rs}),
                    "responses": len(rs),
                    "acc_final": _rate(sum(r.final_correct for r in rs), len(rs)),
                    "acc_first": _rate(sum(r.first_correct for r in rs), len(rs)),
                }
                for v, rs in sorted(groups.items())
            },
        }
    return out


def reflection_block(results: Sequence[SampleResult]) -> dict[str, Any]:
    """The reflection table's numbers: answer changed, lengths and real tokens per transition."""
    well = [r for r in results if r.format_ok]
    per: dict[str, Any] = {}
    for t in TRANSITIONS:
        rs = [r for r in results if r.transition == t]
        toks = [r.response_tokens for r in rs if r.response_tokens is not None]
        per[t] = {
            "responses": len(rs),
            "length_mean": statistics.fmean([r.len_total for r in rs]) if rs else None,
            "tokens_mean": statistics.fmean(toks) if toks else None,
            "tokens_n": len(toks),
        }
    return {
        "answer_changed": sum(r.answer_changed for r in well),
        "answer_changed_rate": _rate(sum(r.answer_changed for r in well), len(well)),
        "by_transition": per,
        "judged": sum(r.answer_source == "judge" for r in results),
        "no_answer": sum(r.answer_source == "none" for r in results),
    }


def table1(results: Sequence[SampleResult], n_boot: int = 2000) -> dict[str, Any]:
    """One run's row of Table 1: per column the accuracy (final answer) with its interval, and the average."""
    import numpy as np

    from srpo_eval.stats import bootstrap_draws, interval, question_scores

    by_bench: dict[str, list[SampleResult]] = {}
    for r in results:
        by_bench.setdefault(r.benchmark, []).append(r)
    row: dict[str, Any] = {}
    col_draws, col_accs = [], []
    for k, (col, benches) in enumerate(TABLE1_COLUMNS):
        parts = [b for b in benches if by_bench.get(b)]
        if not parts:
            row[col] = {"accuracy": None, "ci95": None, "benchmarks": [], "questions": 0}
            continue
        scores = [list(question_scores(by_bench[b]).values()) for b in parts]
        acc = float(np.mean([np.mean(s) for s in scores]))
        draws = np.mean([bootstrap_draws(s, n_boot, 100 * k + j) for j, s in enumerate(scores)], axis=0)
        row[col] = {"accuracy": acc, "ci95": interval(draws), "benchmarks": parts, "questions": sum(map(len, scores))}
        col_draws.append(draws)
        col_accs.append(acc)
    row["average"] = {
        "accuracy": float(np.mean(col_accs)) if col_accs else None,
        "ci95": interval(np.mean(col_draws, axis=0)) if col_draws else None,
        "columns": [c for c, _ in TABLE1_COLUMNS if row[c]["accuracy"] is not None],
    }
    return row


def table1_difference(first: Sequence[SampleResult], second: Sequence[SampleResult], n_boot: int = 2000) -> dict[str, Any]:
    """Second minus first run per Table 1 column over the questions both answered (paired bootstrap)."""
    import numpy as np

    from srpo_eval.stats import bootstrap_draws, interval, paired_binary, question_scores

    out: dict[str, Any] = {}
    col_draws, col_diffs = [], []
    for k, (col, benches) in enumerate(TABLE1_COLUMNS):
        diffs, draws, tests = [], [], {}
        for j, b in enumerate(benches):
            sa = question_scores([r for r in first if r.benchmark == b])
            sb = question_scores([r for r in second if r.benchmark == b])
            common = sorted(set(sa) & set(sb))
            if not common:
                continue
            d = [sb[q] - sa[q] for q in common]
            diffs.append(float(np.mean(d)))
            draws.append(bootstrap_draws(d, n_boot, 100 * k + j))
            a0 = {r.id: r.final_correct for r in sorted(first, key=lambda r: -r.sample) if r.benchmark == b}
            b0 = {r.id: r.final_correct for r in sorted(second, key=lambda r: -r.sample) if r.benchmark == b}
            tests[b] = paired_binary([a0[q] for q in common], [b0[q] for q in common], n_boot)
        if not diffs:
            out[col] = {"difference": None, "ci95": None, "tests": {}}
            continue
        cd = np.mean(draws, axis=0)
        out[col] = {"difference": float(np.mean(diffs)), "ci95": interval(cd), "tests": tests}
        col_draws.append(cd)
        col_diffs.append(float(np.mean(diffs)))
    out["average"] = {
        "difference": float(np.mean(col_diffs)) if col_diffs else None,
        "ci95": interval(np.mean(col_draws, axis=0)) if col_draws else None,
    }
    return out
