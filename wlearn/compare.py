"""A fair comparison of training losses: one learning-rate grid, several seeds, paired differences.

The protocol of lesson 07, fixed by looking at the cross-entropy baseline alone:

1. **Recipes.** A :class:`Recipe` says how one loss is trained: cross-entropy, a term alone
   (the squared EMD), or cross-entropy for a few warm-up epochs and then cross-entropy plus a
   weighted term (the squared EMD, or Hou's cost-matrix loss with a fixed or a learned ground
   matrix), as the public code attributed to Hou et al. 2016 (Abstract) trains its variants
   (see :mod:`wlearn.losses.learned_ground`).
2. **One learning-rate grid for all.** Each recipe trains with every learning rate of the
   grid on the first seed's training split; the rate with the best validation metric
   (``select_by``, read at the last epoch) is kept, the smaller on a tie.
3. **Seeds.** The chosen rate trains on every other seed (the first seed's run is reused).
   A seed fixes the data draw (``data_fn(seed)``), the initialisation and the minibatch
   order, the same for every recipe, so differences are **paired** by seed.
4. **Convergence.** A fixed number of epochs with a cosine learning-rate decay to zero
   (Adam); :meth:`Run.converged` states the criterion the lesson checks (the validation
   metric's range over the last epochs).
5. **Decoding and metrics.** Arg-max decoding; exact accuracy and 1-off accuracy (Hou's
   metrics, per the public code's ``diag_error``) and the mean absolute class error (ours),
   from :class:`wlearn.metrics.OrdinalMetrics`.

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from wlearn._env import get_device
from wlearn.ground import line
from wlearn.losses import (
    CostMatrixLoss,
    HouGroundMatrix,
    SquaredEMDLoss,
    WarmupCombinedLoss,
    rank_transform,
)
from wlearn.metrics import OrdinalMetrics

__all__ = ["METRICS", "Comparison", "Recipe", "Run", "compare", "train_recipe"]

METRICS = ("accuracy", "off_by_one", "mae")
"""The test metrics of every run: exact accuracy, 1-off accuracy, mean absolute class error."""

_TERMS = ("none", "emd2", "cost-matrix")
_GROUNDS = (None, "learned", "line")


@dataclass(frozen=True)
class Recipe:
    """How one loss is trained (see :class:`wlearn.losses.WarmupCombinedLoss`).

    Attributes
    ----------
    name : str
        Its label in tables and figures.
    term : str
        One of ``"none"``: cross-entropy; ``"emd2"``: :class:`wlearn.losses.SquaredEMDLoss`;
        ``"cost-matrix"``: :class:`wlearn.losses.CostMatrixLoss`.
    ce_weight : float
        Weight of cross-entropy once the term is on (0: the term alone).
    weight : float
        Weight of the term.
    warmup : int
        Epochs of cross-entropy alone before the term is added.
    ground : {None, "learned", "line"}
        For ``"cost-matrix"``: Hou's matrix learned from the penultimate features
        (:class:`wlearn.losses.HouGroundMatrix`, recomputed after every epoch from the end of
        the warm-up), or the same rank transform applied to the hand-made ``|i - j|``.
    mu, p : float
        Shift and power of :func:`wlearn.losses.rank_transform` (XE-EMD1: 0.5 and 1).

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    name: str
    term: str = "none"
    ce_weight: float = 1.0
    weight: float = 1.0
    warmup: int = 0
    ground: str | None = None
    mu: float = 0.5
    p: float = 1.0

    def __post_init__(self):
        if self.term not in _TERMS:
            raise ValueError(f"term: expected one of {_TERMS}, got {self.term!r}")
        if self.ground not in _GROUNDS or ((self.ground is None) != (self.term != "cost-matrix")):
            raise ValueError(
                f"ground: expected 'learned' or 'line' with term='cost-matrix' and None "
                f"otherwise, got ground={self.ground!r} with term={self.term!r}"
            )

    def make_loss(self, K: int) -> tuple[WarmupCombinedLoss, HouGroundMatrix | None]:
        """The loss module for ``K`` classes, and its learned matrix (None if it has none).

        Parameters
        ----------
        K : int
            Number of classes.

        Returns
        -------
        (WarmupCombinedLoss, HouGroundMatrix or None)
        """
        ground = None
        if self.term == "none":
            term = None
        elif self.term == "emd2":
            term = SquaredEMDLoss()
        elif self.ground == "learned":
            ground = HouGroundMatrix(K, mu=self.mu, p=self.p)
            term = CostMatrixLoss(ground)
        else:
            term = CostMatrixLoss(rank_transform(line(K, 1), mu=self.mu, p=self.p))
        loss = WarmupCombinedLoss(
            term, weight=self.weight, ce_weight=self.ce_weight, warmup=self.warmup
        )
        return loss, ground


@dataclass
class Run:
    """One training run: a recipe, a learning rate, a seed, and what it measured.

    Attributes
    ----------
    recipe : Recipe
        What was trained.
    lr : float
        Its learning rate.
    seed : int
        The data draw, initialisation and minibatch order.
    val : dict of str -> list of float
        Each metric of :data:`METRICS` on the validation split, after every epoch.
    test : dict of str -> float
        The test metrics at the end (arg-max decoding).
    test_proba : torch.Tensor, shape (N_test, K)
        Predicted probabilities on the test split (CPU).
    test_target : torch.Tensor, shape (N_test,)
        The test split's classes (CPU), to read the probabilities out another way.
    ground : torch.Tensor or None, shape (K, K)
        The learned cost matrix at the end (None without one).
    distances : torch.Tensor or None, shape (K, K)
        The distances between class centroids it was computed from.
    cpu_seconds : float
        Process CPU time of the training (all threads), for the overhead comparison.
    epochs : int
        Number of epochs trained.

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    recipe: Recipe
    lr: float
    seed: int
    val: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    test_proba: torch.Tensor | None = None
    test_target: torch.Tensor | None = None
    ground: torch.Tensor | None = None
    distances: torch.Tensor | None = None
    cpu_seconds: float = 0.0
    epochs: int = 0

    def converged(self, metric: str = "accuracy", *, last: int = 5, tol: float = 0.015) -> bool:
        """Whether the validation ``metric`` varied by at most ``tol`` over the last epochs.

        Parameters
        ----------
        metric : str
            One of :data:`METRICS`.
        last : int
            How many final epochs to look at.
        tol : float
            Largest allowed range (max - min), in the metric's units.

        Returns
        -------
        bool
        """
        v = np.asarray(self.val[metric][-last:])
        return bool(v.max() - v.min() <= tol)


def _scores(model, X, y, K, batch_size=4096):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    m = OrdinalMetrics(K)
    m.update(logits, y)
    out = m.compute()
    return {k: out[k] for k in METRICS}, logits


def train_recipe(
    recipe: Recipe,
    split,
    *,
    lr: float,
    n_epochs: int,
    make_model: Callable[[int, int], torch.nn.Module],
    batch_size: int = 64,
    seed: int = 0,
    device=None,
) -> Run:
    """Train one recipe on one split (Adam, cosine decay to zero) and score it.

    The model is built after ``torch.manual_seed(seed)``, so every recipe starts from the
    same weights for a given seed. A learned ground matrix is recomputed after every epoch
    from ``warmup - 1`` on (the first one at the end of the warm-up), from the penultimate
    features of the whole training split in evaluation mode.

    Parameters
    ----------
    recipe : Recipe
        What to train.
    split : wlearn.data.ordinal.Split
        ``X_train, y_train, X_val, y_val, X_test, y_test, num_classes``.
    lr : float
        Adam's initial learning rate.
    n_epochs : int
        Epochs (the cosine decay reaches zero at the last one).
    make_model : callable
        ``make_model(in_features, K)`` -> a module returning logits, with a
        ``penultimate(X)`` method when the recipe learns its ground matrix.
    batch_size : int
        Minibatch size.
    seed : int
        Seeds the initialisation and the minibatch order.
    device : str or torch.device, optional
        Default :func:`wlearn.get_device`.

    Returns
    -------
    Run

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    dev = get_device(device)
    K = split.num_classes
    X_tr, y_tr = split.X_train.to(dev), split.y_train.to(dev)
    X_va, y_va = split.X_val.to(dev), split.y_val.to(dev)
    torch.manual_seed(seed)
    model = make_model(X_tr[0].numel(), K).to(dev)
    loss_fn, ground = recipe.make_loss(K)
    loss_fn.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_epochs)
    gen = torch.Generator().manual_seed(seed)
    run = Run(recipe=recipe, lr=lr, seed=seed, val={k: [] for k in METRICS})
    t0 = time.process_time()
    for epoch in range(n_epochs):
        loss_fn.epoch = epoch
        model.train()
        for idx in torch.randperm(len(X_tr), generator=gen).to(dev).split(batch_size):
            loss = loss_fn(model(X_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if ground is not None and epoch >= recipe.warmup - 1:
            model.eval()
            with torch.no_grad():
                ground.update(model.penultimate(X_tr), y_tr)
        for k, v in _scores(model, X_va, y_va, K)[0].items():
            run.val[k].append(v)
    run.cpu_seconds = time.process_time() - t0
    run.epochs = n_epochs
    run.test, logits = _scores(model, split.X_test.to(dev), split.y_test.to(dev), K)
    run.test_proba = torch.softmax(logits, 1).cpu()
    run.test_target = split.y_test.cpu().clone()
    if ground is not None:
        run.ground, run.distances = ground.M.cpu().clone(), ground.distances.cpu().clone()
    return run


@dataclass
class Comparison:
    """The outcome of :func:`compare`: the grid, the chosen rates, every run.

    Attributes
    ----------
    recipes : list of Recipe
        In the order given.
    seeds : list of int
        The seeds, the first one used for the grid.
    grid : dict of str -> dict of float -> float
        Recipe name -> {learning rate: validation ``select_by`` metric on the first seed}.
    lr : dict of str -> float
        The chosen learning rate of each recipe.
    runs : dict of str -> list of Run
        Recipe name -> its runs at the chosen rate, one per seed.
    select_by : str
        The validation metric the rate was chosen by.

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    recipes: list
    seeds: list
    grid: dict = field(default_factory=dict)
    lr: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)
    select_by: str = "accuracy"

    @property
    def names(self) -> list[str]:
        """The recipe names, in order."""
        return [r.name for r in self.recipes]

    def metrics(self, name: str) -> dict[str, np.ndarray]:
        """Test metrics of one recipe, one value per seed.

        Parameters
        ----------
        name : str
            A recipe name.

        Returns
        -------
        dict of str -> numpy.ndarray, shape (S,)
            For each of :data:`METRICS`.
        """
        runs = self._runs(name)
        return {k: np.array([r.test[k] for r in runs]) for k in METRICS}

    def paired(self, name: str, baseline: str) -> dict[str, np.ndarray]:
        """Per-seed differences ``name - baseline`` of each test metric.

        Parameters
        ----------
        name, baseline : str
            Recipe names.

        Returns
        -------
        dict of str -> numpy.ndarray, shape (S,)
            Positive is better for accuracy and 1-off, worse for MAE.
        """
        a, b = self.metrics(name), self.metrics(baseline)
        return {k: a[k] - b[k] for k in METRICS}

    def gain(self, name: str, baseline: str) -> dict[str, tuple[float, float]]:
        """Mean and spread of the paired differences, signed so that positive is better.

        Parameters
        ----------
        name, baseline : str
            Recipe names.

        Returns
        -------
        dict of str -> (float, float)
            For each of :data:`METRICS`: (mean over seeds of the improvement of ``name`` over
            ``baseline``, standard deviation over seeds of the paired differences, ``ddof=1``).
            For ``"mae"`` the improvement is ``baseline - name``.
        """
        d = self.paired(name, baseline)
        return {k: (float(-d[k].mean() if k == "mae" else d[k].mean()), _sd(d[k])) for k in METRICS}

    def summary(self, name: str, baseline: str) -> dict[str, str]:
        """The paired differences as text, ``"+0.001 ± 0.004"`` per metric (for a claim).

        Parameters
        ----------
        name, baseline : str
            Recipe names.

        Returns
        -------
        dict of str -> str
            ``"Δ accuracy"``, ``"Δ 1-off"``, ``"Δ MAE"`` (``name - baseline``: mean ± sd over
            seeds).
        """
        d = self.paired(name, baseline)
        label = {"accuracy": "Δ accuracy", "off_by_one": "Δ 1-off", "mae": "Δ MAE"}
        return {label[k]: f"{d[k].mean():+.3f} ± {_sd(d[k]):.3f}" for k in METRICS}

    def plot_paired(self, baseline: str, axes=None):
        """Paired differences against ``baseline``: one dot per seed, mean ± sd as a bar.

        Parameters
        ----------
        baseline : str
            The recipe the differences are taken against (left out of the panels).
        axes : sequence of 3 matplotlib Axes, optional
            Where to draw (default: a new figure with three panels).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        names = [n for n in self.names if n != baseline]
        if axes is None:
            _, axes = plt.subplots(1, 3, figsize=(13, 0.6 * len(names) + 1.8), sharey=True)
        units = {"accuracy": "exact accuracy", "off_by_one": "1-off accuracy", "mae": "MAE (bins)"}
        better = {"accuracy": "right", "off_by_one": "right", "mae": "left"}
        for ax, k in zip(axes, METRICS, strict=True):
            for i, n in enumerate(names):
                d = self.paired(n, baseline)[k]
                jitter = np.linspace(-0.15, 0.15, len(d)) if len(d) > 1 else np.zeros(1)
                ax.scatter(d, i + jitter, s=12, color=f"C{i}", alpha=0.6)
                ax.errorbar(d.mean(), i, xerr=_sd(d), fmt="o", color=f"C{i}", capsize=4, ms=7)
            ax.axvline(0, color="k", lw=0.8)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.set(
                xlabel=f"{units[k]}: loss − {baseline}",
                title=f"{units[k]} (better: {better[k]})",
            )
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(range(len(names)), names)
        axes[0].invert_yaxis()
        fig = axes[0].figure
        fig.tight_layout()
        return fig

    def plot_curves(self, metric: str = "accuracy", ax=None):
        """The validation ``metric`` after every epoch of each recipe's first-seed run.

        Parameters
        ----------
        metric : str
            One of :data:`METRICS`.
        ax : matplotlib Axes, optional
            Where to draw.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 3.6))
        warm = max((r.warmup for r in self.recipes if r.term != "none"), default=0)
        for i, n in enumerate(self.names):
            run = self.runs[n][0]
            ax.plot(np.arange(1, run.epochs + 1), run.val[metric], color=f"C{i}", label=n)
        if warm:
            ax.axvline(warm + 0.5, color="gray", ls="--", lw=1, label="end of the warm-up")
        names = {"accuracy": "exact accuracy", "off_by_one": "1-off accuracy", "mae": "MAE (bins)"}
        ax.set(xlabel="epoch", ylabel=f"validation {names[metric]}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        return ax

    def cpu_per_epoch(self, name: str) -> float:
        """Mean CPU seconds per training epoch of a recipe (all threads).

        Parameters
        ----------
        name : str
            A recipe name.

        Returns
        -------
        float
        """
        runs = self._runs(name)
        return float(np.mean([r.cpu_seconds / r.epochs for r in runs]))

    def table(self, baseline: str) -> str:
        """A text table: each recipe's rate, metrics (mean ± sd over seeds) and paired
        differences against ``baseline`` (mean ± sd over seeds).

        Parameters
        ----------
        baseline : str
            The recipe the differences are taken against.

        Returns
        -------
        str
        """
        head = f"{'loss':26s}{'lr':>7s}" + "".join(
            f"{h:>15s}" for h in ("accuracy", "1-off", "MAE", "Δ accuracy", "Δ 1-off", "Δ MAE")
        )
        lines = [head, "-" * len(head)]
        for name in self.names:
            m = self.metrics(name)
            cells = [
                f"{m[k].mean():7.3f} ± {m[k].std(ddof=1) if len(m[k]) > 1 else 0:.3f}"
                for k in METRICS
            ]
            if name == baseline:
                cells += ["", "", ""]
            else:
                d = self.paired(name, baseline)
                cells += [f"{d[k].mean():+7.3f} ± {_sd(d[k]):.3f}" for k in METRICS]
            lines.append(f"{name:26s}{self.lr[name]:7.0e}" + "".join(f"{c:>15s}" for c in cells))
        return "\n".join(lines)

    def _runs(self, name):
        if name not in self.runs:
            raise KeyError(f"name: expected one of {self.names}, got {name!r}")
        return self.runs[name]


def _sd(x) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def compare(
    recipes: Sequence[Recipe],
    data_fn: Callable[[int], object],
    *,
    seeds: Sequence[int],
    lrs: Sequence[float],
    n_epochs: int,
    make_model: Callable[[int, int], torch.nn.Module],
    batch_size: int = 64,
    select_by: str = "accuracy",
    device=None,
    progress: bool = True,
    desc: str = "runs",
) -> Comparison:
    """Run the protocol of the module docstring: the grid on the first seed, then every seed.

    Parameters
    ----------
    recipes : sequence of Recipe
        The losses to compare (distinct names).
    data_fn : callable
        ``data_fn(seed)`` -> a :class:`wlearn.data.ordinal.Split`.
    seeds : sequence of int
        At least one; the first is used for the grid.
    lrs : sequence of float
        The learning-rate grid, the same for every recipe.
    n_epochs : int
        Epochs of every run.
    make_model : callable
        ``make_model(in_features, K)`` -> model (see :func:`train_recipe`).
    batch_size : int
        Minibatch size.
    select_by : {"accuracy", "off_by_one", "mae"}
        Validation metric that chooses the rate (higher is better, lower for ``"mae"``).
    device : str or torch.device, optional
        Default :func:`wlearn.get_device`.
    progress : bool
        One progress bar over all runs.
    desc : str
        Its label.

    Returns
    -------
    Comparison

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    names = [r.name for r in recipes]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"recipes: expected a non-empty list with distinct names, got {names}")
    seeds, lrs = list(seeds), sorted(float(x) for x in lrs)
    if not seeds or not lrs:
        raise ValueError(f"seeds, lrs: expected at least one of each, got {seeds}, {lrs}")
    if select_by not in METRICS:
        raise ValueError(f"select_by: expected one of {METRICS}, got {select_by!r}")
    sign = -1.0 if select_by == "mae" else 1.0
    out = Comparison(recipes=list(recipes), seeds=seeds, select_by=select_by)
    bar = tqdm(
        total=len(recipes) * (len(lrs) + len(seeds) - 1),
        desc=desc,
        disable=not progress,
        leave=False,
    )
    kw = dict(n_epochs=n_epochs, make_model=make_model, batch_size=batch_size, device=device)
    data = data_fn(seeds[0])
    for recipe in recipes:
        grid = {}
        for lr in lrs:
            grid[lr] = train_recipe(recipe, data, lr=lr, seed=seeds[0], **kw)
            bar.update()
        best = max(lrs, key=lambda lr: (sign * grid[lr].val[select_by][-1], -lr))
        out.grid[recipe.name] = {lr: run.val[select_by][-1] for lr, run in grid.items()}
        out.lr[recipe.name] = best
        out.runs[recipe.name] = [grid[best]]
    for s in seeds[1:]:  # one data draw in memory at a time
        data = data_fn(s)
        for recipe in recipes:
            out.runs[recipe.name].append(
                train_recipe(recipe, data, lr=out.lr[recipe.name], seed=s, **kw)
            )
            bar.update()
    bar.close()
    return out
