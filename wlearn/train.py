"""Plain training and evaluation loops: minibatch gradient descent on ``loss_fn``.

The loss contract
-----------------
A model returns logits ``z`` of shape ``(B, K)``. What ``loss_fn`` receives is set by two
switches, so cross-entropy and Wasserstein losses run through the same loop:

==============  =====================================  ===================================
switch          value                                  ``loss_fn`` receives
==============  =====================================  ===================================
``output``      ``"logits"`` (default)                 ``z``, shape (B, K)
                ``"proba"``                            ``softmax(z)``, rows on the simplex
``target``      ``"index"`` (default)                  ``y``, int64, shape (B,)
                ``"onehot"``                           ``one_hot(y)`` as float, shape (B, K)
==============  =====================================  ===================================

``torch.nn.CrossEntropyLoss`` and :class:`wlearn.losses.OneHotWassersteinLoss` take
``("logits", "index")``; :class:`wlearn.losses.SinkhornLoss` (Frogner et al. 2015, which
compares histograms) takes ``("proba", "onehot")``. If ``y`` is already a float ``(N, K)``
matrix (soft or multi-label targets), it is passed as it is with ``target="onehot"``.

Introduced in notebooks/04_mnist_p_metric.ipynb.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from wlearn._env import get_device

OUTPUTS = ("logits", "proba")
TARGETS = ("index", "onehot")

Metric = Callable[[torch.Tensor, torch.Tensor], float]
"""A metric: ``fn(proba (N, K), y)`` -> float."""


def accuracy_metric(proba: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max is the label: the default metric of :func:`fit`.

    Parameters
    ----------
    proba : torch.Tensor, shape (N, K)
        Predicted probabilities (or any scores).
    y : torch.Tensor, shape (N,) integer or (N, K) one-hot
        True classes.

    Returns
    -------
    float

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    y = y.argmax(-1) if y.ndim == 2 else y
    return (proba.argmax(-1) == y).double().mean().item()


@dataclass
class History:
    """What :func:`fit` records, one entry per epoch.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss of each epoch (averaged over minibatches).
    metrics : dict of str -> list of float
        Each metric on the validation data, after each epoch (empty without validation data).
    seconds : float
        Wall-clock time of the whole fit.

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """

    train_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def epochs(self) -> list[int]:
        """Epoch numbers ``1 .. len(train_loss)``, for plotting."""
        return list(range(1, len(self.train_loss) + 1))


def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}; {_CHOICE_FIX[name]}")
    return value


_CHOICE_FIX = {
    "output": "'proba' for losses that compare histograms (SinkhornLoss), 'logits' for "
    "CrossEntropyLoss and OneHotWassersteinLoss",
    "target": "'onehot' for losses that compare histograms (SinkhornLoss), 'index' for "
    "CrossEntropyLoss and OneHotWassersteinLoss",
    "optimizer": "pass 'adam' or 'sgd'",
}


def _check_data(X, y, name_X="X", name_y="y"):
    if not isinstance(X, torch.Tensor):
        raise TypeError(
            f"{name_X}: expected a torch.Tensor, got {type(X).__name__}; convert it "
            f"with torch.as_tensor({name_X}, dtype=torch.float32)"
        )
    if not isinstance(y, torch.Tensor):
        raise TypeError(
            f"{name_y}: expected a torch.Tensor, got {type(y).__name__}; convert it "
            f"with torch.as_tensor({name_y})"
        )
    if X.ndim < 1 or len(X) == 0 or len(X) != len(y):
        raise ValueError(
            f"{name_y}: expected {len(X)} rows to match {name_X}, got {len(y)}; "
            "give one label per row of the data"
        )
    if y.ndim == 1 and (y.is_floating_point() or y.dtype == torch.bool):
        raise TypeError(
            f"{name_y}: expected integer class labels, got dtype {y.dtype}; convert "
            f"with {name_y}.long()"
        )
    if y.ndim not in (1, 2):
        raise ValueError(
            f"{name_y}: expected shape (N,) or (N, K), got {tuple(y.shape)}; pass "
            "class indices (N,) or target rows (N, K)"
        )
    for name, t in ((name_X, X), (name_y, y)):
        if t.is_complex():
            raise TypeError(
                f"{name}: expected real numbers, got dtype {t.dtype}; pass {name}.real or "
                f"{name}.abs()"
            )
        if t.is_floating_point() and not torch.isfinite(t).all():
            rows = (~torch.isfinite(t.reshape(len(t), -1))).any(1).nonzero()[:, 0]
            raise ValueError(
                f"{name}: expected finite values, got NaN/inf in {len(rows)} rows (first: "
                f"{rows[:5].tolist()}); drop or impute those rows before training"
            )


def _prepare(logits: torch.Tensor, y: torch.Tensor, output: str, target: str):
    """Apply the loss contract: (model logits, labels) -> (loss input, loss target)."""
    inp = torch.softmax(logits, dim=-1) if output == "proba" else logits
    if target == "onehot" and y.ndim == 1:
        tgt = F.one_hot(y, logits.shape[-1]).to(logits.dtype)  # (B, K)
    elif target == "index" and y.ndim == 2:
        tgt = y.argmax(-1)  # (B,)
    else:
        tgt = y.to(logits.dtype) if y.is_floating_point() else y
    return inp, tgt


def _positive_int(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 1:
        raise ValueError(f"{name}: expected a positive integer, got {x!r}; pass an int >= 1")
    return int(x)  # np.int64 too


HUGE_OUTPUT = 1e6
"""Model outputs larger than this (a softmax saturates long before) mean runaway weights."""

DIVERGENCE_FACTOR = 1e3
""":func:`fit` warns once when an epoch's mean training loss exceeds this many times the
loss of the first minibatch (in absolute value): the optimization is diverging."""


def _all_finite(tensors) -> bool:
    """Whether every tensor of ``tensors`` (``None`` entries skipped) is finite; one sync."""
    flags = [torch.isfinite(t).all() for t in tensors if t is not None]
    return bool(torch.stack(flags).all()) if flags else True


def _check_step(model, loss, logits, epoch, step, lr, when):
    """Raise FloatingPointError naming what became non-finite, and what would help."""
    at = f"at epoch {epoch}, minibatch {step}"
    params = [p.detach() for p in model.parameters()]
    if when == "loss":
        if not _all_finite([logits.detach()]):
            raise FloatingPointError(
                f"the model's outputs became NaN/inf {at} (inputs and weights finite): the "
                f"weights have grown too large; lower lr (got {lr})"
            )
        big = logits.detach().abs().max().item()
        if big > HUGE_OUTPUT:
            raise FloatingPointError(
                f"loss became {loss.item()} {at}: it overflowed for model outputs as large as "
                f"{big:.3g}; the weights have grown too large, lower lr (got {lr})"
            )
        raise FloatingPointError(
            f"loss became {loss.item()} {at} for finite model outputs (largest {big:.3g}): the "
            "loss itself failed (a log of 0, or a batch in which no target counts: every one "
            "at ignore_index); check output= and target=, which set what the loss receives"
        )
    if when == "grad":
        raise FloatingPointError(
            f"the gradient became NaN/inf {at} (loss {loss.item():.4g}, finite); stopped before "
            "the optimizer step, the weights are unchanged: the loss's backward failed (NaN "
            "inputs to it, or a loss with no gradient there)"
        )
    bad = sum(int((~torch.isfinite(p)).sum()) for p in params)
    raise FloatingPointError(
        f"the optimizer step {at} made {bad} weights NaN/inf (loss {loss.item():.4g} and "
        f"gradient finite): the step overflowed; lower lr (got {lr})"
    )


def fit(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    n_epochs: int,
    lr: float,
    batch_size: int,
    output: str = "logits",
    target: str = "index",
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    X_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    metrics: Mapping[str, Metric] | None = None,
    device=None,
    seed: int = 0,
    progress: bool = True,
    desc: str | None = None,
) -> History:
    """Train ``model`` in place by minibatch Adam (or SGD) on ``loss_fn``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``X[batch]`` to logits of shape (B, K). Initialize it (after
        ``wlearn.seed_everything``) before calling.
    loss_fn : callable
        ``loss_fn(input, target)`` -> scalar; see the module docstring for ``output`` and
        ``target``, which say what it receives.
    X : torch.Tensor, shape (N, ...)
    y : torch.Tensor, shape (N,) int64 labels, or (N, K) float targets
    n_epochs, lr, batch_size : int, float, int
        Python or NumPy numbers (``np.int64``, ``np.float32``).
    output : {"logits", "proba"}
    target : {"index", "onehot"}
    optimizer : {"adam", "sgd"}
    weight_decay : float
        L2 penalty passed to the optimizer.
    X_val, y_val : torch.Tensor, shapes (N_val, ...) and (N_val,) or (N_val, K), optional
        Data on which ``metrics`` are computed after every epoch.
    metrics : dict of str -> callable, optional
        ``fn(proba, y)`` -> float; default ``{"accuracy": accuracy_metric}``.
    device : str or torch.device, optional
        Default :func:`wlearn.get_device` (CUDA when present).
    seed : int
        Seeds the order of the minibatches (a private generator).
    progress : bool
        Show a tqdm bar over epochs.
    desc : str, optional
        Label of the progress bar.

    Returns
    -------
    History
        Per-epoch training loss and validation metrics.

    Raises
    ------
    ValueError
        For bad arguments, NaN/inf in ``X`` or ``y`` (naming the rows), or a ``loss_fn``
        that does not return a scalar (``reduction="none"``).
    FloatingPointError
        When the loss, its gradient or the weights after a step become NaN/inf, naming what
        failed, the epoch and minibatch, and what would help. The loss and the gradient are
        checked before the step (the weights are then unchanged), the weights after it, so
        broken weights are never returned as if trained. A ``RuntimeWarning`` says when the
        epoch loss grows :data:`DIVERGENCE_FACTOR` times above the first minibatch's.

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    _check_data(X, y)
    _check_choice(output, "output", OUTPUTS)
    _check_choice(target, "target", TARGETS)
    _check_choice(optimizer, "optimizer", ("adam", "sgd"))
    n_epochs = _positive_int(n_epochs, "n_epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    if not (
        isinstance(lr, numbers.Real) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0
    ):
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}; try lr=1e-3 with Adam")
    lr = float(lr)  # np.float32 too
    if (X_val is None) != (y_val is None):
        raise ValueError(
            "X_val, y_val: expected both or neither; pass the validation labels "
            "with the validation data"
        )
    if X_val is not None:
        _check_data(X_val, y_val, "X_val", "y_val")
    metrics = dict(metrics) if metrics is not None else {"accuracy": accuracy_metric}
    dev = get_device(device)
    model.to(dev)
    dtype = next(model.parameters()).dtype
    Xd, yd = X.to(dev, dtype), y.to(dev)
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    hist = History(metrics={k: [] for k in metrics} if X_val is not None else {})
    t0 = time.perf_counter()
    bar = tqdm(range(n_epochs), desc=desc or "fit", disable=not progress, leave=False)
    first, warned = None, False
    params = list(model.parameters())
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(Xd), generator=gen).to(dev)
        total, n_seen = 0.0, 0
        for step, start in enumerate(range(0, len(Xd), batch_size), 1):
            idx = perm[start : start + batch_size]
            logits = model(Xd[idx])
            inp, tgt = _prepare(logits, yd[idx], output, target)
            loss = loss_fn(inp, tgt)
            if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
                raise ValueError(
                    f"loss_fn: expected a scalar loss, got {got}; construct the loss with "
                    "reduction='mean' (reduction='none' gives one value per sample)"
                )
            if not torch.isfinite(loss):
                _check_step(model, loss, logits, epoch + 1, step, lr, "loss")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not _all_finite([p.grad for p in params]):
                _check_step(model, loss, logits, epoch + 1, step, lr, "grad")
            opt.step()
            if not _all_finite([p.detach() for p in params]):
                _check_step(model, loss, logits, epoch + 1, step, lr, "weights")
            value = loss.item()
            first = abs(value) if first is None else first
            total += value * len(idx)
            n_seen += len(idx)
        hist.train_loss.append(total / n_seen)
        if not warned and first and abs(hist.train_loss[-1]) > DIVERGENCE_FACTOR * first:
            warned = True
            warnings.warn(
                f"fit: the training loss grew from {first:.4g} (first minibatch) to "
                f"{hist.train_loss[-1]:.4g} (epoch {epoch + 1} mean): the optimization is "
                f"diverging; lower lr (got {lr})",
                RuntimeWarning,
                stacklevel=2,
            )
        if X_val is not None:
            proba = predict_proba(model, X_val, device=dev)
            for k, fn in metrics.items():
                hist.metrics[k].append(float(fn(proba, y_val)))
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.4g}")
    hist.seconds = time.perf_counter() - t0
    return hist


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module, X: torch.Tensor, *, batch_size: int = 4096, device=None
) -> torch.Tensor:
    """``softmax(model(X))`` in evaluation mode, by batches; returned on the CPU.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``X[batch]`` to logits of shape (B, K).
    X : torch.Tensor, shape (N, ...)
        Inputs (moved to the model's device and dtype batch by batch).
    batch_size : int
        Rows per forward pass.
    device : str or torch.device, optional
        Default: the device of the model's parameters.

    Returns
    -------
    torch.Tensor, shape (N, K)
        Rows on the simplex, on the CPU.

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    if not isinstance(X, torch.Tensor):
        raise TypeError(
            f"X: expected a torch.Tensor, got {type(X).__name__}; convert it with "
            "torch.as_tensor(X, dtype=torch.float32)"
        )
    batch_size = _positive_int(batch_size, "batch_size")
    dev = get_device(device) if device is not None else next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    out = [
        torch.softmax(model(X[i : i + batch_size].to(dev, dtype)), -1).cpu()
        for i in range(0, len(X), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out)


def evaluate(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    metrics: Mapping[str, Metric] | None = None,
    batch_size: int = 4096,
    device=None,
) -> dict[str, float]:
    """Metrics of ``model`` on ``(X, y)``: ``{name: fn(proba, y)}``, default accuracy.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``X[batch]`` to logits of shape (B, K).
    X : torch.Tensor, shape (N, ...)
        Inputs.
    y : torch.Tensor, shape (N,) int64 labels, or (N, K) float targets
        What each metric compares the probabilities with.
    metrics : dict of str -> callable, optional
        ``fn(proba (N, K), y)`` -> float; default ``{"accuracy": accuracy_metric}``.
    batch_size : int
        Rows per forward pass.
    device : str or torch.device, optional
        Default: the device of the model's parameters.

    Returns
    -------
    dict of str -> float

    See also notebooks/04_mnist_p_metric.ipynb, which trains and scores with :func:`fit` and
    :func:`predict_proba`.
    """
    _check_data(X, y)
    metrics = dict(metrics) if metrics is not None else {"accuracy": accuracy_metric}
    proba = predict_proba(model, X, batch_size=batch_size, device=device)
    return {k: float(fn(proba, y.cpu())) for k, fn in metrics.items()}
