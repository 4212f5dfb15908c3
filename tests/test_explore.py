"""Interactive explorers (wlearn.explore): static rendering, widgets, pure computations."""

import sys

import matplotlib.pyplot as plt
import numpy as np
import ot
import pytest
import torch
from _pot import relaxed_plan

import wlearn.explore as ex
from wlearn import ground
from wlearn import ot as wot
from wlearn.losses import one_hot_wasserstein
from wlearn.metrics import ConfusionMatrix, mean_severity

try:
    import ipywidgets as widgets
except ImportError:  # the `lab` extra: only the widget tests need it
    widgets = None
needs_widgets = pytest.mark.skipif(widgets is None, reason="ipywidgets not installed (.[lab])")


@pytest.fixture
def pair():
    bins = np.arange(12)
    a = np.exp(-0.5 * ((bins - 3) / 1.5) ** 2)
    b = np.exp(-0.5 * ((bins - 8) / 2.0) ** 2)
    return a / a.sum(), b / b.sum(), ground.line(12, p=2).numpy()


@pytest.fixture
def unbalanced():
    rng = np.random.default_rng(0)
    X = rng.random((8, 2))
    M = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))  # (8, 8)
    return 1.5 * rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8)), M / np.median(M)


@pytest.fixture
def probs():
    rng = np.random.default_rng(1)
    labels = torch.as_tensor(np.repeat(np.arange(10), 6))  # (60,)
    by_p = {p: torch.as_tensor(rng.dirichlet(np.ones(10) * (1 + p), size=60)) for p in (0, 1, 2)}
    return by_p, labels


@pytest.fixture
def segmentation():
    rng = np.random.default_rng(2)
    target = torch.as_tensor(rng.integers(0, 19, size=(6, 9)))
    wrong = torch.as_tensor(rng.integers(0, 19, size=(6, 9)))
    pred = torch.where(torch.as_tensor(rng.random((6, 9)) < 0.5), target, wrong)
    target[0, :3] = 255  # ignored pixels
    return pred, target


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


# --- pure computations against references ---------------------------------------------------


def test_sinkhorn_sweep_matches_pot(pair):
    a, b, M = pair
    s = ex.sinkhorn_sweep(a, b, M, [0.3, 0.03, 0.01])
    assert s["exact"] == pytest.approx(ot.emd2(a, b, M), abs=1e-12)
    for r, v, T in zip(s["regs"], s["values"], s["plans"], strict=True):
        ref = ot.sinkhorn2(a, b, M, r, method="sinkhorn", stopThr=1e-12, numItermax=100_000)
        assert v == pytest.approx(float(ref), abs=1e-8)
        assert np.allclose(T.sum(1), a, atol=1e-8) and np.allclose(T.sum(0), b, atol=1e-8)
    assert s["converged"].all() and np.all(np.diff(s["n_iter"]) > 0)
    assert np.all(np.diff(s["values"]) < 0) and np.all(s["values"] > s["exact"])


def test_unbalanced_summary_matches_pot(unbalanced):
    h, y, M = unbalanced
    reg, reg_m = 0.1, 1.0
    s = ex.unbalanced_summary(h, y, M, reg, reg_m)
    T = relaxed_plan(h, y, M, reg, reg_m, stopThr=1e-14, numItermax=100_000)  # eq. 8 in POT
    assert np.allclose(s["plan"], T, rtol=1e-7, atol=1e-12)
    assert np.allclose(s["row"], T.sum(1)) and np.allclose(s["col"], T.sum(0))
    assert s["mass"] == pytest.approx(T.sum())
    ref = wot.unbalanced_sinkhorn(h, y, M, reg, reg_m, max_iter=100_000)
    assert s["objective"] == pytest.approx(ref.objective.item(), abs=1e-9)
    assert s["value"] == pytest.approx(float((T * M).sum()), rel=1e-7)


def test_p_metric_summary_is_the_one_hot_wasserstein_loss(probs):
    by_p, labels = probs
    s = ex.p_metric_summary(by_p[2], labels, 2, digit=4)
    mine = by_p[2][labels == 4]  # (6, 10)
    assert np.allclose(s["profile"], mine.mean(0).numpy()) and s["profile"].sum() == pytest.approx(
        1
    )
    M = ground.line(10, 2)
    assert np.allclose(s["cost"], M[:, 4].numpy())
    assert s["p_true"] == pytest.approx(float(mine[:, 4].mean()))
    loss = one_hot_wasserstein(mine.log(), torch.full((6,), 4), M)  # mean over the 6 images
    assert s["expected_cost"] == pytest.approx(loss.item(), abs=1e-12)
    assert s["expected_cost"] == pytest.approx(ot.emd2(s["profile"], np.eye(10)[4], M.numpy()))


def test_severity_map_matches_mean_severity(segmentation):
    pred, target = segmentation
    D = ground.severity_matrix()
    cost, mean = ex.severity_map(pred, target, D)
    assert cost.shape == (6, 9) and np.isnan(cost[0, :3]).all() and not np.isnan(cost[1:]).any()
    assert cost[2, 5] == D[pred[2, 5], target[2, 5]].item()
    assert np.nanmean(cost) == pytest.approx(mean, abs=1e-12)
    cm = ConfusionMatrix(19)
    cm.update(pred, target)
    assert mean == pytest.approx(mean_severity(cm.confusion, D))
    assert 0 < mean < 1 and (pred != target).sum() > 10


# --- static rendering ---------------------------------------------------------------------------


def test_sinkhorn_reg_static_figure(pair):
    before = plt.get_fignums()
    e = ex.sinkhorn_reg(*pair, regs=[1.0, 0.3, 0.1, 0.03, 0.01, 0.003])
    fig = e.static_figure()
    assert plt.get_fignums() == before  # no pyplot figure leaks into the notebook
    assert len(fig.axes) == 12  # 4 settings x (plan, its colour bar, where one class's mass goes)
    assert "static snapshot" in fig.get_suptitle()
    for r in (1.0, 0.1, 0.03, 0.003):  # 4 of the 6, evenly spaced, ends included
        assert sum(t.startswith(f"ε = {r:g}:") for t in titles(fig)) == 2
    assert "iterations" in titles(fig)[0]
    assert sum(ax.get_ylabel() == "mass T_ij" for ax in fig.axes) == 4  # the colour bars


def test_sinkhorn_reg_row_panel_is_the_plan_row_against_the_exact_one(pair):
    a, b, M = pair
    e = ex.sinkhorn_reg(a, b, M, regs=[0.1, 0.01])
    e.update(reg=0.01)
    k = int(np.argmax(a))
    row_ax = e.figure.axes[1]
    plan = ex.sinkhorn_sweep(a, b, M, [0.01])["plans"][0]
    assert np.allclose(row_ax.lines[0].get_ydata(), plan[k] / a[k])
    exact = np.array([bar.get_height() for bar in row_ax.patches])
    assert np.allclose(exact, ot.emd(a, b, M)[k] / a[k]) and exact.sum() == pytest.approx(1.0)
    assert f"class {k}" in row_ax.get_title()
    with pytest.raises(ValueError, match="source"):
        ex.sinkhorn_reg(a, b, M, regs=[0.1], source=len(a))


def test_unbalanced_static_figure(unbalanced):
    e = ex.unbalanced_reg_m(*unbalanced, reg=0.1, reg_ms=[0.1, 1.0, 10.0])
    fig = e.static_figure()
    assert (
        len(fig.axes) == 12 and "static snapshot" in fig.get_suptitle()
    )  # 3 x 3 and 3 colour bars
    for r in (0.1, 1, 10):
        assert sum(t.startswith(f"γ = {r:g}:") for t in titles(fig)) == 3
    s = ex.unbalanced_summary(*unbalanced, 0.1, 10.0)
    assert f"objective {s['objective']:.4f}" in titles(fig)[2]  # row 1 (plans), column 3


def test_p_metric_and_severity_static_figures(probs, segmentation):
    fig = ex.p_metric(*probs, digit=3).static_figure()
    assert len(fig.axes) == 6
    assert all(f"p = {p}" in " ".join(titles(fig)) for p in (0, 1, 2))
    assert titles(fig)[3].startswith("p = 0, digit 3: P(3) = ")  # row 2, column 1
    fig = ex.severity(*segmentation).static_figure()
    assert len(fig.axes) == 6 and "static snapshot" in fig.get_suptitle()
    assert "same_family = 1\nother_road_user = 1" in titles(fig)
    _, mean = ex.severity_map(*segmentation, ground.severity_matrix())
    assert f"mean severity {mean:.4f}" in titles(fig)[3]  # row 2, column 1: the defaults


# --- widgets ------------------------------------------------------------------------------------


@needs_widgets
def test_sinkhorn_widget_redraws(pair):
    e = ex.sinkhorn_reg(*pair, regs=[1.0, 0.1, 0.01])
    box = e.widget()
    slider = e.widgets["reg"]
    assert isinstance(slider, widgets.SelectionSlider)
    assert [v for _, v in slider.options] == [1.0, 0.1, 0.01]
    assert slider in box.children and e.output in box.children
    slider.value = 0.01
    assert e.summary["reg"] == 0.01
    sweep = ex.sinkhorn_sweep(*pair, [0.01])
    assert np.allclose(e.figure.axes[0].images[0].get_array(), sweep["plans"][0])
    assert e.figure.axes[0].get_title().startswith("ε = 0.01:")
    assert len(e.output.outputs) == 1 and "image/png" in e.output.outputs[0]["data"]


@needs_widgets
def test_unbalanced_widget_redraws(unbalanced):
    e = ex.unbalanced_reg_m(*unbalanced, reg=0.1, reg_ms=[0.01, 0.1, 1.0, 10.0])
    e.widget()
    slider = e.widgets["reg_m"]
    assert isinstance(slider, widgets.FloatLogSlider)
    assert (slider.min, slider.max, slider.base) == (-2, 1, 10)
    slider.value = 3.0
    s = ex.unbalanced_summary(*unbalanced, 0.1, 3.0)
    assert e.summary["reg_m"] == pytest.approx(3.0)
    assert e.summary["mass"] == pytest.approx(s["mass"])
    step = e.figure.axes[1].lines[0]  # T 1 drawn over h
    assert np.allclose(step.get_ydata(), s["row"])


@needs_widgets
def test_p_metric_widget_redraws(probs):
    by_p, labels = probs
    e = ex.p_metric(by_p, labels, digit=4)
    e.widget()
    assert [v for _, v in e.widgets["p"].options] == [0, 1, 2]
    digit = e.widgets["digit"]
    assert isinstance(digit, widgets.IntSlider) and (digit.min, digit.max, digit.value) == (0, 9, 4)
    e.widgets["p"].value = 2
    digit.value = 7
    assert (e.summary["p"], e.summary["digit"]) == (2, 7)
    heights = [bar.get_height() for bar in e.figure.axes[1].patches]
    assert np.allclose(heights, ex.p_metric_summary(by_p[2], labels, 2, 7)["profile"])


@needs_widgets
def test_severity_widget_redraws(segmentation):
    e = ex.severity(*segmentation)
    e.widget()
    sf, oru = e.widgets["same_family"], e.widgets["other_road_user"]
    assert isinstance(sf, widgets.FloatSlider)
    assert (sf.min, sf.max, sf.value, oru.value) == (0.05, 1.0, 0.25, 0.5)
    sf.value = 0.75
    D = ground.severity_matrix(same_family=0.75, other_road_user=0.5)
    assert e.summary["mean_severity"] == pytest.approx(ex.severity_map(*segmentation, D)[1])
    assert np.allclose(e.figure.axes[0].images[0].get_array(), D.numpy())
    assert e.summary["mean_severity"] != pytest.approx(
        ex.severity_map(*segmentation, ground.severity_matrix())[1]
    )


# --- show(): static always, the widget only when live ---------------------------------------


@needs_widgets
@pytest.mark.parametrize("env, n_shown", [("1", 1), ("0", 2), (None, 2)])
def test_show_static_and_live(pair, monkeypatch, env, n_shown):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    if env is None:
        monkeypatch.delenv("WLEARN_STATIC", raising=False)
    else:
        monkeypatch.setenv("WLEARN_STATIC", env)
    e = ex.sinkhorn_reg(*pair, regs=[0.3, 0.03])
    assert e.show() is None
    assert len(shown) == n_shown
    assert isinstance(shown[0], IPython.display.Image) and shown[0].data[:4] == b"\x89PNG"
    assert (e.output is None) == (n_shown == 1)
    if n_shown == 2:
        assert isinstance(shown[1], widgets.VBox)


def test_static_mode_needs_no_ipywidgets(pair, monkeypatch):
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: None)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    e = ex.sinkhorn_reg(*pair, regs=[0.3, 0.03])
    monkeypatch.setenv("WLEARN_STATIC", "1")
    e.show()
    monkeypatch.setenv("WLEARN_STATIC", "0")
    with pytest.raises(ImportError, match=r"pip install ipywidgets.*\.\[lab\]"):
        e.show()


def test_bad_wlearn_static(monkeypatch):
    monkeypatch.setenv("WLEARN_STATIC", "maybe")
    with pytest.raises(ValueError, match="WLEARN_STATIC"):
        ex.is_static()


# --- bad arguments --------------------------------------------------------------------------


def test_bad_arguments(pair, unbalanced, probs, segmentation):
    a, b, M = pair
    for regs in ([], [0.1, -1], [0.1, 0.1], "x"):
        with pytest.raises(ValueError, match="regs"):
            ex.sinkhorn_reg(a, b, M, regs=regs)
    with pytest.raises(ValueError, match="reg: expected one of"):
        ex.sinkhorn_reg(a, b, M, regs=[0.3, 0.03], static=[0.1])
    with pytest.raises(ValueError, match="reg_ms"):
        ex.unbalanced_reg_m(*unbalanced, reg=0.1, reg_ms=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"reg_m: expected a number in \[0.1, 1\]"):
        ex.unbalanced_reg_m(*unbalanced, reg=0.1, reg_ms=[0.1, 1.0], static=[5.0])
    by_p, labels = probs
    with pytest.raises(ValueError, match="probs_by_p"):
        ex.p_metric({"CE": by_p[0]}, labels)
    with pytest.raises(ValueError, match="probs_by_p"):
        ex.p_metric({}, labels)
    with pytest.raises(ValueError, match="digit"):
        ex.p_metric(by_p, labels, digit=10)
    with pytest.raises(ValueError, match="labels"):
        ex.p_metric(by_p, labels[:-1])
    pred, target = segmentation
    with pytest.raises(ValueError, match="pred"):
        ex.severity(pred[:, :-1], target)
    with pytest.raises(ValueError, match="same_family"):
        ex.severity(pred, target, static=[{"same_family": 0.0}])
    with pytest.raises(ValueError, match="static"):
        ex.severity(pred, target, static=[{"unknown": 0.5}])
    with pytest.raises(ValueError, match="dataset"):
        ex.severity(pred, target, dataset="kitti")
    with pytest.raises(ValueError, match="x"):
        ex.Control("x", 2.0, low=0.0, high=1.0)
    with pytest.raises(TypeError, match="draw"):
        ex.Explorer(None, [ex.Control("x", 0.5, low=0.0, high=1.0)], [0.5])
