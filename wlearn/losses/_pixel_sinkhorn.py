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

On the CPU, when wlearn was installed with a C compiler at hand, the same iteration runs in a
compiled kernel (``wlearn/losses/_pixel_lanes.c``): sixteen columns iterate together in SIMD
registers, every pass fused, their state in the L1 cache, on as many POSIX threads as
``torch.get_num_threads()``, taking blocks of columns from a shared counter. It is 1.6-3.8x
faster than the PyTorch path below, which stays the path on the GPU and the reference it is
tested against (``tests/test_pixel_sinkhorn.py``; ``benchmarks/bench_soft.py``).

The scaling domain is exact while no term that matters underflows: for ``max(M)/reg`` up to
:data:`SCALING_LIMIT` (35 in float32, as for :class:`wlearn._kernels.MatmulKernel`); beyond it
the callers use the log-domain solver (:func:`wlearn.ot.sinkhorn_potentials`).

Introduced in notebooks/10_self_training_adaptation.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wlearn._kernels import _MATMUL_LIMIT

try:
    from wlearn.losses import _pixel_lanes
except ImportError:  # not compiled (no C compiler when wlearn was installed): the PyTorch path
    _pixel_lanes = None

SCALING_LIMIT = dict(_MATMUL_LIMIT)
"""Largest ``max(M)/reg`` per dtype for which :func:`pixel_sinkhorn` is used: ``G``'s smallest
entry, ``exp(-max(M)/reg)``, squared stays far above the smallest normal number."""

_COMPACT = 0.25
"""Store and drop the converged columns once they are at least this fraction of the running ones
(fewer: they keep iterating, which costs less than a compaction)."""

_FIRST_CHECK = 3
"""The first iteration whose marginal error is computed (then every one). From the one-hot warm
start, none of ``benchmarks/bench_soft.py``'s conservative targets reaches ``tol = 1e-3`` before
the third; with a separate, noisier teacher 6% (noise 2 on the logits) to 57% (noise 8) of the
columns already would at the second, and stop at the third instead."""


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
    kernel: str = "auto",
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
    kernel : {"auto", "compiled", "torch"}
        ``"auto"``: the compiled CPU kernel for float32/float64 CPU tensors where it was built
        (:data:`HAVE_COMPILED`), else the PyTorch path; the others force one of them.

    Returns
    -------
    PixelSinkhornResult
        ``u`` (C, B), ``value`` (B,), ``v``, iteration counts, convergence.
    """
    C, B = h.shape
    tol = max(tol, 20 * torch.finfo(h.dtype).eps)
    if _use_compiled(kernel, h, y, M):
        return _solve_compiled(h, y, M, reg, tol, max_iter, return_v)
    run = _Run(M, reg, tol, max_iter, h, return_v)
    y_mass = y.sum(0) if y_mass is None else y_mass  # (B,)
    step = B if h.device.type != "cpu" else BLOCK_CPU
    for a in range(0, B, step):
        run.start_block(h, y, y_mass, a, min(B, a + step))
    run.finish_tail()
    n_iter, mean_iter = run.n_iter, run.total_iter / max(B, 1)
    return PixelSinkhornResult(run.u, run.value, run.v, n_iter, mean_iter, run.converged, run.err)


HAVE_COMPILED = _pixel_lanes is not None
"""Whether the compiled CPU kernel was built when wlearn was installed."""


def _use_compiled(kernel: str, h: torch.Tensor, y: torch.Tensor, M: torch.Tensor) -> bool:
    if kernel not in ("auto", "compiled", "torch"):
        raise ValueError(f"kernel: expected 'auto', 'compiled' or 'torch', got {kernel!r}")
    fits = (
        h.device.type == "cpu"
        and h.dtype in (torch.float32, torch.float64)
        and y.dtype == h.dtype == M.dtype
        and y.device == h.device == M.device
    )
    if kernel == "compiled" and not (HAVE_COMPILED and fits):
        why = (
            "was not built (no C compiler at install)"
            if not HAVE_COMPILED
            else (
                f"takes float32/float64 CPU tensors of one dtype, got h {h.dtype} on {h.device}, "
                f"y {y.dtype} on {y.device}, M {M.dtype} on {M.device}"
            )
        )
        raise ValueError(f"kernel: 'compiled' requested, but the compiled kernel {why}")
    return kernel != "torch" and HAVE_COMPILED and fits


def _solve_compiled(h, y, M, reg, tol, max_iter, return_v) -> PixelSinkhornResult:
    """:func:`pixel_sinkhorn` through the compiled kernel (``_pixel_lanes.c``)."""
    C, B = h.shape
    G = gibbs_kernel(M, reg).contiguous()  # (C, C)
    GT, GM = G.T.contiguous(), (G * M).contiguous()  # (C, C) each
    u = torch.empty((C, B), dtype=h.dtype)  # contiguous, as the kernel writes it
    v = torch.empty((C, B), dtype=h.dtype) if return_v else None
    value, err = h.new_empty(B), h.new_empty(B)  # (B,) each
    iters = torch.empty(B, dtype=torch.int32)  # (B,)
    _pixel_lanes.solve(
        h.dtype == torch.float64,
        h.data_ptr(), h.stride(0), h.stride(1),
        y.data_ptr(), y.stride(0), y.stride(1),
        G.data_ptr(), GT.data_ptr(), GM.data_ptr(),
        C, B, float(tol), int(max_iter), _FIRST_CHECK,
        u.data_ptr(), 0 if v is None else v.data_ptr(),
        value.data_ptr(), err.data_ptr(), iters.data_ptr(),
        torch.get_num_threads(),
    )  # fmt: skip
    if B == 0:
        return PixelSinkhornResult(u, value, v, 0, 0.0, True, 0.0)
    n_iter, total, worst = (
        x.item() for x in (iters.max(), iters.sum(dtype=torch.int64), err.max())
    )
    converged = not bool(((iters >= max_iter) & ~(err <= tol)).any())
    return PixelSinkhornResult(u, value, v, int(n_iter), total / B, converged, float(worst))


BLOCK_CPU = 1 << 15
"""Columns per block on the CPU (19 classes: 2.4 MB per float32 array of a block)."""


class _Run:
    """State of one :func:`pixel_sinkhorn` call: the outputs, and the columns left to iterate.

    Phase A, block by block: closed form, warm start, and plain iterations on the whole block
    until a quarter of its columns has converged (all of them, typically, or most); phase B
    (:meth:`finish_tail`): the columns left over from every block, together, with compaction.
    """

    def __init__(self, M, reg, tol, max_iter, h, return_v):
        self.G = gibbs_kernel(M, reg)  # (C, C)
        self.GM = self.G * M  # (C, C): <T, M> = u^T (G * M) v
        self.eye = torch.eye(M.shape[0], dtype=M.dtype, device=M.device)  # (C, C)
        self.tol, self.max_iter = tol, max_iter
        self.u, self.value = torch.empty_like(h), h.new_empty(h.shape[1])  # (C, B), (B,)
        self.v = torch.empty_like(h) if return_v else None
        self.n_iter, self.total_iter, self.converged, self.err = 0, 0, True, 0.0
        self.tail = []  # (ids, h, y rescaled, G v, mass, iterations done) of the columns left

    def _stats(self, it, err: torch.Tensor, count: int) -> None:
        """Record ``count`` columns stopped after ``it`` iterations (an int, or one per column)
        with marginal errors ``err``."""
        if isinstance(it, int):
            self.n_iter, self.total_iter = max(self.n_iter, it), self.total_iter + it * count
        elif it.numel():
            self.n_iter, self.total_iter = (
                max(self.n_iter, int(it.max())),
                self.total_iter + int(it.sum()),
            )
        if err.numel():
            self.err = max(self.err, float(err.max()))

    def start_block(self, H, Y, Y_mass, a, b):
        """Phase A for the columns ``[a, b)``."""
        G, tol = self.G, self.tol
        h, u, y_mass = H[:, a:b], self.u[:, a:b], Y_mass[a:b]  # (C, n) views, (n,)
        # (C, n) contiguous, then y rescaled; a product with the identity is the fastest
        # transposing copy when Y is a view of channels-last targets
        y = torch.mm(self.eye, Y[:, a:b])
        n = b - a
        top = y.amax(0)  # (n,)
        off = 2 * (1 - top / y_mass)  # (n,): L1 column error of the closed-form plan h e_k*^T
        closed = off <= tol
        n_closed, exact = (int(x) for x in torch.stack([closed.sum(), (off == 0).sum()]).tolist())
        if n_closed:
            self.err = max(self.err, float(off[closed].max()))
        buf = torch.empty_like(y)  # (C, n)
        # v: the one-hot closed form's (the indicator of the largest entry of y; all, for ties)
        v = y if exact == n else torch.eq(y, top, out=torch.empty_like(y))  # (C, n)
        torch.div(h, torch.mm(G, v, out=buf), out=u)  # u = h / G[:, k*]
        if n_closed < n:
            mass = h.sum(0)  # (n,)
            y.mul_(mass / y_mass)  # the mass of h, to rounding
            if 2 * n_closed > n:  # mostly closed: the others go to phase B as they are
                r = (~closed).nonzero()[:, 0]
                kv = torch.mm(G, v.index_select(1, r))  # (C, A)
                cols = (h.index_select(1, r), y.index_select(1, r), kv, mass[r])
                self.tail.append((r + a, *cols, 0))
            else:
                self._iterate_block(h, y, u, v, buf, mass, a)
        self.value[a:b] = torch.mm(self.GM, v, out=buf).mul_(u).sum(0)  # u^T (G * M) v
        if self.v is not None:
            self.v[:, a:b] = v

    def _iterate_block(self, h, q, u, v, kv, mass, a):
        G, tol, max_iter = self.G, self.tol, self.max_iter
        scratch = torch.empty_like(q)
        for it in range(1, max_iter + 1):
            torch.div(q, torch.mm(G.T, u, out=scratch), out=v)  # v = y / G^T u
            torch.mm(G, v, out=kv)  # G v
            last = it == max_iter
            if it < _FIRST_CHECK and not last:
                torch.div(h, kv, out=u)  # u = h / G v
                continue
            # L1 error of the row marginal of diag(u) G diag(v), whose columns are exact
            err = torch.addcmul(h, u, kv, value=-1, out=scratch).abs_().sum(0).div_(mass)
            done = err <= tol  # (n,)
            n_done = int(done.sum())
            if last or n_done >= _COMPACT * done.numel():
                if last:
                    self.converged &= n_done == done.numel()
                    n_done, done = done.numel(), torch.ones_like(done)
                self._stats(it, err[done], n_done)
                if n_done < done.numel():  # the rest go to phase B (u, v stay as they are)
                    r = (~done).nonzero()[:, 0]
                    cols = (h.index_select(1, r), q.index_select(1, r), kv.index_select(1, r))
                    self.tail.append((r + a, *cols, mass[r], it))
                return
            torch.div(h, kv, out=u)  # u = h / G v

    def finish_tail(self):
        """Phase B: the columns left by every block, with an active set."""
        if not self.tail:
            return
        G, tol = self.G, self.tol
        ids, s, q, kv, mass = (torch.cat([p[i] for p in self.tail], -1) for i in range(5))
        start = torch.cat([torch.full_like(p[4], p[5], dtype=torch.long) for p in self.tail])
        self.tail = []
        uu = s / kv  # (C, A)
        vv, scratch = torch.empty_like(s), torch.empty_like(s)
        for j in range(1, self.max_iter + 1):
            torch.div(q, torch.mm(G.T, uu, out=scratch), out=vv)  # v = y / G^T u
            torch.mm(G, vv, out=kv)  # G v
            err = torch.addcmul(s, uu, kv, value=-1, out=scratch).abs_().sum(0).div_(mass)
            done = err <= tol  # (A,)
            last = start + j >= self.max_iter
            stop = done | last
            n_stop = int(stop.sum())
            if n_stop == stop.numel() or n_stop >= _COMPACT * stop.numel():
                self.converged &= bool((done | ~last).all())
                k = stop.nonzero()[:, 0]  # (n_stop,)
                uk, vk = uu.index_select(1, k), vv.index_select(1, k)
                self.u.index_copy_(1, ids[k], uk)
                self.value[ids[k]] = (torch.mm(self.GM, vk) * uk).sum(0)
                if self.v is not None:
                    self.v.index_copy_(1, ids[k], vk)
                self._stats(start[k] + j, err[k], n_stop)
                if n_stop == stop.numel():
                    return
                r = (~stop).nonzero()[:, 0]  # (A',): the columns left
                ids, s, q, kv, mass, start = (
                    ids[r],
                    s.index_select(1, r),
                    q.index_select(1, r),
                    kv.index_select(1, r),
                    mass[r],
                    start[r],
                )
                uu = s / kv  # (C, A')
                vv, scratch = torch.empty_like(s), torch.empty_like(s)
                continue
            torch.div(s, kv, out=uu)  # u = h / G v
