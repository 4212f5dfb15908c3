"""Plotting helpers (wlearn.plot): what is drawn is what was given, and bad input is named."""

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from scipy import stats  # noqa: E402

from wlearn import ground  # noqa: E402
from wlearn import ot as wot  # noqa: E402
from wlearn.plot import plot_mean_with_interval, plot_plan_bins, plot_plan_lines  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _lines(ax):
    (coll,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    return coll


def test_plan_lines_join_each_source_to_the_targets_it_sends_mass_to(ax):
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    h, y = np.array([0.2, 0.5, 0.3]), np.array([1.0, 0.0, 0.0])  # a one-hot target
    plan = wot.emd(h, y, ground.euclidean(X, normalize=False)).plan.numpy()
    plot_plan_lines(plan, X, ax=ax, labels=["a", "b", "c"])
    segs = [np.asarray(s) for s in _lines(ax).get_segments()]
    # mass staying on class 0 is not drawn; classes 1 and 2 send theirs to class 0
    assert len(segs) == 2
    assert {tuple(s[0]) for s in segs} == {(1.0, 0.0), (0.0, 2.0)}
    assert all(tuple(s[1]) == (0.0, 0.0) for s in segs)
    widths = dict(zip((tuple(s[0]) for s in segs), _lines(ax).get_linewidths(), strict=True))
    assert widths[(1.0, 0.0)] > widths[(0.0, 2.0)]  # 0.5 moved against 0.3
    sources, targets = ax.collections[2], ax.collections[1]
    assert np.allclose(sources.get_sizes() / sources.get_sizes().sum(), h)
    assert np.allclose(targets.get_sizes() / targets.get_sizes().sum(), y)
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]


def test_plan_lines_between_two_point_sets(ax):
    xs, xt = np.zeros((2, 2)), np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    xs[1] = [0.0, 1.0]
    plan = np.array([[0.5, 0.0, 0.0], [0.0, 0.25, 0.25]])
    plot_plan_lines(plan, xs, xt, ax=ax)
    assert len(_lines(ax).get_segments()) == 3


def test_plan_bins_draws_the_marginals_or_the_given_histograms(ax):
    K = 8
    h, y = np.full(K, 1 / K), np.eye(K)[3]
    plan = wot.emd(h, y, ground.line(K, 1)).plan.numpy()
    plot_plan_bins(plan, ax=ax)
    bars = [p.get_height() for p in ax.patches]
    top, bottom = np.array(bars[:K]), -np.array(bars[K:])
    assert np.allclose(top / top.sum(), h) and np.allclose(bottom / bottom.sum(), y)
    segs = _lines(ax).get_segments()
    assert len(segs) == K  # every class sends its mass to class 3
    assert all(np.allclose(s[1], [3, 0]) for s in segs)
    fig2, ax2 = plt.subplots()
    plot_plan_bins(0.5 * plan, ax=ax2, hists=(h, y))  # a plan with half the mass
    steps = ax2.lines
    assert len(steps) == 2 and "plan's sums" in [t.get_text() for t in ax2.get_legend().texts]
    plt.close(fig2)


def test_mean_with_interval_is_the_t_interval_of_the_mean(ax):
    V = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 5.0], [3.0, 2.0, 4.0]])  # (S=3 repeats, X=3)
    plot_mean_with_interval([1, 2, 3], V, label="m", ax=ax)
    assert np.allclose(ax.lines[0].get_ydata(), V.mean(0))
    half = stats.t.ppf(0.975, 2) * V.std(0, ddof=1) / np.sqrt(3)
    band = ax.collections[0].get_paths()[0].vertices
    assert np.isclose(band[:, 1].max(), (V.mean(0) + half).max())
    assert np.isclose(band[:, 1].min(), (V.mean(0) - half).min())


def test_bad_input_is_named(ax):
    with pytest.raises(ValueError, match=r"plan: expected a \(n, m\) array"):
        plot_plan_lines(-np.eye(2), np.zeros((2, 2)), ax=ax)
    with pytest.raises(ValueError, match=r"xs, xt: expected shapes \(2, 2\) and \(2, 2\)"):
        plot_plan_lines(np.eye(2), np.zeros((3, 2)), ax=ax)
    with pytest.raises(ValueError, match=r"hists: expected two histograms of shapes \(2,\)"):
        plot_plan_bins(np.eye(2), ax=ax, hists=(np.ones(3), np.ones(2)))
    with pytest.raises(ValueError, match=r"values: expected shape \(S, 3\) with S >= 2"):
        plot_mean_with_interval([1, 2, 3], np.ones((1, 3)), label="m", ax=ax)
    with pytest.raises(ValueError, match="level"):
        plot_mean_with_interval([1, 2, 3], np.ones((2, 3)), label="m", ax=ax, level=95)
