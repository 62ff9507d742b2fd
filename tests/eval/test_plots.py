"""The plot fixes of issue 11: shared bins, axes that fit the data, the run named in every figure."""

from __future__ import annotations

import pytest

from srpo_eval.plots import common_bins, plot_lengths, plot_transitions, y_limit
from test_stats import res


@pytest.fixture
def recorded(monkeypatch):
    """Record what the plots pass to matplotlib (hist bins, y limits, figure titles)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    calls: dict[str, list] = {"hist": [], "ylim": [], "suptitle": []}
    hist, ylim, sup = Axes.hist, Axes.set_ylim, Figure.suptitle

    def rec_hist(self, x, *a, **kw):
        calls["hist"].append((id(self), list(kw.get("bins")) if not isinstance(kw.get("bins"), int) else kw.get("bins")))
        return hist(self, x, *a, **kw)

    def rec_ylim(self, *a, **kw):
        calls["ylim"].append(a)
        return ylim(self, *a, **kw)

    def rec_sup(self, t, *a, **kw):
        calls["suptitle"].append(t)
        return sup(self, t, *a, **kw)

    monkeypatch.setattr(Axes, "hist", rec_hist)
    monkeypatch.setattr(Axes, "set_ylim", rec_ylim)
    monkeypatch.setattr(Figure, "suptitle", rec_sup)
    return calls


def test_lengths_share_bins_across_runs(recorded, tmp_path):
    short = [res(f"q{i}", 0, True) for i in range(5)]
    long_ = [res(f"q{i}", 0, True).__class__(**{**res(f"q{i}", 0, True).__dict__, "len_total": 500, "len_first": 200})
             for i in range(5)]
    plot_lengths({"a": short, "b": long_}, tmp_path / "l.png")
    by_axes: dict[int, list] = {}
    for ax, bins in recorded["hist"]:
        by_axes.setdefault(ax, []).append(bins)
    assert by_axes and all(len(v) == 2 and v[0] == v[1] and isinstance(v[0], list) for v in by_axes.values())
    assert "a vs b" in recorded["suptitle"][0]


def test_transition_axis_fits_small_cells(recorded, tmp_path):
    run = {"run": "srpo", "benchmarks": {}, "overall": {
        "responses": 100, "transitions": {"right_right": 90, "wrong_right": 3, "right_wrong": 2, "wrong_wrong": 5},
        "transition_rates": {"right_right": 0.9, "wrong_right": 0.03, "right_wrong": 0.02, "wrong_wrong": 0.05},
        "fix_rate": 0.375, "harm_rate": 0.022}}
    plot_transitions([run], tmp_path / "t.png")
    tops = [a[1] for a in recorded["ylim"] if len(a) == 2]
    assert max(tops) < 105 and min(tops) < 5  # the fixed/broken panel is scaled to 3% and 2%
    assert "run srpo" in recorded["suptitle"][0]  # a single-run figure names its run


def test_helpers():
    assert common_bins([[0, 10], [5]], bins=2) == [0.0, 5.0, 10.0]
    assert common_bins([[], []]) == [0.0, 1.0]
    assert y_limit([3.0, 2.0]) == pytest.approx(3.95)
    assert y_limit([100.0]) == 105.0
