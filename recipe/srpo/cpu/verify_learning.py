"""What the learning run showed, read from its artifacts (``examples/cpu_learn.sh`` prints it).

    python -m recipe.srpo.cpu.verify_learning --workspace WS

Reads verl's console step lines of the two GRPO runs (``WS/logs/grpo.log``: the SRPO reward;
``WS/logs/grpo_baseline.log``: the paper's GRPO baseline, format + accuracy) and the eval report,
and writes:

- ``WS/outputs/learning/steps.csv`` and ``steps.md``: one row per run and step, from the
  ``training/srpo/prefilter/*`` metrics (every response the policy generated that step, before the
  online filter: what the policy really did);
- ``WS/outputs/learning/learning.png``: the same columns as curves, both runs;
- the checks, one ``[PASS]``/``[FAIL]`` line each (exit 1 if any failed), and the reflection
  metrics of both runs, whatever they show.

The SRPO reward of the baseline run is recomputed from its logged per-step means with the
paper's weights (:class:`srpo_reward.RewardConfig` defaults): the reward is linear in the
indicators it logs (format, first-answer accuracy, the four transitions, f_len), and the reflection
term is paid for every well-formed response.  A check recomputes the SRPO run's own logged score
the same way, so the formula is tested on every run.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipe.srpo.cpu.verify_run import Check, parse_step_lines, report_checks
from recipe.srpo.metrics import PREFILTER_PREFIX

RUNS = {"srpo": "grpo.log", "grpo_baseline": "grpo_baseline.log"}

#: Table columns, in order (each computed by :func:`step_row`).
COLUMNS = (
    "srpo_reward", "run_reward", "format", "acc_first", "acc", "fix_rate", "harm_rate", "flipped",
    "response_tokens", "evicted_groups",
)


def srpo_reward_of(m: dict[str, Any], prefix: str = PREFILTER_PREFIX) -> float:
    """The mean SRPO reward (paper weights) of a step, from the means of the indicators the reward logs."""
    from srpo_reward import RewardConfig

    cfg = RewardConfig()
    g = lambda key: float(m[f"{prefix}/{key}/mean"])  # noqa: E731
    return (
        cfg.format_weight * g("format") + cfg.acc_weight * g("acc_first")
        + cfg.eff_fixed * g("fixed") + cfg.eff_kept * g("kept") + cfg.eff_broke * g("broke")
        + cfg.eff_stayed_wrong * g("stayed_wrong") + cfg.ref_weight * g("format") + cfg.len_alpha * g("f_len")
    )


def step_row(m: dict[str, Any]) -> dict[str, float]:
    p = PREFILTER_PREFIX
    g = lambda key, default=math.nan: float(m.get(key, default))  # noqa: E731
    return {
        "srpo_reward": srpo_reward_of(m),
        "run_reward": g(f"{p}/score/mean"),
        "format": g(f"{p}/format/mean"),
        "acc_first": g(f"{p}/acc_first/mean"),
        "acc": g(f"{p}/acc/mean"),
        "fix_rate": g(f"{p}/fix_rate"),
        "harm_rate": g(f"{p}/break_rate"),
        "flipped": g(f"{p}/fixed/mean") + g(f"{p}/broke/mean"),
        "response_tokens": g("response_length/mean"),
        "evicted_groups": g("training/filter_groups/evicted_samples", 0.0),
    }


def read_runs(workspace: Path) -> dict[str, dict[int, dict[str, Any]]]:
    runs = {}
    for name, log in RUNS.items():
        path = workspace / "logs" / log
        runs[name] = parse_step_lines(path.read_text(errors="replace")) if path.exists() else {}
    return runs


def bootstrap_diff(late: list[float], early: list[float], n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """mean(late) - mean(early) and its 95% percentile bootstrap interval (steps resampled within each window)."""
    rng = random.Random(seed)
    diff = sum(late) / len(late) - sum(early) / len(early)
    draws = sorted(
        sum(rng.choices(late, k=len(late))) / len(late) - sum(rng.choices(early, k=len(early))) / len(early)
        for _ in range(n)
    )
    return diff, draws[int(0.025 * n)], draws[int(0.975 * n) - 1]


@dataclass
class Table:
    rows: dict[str, dict[int, dict[str, float]]]

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "steps.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["run", "step", *COLUMNS])
            for run, steps in self.rows.items():
                for step, row in sorted(steps.items()):
                    w.writerow([run, step, *(f"{row[c]:.4f}" for c in COLUMNS)])
        lines = ["| run | step | " + " | ".join(COLUMNS) + " |", "|---|---:|" + "---:|" * len(COLUMNS)]
        for run, steps in self.rows.items():
            for step, row in sorted(steps.items()):
                lines.append(f"| {run} | {step} | " + " | ".join(f"{row[c]:.3f}" for c in COLUMNS) + " |")
        (out / "steps.md").write_text("\n".join(lines) + "\n")
        return [out / "steps.csv", out / "steps.md", self.plot(out / "learning.png")]

    def plot(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        titles = {
            "srpo_reward": "mean SRPO reward (paper weights)", "format": "well-formed rate", "acc_first": "first-answer accuracy",
            "acc": "final-answer accuracy", "fix_rate": "fix rate (A1 wrong -> A2 right)", "harm_rate": "harm rate (A1 right -> A2 wrong)",
            "response_tokens": "response length (tokens)", "evicted_groups": "groups evicted by the filter",
        }
        fig, axes = plt.subplots(2, 4, figsize=(18, 7.5))
        for ax, (col, title) in zip(axes.flat, titles.items()):
            for run, steps in self.rows.items():
                xs = sorted(steps)
                ax.plot(xs, [steps[s][col] for s in xs], marker=".", label=run)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("GRPO step")
            ax.grid(alpha=0.3)
        axes.flat[0].legend()
        fig.suptitle("examples/cpu_learn.sh: SRPO reward vs the GRPO baseline (format + accuracy), same SFT model and seeds")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path


def window_mean(steps: dict[int, dict[str, float]], col: str, which: str, k: int = 5) -> float:
    keys = sorted(steps)
    keys = keys[:k] if which == "first" else keys[-k:]
    values = [steps[s][col] for s in keys if not math.isnan(steps[s][col])]
    return sum(values) / len(values) if values else math.nan


def sft_well_formed(runs: dict[str, dict[int, dict[str, Any]]]) -> tuple[float, int, str]:
    """The SFT model's well-formed rate: the first GRPO step of both runs, pooled (weighted by responses).

    Each run's first step scores the SFT model's own rollouts (every response generated, refills included,
    before the filter and before any update); both runs start from the same model, so together they are
    one sample of it twice as large as either.  Returns (rate, responses, where they came from).
    """
    hits = total = 0.0
    parts = []
    for run, steps in runs.items():
        logged = {s: m for s, m in steps.items() if f"{PREFILTER_PREFIX}/format/mean" in m}
        if not logged:
            continue
        first = min(logged)
        m = logged[first]
        n = float(m.get(f"{PREFILTER_PREFIX}/responses", 0.0))
        rate = float(m[f"{PREFILTER_PREFIX}/format/mean"])
        if n <= 0:
            continue
        hits += rate * n
        total += n
        parts.append(f"{run} step {first} {rate:.1%} of {n:g}")
    return (hits / total if total else math.nan), int(total), "; ".join(parts)


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed in ``n`` trials."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def verify(workspace: Path, min_steps: int = 30, window: int = 5) -> tuple[list[Check], Table, list[str]]:
    runs = read_runs(workspace)
    rows = {run: {s: step_row(m) for s, m in steps.items() if f"{PREFILTER_PREFIX}/format/mean" in m}
            for run, steps in runs.items()}
    checks: list[Check] = []
    notes: list[str] = []
    for run, steps in rows.items():
        checks.append(Check(f"{run}: GRPO steps logged", len(steps) >= min_steps,
                            f"{len(steps)} steps with training/srpo/prefilter/* (need {min_steps})"))
    srpo = rows["srpo"]
    if srpo:
        worst = max(abs(r["srpo_reward"] - r["run_reward"]) for r in srpo.values())
        checks.append(Check("srpo: the SRPO reward recomputed from the logged indicators equals the logged score",
                            worst < 1e-3, f"largest difference over {len(srpo)} steps: {worst:.2e}"))
    sft_rate, sft_n, sft_where = sft_well_formed(runs)
    sft_name = "sft: >= 80% of the SFT model's sampled rollouts are well-formed"
    if sft_n:
        lo, hi = wilson(sft_rate, sft_n)
        checks.append(Check(sft_name, sft_rate >= 0.8,
                            f"{sft_rate:.1%} of {sft_n} rollouts (95% interval {lo:.1%} to {hi:.1%}): {sft_where}, "
                            "the SFT model's rollouts at temperature 1.0, before any update"))
    else:
        checks.append(Check(sft_name, False, "no GRPO step logged its responses (training/srpo/prefilter/responses)"))
    if len(srpo) >= 2 * window:
        keys = sorted(srpo)
        early = [srpo[s]["srpo_reward"] for s in keys[:window]]
        late = [srpo[s]["srpo_reward"] for s in keys[-window:]]
        diff, lo, hi = bootstrap_diff(late, early)
        checks.append(Check(
            f"srpo: mean SRPO reward of the last {window} steps exceeds the first {window}", diff > 0 and lo > 0,
            f"{sum(early) / window:.3f} -> {sum(late) / window:.3f}, difference {diff:+.3f}, 95% bootstrap interval "
            f"[{lo:+.3f}, {hi:+.3f}] (steps resampled)"))
        after = window_mean(srpo, "format", "last", window)
        checks.append(Check("srpo: well-formed rate after GRPO >= the SFT model's", after >= sft_rate,
                            f"{after:.1%} (last {window} steps) vs {sft_rate:.1%} (the SFT model's, above)"))
    for run, steps in rows.items():
        if not steps:
            continue
        parts = []
        for col in ("srpo_reward", "format", "acc_first", "acc", "fix_rate", "harm_rate", "flipped", "response_tokens"):
            parts.append(f"{col} {window_mean(steps, col, 'first', window):.3f} -> {window_mean(steps, col, 'last', window):.3f}")
        evicted = sum(r["evicted_groups"] for r in steps.values())
        notes.append(f"{run} (first {window} -> last {window} steps): " + ", ".join(parts) + f"; {evicted:g} groups evicted")
    return checks, Table(rows), notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", required=True, type=Path)
    ap.add_argument("--min-steps", type=int, default=30)
    args = ap.parse_args(argv)
    checks, table, notes = verify(args.workspace, args.min_steps)
    for path in table.write(args.workspace / "outputs" / "learning"):
        print(f"wrote {path}")
    for note in notes:
        print(note)
    report = args.workspace / "outputs" / "eval" / "report4" / "report.md"
    if report.exists():
        print(f"eval report (held-out split, greedy): {report}")
        for line in report.read_text().splitlines()[:30]:
            print("    " + line)
    return report_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
