"""Tag-prediction metrics (Frogner et al. 2015, Sec. 6.2): the top-n cost and the AUC.

Frogner et al. call the top-n cost :math:`C_n` the "top-K cost" :math:`C_K`; the course keeps
:math:`K` for the number of classes (here: tags), so the number of proposed tags is :math:`n`
(the functions keep the ``k`` of their names and arguments).

Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["missed_tag_distance", "tag_auc", "top_k_cost", "top_k_cost_curve", "top_k_tags"]

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
    the tag proposals whose top-n cost Frogner et al. 2015 measure (Sec. 6.2).

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
    """Top-n cost for every n = 1..max_k (Frogner et al. 2015, Sec. 6.2; see
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
        Entry ``n - 1`` is :math:`C_n` averaged over the items.
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
    """The top-n cost of Frogner et al. (2015, Sec. 6.2; their "top-K cost"), averaged over items:

    .. math:: C_n = \\frac{1}{n} \\sum_{m=1}^{n} \\min_j d(\\hat k_m, k_j),

    where :math:`\\hat k_1, \\dots, \\hat k_n` are the n highest-scoring tags of an item and
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
        Number of proposed tags :math:`n`, ``1 <= k <= K_tags``.

    Returns
    -------
    float
    """
    return float(top_k_cost_curve(scores, tag_sets, D, k)[-1])


def missed_tag_distance(scores, tag_sets, D, k: int) -> tuple[float, float]:
    """How far the proposals that miss the true tags are from them, against chance.

    Among the ``k`` highest-scoring tags of each item, the proposals that are *not* true tags
    ("misses") are scored by their distance to the nearest true tag of the item,
    :math:`\\min_j d(\\hat k, k_j)`; the chance level is the same distance averaged over all the
    tags that are not true tags of the item (a proposal drawn at random among them). A miss
    that is semantically relevant (Frogner et al. 2015, Fig. 7: proposals "semantically
    relevant, despite overlapping very little with the ground truth") is closer than chance.

    Parameters
    ----------
    scores : array or tensor, shape (N, K_tags)
        Predicted scores (higher = more confident).
    tag_sets : 0/1 array or tensor, shape (N, K_tags), or N collections of tag indices
        The true tags; every item needs at least one true tag and one other tag.
    D : array or tensor, shape (K_tags, K_tags)
        Ground distance between tags.
    k : int
        Number of proposed tags, ``1 <= k <= K_tags``.

    Returns
    -------
    (float, float)
        The mean distance of the misses to the nearest true tag (over all misses of all items;
        NaN if there is no miss), and the chance level (mean over items of the mean over their
        non-true tags).

    Introduced in notebooks/06_tag_prediction.ipynb (Fig. 7).
    """
    S = _scores(scores)
    N, K = S.shape
    Y = _tag_mask(tag_sets, N, K)
    D = _metric(D, K)
    full = np.flatnonzero(Y.all(1))
    if full.size:
        raise ValueError(f"tag_sets: item {full[0]} carries every tag, it has no possible miss")
    top = top_k_tags(S, _check_k(k, K))  # (N, k)
    missed, chance = [], np.empty(N)
    for n in range(N):
        near = D[:, Y[n]].min(1)  # (K,) distance from every tag to the nearest true tag
        chance[n] = near[~Y[n]].mean()
        missed.append(near[top[n][~Y[n, top[n]]]])
    missed = np.concatenate(missed)
    return (float(missed.mean()) if missed.size else float("nan")), float(chance.mean())


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
