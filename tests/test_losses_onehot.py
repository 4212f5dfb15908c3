"""wlearn.losses.onehot against POT (ot.emd2), closed forms and gradcheck; bad inputs."""

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F

from wlearn.ground import line
from wlearn.losses import (
    LearnedGroundMatrix,
    OneHotWassersteinLoss,
    SquaredEMDLoss,
    one_hot_wasserstein,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _asym(C, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.rand(C, C, generator=g, dtype=torch.float64) * 3
    D.fill_diagonal_(0)
    return D


def _emd2_positions(logits, target, D, ignore_index=-100):
    """ot.emd2(softmax, one-hot, D) at every position, 0 where ignored; shape of target."""
    C = logits.shape[1]
    s = torch.softmax(logits.double(), 1).movedim(1, -1).reshape(-1, C).cpu().numpy()
    t = target.reshape(-1).cpu().numpy()
    out = np.zeros(len(t))
    for k in range(len(t)):
        if t[k] != ignore_index:
            a = s[k] / s[k].sum()
            out[k] = ot.emd2(a, np.eye(C)[t[k]], D.double().cpu().numpy())
    return torch.tensor(out).reshape(target.shape)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 3, 2)])
def test_equals_emd2_position_by_position(symmetric, shape):
    torch.manual_seed(1)
    C = shape[1]
    D = line(C, 2) if symmetric else _asym(C)
    logits = torch.randn(*shape, dtype=torch.float64) * 2
    target = torch.randint(0, C, (shape[0],) + shape[2:])
    got = OneHotWassersteinLoss(D, reduction="none")(logits, target)
    ref = _emd2_positions(logits, target, D)
    assert got.shape == target.shape
    assert torch.allclose(got, ref, atol=1e-10)


def test_orientation_rows_predicted_columns_target():
    # all predicted mass on class 0, truth class 2: the cost is D[0, 2], not D[2, 0]
    D = torch.tensor([[0.0, 1.0, 5.0], [1.0, 0.0, 1.0], [7.0, 1.0, 0.0]])
    logits = torch.tensor([[50.0, 0.0, 0.0]])
    loss = OneHotWassersteinLoss(D)(logits, torch.tensor([2]))
    assert torch.allclose(loss, torch.tensor(5.0), atol=1e-6)


def test_line_p1_is_w1_and_p2_is_w2_squared():
    torch.manual_seed(0)
    C = 7
    logits = torch.randn(20, C, dtype=torch.float64)
    target = torch.randint(0, C, (20,))
    s = torch.softmax(logits, 1)
    for p in (1, 2):
        M = line(C, p, scale=False)
        got = one_hot_wasserstein(logits, target, M, reduction="none")
        for k in range(20):
            ref = ot.emd2(s[k].numpy() / s[k].sum().item(), np.eye(C)[target[k]], M.numpy())
            assert abs(got[k].item() - ref) < 1e-10


def test_ignore_index_and_reductions():
    torch.manual_seed(2)
    C = 4
    D = _asym(C, 3)
    logits = torch.randn(3, C, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, C, (3, 5))
    target[0, :2] = 255
    target[2, 4] = 255
    per = one_hot_wasserstein(logits, target, D, ignore_index=255, reduction="none")
    keep = target != 255
    assert torch.all(per[~keep] == 0)
    ref = _emd2_positions(logits.detach(), target, D, ignore_index=255)
    assert torch.allclose(per, ref, atol=1e-10)
    s = one_hot_wasserstein(logits, target, D, ignore_index=255, reduction="sum")
    m = one_hot_wasserstein(logits, target, D, ignore_index=255, reduction="mean")
    assert torch.allclose(s, ref.sum(), atol=1e-10)
    assert torch.allclose(m, ref.sum() / keep.sum(), atol=1e-10)
    m.backward()
    assert torch.all(logits.grad.movedim(1, -1)[~keep] == 0)
    # the mean over non-ignored positions, as cross_entropy computes it
    ce = F.cross_entropy(logits, target, ignore_index=255)
    ce_none = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    assert torch.allclose(ce, ce_none.sum() / keep.sum())


def test_all_ignored_mean_is_nan_like_cross_entropy():
    logits = torch.randn(2, 3)
    target = torch.full((2,), -100)
    got = OneHotWassersteinLoss(line(3, 1))(logits, target)
    assert torch.isnan(got) and torch.isnan(F.cross_entropy(logits, target))


@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck(shape, reduction):
    torch.manual_seed(3)
    C = shape[1]
    D = _asym(C, 4)
    logits = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, C, (shape[0],) + shape[2:])
    target.view(-1)[0] = -100
    fn = OneHotWassersteinLoss(D, reduction=reduction)
    assert torch.autograd.gradcheck(lambda z: fn(z, target), (logits,))


def test_analytic_gradient_formula():
    torch.manual_seed(4)
    C = 5
    D = _asym(C, 5)
    logits = torch.randn(8, C, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, C, (8,))
    one_hot_wasserstein(logits, target, D, reduction="sum").backward()
    s = torch.softmax(logits.detach(), 1)
    Dt = D[:, target].T  # (8, C): D[i, t] per row
    L = (s * Dt).sum(1, keepdim=True)
    assert torch.allclose(logits.grad, s * (Dt - L), atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_half_and_device_from_inputs(device):
    torch.manual_seed(5)
    C = 6
    fn = OneHotWassersteinLoss(line(C, 2), ignore_index=255)
    logits = torch.randn(2, C, 4, 4, device=device)
    target = torch.randint(0, C, (2, 4, 4), device=device)
    ref = fn(logits.double(), target)
    out32 = fn(logits, target)
    assert out32.dtype == torch.float32 and out32.device.type == device
    assert torch.allclose(out32.double(), ref, atol=1e-5)
    for dt in (torch.float16, torch.bfloat16):
        z = logits.to(dt).requires_grad_()
        out = fn(z, target)
        out.backward()
        assert out.dtype == torch.float32  # computed in float32
        assert z.grad.dtype == dt and torch.isfinite(z.grad).all()
        assert torch.allclose(out.double(), ref, atol=2e-2)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        out = fn(logits, target)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), ref, atol=1e-5)


def test_bad_inputs():
    C = 4
    fn = OneHotWassersteinLoss(line(C, 1))
    logits = torch.randn(3, C)
    with pytest.raises(ValueError, match="target: expected class indices in \\[0, 3\\]"):
        fn(logits, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="target: expected class indices"):
        fn(logits, torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match="target: expected shape \\(3,\\)"):
        fn(logits, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="target: expected integer"):
        fn(logits, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="logits: expected shape"):
        fn(torch.randn(3), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="logits: expected a floating"):
        fn(torch.ones(3, C, dtype=torch.long), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="D: expected a \\(5, 5\\) matrix"):
        fn(torch.randn(3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="D: expected non-negative"):
        OneHotWassersteinLoss(-line(C, 1))
    with pytest.raises(ValueError, match="D: expected a square"):
        OneHotWassersteinLoss(torch.ones(3, 4))
    with pytest.raises(ValueError, match="D: expected a \\(4, 4\\) matrix"):
        one_hot_wasserstein(logits, torch.tensor([0, 1, 2]), line(3, 1))
    with pytest.raises(ValueError, match="reduction"):
        OneHotWassersteinLoss(line(C, 1), reduction="avg")
    with pytest.raises(TypeError, match="ignore_index"):
        OneHotWassersteinLoss(line(C, 1), ignore_index=1.5)


# --- squared EMD -----------------------------------------------------------------------


def test_squared_emd_hand_computed():
    # prediction -> Dirac at class 3 (of 5), truth class 1: CDFs differ by 1 at k = 1, 2
    logits = torch.tensor([[0.0, 0.0, 0.0, 60.0, 0.0]], dtype=torch.float64)
    loss = SquaredEMDLoss()(logits, torch.tensor([1]))
    assert torch.allclose(loss, torch.tensor(2.0, dtype=torch.float64), atol=1e-12)
    # uniform over 3 classes vs class 0: CDF (1/3, 2/3, 1) vs (1, 1, 1): (2/3)^2 + (1/3)^2
    loss = SquaredEMDLoss()(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([0]))
    assert torch.allclose(loss, torch.tensor(5 / 9, dtype=torch.float64), atol=1e-12)


def test_squared_emd_is_not_w2_squared_and_abs_cdf_is_w1():
    torch.manual_seed(6)
    C = 6
    logits = torch.randn(10, C, dtype=torch.float64)
    target = torch.randint(0, C, (10,))
    p = torch.softmax(logits, 1)
    onehot = F.one_hot(target, C).double()
    dcdf = p.cumsum(1) - onehot.cumsum(1)
    w1 = dcdf.abs().sum(1)
    emd2 = SquaredEMDLoss(reduction="none")(logits, target)
    for k in range(10):
        a = p[k].numpy() / p[k].sum().item()
        assert (
            abs(w1[k].item() - ot.emd2(a, onehot[k].numpy(), line(C, 1, scale=False).numpy()))
            < 1e-10
        )
        assert abs(emd2[k].item() - (dcdf[k] ** 2).sum().item()) < 1e-12
    # Dirac two classes off: squared EMD = 2 = W1, while W2^2 = 4
    dirac = torch.tensor([[0.0, 0.0, 60.0, 0.0]], dtype=torch.float64)
    assert abs(SquaredEMDLoss()(dirac, torch.tensor([0])).item() - 2.0) < 1e-12
    assert abs(ot.emd2(np.eye(4)[2], np.eye(4)[0], line(4, 2, scale=False).numpy()) - 4.0) < 1e-12
    assert torch.all(emd2 <= w1 + 1e-12)  # |dCDF| <= 1, so the squares are smaller


def test_squared_emd_soft_targets_and_w1_on_histograms():
    torch.manual_seed(7)
    C = 5
    logits = torch.randn(6, C, dtype=torch.float64)
    t = torch.softmax(torch.randn(6, C, dtype=torch.float64), 1)
    got = SquaredEMDLoss(reduction="none")(logits, t)
    ref = ((torch.softmax(logits, 1).cumsum(1) - t.cumsum(1)) ** 2).sum(1)
    assert torch.allclose(got, ref, atol=1e-12)
    # soft one-hot rows agree with integer targets
    y = torch.randint(0, C, (6,))
    assert torch.allclose(
        SquaredEMDLoss()(logits, F.one_hot(y, C).double()), SquaredEMDLoss()(logits, y), atol=1e-12
    )


def test_squared_emd_spatial_reductions_and_gradcheck():
    torch.manual_seed(8)
    logits = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (2, 3))
    none = SquaredEMDLoss(reduction="none")(logits, y)
    assert none.shape == (2, 3)
    assert torch.allclose(SquaredEMDLoss(reduction="sum")(logits, y), none.sum())
    assert torch.allclose(SquaredEMDLoss()(logits, y), none.mean())
    flat = SquaredEMDLoss(reduction="none")(logits.movedim(1, -1).reshape(-1, 4), y.reshape(-1))
    assert torch.allclose(none.reshape(-1), flat)
    assert torch.autograd.gradcheck(lambda z: SquaredEMDLoss()(z, y), (logits,))


def test_squared_emd_bad_inputs():
    f = SquaredEMDLoss()
    with pytest.raises(ValueError, match="target: expected class indices"):
        f(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="target: soft labels must have"):
        f(torch.randn(2, 3), torch.rand(2, 4))
    with pytest.raises(ValueError, match="target: expected rows on the probability simplex"):
        f(torch.randn(2, 3), torch.rand(2, 3) + 1)
    with pytest.raises(ValueError, match="target: expected non-negative"):
        f(torch.randn(2, 3), torch.tensor([[1.5, -0.5, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="reduction"):
        SquaredEMDLoss(reduction="max")


# --- learned ground matrix ---------------------------------------------------------------


def test_learned_ground_matrix_update_rule():
    C, d = 3, 2
    G = LearnedGroundMatrix(C, d, momentum=0.5)
    assert torch.equal(G.D, 1 - torch.eye(C, dtype=torch.float64))  # no prior: 0-1 metric
    f = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    G.update(f[:3], torch.tensor([0, 0, 1]))
    assert torch.equal(G.D, 1 - torch.eye(C, dtype=torch.float64))  # class 2 not seen yet
    D = G.update(f[3:], torch.tensor([2]))
    c = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    dist2 = torch.cdist(c, c) ** 2
    assert torch.allclose(D, dist2 / dist2.max())
    # second batch for class 1: exponential moving average with momentum 0.5
    G.update(torch.tensor([[3.0, 0.0], [0.0, 0.0]]), torch.tensor([1, -100]))
    assert torch.allclose(G.centroids[1], torch.tensor([2.0, 0.0], dtype=torch.float64))
    D.zero_()  # update returns a copy
    assert G.D.max() == 1


def test_learned_ground_matrix_with_loss_and_spatial_features():
    torch.manual_seed(9)
    C, d = 4, 3
    G = LearnedGroundMatrix(C, d)
    feats = torch.randn(2, d, 5, 5)
    y = torch.randint(0, C, (2, 5, 5))
    y[0, 0, 0] = 255
    G.update(feats, y, ignore_index=255)
    loss = OneHotWassersteinLoss(G, ignore_index=255)
    logits = torch.randn(2, C, 5, 5, requires_grad=True)
    out = loss(logits, y)
    ref = one_hot_wasserstein(logits, y, G.D, ignore_index=255)
    assert torch.allclose(out, ref)
    out.backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="features: expected shape"):
        G.update(torch.randn(4, d + 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="target: expected class indices"):
        G.update(torch.randn(2, d), torch.tensor([0, C]))
    with pytest.raises(ValueError, match="momentum"):
        LearnedGroundMatrix(C, d, momentum=0)
    with pytest.raises(ValueError, match="num_classes"):
        LearnedGroundMatrix(1, d)


@pytest.mark.parametrize("chunk", [1, 4, 5, 1 << 15])
def test_sample_chunks_agree(monkeypatch, chunk):
    # one position per chunk, chunks that split a sample (6 positions) unevenly, or whole samples
    import wlearn.losses.onehot as onehot

    monkeypatch.setattr(onehot, "_PIXELS", chunk)
    torch.manual_seed(10)
    C = 5
    D = _asym(C, 6)
    logits = torch.randn(5, C, 2, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, C, (5, 2, 3))
    target[1, 0, 0] = 255
    got = one_hot_wasserstein(logits, target, D, ignore_index=255, reduction="none")
    assert torch.allclose(got, _emd2_positions(logits.detach(), target, D, 255), atol=1e-10)
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda z, r=reduction: one_hot_wasserstein(z, target, D, ignore_index=255, reduction=r),
            (logits,),
        )


@pytest.mark.parametrize("chunk", [1, 3, 1 << 14])
def test_classification_chunks_and_extreme_logits(monkeypatch, chunk):
    # (N, C) inputs are chunked over samples; logits 1000 apart: the saved log-sum-exp and
    # the softmax rebuilt from it stay finite and exact
    import wlearn.losses.onehot as onehot

    monkeypatch.setattr(onehot, "_PIXELS", chunk)
    torch.manual_seed(11)
    C = 4
    D = _asym(C, 7)
    logits = (
        torch.randn(7, C, dtype=torch.float64) * torch.tensor([1.0, 1000.0]).repeat(4)[:7, None]
    )
    target = torch.randint(0, C, (7,))
    target[2] = -100
    got = one_hot_wasserstein(logits, target, D, reduction="none")
    assert torch.allclose(got, _emd2_positions(logits, target, D), atol=1e-10)
    z = logits.clone().requires_grad_()
    one_hot_wasserstein(z, target, D).backward()
    s = torch.softmax(logits, 1)
    Dt = D[:, target.clamp(min=0)].T  # (N, C)
    L = (s * Dt).sum(1, keepdim=True)
    expected = s * (Dt - L) / 6  # mean over the 6 kept samples
    expected[2] = 0
    assert torch.isfinite(z.grad).all() and torch.allclose(z.grad, expected, atol=1e-12)
