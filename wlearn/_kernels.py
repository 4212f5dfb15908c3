"""Log-sum-exp against a cost matrix: the one operation every Sinkhorn iteration needs.

For potentials ``g`` of shape ``(B, K)`` the row operator is

.. math:: s_i = \\log \\sum_j \\exp\\big((g_j - M_{ij}) / \\mathrm{reg}\\big),

and the column operator is its transpose. Two exact implementations:

- :class:`MatmulKernel` factors the exponential as ``exp((g - max g)/reg) @ exp(-M/reg)^T``:
  one dense matrix product per half-iteration, shared kernel across the batch. It is exact as
  long as no term that matters underflows: the dominant term of every row is at least
  ``exp(-2 max(M)/reg)`` (see :func:`choose_kernel`), so it is used only when that is far above
  the smallest normal number of the compute dtype.
- :class:`LogKernel` forms ``(g_j - M_ij)/reg`` explicitly and calls ``torch.logsumexp``,
  chunked over the batch to bound memory: finite for any ``reg`` (Frogner et al. need
  ``reg`` down to 1e-3 ``max(M)``, where the textbook kernel ``exp(-M/reg)`` underflows).
"""

from __future__ import annotations

import torch

# Largest max(M)/reg for which the factored product cannot underflow in each dtype:
# the dominant term is >= exp(-2 max(M)/reg); float32 normals reach exp(-87), float64 exp(-708).
_MATMUL_LIMIT = {torch.float32: 35.0, torch.float64: 300.0}
_CHUNK_BYTES = 64 * 2**20


class MatmulKernel:
    """Stabilised factored kernel: ``exp(-M/reg)`` once, then matrix products.

    The Gibbs kernel ``K = exp(-lambda M)`` of Frogner et al. 2015, Sec. 4.1
    (``lambda = 1/reg``), applied to max-shifted potentials as in POT's
    ``ot.bregman.sinkhorn_stabilized``.

    Parameters
    ----------
    M : torch.Tensor, shape (K, K)
        Ground cost, in the compute dtype.
    reg : float
        Entropic regularization ``1/lambda > 0``.
    """

    def __init__(self, M: torch.Tensor, reg: float):
        self.M, self.reg = M, reg
        self.K = torch.exp(-M / reg)  # (K, K)
        self.KM = self.K * M  # (K, K): for <T, M> without forming T

    def _scaled(self, h: torch.Tensor):
        c = h.amax(-1, keepdim=True)  # (B, 1), finite: every measure has some positive mass
        return torch.exp((h - c) / self.reg), c / self.reg

    def lse_rows(self, g: torch.Tensor) -> torch.Tensor:
        """``s[b, i] = LSE_j (g[b, j] - M[i, j]) / reg``.

        Parameters
        ----------
        g : torch.Tensor, shape (B, K)
            Column potentials.

        Returns
        -------
        torch.Tensor, shape (B, K)
        """
        e, c = self._scaled(g)
        tiny = torch.finfo(g.dtype).tiny
        return torch.log((e @ self.K.T).clamp_min(tiny)) + c  # (B, K)

    def lse_cols(self, f: torch.Tensor) -> torch.Tensor:
        """``s[b, j] = LSE_i (f[b, i] - M[i, j]) / reg``.

        Parameters
        ----------
        f : torch.Tensor, shape (B, K)
            Row potentials.

        Returns
        -------
        torch.Tensor, shape (B, K)
        """
        e, c = self._scaled(f)
        tiny = torch.finfo(f.dtype).tiny
        return torch.log((e @ self.K).clamp_min(tiny)) + c  # (B, K)

    def cost(self, f: torch.Tensor, g: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
        """``<T, M>`` for ``T = exp((f_i + g_j - M_ij)/reg - shift)``, without forming ``T``.

        Parameters
        ----------
        f, g : torch.Tensor, shape (B, K)
            Row and column potentials.
        shift : float
            Subtracted from the exponent (1 for the unbalanced kernel ``exp(-M/reg - 1)``).

        Returns
        -------
        torch.Tensor, shape (B,)
        """
        ef, cf = self._scaled(f)
        eg, cg = self._scaled(g)
        inner = ((ef @ self.KM) * eg).sum(-1)  # (B,)
        return inner * torch.exp(cf[:, 0] + cg[:, 0] - shift)

    def plan(self, f: torch.Tensor, g: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
        """The plan ``T = exp((f_i + g_j - M_ij)/reg - shift)``.

        Parameters
        ----------
        f, g : torch.Tensor, shape (B, K)
            Row and column potentials.
        shift : float
            Subtracted from the exponent (1 for the unbalanced kernel ``exp(-M/reg - 1)``).

        Returns
        -------
        torch.Tensor, shape (B, K, K)
        """
        return _plan(self.M, self.reg, f, g, shift)


class LogKernel:
    """Explicit log-domain kernel, chunked over the batch.

    The same operators as :class:`MatmulKernel` computed as ``torch.logsumexp`` of
    ``(g_j - M_ij)/reg``, like POT's ``ot.bregman.sinkhorn_log``: finite for any ``reg``
    (Frogner et al. 2015, Sec. 4.1, with ``lambda = 1/reg`` as large as needed).

    Parameters
    ----------
    M : torch.Tensor, shape (K, K)
        Ground cost, in the compute dtype.
    reg : float
        Entropic regularization ``1/lambda > 0``.
    """

    def __init__(self, M: torch.Tensor, reg: float):
        self.M, self.reg = M, reg

    def _chunks(self, B: int):
        K = self.M.shape[0]
        step = max(1, _CHUNK_BYTES // (K * K * self.M.element_size()))
        return [slice(i, i + step) for i in range(0, B, step)]

    def lse_rows(self, g: torch.Tensor) -> torch.Tensor:
        """``s[b, i] = LSE_j (g[b, j] - M[i, j]) / reg``.

        Parameters
        ----------
        g : torch.Tensor, shape (B, K)
            Column potentials.

        Returns
        -------
        torch.Tensor, shape (B, K)
        """
        out = torch.empty_like(g)
        for sl in self._chunks(g.shape[0]):
            z = (g[sl, None, :] - self.M[None]) / self.reg  # (b, K_i, K_j)
            out[sl] = torch.logsumexp(z, dim=-1)
        return out

    def lse_cols(self, f: torch.Tensor) -> torch.Tensor:
        """``s[b, j] = LSE_i (f[b, i] - M[i, j]) / reg``.

        Parameters
        ----------
        f : torch.Tensor, shape (B, K)
            Row potentials.

        Returns
        -------
        torch.Tensor, shape (B, K)
        """
        out = torch.empty_like(f)
        for sl in self._chunks(f.shape[0]):
            z = (f[sl, :, None] - self.M[None]) / self.reg  # (b, K_i, K_j)
            out[sl] = torch.logsumexp(z, dim=-2)
        return out

    def cost(self, f: torch.Tensor, g: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
        """``<T, M>`` for ``T = exp((f_i + g_j - M_ij)/reg - shift)``, chunk by chunk.

        Parameters
        ----------
        f, g : torch.Tensor, shape (B, K)
            Row and column potentials.
        shift : float
            Subtracted from the exponent (1 for the unbalanced kernel ``exp(-M/reg - 1)``).

        Returns
        -------
        torch.Tensor, shape (B,)
        """
        out = f.new_empty(f.shape[0])
        for sl in self._chunks(f.shape[0]):
            out[sl] = (_plan(self.M, self.reg, f[sl], g[sl], shift) * self.M).sum((-2, -1))
        return out

    def plan(self, f: torch.Tensor, g: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
        """The plan ``T = exp((f_i + g_j - M_ij)/reg - shift)``.

        Parameters
        ----------
        f, g : torch.Tensor, shape (B, K)
            Row and column potentials.
        shift : float
            Subtracted from the exponent (1 for the unbalanced kernel ``exp(-M/reg - 1)``).

        Returns
        -------
        torch.Tensor, shape (B, K, K)
        """
        return _plan(self.M, self.reg, f, g, shift)


def _plan(M, reg, f, g, shift):
    return torch.exp((f[:, :, None] + g[:, None, :] - M[None]) / reg - shift)  # (B, K, K)


def choose_kernel(M: torch.Tensor, reg: float, dtype: torch.dtype):
    """Pick the fastest exact kernel for ``max(M)/reg`` and return ``(kernel, compute_dtype)``.

    float32 inputs are computed in float32 when ``max(M)/reg <= 35``, in float64 when
    ``<= 300``; beyond that (or for float64 beyond 300) the log-domain kernel is used.
    Small ``reg`` (large ``lambda``, Frogner et al. 2015, Sec. 4.1) approaches exact transport,
    and there the plain kernel ``exp(-M/reg)`` underflows.

    Parameters
    ----------
    M : torch.Tensor, shape (K, K)
        Ground cost.
    reg : float
        Entropic regularization ``> 0``.
    dtype : torch.dtype
        dtype of the measures.

    Returns
    -------
    kernel : MatmulKernel or LogKernel
    compute_dtype : torch.dtype
    """
    ratio = float(M.max()) / reg
    for dt in (dtype, torch.float64) if dtype == torch.float32 else (torch.float64,):
        if ratio <= _MATMUL_LIMIT[dt]:
            return MatmulKernel(M.to(dt), reg), dt
    dt = torch.float64 if dtype != torch.float32 else torch.float32
    return LogKernel(M.to(dt), reg), dt
