"""Segmentation metrics: confusion matrix, IoU, group IoU, mean severity of mistakes.

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import torch

from wlearn._checks import as_tensor, check_cost_matrix


def _iou(conf: torch.Tensor) -> torch.Tensor:
    """Per-class ``TP / (TP + FP + FN)`` from ``conf[true, predicted]``; NaN where the class
    never occurs in truth or prediction (as the official Cityscapes evaluation)."""
    conf = conf.double()
    tp = conf.diagonal()
    denom = conf.sum(0) + conf.sum(1) - tp
    return torch.where(denom > 0, tp / denom.clamp_min(1), torch.full_like(tp, float("nan")))


def mean_severity(confusion, D) -> float:
    r"""Mean severity of mistakes: :math:`\sum_{t, p} C[t, p]\, D[p, t] / \sum_{t, p} C[t, p]`.

    Parameters
    ----------
    confusion : tensor or array, shape (K, K)
        Pixel counts ``C[true, predicted]`` (as :meth:`ConfusionMatrix.compute` returns).
    D : tensor or array, shape (K, K)
        Ground matrix in the transport orientation: ``D[p, t]`` = severity of predicting
        ``p`` where the truth is ``t`` (zero diagonal, so correct pixels cost nothing).

    Returns
    -------
    float
        Average severity per evaluated pixel (0 if there are no pixels).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    C = as_tensor(confusion, "confusion").double()
    D = as_tensor(D, "D").double().to(C.device)
    check_cost_matrix(D, "D")
    if C.shape != D.shape:
        raise ValueError(
            f"confusion: expected shape {tuple(D.shape)} to match D, got {tuple(C.shape)}"
        )
    n = C.sum()
    return 0.0 if n == 0 else float((C * D.T).sum() / n)


class ConfusionMatrix:
    """Pixel confusion matrix accumulated on the device with ``torch.bincount``.

    ``conf[t, p]`` counts pixels of true class ``t`` predicted as ``p`` (rows = truth, as in
    the official Cityscapes evaluation); pixels whose target is ``ignore_index`` are skipped.
    :meth:`compute` returns copies, never the internal state. Counts kept apart (one matrix per
    worker, per process, per data shard) are combined with :meth:`merge` (in one process) and
    :meth:`all_reduce` (across ``torch.distributed`` ranks); the scores of the combined counts
    are those of one matrix updated with every batch.

    Parameters
    ----------
    num_classes : int
    ignore_index : int
        Target value to skip (255 for Cityscapes ``trainIds``).
    device : torch device or None
        Where to accumulate (default: the device of the first update).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """

    def __init__(self, num_classes: int, *, ignore_index: int = 255, device=None):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self._device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        K = self.num_classes
        self._conf = torch.zeros(K, K, dtype=torch.int64, device=self._device)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch.

        Parameters
        ----------
        pred : torch.Tensor
            Either logits/scores, shape (B, K, H, W) (argmax over dim 1), or integer
            predicted classes of the target's shape.
        target : torch.Tensor, integer, shape (B, H, W) (any shape matching ``pred``)
            True classes in ``[0, K)`` or ``ignore_index``.
        """
        K = self.num_classes
        if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(
                "pred, target: expected torch.Tensors, got "
                f"{type(pred).__name__}, {type(target).__name__}"
            )
        if pred.is_floating_point():
            if pred.ndim != target.ndim + 1 or pred.shape[1] != K:
                raise ValueError(
                    f"pred: expected scores of shape (B, {K}, ...) for target "
                    f"{tuple(target.shape)}, got {tuple(pred.shape)}"
                )
            pred = pred.argmax(1)
        if pred.shape != target.shape:
            raise ValueError(f"pred: expected shape {tuple(target.shape)}, got {tuple(pred.shape)}")
        t, p = target.reshape(-1).long(), pred.reshape(-1).long().to(target.device)  # (P,), (P,)
        keep = t != self.ignore_index
        t, p = t[keep], p[keep]
        if t.numel() and (t.min() < 0 or t.max() >= K or p.min() < 0 or p.max() >= K):
            raise ValueError(
                f"target, pred: expected classes in [0, {K}) or ignore_index="
                f"{self.ignore_index}, got target range [{t.min()}, {t.max()}], "
                f"pred range [{p.min()}, {p.max()}]; "
                f"predict and label trainIds in [0, {K}) (Cityscapes labelIds: "
                "wlearn.data.cityscapes.to_train_ids)"
            )
        if self._conf.device != t.device:
            self._conf = self._conf.to(t.device)
        self._conf += torch.bincount(t * K + p, minlength=K * K).reshape(K, K)  # (K, K)

    def merge(self, other: ConfusionMatrix) -> None:
        """Add the counts of ``other`` to this matrix (``other`` is left unchanged).

        Parameters
        ----------
        other : ConfusionMatrix
            With the same ``num_classes`` and ``ignore_index``; its counts, shape (K, K), are
            moved to this matrix's device before the sum.

        Raises
        ------
        TypeError
            If ``other`` is not a :class:`ConfusionMatrix`.
        ValueError
            If ``other`` counts a different number of classes or skips a different
            ``ignore_index`` (its counts would not mean the same thing).
        """
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"other: expected a ConfusionMatrix, got {type(other).__name__}")
        for name in ("num_classes", "ignore_index"):
            if getattr(other, name) != getattr(self, name):
                raise ValueError(
                    f"other: expected {name}={getattr(self, name)!r} like this matrix, "
                    f"got {name}={getattr(other, name)!r}; merge only matrices "
                    "built with the same settings"
                )
        self._conf += other._conf.to(self._conf.device)  # (K, K)

    @torch.no_grad()
    def all_reduce(self, group=None) -> None:
        """Sum the counts over the ranks of ``torch.distributed`` (every rank gets the total).

        A collective call: every rank of ``group`` must make it, once, after its last
        :meth:`update` (a second call would add the totals again). When ``torch.distributed``
        is not available or no process group is initialized it does nothing, so the same code
        runs in one process. With the ``nccl`` backend, counts kept on the CPU are reduced on
        the current CUDA device and moved back.

        Parameters
        ----------
        group : torch.distributed.ProcessGroup or None
            The ranks to sum over (default: the whole world).

        Reference: ``torch.distributed.all_reduce`` with ``ReduceOp.SUM``; the same reduction
        as ``ConfusionMatrix.reduce_from_all_processes`` of torchvision's segmentation
        references.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        conf = self._conf
        if dist.get_backend(group) == "nccl" and conf.device.type != "cuda":
            conf = conf.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(conf, op=dist.ReduceOp.SUM, group=group)
        self._conf = conf.to(self._conf.device)  # (K, K), the same tensor when not moved

    @property
    def confusion(self) -> torch.Tensor:
        """A copy of the counts, shape (K, K), ``[true, predicted]``."""
        return self._conf.clone()

    def iou(self) -> torch.Tensor:
        """Per-class IoU ``TP / (TP + FP + FN)``, shape (K,), float64 (NaN for absent classes)."""
        return _iou(self._conf)

    def compute(self, *, groups: dict | None = None, D=None) -> dict:
        """Every score, as new tensors and floats.

        Parameters
        ----------
        groups : dict or None
            ``{group name: list of class indices}``; adds ``"group_iou"``, the mean IoU of
            each group (e.g. ``{"Group 4": [11, 12, 13, 14, 15, 17, 18]}``).
        D : (K, K) ground matrix or None
            Adds ``"mean_severity"`` (see :func:`mean_severity`).

        Returns
        -------
        dict with ``"confusion"`` (K, K) int64, ``"iou"`` (K,) float64, ``"miou"`` (mean over
        classes that occur, like the official evaluation), ``"pixel_accuracy"``, and the
        optional ``"group_iou"`` and ``"mean_severity"``.
        """
        conf = self.confusion.cpu()
        iou = _iou(conf)
        n = conf.sum()
        out = {
            "confusion": conf,
            "iou": iou,
            "miou": float(iou.nanmean()) if (~iou.isnan()).any() else float("nan"),
            "pixel_accuracy": float(conf.diagonal().sum() / n) if n else float("nan"),
        }
        if groups is not None:
            out["group_iou"] = {g: float(iou[list(idx)].nanmean()) for g, idx in groups.items()}
        if D is not None:
            out["mean_severity"] = mean_severity(conf, D)
        return out
