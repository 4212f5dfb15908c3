"""The Importance-Aware Loss (IAL) of Chen, Gong & Yang (2017): the baseline of Liu et al.

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wlearn.losses._common import check_ignore_index, check_reduction
from wlearn.losses.onehot import _check_class_target
from wlearn.severity import importance_groups


class ImportanceAwareLoss(nn.Module):
    r"""Cross-entropy weighted by the importance group of the true class.

    .. math::

        L = \frac{\sum_n \omega_{g(t_n)} \,(-\log s_{n, t_n})}{\sum_n \omega_{g(t_n)}}
        \quad (\text{reduction="mean"}),

    with ``s = softmax(logits)``, ``g(t)`` the IAL group of the true class (Group 4 most
    important; :func:`wlearn.ground.importance_groups`) and ``omega`` the group weights.
    This is ``torch.nn.CrossEntropyLoss(weight=omega[g])``: ``"mean"`` is the weighted mean
    (normalized by the total weight, as in torch), ``"sum"`` the weighted sum, ``"none"``
    the weighted per-position losses. Chen, Gong & Yang (2017) give larger weights to more
    important groups; the paper we follow (Liu et al. 2020, Related Work) does not print
    their values, so the default weights are the group numbers 1, 2, 3, 4.

    Parameters
    ----------
    dataset : {"cityscapes", "camvid"}
        Which grouping (19 or 11 classes).
    group_weights : 4 positive floats
        ``omega_1 .. omega_4``.
    ignore_index : int
        Target value to skip (255 for Cityscapes ``trainIds``).
    reduction : {"mean", "sum", "none"}

    Shapes: ``forward(logits, target)``, logits (N, C) or (N, C, H, W), integer target (N,)
    or (N, H, W).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """

    def __init__(
        self,
        dataset: str = "cityscapes",
        *,
        group_weights=(1.0, 2.0, 3.0, 4.0),
        ignore_index: int = 255,
        reduction: str = "mean",
    ):
        super().__init__()
        check_reduction(reduction)
        check_ignore_index(ignore_index)
        omega = torch.as_tensor(group_weights, dtype=torch.float32)
        if omega.shape != (4,) or not torch.isfinite(omega).all() or (omega <= 0).any():
            raise ValueError(
                f"group_weights: expected 4 finite positive numbers, got {group_weights!r}"
                "; pass one weight per importance group, Group 1 (sky) first"
            )
        g = torch.tensor(list(importance_groups(dataset).values())) - 1  # (C,)
        self.register_buffer("weight", omega[g].clone())  # (C,) weight of each true class
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch (see the class docstring).

        Parameters
        ----------
        logits : torch.Tensor, shape (N, C) or (N, C, H, W), floating
            Raw scores; ``C`` = 19 (Cityscapes) or 11 (CamVid).
        target : torch.Tensor, shape (N,) or (N, H, W), integer
            True classes in ``[0, C)`` or ``ignore_index``, on the device of ``logits``.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (N,) / (N, H, W) with ``reduction="none"``.
        """
        C = len(self.weight)
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
            got = logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise TypeError(
                f"logits: expected a floating torch.Tensor, got {got}; pass the "
                "model's raw scores, not predicted classes"
            )
        if logits.ndim < 2 or logits.shape[1] != C:
            raise ValueError(
                f"logits: expected shape (N, {C}, ...), got {tuple(logits.shape)}; "
                f"the model needs one output channel per class of {C}"
            )
        _check_class_target(target, logits, C, self.ignore_index)
        weight = self.weight.to(device=logits.device, dtype=logits.dtype)  # (C,), follows the input
        return F.cross_entropy(
            logits, target, weight=weight, ignore_index=self.ignore_index, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return (
            f"C={len(self.weight)}, ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )
