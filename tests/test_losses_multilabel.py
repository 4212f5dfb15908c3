"""Tests for wlearn.losses.multilabel: W + alpha KL on tag targets, against POT and closed forms."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F
from scipy.special import xlogy

from wlearn.ground import euclidean
from wlearn.losses import (
    MultiLabelKLLoss,
    SinkhornLoss,
    UnbalancedSinkhornLoss,
    WassersteinKLLoss,
    multilabel_kl,
)


def _problem(B=5, K=7, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    M = euclidean(torch.randn(K, 4, generator=g, dtype=torch.float64), scale=True)  # (K, K)
    z = torch.randn(B, K, generator=g, dtype=dtype)
    t = (torch.rand(B, K, generator=g) < 0.4).to(dtype)
    t[torch.arange(B), torch.randint(K, (B,), generator=g)] = 1  # every item has a tag
    return M, z, t


def test_normalized_kl_is_soft_target_cross_entropy_minus_entropy():
    M, z, t = _problem()
    y = t / t.sum(1, keepdim=True)
    ref = F.cross_entropy(z, y, reduction="none") + torch.xlogy(y, y).sum(1)
    assert torch.allclose(multilabel_kl(z, t), ref, atol=1e-12)
    ref2 = F.kl_div(F.log_softmax(z, 1), y, reduction="none").sum(1)
    assert torch.allclose(multilabel_kl(z, t), ref2, atol=1e-12)


def test_unbalanced_kl_is_the_generalized_kl_closed_form():
    M, z, t = _problem(seed=1)
    h = z.exp().numpy()
    y = t.numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(y > 0, y * np.log(y / h), 0).sum(1) - y.sum(1) + h.sum(1)
    assert np.allclose(multilabel_kl(z, t, unbalanced=True).numpy(), ref, atol=1e-12)
    # zero at h = y on the support (and h ~ 0 off it)
    z0 = torch.where(t > 0, torch.zeros_like(z), torch.full_like(z, -60.0))
    assert multilabel_kl(z0, t, unbalanced=True).abs().max() < 1e-12


def test_kl_loss_module_reductions():
    M, z, t = _problem(seed=2)
    per = multilabel_kl(z, t)
    assert torch.allclose(MultiLabelKLLoss()(z, t), per.mean())
    assert torch.allclose(MultiLabelKLLoss(reduction="sum")(z, t), per.sum())
    assert torch.allclose(MultiLabelKLLoss(reduction="none")(z, t), per)


def test_wasserstein_part_matches_pot_sinkhorn2():
    M, z, t = _problem(seed=3)
    reg = 0.1
    loss = WassersteinKLLoss(M, reg, alpha=0.0, max_iter=2000, tol=1e-10, reduction="none")
    h = torch.softmax(z, 1)
    y = t / t.sum(1, keepdim=True)
    ref = [
        ot.sinkhorn2(h[i].numpy(), y[i].numpy(), M.numpy(), reg, numItermax=5000, stopThr=1e-12)
        for i in range(len(z))
    ]
    assert np.allclose(loss(z, t).detach().numpy(), ref, atol=1e-7)


@pytest.mark.parametrize("unbalanced", [False, True])
def test_value_and_gradient_are_w_plus_alpha_kl(unbalanced):
    M, z, t = _problem(seed=4)
    reg, alpha = 0.1, 0.3
    z1 = z.clone().requires_grad_()
    loss = WassersteinKLLoss(
        M, reg, alpha, unbalanced=unbalanced, reg_m=2.0, max_iter=1000, tol=1e-10
    )
    value = loss(z1, t)
    value.backward()
    z2 = z.clone().requires_grad_()
    if unbalanced:
        w = UnbalancedSinkhornLoss(M, reg, 2.0, max_iter=1000, tol=1e-10)(z2.exp(), t)
    else:
        w = SinkhornLoss(M, reg, max_iter=1000, tol=1e-10)(
            torch.softmax(z2, 1), t / t.sum(1, keepdim=True)
        )
    ref = w + alpha * multilabel_kl(z2, t, unbalanced=unbalanced).mean()
    ref.backward()
    assert torch.allclose(value, ref, atol=1e-10)
    assert torch.allclose(z1.grad, z2.grad, atol=1e-10)
    assert loss.last_terms[0] == pytest.approx(w.item())
    assert loss.last_n_iter >= 1


@pytest.mark.parametrize("unbalanced", [False, True])
def test_kl_part_passes_gradcheck(unbalanced):
    M, z, t = _problem(B=3, K=5, seed=5)
    z = z.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: multilabel_kl(x, t, unbalanced=unbalanced), (z,))


def test_wasserstein_gradient_in_logits_matches_finite_differences():
    """The W part's backward is Algorithm 1 (gradient of the regularized objective (6)) chained
    through the softmax; check it against finite differences of that objective, computed with
    POT's plan: sum(T M) + reg sum(T log T)."""
    M, z, t = _problem(B=1, K=6, seed=6)
    reg = 0.2
    y = (t / t.sum(1, keepdim=True))[0].numpy()

    def objective(zz):
        h = torch.softmax(zz, 1)[0].numpy()
        T = ot.sinkhorn(h, y, M.numpy(), reg, numItermax=20000, stopThr=1e-14)
        return float((T * M.numpy()).sum() + reg * xlogy(T, T).sum())

    zz = z.clone().requires_grad_()
    WassersteinKLLoss(M, reg, 0.0, max_iter=5000, tol=1e-12)(zz, t).backward()
    eps = 1e-5
    fd = []
    for k in range(z.shape[1]):
        e = torch.zeros_like(z)
        e[0, k] = eps
        fd.append((objective(z + e) - objective(z - e)) / (2 * eps))
    assert np.allclose(zz.grad[0].numpy(), fd, atol=1e-6)


def test_alpha_zero_is_pure_wasserstein_and_large_alpha_approaches_kl():
    M, z, t = _problem(seed=7)
    w = WassersteinKLLoss(M, 0.1, 0.0)(z, t)
    kl = MultiLabelKLLoss()(z, t)
    assert torch.allclose(WassersteinKLLoss(M, 0.1, 1e4)(z, t) / 1e4, kl, atol=1e-4)
    assert torch.allclose(WassersteinKLLoss(M, 0.1, 0.5)(z, t), w + 0.5 * kl)


def test_bad_inputs():
    M, z, t = _problem()
    for alpha in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha"):
            WassersteinKLLoss(M, 0.1, alpha)
    with pytest.raises(TypeError, match="alpha"):
        WassersteinKLLoss(M, 0.1, "big")
    with pytest.raises(ValueError, match="reduction"):
        WassersteinKLLoss(M, 0.1, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        MultiLabelKLLoss(reduction="avg")
    with pytest.raises(ValueError, match="reg"):
        WassersteinKLLoss(M, -1.0)
    loss = WassersteinKLLoss(M, 0.1)
    with pytest.raises(TypeError, match="input"):
        loss(z.numpy(), t)
    with pytest.raises(ValueError, match="target"):
        loss(z, t[:, :-1])
    with pytest.raises(ValueError, match="target"):
        loss(z, -t)
    empty = t.clone()
    empty[1] = 0
    with pytest.raises(ValueError, match="target"):
        loss(z, empty)
    with pytest.raises(ValueError, match="target"):
        multilabel_kl(z, empty, unbalanced=True)
