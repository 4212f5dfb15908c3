"""Per-pixel losses for soft (probability) targets on segmentation tensors.

- :class:`SoftWassersteinLoss`: the entropic Wasserstein loss of Frogner et al. (2015) between
  ``softmax(logits)`` and a soft target at every pixel, with one ground matrix shared by all
  pixels. With a *one-hot* target the transport problem has a single feasible plan and the
  closed form of Liu et al. (2020, Theorem 1, eq. 2) applies
  (:class:`wlearn.losses.OneHotWassersteinLoss`); with a smoothed ("conservative") target it
  does not, and Liu et al. (Table 3) fall back on the Sinkhorn approximation (Cuturi 2013).
- :class:`SoftCrossEntropyLoss`: cross-entropy against the same soft targets, same interface:
  the baseline of conservative self-training (Zou et al. 2019).

Both take logits ``(N, C, d1, ..., dk)``, targets of the same shape whose entries along dim 1
are probabilities, and an optional keep-``mask`` ``(N, d1, ..., dk)`` or a companion integer
label map ``labels`` whose ``ignore_index`` positions are left out (e.g. pixels without a
confident pseudo-label). Masked positions contribute nothing, get zero gradient, and their
targets are never read, so they may hold anything (zeros, say).

Introduced in notebooks/10_self_training_adaptation.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wlearn.losses._common import check_ignore_index as _check_ignore_index
from wlearn.losses._common import check_same_device as _check_same_device
from wlearn.losses.onehot import _check_class_target, _check_logits, _check_reduction
from wlearn.losses.sinkhorn import SinkhornLoss

__all__ = ["SoftCrossEntropyLoss", "SoftWassersteinLoss"]


def _check_soft_target(target, logits: torch.Tensor) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise TypeError(
            f"target: expected a torch.Tensor, got {type(target).__name__}; convert "
            "it with torch.as_tensor(target, dtype=torch.float32)"
        )
    if not target.is_floating_point():
        raise TypeError(
            f"target: expected floating probabilities, got dtype {target.dtype}; for class "
            "indices use OneHotWassersteinLoss / cross-entropy, or make soft targets with "
            "torch.nn.functional.one_hot(target, C).movedim(-1, 1).float() or "
            "wlearn.segment.conservative_targets"
        )
    if target.shape != logits.shape:
        raise ValueError(
            f"target: expected the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}"
            "; soft targets hold one probability per class along dim 1, like the logits"
        )
    _check_same_device(target, logits, "logits")
    return target


def _keep_mask(logits: torch.Tensor, mask, labels, ignore_index: int) -> torch.Tensor | None:
    """Boolean ``(N, d1, ..., dk)`` of the positions that count, or ``None`` for all."""
    expected = (logits.shape[0],) + tuple(logits.shape[2:])
    keep = None
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise TypeError(
                f"mask: expected a torch.bool tensor (True = keep), got {got}; build it "
                "with a comparison (labels != ignore_index) or convert it: mask.bool()"
            )
        if tuple(mask.shape) != expected:
            raise ValueError(
                f"mask: expected shape {expected} to match logits of shape "
                f"{tuple(logits.shape)}, got {tuple(mask.shape)}; one entry per position, "
                "without the class dimension"
            )
        keep = mask.to(logits.device)
    if labels is not None:
        C = logits.shape[1]
        labels = _check_class_target(labels, logits, C, ignore_index)
        kept = labels != ignore_index
        keep = kept if keep is None else keep & kept
    return keep


def _rows(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """``(N, C, d1, ..., dk)`` -> the kept positions as rows ``(P, C)``."""
    C = x.shape[1]
    r = x.movedim(1, -1).reshape(-1, C)  # (N d1 ... dk, C)
    return r if keep is None else r[keep.reshape(-1)]  # (P, C)


def _finish(per_row: torch.Tensor, keep, logits: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return per_row.sum()
    if reduction == "mean":
        return per_row.mean() if per_row.numel() else per_row.sum() / 0.0  # NaN, as cross-entropy
    shape = (logits.shape[0],) + tuple(logits.shape[2:])
    if keep is None:
        return per_row.reshape(shape)  # (N, d1, ..., dk)
    out = per_row.new_zeros(keep.numel())
    out = out.masked_scatter(keep.reshape(-1), per_row)  # zeros at masked positions
    return out.reshape(shape)  # (N, d1, ..., dk)


class SoftWassersteinLoss(nn.Module):
    r"""Entropic Wasserstein loss per pixel between ``softmax(logits)`` and soft targets.

    Every kept position ``p`` is one pair of histograms on the ``C`` classes; the positions
    of the whole batch form the rows of one Sinkhorn problem ``(P, C)`` against a single
    ground matrix ``M``. The value per position is the transport cost of the entropic plan
    (Frogner et al. 2015, eq. 6; what ``ot.sinkhorn2`` returns),

    .. math:: L_p = \langle T_p, M \rangle, \qquad
              T_p = \arg\min_{T \in \Pi(s_p, q_p)} \langle T, M \rangle - \mathrm{reg}\, H(T),
              \qquad s_p = \mathrm{softmax}(z_p),

    computed by :class:`wlearn.losses.SinkhornLoss` (log-domain iterations of
    :func:`wlearn.ot.sinkhorn_potentials`). Its backward is Algorithm 1's centred dual
    potential :math:`\alpha_p - \bar\alpha_p` (the gradient of the regularized objective (6)
    along the simplex), chained through the softmax:

    .. math:: \partial L / \partial z_{p,i} = s_{p,i}\,(\alpha_{p,i} - \textstyle\sum_j s_{p,j} \alpha_{p,j}).

    With a one-hot target (``q_p = e_t``) the only feasible plan sends all of ``s_p`` to ``t``,
    so the value equals Liu et al.'s closed form ``sum_i s_i M[i, t]`` (eq. 2) for any ``reg``,
    and the gradient differs from that of the closed form only by ``reg`` times the gradient
    of ``sum_i s_i log s_i`` (the entropy term of (6)).

    Parameters
    ----------
    M : tensor or array, shape (C, C)
        Ground cost, ``M[i, j]`` = cost of predicting class ``i`` where the target has class
        ``j`` (rows = predicted mass, as in :class:`~wlearn.losses.OneHotWassersteinLoss`);
        e.g. ``wlearn.ground.power(severity_matrix(), 2)``. Scale it to ``[0, 1]``.
    reg : float
        Entropic regularization ``1/lambda``; 0.05-0.1 of ``max(M)`` keeps float32 inputs in
        float32 (see :func:`wlearn._kernels.choose_kernel`).
    max_iter, tol : int, float
        Sinkhorn stopping rule, over all positions at once (see :func:`wlearn.ot.sinkhorn`).
    ignore_index : int
        Value of ``labels`` (if given to :meth:`forward`) marking positions to leave out.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over kept positions (NaN when none is kept, like cross-entropy);
        ``"none"`` returns ``(N, d1, ..., dk)`` with 0 at masked positions.

    Shapes
    ------
    ``forward(logits, target, *, mask=None, labels=None)``: logits ``(N, C, d1, ..., dk)``
    (``(N, C, H, W)`` for segmentation), target of the same shape with rows on the simplex
    along dim 1 at kept positions, ``mask`` boolean ``(N, d1, ..., dk)`` (True = keep),
    ``labels`` integer ``(N, d1, ..., dk)``. A position counts if ``mask`` is True there and
    ``labels`` is not ``ignore_index``.

    Notes
    -----
    The last Sinkhorn call's iteration count and convergence flag are ``last_n_iter`` and
    ``last_converged``; a ``RuntimeWarning`` names ``max_iter`` when ``tol`` is not reached.
    Reference: Liu et al. 2020, "Importance-aware semantic segmentation in self-driving
    with discrete Wasserstein training", Sec. "Wasserstein training with conservative target"
    and Table 3; Frogner et al. 2015, eq. (6) and Algorithm 1.

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """

    def __init__(
        self,
        M,
        reg: float,
        *,
        max_iter: int = 100,
        tol: float = 1e-6,
        ignore_index: int = -100,
        reduction: str = "mean",
    ):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.ignore_index = _check_ignore_index(ignore_index)
        self.sinkhorn = SinkhornLoss(M, reg, max_iter=max_iter, tol=tol, reduction="none")

    @property
    def M(self) -> torch.Tensor:
        """The ground cost, shape (C, C) (a buffer of the inner :class:`SinkhornLoss`)."""
        return self.sinkhorn.M

    @property
    def last_n_iter(self) -> int | None:
        """Sinkhorn iterations of the last call (``None`` before the first)."""
        return self.sinkhorn.last_n_iter

    @property
    def last_converged(self) -> bool | None:
        """Whether the last call reached ``tol`` (``None`` before the first)."""
        return getattr(self.sinkhorn, "last_converged", None)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, *, mask=None, labels=None
    ) -> torch.Tensor:
        """The loss of a batch (see the class docstring).

        Parameters
        ----------
        logits : torch.Tensor, shape (N, C, d1, ..., dk), floating
            Raw scores.
        target : torch.Tensor, shape (N, C, d1, ..., dk), floating
            Probabilities along dim 1 at kept positions (anything elsewhere).
        mask : torch.Tensor, shape (N, d1, ..., dk), bool, optional
            True where a position counts.
        labels : torch.Tensor, shape (N, d1, ..., dk), integer, optional
            Positions equal to ``ignore_index`` are left out.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (N, d1, ..., dk) with ``reduction="none"``.
        """
        logits = _check_logits(logits)
        target = _check_soft_target(target, logits)
        C = logits.shape[1]
        if self.M.shape[0] != C:
            raise ValueError(
                f"M: expected a ({C}, {C}) matrix for logits with {C} classes, "
                f"got shape {tuple(self.M.shape)}; build M with one row and one column per "
                f"class, e.g. wlearn.ground.line({C})"
            )
        keep = _keep_mask(logits, mask, labels, self.ignore_index)
        s = _rows(torch.softmax(logits, dim=1), keep)  # (P, C)
        q = _rows(target.to(s.dtype), keep)  # (P, C)
        if s.shape[0] == 0:
            per = logits.sum() * 0 + s.new_zeros(0)  # (0,), keeps the graph
        else:
            per = self.sinkhorn(s, q)  # (P,)
        return _finish(per, keep, logits, self.reduction)

    def extra_repr(self) -> str:
        s = self.sinkhorn
        return (
            f"C={self.M.shape[0]}, reg={s.reg}, max_iter={s.max_iter}, tol={s.tol}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )


class SoftCrossEntropyLoss(nn.Module):
    r"""Cross-entropy per pixel against soft targets, with a mask: the baseline of
    conservative self-training.

    .. math:: L_p = -\sum_i q_{p,i} \log \mathrm{softmax}(z_p)_i

    (``torch.nn.functional.cross_entropy`` with probability targets). With one-hot targets
    it is ordinary cross-entropy; with LRENT targets (Zou et al. 2019, eq. 9) it is the
    label-entropy-regularized self-training loss up to the entropy of ``q``, a constant.

    Parameters
    ----------
    ignore_index : int
        Value of ``labels`` (if given) marking positions to leave out.
    reduction : {"mean", "sum", "none"}
        As for :class:`SoftWassersteinLoss`.

    Shapes: as :class:`SoftWassersteinLoss`.

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """

    def __init__(self, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.ignore_index = _check_ignore_index(ignore_index)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, *, mask=None, labels=None
    ) -> torch.Tensor:
        """The loss of a batch: as :meth:`SoftWassersteinLoss.forward`.

        Parameters
        ----------
        logits : torch.Tensor, shape (N, C, d1, ..., dk), floating
            Raw scores.
        target : torch.Tensor, shape (N, C, d1, ..., dk), floating
            Non-negative probabilities along dim 1 at kept positions.
        mask : torch.Tensor, shape (N, d1, ..., dk), bool, optional
            True where a position counts.
        labels : torch.Tensor, shape (N, d1, ..., dk), integer, optional
            Positions equal to ``ignore_index`` are left out.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (N, d1, ..., dk) with ``reduction="none"``.
        """
        logits = _check_logits(logits)
        target = _check_soft_target(target, logits)
        keep = _keep_mask(logits, mask, labels, self.ignore_index)
        logp = _rows(F.log_softmax(logits, dim=1), keep)  # (P, C)
        q = _rows(target.to(logp.dtype), keep)  # (P, C)
        if (q < 0).any():
            raise ValueError(
                "target: expected non-negative probabilities at kept positions, "
                f"got a minimum of {q.min().item():.3g}; if these are logits, apply "
                "torch.softmax(target, dim=1) first"
            )
        per = -(q * logp).sum(-1)  # (P,)
        return _finish(per, keep, logits, self.reduction)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
