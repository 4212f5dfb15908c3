"""Tag-prediction metrics (Frogner et al. 2015, Sec. 6.2): the top-K cost and the AUC.

Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["tag_auc", "top_k_cost", "top_k_cost_curve", "top_k_tags"]

_CHUNK = 256  # items per block when gathering distances, bounds memory at _CHUNK * k * K


def _numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: expected a numeric array or tensor, got {type(x).__name__}"
        ) from None


def _scores(scores) -> np.ndarray:
    S = _numpy(scores, "scores")
    if S.ndim != 2 or S.shape[1] < 1:
        raise ValueError(f"scores: expected shape (N, K), got {S.shape}")
    if not np.isfinite(S).all():
        raise ValueError("scores: expected finite values, got NaN/inf")
    return S


def _tag_mask(tag_sets, N: int, K: int) -> np.ndarray:
    """(N, K) bool mask from a 0/1 matrix or a sequence of N collections of tag indices."""
    if isinstance(tag_sets, (np.ndarray, torch.Tensor)) or hasattr(tag_sets, "toarray"):
        Y = tag_sets.toarray() if hasattr(tag_sets, "toarray") else _numpy(tag_sets, "tag_sets")
        Y = np.asarray(Y)
        if Y.shape != (N, K):
            raise ValueError(f"tag_sets: expected shape ({N}, {K}) to match scores, got {Y.shape}")
        if not np.isin(Y, (0, 1)).all():
            raise ValueError("tag_sets: expected a 0/1 matrix, got other values")
        Y = Y.astype(bool)
    else:
        sets = list(tag_sets)
        if len(sets) != N:
            raise ValueError(
                f"tag_sets: expected {N} tag collections to match scores, got {len(sets)}"
            )
        Y = np.zeros((N, K), dtype=bool)
        for i, s in enumerate(sets):
            idx = np.asarray(list(s), dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= K):
                raise ValueError(f"tag_sets: expected tag indices in [0, {K}), got {idx.tolist()}")
            Y[i, idx] = True
    empty = np.flatnonzero(~Y.any(1))
    if empty.size:
        raise ValueError(
            f"tag_sets: expected at least one true tag per item, item {empty[0]} has none"
        )
    return Y


def _metric(D, K: int) -> np.ndarray:
    D = _numpy(D, "D")
    if D.shape != (K, K):
        raise ValueError(f"D: expected shape ({K}, {K}) to match scores, got {D.shape}")
    if not np.isfinite(D).all() or (D < 0).any():
        raise ValueError("D: expected finite non-negative distances")
    return D


def _check_k(k, K: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= K:
        raise ValueError(f"{name}: expected an integer in [1, {K}], got {k!r}")
    return int(k)


def top_k_tags(scores, k: int) -> np.ndarray:
    """Indices of the ``k`` highest-scoring tags of every item, best first (ties: lower index):
    the tag proposals whose top-K cost Frogner et al. 2015 measure (Sec. 6.2).

    Parameters
    ----------
    scores : array or tensor, shape (N, K)
        Any scores increasing with confidence (logits, probabilities).
    k : int

    Returns
    -------
    np.ndarray, shape (N, k), int64
    """
    S = _scores(scores)
    k = _check_k(k, S.shape[1])
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def top_k_cost_curve(scores, tag_sets, D, max_k: int) -> np.ndarray:
    """Top-K cost for every K = 1..max_k (Frogner et al. 2015, Sec. 6.2; see
    :func:`top_k_cost`).

    Parameters
    ----------
    scores : array or tensor, shape (N, K_tags)
        Predicted scores (higher = more confident).
    tag_sets : array, tensor or sparse matrix of 0/1, shape (N, K_tags); or N collections of
        tag indices. Every item needs at least one true tag.
    D : array or tensor, shape (K_tags, K_tags)
        Ground distance between tags.
    max_k : int
        Largest number of proposed tags, ``1 <= max_k <= K_tags``.

    Returns
    -------
    np.ndarray, shape (max_k,)
        Entry ``K - 1`` is :math:`C_K` averaged over the items.
    """
    S = _scores(scores)
    N, K = S.shape
    Y = _tag_mask(tag_sets, N, K)
    D = _metric(D, K)
    top = top_k_tags(S, _check_k(max_k, K, "max_k"))  # (N, max_k)
    near = np.empty(top.shape)  # near[n, r] = min_{j in Y_n} D[top[n, r], j]
    for s in range(0, N, _CHUNK):
        blk = slice(s, s + _CHUNK)
        d = D[top[blk]]  # (n, max_k, K)
        near[blk] = np.where(Y[blk, None, :], d, np.inf).min(-1)
    ranks = np.arange(1, top.shape[1] + 1)
    return (np.cumsum(near, axis=1) / ranks).mean(0)  # (max_k,)


def top_k_cost(scores, tag_sets, D, k: int) -> float:
    """The top-K cost of Frogner et al. (2015, Sec. 6.2), averaged over items:

    .. math:: C_K = \\frac{1}{K} \\sum_{k=1}^{K} \\min_j d(\\hat k_k, k_j),

    where :math:`\\hat k_1, \\dots, \\hat k_K` are the K highest-scoring tags of an item and
    :math:`\\{k_j\\}` its ground-truth tags. A proposal that is a true tag costs 0; a proposal
    that is merely semantically close costs little.

    Parameters
    ----------
    scores : array or tensor, shape (N, K_tags)
        Predicted scores (higher = more confident).
    tag_sets : array, tensor or sparse matrix of 0/1, shape (N, K_tags); or N collections of
        tag indices. Every item needs at least one true tag.
    D : array or tensor, shape (K_tags, K_tags)
        Ground distance between tags (the same ``d`` as the loss's metric, before any power).
    k : int
        Number of proposed tags, ``1 <= k <= K_tags``.

    Returns
    -------
    float
    """
    return float(top_k_cost_curve(scores, tag_sets, D, k)[-1])


def tag_auc(scores, tag_sets, average: str = "samples") -> float:
    """Area under the ROC curve of the tag scores, through ``sklearn.metrics.roc_auc_score``
    (the "standard AUC measure" Frogner et al. 2015 report beside the top-K cost, Sec. 6.2).

    Parameters
    ----------
    scores : array or tensor, shape (N, K)
        Predicted scores (higher = more confident).
    tag_sets : 0/1 array, shape (N, K), or N collections of tag indices
        The true tags of each item.
    average : {"samples", "micro", "macro"}
        ``"samples"`` (default): the AUC of ranking each item's true tags above its other
        tags, averaged over items (the ranking the tag proposals use; every item needs a
        true tag and a false one). ``"micro"``: one AUC over all (item, tag) pairs.
        ``"macro"``: the mean over tags of per-tag AUCs, over the tags that occur at least once
        and not on every item (others have no AUC).

    Returns
    -------
    float
    """
    from sklearn.metrics import roc_auc_score

    S = _scores(scores)
    N, K = S.shape
    Y = _tag_mask(tag_sets, N, K)
    if average == "samples":
        full = np.flatnonzero(Y.all(1))
        if full.size:
            raise ValueError(f"tag_sets: item {full[0]} carries every tag, its AUC is undefined")
        return float(roc_auc_score(Y, S, average="samples"))
    if average == "micro":
        return float(roc_auc_score(Y.ravel(), S.ravel()))
    if average == "macro":
        ok = Y.any(0) & ~Y.all(0)
        return float(roc_auc_score(Y[:, ok], S[:, ok], average="macro"))
    raise ValueError(f"average: expected 'samples', 'micro' or 'macro', got {average!r}")
