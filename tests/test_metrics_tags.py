"""Tests for wlearn.metrics.tags: top-K cost against brute force, AUC against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from wlearn.metrics import tag_auc, top_k_cost, top_k_cost_curve, top_k_tags


def _problem(N=30, K=12, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((K, 3))
    D = np.linalg.norm(P[:, None] - P[None], axis=-1)  # (K, K)
    S = rng.standard_normal((N, K))
    Y = (rng.random((N, K)) < 0.25).astype(np.float32)
    Y[:, 0] = 0  # no item has every tag
    Y[np.arange(N), rng.integers(1, K, size=N)] = 1  # every item has a tag
    return S, Y, D


def _brute(S, Y, D, k):
    costs = []
    for s, y in zip(S, Y, strict=True):
        order = sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]
        true = [j for j in range(len(y)) if y[j]]
        costs.append(sum(min(D[p, j] for j in true) for p in order) / k)
    return float(np.mean(costs))


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_top_k_cost_matches_brute_force(k):
    S, Y, D = _problem()
    assert top_k_cost(S, Y, D, k) == pytest.approx(_brute(S, Y, D, k), abs=1e-12)


def test_curve_entries_are_the_single_k_costs_and_inputs_may_be_tensors_or_index_sets():
    S, Y, D = _problem(seed=1)
    curve = top_k_cost_curve(torch.tensor(S), torch.tensor(Y), torch.tensor(D), 6)
    assert curve.shape == (6,)
    assert np.allclose(curve, [_brute(S, Y, D, k) for k in range(1, 7)], atol=1e-12)
    sets = [np.flatnonzero(y).tolist() for y in Y]
    assert top_k_cost(S, sets, D, 3) == pytest.approx(_brute(S, Y, D, 3), abs=1e-12)


def test_chunked_gather_agrees_on_many_items():
    S, Y, D = _problem(N=700, K=9, seed=2)  # more items than one block
    assert top_k_cost(S, Y, D, 4) == pytest.approx(_brute(S, Y, D, 4), abs=1e-12)


def test_closed_forms_perfect_and_worst_predictions():
    S, Y, D = _problem(seed=3)
    # scores that rank the true tags first give zero cost for K = 1
    assert top_k_cost(Y + 0.01 * S, Y, D, 1) == 0.0
    # one true tag per item, predicting the farthest tag costs the max distance
    Y1 = np.zeros_like(Y)
    Y1[:, 1] = 1
    far = np.argmax(D[:, 1])
    S1 = np.zeros_like(S)
    S1[:, far] = 1
    assert top_k_cost(S1, Y1, D, 1) == pytest.approx(D[far, 1])


def test_top_k_tags_breaks_ties_by_index():
    S = np.array([[0.0, 1.0, 1.0, 0.5]])
    assert top_k_tags(S, 3).tolist() == [[1, 2, 3]]


@pytest.mark.parametrize("average", ["samples", "micro", "macro"])
def test_auc_matches_sklearn(average):
    S, Y, D = _problem(seed=4)
    if average == "samples":
        ref = np.mean([roc_auc_score(y, s) for s, y in zip(S, Y, strict=True)])
    elif average == "micro":
        ref = roc_auc_score(Y.ravel(), S.ravel())
    else:
        ok = Y.any(0) & ~Y.all(0)
        ref = np.mean([roc_auc_score(Y[:, j], S[:, j]) for j in np.flatnonzero(ok)])
    assert tag_auc(S, Y, average=average) == pytest.approx(ref, abs=1e-12)


def test_auc_of_a_perfect_ranking_is_one():
    S, Y, D = _problem(seed=5)
    assert tag_auc(Y, Y) == 1.0


def test_bad_inputs():
    S, Y, D = _problem()
    with pytest.raises(ValueError, match="scores"):
        top_k_cost(S[0], Y, D, 1)
    with pytest.raises(ValueError, match="scores"):
        top_k_cost(np.full_like(S, np.nan), Y, D, 1)
    with pytest.raises(TypeError, match="scores"):
        top_k_cost(object(), Y, D, 1)
    with pytest.raises(ValueError, match="tag_sets"):
        top_k_cost(S, Y[:-1], D, 1)
    with pytest.raises(ValueError, match="tag_sets"):
        top_k_cost(S, 2 * Y, D, 1)
    empty = Y.copy()
    empty[3] = 0
    with pytest.raises(ValueError, match="item 3"):
        top_k_cost(S, empty, D, 1)
    with pytest.raises(ValueError, match="tag_sets"):
        top_k_cost(S, [[0]] * (len(S) - 1) + [[99]], D, 1)
    with pytest.raises(ValueError, match="D"):
        top_k_cost(S, Y, D[:-1], 1)
    with pytest.raises(ValueError, match="D"):
        top_k_cost(S, Y, -D, 1)
    for k in (0, 13, 1.5, True):
        with pytest.raises(ValueError, match="k"):
            top_k_cost(S, Y, D, k)
    with pytest.raises(ValueError, match="average"):
        tag_auc(S, Y, average="weighted")
    full = Y.copy()
    full[2] = 1
    with pytest.raises(ValueError, match="item 2"):
        tag_auc(S, full)


def test_missed_tag_distance_by_hand_and_against_brute_force():
    from wlearn.metrics import missed_tag_distance

    # 4 tags on a line at 0, 1, 2, 5; item 0 has tag 0, item 1 tags 1 and 3
    x = np.array([0.0, 1.0, 2.0, 5.0])
    D = np.abs(x[:, None] - x[None])
    Y = np.array([[1, 0, 0, 0], [0, 1, 0, 1]], dtype=float)
    S = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 4.0, 3.0, 2.0]])  # top-2: (0, 1) and (1, 2)
    miss, chance = missed_tag_distance(S, Y, D, 2)
    # misses: tag 1 of item 0 (distance 1), tag 2 of item 1 (distance 1)
    assert miss == pytest.approx(1.0)
    # chance: item 0 over tags 1, 2, 3 -> (1 + 2 + 5) / 3; item 1 over tags 0, 2 -> (1 + 1) / 2
    assert chance == pytest.approx(((1 + 2 + 5) / 3 + 1) / 2)
    S2, Y2, D2 = _problem(seed=3)
    miss2, chance2 = missed_tag_distance(S2, Y2, D2, 3)
    dist, pool = [], []
    for s, y in zip(S2, Y2, strict=True):
        true = [j for j in range(len(y)) if y[j]]
        near = [min(D2[t, j] for j in true) for t in range(len(y))]
        top = sorted(range(len(s)), key=lambda j: (-s[j], j))[:3]
        dist += [near[t] for t in top if not y[t]]
        pool.append(np.mean([near[t] for t in range(len(y)) if not y[t]]))
    assert miss2 == pytest.approx(np.mean(dist)) and chance2 == pytest.approx(np.mean(pool))
    assert np.isnan(missed_tag_distance(S, np.array([[1, 1, 0, 0], [0, 1, 1, 0]]), D, 2)[0])
    with pytest.raises(ValueError, match="carries every tag"):
        missed_tag_distance(S, np.ones((2, 4)), D, 1)
