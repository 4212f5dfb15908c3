"""Sinkhorn for many small transport problems at once, one per pixel, in the scaling domain.

A segmentation batch poses one ``C x C`` problem per pixel (``C = 19`` for Cityscapes), all
against the same ground cost ``M``. :func:`pixel_sinkhorn` solves them together on
*class-major* columns ``(C, B)`` (one column per pixel), so that every half-iteration is one
``(C, C) @ (C, B)`` matrix product with the Gibbs kernel ``G = exp(-M/reg)`` and one division:

.. math:: v \\leftarrow y \\oslash (G^\\top u), \\qquad u \\leftarrow h \\oslash (G v),
          \\qquad T = \\mathrm{diag}(u)\\, G\\, \\mathrm{diag}(v)

(Sinkhorn-Knopp as in Cuturi 2013, Alg. 1, and Frogner et al. 2015, Sec. 4.1; POT's
``ot.sinkhorn`` with ``method="sinkhorn"``). Three things make it cheap:

- **Warm start from the one-hot closed form.** ``v`` starts as the indicator of the target's
  largest entry ``k*``: for a one-hot target that is the exact solution (every unit of mass goes
  to ``k*``, ``u = h / G[:, k*]``; Liu et al. 2020, Theorem 1), and for a smoothed target
  ``0.7 e_y + 0.3 p`` it starts next to it. Columns whose target puts all but ``tol/2`` of its mass
  on one class are solved by this closed form outright (the plan ``h e_{k*}^T`` then meets the
  marginals within ``tol``).
- **Zero-mass bins need no special case**: ``y_j = 0`` gives ``v_j = 0`` exactly, where the log
  domain carries ``-inf`` potentials.
- **Each column stops on its own** (an active set): when a quarter of the running columns has
  reached ``tol``, those are stored and the rest are compacted, so a batch costs about the mean
  number of iterations, not the slowest column's.

The scaling domain is exact while no term that matters underflows: for ``max(M)/reg`` up to
:data:`SCALING_LIMIT` (35 in float32, as for :class:`wlearn._kernels.MatmulKernel`); beyond it
the callers use the log-domain solver (:func:`wlearn.ot.sinkhorn_potentials`).

Introduced in notebooks/10_self_training_adaptation.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wlearn._kernels import _MATMUL_LIMIT

SCALING_LIMIT = dict(_MATMUL_LIMIT)
"""Largest ``max(M)/reg`` per dtype for which :func:`pixel_sinkhorn` is used: ``G``'s smallest
entry, ``exp(-max(M)/reg)``, squared stays far above the smallest normal number."""

_COMPACT = 0.25
"""Store and drop the converged columns once they are at least this fraction of the running ones
(fewer: they keep iterating, which costs less than a compaction)."""

_FIRST_CHECK = 3
"""The first iteration whose marginal error is computed (then every one). From the one-hot warm
start, under 1% of the columns of smoothed targets reached ``tol = 1e-3`` before the third
(``benchmarks/bench_soft.py``); a column that would have stops there instead."""


@dataclass
class PixelSinkhornResult:
    """What :func:`pixel_sinkhorn` returns.

    Attributes
    ----------
    u, v : torch.Tensor, shape (C, B)
        Scalings, ``T_b = diag(u[:, b]) G diag(v[:, b])`` with ``G = exp(-M/reg)``; ``v`` is 0 on
        the target's zero-mass bins.
    value : torch.Tensor, shape (B,)
        Transport cost :math:`\\langle T_b, M \\rangle` per column (what ``ot.sinkhorn2``
        returns).
    n_iter : int
        Iterations of the slowest column (0 when every column was one-hot).
    mean_iter : float
        Iterations per column, averaged over the batch (closed-form columns count 0).
    converged : bool
        Whether every column reached ``tol``.
    err : float
        The largest L1 marginal error of a returned plan, relative to its mass.
    """

    u: torch.Tensor
    v: torch.Tensor
    value: torch.Tensor
    n_iter: int
    mean_iter: float
    converged: bool
    err: float


def gibbs_kernel(M: torch.Tensor, reg: float) -> torch.Tensor:
    """The Gibbs kernel ``G = exp(-M/reg)`` of Frogner et al. 2015, Sec. 4.1.

    Parameters
    ----------
    M : torch.Tensor, shape (C, C)
        Ground cost.
    reg : float
        Entropic regularization ``1/lambda``.

    Returns
    -------
    torch.Tensor, shape (C, C)
    """
    return torch.exp(-M / reg)


def pixel_sinkhorn(
    h: torch.Tensor,
    y: torch.Tensor,
    M: torch.Tensor,
    reg: float,
    *,
    tol: float,
    max_iter: int,
    overwrite_y: bool = False,
) -> PixelSinkhornResult:
    """Entropic transport between the columns of ``h`` and ``y``, each column on its own.

    Solves, for every column ``b``,
    :math:`\\min_{T \\in \\Pi(h_b, y_b)} \\langle T, M \\rangle - \\mathrm{reg}\\, H(T)`
    (Frogner et al. 2015, eq. 6) by Sinkhorn-Knopp in the scaling domain, warm-started from
    the one-hot closed form (Liu et al. 2020, Theorem 1), with an active set (see the module
    docstring). A column stops once the L1 error of its plan's row marginal, relative to its
    mass, is ``<= tol`` (the column marginal is exact after each ``v`` step), as in
    :func:`wlearn.ot.sinkhorn`. Full-size temporaries are reused (``out=``): at this size
    every fresh allocation costs page faults as well as a pass over memory.

    Parameters
    ----------
    h : torch.Tensor, shape (C, B)
        Predicted histograms (softmax outputs), one per column, positive mass.
    y : torch.Tensor, shape (C, B)
        Target histograms, non-negative, each of (about) the mass of its ``h`` column; they are
        rescaled to it exactly.
    M : torch.Tensor, shape (C, C)
        Ground cost, in the dtype of ``h``, with ``max(M)/reg <= SCALING_LIMIT[dtype]``.
    reg : float
        Entropic regularization ``1/lambda``.
    tol : float
        Stopping threshold on the relative L1 marginal error (floored at 20 eps of the dtype).
    max_iter : int
        Iterations after which the remaining columns are returned as they are.
    overwrite_y : bool
        Whether ``y`` may be overwritten (a copy made by the caller): saves a ``(C, B)`` buffer.

    Returns
    -------
    PixelSinkhornResult
        Scalings ``u, v`` (C, B), ``value`` (B,), iteration counts, convergence.
    """
    C, B = h.shape
    G = gibbs_kernel(M, reg)  # (C, C)
    tol = max(tol, 20 * torch.finfo(h.dtype).eps)
    h_mass, y_mass = h.sum(0), y.sum(0)  # (B,), (B,)
    top = y.amax(0)  # (B,)
    off = 2 * (1 - top / y_mass)  # (B,): L1 column error of the closed-form plan h e_k*^T
    closed = off <= tol
    n_closed, exact = (int(x) for x in torch.stack([closed.sum(), (off == 0).sum()]).tolist())
    err_max = float(off[closed].max()) if n_closed else 0.0
    if exact == B:  # every target one-hot: y is the closed form's v
        v = y
    else:  # the indicator of the largest entry of y (all of them, for ties)
        v = torch.eq(y, top, out=torch.empty_like(h))  # (C, B)
    buf = torch.mm(G, v, out=torch.empty_like(h))  # (C, B): G v, then a scratch buffer
    u = torch.div(h, buf)  # (C, B): u = h / G[:, k*]
    n_iter, total_iter, converged = 0, 0, True
    if n_closed < B:
        # with few closed columns, iterate on u, v themselves (closed ones stay at the solution)
        if 2 * n_closed <= B:
            ids, s, uu, vv, mass, kv = None, h, u, v, h_mass, buf
            scale = h_mass / y_mass  # (B,): targets rescaled to the mass of h, to rounding
            q = y.mul_(scale) if overwrite_y else y * scale  # (C, B)
        else:  # iterate on a copy of the columns left
            ids = (~closed).nonzero()[:, 0]  # (A,)
            s, uu, mass = h.index_select(1, ids), u.index_select(1, ids), h_mass[ids]  # (C, A)
            q = y.index_select(1, ids) * (mass / y_mass[ids])  # (C, A)
            vv, kv = torch.empty_like(s), torch.empty_like(s)
        scratch = torch.empty_like(s)  # G^T u, then the marginal error
        for it in range(1, max_iter + 1):
            torch.div(q, torch.mm(G.T, uu, out=scratch), out=vv)  # v = y / G^T u
            torch.mm(G, vv, out=kv)  # G v
            last = it == max_iter
            if it < _FIRST_CHECK and not last:
                torch.div(s, kv, out=uu)  # u = h / G v
                continue
            # L1 error of the row marginal of diag(u) G diag(v), whose columns are exact
            err = torch.addcmul(s, uu, kv, value=-1, out=scratch).abs_().sum(0).div_(mass)
            done = err <= tol  # (A,)
            n_done = int(done.sum())
            if last or n_done == done.numel() or n_done >= _COMPACT * done.numel():
                if last:
                    converged, n_done = n_done == done.numel(), done.numel()
                    done = torch.ones_like(done)
                k = done.nonzero()[:, 0]  # (n_done,)
                if ids is not None:  # store (u, v) of the columns done; else they are in place
                    u.index_copy_(1, ids[k], uu.index_select(1, k))
                    v.index_copy_(1, ids[k], vv.index_select(1, k))
                err_max = max(err_max, float(err[k].max()))
                total_iter, n_iter = total_iter + it * n_done, it
                if n_done == done.numel():
                    break
                r = (~done).nonzero()[:, 0]  # (A',): the columns left
                ids = r if ids is None else ids[r]
                s, q, kv, mass = s.index_select(1, r), q.index_select(1, r), kv[:, r], mass[r]
                uu = s / kv  # (C, A')
                vv, scratch = torch.empty_like(s), torch.empty_like(s)
                continue
            torch.div(s, kv, out=uu)  # u = h / G v
        del s, q, kv, scratch, uu, vv
    cost = torch.mm(G * M, v, out=buf).mul_(u)  # (C, B): u_i sum_j G_ij M_ij v_j
    value = cost.sum(0)  # (B,): <T_b, M>, T never formed
    return PixelSinkhornResult(u, v, value, n_iter, total_iter / max(B, 1), converged, err_max)
