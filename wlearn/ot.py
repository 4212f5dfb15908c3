"""Optimal-transport solvers: exact, entropic (Sinkhorn) and KL-relaxed (unbalanced).

Conventions (POT's names; Frogner et al. 2015 write ``lambda = 1/reg`` and ``gamma = reg_m``):

- ``a`` (shape ``(K,)`` or ``(B, K)``) is the source measure (a prediction ``h(x)``), ``b`` the
  target ``y``, ``M`` the ``(K, K)`` ground cost, ``M[i, j]`` the cost of moving a unit of mass
  from bin ``i`` of ``a`` to bin ``j`` of ``b``.
- A batch of pairs is solved at once against one ``M``; a 1-D ``a`` or ``b`` is broadcast
  against a batched other.
- ``value`` is always the transport cost :math:`\\langle T, M \\rangle` of the returned plan.
- Inputs may be torch tensors (any device, float32 or float64), NumPy arrays, lists or
  numbers; results are torch tensors on the input's device, in the measures' floating dtype
  (float32 ``a``, ``b`` in, float32 out, whatever ``M``'s dtype; float32 NumPy arrays too);
  integer and bool inputs are promoted, never truncated
  (:func:`wlearn._checks.as_float_tensors`). Complex inputs are refused.
- A batch of ``B = 0`` pairs gives empty results; ``K = 0`` bins is refused.
- The solvers run without autograd: ``value`` and ``objective`` carry no gradient, and
  calling ``backward`` through them raises an error that names the loss to train with
  (:class:`wlearn.losses.SinkhornLoss`, :class:`~wlearn.losses.UnbalancedSinkhornLoss`,
  :class:`~wlearn.losses.OneHotWassersteinLoss`), whose backward is Frogner et al.'s
  Algorithm 1.

Introduced in notebooks/01_optimal_transport.ipynb (emd), 02_sinkhorn.ipynb (sinkhorn) and
03_unbalanced_relaxation.ipynb (unbalanced_sinkhorn).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import ot as pot
import torch

from wlearn._checks import (
    as_float_tensors,
    check_cost_matrix,
    check_count,
    check_histograms,
    check_nonnegative_scalar,
    check_positive_scalar,
)
from wlearn._kernels import choose_kernel

__all__ = ["OTResult", "emd", "sinkhorn", "unbalanced_sinkhorn"]

MASS_RTOL = 1e-5
"""Balanced solvers accept ``a`` and ``b`` whose total masses differ by at most this, relative."""


@dataclass
class OTResult:
    """What every solver returns.

    Attributes
    ----------
    value : torch.Tensor, shape () or (B,)
        Transport cost :math:`\\langle T, M \\rangle`.
    plan : torch.Tensor, shape (K, K) or (B, K, K)
        The transport plan ``T`` (rows sum to ``a``, columns to ``b`` for balanced solvers).
    potentials : tuple of torch.Tensor, each (K,) or (B, K)
        Dual potentials ``(f, g)``. For Sinkhorn ``f = reg log u``, ``g = reg log v`` with
        ``T = diag(u) exp(-M/reg) diag(v)``; zero-mass bins get the (soft) c-transform of the
        other potential, so every entry is finite.
    n_iter : int or None
        Iterations used (iterative solvers).
    converged : bool or None
        Whether every pair reached ``tol`` (iterative solvers).
    objective : torch.Tensor or None, shape () or (B,)
        The full regularized objective: eq. (6) for :func:`sinkhorn`, eq. (8) for
        :func:`unbalanced_sinkhorn`; ``None`` for :func:`emd`.

    Equation numbers are those of Frogner et al. 2015; ``value`` is what POT's ``ot.emd2`` and
    ``ot.sinkhorn2`` return.
    """

    value: torch.Tensor
    _plan: torch.Tensor | Callable[[], torch.Tensor] = field(repr=False)
    potentials: tuple[torch.Tensor, torch.Tensor]
    n_iter: int | None = None
    converged: bool | None = None
    objective: torch.Tensor | None = None

    @property
    def plan(self) -> torch.Tensor:
        """The plan, shape (K, K) or (B, K, K), formed on first access (``B K^2`` numbers)."""
        if callable(self._plan):
            self._plan = self._plan()
        return self._plan


def _prepare(a, b, M, *, balanced: bool):
    """Validate and convert; returns (a2, b2, M, batched, dtype, device) with a2, b2 (B, K)."""
    (a, b, M), _, _ = as_float_tensors(a=a, b=b, M=M, lead=("a", "b"))
    check_cost_matrix(M, "M")
    K = M.shape[0]
    check_histograms(a, "a", K)
    check_histograms(b, "b", K)
    batched = a.ndim == 2 or b.ndim == 2
    if a.ndim == 2 and b.ndim == 2 and a.shape[0] != b.shape[0]:
        raise ValueError(f"b: expected batch size {a.shape[0]} to match a, got {b.shape[0]}")
    B = a.shape[0] if a.ndim == 2 else (b.shape[0] if b.ndim == 2 else 1)
    a2 = a.reshape(-1, K).expand(B, K)  # (B, K)
    b2 = b.reshape(-1, K).expand(B, K)  # (B, K)
    ma, mb = a2.sum(-1), b2.sum(-1)
    if (ma <= 0).any() or (mb <= 0).any():
        name = "a" if (ma <= 0).any() else "b"
        raise ValueError(f"{name}: expected positive total mass, got a measure of total mass 0")
    if balanced and B:
        rel = ((ma - mb).abs() / ma).max().item()
        if rel > MASS_RTOL:
            raise ValueError(
                f"a, b: balanced transport needs equal total mass (relative tolerance "
                f"{MASS_RTOL:g}), got totals differing by {rel:.3g} relative; normalize them "
                f"or use unbalanced_sinkhorn"
            )
    return a2, b2, M, batched, M.dtype, M.device


def _finish(batched: bool, dtype, *tensors):
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        t = t.to(dtype)
        out.append(t if batched else t[0])
    return out


def _empty(K: int, dtype, device, iterative: bool) -> OTResult:
    """The result for a batch of ``B = 0`` pairs: every field with a leading 0."""
    z = torch.zeros(0, dtype=dtype, device=device)
    zk = torch.zeros(0, K, dtype=dtype, device=device)
    plan = torch.zeros(0, K, K, dtype=dtype, device=device)
    if not iterative:
        return OTResult(value=z, _plan=plan, potentials=(zk, zk.clone()))
    return OTResult(z, plan, (zk, zk.clone()), 0, True, z.clone())


class _NoGradient(torch.autograd.Function):
    """Identity on a solver's output whose backward raises: the solvers run without autograd,
    and a loss built on their ``value`` would otherwise train on nothing, silently."""

    @staticmethod
    def forward(ctx, value, message, *inputs):
        ctx.message = message
        return value.clone()

    @staticmethod
    def backward(ctx, *grad):
        raise RuntimeError(ctx.message)


_LOSS_FOR = {
    "emd": "wlearn.losses.OneHotWassersteinLoss (one-hot targets, exact) or "
    "wlearn.losses.SinkhornLoss with a small reg (histograms); result.potentials[0] is a "
    "subgradient in a (Frogner et al. 2015, eq. 5)",
    "sinkhorn": "wlearn.losses.SinkhornLoss, whose backward is the dual potential "
    "(Frogner et al. 2015, Algorithm 1)",
    "unbalanced_sinkhorn": "wlearn.losses.UnbalancedSinkhornLoss, whose backward is "
    "gamma_a (1 - T 1 / a) (Frogner et al. 2015, Algorithm 1)",
}


def _guard_gradient(solver: str, inputs, *outputs):
    """``outputs`` unchanged when no input requires a gradient; otherwise attached to the
    inputs through :class:`_NoGradient`, so that ``backward`` names the loss to use."""
    needs = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    if not needs or not torch.is_grad_enabled():
        return outputs
    msg = (
        f"wlearn.ot.{solver}: its value carries no gradient (the solver runs without "
        f"autograd); to train on this distance use {_LOSS_FOR[solver]}"
    )
    return tuple(None if o is None else _NoGradient.apply(o, msg, *needs) for o in outputs)


def _warn_not_converged(solver: str, max_iter: int, err: float, tol: float, advice: str) -> None:
    warnings.warn(
        f"{solver} did not converge: error {err:.3g} > tol {tol:.3g} after max_iter={max_iter} "
        f"iterations; {advice}",
        RuntimeWarning,
        stacklevel=3,
    )


def emd(a, b, M) -> OTResult:
    """Exact optimal transport (the Wasserstein loss, Frogner et al. eq. 3-4) by POT's
    network simplex (``ot.emd``), looped over a batch.

    .. math:: W(a, b) = \\min_{T \\ge 0,\\ T 1 = a,\\ T^\\top 1 = b} \\langle T, M \\rangle

    Parameters
    ----------
    a, b : tensor or array, shape (K,) or (B, K)
        Non-negative measures of equal total mass, any mass (each pair is solved normalized
        and its plan scaled back, so 1e-250 and 1e12 work as well as 1).
    M : tensor or array, shape (K, K)
        Non-negative ground cost.

    Returns
    -------
    OTResult
        ``value``, ``plan`` and the LP dual ``potentials`` (a subgradient of ``W`` in ``a``,
        eq. 5); ``objective`` is ``None``.
    """
    a2, b2, M, batched, dtype, device = _prepare(a, b, M, balanced=True)
    if a2.shape[0] == 0:
        return _empty(M.shape[0], dtype, device, iterative=False)
    Mn = np.ascontiguousarray(M.detach().cpu().double().numpy())
    values, plans, fs, gs = [], [], [], []
    an, bn = a2.detach().cpu().double().numpy(), b2.detach().cpu().double().numpy()
    for ai, bi in zip(an, bn, strict=True):
        # POT's network simplex wants masses near 1 (1e-200 crashes it, 1e9 is "infeasible"):
        # solve for the normalized measures, then scale the plan. The LP's dual constraints
        # f_i + g_j <= M_ij do not involve the masses, so the potentials stay as they are.
        mass = ai.sum()
        ai, bi = np.ascontiguousarray(ai / mass), np.ascontiguousarray(bi / bi.sum())
        T, log = pot.emd(ai, bi, Mn, log=True)
        if log["warning"] is not None:
            raise RuntimeError(f"ot.emd failed: {log['warning']}")
        T = T * mass
        values.append(float(np.sum(T * Mn)))
        plans.append(T)
        fs.append(log["u"])
        gs.append(log["v"])

    def tt(x):
        return torch.as_tensor(np.asarray(x), device=device)

    value, plan, f, g = _finish(batched, dtype, tt(values), tt(plans), tt(fs), tt(gs))
    (value,) = _guard_gradient("emd", (a, b, M), value)
    return OTResult(value=value, _plan=plan, potentials=(f, g))


def _iterate(step, max_iter: int, tol: float, trace: dict | None = None):
    """Run ``step()`` (returns the current error, a float) until ``err <= tol``; the error
    after ``max_iter // 2`` steps goes to ``trace["err_half"]``."""
    err = float("inf")
    for it in range(1, max_iter + 1):
        err = step()
        if trace is not None and it == max_iter // 2:
            trace["err_half"] = err
        if err <= tol:
            return it, True, err
    return max_iter, False, err


def _tol_floor(dtype, ratio: float = 0.0) -> float:
    """The smallest error ``dtype`` can resolve at ``ratio = max(M)/reg``.

    The iterations work on ``f/reg`` and ``g/reg``, numbers as large as ``max(M)/reg``, whose
    rounding, ``eps max(M)/reg``, is an error in ``log T`` that no further iteration removes
    (measured in float32, K = 5..100, one-hot and soft targets: the marginal error stalls at
    0.07-0.3 ``eps max(M)/reg`` for ``max(M)/reg`` = 1000-3000, 8.5e-6 at 1000). The floor
    is that rounding, and never below ``20 eps`` (so unchanged up to ``max(M)/reg = 20``).
    """
    return torch.finfo(dtype).eps * max(20.0, ratio)


def _advice(max_iter: int, err: float, err_half: float | None, tol: float, dtype, reg) -> str:
    """What would make a run that stopped at ``max_iter`` reach ``tol``: more iterations when
    the error still falls (how many, from its geometric rate between half way and the end),
    else only a larger ``reg`` (or float64, when the compute dtype is float32)."""
    steps = max_iter - max_iter // 2
    falling = err_half is not None and 0 < err < 0.9 * err_half and steps >= 1
    if not falling:
        out = "more iterations will not help (the error has stopped falling): increase reg"
        if dtype == torch.float32:
            out += " or pass float64 inputs"
        return out + f" (reg={reg:g})"
    rate = (err / err_half) ** (1.0 / steps)  # geometric decrease per iteration
    need = max_iter + int(np.ceil(np.log(tol / err) / np.log(rate)))
    return f"increase max_iter to about {need:,}, or reg (reg={reg:g}) to converge faster"


_SOR_WARMUP = 20
"""Plain Sinkhorn iterations before overrelaxation starts (far from the solution it can
oscillate; Thibault et al. 2017)."""

_SOR_PATIENCE = 50
"""Overrelaxed iterations a pair may run without a new best marginal error before it falls
back to plain Sinkhorn (an overrelaxed pair can settle in a cycle whose error neither grows
nor falls; plain Sinkhorn then converges from where it is)."""


def check_omega(omega) -> float:
    """Validate the overrelaxation weight of :func:`sinkhorn`.

    Parameters
    ----------
    omega : float
        ``1 <= omega < 2``; 1 is the plain Sinkhorn iteration of Frogner et al. 2015,
        Sec. 4.1; larger values overrelax it (Thibault et al. 2017, overrelaxed
        Sinkhorn-Knopp, which converges for ``omega`` in (0, 2) near the solution).

    Returns
    -------
    float
        ``omega`` as a float; a ValueError names the argument otherwise.
    """
    if isinstance(omega, bool) or not isinstance(omega, (int, float)) or not 1 <= omega < 2:
        raise ValueError(
            f"omega: expected a number with 1 <= omega < 2 (1 = plain Sinkhorn; about 1.5-1.9 "
            f"speeds up small reg), got {omega!r}"
        )
    return float(omega)


def sinkhorn_potentials(
    a2, b2, M, reg, *, max_iter, tol, omega: float = 1.0, trace: dict | None = None
):
    """Log-domain Sinkhorn on validated ``(B, K)`` measures. Internal to the solvers and losses.

    Each pair stops on its own: once the relative L1 errors of both marginals of its current
    plan are ``<= tol`` it is frozen, and the batch iterates on the pairs still running (an
    *active set*), so a batch costs the sum of the pairs' iterations, not ``B`` times the
    slowest, and gives what solving each pair alone gives.

    With ``omega > 1`` both half-steps are overrelaxed, ``f <- f + omega (f_sinkhorn - f)``
    (Thibault et al. 2017, "Overrelaxed Sinkhorn-Knopp"), after ``_SOR_WARMUP`` plain
    iterations; a pair whose error grows tenfold above its best, or sets no new best for
    ``_SOR_PATIENCE`` iterations, falls back to ``omega = 1``, so every pair still converges.
    The fixed point, hence the result, is the same.

    Parameters
    ----------
    a2, b2 : torch.Tensor, shape (B, K)
        Validated non-negative measures of equal total mass.
    M : torch.Tensor, shape (K, K)
        Ground cost.
    reg : float
        Entropic regularization ``1/lambda``.
    max_iter, tol : int, float
        Stopping rule of :func:`sinkhorn`; ``tol`` is floored at what the compute dtype can
        resolve at ``max(M)/reg`` (see :func:`sinkhorn`).
    omega : float
        Overrelaxation weight, ``1 <= omega < 2`` (see :func:`check_omega`).
    trace : dict, optional
        Filled with ``tol`` (the tolerance in force, after the floor) and ``err_half`` (the
        error at ``max_iter // 2`` of the pair that ends with the largest error), from which
        a warning tells whether more iterations would help.

    Returns
    -------
    f, g : torch.Tensor, shape (B, K)
        Potentials in the compute dtype, ``T = exp((f_i + g_j - M_ij)/reg)`` (``-inf`` on
        zero-mass bins; see :func:`fill_potentials`).
    kernel : MatmulKernel or LogKernel
    n_iter : int
        The largest iteration count of any pair.
    converged : bool
        Whether every pair reached ``tol``.
    err : float
        The largest final marginal error (0 for ``B = 0``).

    Sinkhorn-Knopp for Frogner et al. 2015, eq. 6 (Sec. 4.1), in the log domain like POT's
    ``ot.bregman.sinkhorn_log``; overrelaxation after Thibault et al. 2017.
    """
    kernel, cdt = choose_kernel(M, reg, M.dtype)
    a2, b2 = a2.to(cdt), b2.to(cdt)
    b2 = b2 * (a2.sum(-1, keepdim=True) / b2.sum(-1, keepdim=True))  # masses equal to rounding
    la, lb = a2.log(), b2.log()  # -inf on zero-mass bins
    f = torch.zeros_like(a2)
    g = torch.zeros_like(b2)
    B = a2.shape[0]
    tol = max(tol, _tol_floor(cdt, float(M.max()) / reg))
    if trace is not None:
        trace["tol"] = tol
    if B == 0:
        return f, g, kernel, 0, True, 0.0
    errors = torch.full((B,), float("inf"), dtype=cdt, device=a2.device)
    half = torch.full((B,), float("nan"), dtype=cdt, device=a2.device)  # errors at max_iter // 2
    # The active set: pairs still iterating, and their slices of every per-pair tensor.
    idx = torch.arange(B, device=a2.device)
    fa, ga, aa, ba, laa, lba = f, g, a2, b2, la, lb
    mass = a2.sum(-1)  # (b,)
    col_err = torch.full_like(mass, float("inf"))  # of the current plan; unknown before a step
    w = torch.ones_like(mass)[:, None] if omega != 1 else None  # (b, 1) per-pair omega
    best = torch.full_like(mass, float("inf"))
    stale = torch.zeros_like(mass)  # (b,) iterations since the pair's last new best error
    n_iter = 0
    for n_iter in range(max_iter + 1):
        s = kernel.lse_rows(ga)  # (b, K)
        row = torch.exp(fa / reg + s)  # row marginals of the current plans, (b, K)
        err = torch.maximum((row - aa).abs().sum(-1) / mass, col_err)  # (b,)
        if trace is not None and n_iter == max_iter // 2:
            half[idx] = err
        done = err <= tol
        n_done = int(done.sum())
        if n_done:  # freeze the pairs that reached tol and shrink the active set
            f[idx[done]], g[idx[done]], errors[idx[done]] = fa[done], ga[done], err[done]
            if n_done == len(idx):
                break
            keep = ~done
            idx, fa, ga, aa, ba, laa, lba, mass, col_err, best, stale, s = (
                t[keep] for t in (idx, fa, ga, aa, ba, laa, lba, mass, col_err, best, stale, s)
            )
            err = err[keep]
            w = w[keep] if w is not None else None
        if n_iter == max_iter:  # keep the unconverged pairs' last iterates
            if n_iter:  # (after no iteration, fa and ga are f and g themselves)
                f[idx], g[idx] = fa, ga
            errors[idx] = err
            break
        f_new = reg * (laa - s)
        if w is None:  # plain Sinkhorn: the column marginals are exact after the g step
            fa = f_new
            ga = reg * (lba - kernel.lse_cols(fa))
            col_err = torch.zeros_like(col_err)
            continue
        if n_iter == _SOR_WARMUP:
            w = torch.full_like(w, omega)
        elif n_iter > _SOR_WARMUP:  # the safeguard: back to plain Sinkhorn for a pair that
            # grows, or that cycles without improving
            bad = (err > 10 * best) | ~torch.isfinite(err) | (stale >= _SOR_PATIENCE)
            w = torch.where(bad[:, None], 1.0, w)
        stale = torch.where(err < best, 0.0, stale + 1)
        best = torch.minimum(best, err)
        fa = torch.where(torch.isfinite(laa), fa + w * (f_new - fa), f_new)
        c = kernel.lse_cols(fa)
        g_new = reg * (lba - c)
        ga = torch.where(torch.isfinite(lba), ga + w * (g_new - ga), g_new)
        col = torch.exp(ga / reg + c)  # column marginals of the new plans
        col_err = (col - ba).abs().sum(-1) / mass
    converged = bool((errors <= tol).all())
    if trace is not None:
        trace["err_half"] = float(half[errors.argmax()])
    return f, g, kernel, n_iter, converged, float(errors.max())


def fill_potentials(f, g, a2, b2, kernel, scale_a: float, scale_b: float, shift: float = 0.0):
    """Finite potentials on zero-mass bins, where the iteration leaves ``-inf``: the soft
    c-transform of the other potential, ``f_i = -scale_a reg (LSE_j((g_j - M_ij)/reg) - shift)``
    (the value the update gives with ``log a_i`` replaced by 0). Call after forming the plan.

    Parameters
    ----------
    f, g : torch.Tensor, shape (B, K)
        Potentials from :func:`sinkhorn_potentials` or :func:`unbalanced_potentials`.
    a2, b2 : torch.Tensor, shape (B, K)
        The measures, in the dtype of ``f``.
    kernel : MatmulKernel or LogKernel
        The kernel the potentials were computed with.
    scale_a, scale_b : float
        1 for balanced transport; ``ga/(ga+1)``, ``gb/(gb+1)`` for the relaxed one.
    shift : float
        0 for balanced transport, 1 for the relaxed kernel ``exp(-M/reg - 1)``.

    Returns
    -------
    f, g : torch.Tensor, shape (B, K)
        Finite everywhere.

    The updates of Frogner et al. 2015, Sec. 4.1 (balanced) and Prop. 4.2 (relaxed).
    """
    reg = kernel.reg
    f_fill = torch.where(a2 > 0, f, -scale_a * reg * (kernel.lse_rows(g) - shift))
    g_fill = torch.where(b2 > 0, g, -scale_b * reg * (kernel.lse_cols(f) - shift))
    return f_fill, g_fill


def sinkhorn(
    a, b, M, reg, *, max_iter: int = 1000, tol: float = 1e-9, omega: float = 1.0
) -> OTResult:
    """Entropic optimal transport (Frogner et al. eq. 6; Cuturi 2013) by log-domain Sinkhorn.

    .. math:: T^\\star = \\arg\\min_{T \\in \\Pi(a, b)} \\langle T, M \\rangle - \\mathrm{reg}\\, H(T),
              \\qquad H(T) = -\\sum_{ij} T_{ij} \\log T_{ij}

    The iteration alternates ``f = reg (log a - LSE_j((g_j - M_ij)/reg))`` and its transpose
    (Sinkhorn-Knopp's ``u = a / K v``, ``v = b / K^T u`` with ``u = exp(f/reg)``), so it stays
    finite for ``reg`` down to 1e-3 ``max(M)`` and for measures with zeros (one-hot targets).

    Parameters
    ----------
    a, b : tensor or array, shape (K,) or (B, K)
        Non-negative measures of equal total mass (relative tolerance ``MASS_RTOL``).
    M : tensor or array, shape (K, K)
        Non-negative ground cost.
    reg : float
        Entropic regularization ``reg = 1/lambda > 0``.
    max_iter : int
        Maximum number of iterations, an integer >= 1. If ``tol`` is not reached a warning
        says what would help: the ``max_iter`` that the error's rate of decrease predicts,
        or, when the error has stopped falling, a larger ``reg`` (or float64 inputs).
    tol : float
        ``>= 0``. A pair stops when the L1 errors of both marginals of its plan, relative to
        the mass, are ``<= tol`` (with ``omega = 1`` the column marginals are exact after each
        iteration); every pair stops on its own, so a batch returns what a loop over the pairs
        returns. Floored at what the compute dtype can resolve,
        ``eps * max(20, max(M)/reg)``: the iterates ``f/reg`` reach ``max(M)/reg`` and are
        rounded to ``eps`` of that (float32: 2.4e-6 down to ``reg = 0.05 max(M)``, 1.2e-4 at
        ``reg = 1e-3 max(M)``).
    omega : float
        Overrelaxation weight, ``1 <= omega < 2`` (Thibault et al. 2017): ``1`` is plain
        Sinkhorn; about 1.5-1.9 takes several times fewer iterations at small ``reg``, for
        the same solution (a pair whose error grows, or stops improving, falls back to
        ``omega = 1``).

    Returns
    -------
    OTResult
        ``value`` = :math:`\\langle T, M \\rangle` (what ``ot.sinkhorn2`` returns), ``plan``,
        ``potentials = (f, g)``, ``n_iter``, ``converged`` and ``objective`` (eq. 6 with
        ``reg sum T log T``).
    """
    reg = check_positive_scalar(reg, "reg")
    max_iter = check_count(max_iter, "max_iter")
    tol = check_nonnegative_scalar(tol, "tol")
    omega = check_omega(omega)
    inputs = (a, b, M)
    a2, b2, M, batched, dtype, device = _prepare(a, b, M, balanced=True)
    if a2.shape[0] == 0:
        return _empty(M.shape[0], dtype, device, iterative=True)
    trace = {}
    with torch.no_grad():
        f, g, kernel, n_iter, converged, err = sinkhorn_potentials(
            a2, b2, M, reg, max_iter=max_iter, tol=tol, omega=omega, trace=trace
        )
        value, tlogt, _, _ = _plan_stats(kernel, f, g, 0.0)
        objective = value + reg * tlogt
        plan = _lazy_plan(kernel, f, g, 0.0, batched, dtype)
        f, g = fill_potentials(f, g, a2.to(f.dtype), b2.to(f.dtype), kernel, 1.0, 1.0)
    if not converged:
        tip = _advice(max_iter, err, trace["err_half"], trace["tol"], f.dtype, reg)
        _warn_not_converged("sinkhorn", max_iter, err, trace["tol"], tip)
    value, f, g, objective = _finish(batched, dtype, value, f, g, objective)
    value, objective = _guard_gradient("sinkhorn", inputs, value, objective)
    return OTResult(value, plan, (f, g), n_iter, converged, objective)


def _plan_stats(kernel, f, g, shift: float):
    """``<T, M>``, ``sum T log T``, ``T 1`` and ``T^T 1`` for ``T = exp((f+g-M)/reg - shift)``,
    without forming ``T``: ``sum T log T = (<f, T1> + <g, T^T 1> - <T, M>)/reg - shift sum T``."""
    reg = kernel.reg
    row = torch.exp(f / reg - shift + kernel.lse_rows(g))  # (B, K)
    col = torch.exp(g / reg - shift + kernel.lse_cols(f))  # (B, K)
    cost = kernel.cost(f, g, shift)  # (B,)
    fr = torch.where(row > 0, f * row, 0).sum(-1)
    gc = torch.where(col > 0, g * col, 0).sum(-1)
    tlogt = (fr + gc - cost) / reg - shift * row.sum(-1)
    return cost, tlogt, row, col


def _lazy_plan(kernel, f, g, shift, batched, dtype):
    def make():
        with torch.no_grad():
            return _finish(batched, dtype, kernel.plan(f, g, shift))[0]

    return make


def _reg_m_pair(reg_m) -> tuple[float, float]:
    if isinstance(reg_m, (tuple, list)):
        if len(reg_m) != 2:
            raise ValueError(f"reg_m: expected a number or a pair, got {len(reg_m)} values")
        return check_positive_scalar(reg_m[0], "reg_m[0]"), check_positive_scalar(
            reg_m[1], "reg_m[1]"
        )
    r = check_positive_scalar(reg_m, "reg_m")
    return r, r


def _gkl(w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Generalized KL ``sum w log(w/z) - w + z`` over the last axis (``0 log 0 = 0``)."""
    return (torch.special.xlogy(w, w) - torch.special.xlogy(w, z) - w + z).sum(-1)


def unbalanced_potentials(a2, b2, M, reg, reg_m, *, max_iter, tol, trace: dict | None = None):
    """Fixed point of Frogner et al. 2015, Prop. 4.2, in the log domain on ``(B, K)`` measures.

    Returns ``(f, g, kernel, n_iter, converged, err)`` with
    ``T = exp((f_i + g_j - M_ij)/reg - 1)`` (the kernel ``exp(-M/reg - 1)`` of the supplement).

    Parameters
    ----------
    a2, b2 : torch.Tensor, shape (B, K)
        Validated non-negative measures.
    M : torch.Tensor, shape (K, K)
        Ground cost.
    reg : float
        Entropic regularization ``1/lambda``.
    reg_m : (float, float)
        ``(gamma_a, gamma_b)``.
    max_iter, tol : int, float
        Stopping rule of :func:`unbalanced_sinkhorn` (``tol`` floored as in
        :func:`sinkhorn_potentials`).
    trace : dict, optional
        Filled with ``tol`` (after the floor) and ``err_half`` (the error after
        ``max_iter // 2`` iterations), as in :func:`sinkhorn_potentials`.

    Returns
    -------
    f, g : torch.Tensor, shape (B, K)
        Potentials in the compute dtype (``-inf`` on zero-mass bins; see
        :func:`fill_potentials`).
    kernel : MatmulKernel or LogKernel
    n_iter : int
    converged : bool
    err : float
        The largest change of ``log u``, ``log v`` in the last iteration (0 for ``B = 0``).
    """
    ra, rb = reg_m
    kernel, cdt = choose_kernel(M, reg, M.dtype)
    a2, b2 = a2.to(cdt), b2.to(cdt)
    la, lb = a2.log(), b2.log()
    ka, kb = (ra / reg) / (ra / reg + 1), (rb / reg) / (rb / reg + 1)  # ga/(ga+1), gb/(gb+1)
    f = torch.zeros_like(a2)
    g = torch.zeros_like(b2)
    tol = max(tol, _tol_floor(cdt, float(M.max()) / reg))
    if trace is not None:
        trace.update(tol=tol, err_half=None)
    if a2.shape[0] == 0:
        return f, g, kernel, 0, True, 0.0

    def step():
        nonlocal f, g
        # log u = ka (log h - log K v), log K v = LSE_j((g_j - M_ij)/reg) - 1
        f_new = reg * ka * (la - kernel.lse_rows(g) + 1)
        g_new = reg * kb * (lb - kernel.lse_cols(f_new) + 1)
        fin_f, fin_g = torch.isfinite(f_new), torch.isfinite(g_new)
        df = torch.where(fin_f, (f_new - f).abs(), 0).amax().item()
        dg = torch.where(fin_g, (g_new - g).abs(), 0).amax().item()
        f, g = f_new, g_new
        return max(df, dg) / reg  # largest change of log u, log v

    n_iter, converged, err = _iterate(step, max_iter, tol, trace)
    return f, g, kernel, n_iter, converged, err


def unbalanced_sinkhorn(
    a, b, M, reg, reg_m, *, max_iter: int = 1000, tol: float = 1e-9
) -> OTResult:
    """KL-relaxed transport for unnormalized measures (Frogner et al. 2015, eq. 8, Prop. 4.1-4.2).

    .. math::
        \\min_{T \\ge 0} \\langle T, M \\rangle + \\mathrm{reg} \\sum T \\log T
        + \\gamma_a \\widetilde{KL}(T 1 \\| a) + \\gamma_b \\widetilde{KL}(T^\\top 1 \\| b)

    with ``reg = 1/lambda``, ``(gamma_a, gamma_b) = reg_m`` and
    ``KL~(w||z) = w^T log(w/z) - 1^T w + 1^T z``. The optimum is ``T = diag(u) K diag(v)`` with
    ``K = exp(-M/reg - 1)`` (note the -1) and the fixed point
    ``u = a^(ga/(ga+1)) (K v)^(-ga/(ga+1))``, ``v = b^(gb/(gb+1)) (K^T u)^(-gb/(gb+1))``,
    ``ga = gamma_a/reg``, ``gb = gamma_b/reg``, iterated here in the log domain.

    Parameters
    ----------
    a, b : tensor or array, shape (K,) or (B, K)
        Non-negative measures; total masses may differ.
    M : tensor or array, shape (K, K)
        Non-negative ground cost.
    reg : float
        Entropic regularization ``1/lambda > 0``.
    reg_m : float or (float, float)
        Marginal relaxation ``gamma > 0``, one value or ``(gamma_a, gamma_b)``.
    max_iter, tol : int, float
        Stop when ``log u`` and ``log v`` change by at most ``tol`` (``>= 0``; floored as in
        :func:`sinkhorn`) within ``max_iter`` iterations (an integer >= 1).

    Returns
    -------
    OTResult
        ``value`` = :math:`\\langle T, M \\rangle`, ``plan``, ``potentials = (f, g)`` with
        ``f = reg log u``, ``n_iter``, ``converged`` and ``objective``, the full relaxed
        objective (8). Its gradient in ``a`` is ``gamma_a (1 - T 1 / a)``.
    """
    reg = check_positive_scalar(reg, "reg")
    pair = _reg_m_pair(reg_m)
    max_iter = check_count(max_iter, "max_iter")
    tol = check_nonnegative_scalar(tol, "tol")
    inputs = (a, b, M)
    a2, b2, M, batched, dtype, device = _prepare(a, b, M, balanced=False)
    if a2.shape[0] == 0:
        return _empty(M.shape[0], dtype, device, iterative=True)
    trace = {}
    with torch.no_grad():
        f, g, kernel, n_iter, converged, err = unbalanced_potentials(
            a2, b2, M, reg, pair, max_iter=max_iter, tol=tol, trace=trace
        )
        ac, bc = a2.to(f.dtype), b2.to(f.dtype)
        value, tlogt, row, col = _plan_stats(kernel, f, g, 1.0)
        objective = value + reg * tlogt + pair[0] * _gkl(row, ac) + pair[1] * _gkl(col, bc)
        plan = _lazy_plan(kernel, f, g, 1.0, batched, dtype)
        ka, kb = (pair[0] / reg) / (pair[0] / reg + 1), (pair[1] / reg) / (pair[1] / reg + 1)
        f, g = fill_potentials(f, g, ac, bc, kernel, ka, kb, shift=1.0)
    if not converged:
        tip = _advice(max_iter, err, trace["err_half"], trace["tol"], f.dtype, reg)
        _warn_not_converged("unbalanced_sinkhorn", max_iter, err, trace["tol"], tip)
    value, f, g, objective = _finish(batched, dtype, value, f, g, objective)
    value, objective = _guard_gradient("unbalanced_sinkhorn", inputs, value, objective)
    return OTResult(value, plan, (f, g), n_iter, converged, objective)
