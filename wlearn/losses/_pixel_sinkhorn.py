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
- **Blocks of columns** on the CPU (:data:`BLOCK_CPU` at a time): the temporaries of a block
  (``v``, ``G v``, the target rescaled) are a few MB, reused from block to block, instead of
  batch-sized arrays that are allocated (page by page) and swept from memory at every step.

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
    u : torch.Tensor, shape (C, B)
        Row scalings of the plans ``T_b = diag(u[:, b]) G diag(v[:, b])``, ``G = exp(-M/reg)``;
        ``reg log u`` is the dual potential ``f`` (up to a constant per column).
    value : torch.Tensor, shape (B,)
        Transport cost :math:`\\langle T_b, M \\rangle` per column (what ``ot.sinkhorn2``
        returns).
    v : torch.Tensor or None, shape (C, B)
        Column scalings (0 on the target's zero-mass bins), with ``return_v=True``.
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
    value: torch.Tensor
    v: torch.Tensor | None
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
    y_mass: torch.Tensor | None = None,
    return_v: bool = False,
) -> PixelSinkhornResult:
    """Entropic transport between the columns of ``h`` and ``y``, each column on its own.

    Solves, for every column ``b``,
    :math:`\\min_{T \\in \\Pi(h_b, y_b)} \\langle T, M \\rangle - \\mathrm{reg}\\, H(T)`
    (Frogner et al. 2015, eq. 6) by Sinkhorn-Knopp in the scaling domain, warm-started from
    the one-hot closed form (Liu et al. 2020, Theorem 1), with an active set, block by block
    (see the module docstring). A column stops once the L1 error of its plan's row marginal,
    relative to its mass, is ``<= tol`` (the column marginal is exact after each ``v`` step),
    as in :func:`wlearn.ot.sinkhorn`.

    Parameters
    ----------
    h : torch.Tensor, shape (C, B)
        Predicted histograms (softmax outputs), one per column, positive mass.
    y : torch.Tensor, shape (C, B)
        Target histograms, non-negative, each of (about) the mass of its ``h`` column; they are
        rescaled to it exactly. Any strides (a view of channels-last targets works).
    M : torch.Tensor, shape (C, C)
        Ground cost, in the dtype of ``h``, with ``max(M)/reg <= SCALING_LIMIT[dtype]``.
    reg : float
        Entropic regularization ``1/lambda``.
    tol : float
        Stopping threshold on the relative L1 marginal error (floored at 20 eps of the dtype).
    max_iter : int
        Iterations after which the remaining columns are returned as they are.
    y_mass : torch.Tensor, shape (B,), optional
        ``y.sum(0)``, if the caller has it.
    return_v : bool
        Also return the column scalings ``v`` (C, B) (tests; costs a batch-sized array).

    Returns
    -------
    PixelSinkhornResult
        ``u`` (C, B), ``value`` (B,), ``v``, iteration counts, convergence.
    """
    C, B = h.shape
    G = gibbs_kernel(M, reg)  # (C, C)
    GM = G * M  # (C, C): <T, M> = u^T (G * M) v
    tol = max(tol, 20 * torch.finfo(h.dtype).eps)
    y_mass = y.sum(0) if y_mass is None else y_mass  # (B,)
    u, value = torch.empty_like(h), h.new_empty(B)  # (C, B), (B,)
    v = torch.empty_like(h) if return_v else None
    step = B if h.device.type != "cpu" else BLOCK_CPU
    n_iter, total, converged, err = 0, 0, True, 0.0
    for a in range(0, B, step):
        b = min(B, a + step)
        blk = _Block(h[:, a:b], y[:, a:b], y_mass[a:b], G, tol)
        blk.solve(max_iter)
        u[:, a:b] = blk.u
        value[a:b] = (torch.mm(GM, blk.v, out=blk.buf).mul_(blk.u)).sum(0)  # u^T (G*M) v
        if v is not None:
            v[:, a:b] = blk.v
        n_iter, total = max(n_iter, blk.n_iter), total + blk.total_iter
        converged, err = converged and blk.converged, max(err, blk.err)
    return PixelSinkhornResult(u, value, v, n_iter, total / max(B, 1), converged, err)


BLOCK_CPU = 1 << 15
"""Columns per block on the CPU (19 classes: 2.4 MB per float32 array of a block)."""


class _Block:
    """The columns ``[a, b)`` of :func:`pixel_sinkhorn`: state ``u, v`` (C, n) and the solve."""

    def __init__(self, h, y, y_mass, G, tol):
        self.h, self.G, self.tol = h, G, tol
        self.h_mass = h.sum(0)  # (n,)
        top = y.amax(0)  # (n,)
        off = 2 * (1 - top / y_mass)  # (n,): L1 column error of the closed-form plan h e_k*^T
        closed = off <= tol
        n_closed, exact = (int(x) for x in torch.stack([closed.sum(), (off == 0).sum()]).tolist())
        self.closed, self.n_closed = closed, n_closed
        self.err = float(off[closed].max()) if n_closed else 0.0
        self.buf = torch.empty_like(h, memory_format=torch.contiguous_format)  # (C, n)
        if exact == h.shape[1]:  # every target one-hot: y is the closed form's v
            self.v = y
        else:  # the indicator of the largest entry of y (all of them, for ties)
            self.v = torch.eq(y, top, out=torch.empty_like(self.buf))  # (C, n)
        self.u = torch.div(h, torch.mm(G, self.v, out=self.buf))  # (C, n): u = h / G[:, k*]
        self.y, self.y_mass = y, y_mass
        self.n_iter, self.total_iter, self.converged = 0, 0, True

    def solve(self, max_iter: int) -> None:
        """Iterate the columns not solved in closed form until ``tol`` (or ``max_iter``)."""
        n = self.h.shape[1]
        if self.n_closed == n:
            return
        G, tol, u, v = self.G, self.tol, self.u, self.v
        if 2 * self.n_closed <= n:  # iterate on u, v (closed columns stay at the solution)
            ids, s, uu, vv, mass, kv = None, self.h, u, v, self.h_mass, self.buf
            q = self.y.clone(memory_format=torch.contiguous_format)  # (C, n)
            q.mul_(self.h_mass / self.y_mass)  # the mass of h, to rounding
        else:  # iterate on a copy of the columns left
            ids = (~self.closed).nonzero()[:, 0]  # (A,)
            s, uu, mass = self.h[:, ids], u[:, ids], self.h_mass[ids]  # (C, A)
            q = self.y[:, ids] * (mass / self.y_mass[ids])  # (C, A)
            vv, kv = torch.empty_like(s), torch.empty_like(s)
        scratch = torch.empty_like(s, memory_format=torch.contiguous_format)
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
                    self.converged, n_done = n_done == done.numel(), done.numel()
                    done = torch.ones_like(done)
                k = done.nonzero()[:, 0]  # (n_done,)
                if ids is not None:  # store (u, v) of the columns done; else they are in place
                    u[:, ids[k]] = uu[:, k]
                    v[:, ids[k]] = vv[:, k]
                self.err = max(self.err, float(err[k].max()))
                self.total_iter, self.n_iter = self.total_iter + it * n_done, it
                if n_done == done.numel():
                    break
                r = (~done).nonzero()[:, 0]  # (A',): the columns left
                ids = r if ids is None else ids[r]
                s, q, kv, mass = s[:, r], q[:, r], kv[:, r], mass[r]
                uu = s / kv  # (C, A')
                vv, scratch = torch.empty_like(s), torch.empty_like(s)
                continue
            torch.div(s, kv, out=uu)  # u = h / G v
