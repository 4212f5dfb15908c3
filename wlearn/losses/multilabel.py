"""Multi-label targets as measures: the Wasserstein + KL objective of Frogner et al. (2015,
Sec. 6.2), ``W_p^p(h, y) + alpha * KL(y || h)``, for tag prediction.

Two readings of a 0/1 tag vector ``t`` (B, K):

- normalized (default): the target is the histogram ``y = t / sum(t)`` and the prediction
  ``h = softmax(z)``; ``W`` is :class:`wlearn.losses.SinkhornLoss` and
  ``KL(y || h) = sum_k y_k log(y_k / h_k)`` (the multiclass logistic loss up to the constant
  entropy of ``y``);
- unbalanced: the target is the raw measure ``y = t`` (mass = number of tags) and the
  prediction the positive measure ``h = exp(z)``; ``W`` is
  :class:`wlearn.losses.UnbalancedSinkhornLoss` (eq. 8) and the KL is the generalized
  ``KL~(y || h) = sum_k y_k log(y_k / h_k) - y_k + h_k`` (a Poisson likelihood).

``alpha`` weights the KL term, as in the paper: small ``alpha`` = Wasserstein weighted more.

Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wlearn._checks import check_finite, check_nonnegative
from wlearn.losses._common import check_reduction as _check_reduction
from wlearn.losses._common import reduce as _reduce
from wlearn.losses.sinkhorn import SinkhornLoss, UnbalancedSinkhornLoss

__all__ = ["MultiLabelKLLoss", "WassersteinKLLoss", "multilabel_kl"]


def _check_pair(input, target) -> None:
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"{name}: expected a torch.Tensor, got {type(t).__name__}; convert "
                f"it with torch.as_tensor({name}, dtype=torch.float32)"
            )
    if input.ndim != 2 or target.shape != input.shape:
        raise ValueError(
            f"target: expected shape (B, K) equal to input's {tuple(input.shape)}, "
            f"got {tuple(target.shape)}; give the logits and a 0/1 tag matrix of one row per "
            "item and one column per tag"
        )
    check_nonnegative(target.detach(), "target")
    if (target.detach().sum(-1) <= 0).any():
        raise ValueError(
            "target: expected every row to carry at least one tag, got an empty row; "
            "drop the items without tags (keep = target.sum(1) > 0)"
        )


def _exp_measure(input: torch.Tensor) -> torch.Tensor:
    """``exp(input)``, the unbalanced prediction, with an error naming the real problem when
    the logits are not finite or too large for the dtype (instead of an inf loss)."""
    check_finite(
        input.detach(),
        "input",
        fix="the logits hold NaN/inf: look at the data and at the model's last layer",
    )
    h = input.exp()
    if not torch.isfinite(h.detach()).all():
        limit = float(np.log(torch.finfo(input.dtype).max))
        raise ValueError(
            f"input: expected logits whose exp fits in {input.dtype} (below {limit:.1f}), got a "
            f"largest logit of {input.detach().max().item():.4g}; the unbalanced loss uses "
            "h = exp(input) as the predicted measure: keep the logits small (standardize the "
            "features, start the last layer near zero) or compute in float64"
        )
    return h


def multilabel_kl(
    input: torch.Tensor, target: torch.Tensor, *, unbalanced: bool = False
) -> torch.Tensor:
    """Per-item KL term of the tag objective (Frogner et al. 2015, Sec. 6.2).

    Normalized: ``KL(y || softmax(z))`` with ``y = t / sum(t)``; unbalanced:
    ``KL~(t || exp(z))``, the generalized KL of eq. (8). Terms with ``y_k = 0`` contribute
    ``0`` (resp. ``h_k``).

    Parameters
    ----------
    input : tensor, shape (B, K)
        Logits ``z``.
    target : tensor, shape (B, K)
        Non-negative tag weights (0/1 tags), every row with positive mass.
    unbalanced : bool
        Generalized KL against the raw tags instead of KL against the normalized ones.

    Returns
    -------
    tensor, shape (B,)
    """
    _check_pair(input, target)
    t = target.to(input.dtype)
    if unbalanced:
        return (torch.xlogy(t, t) - t * input - t + _exp_measure(input)).sum(-1)  # (B,)
    y = t / t.sum(-1, keepdim=True)
    return (torch.xlogy(y, y) - y * torch.log_softmax(input, -1)).sum(-1)  # (B,)


class MultiLabelKLLoss(nn.Module):
    """The KL baseline of Frogner et al. (2015, Sec. 6.2): :func:`multilabel_kl`, reduced.

    Parameters
    ----------
    unbalanced : bool
        Generalized KL against the raw tag measure instead of KL against the normalized one.
    reduction : {"mean", "sum", "none"}

    Shapes
    ------
    input : (B, K) logits. target : (B, K) non-negative tags. Output: scalar or (B,).
    """

    def __init__(self, *, unbalanced: bool = False, reduction: str = "mean"):
        super().__init__()
        self.unbalanced = bool(unbalanced)
        self.reduction = _check_reduction(reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The reduced KL of a batch.

        Parameters
        ----------
        input : torch.Tensor, shape (B, K)
            Logits.
        target : torch.Tensor, shape (B, K)
            Non-negative tags, every row with a tag.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (B,) with ``reduction="none"``.
        """
        return _reduce(multilabel_kl(input, target, unbalanced=self.unbalanced), self.reduction)


class WassersteinKLLoss(nn.Module):
    """``W(h, y) + alpha * KL(y || h)`` on logits (Frogner et al. 2015, Sec. 6.2).

    .. math:: \\ell(z, t) = W_\\mathrm{reg}(h, y) + \\alpha\\, \\mathrm{KL}(y \\| h)

    with ``h = softmax(z)``, ``y = t / sum(t)`` and the entropic loss of eq. (6)
    (:class:`~wlearn.losses.SinkhornLoss`), or, with ``unbalanced=True``, ``h = exp(z)``,
    ``y = t`` and the relaxed loss of eq. (8) (:class:`~wlearn.losses.UnbalancedSinkhornLoss`)
    plus the generalized KL. The Wasserstein part's gradient is the paper's Algorithm 1;
    the KL part and the softmax/exp are differentiated by autograd. ``M`` is the ground cost
    ``d^p`` (``W_p^p``), scaled into [0, 1) (footnote 5).

    Parameters
    ----------
    M : tensor or array, shape (K, K)
        Ground cost between tags.
    reg : float
        Entropic regularisation epsilon (Frogner et al. write ``1/lambda``).
    alpha : float
        Weight of the KL term, ``>= 0`` (0: Wasserstein alone).
    unbalanced : bool
        Relaxed transport on raw tag measures (default: balanced on normalized ones).
    reg_m : float or (float, float)
        Marginal relaxation ``gamma`` (unbalanced only).
    max_iter, tol : int, float
        Sinkhorn stopping rule.
    reduction : {"mean", "sum", "none"}

    Shapes
    ------
    input : (B, K) logits. target : (B, K) non-negative tags (0/1), every row with a tag.
    Output: scalar, or (B,) with ``reduction="none"``. After a call, ``last_terms`` holds the
    detached batch means ``(W, KL)``.
    """

    def __init__(
        self,
        M,
        reg: float,
        alpha: float = 0.0,
        *,
        unbalanced: bool = False,
        reg_m=1.0,
        max_iter: int = 100,
        tol: float = 1e-6,
        reduction: str = "mean",
    ):
        super().__init__()
        try:
            alpha = float(alpha)
        except (TypeError, ValueError):
            raise TypeError(f"alpha: expected a number >= 0, got {alpha!r}") from None
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha: expected a finite number >= 0, got {alpha!r}")
        self.alpha = alpha
        self.unbalanced = bool(unbalanced)
        self.reduction = _check_reduction(reduction)
        if self.unbalanced:
            self.wasserstein = UnbalancedSinkhornLoss(
                M, reg, reg_m, max_iter=max_iter, tol=tol, reduction="none"
            )
        else:
            self.wasserstein = SinkhornLoss(M, reg, max_iter=max_iter, tol=tol, reduction="none")
        self.last_terms: tuple[float, float] | None = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``W + alpha KL`` of a batch; also sets ``last_terms``.

        Parameters
        ----------
        input : torch.Tensor, shape (B, K)
            Logits.
        target : torch.Tensor, shape (B, K)
            Non-negative tags (0/1), every row with a tag.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (B,) with ``reduction="none"``.
        """
        _check_pair(input, target)
        t = target.to(input.dtype)
        if self.unbalanced:
            h, y = _exp_measure(input), t
        else:
            h, y = torch.softmax(input, -1), t / t.sum(-1, keepdim=True)  # (B, K) each
        w = self.wasserstein(h, y)  # (B,)
        kl = multilabel_kl(input, t, unbalanced=self.unbalanced)  # (B,)
        self.last_terms = (w.detach().mean().item(), kl.detach().mean().item())
        return _reduce(w + self.alpha * kl, self.reduction)

    @property
    def last_n_iter(self) -> int | None:
        """Sinkhorn iterations of the last call."""
        return self.wasserstein.last_n_iter
