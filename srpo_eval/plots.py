"""PNG plots of the report (matplotlib, Agg backend: no display needed).

- ``transitions.png``: one panel per benchmark (and "overall"), the four transition
  cells as a share of responses, one bar per run, with fix and harm rates in the title;
  the y axis fits the tallest bar, and a second row shows only wrong→right and
  right→wrong (the cells the reflection claim rests on) on their own scale;
- ``lengths.png``: histograms of the first-attempt, reflection and whole-response
  lengths and of ``L / (2 L1)``, one colour per run, every run on the same bins.

Every figure names its run(s) in the title, a single run included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from srpo_eval.scoring import TRANSITIONS, SampleResult

CELL_LABELS = {
    "right_right": "right→right",
    "wrong_right": "wrong→right\n(fixed)",
    "right_wrong": "right→wrong\n(broken)",
    "wrong_wrong": "wrong→wrong",
}
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def y_limit(values: Sequence[float], floor: float = 1.0) -> float:
    """Top of a y axis in %: 15% above the tallest bar (room for the count labels), at least ``floor``."""
    top = max([v for v in values if v is not None] or [0.0])
    return max(floor, min(105.0, top * 1.15 + 0.5))


def common_bins(series: Sequence[Sequence[float]], bins: int = 30) -> list[float]:
    """One set of bin edges for every run's values, so the bars of two runs compare."""
    vals = [float(v) for s in series for v in s]
    if not vals:
        return [0.0, 1.0]
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    step = (hi - lo) / bins
    return [lo + i * step for i in range(bins + 1)]


def runs_title(names: Sequence[str]) -> str:
    return "run " + names[0] if len(names) == 1 else "runs " + " vs ".join(names)


def plot_transitions(runs: Sequence[Mapping[str, Any]], out: Path) -> Path:
    """Transition bars per benchmark for one or more run summaries; returns the PNG path."""
    plt = _pyplot()
    scopes = sorted({b for r in runs for b in r["benchmarks"]}) + ["overall"]
    ncols = min(3, len(scopes))
    nrows = math.ceil(len(scopes) / ncols)
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(5.2 * ncols, 6.4 * nrows), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2] * nrows})
    main_axes = [axes[2 * (i // ncols)][i % ncols] for i in range(len(scopes))]
    zoom_axes = [axes[2 * (i // ncols) + 1][i % ncols] for i in range(len(scopes))]
    width = 0.8 / max(1, len(runs))
    zoom_cells = ("wrong_right", "right_wrong")
    for ax, zax, scope in zip(main_axes, zoom_axes, scopes):
        titles, all_vals, zoom_vals = [], [], []
        for k, run in enumerate(runs):
            m = run["overall"] if scope == "overall" else run["benchmarks"].get(scope, {})
            rates = m.get("transition_rates") or {}
            vals = [100 * (rates.get(t) or 0.0) for t in TRANSITIONS]
            xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(TRANSITIONS))]
            color = RUN_COLORS[k % len(RUN_COLORS)]
            bars = ax.bar(xs, vals, width=width, color=color, label=run["run"])
            counts = [(m.get("transitions") or {}).get(t, 0) for t in TRANSITIONS]
            for bar, c in zip(bars, counts):
                ax.annotate(str(c), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
            zv = [100 * (rates.get(t) or 0.0) for t in zoom_cells]
            zxs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(zoom_cells))]
            zbars = zax.bar(zxs, zv, width=width, color=color, label=run["run"])
            for bar, t in zip(zbars, zoom_cells):
                c = (m.get("transitions") or {}).get(t, 0)
                zax.annotate(str(c), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
            all_vals += vals
            zoom_vals += zv
            titles.append(f"{run['run']}: n={m.get('responses', 0)} fix {_pct(m.get('fix_rate'))} harm {_pct(m.get('harm_rate'))}")
        ax.set_title(scope + "\n" + "\n".join(titles), fontsize=9)
        ax.set_xticks(range(len(TRANSITIONS)))
        ax.set_xticklabels([CELL_LABELS[t] for t in TRANSITIONS], fontsize=8)
        ax.set_ylabel("% of responses")
        ax.set_ylim(0, y_limit(all_vals))
        zax.set_xticks(range(len(zoom_cells)))
        zax.set_xticklabels([CELL_LABELS[t] for t in zoom_cells], fontsize=8)
        zax.set_ylabel("% of responses")
        zax.set_ylim(0, y_limit(zoom_vals))
        zax.set_title(f"{scope}: fixed and broken only", fontsize=8)
        ax.legend(fontsize=8)
    for ax in list(axes.flat):
        if ax not in main_axes and ax not in zoom_axes:
            ax.axis("off")
    fig.suptitle(f"Reflection transitions: first answer → final answer ({runs_title([r['run'] for r in runs])})", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_lengths(runs: Mapping[str, Sequence[SampleResult]], out: Path, target_ratio: float = 2.0) -> Path:
    """Length histograms (all benchmarks pooled) for each run; returns the PNG path."""
    plt = _pyplot()
    panels = (
        ("first attempt (T1+A1)", lambda r: r.len_first if r.format_ok else None),
        ("reflection", lambda r: r.len_reflection if r.format_ok else None),
        ("whole response", lambda r: r.len_total),
        (f"L / ({target_ratio:g} L1)", lambda r: r.len_total / (target_ratio * r.len_first) if r.format_ok and r.len_first else None),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.9))
    for ax, (title, fn) in zip(axes, panels):
        series = [[v for v in (fn(r) for r in results) if v is not None] for results in runs.values()]
        edges = common_bins(series)
        for k, (name, vals) in enumerate(zip(runs, series)):
            if vals:
                ax.hist(vals, bins=edges, alpha=0.55, color=RUN_COLORS[k % len(RUN_COLORS)], label=f"{name} (n={len(vals)})")
        if title.startswith("L /"):
            ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="length target")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("length units" if not title.startswith("L /") else "ratio")
        ax.set_ylabel("responses")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"Lengths ({runs_title(list(runs))})", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
