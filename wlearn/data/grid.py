"""The toy problem of Frogner et al. 2015 (Fig. 2, Appendix E.1): classes on a grid.

``K = n * n`` classes sit on the vertices of an ``n x n`` lattice in the plane, class ``k``
at ``(k // n, k % n)`` (the order of :func:`wlearn.ground.grid`). Points of class ``k`` are
drawn from an isotropic Gaussian centred on its vertex. Label noise mimics confusion
between semantically near-equivalent classes (Siberian husky / Eskimo dog, Fig. 1): with
probability ``noise`` a training label is switched to one of the lattice neighbours of the
true class (up, down, left, right), chosen uniformly. Test labels stay clean.

Introduced in notebooks/05_noisy_label_grid.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(
            f"n: expected an integer >= 2, got {n!r}; pass the side of the grid (K = n * n classes)"
        )
    return int(n)


def grid_centers(n: int) -> torch.Tensor:
    """Vertex of every class: row ``k`` is ``(k // n, k % n)`` (Frogner et al. 2015, App. E.1).

    Parameters
    ----------
    n : int
        Grid side (>= 2).

    Returns
    -------
    torch.Tensor, shape (n*n, 2), float64
    """
    n = _check_n(n)
    k = torch.arange(n * n)
    return torch.stack([k // n, k % n], 1).to(torch.float64)  # (n*n, 2)


def grid_neighbors(n: int) -> list[list[int]]:
    """``out[k]``: the classes next to ``k`` on the lattice (2 to 4 of them).

    Parameters
    ----------
    n : int
        Grid side (>= 2).

    Returns
    -------
    list of list of int, length n*n

    Introduced in notebooks/05_noisy_label_grid.ipynb.
    """
    n = _check_n(n)
    out = []
    for k in range(n * n):
        r, c = divmod(k, n)
        out.append(
            [
                (r + dr) * n + (c + dc)
                for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                if 0 <= r + dr < n and 0 <= c + dc < n
            ]
        )
    return out


def switch_to_neighbors(y, n: int, noise: float, *, seed: int = 0) -> torch.Tensor:
    """With probability ``noise``, replace each label by a uniformly chosen lattice neighbour.

    Parameters
    ----------
    y : tensor, shape (N,), int
        Labels in ``[0, n*n)``.
    n : int
        Grid side.
    noise : float
        Switching probability in [0, 1].
    seed : int
        Seed of a private generator.

    Returns
    -------
    y_noisy : torch.Tensor, shape (N,), int64

    The label noise of Frogner et al. 2015, App. E.1 (see the module docstring).
    """
    n = _check_n(n)
    if not (isinstance(noise, (int, float)) and 0.0 <= noise <= 1.0):
        raise ValueError(
            f"noise: expected a probability in [0, 1], got {noise!r}; e.g. 0.5 "
            "switches half of the labels"
        )
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.is_floating_point() or (y.numel() and (y.min() < 0 or y.max() >= n * n)):
        raise ValueError(
            f"y: expected integer labels in [0, {n * n}) of shape (N,), got "
            f"dtype {y.dtype}, shape {tuple(y.shape)}"
        )
    rng = np.random.default_rng(seed)
    nbrs = grid_neighbors(n)
    y_np = y.cpu().numpy().astype(np.int64)
    flip = rng.random(len(y_np)) < noise
    pick = rng.random(len(y_np))
    out = y_np.copy()
    for i in np.flatnonzero(flip):
        cand = nbrs[y_np[i]]
        out[i] = cand[int(pick[i] * len(cand))]
    return torch.as_tensor(out)


@dataclass
class GridData:
    """Points in the plane with clean and noisy labels.

    Attributes
    ----------
    X_train, X_test : torch.Tensor, shape (N, 2), float32
        Points, in lattice units.
    y_train : torch.Tensor, shape (N,), int64
        Noisy training labels (what a model is trained on).
    y_train_clean, y_test : torch.Tensor, shape (N,), int64
        True classes.
    centers : torch.Tensor, shape (n*n, 2), float64
    n : int
        Grid side.
    noise : float
        Probability with which a training label was switched.

    Introduced in notebooks/05_noisy_label_grid.ipynb.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    y_train_clean: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    centers: torch.Tensor
    n: int
    noise: float


def make_grid_data(
    n: int,
    noise: float,
    *,
    n_train_per_class: int = 50,
    n_test_per_class: int = 50,
    sigma: float = 0.3,
    seed: int = 0,
) -> GridData:
    """Sample the Appendix E.1 toy data set.

    Parameters
    ----------
    n : int
        Grid side; ``K = n * n`` classes.
    noise : float
        Probability of switching a training label to a neighbour (:func:`switch_to_neighbors`).
    n_train_per_class, n_test_per_class : int
        Points per class.
    sigma : float
        Standard deviation of each class's Gaussian, in lattice units (1 = spacing).
    seed : int
        Seed of a private generator (points and noise).

    Returns
    -------
    GridData

    Introduced in notebooks/05_noisy_label_grid.ipynb.
    """
    n = _check_n(n)
    for name, v in (
        ("n_train_per_class", n_train_per_class),
        ("n_test_per_class", n_test_per_class),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if not (isinstance(sigma, (int, float)) and np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a finite number > 0, got {sigma!r}")
    rng = np.random.default_rng(seed)
    centers = grid_centers(n)
    K = n * n

    def sample(m):
        y = np.repeat(np.arange(K), m)  # (K*m,)
        X = centers.numpy()[y] + sigma * rng.standard_normal((K * m, 2))  # (K*m, 2)
        return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)

    X_tr, y_tr = sample(n_train_per_class)
    X_te, y_te = sample(n_test_per_class)
    y_noisy = switch_to_neighbors(y_tr, n, noise, seed=int(rng.integers(2**31)))
    return GridData(X_tr, y_noisy, y_tr, X_te, y_te, centers, n, float(noise))


def grid_distance(pred, target, n: int) -> torch.Tensor:
    """Euclidean distance in the plane between predicted and true classes' vertices.

    The measure of Frogner et al. 2015, Fig. 2.

    Parameters
    ----------
    pred, target : integer array or tensor, shape (N,)
        Predicted and true classes in ``[0, n*n)``.
    n : int
        Grid side.

    Returns
    -------
    torch.Tensor, shape (N,), float64
    """
    c = grid_centers(n)
    pred, target = torch.as_tensor(pred).cpu().long(), torch.as_tensor(target).cpu().long()
    return (c[pred] - c[target]).norm(dim=1)
