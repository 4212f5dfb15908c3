"""Plotting helpers shared by the lessons (matplotlib; each returns the ``Axes``).

Introduced in notebooks/01_optimal_transport.ipynb (transport plans drawn as lines),
03_unbalanced_relaxation.ipynb, 04_mnist_p_metric.ipynb and 05_noisy_label_grid.ipynb.
"""

from __future__ import annotations

import numpy as np


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    return ax


def plot_class_probabilities(
    ps, profiles, *, true_class: int, neighbors=(), ax=None, title: str | None = None
):
    """Average predicted probability of every class against a parameter (Frogner et al.
    2015, Fig. 4: one curve per digit, against the exponent ``p`` of the ground metric).

    Parameters
    ----------
    ps : sequence of float, length P
        The x values (e.g. ``p``).
    profiles : array, shape (P, K)
        ``profiles[i, k]``: mean predicted probability of class ``k`` at ``ps[i]``.
    true_class : int
        Drawn thick and black.
    neighbors : sequence of int
        Drawn thick and dashed.
    ax : matplotlib Axes, optional
        Where to draw (default: the current axes).
    title : str, optional
        Default: "test images of digit {true_class}".

    Returns
    -------
    matplotlib Axes

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    ax = _axes(ax)
    P = np.asarray(profiles, dtype=float)
    if P.ndim != 2 or P.shape[0] != len(ps):
        raise ValueError(
            f"profiles: expected shape ({len(ps)}, K), got {P.shape}; one row per "
            "value of ps, one column per class"
        )
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    for k in range(P.shape[1]):
        style = dict(color=cmap(k % 10), lw=1.2, alpha=0.7)
        if k == true_class:
            style.update(color="k", lw=3, alpha=1)
        elif k in neighbors:
            style.update(lw=2.5, ls="--", alpha=1)
        ax.plot(ps, P[:, k], marker="o", ms=3, label=str(k), **style)
    ax.set_xlabel("p (ground metric $|k - k'|^p$)")
    ax.set_ylabel("mean predicted probability")
    ax.set_ylim(0, 1)
    ax.set_title(title or f"test images of digit {true_class}")
    ax.legend(title="digit", ncol=2, fontsize=8)
    return ax


def plot_mean_with_spread(x, values, *, label: str, ax=None, color=None, marker="o"):
    """Mean over repeats with a band from the minimum to the maximum.

    Parameters
    ----------
    x : sequence, length X
        The x values.
    values : array, shape (S, X)
        ``S`` repeats (e.g. seeds) of each point.
    label : str
        Legend entry of the mean curve.
    ax : matplotlib Axes, optional
        Where to draw (default: the current axes).
    color : matplotlib colour, optional
        Of the curve and its band (default: the next colour of the cycle).
    marker : str
        Marker of the mean curve.

    Returns
    -------
    matplotlib Axes

    Introduced in notebooks/05_noisy_label_grid.ipynb.
    """
    ax = _axes(ax)
    V = np.asarray(values, dtype=float)
    if V.ndim != 2 or V.shape[1] != len(x):
        raise ValueError(
            f"values: expected shape (S, {len(x)}), got {V.shape}; one row per "
            "repeat (seed), one column per x value"
        )
    (line,) = ax.plot(x, V.mean(0), marker=marker, label=label, color=color)
    ax.fill_between(x, V.min(0), V.max(0), color=line.get_color(), alpha=0.2)
    return ax


def plot_history(history, *, ax=None, label: str | None = None):
    """Per-epoch training loss of a :class:`wlearn.train.History`.

    Parameters
    ----------
    history : wlearn.train.History
        What :func:`wlearn.train.fit` returned.
    ax : matplotlib Axes, optional
        Where to draw (default: the current axes).
    label : str, optional
        Legend entry.

    Returns
    -------
    matplotlib Axes

    See also notebooks/04_mnist_p_metric.ipynb, where :func:`wlearn.train.fit` first records a
    ``History``.
    """
    ax = _axes(ax)
    ax.plot(history.epochs, history.train_loss, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    return ax


def plot_mean_with_interval(x, values, *, label: str, ax=None, color=None, marker="o", level=0.95):
    """Mean over repeats with a shaded confidence interval of the mean (Student's t).

    Parameters
    ----------
    x : sequence, length X
        The x values.
    values : array, shape (S, X)
        ``S >= 2`` repeats (e.g. random problems) of each point.
    label : str
        Legend entry of the mean curve.
    ax : matplotlib Axes, optional
        Where to draw (default: the current axes).
    color : matplotlib colour, optional
        Of the curve and its band (default: the next colour of the cycle).
    marker : str
        Marker of the mean curve.
    level : float
        Confidence level of the band, in (0, 1): ``mean +- t_{(1+level)/2, S-1} s / sqrt(S)``.

    Returns
    -------
    matplotlib Axes

    Frogner et al. 2015, footnote 3 ("shaded regions are 95% intervals", read as intervals of
    the mean over random problems); introduced in notebooks/03_unbalanced_relaxation.ipynb.
    """
    from scipy import stats

    ax = _axes(ax)
    V = np.asarray(values, dtype=float)
    if V.ndim != 2 or V.shape[1] != len(x) or V.shape[0] < 2:
        raise ValueError(
            f"values: expected shape (S, {len(x)}) with S >= 2 repeats, got {V.shape}; one row "
            "per repeat, one column per x value"
        )
    if not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    mean = V.mean(0)
    half = stats.t.ppf((1 + level) / 2, V.shape[0] - 1) * V.std(0, ddof=1) / np.sqrt(V.shape[0])
    (line,) = ax.plot(x, mean, marker=marker, label=label, color=color)
    ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2, lw=0)
    return ax


def _check_plan(plan):
    T = np.asarray(plan, dtype=float)
    if T.ndim != 2 or not np.isfinite(T).all() or (T < 0).any():
        raise ValueError(
            f"plan: expected a (n, m) array of finite non-negative masses, got shape {T.shape}"
            + ("" if T.ndim != 2 else f" with minimum {np.nanmin(T):.3g}")
        )
    return T


def _segments(T, start, end, min_share):
    """Line segments, widths and alphas for the entries of ``T`` above ``min_share`` of its max."""
    top = T.max()
    i, j = np.nonzero(T > min_share * top) if top > 0 else (np.array([], int), np.array([], int))
    segs = np.stack([start[i], end[j]], axis=1)  # (L, 2, 2)
    share = T[i, j] / top if top > 0 else T[i, j]
    return segs, share


def plot_plan_lines(
    plan,
    xs,
    xt=None,
    *,
    ax=None,
    labels=None,
    min_share: float = 1e-2,
    color="C0",
    size: float = 900.0,
):
    """A transport plan drawn as lines between matched points: the line from ``xs[i]`` to
    ``xt[j]`` is as thick and as dark as the mass ``T[i, j]`` it carries (the picture of POT's
    ``ot.plot.plot2D_samples_mat``). Sources are filled discs, targets open circles, their areas
    proportional to the row and column sums of the plan.

    Parameters
    ----------
    plan : array, shape (n, m)
        The plan ``T``, non-negative.
    xs : array, shape (n, 2)
        Positions of the sources (the rows of ``T``, e.g. the predicted classes).
    xt : array, shape (m, 2), optional
        Positions of the targets (the columns). Default: ``xs`` (one set of classes, as for a
        prediction and a target over the same ``K`` classes).
    ax : matplotlib Axes, optional
        Where to draw (default: the current axes).
    labels : sequence of str, length n, optional
        Names written next to the sources.
    min_share : float
        Entries below this share of the largest entry are not drawn.
    color : matplotlib colour
        Of the sources and the lines.
    size : float
        Marker area (points^2) of a point holding all the mass.

    Returns
    -------
    matplotlib Axes

    Introduced in notebooks/01_optimal_transport.ipynb (the husky example).
    """
    from matplotlib.collections import LineCollection

    ax = _axes(ax)
    T = _check_plan(plan)
    xs = np.asarray(xs, dtype=float)
    xt = xs if xt is None else np.asarray(xt, dtype=float)
    if xs.shape != (T.shape[0], 2) or xt.shape != (T.shape[1], 2):
        raise ValueError(
            f"xs, xt: expected shapes ({T.shape[0]}, 2) and ({T.shape[1]}, 2) for a plan of "
            f"shape {T.shape}, got {xs.shape} and {xt.shape}"
        )
    segs, share = _segments(T, xs, xt, min_share)
    keep = np.linalg.norm(segs[:, 0] - segs[:, 1], axis=1) > 0  # mass that stays in place
    ax.add_collection(
        LineCollection(segs[keep], linewidths=1 + 7 * share[keep], colors=color, alpha=0.55)
    )
    total = T.sum()
    ax.scatter(*xt.T, s=size * T.sum(0) / total, facecolors="none", edgecolors="C3", lw=2, zorder=3)
    ax.scatter(*xs.T, s=size * T.sum(1) / total, color=color, alpha=0.8, zorder=4)
    for k, name in enumerate(labels or ()):  # written away from the nearest other source
        gaps = np.linalg.norm(xs - xs[k], axis=1)
        gaps[k] = np.inf
        d = xs[k] - xs[np.argmin(gaps)] if len(xs) > 1 else np.ones(2)
        d = d / max(np.linalg.norm(d), 1e-12)
        ax.annotate(
            name,
            xs[k],
            xytext=tuple(9 * d),
            textcoords="offset points",
            fontsize=9,
            ha="left" if d[0] >= 0 else "right",
            va="bottom" if d[1] >= 0 else "top",
        )
    ax.autoscale_view()
    return ax


def plot_plan_bins(
    plan, *, ax=None, hists=None, names=("h", "y"), min_share: float = 1e-3, color="C0"
):
    """A plan between two histograms on ordered bins: the first histogram drawn as bars on top,
    the second as bars hanging below, and a line from bin ``i`` on top to bin ``j`` below for
    each entry ``T[i, j]``, as dark as the mass it carries.

    Parameters
    ----------
    plan : array, shape (K, K)
        The plan ``T``; its row sums are drawn on top, its column sums below.
    ax : matplotlib Axes, optional
        Where to draw (default: the current axes).
    hists : (array, array) or None
        Two histograms of shapes (K,) and (L,) to draw as the bars instead of the plan's row and
        column sums, which are then drawn over them as black outlines (for a relaxed plan, whose
        marginals need not match them; Frogner et al. 2015, eq. 8).
    names : (str, str)
        Labels of the two histograms (default: the prediction ``h`` and the target ``y``).
    min_share : float
        Entries below this share of the largest entry are not drawn.
    color : matplotlib colour
        Of the lines.

    Returns
    -------
    matplotlib Axes

    Introduced in notebooks/01_optimal_transport.ipynb (transport plans on a line); the
    ``hists`` form in notebooks/03_unbalanced_relaxation.ipynb.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgb

    ax = _axes(ax)
    T = _check_plan(plan)
    K, L = T.shape
    rows, cols = T.sum(1), T.sum(0)
    top, bottom = (rows, cols) if hists is None else (np.asarray(x, dtype=float) for x in hists)
    if top.shape != (K,) or bottom.shape != (L,):
        raise ValueError(
            f"hists: expected two histograms of shapes ({K},) and ({L},) for a plan of shape "
            f"{T.shape}, got {top.shape} and {bottom.shape}"
        )
    scale = 0.8 / max(top.max(), bottom.max(), rows.max(), cols.max(), 1e-300)
    alpha = 1.0 if hists is None else 0.45
    ax.bar(range(K), top * scale, bottom=1.0, width=0.8, color="C0", alpha=alpha, label=names[0])
    ax.bar(
        range(L), -bottom * scale, bottom=0.0, width=0.8, color="C1", alpha=alpha, label=names[1]
    )
    if hists is not None:
        ax.step(range(K), 1.0 + rows * scale, where="mid", color="k", lw=1.2, label="plan's sums")
        ax.step(range(L), -cols * scale, where="mid", color="k", lw=1.2)
    start = np.stack([np.arange(K), np.ones(K)], axis=1)  # (K, 2)
    end = np.stack([np.arange(L), np.zeros(L)], axis=1)  # (L, 2)
    segs, share = _segments(T, start, end, min_share)
    rgba = np.zeros((len(share), 4))
    rgba[:, :3] = to_rgb(color)
    rgba[:, 3] = 0.15 + 0.85 * share
    ax.add_collection(LineCollection(segs, linewidths=0.5 + 2.5 * share, colors=rgba))
    ax.set_ylim(-0.9, 1.9)
    ax.set_yticks([])
    ax.set_xlabel("bin")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper right", fontsize=8)
    return ax
