"""Frogner et al. 2015: the entropic Wasserstein loss and its KL-relaxed version.

Both are ``torch.nn.Module``\\ s. Their backward passes are the closed-form gradients of the
paper's Algorithm 1, computed from the converged log-domain potentials: nothing is
differentiated through the Sinkhorn iterations, so memory beyond ``M`` stays O(B K).

Introduced in notebooks/02_sinkhorn.ipynb and 04_mnist_p_metric.ipynb (SinkhornLoss),
03_unbalanced_relaxation.ipynb and 06_tag_prediction.ipynb (UnbalancedSinkhornLoss).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from wlearn._checks import (
    as_tensor,
    check_cost_matrix,
    check_count,
    check_nonnegative,
    check_positive_scalar,
    check_simplex,
)
from wlearn.losses._common import check_real_floating, no_positions
from wlearn.losses._common import check_reduction as _check_reduction
from wlearn.losses._common import check_same_device as _check_same_device
from wlearn.losses._common import reduce as _reduce
from wlearn.ot import (
    _advice,
    _gkl,
    _plan_stats,
    _reg_m_pair,
    fill_potentials,
    sinkhorn_potentials,
    unbalanced_potentials,
)

__all__ = ["SinkhornLoss", "UnbalancedSinkhornLoss"]


def _pair(input: torch.Tensor, target: torch.Tensor, K: int):
    """Check shapes: both (B, K) (or (K,), treated as a batch of one); ``input`` real
    floating, ``target`` cast to its dtype (integer and bool targets are promoted)."""
    check_real_floating(input, "input", "pass probabilities, e.g. torch.softmax(logits, dim=1)")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target: expected a torch.Tensor, got {type(target).__name__}")
    if target.is_complex():
        raise TypeError(
            f"target: expected real numbers, got dtype {target.dtype}; pass histograms "
            "(one-hot rows for class labels)"
        )
    # Class indices where histograms are expected: the shape error says how to convert them.
    one_hot_fix = (
        f"; for class indices use torch.nn.functional.one_hot(target, {K}).float()"
        if target.ndim == 1 and not target.is_floating_point()
        else ""
    )
    for name, t in (("input", input), ("target", target)):
        if t.ndim not in (1, 2) or t.shape[-1] != K:
            fix = one_hot_fix if name == "target" else ""
            raise ValueError(
                f"{name}: expected shape (B, {K}) to match M of shape ({K}, {K}), "
                f"got {tuple(t.shape)}{fix}"
            )
    if input.shape != target.shape:
        raise ValueError(
            f"target: expected the shape of input {tuple(input.shape)}, got "
            f"{tuple(target.shape)}{one_hot_fix}"
        )
    _check_same_device(target, input, "input")
    return input.reshape(-1, K), target.reshape(-1, K).to(input.dtype)  # (B, K)


class _CostMixin(nn.Module):
    def __init__(self, M, reg, max_iter, tol, reduction):
        super().__init__()
        M = as_tensor(M, "M")
        check_cost_matrix(M, "M")
        self.register_buffer("M", M)
        self.reg = check_positive_scalar(reg, "reg")
        self.max_iter = check_count(max_iter, "max_iter")
        self.tol = check_positive_scalar(tol, "tol")
        self.reduction = _check_reduction(reduction)
        self.last_n_iter: int | None = None

    def _M_for(self, x: torch.Tensor) -> torch.Tensor:
        return self.M.to(device=x.device, dtype=x.dtype)

    def _warn(self, converged: bool, err: float, trace: dict, dtype) -> None:
        self.last_converged = converged
        if not converged:
            tip = _advice(self.max_iter, err, trace["err_half"], trace["tol"], dtype, self.reg)
            warnings.warn(
                f"{type(self).__name__}: Sinkhorn stopped at max_iter={self.max_iter} with "
                f"error {err:.3g} > tol={trace['tol']:.3g}; {tip}",
                RuntimeWarning,
                stacklevel=3,
            )


class _SinkhornFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, value, grad_in, grad_t):
        ctx.save_for_backward(grad_in, grad_t)
        return value

    @staticmethod
    def backward(ctx, grad_out):
        grad_in, grad_t = ctx.saved_tensors
        g = grad_out[:, None]  # (B, 1)
        return g * grad_in, g * grad_t, None, None, None


class SinkhornLoss(_CostMixin):
    """Entropic Wasserstein loss between predicted and target histograms (Frogner et al. 2015).

    Forward value per pair: the transport cost :math:`\\langle T, M \\rangle` of the entropic
    plan (eq. 6), as ``ot.sinkhorn2`` returns it. Backward (Algorithm 1, normalized case):

    .. math:: \\partial W / \\partial h = \\alpha - \\tfrac{1}{K} (\\alpha^\\top 1) 1,
              \\qquad \\alpha = \\mathrm{reg} \\log u,

    the dual potential centred to be tangent to the simplex (footnote 1): the gradient of the
    regularized objective (6) along the simplex. The target gets its centred potential too.

    Parameters
    ----------
    M : tensor or array, shape (K, K)
        Ground cost, ``M[i, j]`` = cost of predicting class ``i`` where the target has ``j``.
    reg : float
        Entropic regularization ``1/lambda``.
    max_iter, tol : int, float
        Sinkhorn stopping rule (see :func:`wlearn.ot.sinkhorn`).
    reduction : {"mean", "sum", "none"}

    Shapes
    ------
    input, target : (B, K), rows on the probability simplex (``input`` usually a softmax;
    ``target`` may be one-hot). Output: scalar, or (B,) with ``reduction="none"``.
    """

    def __init__(
        self, M, reg: float, *, max_iter: int = 100, tol: float = 1e-6, reduction: str = "mean"
    ):
        super().__init__(M, reg, max_iter, tol, reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch; backward is Algorithm 1's centred potential.

        Parameters
        ----------
        input : torch.Tensor, shape (B, K) or (K,)
            Predicted histograms, rows on the simplex (``torch.softmax(logits, dim=1)``).
        target : torch.Tensor, shape of ``input``
            Target histograms (one-hot rows for class labels), on the device of ``input``.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (B,) with ``reduction="none"``.
        """
        K = self.M.shape[0]
        h, y = _pair(input, target, K)
        check_simplex(h.detach(), "input")
        check_simplex(y.detach(), "target")
        if h.shape[0] == 0:  # as cross-entropy: NaN mean, zero gradient
            return no_positions(input, self.reduction, (0,))
        M = self._M_for(h)
        trace = {}
        with torch.no_grad():
            f, g, kernel, n_iter, converged, err = sinkhorn_potentials(
                h.detach(),
                y.detach(),
                M,
                self.reg,
                max_iter=self.max_iter,
                tol=self.tol,
                trace=trace,
            )
            value = kernel.cost(f, g).to(h.dtype)  # (B,)
            f, g = fill_potentials(
                f, g, h.detach().to(f.dtype), y.detach().to(f.dtype), kernel, 1.0, 1.0
            )
            grad_in = (f - f.mean(-1, keepdim=True)).to(h.dtype)  # (B, K)
            grad_t = (g - g.mean(-1, keepdim=True)).to(h.dtype)  # (B, K)
        self.last_n_iter = n_iter
        self._warn(converged, err, trace, f.dtype)
        out = _SinkhornFn.apply(h, y, value, grad_in, grad_t)
        return _reduce(out, self.reduction)


class UnbalancedSinkhornLoss(_CostMixin):
    """KL-relaxed Wasserstein loss for unnormalized measures (Frogner et al. 2015, eq. 8).

    Forward value per pair: the full relaxed objective

    .. math:: \\langle T, M \\rangle + \\mathrm{reg} \\sum T \\log T
              + \\gamma_a \\widetilde{KL}(T 1 \\| h) + \\gamma_b \\widetilde{KL}(T^\\top 1 \\| y)

    at the fixed point of Prop. 4.2 (kernel ``exp(-M/reg - 1)``), and its exact gradient
    (envelope theorem; Algorithm 1, unnormalized case) ``gamma_a (1 - T 1 / h)``; in bins where
    ``h = 0`` the plan row is empty and the gradient is ``gamma_a``.

    Parameters
    ----------
    M : tensor or array, shape (K, K)
    reg : float
        ``1/lambda``.
    reg_m : float or (float, float)
        ``gamma`` or ``(gamma_a, gamma_b)``.
    max_iter, tol, reduction : see :class:`SinkhornLoss`.

    Shapes
    ------
    input, target : (B, K), non-negative, any total mass. Output: scalar or (B,).
    """

    def __init__(
        self,
        M,
        reg: float,
        reg_m,
        *,
        max_iter: int = 100,
        tol: float = 1e-6,
        reduction: str = "mean",
    ):
        super().__init__(M, reg, max_iter, tol, reduction)
        self.reg_m = _reg_m_pair(reg_m)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The relaxed objective of a batch; backward ``gamma_a (1 - T 1 / h)``.

        Parameters
        ----------
        input : torch.Tensor, shape (B, K) or (K,)
            Non-negative predicted measures (e.g. ``torch.exp(logits)``), any total mass.
        target : torch.Tensor, shape of ``input``
            Non-negative target measures, on the device of ``input``.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (B,) with ``reduction="none"``.
        """
        K = self.M.shape[0]
        h, y = _pair(input, target, K)
        check_nonnegative(h.detach(), "input")
        check_nonnegative(y.detach(), "target")
        if h.shape[0] == 0:  # as cross-entropy: NaN mean, zero gradient
            return no_positions(input, self.reduction, (0,))
        for name, t in (("input", h), ("target", y)):
            if (t.detach().sum(-1) <= 0).any():
                raise ValueError(
                    f"{name}: expected every row to have positive mass, got a zero row"
                )
        ra, rb = self.reg_m
        reg = self.reg
        trace = {}
        with torch.no_grad():
            hd, yd = h.detach(), y.detach()
            f, g, kernel, n_iter, converged, err = unbalanced_potentials(
                hd,
                yd,
                self._M_for(h),
                reg,
                self.reg_m,
                max_iter=self.max_iter,
                tol=self.tol,
                trace=trace,
            )
            hd, yd = hd.to(f.dtype), yd.to(f.dtype)
            cost, tlogt, row, col = _plan_stats(kernel, f, g, 1.0)  # row = T 1, col = T^T 1
            value = cost + reg * tlogt + ra * _gkl(row, hd) + rb * _gkl(col, yd)
            ratio = torch.where(hd > 0, row / hd.clamp_min(torch.finfo(hd.dtype).tiny), 0)
            grad_in = (ra * (1 - ratio)).to(h.dtype)  # (B, K)
            ratio_t = torch.where(yd > 0, col / yd.clamp_min(torch.finfo(yd.dtype).tiny), 0)
            grad_t = (rb * (1 - ratio_t)).to(h.dtype)  # (B, K)
        self.last_n_iter = n_iter
        self._warn(converged, err, trace, f.dtype)
        out = _SinkhornFn.apply(h, y, value.to(h.dtype), grad_in, grad_t)
        return _reduce(out, self.reduction)
