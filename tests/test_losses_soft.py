"""SoftWassersteinLoss and SoftCrossEntropyLoss: values against POT per pixel, the one-hot
closed form, gradients by finite differences of the objective they differentiate, masks,
bad inputs."""

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F

from wlearn import ot as wot
from wlearn.ground import power, severity_matrix
from wlearn.losses import OneHotWassersteinLoss, SoftCrossEntropyLoss, SoftWassersteinLoss


def tiny(N=2, C=5, H=3, W=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(C, 2, generator=g, dtype=torch.float64)
    M = torch.cdist(x, x)
    M = M / M.max()
    z = torch.randn(N, C, H, W, generator=g, dtype=torch.float64)
    q = torch.softmax(2 * torch.randn(N, C, H, W, generator=g, dtype=torch.float64), 1)
    return z.to(dtype), q.to(dtype), M.to(dtype)


def test_value_matches_pot_sinkhorn2_per_pixel():
    z, q, M = tiny()
    loss = SoftWassersteinLoss(M, 0.1, tol=1e-12, max_iter=10000, reduction="none")
    v = loss(z, q)
    assert v.shape == (2, 3, 2)
    s = torch.softmax(z, 1)
    for n in range(2):
        for i in range(3):
            for j in range(2):
                ref = ot.sinkhorn2(
                    s[n, :, i, j].numpy(),
                    q[n, :, i, j].numpy(),
                    M.numpy(),
                    0.1,
                    method="sinkhorn",
                    stopThr=1e-13,
                    numItermax=100000,
                )
                assert abs(v[n, i, j].item() - float(ref)) < 1e-9
    mean = SoftWassersteinLoss(M, 0.1, tol=1e-12, max_iter=10000)(z, q)
    total = SoftWassersteinLoss(M, 0.1, tol=1e-12, max_iter=10000, reduction="sum")(z, q)
    assert torch.allclose(mean, v.mean()) and torch.allclose(total, v.sum())


def test_one_hot_target_equals_closed_form_value_and_gradient_up_to_reg():
    D = power(severity_matrix(), 2)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 19, 4, 5, generator=g, dtype=torch.float64)
    t = torch.randint(0, 19, (2, 4, 5), generator=g)
    q = F.one_hot(t, 19).permute(0, 3, 1, 2).to(torch.float64)  # (N, C, H, W)
    ref = OneHotWassersteinLoss(D)(z, t)
    for reg in (0.1, 0.01):
        z1 = z.clone().requires_grad_()
        v = SoftWassersteinLoss(D, reg, tol=1e-12, max_iter=5000)(z1, q)
        assert torch.allclose(v, ref, rtol=1e-10, atol=1e-12)  # exact for any reg
        v.backward()
        z2 = z.clone().requires_grad_()
        OneHotWassersteinLoss(D)(z2, t).backward()
        # Algorithm 1 differentiates <T, M> + reg sum T log T: here sum s log s
        z3 = z.clone().requires_grad_()
        s = torch.softmax(z3, 1)
        (reg * (s * s.log()).sum(1).mean()).backward()
        assert torch.allclose(z1.grad, z2.grad + z3.grad, atol=1e-9)
    # float32 agrees too
    v32 = SoftWassersteinLoss(D, 0.1)(z.float(), q.float())
    assert abs(v32.item() - ref.item()) < 1e-5


@pytest.mark.parametrize("reg", [0.3, 0.05])
def test_gradient_fd_of_entropic_objective(reg):
    z, q, M = tiny(N=1, C=4, H=2, W=2, seed=1)
    z = z.requires_grad_()
    loss = SoftWassersteinLoss(M, reg, tol=1e-13, max_iter=100000, reduction="sum")
    loss(z, q).backward()

    def objective(zz):
        s = torch.softmax(zz, 1).movedim(1, -1).reshape(-1, 4)  # (P, C)
        qq = q.movedim(1, -1).reshape(-1, 4)  # (P, C)
        return wot.sinkhorn(s, qq, M, reg, tol=1e-14, max_iter=100000).objective.sum().item()

    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        d = torch.randn(z.shape, generator=g, dtype=torch.float64)
        eps = 1e-5
        fd = (objective(z.detach() + eps * d) - objective(z.detach() - eps * d)) / (2 * eps)
        assert abs(fd - (z.grad * d).sum().item()) < 1e-7 * max(1.0, abs(fd))


def test_mask_and_labels_leave_positions_out():
    z, q, M = tiny(N=2, C=5, H=3, W=4, seed=4)
    g = torch.Generator().manual_seed(5)
    mask = torch.rand(2, 3, 4, generator=g) < 0.6
    labels = torch.randint(0, 5, (2, 3, 4), generator=g).masked_fill(~mask, 255)
    q_bad = q.clone()
    q_bad[~mask[:, None].expand_as(q)] = 0.0  # masked targets are never read
    full = SoftWassersteinLoss(M, 0.1, tol=1e-12, max_iter=5000, reduction="none")(z, q)
    for kw in ({"mask": mask}, {"labels": labels}):
        zz = z.clone().requires_grad_()
        loss = SoftWassersteinLoss(
            M, 0.1, tol=1e-12, max_iter=5000, ignore_index=255, reduction="none"
        )
        v = loss(zz, q_bad, **kw)
        assert torch.allclose(v[mask], full[mask]) and (v[~mask] == 0).all()
        m = SoftWassersteinLoss(M, 0.1, tol=1e-12, max_iter=5000, ignore_index=255)(zz, q_bad, **kw)
        assert torch.allclose(m, full[mask].mean())
        m.backward()
        assert (zz.grad.movedim(1, -1)[~mask] == 0).all()
        assert zz.grad.movedim(1, -1)[mask].abs().sum() > 0
    empty = torch.zeros(2, 3, 4, dtype=torch.bool)
    assert torch.isnan(SoftWassersteinLoss(M, 0.1)(z, q, mask=empty))
    zz = z.clone().requires_grad_()
    assert SoftWassersteinLoss(M, 0.1, reduction="sum")(zz, q, mask=empty).item() == 0
    assert (SoftWassersteinLoss(M, 0.1, reduction="none")(zz, q, mask=empty) == 0).all()


def test_soft_cross_entropy_matches_torch_and_masks():
    z, q, _ = tiny(N=2, C=5, H=3, W=4, seed=6)
    ref = F.cross_entropy(z, q, reduction="none")
    assert torch.allclose(SoftCrossEntropyLoss(reduction="none")(z, q), ref)
    mask = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(7)) < 0.5
    assert torch.allclose(SoftCrossEntropyLoss()(z, q, mask=mask), ref[mask].mean())
    t = torch.randint(0, 5, (2, 3, 4), generator=torch.Generator().manual_seed(8))
    oh = F.one_hot(t, 5).permute(0, 3, 1, 2).double()
    assert torch.allclose(SoftCrossEntropyLoss()(z, oh), F.cross_entropy(z, t))


def test_float32_close_to_float64():
    z, q, M = tiny(N=2, C=6, H=4, W=4, seed=9)
    v64 = SoftWassersteinLoss(M, 0.1, tol=1e-10, max_iter=5000)(z, q)
    v32 = SoftWassersteinLoss(M, 0.1, max_iter=5000)(z.float(), q.float())
    assert v32.dtype == torch.float32
    assert abs(v32.item() - v64.item()) < 1e-4


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda L, z, q, M: L(z.numpy(), q), TypeError, "logits"),
        (lambda L, z, q, M: L(z, q.argmax(1)), TypeError, "target"),
        (lambda L, z, q, M: L(z, q[:, :, :1]), ValueError, "target"),
        (lambda L, z, q, M: L(z, q - 0.5), ValueError, "target"),
        (lambda L, z, q, M: L(z[:, :3], q[:, :3]), ValueError, "M"),
        (lambda L, z, q, M: L(z, q, mask=torch.ones(2, 3, 2)), TypeError, "mask"),
        (lambda L, z, q, M: L(z, q, mask=torch.ones(2, 3, dtype=torch.bool)), ValueError, "mask"),
        (lambda L, z, q, M: L(z, q, labels=torch.full((2, 3, 2), 7)), ValueError, "target"),
        (lambda L, z, q, M: L(z, q, labels=torch.zeros(2, 3, 2)), TypeError, "target"),
    ],
)
def test_bad_inputs(call, exc, match):
    z, q, M = tiny()
    with pytest.raises(exc, match=match):
        call(SoftWassersteinLoss(M, 0.1, ignore_index=255), z, q, M)


def test_bad_settings():
    _, _, M = tiny()
    with pytest.raises(ValueError, match="reg"):
        SoftWassersteinLoss(M, 0.0)
    with pytest.raises(ValueError, match="reduction"):
        SoftWassersteinLoss(M, 0.1, reduction="avg")
    with pytest.raises(TypeError, match="ignore_index"):
        SoftWassersteinLoss(M, 0.1, ignore_index=2.5)
    with pytest.raises(ValueError, match="M"):
        SoftWassersteinLoss(-M, 0.1)
    with pytest.raises(ValueError, match="reduction"):
        SoftCrossEntropyLoss(reduction="avg")
    z, q, _ = tiny()
    with pytest.raises(ValueError, match="target"):
        SoftCrossEntropyLoss()(z, q - 1)


def test_non_convergence_warns_with_max_iter():
    z, q, M = tiny()
    with pytest.warns(RuntimeWarning, match="max_iter"):
        SoftWassersteinLoss(M, 0.01, max_iter=2)(z, q)


def test_gradient_flows_on_noncontiguous_inputs_and_no_spatial_dims():
    z, q, M = tiny(N=4, C=5, H=1, W=1)
    z2, q2 = z[:, :, 0, 0].requires_grad_(), q[:, :, 0, 0]  # (N, C)
    v = SoftWassersteinLoss(M, 0.1, tol=1e-12, max_iter=5000, reduction="none")(z2, q2)
    ref = [
        ot.sinkhorn2(
            torch.softmax(z2, 1)[i].detach().numpy(),
            q2[i].numpy(),
            M.numpy(),
            0.1,
            stopThr=1e-13,
            numItermax=100000,
        )
        for i in range(4)
    ]
    assert np.allclose(v.detach().numpy(), np.array(ref, dtype=float), rtol=1e-8)
    v.sum().backward()
    assert torch.isfinite(z2.grad).all()
