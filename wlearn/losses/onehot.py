"""Exact Wasserstein losses for one-hot and ordered targets: no solver needed.

- :class:`OneHotWassersteinLoss`: any ground matrix ``D``, integer (one-hot) targets.
  With a one-hot target every unit of predicted mass must travel to the true class, so
  the transport problem has a single feasible plan and the loss is a weighted sum
  (Liu et al. 2020, Theorem 1, eq. 2).
- :class:`SquaredEMDLoss`: ``K`` ordered classes with unit spacing, the squared distance
  between cumulative histograms (Hou et al. 2016, Abstract), one-hot or soft targets.
- Ground matrices estimated from the network's own features (Hou et al.'s rule as the public
  code describes it, and an older variant) are in :mod:`wlearn.losses.learned_ground`.

Ground-matrix convention (project-wide, Frogner et al. orientation): rows index the
predicted mass, columns the target, so ``D[i, j]`` is the cost of predicting class ``i``
where the truth is class ``j``.

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wlearn._checks import as_tensor, check_cost_matrix, check_simplex
from wlearn.losses._common import check_ignore_index as _check_ignore_index
from wlearn.losses._common import check_reduction as _check_reduction
from wlearn.losses._common import check_same_device as _check_same_device
from wlearn.losses._common import no_positions as _no_positions

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_logits(logits) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            f"logits: expected a torch.Tensor, got {type(logits).__name__}; pass "
            "the model's output (raw scores)"
        )
    if not logits.is_floating_point():
        raise TypeError(
            f"logits: expected a floating tensor, got dtype {logits.dtype}; pass the "
            "model's raw scores, not predicted class indices"
        )
    if logits.ndim < 2 or logits.shape[1] < 2:
        raise ValueError(
            "logits: expected shape (N, C) or (N, C, d1, ..., dk) with C >= 2, "
            f"got {tuple(logits.shape)}; pass the raw scores before any argmax (one sample: "
            "logits[None])"
        )
    return logits


def _check_class_target(
    target, like: torch.Tensor, C: int, ignore_index: int | None, name: str = "logits"
) -> torch.Tensor:
    """Integer target of shape ``(N, d1, ..., dk)`` for ``like`` of shape ``(N, *, d1, ..., dk)``
    (named ``name``), values in ``[0, C)`` or ``ignore_index``; returned as int64."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(
            f"target: expected a torch.Tensor, got {type(target).__name__}; convert "
            "it with torch.as_tensor(target, dtype=torch.long)"
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"target: expected integer class indices (torch.long), got dtype {target.dtype}; "
            "convert whole-number floats with target.long() and one-hot rows with "
            "target.argmax(1) (soft targets: wlearn.losses.SoftWassersteinLoss)"
        )
    expected = (like.shape[0],) + tuple(like.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target: expected shape {expected} to match {name} of shape "
            f"{tuple(like.shape)}, got {tuple(target.shape)}; give one class index per "
            "position, without a class dimension (one-hot rows: target.argmax(1))"
        )
    _check_same_device(target, like, name)
    bad = (target < 0) | (target >= C)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bad.any():
        v = target[bad][0].item()
        raise ValueError(
            f"target: expected class indices in [0, {C - 1}] or ignore_index={ignore_index}, "
            f"got {v} ({int(bad.sum())} such entries); class indices run from 0 to {C - 1}: "
            "remap the labels (Cityscapes labelIds: wlearn.data.cityscapes.to_train_ids), or "
            "pass ignore_index=<value> for positions to skip"
        )
    return target.long()


def _check_ground(D, C: int | None = None, name: str = "D") -> torch.Tensor:
    D = as_tensor(D, name)
    check_cost_matrix(D, name)
    if C is not None and D.shape[0] != C:
        raise ValueError(
            f"{name}: expected a ({C}, {C}) matrix for logits with {C} classes, "
            f"got shape {tuple(D.shape)}; build it with one row and one column per class, "
            f"e.g. wlearn.ground.line({C})"
        )
    return D


_PIXELS = 1 << 15
"""Positions per chunk on the CPU: a chunk's softmax, products and gradient (``C`` x
``_PIXELS`` floats, 2.4 MB for 19 classes) stay in cache between the passes over it (16384
was 5-10% faster with one thread, at twice the operations, each a fork and join of the
threads). On a GPU a chunk is a whole sample (fewer kernel launches)."""


def _views(z: torch.Tensor, *others: torch.Tensor):
    """Chunks of positions: yield ``(C, m)`` views of ``z`` and of the ``(N, C, P)`` tensors
    ``others`` (sharing its shape), then the position range ``(n, a, b)``: sample ``n``
    (``None`` for plain classification, ``P == 1``, whose chunks run over samples)."""
    N, C, P = z.shape
    step = _PIXELS if z.device.type == "cpu" else max(N, P)
    if P == 1:  # (N, C): the chunks are columns of the (C, N) transposed views
        for a in range(0, N, step):
            b = min(N, a + step)
            yield (z[a:b, :, 0].T, *(x[a:b, :, 0].T for x in others), (None, a, b))
        return
    for n in range(N):
        for a in range(0, P, step):
            b = min(P, a + step)
            yield (z[n, :, a:b], *(x[n, :, a:b] for x in others), (n, a, b))


def _positions(x: torch.Tensor, where) -> torch.Tensor:
    """The entries ``(m,)`` of a per-position tensor ``x`` (N, P) for a chunk ``where``."""
    n, a, b = where
    return x[a:b, 0] if n is None else x[n, a:b]


class _OneHotWasserstein(torch.autograd.Function):
    """``L = sum_i s_i D[i, t]`` per position, reduced, with its analytic gradient.

    Saves the logits (which exist anyway: no new batch-sized tensor, where cross-entropy saves
    its log-softmax), the padded target, ``L`` and ``lse = log sum_i exp(z_i)`` (all (N, P)).
    Both passes run chunk by chunk over positions (:data:`_PIXELS`): forward, a chunk's
    ``e = exp(z - max z)``, ``D[:, t]`` gathered, ``L = sum_i e_i D[i, t] / sum(e)`` and
    ``lse``; backward,
    ``s = exp(z - lse)`` for the chunk, ``D[:, t]`` gathered and the gradient
    ``s (D[:, t] - L)`` written once (with ``entropy``: the gradient of ``L`` plus ``entropy``
    times that of ``sum_i s_i log s_i``, i.e. ``D[:, t] + entropy z`` in place of ``D[:, t]``;
    for :class:`~wlearn.losses.SoftWassersteinLoss` on one-hot targets, whose value is ``L``).
    So the logits are read once per pass and the gradient
    written once, with chunk-sized temporaries: recomputing a chunk's softmax from ``lse``
    costs less than writing and reading back a batch-sized one.
    """

    @staticmethod
    def forward(ctx, logits, t_pad, D_pad, reduction, count, entropy=0.0):  # count: kept
        N, C = logits.shape[:2]
        z = logits.reshape(N, C, -1)  # (N, C, P)
        t_pad = t_pad.reshape(N, -1)  # (N, P)
        loss = torch.empty_like(t_pad, dtype=z.dtype)  # (N, P)
        lse = torch.empty_like(loss)  # (N, P)
        e = None
        for zv, where in _views(z):  # (C, m) views
            if e is None or e.shape != zv.shape:
                e = torch.empty(zv.shape, dtype=z.dtype, device=z.device)  # (C, m)
            top = zv.amax(0)  # (m,)
            total = torch.sub(zv, top, out=e).exp_().sum(0)  # (m,): e = exp(z - max z)
            Dt = D_pad.index_select(1, _positions(t_pad, where))  # (C, m): D[:, t]
            # L = sum_i s_i D[i, t] with s = e / sum(e); lse = max z + log sum(e)
            torch.div(Dt.mul_(e).sum(0), total, out=_positions(loss, where))
            torch.add(top, total.log_(), out=_positions(lse, where))
        ctx.save_for_backward(logits, t_pad, D_pad, loss, lse)
        ctx.reduction, ctx.count, ctx.entropy = reduction, count, entropy
        if reduction == "none":
            return loss.view((N,) + tuple(logits.shape[2:]))
        total = loss.sum()
        return total if reduction == "sum" else total / count

    @staticmethod
    def backward(ctx, grad_out):
        logits, t_pad, D_pad, loss, lse = ctx.saved_tensors
        N, C = logits.shape[:2]
        z = logits.reshape(N, C, -1)  # (N, C, P)
        grad = torch.empty_like(z, memory_format=torch.contiguous_format)  # (N, C, P)
        if ctx.reduction == "none":
            go = grad_out.reshape(loss.shape)  # (N, P)
            D_g, L_g = D_pad, loss
        else:  # a scalar dl/dsum: fold it into D and L
            g = grad_out / ctx.count if ctx.reduction == "mean" else grad_out
            D_g, L_g, go = D_pad * g, loss * g, None  # (C, C+1), (N, P)
        s = None
        C_pad = D_pad.shape[1] - 1  # the padding class of ignored positions
        # the entropy term's weight, dl/dL folded in as in D_g (one read of it, not per chunk)
        weight = ctx.entropy * (1.0 if go is not None else float(g)) if ctx.entropy else 0.0
        for zv, gv, where in _views(z, grad):  # grad = s * (w - <s, w>) * dl/dL
            if s is None or s.shape != zv.shape:
                s = torch.empty(zv.shape, dtype=z.dtype, device=z.device)  # (C, m)
            torch.sub(zv, _positions(lse, where), out=s).exp_()  # the softmax
            t = _positions(t_pad, where)  # (m,)
            w = D_g.index_select(1, t)  # (C, m): D[:, t], w = D[:, t] (+ entropy z)
            if ctx.entropy:  # <s, w> = L + entropy <s, z>; nothing at ignored positions
                if ctx.count < t_pad.numel():
                    w.addcmul_(zv, (t != C_pad).to(z.dtype), value=weight)
                else:
                    w.add_(zv, alpha=weight)
                w.sub_(torch.mul(s, w).sum(0))
            else:  # <s, D[:, t]> = L
                w.sub_(_positions(L_g, where))
            if go is not None:
                w.mul_(_positions(go, where))
            torch.mul(w, s, out=gv)
        return grad.view(logits.shape), None, None, None, None, None


def one_hot_wasserstein(
    logits, target, D, *, ignore_index: int = -100, reduction: str = "mean"
) -> torch.Tensor:
    r"""Exact Wasserstein loss between ``softmax(logits)`` and a one-hot target.

    .. math::

        L(s, t) = \sum_i s_i\, D[i, t], \qquad s = \mathrm{softmax}(z),

    the transport cost of the only feasible plan (all mass goes to class ``t``;
    Liu et al. 2020, Theorem 1, eq. 2). Gradient
    :math:`\partial L / \partial z_i = s_i (D[i, t] - L)`.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C) or (N, C, d1, ..., dk), floating
        Unnormalised scores, as for :func:`torch.nn.functional.cross_entropy`.
        float16/bfloat16 inputs (and autocast) are computed in float32.
    target : torch.Tensor, shape (N,) or (N, d1, ..., dk), integer
        True class per position, in ``[0, C)`` or ``ignore_index``.
    D : torch.Tensor or array, shape (C, C), non-negative
        Ground matrix, ``D[i, j]`` = cost of predicting class ``i`` where the truth is
        ``j`` (rows = predicted mass, columns = target). Need not be symmetric. Liu et
        al. 2020, eq. 1-2 use this orientation; their prose ("the different severity of
        misclassifying i-th class pixel into j-th class pixel") reads the other way round.
    ignore_index : int
        Target value that contributes nothing (and gets zero gradient).
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over the non-ignored positions (NaN if all are ignored or
        ``N = 0``, with a zero gradient, like cross-entropy); ``"none"`` returns shape
        (N, d1, ..., dk), 0 at ignored positions.

    Returns
    -------
    torch.Tensor
        Scalar, or (N, d1, ..., dk) for ``reduction="none"``. No gradient flows to ``D``.

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    logits = _check_logits(logits)
    reduction = _check_reduction(reduction)
    D = _check_ground(D, logits.shape[1])
    return _one_hot_wasserstein(logits, target, D, ignore_index, reduction)


def _one_hot_wasserstein(logits, target, D, ignore_index, reduction):
    """The loss once ``logits`` and ``D`` are validated (``D`` is not re-checked)."""
    C = logits.shape[1]
    if logits.numel() == 0:  # no position at all (N = 0 or an empty image): as cross-entropy
        _check_class_target(target, logits, C, ignore_index)
        return _no_positions(logits, reduction, target.shape)
    t_pad, count = _pad_target(target, logits, C, ignore_index)
    if count == 0 and reduction == "mean":  # every target ignored: NaN, zero gradient
        return _no_positions(logits, reduction, target.shape)
    return _one_hot_kernel(logits, t_pad, D, reduction, count)


def _one_hot_kernel(logits, t_pad, D, reduction, count, entropy=0.0):
    """:class:`_OneHotWasserstein` on a padded target (``C`` where ignored): dtypes, ``D``."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        if logits.dtype in _LOW_PRECISION:
            logits = logits.float()
        # extra zero column C for ignored positions: their loss and gradient vanish
        D_pad = F.pad(D.detach().to(device=logits.device, dtype=logits.dtype), (0, 1))  # (C, C+1)
        return _OneHotWasserstein.apply(logits, t_pad, D_pad, reduction, count, entropy)


def _pad_target(target, logits, C: int, ignore_index: int):
    """Target with ignored positions set to ``C``, and the number of counted positions.

    Checks the values in a few passes over the target and one host synchronisation.
    """
    if (
        not isinstance(target, torch.Tensor)
        or target.is_floating_point()
        or (target.dtype == torch.bool or target.is_complex())
        or tuple(target.shape) != (logits.shape[0],) + tuple(logits.shape[2:])
        or (target.device != logits.device)
    ):
        _check_class_target(target, logits, C, ignore_index)  # raises with the reason
    target = target.long()
    ignored = target == ignore_index
    t_pad = target.masked_fill(ignored, C)  # (N, d1, ..., dk)
    lo, hi = torch.aminmax(t_pad)
    n_ign = ignored.sum()
    lo, hi, n_ign = torch.stack([lo, hi, n_ign]).tolist()
    if lo < 0 or hi > C or (hi == C and C != ignore_index and int((t_pad == C).sum()) != n_ign):
        _check_class_target(target, logits, C, ignore_index)  # raises with the offending value
    return t_pad, target.numel() - n_ign


class OneHotWassersteinLoss(nn.Module):
    r"""Exact Wasserstein loss for one-hot targets: a drop-in for ``nn.CrossEntropyLoss``.

    .. math::

        L(s, t) = \sum_i s_i\, D[i, t], \qquad s = \mathrm{softmax}(z)

    (Liu et al. 2020, Theorem 1, eq. 2). With ``D = wlearn.ground.line(C, 2)`` it is the
    exact squared Wasserstein-2 distance on ordered classes, ``W_2^2(s, \delta_t)``; with
    ``line(C, 1)`` it is ``W_1``. Transform ``D`` first with :func:`wlearn.ground.power`,
    :func:`~wlearn.ground.huber` or :func:`~wlearn.ground.step` (Liu et al. eq. 3-5).
    Forward and backward cost about as much as cross-entropy and allocate no more
    (see ``benchmarks/bench_losses.py``).

    Parameters
    ----------
    D : torch.Tensor, array, or LearnedGroundMatrix
        Ground matrix, shape (C, C), non-negative, not necessarily symmetric, in the
        transport orientation: ``D[i, j]`` = cost of predicting class ``i`` where the truth
        is ``j`` (rows = predicted mass, columns = target), as in Liu et al. 2020, eq. 1-2;
        their prose ("the different severity of misclassifying i-th class pixel into j-th
        class pixel") reads the other way round. A module with a ``.D`` tensor (a
        :class:`~wlearn.losses.LearnedGroundMatrix`) is read afresh at each call.
    ignore_index : int
        Target value to ignore (default -100, as in cross-entropy; 255 for Cityscapes).
    reduction : {"mean", "sum", "none"}
        As in :class:`torch.nn.CrossEntropyLoss`: ``"mean"`` averages over non-ignored
        positions.

    Shapes: ``forward(logits, target)`` with logits (N, C) or (N, C, d1, ..., dk) and an
    integer target (N,) or (N, d1, ..., dk). The device is taken from the inputs.

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(self, D, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.ignore_index = _check_ignore_index(ignore_index)
        if isinstance(D, nn.Module) and isinstance(getattr(D, "D", None), torch.Tensor):
            self.ground = D  # e.g. a LearnedGroundMatrix: its .D is read at every call
        else:
            self.ground = None
            self.register_buffer("D", _check_ground(D).detach().clone())

    def _ground(self) -> torch.Tensor:
        return self.ground.D if self.ground is not None else self.D

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch (see the class docstring).

        Parameters
        ----------
        logits : torch.Tensor, shape (N, C) or (N, C, d1, ..., dk), floating
            Raw scores (the softmax is taken inside).
        target : torch.Tensor, shape (N,) or (N, d1, ..., dk), integer
            Class indices in ``[0, C)`` or ``ignore_index``, on the device of ``logits``.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (N, d1, ..., dk) with ``reduction="none"``.
        """
        logits = _check_logits(logits)
        D = self._ground()
        if D.shape[0] != logits.shape[1]:
            raise ValueError(
                f"D: expected a ({logits.shape[1]}, {logits.shape[1]}) matrix for logits with "
                f"{logits.shape[1]} classes, got shape {tuple(D.shape)}; build it with one row "
                f"and one column per class, e.g. wlearn.ground.line({logits.shape[1]})"
            )
        return _one_hot_wasserstein(logits, target, D, self.ignore_index, self.reduction)

    def extra_repr(self) -> str:
        C = self._ground().shape[0]
        return f"C={C}, ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class SquaredEMDLoss(nn.Module):
    r"""Squared EMD of Hou et al. 2016 (arXiv:1611.05916, Abstract) on ``K`` ordered classes.

    .. math::

        \mathrm{EMD}^2(h, y) = \sum_{k=1}^{K-1} \big(F_k(h) - F_k(y)\big)^2,
        \qquad F_k(h) = \sum_{k' \le k} h_{k'}, \quad h = \mathrm{softmax}(z),

    on classes ``0 .. K-1`` with unit spacing, exact and O(K) (the last term, k = K, is
    always 0). **Normalisation:** summed over the ``K - 1`` terms, then averaged over the
    samples (``reduction="mean"``). The public code attributed to Hou et al. (``emd_l2`` in
    ``liu-xiaofeng/OTM``, ``emd_loss.py``) and the re-implementation ``bjin96/emd``
    (``loss_functions/emd.py``) average over the ``K`` classes as well, a factor ``1/K`` that
    only rescales the weight or the learning rate. It is the squared L2 distance between the
    cumulative histograms (the Cramer distance; the ranked probability score of forecasting).
    It is *not* :math:`W_2^2`: on the line :math:`\sum_k |F_k(h) - F_k(y)|` is :math:`W_1`
    (ground cost ``|i - j|``), while :math:`W_2^2` compares quantile functions; for Dirac
    masses at ``i`` and ``j`` this loss equals ``|i - j|`` (= ``W_1``), not ``(i - j)^2``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}

    Shapes: ``forward(logits, target)``: logits (N, K) or (N, K, d1, ..., dk); target either
    integer classes (N,) / (N, d1, ..., dk), or soft labels of the logits' shape with
    non-negative entries summing to one along dim 1 (e.g. rating histograms).

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(self, *, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch (see the class docstring).

        Parameters
        ----------
        logits : torch.Tensor, shape (N, C) or (N, C, d1, ..., dk), floating
            Raw scores.
        target : torch.Tensor, shape (N,) or (N, d1, ..., dk) integer, or (N, C, ...) floating
            Class indices, or soft labels with rows on the simplex along dim 1.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (N, d1, ..., dk) with ``reduction="none"``.
        """
        logits = _check_logits(logits)
        if logits.dtype in _LOW_PRECISION:
            logits = logits.float()
        C = logits.shape[1]
        cdf_p = torch.softmax(logits, dim=1).cumsum(1)  # (N, C, ...)
        if isinstance(target, torch.Tensor) and target.is_floating_point():
            if target.shape != logits.shape:
                raise ValueError(
                    f"target: soft labels must have the logits' shape {tuple(logits.shape)}, "
                    f"got {tuple(target.shape)}; pass probabilities with one channel per class, "
                    "or integer class indices (torch.long) without the class dimension"
                )
            t = target.to(device=logits.device, dtype=logits.dtype)
            check_simplex(t.movedim(1, -1), "target")
            cdf_t = t.cumsum(1)  # (N, C, ...)
        else:
            t = _check_class_target(target, logits, C, None)
            k = torch.arange(C, device=logits.device).view((1, C) + (1,) * (logits.ndim - 2))
            cdf_t = (k >= t.unsqueeze(1)).to(cdf_p.dtype)  # (N, C, ...)
        per = (cdf_p - cdf_t)[:, :-1].pow(2).sum(1)  # (N, ...)
        if self.reduction == "none":
            return per
        return per.sum() if self.reduction == "sum" else per.mean()
