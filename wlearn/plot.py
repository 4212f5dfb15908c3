"""Plotting helpers shared by the lessons (matplotlib; each returns the ``Axes``).

Introduced in notebooks/04_mnist_p_metric.ipynb and 05_noisy_label_grid.ipynb.
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
