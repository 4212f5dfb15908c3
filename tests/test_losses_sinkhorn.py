"""SinkhornLoss and UnbalancedSinkhornLoss: values against POT, gradients against finite
differences of the objective they differentiate (Algorithm 1)."""

import numpy as np
import ot
import pytest
import torch

from wlearn import ot as wot
from wlearn.losses import SinkhornLoss, UnbalancedSinkhornLoss


def setup(K=8, B=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(K, 2, generator=g, dtype=torch.float64)
    M = torch.cdist(x, x)
    M = M / M.max()
    h = torch.softmax(torch.randn(B, K, generator=g, dtype=torch.float64), -1)
    y = torch.softmax(2 * torch.randn(B, K, generator=g, dtype=torch.float64), -1)
    return h.to(dtype), y.to(dtype), M.to(dtype)


def test_value_matches_pot_per_row():
    h, y, M = setup()
    loss = SinkhornLoss(M, 0.1, tol=1e-12, max_iter=10000, reduction="none")
    v = loss(h, y)
    ref = [
        ot.sinkhorn2(h[i].numpy(), y[i].numpy(), M.numpy(), 0.1, method="sinkhorn", stopThr=1e-13)
        for i in range(4)
    ]
    assert np.allclose(v.numpy(), np.array(ref, dtype=float), rtol=1e-9)
    assert torch.allclose(SinkhornLoss(M, 0.1, tol=1e-12, max_iter=10000)(h, y), v.mean())
    assert torch.allclose(
        SinkhornLoss(M, 0.1, tol=1e-12, max_iter=10000, reduction="sum")(h, y), v.sum()
    )


@pytest.mark.parametrize("reg", [0.5, 0.1, 0.03])
def test_gradient_is_the_centred_potential_fd_along_simplex(reg):
    h, y, M = setup(B=3)
    h = h.clone().requires_grad_()
    loss = SinkhornLoss(M, reg, tol=1e-13, max_iter=50000, reduction="sum")
    loss(h, y).backward()
    assert torch.allclose(h.grad.sum(-1), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    g = torch.Generator().manual_seed(1)
    for i in range(3):
        d = torch.randn(8, generator=g, dtype=torch.float64)
        d -= d.mean()  # tangent to the simplex
        eps = 1e-6

        def obj(t, i=i, d=d):
            return wot.sinkhorn(
                h[i].detach() + t * d, y[i], M, reg, tol=1e-14, max_iter=100000
            ).objective

        fd = (obj(eps) - obj(-eps)) / (2 * eps)
        assert abs(fd.item() - (h.grad[i] @ d).item()) < 1e-6


def test_small_reg_approaches_emd_and_one_hot_targets_are_finite():
    h, _, M = setup(K=10, B=3)
    y = torch.zeros(3, 10, dtype=torch.float64)
    y[torch.arange(3), torch.tensor([0, 4, 9])] = 1.0
    h = h.clone().requires_grad_()
    v = SinkhornLoss(M, 1e-3, reduction="none")(h, y)
    v.sum().backward()
    assert torch.isfinite(v).all() and torch.isfinite(h.grad).all()
    exact = [ot.emd2(h[i].detach().numpy(), y[i].numpy(), M.numpy()) for i in range(3)]
    assert np.allclose(v.detach().numpy(), exact, rtol=1e-8)
    # with a one-hot target the transport is forced: the cost is sum_i h_i M[i, t]
    assert torch.allclose(v, (h * M[:, [0, 4, 9]].T).sum(-1), rtol=1e-8)


def test_softmax_underflow_in_input_stays_finite():
    _, y, M = setup(K=5, B=2, dtype=torch.float32)
    logits = torch.tensor(
        [[0.0, 200.0, 0.0, 0.0, 0.0], [1.0, 0.0, -150.0, 2.0, 0.0]], requires_grad=True
    )
    h = torch.softmax(logits, -1)
    assert (h == 0).any()
    SinkhornLoss(M, 0.05)(h, y).backward()
    assert torch.isfinite(logits.grad).all()


def test_float32_close_to_float64_and_batch_of_one():
    h, y, M = setup()
    v64 = SinkhornLoss(M, 0.1, tol=1e-10)(h, y)
    v32 = SinkhornLoss(M.float(), 0.1, tol=1e-6)(h.float(), y.float())
    assert v32.dtype == torch.float32 and abs(v32.item() - v64.item()) < 1e-5
    h1 = h[:1].clone().requires_grad_()
    v1 = SinkhornLoss(M, 0.1)(h1, y[:1])
    v1.backward()
    assert v1.shape == () and h1.grad.shape == (1, 8)
    assert SinkhornLoss(M, 0.1, reduction="none")(h[0], y[0]).shape == (1,)


def test_loss_keeps_no_graph_through_iterations():
    h, y, M = setup()
    logits = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    out = SinkhornLoss(M, 0.1)(torch.softmax(logits, -1), y)
    # the graph holds the softmax and one custom node, not hundreds of iteration nodes
    names = []
    fn = out.grad_fn
    while fn is not None:
        names.append(type(fn).__name__)
        fn = fn.next_functions[0][0] if fn.next_functions else None
    assert len(names) <= 5, names


def test_unbalanced_value_and_gradient_fd_free_directions():
    _, _, M = setup()
    g = torch.Generator().manual_seed(3)
    h = (torch.rand(3, 8, generator=g, dtype=torch.float64) * 2 + 0.05).requires_grad_()
    y = torch.rand(3, 8, generator=g, dtype=torch.float64) + 0.05
    reg, reg_m = 0.1, (0.5, 2.0)
    loss = UnbalancedSinkhornLoss(M, reg, reg_m, tol=1e-13, max_iter=50000, reduction="sum")
    v = loss(h, y)
    v.backward()
    r = wot.unbalanced_sinkhorn(h.detach(), y, M, reg, reg_m, tol=1e-13, max_iter=50000)
    assert abs(v.item() - r.objective.sum().item()) < 1e-10
    # the gradient is gamma_a (1 - T1 / h)
    assert torch.allclose(h.grad, reg_m[0] * (1 - r.plan.sum(-1) / h.detach()), atol=1e-10)
    for i in range(3):
        d = torch.randn(8, generator=g, dtype=torch.float64)  # any direction: no simplex here
        eps = 1e-6

        def obj(t, i=i, d=d):
            return wot.unbalanced_sinkhorn(
                h[i].detach() + t * d, y[i], M, reg, reg_m, tol=1e-14, max_iter=100000
            ).objective

        fd = (obj(eps) - obj(-eps)) / (2 * eps)
        assert abs(fd.item() - (h.grad[i] @ d).item()) < 1e-6


def test_unbalanced_zero_bins_give_gamma_gradient():
    _, _, M = setup(K=5)
    h = torch.tensor([[0.0, 0.5, 1.0, 0.2, 0.3]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    UnbalancedSinkhornLoss(M, 0.05, 1.0, max_iter=5000)(h, y).backward()
    assert torch.isfinite(h.grad).all()
    assert abs(h.grad[0, 0].item() - 1.0) < 1e-12


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda h, y: (h * 2, y), "input: expected rows on the probability simplex"),
        (lambda h, y: (h, -y), "target: expected non-negative"),
        (lambda h, y: (h[:, :5], y[:, :5]), r"input: expected shape \(B, 8\)"),
        (lambda h, y: (h, y[:2]), "target: expected the shape of input"),
        (lambda h, y: (h.numpy(), y), "input: expected a torch.Tensor"),
    ],
)
def test_bad_inputs(make, match):
    h, y, M = setup()
    hi, yi = make(h, y)
    with pytest.raises((ValueError, TypeError), match=match):
        SinkhornLoss(M, 0.1)(hi, yi)


def test_bad_settings():
    _, _, M = setup()
    with pytest.raises(ValueError, match="reg: expected a finite number > 0"):
        SinkhornLoss(M, 0.0)
    with pytest.raises(ValueError, match="reduction: expected one of"):
        SinkhornLoss(M, 0.1, reduction="avg")
    with pytest.raises(ValueError, match="M: expected a square"):
        SinkhornLoss(M[:, :3], 0.1)
    with pytest.raises(ValueError, match="reg_m"):
        UnbalancedSinkhornLoss(M, 0.1, -1.0)
    h, y, _ = setup()
    with pytest.raises(ValueError, match="input: expected every row to have positive mass"):
        UnbalancedSinkhornLoss(M, 0.1, 1.0)(torch.zeros_like(h), y)


def test_non_convergence_warns_with_max_iter():
    h, y, M = setup()
    with pytest.warns(RuntimeWarning, match="max_iter=2"):
        SinkhornLoss(M, 0.01, max_iter=2)(h, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda():
    h, y, M = setup(dtype=torch.float32)
    h = h.cuda().requires_grad_()
    v = SinkhornLoss(M, 0.1)(h, y.cuda())
    v.backward()
    assert v.device.type == "cuda" and torch.isfinite(h.grad).all()
