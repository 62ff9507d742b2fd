"""The reflection report: did the reflections help?

    python -m srpo_eval.report ROLLOUTS.jsonl [OTHER.jsonl] --data FILE.parquet [FILE2.parquet ...] --out DIR

Reads rollouts (ours, a user's JSONL of responses, or verl's validation dump),
grades the first and final answers by each benchmark's official rule
(:mod:`srpo_eval.official`; optionally with answers extracted by a judge,
:mod:`srpo_eval.judge`), and writes to ``DIR``:

- ``summary.json``: every number, per run and per benchmark (with per-category
  breakdowns, 95% intervals, pass@k/maj@k), the Table-1 row of each run, plus the
  side-by-side and paired comparison when two runs are given (for scripts);
- ``report.md``: Table 1 (rows: runs; columns: MathVista, MathVerse, MathVision,
  MMMU-Pro, average), the reflection table, the breakdowns, then the details;
- ``transitions.png`` and ``lengths.png`` (see :mod:`srpo_eval.plots`);
- ``samples-<run>.jsonl``: one graded line per response.

Lines that cannot be used (bad JSON, missing fields, unknown ids, dump records
whose question cannot be found) and questions without any response are counted
and listed, never dropped silently.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from srpo_eval.data import DataSet, load_data
from srpo_eval.rollouts import Rollout, read_rollouts
from srpo_eval.scoring import TRANSITIONS, SampleResult, score_rollout
from srpo_eval.summary import COMPARE_ROWS, compare, summarize_run


def score_all(
    rollouts: Sequence[Rollout],
    data: DataSet,
    unit: str,
    timeout: float,
    desc: str = "grading",
    judged: Mapping[tuple[str, int], str] | None = None,
) -> list[SampleResult]:
    """Grade every usable rollout (those without ``error``), with a progress bar.

    ``judged`` maps (id, sample) to the judge's extracted answer, for responses without one.
    """
    from tqdm import tqdm

    judged = judged or {}
    usable = [r for r in rollouts if not r.error and r.id is not None and r.response is not None]
    return [
        score_rollout(r, data.items[r.id], unit=unit, timeout=timeout, judged_answer=judged.get((r.id, r.sample)))
        for r in tqdm(usable, desc=desc, unit="resp")
    ]


def paired_block(names: Sequence[str], results_by_run: Mapping[str, Sequence[SampleResult]], n_boot: int) -> dict[str, Any]:
    """Last run vs first run: coverage warning, paired tests per benchmark and overall, Table 1 differences."""
    from srpo_eval.stats import coverage_warning, paired_comparison
    from srpo_eval.summary import table1_difference

    a, b = results_by_run[names[0]], results_by_run[names[-1]]
    benches = sorted({r.benchmark for r in a} | {r.benchmark for r in b})
    return {
        "paired_runs": [names[0], names[-1]],
        "coverage_warning": coverage_warning(names, [{r.id for r in results_by_run[n]} for n in names]),
        "paired": {
            **{x: paired_comparison([r for r in a if r.benchmark == x], [r for r in b if r.benchmark == x], n_boot) for x in benches},
            "overall": paired_comparison(a, b, n_boot),
        },
        "table1_difference": table1_difference(a, b, n_boot),
    }


# ------------------------------------------------------------------------ markdown
def _fmt(v: Any, rate: bool = False) -> str:
    if v is None:
        return "n/a"
    if rate:
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _run_markdown(run: Mapping[str, Any]) -> list[str]:
    lines = [f"## Run `{run['run']}`", ""]
    scopes = list(run["benchmarks"].items()) + [("overall", run["overall"])]
    lines += [
        "| benchmark | questions | answered | responses | acc first | acc final | right→right | wrong→right | right→wrong | wrong→wrong | fix rate | harm rate | format failures | truncated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in scopes:
        t = m["transitions"]
        lines.append(
            f"| {name} | {m['questions']} | {m['questions_answered']} | {m['responses']} | {_fmt(m['acc_first'], True)} | "
            f"{_fmt(m['acc_final'], True)} | " + " | ".join(str(t[c]) for c in TRANSITIONS) + " | "
            f"{_fmt(m['fix_rate'], True)} | {_fmt(m['harm_rate'], True)} | {_fmt(m['format_failure_rate'], True)} | {m['truncated']} |"
        )
    lines += ["", "Lengths (srpo_reward's length unit; first attempt and reflection over well-formed responses):", ""]
    lines += [
        "| benchmark | first attempt mean | reflection mean | response mean | L / (2 L1) median | L / (2 L1) p10-p90 | near target |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in scopes:
        lg = m["lengths"]
        r = lg["ratio_to_target"]
        band = "n/a" if r["p10"] is None else f"{r['p10']:.2f}-{r['p90']:.2f}"
        lines.append(
            f"| {name} | {_fmt(lg['first_attempt']['mean'])} | {_fmt(lg['reflection']['mean'])} | {_fmt(lg['total']['mean'])} | "
            f"{_fmt(r['median'])} | {band} | {_fmt(lg['share_near_target'], True)} |"
        )
    failures = run["overall"]["format_failures"]
    if failures:
        lines += ["", "Format failures by reason: " + ", ".join(f"`{k}` {v}" for k, v in failures.items())]
    wf = run["overall"]["well_formed"]
    lines += [
        "",
        f"Among the {wf['responses']} well-formed responses: fix rate {_fmt(wf['fix_rate'], True)}, "
        f"harm rate {_fmt(wf['harm_rate'], True)}.",
    ]
    inp = run["input"]
    lines += ["", f"Input: {inp['records']} records, {inp['usable']} graded, {inp['unusable']} unusable."]
    for code, count in inp["errors"].items():
        if count:
            lines.append(f"- `{code}` ({inp['error_meanings'][code]}): {count}")
    if inp["matched_by_text_ambiguous"]:
        lines.append(
            f"- verl dump records whose prompt matched several questions graded identically (assigned to the first): "
            f"{inp['matched_by_text_ambiguous']}"
        )
    if inp["duplicate_samples"]:
        lines.append(f"- duplicate (id, sample) pairs: {inp['duplicate_samples']}")
    missing = run["overall"]["questions_missing"]
    if missing:
        ids = run["overall"]["missing_ids"]
        more = f" (first {len(ids)} listed)" if len(ids) < missing else ""
        lines.append(f"- questions of the data without any response: {missing}{more}: " + ", ".join(f"`{i}`" for i in ids))
    d = run["data"]
    if d["duplicate_id_count"] or d["missing_ground_truth_count"]:
        lines.append(
            f"- data problems: {d['duplicate_id_count']} duplicate ids, {d['missing_ground_truth_count']} rows without ground truth"
        )
    return lines + [""]


def _acc_ci(cell: Mapping[str, Any] | None) -> str:
    if not cell or cell.get("accuracy") is None:
        return "n/a"
    ci = cell.get("ci95")
    band = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
    return f"{100 * cell['accuracy']:.1f}{band}"


def _diff_ci(cell: Mapping[str, Any] | None, p: float | None = None) -> str:
    if not cell or cell.get("difference") is None:
        return "n/a"
    ci = cell.get("ci95")
    band = f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else ""
    ptxt = f", p={p:.3g}" if p is not None else ""
    return f"{100 * cell['difference']:+.1f}{band}{ptxt}"


def table1_markdown(runs: Sequence[Mapping[str, Any]], comparison: Mapping[str, Any] | None) -> list[str]:
    """Rows: runs; columns: the paper's four benchmarks and their unweighted average."""
    from srpo_eval.summary import TABLE1_COLUMNS

    cols = [c for c, _ in TABLE1_COLUMNS]
    lines = [
        "## Accuracy (as in the paper's Table 1)",
        "",
        "Final-answer accuracy in %, [95% bootstrap interval over questions]; each benchmark scored by its "
        "official rule; MMMU-Pro is the mean of its standard (10 options) and vision settings; average is the "
        "unweighted mean of the columns present.",
        "",
        "| run | " + " | ".join(cols) + " | average |",
        "|---|" + "---:|" * (len(cols) + 1),
    ]
    for run in runs:
        t = run["table1"]
        lines.append(f"| {run['run']} | " + " | ".join(_acc_ci(t[c]) for c in cols) + f" | {_acc_ci(t['average'])} |")
    if comparison is not None and comparison.get("table1_difference"):
        a, b = comparison["paired_runs"]
        d = comparison["table1_difference"]
        cells = []
        for c in cols:
            tests = d[c].get("tests") or {}
            p = next(iter(tests.values()))["mcnemar_p"] if len(tests) == 1 else None
            cells.append(_diff_ci(d[c], p))
        lines.append(f"| {b} − {a} (paired) | " + " | ".join(cells) + f" | {_diff_ci(d['average'])} |")
        lines += ["", "The difference row uses only the questions both runs answered; p is McNemar's exact test "
                  "on the first sample of each question."]
    notes = []
    for run in runs:
        for c, benches in TABLE1_COLUMNS:
            cell = run["table1"][c]
            if cell["benchmarks"] and len(cell["benchmarks"]) < len(benches):
                notes.append(f"`{run['run']}` {c}: only {', '.join(cell['benchmarks'])}")
    if notes:
        lines += ["", "Partial columns: " + "; ".join(notes) + "."]
    if comparison is not None and comparison.get("coverage_warning"):
        lines += ["", f"**Warning:** {comparison['coverage_warning']}."]
    return lines + [""]


def reflection_markdown(runs: Sequence[Mapping[str, Any]], comparison: Mapping[str, Any] | None) -> list[str]:
    lines = [
        "## Reflection",
        "",
        "| run | fix rate | harm rate | answer changed | length RR | length WR | length RW | length WW | tokens RR | tokens WR | tokens RW | tokens WW | judged |",
        "|---|" + "---:|" * 12,
    ]
    for run in runs:
        o = run["overall"]
        rb = o["reflection"]
        per = rb["by_transition"]
        lens = " | ".join(_fmt(per[t]["length_mean"]) for t in TRANSITIONS)
        toks = " | ".join(_fmt(per[t]["tokens_mean"]) for t in TRANSITIONS)
        lines.append(
            f"| {run['run']} | {_fmt(o['fix_rate'], True)} | {_fmt(o['harm_rate'], True)} | "
            f"{_fmt(rb['answer_changed_rate'], True)} | {lens} | {toks} | {rb['judged']} |"
        )
    lines += [
        "",
        "RR/WR/RW/WW: right→right, wrong→right, right→wrong, wrong→wrong.  Answer changed: share of well-formed "
        "responses whose A2 differs from A1.  Length: srpo_reward's length unit; tokens: the policy's own count "
        "(n/a when the rollouts do not carry it).  Judged: responses whose answer the judge extracted.",
    ]
    for run in runs:
        if run.get("judge"):
            j = run["judge"]
            lines += ["", f"Judge for `{run['run']}`: `{j['model']}` at {j['base_url']}, prompt `{Path(j['prompt_file']).name}`; "
                      f"{j.get('needed', 0)} responses without a usable `<answer>`, {j.get('decided', 0)} answers extracted "
                      f"({j.get('cached', 0)} from the cache), {j.get('no_answer', 0)} with none; failures: "
                      + (", ".join(f"{k[7:]} {v}" for k, v in j.items() if k.startswith("failed:")) or "none")
                      + f".  The judged responses have `answer_source: \"judge\"` in `samples-{run['run']}.jsonl`."]
    if comparison is not None and comparison.get("paired"):
        a, b = comparison["paired_runs"]
        lines += ["", f"Paired, `{b}` − `{a}` over the questions both answered (first sample each):", "",
                  "| benchmark | questions | accuracy | fix rate (both first wrong) | harm rate (both first right) |",
                  "|---|---:|---:|---:|---:|"]
        for scope, pc in comparison["paired"].items():
            cells = []
            for key in ("accuracy", "fix_rate", "harm_rate"):
                x = pc[key]
                if not x["n"]:
                    cells.append("n/a")
                    continue
                cells.append(f"{_fmt(x['rate_a'], True)} → {_fmt(x['rate_b'], True)}, {_diff_ci(x, x['mcnemar_p'])} (n={x['n']})")
            lines.append(f"| {scope} | {pc['questions_common']} | " + " | ".join(cells) + " |")
    return lines + [""]


def breakdown_markdown(run: Mapping[str, Any]) -> list[str]:
    lines = [f"### Per category, `{run['run']}`", ""]
    any_rows = False
    for bench, m in run["benchmarks"].items():
        for field, bd in (m.get("breakdowns") or {}).items():
            any_rows = True
            lines += [f"{bench}, by {bd['label']}:", "", f"| {bd['label']} | questions | acc final | acc first |", "|---|---:|---:|---:|"]
            for v, c in bd["categories"].items():
                lines.append(f"| {v} | {c['questions']} | {_fmt(c['acc_final'], True)} | {_fmt(c['acc_first'], True)} |")
            lines.append("")
        samp = m.get("sampling")
        if samp:
            any_rows = True
            ks = list(samp["pass_at"])
            lines += [f"{bench}, {samp['samples_min']}-{samp['samples_max']} samples per question:", "",
                      "| k | " + " | ".join(ks) + " |", "|---|" + "---:|" * len(ks),
                      "| pass@k | " + " | ".join(_fmt(samp["pass_at"][k], True) for k in ks) + " |",
                      "| maj@k | " + " | ".join(_fmt(samp["maj_at"][k], True) for k in ks) + " |", ""]
    return lines if any_rows else []


def render_markdown(runs: Sequence[Mapping[str, Any]], comparison: Mapping[str, Any] | None) -> str:
    lines = ["# SRPO evaluation report", ""]
    lines += table1_markdown(runs, comparison)
    lines += reflection_markdown(runs, comparison)
    for run in runs:
        lines += breakdown_markdown(run)
    lines += [
        "## Details",
        "",
        "Transitions are first answer → final answer; every response counts once "
        "(a response with a single answer counts as right→right or wrong→wrong). "
        "Fix rate = wrong→right / first wrong; harm rate = right→wrong / first right.",
        "",
        "![transitions](transitions.png)",
        "",
        "![lengths](lengths.png)",
        "",
    ]
    if comparison is not None:
        names = comparison["runs"]
        lines += ["## Side by side", ""]
        for scope, rows in comparison["scopes"].items():
            lines += [f"### {scope}", "", "| metric | " + " | ".join(names) + " | delta |", "|---|" + "---:|" * (len(names) + 1)]
            for path, label, is_rate in COMPARE_ROWS:
                row = rows[path]
                vals = " | ".join(_fmt(v, is_rate) for v in row["values"])
                delta = row["delta"]
                if delta is None:
                    dtxt = "n/a"
                elif is_rate:
                    dtxt = f"{100 * delta:+.1f} pt"
                else:
                    dtxt = f"{delta:+d}" if isinstance(delta, int) else f"{delta:+.2f}"
                lines.append(f"| {label} | {vals} | {dtxt} |")
            lines.append("")
    for run in runs:
        lines += _run_markdown(run)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def build_report(
    rollout_paths: Sequence[str | Path],
    data_paths: Sequence[str | Path],
    out_dir: str | Path,
    names: Sequence[str] | None = None,
    unit: str = "approx_tokens",
    timeout: float = 5.0,
    plots: bool = True,
    n_boot: int = 2000,
    judge: Any = None,
) -> dict[str, Any]:
    """Grade, summarize and write every output file; returns the ``summary.json`` content.

    ``judge`` (a :class:`srpo_eval.judge.Judge`) extracts an answer for responses without
    a usable ``<answer>``; without it the rule path alone decides (the offline default).
    """
    from srpo_reward.config import RewardConfig

    cfg = RewardConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(data_paths)
    if names is None:
        names = [Path(p).stem for p in rollout_paths]
        if len(set(names)) != len(names):
            names = [f"run{i + 1}-{n}" for i, n in enumerate(names)]
    if len(names) != len(rollout_paths):
        raise ValueError(f"--names gives {len(names)} names for {len(rollout_paths)} rollout files")
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:  # each run writes samples-<name>.jsonl: one would overwrite the other
        raise ValueError(f"--names must differ; repeated: {', '.join(dupes)}")
    runs, results_by_run = [], {}
    for name, path in zip(names, rollout_paths):
        rollouts = read_rollouts(path, data)
        judged = judge.extract_all(rollouts, data) if judge is not None else {}
        results = score_all(rollouts, data, unit, timeout, desc=f"grading {name}", judged=judged)
        summary = summarize_run(name, rollouts, results, data, cfg.len_target_ratio, cfg.len_max_ratio, n_boot)
        if judge is not None:
            summary["judge"] = judge.describe()
        summary["rollouts_file"] = str(path)
        runs.append(summary)
        results_by_run[name] = results
        with (out / f"samples-{name}.jsonl").open("w", encoding="utf-8") as f:
            for r in results:
                f.write(json.dumps({**dataclasses.asdict(r), "transition": r.transition}, ensure_ascii=False) + "\n")
    comparison = compare(runs) if len(runs) > 1 else None
    if comparison is not None:
        comparison.update(paired_block(names, results_by_run, n_boot))
    report = {
        "data_files": [str(p) for p in data_paths],
        "length_unit": unit,
        "runs": runs,
        "comparison": comparison,
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(runs, comparison), encoding="utf-8")
    if plots:
        from srpo_eval.plots import plot_lengths, plot_transitions

        plot_transitions(runs, out / "transitions.png")
        plot_lengths(results_by_run, out / "lengths.png", cfg.len_target_ratio)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srpo_eval.report", description=__doc__.split("\n\n")[0])
    p.add_argument("rollouts", nargs="+", help="one rollout JSONL per run (ours, a user's JSONL, or a verl validation dump)")
    p.add_argument("--data", nargs="+", required=True, help="the evaluation parquet file(s) the rollouts answer")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--names", nargs="+", help="run names (default: the rollout file names)")
    p.add_argument("--unit", default="approx_tokens", choices=("approx_tokens", "chars", "words"), help="length unit (default: approx_tokens, srpo_reward's)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per answer for math-verify (default 5)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% intervals (default 2000)")
    p.add_argument("--judge", help="judge.yaml: an OpenAI-compatible endpoint (the stage-1 builder's endpoint fields) "
                   "that extracts answers of responses without a usable <answer>")
    p.add_argument("--judge-cache", help="the judge's append-only cache (default: <out>/judge_cache.jsonl)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        judge = None
        if args.judge:
            from srpo_eval.judge import Judge, load_judge_config

            judge = Judge(load_judge_config(args.judge), Path(args.judge_cache or Path(args.out) / "judge_cache.jsonl"))
        report = build_report(args.rollouts, args.data, args.out, args.names, args.unit, args.timeout, not args.no_plots,
                              n_boot=args.bootstrap, judge=judge)
    except (ValueError, FileNotFoundError, RuntimeError) as e:  # RuntimeError: srpo_eval.judge.JudgeError
        print(f"error: {e}", file=sys.stderr)
        return 2
    for run in report["runs"]:
        o, inp = run["overall"], run["input"]
        print(
            f"[{run['run']}] {inp['records']} records, {inp['usable']} graded, {inp['unusable']} unusable, "
            f"{o['questions_missing']} questions without a response | acc first {_fmt(o['acc_first'], True)} "
            f"final {_fmt(o['acc_final'], True)} | fix {_fmt(o['fix_rate'], True)} harm {_fmt(o['harm_rate'], True)} | "
            f"format failures {_fmt(o['format_failure_rate'], True)} | truncated {o['truncated']}"
        )
    print(f"wrote {Path(args.out) / 'report.md'}, summary.json, transitions.png, lengths.png")
    usable = sum(run["input"]["usable"] for run in report["runs"])
    if usable == 0:
        print("error: no usable rollout in any input (see the report's input section)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
