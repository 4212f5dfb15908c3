"""Ground metrics: the cost of moving mass between classes.

Every function returns a ``torch.float64`` matrix ``M`` of shape ``(K, K)`` with
``M[i, j]`` the cost of moving one unit of mass from class ``i`` to class ``j``
(for segmentation: the severity of predicting class ``i`` where the truth is ``j``; Liu et al.
2020 write the transpose).
Convert with ``M.to(logits)`` before use.

Introduced in notebooks/01_optimal_transport.ipynb and 04_mnist_p_metric.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch

from wlearn._checks import as_tensor, check_nonnegative, check_positive_scalar

_UNIT = 1.0 - 1e-3


def _scale_unit(M: torch.Tensor) -> torch.Tensor:
    """Scale ``M`` into [0, 1): divide by its maximum and shrink by 1e-3 (Frogner et al.,
    footnote 5: "we scale down the ground metric such that all distances are in [0, 1)")."""
    m = M.max()
    return M if m == 0 else M * (_UNIT / m)


def _check_size(K, name: str = "K", minimum: int = 2) -> int:
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < minimum:
        raise ValueError(
            f"{name}: expected an integer >= {minimum}, got {K!r}; pass the number "
            "of classes as a Python int (e.g. int(logits.shape[1]))"
        )
    return int(K)


def line(K: int, p: float = 1.0, *, scale: bool = True) -> torch.Tensor:
    """``M[i, j] = |i - j|^p`` on ``K`` ordered classes (Frogner et al. 2015, Sec. 6.1).

    Parameters
    ----------
    K : int
        Number of classes (>= 2).
    p : float
        Exponent >= 0. ``p = 0`` gives the 0-1 metric (``0^0 = 0`` on the diagonal).
    scale : bool
        Scale into [0, 1) as in the paper's footnote 5 (default).

    Returns
    -------
    M : torch.Tensor, shape (K, K), float64
    """
    K = _check_size(K)
    if not np.isfinite(p) or p < 0:
        raise ValueError(f"p: expected a finite exponent >= 0, got {p!r}")
    i = torch.arange(K, dtype=torch.float64)
    d = (i[:, None] - i[None, :]).abs()  # (K, K)
    M = (d > 0).to(torch.float64) if p == 0 else d**p
    return _scale_unit(M) if scale else M


def grid(n: int, *, scale: bool = True) -> torch.Tensor:
    """Classes on an ``n x n`` grid in the plane, Euclidean distances between them
    (Frogner et al. 2015, Fig. 2 and Appendix E.1). Class ``k`` sits at ``(k // n, k % n)``.

    Parameters
    ----------
    n : int
        Side of the grid (>= 1); ``K = n * n`` classes.
    scale : bool
        Scale into [0, 1) as in the paper's footnote 5 (default).

    Returns
    -------
    M : torch.Tensor, shape (n*n, n*n), float64
    """
    n = _check_size(n, "n", minimum=1)
    r, c = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    pts = torch.stack([r.flatten(), c.flatten()], 1).to(torch.float64)  # (n*n, 2)
    M = torch.cdist(pts, pts)
    return _scale_unit(M) if scale else M


def euclidean(X, *, normalize: bool = True, scale: bool = False) -> torch.Tensor:
    """Euclidean distances between the rows of ``X`` (Frogner et al. 2015, Sec. 6.2:
    word vectors normalized to unit length first).

    Parameters
    ----------
    X : array or tensor, shape (K, d)
    normalize : bool
        Normalize rows to unit length first (default, as the paper does for word2vec).
    scale : bool
        Scale the result into [0, 1).

    Returns
    -------
    M : torch.Tensor, shape (K, K), float64
    """
    X = as_tensor(X, "X").to(torch.float64)
    if X.ndim != 2:
        raise ValueError(f"X: expected a (K, d) matrix, got shape {tuple(X.shape)}")
    if normalize:
        norms = X.norm(dim=1, keepdim=True)
        if (norms == 0).any():
            raise ValueError(
                "X: cannot normalize rows of zero length (row "
                f"{int((norms[:, 0] == 0).nonzero()[0])}); drop or replace the "
                "zero vectors, or pass normalize=False"
            )
        X = X / norms
    M = torch.cdist(X, X).clamp_min(0)
    M.fill_diagonal_(0)
    return _scale_unit(M) if scale else M


def _as_ground(D, name: str = "D") -> torch.Tensor:
    D = as_tensor(D, name)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(
            f"{name}: expected a square (C, C) matrix, got shape {tuple(D.shape)}; "
            "pass distances between every pair of classes, e.g. "
            "wlearn.ground.severity_matrix()"
        )
    check_nonnegative(D, name)
    return D


def power(D, p: float) -> torch.Tensor:
    """``f(d) = d^p`` elementwise (Liu et al. 2020, eq. 3, where ``p`` is written rho).

    Liu et al. add that "the case ρ = 2 is equivalent to the Cramér distance (Rizzo and
    Székely 2016)". That is not so in general: on classes on a line the Cramér distance is
    the squared l2 distance between the cumulative histograms, while ``p = 2`` gives the
    transport cost with ground cost ``d^2``; for two Dirac masses two classes apart the first
    is 2 and the second 4 (notebooks/07_squared_emd.ipynb).

    Parameters
    ----------
    D : tensor or array, shape (C, C)
        Non-negative ground distances.
    p : float
        Exponent > 0.

    Returns
    -------
    torch.Tensor, shape (C, C)
        In the dtype of ``D`` (float64 for arrays).
    """
    p = check_positive_scalar(p, "p")
    return _as_ground(D) ** p


def huber(D, tau: float) -> torch.Tensor:
    """Huber transform ``H_tau(d) = d^2 if d <= tau else tau (2 d - tau)`` (Liu et al. 2020, eq. 4).

    Parameters
    ----------
    D : tensor or array, shape (C, C)
        Non-negative ground distances.
    tau : float
        Threshold > 0 between the quadratic and the linear part.

    Returns
    -------
    torch.Tensor, shape (C, C)
    """
    tau = check_positive_scalar(tau, "tau")
    D = _as_ground(D)
    return torch.where(D <= tau, D**2, tau * (2 * D - tau))


def step(D) -> torch.Tensor:
    """``f(d) = 1[d != 0]``: the 0-1 metric on the same support (Liu et al. 2020, eq. 5).

    Parameters
    ----------
    D : tensor or array, shape (C, C)
        Non-negative ground distances.

    Returns
    -------
    torch.Tensor, shape (C, C)
        0 where ``D`` is 0, 1 elsewhere.
    """
    D = _as_ground(D)
    return (D != 0).to(D.dtype)


# Importance groups and severity-aware ground matrices for driving scenes (Liu et al. 2020,
# Fig. 2), kept in their own module; rows = predicted class, columns = true class.
from wlearn.severity import (  # noqa: E402, F401 (re-exported)
    importance_groups,
    importance_matrix,
    severity_matrix,
    vulnerable_road_users,
)
