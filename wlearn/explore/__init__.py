"""Interactive explorers: move a slider instead of re-running a cell.

An :class:`Explorer` pairs a draw function ``draw(axes, **values) -> summary`` with a few
:class:`Control` s (sliders) and a list of static values. :meth:`Explorer.show` always draws a
**static snapshot** (small multiples: one column per static value) as a PNG, so the figure is in
the executed HTML and under nbval; when live (environment variable ``WLEARN_STATIC`` unset or
``0``) it also displays the ipywidgets controls, whose output redraws the figure on every move.
The course site (``docs/conf.py``) and ``make notebooks`` set ``WLEARN_STATIC=1``.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot (nothing leaks into
the notebook's figure list) and displayed as PNG images, whatever the matplotlib backend.

Four explorers, each computing through a pure, tested function of this module that calls
:mod:`wlearn.ot`, :mod:`wlearn.ground` or :mod:`wlearn.severity`:

- :func:`sinkhorn_reg` (:func:`sinkhorn_sweep`): ``reg`` against the Sinkhorn plan and value;
- :func:`unbalanced_reg_m` (:func:`unbalanced_summary`): ``reg_m`` against the relaxed plan;
- :func:`p_metric` (:func:`p_metric_summary`): ``p`` against ``line(K, p)`` and a prediction;
- :func:`severity` (:func:`severity_map`): severity-matrix parameters against a segmentation.

Introduced in notebooks/02_sinkhorn.ipynb, 03_unbalanced_relaxation.ipynb,
04_mnist_p_metric.ipynb and 08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

import wlearn.ot as wot
from wlearn._checks import as_tensor, check_cost_matrix
from wlearn.explore._core import (
    Control,
    Explorer,
    _pick,
    _plan_image,
    _positive_list,
    is_static,
)
from wlearn.ground import line
from wlearn.metrics import ConfusionMatrix, mean_severity
from wlearn.severity import severity_matrix

__all__ = [
    "Control",
    "Explorer",
    "is_static",
    "p_metric",
    "p_metric_summary",
    "severity",
    "severity_map",
    "sinkhorn_reg",
    "sinkhorn_sweep",
    "unbalanced_reg_m",
    "unbalanced_summary",
]


def sinkhorn_sweep(a, b, M, regs, *, max_iter: int = 20_000, tol: float = 1e-9) -> dict:
    """Entropic transport for each ``reg`` against the exact value (Frogner et al. eq. 6 vs 3).

    Parameters
    ----------
    a, b : tensor or array, shape (K,)
        Measures of equal mass.
    M : tensor or array, shape (K, K)
        Ground cost.
    regs : sequence of float, length R
        Entropic regularizations ``reg > 0``.
    max_iter, tol : int, float
        Passed to :func:`wlearn.ot.sinkhorn`.

    Returns
    -------
    dict
        ``regs`` (R,), ``exact`` (float, :func:`wlearn.ot.emd`), ``values`` (R,) the transport
        costs ``<T, M>`` (``ot.sinkhorn2``), ``n_iter`` (R,), ``converged`` (R,),
        ``plans`` (R, K, K), all NumPy.
    """
    regs = _positive_list(regs, "regs")
    exact = wot.emd(a, b, M).value.item()
    runs = [wot.sinkhorn(a, b, M, r, max_iter=max_iter, tol=tol) for r in regs]
    return {
        "regs": np.array(regs),
        "exact": exact,
        "values": np.array([r.value.item() for r in runs]),
        "n_iter": np.array([r.n_iter for r in runs]),
        "converged": np.array([r.converged for r in runs]),
        "plans": np.stack([r.plan.detach().cpu().double().numpy() for r in runs]),  # (R, K, K)
    }


def sinkhorn_reg(
    a,
    b,
    M,
    regs=(1.0, 0.3, 0.1, 0.03, 0.01, 0.003),
    *,
    static=None,
    source=None,
    max_iter: int = 20_000,
) -> Explorer:
    """Explorer: ``reg`` against the Sinkhorn plan and where the mass of one class goes.

    Two panels per setting: the plan (rows: bins of ``a``, columns: bins of ``b``, with a colour
    bar), titled with its cost ``<T, M>``, the exact Wasserstein distance and the iteration
    count; and the row ``T[k, :] / a[k]`` of the plan (the share of the mass of class ``k`` sent
    to each class of ``b``) drawn over the same row of an exact optimal plan, which shows how
    far the entropy spreads the mass.

    Parameters
    ----------
    a, b, M : as :func:`sinkhorn_sweep`
    regs : sequence of float
        The slider's positions (all solved once, up front).
    static : sequence of float or None
        Settings of the static snapshot (default: 4 of ``regs``, evenly spaced).
    source : int or None
        The class ``k`` of ``a`` whose row is drawn (default: the one with the most mass).
    max_iter : int
        Passed to :func:`wlearn.ot.sinkhorn`.

    Returns
    -------
    Explorer

    Frogner et al. 2015, eq. 6 against eq. 3 (Sec. 4.1); introduced in
    notebooks/02_sinkhorn.ipynb.
    """
    sweep = sinkhorn_sweep(a, b, M, regs, max_iter=max_iter)
    regs = tuple(sweep["regs"].tolist())
    a_np = as_tensor(a, "a").double().numpy()
    k = int(np.argmax(a_np)) if source is None else int(source)
    if not 0 <= k < len(a_np):
        raise ValueError(f"source: expected a class index in [0, {len(a_np)}), got {source!r}")
    exact_row = wot.emd(a, b, M).plan.double().numpy()[k] / a_np[k]  # (K,)

    def draw(axes, reg):
        i = regs.index(reg)
        value, n_iter = float(sweep["values"][i]), int(sweep["n_iter"][i])
        _plan_image(
            axes[0],
            sweep["plans"][i],
            f"ε = {reg:g}: <T, M> = {value:.4f}\nW = {sweep['exact']:.4f}, {n_iter} iterations",
        )
        bins = np.arange(len(exact_row))
        axes[1].bar(bins, exact_row, color="0.75", label="exact plan")
        axes[1].plot(bins, sweep["plans"][i][k] / a_np[k], color="C3", label=f"ε = {reg:g}")
        axes[1].set_xlabel("class j of b")
        axes[1].set_ylabel(f"share of the mass of class {k} sent to j")
        axes[1].set_title(f"ε = {reg:g}: where the mass of class {k} goes", fontsize=9)
        axes[1].legend(fontsize=7)
        return {"reg": reg, "value": value, "exact": sweep["exact"], "n_iter": n_iter}

    control = Control("reg", regs[len(regs) // 2], options=regs, description="ε (reg)")
    return Explorer(
        draw, [control], static or _pick(regs), panels=2, title="Sinkhorn plan and cost against ε"
    )


# --- reg_m against the unbalanced plan (lesson 03) --------------------------------------------


def unbalanced_summary(h, y, M, reg, reg_m, *, max_iter: int = 100_000, tol: float = 1e-9) -> dict:
    """The KL-relaxed plan (Frogner et al. eq. 8) and its two marginals, by
    :func:`wlearn.ot.unbalanced_sinkhorn`.

    Parameters
    ----------
    h, y : tensor or array, shape (K,)
        Non-negative measures of any masses.
    M : tensor or array, shape (K, K)
    reg, reg_m : float
        ``1/lambda`` and ``gamma``.
    max_iter, tol : int, float
        Passed to :func:`wlearn.ot.unbalanced_sinkhorn`.

    Frogner et al. 2015, eq. 8 and Prop. 4.2 (Sec. 4.3).

    Returns
    -------
    dict
        ``plan`` (K, K), ``row`` = ``T 1`` (K,), ``col`` = ``T^T 1`` (K,), ``objective`` (8),
        ``value`` ``<T, M>``, ``mass`` ``sum T``, ``n_iter``, ``converged``; NumPy / floats.
    """
    res = wot.unbalanced_sinkhorn(h, y, M, reg, reg_m, max_iter=max_iter, tol=tol)
    plan = res.plan.detach().cpu().double().numpy()  # (K, K)
    return {
        "plan": plan,
        "row": plan.sum(1),
        "col": plan.sum(0),
        "objective": res.objective.item(),
        "value": res.value.item(),
        "mass": float(plan.sum()),
        "n_iter": res.n_iter,
        "converged": res.converged,
    }


def unbalanced_reg_m(h, y, M, reg, reg_ms=(0.01, 0.1, 1.0, 10.0), *, static=None) -> Explorer:
    """Explorer: ``reg_m`` (gamma) against the relaxed plan, its marginals ``T 1`` and
    ``T^T 1`` drawn over ``h`` and ``y``, and the objective (8). Three panels per setting; a
    log slider from ``min(reg_ms)`` to ``max(reg_ms)``.

    Parameters
    ----------
    h, y, M, reg : as :func:`unbalanced_summary`
    reg_ms : sequence of float
        Range of the slider and default static settings.
    static : sequence of float or None
        ``reg_m`` values of the static snapshot (default: 4 of ``reg_ms``, evenly spaced).

    Returns
    -------
    Explorer

    Frogner et al. 2015, eq. 8 and Fig. 3 (Sec. 4.3); introduced in
    notebooks/03_unbalanced_relaxation.ipynb.
    """
    reg_ms = _positive_list(reg_ms, "reg_ms")
    h = as_tensor(h, "h").double().numpy()
    y = as_tensor(y, "y").double().numpy()

    def draw(axes, reg_m):
        s = unbalanced_summary(h, y, M, reg, reg_m)
        _plan_image(
            axes[0],
            s["plan"],
            f"γ = {reg_m:.3g}: objective {s['objective']:.4f}\nplan mass {s['mass']:.3f}",
        )
        for ax, target, marg, name in ((axes[1], h, s["row"], "h"), (axes[2], y, s["col"], "y")):
            ax.bar(range(len(target)), target, color="0.75", label=name)
            ax.step(range(len(marg)), marg, where="mid", color="C3", label="plan")
            ax.set_title(
                f"γ = {reg_m:.3g}: {'T 1' if name == 'h' else 'T^T 1'} vs {name}\n"
                f"mass {marg.sum():.3f} (of {target.sum():.3f})",
                fontsize=9,
            )
            ax.set_xlabel("class k")
            ax.set_ylabel("mass")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend(fontsize=7)
        return {"reg_m": reg_m, **{k: s[k] for k in ("objective", "value", "mass", "n_iter")}}

    lo, hi = min(reg_ms), max(reg_ms)
    control = Control(
        "reg_m",
        reg_ms[len(reg_ms) // 2],
        low=lo,
        high=hi,
        log=True,
        step=0.05,
        description="γ (reg_m)",
    )
    return Explorer(
        draw,
        [control],
        static or _pick(sorted(reg_ms)),
        panels=3,
        title=f"relaxed transport against γ (ε = {reg:g})",
    )


# --- p against the ground metric and the prediction (lesson 04) -------------------------------


def p_metric_summary(proba, labels, p: float, digit: int) -> dict:
    """Cost of each predicted class for the true class ``digit`` under ``line(K, p)`` and the
    mean predicted distribution over the samples of that class (Frogner et al. Fig. 4).

    Parameters
    ----------
    proba : tensor or array, shape (N, K)
        Predicted probabilities (e.g. :func:`wlearn.train.predict_proba`).
    labels : tensor or array of int, shape (N,)
    p : float
        Exponent of :func:`wlearn.ground.line`.
    digit : int
        The true class, in ``[0, K)``.

    Returns
    -------
    dict
        ``cost`` (K,) = ``line(K, p)[:, digit]``, ``profile`` (K,) the mean prediction,
        ``p_true`` its entry at ``digit``, ``expected_cost`` = ``profile @ cost``, the mean
        one-hot Wasserstein loss ``sum_k h_k M[k, digit]`` (Liu et al. 2020, Theorem 1).
    """
    P = as_tensor(proba, "proba").double().cpu()
    if P.ndim != 2:
        raise ValueError(f"proba: expected shape (N, K), got {tuple(P.shape)}")
    lab = torch.as_tensor(labels).cpu()
    if lab.shape != (P.shape[0],):
        raise ValueError(
            f"labels: expected shape ({P.shape[0]},) to match proba, got {tuple(lab.shape)}"
        )
    K = P.shape[1]
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit < K:
        raise ValueError(f"digit: expected an integer in [0, {K}), got {digit!r}")
    mask = lab == int(digit)
    if not mask.any():
        raise ValueError(f"labels: expected samples of digit {digit}, got none")
    profile = P[mask].mean(0).numpy()
    cost = line(K, p)[:, int(digit)].numpy()
    return {
        "cost": cost,
        "profile": profile,
        "p_true": float(profile[digit]),
        "expected_cost": float(profile @ cost),
    }


def p_metric(probs_by_p: Mapping, labels, *, digit: int = 4, static=None) -> Explorer:
    """Explorer: the exponent ``p`` of ``line(K, p)`` (a selection slider over the trained
    values) and the true digit (a slider) against the ground-cost row and the mean predicted
    distribution of the model trained with that ``p``. Two panels per setting.

    Parameters
    ----------
    probs_by_p : mapping {p: tensor or array (N, K)}
        Test-set probabilities of one model per ``p`` (lesson 04's ``proba``).
    labels : shape (N,)
        True classes of the test set.
    digit : int
        Initial true digit (fixed in the static snapshot).
    static : sequence of float or None
        ``p`` values of the static snapshot (default: 4 of the keys, evenly spaced).

    Returns
    -------
    Explorer

    Frogner et al. 2015, Sec. 6.1 and Fig. 4; introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    if not isinstance(probs_by_p, Mapping) or not probs_by_p:
        raise ValueError(
            f"probs_by_p: expected a non-empty mapping {{p: probabilities}}, got {probs_by_p!r}"
        )
    bad = [p for p in probs_by_p if isinstance(p, bool) or not isinstance(p, (int, float))]
    if bad:
        raise ValueError(f"probs_by_p: expected numeric keys p, got {bad!r}")
    ps = tuple(sorted(probs_by_p))
    K = as_tensor(probs_by_p[ps[0]], "probs_by_p").shape[-1]
    p_metric_summary(probs_by_p[ps[0]], labels, ps[0], digit)  # validates labels and digit

    def draw(axes, p, digit):
        s = p_metric_summary(probs_by_p[p], labels, p, digit)
        colors = ["k" if k == digit else "C0" for k in range(K)]
        axes[0].bar(range(K), s["cost"], color=colors)
        axes[0].set_ylim(0, 1)
        axes[0].set_ylabel(f"cost M[k, {digit}] (scaled into [0, 1))")
        axes[0].set_title(f"p = {p:g}: cost M[k, {digit}] of predicting k", fontsize=9)
        axes[1].bar(range(K), s["profile"], color=colors)
        axes[1].set_ylim(0, 1)
        axes[1].set_ylabel("mean predicted probability")
        axes[1].set_title(
            f"p = {p:g}, digit {digit}: P({digit}) = {s['p_true']:.2f}\n"
            f"mean predicted distribution",
            fontsize=9,
        )
        for ax in axes:
            ax.set_xticks(range(K))
            ax.set_xlabel("predicted digit k")
        return {"p": p, "digit": digit, "p_true": s["p_true"], "expected_cost": s["expected_cost"]}

    controls = [
        Control("p", ps[len(ps) // 2], options=ps),
        Control("digit", int(digit), low=0, high=K - 1, integer=True),
    ]
    return Explorer(
        draw,
        controls,
        [{"p": p, "digit": int(digit)} for p in (static or _pick(ps))],
        panels=2,
        title="ground metric line(K, p) and the prediction it trains",
    )


# --- severity-matrix parameters against a segmentation (lesson 08) ----------------------------


def severity_map(pred, target, D, *, ignore_index: int = 255) -> tuple[np.ndarray, float]:
    """Per-pixel severity ``D[pred, target]`` of a segmentation and its mean over the
    evaluated pixels (:func:`wlearn.metrics.mean_severity` of the confusion counts).

    Parameters
    ----------
    pred, target : integer tensor or array, shape (H, W)
        Predicted and true classes (``target == ignore_index`` is skipped).
    D : tensor or array, shape (C, C)
        Ground matrix, rows = predicted class, columns = true class.
    ignore_index : int
        Label of pixels left out (Cityscapes' 255).

    Liu et al. 2020, eq. 2 (the one-hot loss is this cost, weighted by the prediction);
    introduced in notebooks/08_importance_aware_segmentation.ipynb.

    Returns
    -------
    cost : ndarray, shape (H, W)
        ``D[pred, target]``, NaN on ignored pixels.
    mean : float
    """
    D = as_tensor(D, "D").double().cpu()
    check_cost_matrix(D, "D")
    pred, target = torch.as_tensor(pred).cpu().long(), torch.as_tensor(target).cpu().long()
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(
            f"pred: expected an (H, W) map of target's shape {tuple(target.shape)}, "
            f"got {tuple(pred.shape)}"
        )
    cm = ConfusionMatrix(D.shape[0], ignore_index=ignore_index)
    cm.update(pred, target)  # checks the class range
    keep = target != ignore_index
    cost = torch.full(target.shape, float("nan"), dtype=torch.float64)  # (H, W)
    cost[keep] = D[pred[keep], target[keep]]
    return cost.numpy(), mean_severity(cm.confusion, D)


def severity(
    pred, target, *, dataset: str = "cityscapes", ignore_index: int = 255, static=None
) -> Explorer:
    """Explorer: the two discounts of :func:`wlearn.severity.severity_matrix`
    (``same_family``, ``other_road_user``, sliders over (0, 1]) against the matrix and the
    per-pixel cost map of a segmentation, with its mean severity. Two panels per setting.

    Parameters
    ----------
    pred, target : shape (H, W)
        A predicted segmentation and its ground truth (class indices, ``trainId`` order).
    dataset : {"cityscapes", "camvid"}
    ignore_index : int
        Label of pixels left out (Cityscapes' 255).
    static : sequence of dict or None
        Settings of the static snapshot (default: the defaults, no discount, strong discounts).

    Returns
    -------
    Explorer

    Liu et al. 2020, Fig. 2 left (a severity ground matrix); introduced in
    notebooks/08_importance_aware_segmentation.ipynb.
    """
    C = severity_matrix(dataset).shape[0]
    severity_map(pred, target, torch.zeros(C, C), ignore_index=ignore_index)  # validates

    def draw(axes, same_family, other_road_user):
        D = severity_matrix(dataset, same_family=same_family, other_road_user=other_road_user)
        cost, mean = severity_map(pred, target, D, ignore_index=ignore_index)
        axes[0].imshow(D.numpy(), cmap="magma", vmin=0, vmax=1)
        axes[0].set_xticks(range(0, C, 3))
        axes[0].set_yticks(range(0, C, 3))
        axes[0].set_xlabel("true class")
        axes[0].set_ylabel("predicted class")
        axes[0].set_title(
            f"same_family = {same_family:g}\nother_road_user = {other_road_user:g}", fontsize=9
        )
        from matplotlib import colormaps

        axes[1].imshow(cost, cmap=colormaps["magma"].with_extremes(bad="0.6"), vmin=0, vmax=1)
        axes[1].set_xticks([])
        axes[1].set_yticks([])
        axes[1].set_title(f"cost D[pred, true] per pixel\nmean severity {mean:.4f}", fontsize=9)
        return {
            "same_family": same_family,
            "other_road_user": other_road_user,
            "mean_severity": mean,
        }

    controls = [
        Control("same_family", 0.25, low=0.05, high=1.0, step=0.05),
        Control("other_road_user", 0.5, low=0.05, high=1.0, step=0.05),
    ]
    static = static or [
        {},
        {"same_family": 1.0, "other_road_user": 1.0},
        {"same_family": 0.1, "other_road_user": 0.25},
    ]
    return Explorer(
        draw,
        controls,
        static,
        panels=2,
        panel_size=(3.6, 3.2),
        title=f"severity matrix ({dataset}) and a segmentation's cost",
    )
