"""Metrics for ordered classes: accuracy, 1-off accuracy, mean absolute class error.

Classes ``0, 1, ..., K-1`` are ordered with unit spacing. For predictions ``yhat`` and
truths ``y`` over ``n`` counted samples:

- (exact) accuracy ``= (1/n) sum 1[yhat = y]``;
- 1-off (off-by-one) accuracy ``= (1/n) sum 1[|yhat - y| <= 1]``;
- mean absolute class error (MAE) ``= (1/n) sum |yhat - y|`` (in classes).

Exact and 1-off accuracy, with arg-max decoding, are the two numbers the public code
attributed to Hou et al. 2016 (arXiv:1611.05916, Abstract) computes (``diag_error`` in
``liu-xiaofeng/OTM``, ``eval.py``; ``one_off_accuracy`` in ``bjin96/emd``,
``metrics/accuracy.py``). The MAE in classes is this course's addition: it says how far the
mistakes land.

:class:`OrdinalMetrics` accumulates a ``(K, K)`` confusion matrix on the device with
``torch.bincount`` (``reset/update/compute``); the functions are one-shot versions.

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

import torch

__all__ = ["OrdinalMetrics", "accuracy", "mean_absolute_class_error", "off_by_one_accuracy"]


def _as_classes(pred, target, num_classes: int | None, ignore_index: int | None):
    """Return flat (pred, target) int64 class tensors of the counted samples, and ``C``."""
    for name, v in (("pred", pred), ("target", target)):
        if not isinstance(v, torch.Tensor):
            raise TypeError(
                f"{name}: expected a torch.Tensor, got {type(v).__name__}; convert "
                f"it with torch.as_tensor({name})"
            )
    if target.is_floating_point():
        raise TypeError(
            f"target: expected integer class indices, got dtype {target.dtype}; "
            "convert with target.long() (one-hot rows: target.argmax(1))"
        )
    pred = pred.to(target.device)  # one device for the masks below
    if pred.is_floating_point():  # scores (N, C, ...): take the arg-max class
        if pred.ndim != target.ndim + 1:
            raise ValueError(
                f"pred: expected class scores (N, C, ...) one dimension more than target "
                f"{tuple(target.shape)}, or integer classes; got {tuple(pred.shape)}; pass "
                "model outputs (N, C, ...) or pred.argmax(1)"
            )
        if num_classes is None:
            num_classes = pred.shape[1]
        pred = pred.argmax(1)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred: expected shape {tuple(target.shape)} (the target's), got {tuple(pred.shape)}"
        )
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()  # (n,)
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if num_classes is None:
        num_classes = int(max(pred.max().item(), target.max().item())) + 1 if target.numel() else 1
    for name, v in (("pred", pred), ("target", target)):
        if v.numel() and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(
                f"{name}: expected class indices in [0, {num_classes - 1}], got values in "
                f"[{int(v.min())}, {int(v.max())}]; classes run from 0 to C-1: pass "
                "num_classes=C or shift the labels (e.g. y - y.min())"
            )
    return pred, target.to(pred.device), num_classes


class OrdinalMetrics:
    """Accumulate a confusion matrix and report the three ordinal metrics.

    Parameters
    ----------
    num_classes : int
        ``K`` (>= 2).
    ignore_index : int or None
        Target value to skip.
    device : torch.device or str, optional
        Where the confusion matrix lives (default: the first batch's device).

    Examples
    --------
    >>> m = OrdinalMetrics(3)
    >>> m.update(torch.tensor([0, 2, 1]), torch.tensor([0, 1, 1]))
    >>> m.compute()["mae"]
    0.3333333333333333

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(self, num_classes: int, *, ignore_index: int | None = None, device=None):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._device = device
        self.reset()

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self._conf = (
            None
            if self._device is None
            else torch.zeros(
                self.num_classes, self.num_classes, dtype=torch.long, device=self._device
            )
        )

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch.

        Parameters
        ----------
        pred : torch.Tensor, shape (N, ...) integer, or (N, K, ...) floating
            Predicted classes of ``target``'s shape, or scores whose arg-max over dim 1 is
            taken.
        target : torch.Tensor, shape (N, ...), integer
            True classes (``ignore_index`` skipped).
        """
        pred, target, C = _as_classes(pred, target, self.num_classes, self.ignore_index)
        if self._conf is None:
            self._conf = torch.zeros(C, C, dtype=torch.long, device=target.device)
        idx = target.to(self._conf.device) * C + pred.to(self._conf.device)  # (n,)
        self._conf += torch.bincount(idx, minlength=C * C).view(C, C)  # rows truth, cols pred

    def confusion(self) -> torch.Tensor:
        """A copy of the ``(K, K)`` confusion matrix: rows = truth, columns = prediction."""
        if self._conf is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        return self._conf.clone()

    def compute(self) -> dict[str, float]:
        """``{"accuracy", "mae", "off_by_one", "n"}`` over every sample since ``reset``."""
        conf = self.confusion().double()
        n = conf.sum()
        if n == 0:
            raise ValueError("OrdinalMetrics: no samples counted yet (call update first)")
        C = self.num_classes
        k = torch.arange(C, device=conf.device)
        gap = (k[:, None] - k[None, :]).abs().double()  # (C, C)
        return {
            "accuracy": float(conf.diagonal().sum() / n),
            "mae": float((conf * gap).sum() / n),
            "off_by_one": float(conf[gap <= 1].sum() / n),
            "n": int(n),
        }


def _one_shot(pred, target, ignore_index):
    pred, target, C = _as_classes(pred, target, None, ignore_index)
    if target.numel() == 0:
        raise ValueError("target: no samples to score (empty or all ignored)")
    return (pred - target).abs().double()


def accuracy(pred, target, *, ignore_index: int | None = None) -> float:
    """Fraction of exact hits, ``(1/n) sum 1[yhat = y]``.

    Parameters
    ----------
    pred : torch.Tensor, shape (N, ...) integer, or (N, K, ...) floating
        Predicted classes of ``target``'s shape, or scores (arg-max over dim 1).
    target : torch.Tensor, shape (N, ...), integer
        True classes.
    ignore_index : int or None
        Target value to skip.

    Returns
    -------
    float

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    return float((_one_shot(pred, target, ignore_index) == 0).double().mean())


def mean_absolute_class_error(pred, target, *, ignore_index: int | None = None) -> float:
    """Mean of ``|yhat - y|`` in classes: how far, in classes, the mistakes land.

    Parameters
    ----------
    pred : torch.Tensor, shape (N, ...) integer, or (N, K, ...) floating
        Predicted classes of ``target``'s shape, or scores (arg-max over dim 1).
    target : torch.Tensor, shape (N, ...), integer
        True classes.
    ignore_index : int or None
        Target value to skip.

    Returns
    -------
    float

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    return float(_one_shot(pred, target, ignore_index).mean())


def off_by_one_accuracy(pred, target, *, ignore_index: int | None = None) -> float:
    """Fraction with ``|yhat - y| <= 1``: the 1-off accuracy of the public code attributed to
    Hou et al. 2016 (``diag_error`` in ``liu-xiaofeng/OTM``).

    Parameters
    ----------
    pred : torch.Tensor, shape (N, ...) integer, or (N, K, ...) floating
        Predicted classes of ``target``'s shape, or scores (arg-max over dim 1).
    target : torch.Tensor, shape (N, ...), integer
        True classes.
    ignore_index : int or None
        Target value to skip.

    Returns
    -------
    float

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    return float((_one_shot(pred, target, ignore_index) <= 1).double().mean())
