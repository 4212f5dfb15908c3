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

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from wlearn.losses._common import check_ignore_index as _check_ignore_index
from wlearn.losses._common import check_same_device as _check_same_device
from wlearn.losses._pixel_sinkhorn import SCALING_LIMIT, pixel_sinkhorn
from wlearn.losses.onehot import (
    _LOW_PRECISION,
    _check_class_target,
    _check_logits,
    _check_reduction,
    _one_hot_kernel,
)
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


def _finish_map(per: torch.Tensor, keep, reduction: str) -> torch.Tensor:
    """Reduce a map of values per position (N, d1, ..., dk), zero at masked positions."""
    if reduction == "none":
        return per
    total = per.sum()
    if reduction == "sum":
        return total
    return total / (per.numel() if keep is None else int(keep.sum()))  # NaN if none kept


def _check_target_columns(y: torch.Tensor):
    """The column sums ``(P,)`` of the kept targets ``y`` (C, P), and their classes ``(P,)``
    (int64) if every column is one-hot, else ``None``; raise unless the columns are on the
    simplex (as :func:`wlearn._checks.check_simplex` with its default tolerance)."""
    C = y.shape[0]
    if not y.numel():
        return y.sum(0), None
    # one pass through the BLAS for the mass and the mean class of every column
    moments = torch.stack([torch.ones(C, dtype=y.dtype), torch.arange(C, dtype=y.dtype)])
    mass, k = torch.mm(moments.to(y.device), y)  # (P,), (P,): sum_j y_j, sum_j j y_j
    atol = 1e-3 if y.dtype == torch.float32 else 1e-6
    stats = [y.amin(), (mass - 1).abs().amax(), (mass != 1).sum()]
    low, off, not_one = torch.stack([x.to(y.dtype) for x in stats]).tolist()
    if low < 0 or not low == low:
        raise ValueError(
            f"target: expected non-negative probabilities at kept positions, got a minimum "
            f"of {low:.3g}; if these are logits, apply torch.softmax(target, dim=1) first"
        )
    if off > atol or not off == off:
        raise ValueError(
            f"target: expected rows on the probability simplex along dim 1 (sum 1 within "
            f"{atol:g}) at kept positions, got sums off by up to {off:.3g}; normalize with "
            "target / target.sum(1, keepdim=True)"
        )
    if not_one:
        return mass, None
    # non-negative columns summing to exactly 1, each with a 1 at k = sum_j j y_j: one-hot
    k = k.round_().clamp_(0, C - 1).long()
    return mass, (k if bool((y.gather(0, k[None]) == 1).all()) else None)


def _class_major(x: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
    """``(N, C, d1, ..., dk)`` -> the kept positions as columns ``(C, P)``: a view where the
    layout allows (one sample, or channels-last), else a copy."""
    N, C = x.shape[:2]
    cols = x.reshape(N, C, -1).transpose(0, 1).reshape(C, -1)  # (C, N d1 ... dk)
    return cols if ids is None else cols.index_select(1, ids)  # (C, P)


class _PixelSinkhornFn(torch.autograd.Function):
    """The per-position values, computed outside; backward: Algorithm 1's potential
    ``f = reg log u`` chained through the softmax, ``h * (f - <h, f>)`` per column.

    Saves only ``h`` and ``u`` (C, P) (and ``ids``, the kept positions, sorted).
    """

    @staticmethod
    def forward(ctx, logits, value, h, u, ids, reg):
        ctx.save_for_backward(h, u, ids)
        ctx.reg, ctx.shape, ctx.dtype = reg, logits.shape, logits.dtype
        return value

    @staticmethod
    def backward(ctx, grad_out):
        h, u, ids = ctx.saved_tensors
        N, C = ctx.shape[:2]
        go = grad_out.reshape(-1)  # (N d1 ... dk,)
        scale = (go if ids is None else go.index_select(0, ids)) * ctx.reg  # (P,)
        tiny = torch.finfo(u.dtype).tiny
        if ids is None:  # computed in place in the logits' layout
            out = torch.empty(ctx.shape, dtype=h.dtype, device=h.device)  # (N, C, d1, ...)
            g = out.view(N, C, -1).transpose(0, 1)  # (C, N, P_n), a view of out
            h, u = h.view(C, N, -1), u.view(C, N, -1)  # (C, N, P_n)
            torch.clamp_min(u, tiny, out=g).log_().mul_(h)  # h log u
            g.addcmul_(h, g.sum(0), value=-1).mul_(scale.view(N, -1))  # h (f - <h, f>)
            return out.to(ctx.dtype), None, None, None, None, None
        g = u.clamp_min(tiny).log_().mul_(h)  # (C, P): h log u
        g.addcmul_(h, g.sum(0), value=-1).mul_(scale)  # (C, P): h (f - <h, f>)
        out = torch.zeros(ctx.shape, dtype=ctx.dtype, device=g.device)  # (N, C, d1, ..., dk)
        out3, P = out.view(N, C, -1), out[0, 0].numel()  # (N, C, P_n), positions per sample
        first = torch.arange(N + 1, device=ids.device) * P
        bounds = torch.searchsorted(ids, first).tolist()  # ids are sorted: a block per sample
        for n in range(N):
            a, b = bounds[n], bounds[n + 1]
            if b > a:
                out3[n].index_copy_(1, ids[a:b] - n * P, g[:, a:b].to(ctx.dtype))
        return out, None, None, None, None, None


class SoftWassersteinLoss(nn.Module):
    r"""Entropic Wasserstein loss per pixel between ``softmax(logits)`` and soft targets.

    Every kept position ``p`` is one pair of histograms on the ``C`` classes; the positions
    of the whole batch form the rows of one Sinkhorn problem ``(P, C)`` against a single
    ground matrix ``M``. The value per position is the transport cost of the entropic plan
    (Frogner et al. 2015, eq. 6; what ``ot.sinkhorn2`` returns),

    .. math:: L_p = \langle T_p, M \rangle, \qquad
              T_p = \arg\min_{T \in \Pi(s_p, q_p)} \langle T, M \rangle - \mathrm{reg}\, H(T),
              \qquad s_p = \mathrm{softmax}(z_p),

    computed per pixel, each pixel stopping when its marginals are within ``tol``, by
    :func:`wlearn.losses._pixel_sinkhorn.pixel_sinkhorn`: Sinkhorn-Knopp in the scaling
    domain on class-major columns, warm-started from the one-hot closed form, each pixel
    stopping on its own: on the CPU in a compiled kernel, sixteen pixels per SIMD vector, where
    the install could build it; else, and on the GPU, in PyTorch with an active set. That holds
    while ``exp(-M/reg)`` cannot underflow (``max(M)/reg <= 35`` in float32); beyond it, or when
    ``target`` requires a gradient, the loss runs the log-domain
    :class:`wlearn.losses.SinkhornLoss` on the rows. Targets that are exactly one-hot at every kept position skip the solver
    (below). Its backward is Algorithm 1's centred dual
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
    The last Sinkhorn call's iteration count (of its slowest pixel) and convergence flag are
    ``last_n_iter`` and ``last_converged``, the mean over pixels ``last_mean_iter``; a
    ``RuntimeWarning`` names ``max_iter`` when ``tol`` is not reached. Speed against
    cross-entropy: ``benchmarks/bench_soft.py``.
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
        self.last_mean_iter: float | None = None

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
        if self._fast_path_applies(logits, target):
            loss = self._fast_loss(logits, target, keep)
            if loss is not None:
                return loss
        self.last_mean_iter = None  # the log-domain path reports the slowest pixel only
        s = _rows(torch.softmax(logits, dim=1), keep)  # (P, C)
        q = _rows(target.to(s.dtype), keep)  # (P, C)
        if s.shape[0] == 0:
            per = logits.sum() * 0 + s.new_zeros(0)  # (0,), keeps the graph
        else:
            per = self.sinkhorn(s, q)  # (P,)
        return _finish(per, keep, logits, self.reduction)

    def _fast_path_applies(self, logits: torch.Tensor, target: torch.Tensor) -> bool:
        """Whether :meth:`_fast_loss` may be tried (targets get no gradient there)."""
        return not target.requires_grad

    def _record(self, res) -> None:
        s = self.sinkhorn
        if res is None:  # the closed form
            s.last_n_iter, s.last_converged, self.last_mean_iter = 0, True, 0.0
            return
        s.last_n_iter, s.last_converged, self.last_mean_iter = (
            res.n_iter,
            res.converged,
            res.mean_iter,
        )
        if not res.converged:
            warnings.warn(
                f"SoftWassersteinLoss: Sinkhorn stopped at max_iter={s.max_iter} with error "
                f"{res.err:.3g} > tol={s.tol:g} at some positions; increase max_iter or reg",
                RuntimeWarning,
                stacklevel=4,
            )

    def _fast_loss(self, logits, target, keep):
        """The reduced loss: Liu et al.'s closed form when every kept target is one-hot, else
        :func:`pixel_sinkhorn`; ``None`` where the scaling domain could underflow or
        overflowed (the caller then takes the log-domain path)."""
        dt = torch.float32 if logits.dtype in _LOW_PRECISION else logits.dtype
        ids = None if keep is None else keep.reshape(-1).nonzero()[:, 0]  # (P,)
        N, C, reg = logits.shape[0], logits.shape[1], self.sinkhorn.reg
        with torch.no_grad(), torch.autocast(logits.device.type, enabled=False):
            y = _class_major(target.detach().to(dt), ids)  # (C, P)
            y_mass, k = _check_target_columns(y)  # (P,), the classes of one-hot targets
            one_hot = k is not None
            if one_hot and ids is not None:  # the padding class C marks the positions left out
                k = torch.full((keep.numel(),), C, device=k.device).index_copy_(0, ids, k)
        if one_hot:
            # the only plan sends s to the target class: the value is OneHotWassersteinLoss's,
            # the gradient adds reg times that of sum_i s_i log s_i (Frogner et al. eq. 6)
            self._record(None)
            t_pad = k.view((N,) + tuple(logits.shape[2:]))  # (N, d1, ..., dk)
            loss = _one_hot_kernel(logits, t_pad, self.M, self.reduction, y.shape[1], reg)
            return loss.to(logits.dtype)
        M = self.M.to(device=logits.device, dtype=dt)
        if float(M.max()) > SCALING_LIMIT.get(dt, 0.0) * reg:
            return None
        with torch.no_grad(), torch.autocast(logits.device.type, enabled=False):
            # softmax in the logits' own layout (over a strided class axis it costs twice as
            # much), then one class-major copy
            h = _class_major(torch.softmax(logits.detach().to(dt), dim=1), ids).contiguous()
            cfg = self.sinkhorn
            res = pixel_sinkhorn(h, y, M, reg, tol=cfg.tol, max_iter=cfg.max_iter, y_mass=y_mass)
            del y
            if not bool(torch.isfinite(res.value.sum())):
                return None
            self._record(res)
            value = res.value  # (P,)
            if ids is not None:
                value = value.new_zeros(keep.numel()).index_copy_(0, ids, value)  # (N d1...,)
        per = value.view((N,) + tuple(logits.shape[2:]))  # (N, d1, ..., dk)
        per = _PixelSinkhornFn.apply(logits, per.to(logits.dtype), h, res.u, ids, reg)
        return _finish_map(per, keep, self.reduction)

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
