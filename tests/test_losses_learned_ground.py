"""Hou et al.'s learned ground matrix and its loss (wlearn.losses.learned_ground), against a
NumPy/SciPy transcription of the public code's rule, closed forms and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
import torch
import torch.nn.functional as F

from wlearn.ground import line
from wlearn.losses import (
    CostMatrixLoss,
    HouGroundMatrix,
    SquaredEMDLoss,
    WarmupCombinedLoss,
    class_centroids,
    cost_matrix_loss,
    hou_ground_matrix,
    rank_transform,
)


def _otm_update_cost_matrix(feas, labs, mu, p, K):
    """``update_cost_matrix`` as liu-xiaofeng/OTM (emd_loss.py) computes it, in NumPy/SciPy."""
    feas = feas / np.sum(feas, axis=1, keepdims=True)
    cent = np.stack([feas[labs == k].mean(0) for k in range(K)])
    cm = np.linalg.norm(cent[:, None, :] - cent[None, :, :], axis=2)
    for i in range(K):
        cm[i] = [(st.percentileofscore(cm[i], a, "rank") / 100) ** p for a in cm[i]]
    cm = (cm + cm.T) / 2 - mu
    np.fill_diagonal(cm, 1.0)
    return cm


@pytest.mark.parametrize("mu, p", [(0.5, 1.0), (0.25, 2.0)])
def test_hou_ground_matrix_matches_the_public_codes_rule(mu, p):
    rng = np.random.default_rng(0)
    K, N, d = 6, 90, 5
    labs = np.repeat(np.arange(K), N // K)
    feas = rng.random((N, d)) + labs[:, None] * rng.random(d) * 0.3  # class-dependent shift
    ours = hou_ground_matrix(torch.as_tensor(feas), torch.as_tensor(labs), K, mu=mu, p=p)
    ref = _otm_update_cost_matrix(feas, labs, mu, p, K)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)


def test_rank_transform_averages_ties_like_percentileofscore():
    D = torch.tensor([[0.0, 1.0, 1.0, 2.0], [1.0, 0.0, 3.0, 3.0], [1.0, 3.0, 0.0, 1.0]])
    D = torch.cat([D, torch.tensor([[2.0, 3.0, 1.0, 0.0]])])
    R = np.array([[st.percentileofscore(row, a, "rank") / 100 for a in row] for row in D.numpy()])
    M = rank_transform(D, mu=0.0, p=1.0)
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(M.numpy()[off], ((R + R.T) / 2)[off], atol=1e-12)
    assert torch.equal(M, M.T) and (M.diagonal() == 1).all()


def test_rank_transform_of_the_line_has_a_negative_band_beside_the_diagonal():
    M = rank_transform(line(8, 1), mu=0.5, p=1.0)
    assert (M.diagonal(1) < 0).all()  # neighbours are rewarded
    assert M[0, 7] == pytest.approx(0.5)  # the farthest: rank 8/8 - 0.5
    assert M[3, 4] == pytest.approx(2.5 / 8 - 0.5)  # two neighbours tie at rank 2.5
    # only the order within rows matters: a monotone map of D gives the same M
    assert torch.allclose(rank_transform(line(8, 1) ** 3), M)


def test_class_centroids_of_l1_normalised_features():
    f = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.0, 5.0]])
    t = torch.tensor([0, 0, 1])
    c = class_centroids(f, t, 2)
    assert torch.allclose(c, torch.tensor([[0.375, 0.625], [0.0, 1.0]], dtype=torch.float64))
    assert torch.allclose(c.sum(1), torch.ones(2, dtype=torch.float64))


def test_hou_ground_matrix_module_updates_and_is_nan_before():
    G = HouGroundMatrix(3, mu=0.5, p=1.0)
    assert not G.ready and torch.isnan(G.M).all()
    f = torch.rand(12, 4)
    t = torch.arange(12) % 3
    M = G.update(f, t)
    assert G.ready and torch.equal(M, G.M) and M is not G.M
    assert torch.allclose(M, hou_ground_matrix(f, t, 3))
    c = class_centroids(f, t, 3)
    assert torch.allclose(G.distances, torch.cdist(c, c))


def test_cost_matrix_loss_formula_reductions_and_ignore_index():
    torch.manual_seed(0)
    K = 5
    z = torch.randn(7, K, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 4, 2, 2, 1, -100, 3])
    M = rank_transform(line(K, 1))
    per = cost_matrix_loss(z, t, M, reduction="none")
    h = torch.softmax(z, 1).detach()
    for n in range(7):
        if t[n] == -100:
            assert per[n] == 0
            continue
        y = F.one_hot(t[n], K).double()
        assert per[n].detach().item() == pytest.approx(float(((h[n] - y) ** 2 * M[:, t[n]]).sum()))
    assert cost_matrix_loss(z, t, M).item() == pytest.approx(per.sum().item() / 6)
    assert cost_matrix_loss(z, t, M, reduction="sum").item() == pytest.approx(per.sum().item())
    per.sum().backward()
    assert z.grad[5].abs().max() == 0  # the ignored sample gets no gradient
    keep = t != -100
    assert torch.autograd.gradcheck(
        lambda x: cost_matrix_loss(x, t[keep], M), (z[keep].detach().requires_grad_(),)
    )


def test_cost_matrix_loss_is_zero_at_the_target_and_reads_the_true_class_column():
    K = 4
    z = torch.full((1, K), -50.0, dtype=torch.float64).index_fill_(1, torch.tensor([2]), 50.0)
    assert cost_matrix_loss(z, torch.tensor([2]), rank_transform(line(K, 1))).item() < 1e-20
    M = torch.zeros(K, K, dtype=torch.float64)
    M[1, 2] = 1.0  # cost of mass on class 1 when the truth is 2; M[2, 1] stays 0
    z = torch.zeros(1, K, dtype=torch.float64)  # uniform h = 1/4
    assert cost_matrix_loss(z, torch.tensor([2]), M).item() == pytest.approx(1 / 16)
    assert cost_matrix_loss(z, torch.tensor([1]), M).item() == 0


def test_cost_matrix_loss_module_reads_a_learned_matrix_and_refuses_it_before_update():
    G = HouGroundMatrix(3)
    loss = CostMatrixLoss(G)
    z, t = torch.randn(6, 3), torch.arange(6) % 3
    with pytest.raises(ValueError, match="first update"):
        loss(z, t)
    G.update(torch.rand(6, 5), t)
    assert loss(z, t).item() == pytest.approx(cost_matrix_loss(z, t, G.M).item())
    fixed = CostMatrixLoss(G.M.clone(), reduction="none")
    assert fixed(z, t).shape == (6,)


def test_warmup_combined_loss_switches_after_the_warm_up():
    torch.manual_seed(0)
    z, t = torch.randn(8, 5), torch.randint(0, 5, (8,))
    emd = SquaredEMDLoss()
    loss = WarmupCombinedLoss(emd, weight=2.0, warmup=3)
    ce = F.cross_entropy(z, t)
    for e in range(3):
        loss.epoch = e
        assert loss.warming_up and torch.equal(loss(z, t), ce)
    loss.epoch = 3
    assert not loss.warming_up
    assert torch.allclose(loss(z, t), ce + 2.0 * emd(z, t))
    alone = WarmupCombinedLoss(emd, ce_weight=0.0)
    assert torch.allclose(alone(z, t), emd(z, t))
    assert torch.equal(WarmupCombinedLoss()(z, t), ce)


@pytest.mark.parametrize(
    "make, err, match",
    [
        (lambda: rank_transform(torch.zeros(3, 2)), ValueError, "square"),
        (lambda: rank_transform(line(3, 1), p=0), ValueError, "p"),
        (lambda: rank_transform(torch.full((2, 2), float("nan"))), ValueError, "finite"),
        (lambda: HouGroundMatrix(1), ValueError, "num_classes"),
        (
            lambda: class_centroids(torch.rand(4), torch.zeros(4, dtype=torch.long), 2),
            ValueError,
            "features",
        ),
        (
            lambda: class_centroids(-torch.rand(4, 2), torch.tensor([0, 1, 0, 1]), 2),
            ValueError,
            "non-negative",
        ),
        (
            lambda: class_centroids(torch.rand(4, 2), torch.zeros(4, dtype=torch.long), 2),
            ValueError,
            r"classes \[1\]",
        ),
        (
            lambda: cost_matrix_loss(torch.randn(2, 3), torch.tensor([0, 1]), torch.zeros(2, 2)),
            ValueError,
            r"\(3, 3\)",
        ),
        (
            lambda: cost_matrix_loss(
                torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), torch.zeros(3, 3)
            ),
            ValueError,
            r"\(N, K\)",
        ),
        (lambda: WarmupCombinedLoss(SquaredEMDLoss(), warmup=-1), ValueError, "warmup"),
        (lambda: WarmupCombinedLoss(warmup=2), ValueError, "warm-up"),
        (lambda: WarmupCombinedLoss("emd"), TypeError, "term"),
    ],
)
def test_bad_inputs_name_the_argument(make, err, match):
    with pytest.raises(err, match=match):
        make()
