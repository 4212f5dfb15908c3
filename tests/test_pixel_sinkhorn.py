"""The per-pixel scaling-domain Sinkhorn behind SoftWassersteinLoss (wlearn.losses._pixel_sinkhorn):
values against ot.sinkhorn2 pixel by pixel on a sample, the marginals of the returned plans
within tol, the one-hot closed form, blocks and the active set, the log-domain fallback, and
gradients against the log-domain reference path; each for the compiled CPU kernel
(_pixel_lanes.c) and the PyTorch path, and the two against each other."""

import shutil
import sysconfig

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F

import wlearn.losses._pixel_sinkhorn as ps
from wlearn.ground import power, severity_matrix
from wlearn.losses import SoftWassersteinLoss
from wlearn.segment import conservative_targets

REG = 0.1


def _compiler():
    """The C compiler the install would have used, if there is one here."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(params=["compiled", "torch"])
def kernel(request):
    """Both implementations of pixel_sinkhorn; the compiled one is skipped only where no C
    compiler exists (where one does, the install builds it: test_kernel_is_built_here)."""
    if request.param == "compiled" and not ps.HAVE_COMPILED and _compiler() is None:
        pytest.skip("no C compiler here: the compiled kernel was not built")
    return request.param


@pytest.fixture(params=["compiled", "torch"])
def loss_path(request, monkeypatch):
    """SoftWassersteinLoss through the compiled kernel, or forced onto the PyTorch path."""
    if request.param == "torch":
        monkeypatch.setattr(ps, "HAVE_COMPILED", False)
    elif not ps.HAVE_COMPILED and _compiler() is None:
        pytest.skip("no C compiler here: the compiled kernel was not built")
    return request.param


def test_kernel_is_built_here():
    if _compiler() is None:
        pytest.skip("no C compiler here")
    assert ps.HAVE_COMPILED, (
        "a C compiler is installed but wlearn.losses._pixel_lanes was not built: reinstall "
        "(pip install -e .) and read the compiler's error"
    )


def lesson_batch(N=2, H=12, W=16, seed=0, dtype=torch.float32, confident=1.0):
    """Logits, labels and lesson 10's conservative targets 0.7 e_y + 0.3 p (p: a teacher)."""
    g = torch.Generator().manual_seed(seed)
    z = confident * torch.randn(N, 19, H, W, generator=g, dtype=torch.float64)
    p = torch.softmax(z + 0.5 * torch.randn(z.shape, generator=g, dtype=torch.float64), 1)
    y = p.argmax(1)
    q = conservative_targets(p, y, mode="prediction", alpha=0.3)  # (N, C, H, W), channels-last
    return z.to(dtype), y, q.to(dtype)


def ground(dtype=torch.float32):
    return power(severity_matrix(), 2).to(dtype)  # (19, 19), in [0, 1]


def columns(x):
    return x.movedim(1, -1).reshape(-1, x.shape[1]).T  # (C, P)


def sinkhorn2(h, q, M, reg=REG):
    """ot.sinkhorn2 per column, run to 1e-12 in float64."""
    Mn = M.double().numpy()
    return np.array(
        [
            float(ot.sinkhorn2(a, b / b.sum() * a.sum(), Mn, reg, stopThr=1e-12, numItermax=100000))
            for a, b in zip(h.double().T.numpy(), q.double().T.numpy(), strict=True)
        ]
    )


def marginal_errors(res, h, q, M, reg=REG):
    """L1 errors of the rows and columns of every returned plan, relative to its mass."""
    G = torch.exp(-M.double() / reg)
    u, v = res.u.double(), res.v.double()
    rows = u * (G @ v)  # (C, P)
    cols = v * (G.T @ u)  # (C, P)
    qn = q.double() / q.double().sum(0) * h.double().sum(0)
    mass = h.double().sum(0)
    return (rows - h.double()).abs().sum(0) / mass, (cols - qn).abs().sum(0) / mass


def solve(h, y, M, *, tol, max_iter, kernel):
    """pixel_sinkhorn with ``v``, asserted converged; the result and the L1 errors of its plans'
    rows and columns (:func:`marginal_errors`)."""
    res = ps.pixel_sinkhorn(h, y, M, REG, tol=tol, max_iter=max_iter, return_v=True, kernel=kernel)
    assert res.converged
    return (res, *marginal_errors(res, h, y, M))


@pytest.mark.parametrize(
    "dtype, tol, atol", [(torch.float32, 1e-3, 2e-3), (torch.float64, 1e-10, 1e-8)]
)
@pytest.mark.parametrize("confident", [1.0, 3.0])
def test_values_match_pot_per_pixel_and_marginals_meet_tol(kernel, dtype, tol, atol, confident):
    z, _, q = lesson_batch(dtype=dtype, confident=confident)
    M = ground(dtype)
    h = columns(torch.softmax(z, 1))
    y = columns(q)
    res, rows, cols = solve(h, y, M, tol=tol, max_iter=1000, kernel=kernel)
    assert res.n_iter > 0 and res.mean_iter <= res.n_iter
    floor = max(tol, 20 * torch.finfo(dtype).eps)
    assert float(rows.max()) <= floor * 1.01 and float(cols.max()) <= floor + 1e-5
    sample = torch.randperm(h.shape[1], generator=torch.Generator().manual_seed(1))[:60]
    ref = sinkhorn2(h[:, sample], y[:, sample], M)
    got = res.value[sample].double().numpy()
    assert np.abs(got - ref).max() <= atol


def test_zero_mass_bins_ties_and_near_one_hot_columns(kernel):
    z, labels, q = lesson_batch(N=1, H=8, W=8, seed=3, dtype=torch.float64)
    q = q.clone()
    q[0, :, 4:] = F.one_hot(labels[0, 4:], 19).movedim(-1, 0).double()  # most columns one-hot
    q[0, :5, 0, :] = 0.0  # zero-mass bins: classes 0-4 absent
    q[0, :, 0, :] /= q[0, :, 0, :].sum(0)
    q[0, :, 1, :] = 0.0
    q[0, 3, 1, :], q[0, 7, 1, :] = 0.5, 0.5  # ties for the largest entry
    q[0, :, 2, :] = F.one_hot(labels[0, 2], 19).T.double() * (1 - 2e-5)
    q[0, 0, 2, :] += 2e-5  # near one-hot: off the top class by 2e-5 <= tol / 2
    q[0, :, 3, :] = F.one_hot(labels[0, 3], 19).T.double() * (1 - 1e-4)
    q[0, 0, 3, :] += 1e-4  # off by 1e-4 > tol / 2: the closed form would miss tol
    M = ground(torch.float64)
    h, y = columns(torch.softmax(z, 1)), columns(q)
    res, rows, cols = solve(h, y, M, tol=1e-4, max_iter=5000, kernel=kernel)
    assert float(rows.max()) <= 1.01e-4 and float(cols.max()) <= 1.01e-4
    assert (res.v[:5, :8] == 0).all()  # zero-mass bins: v = 0 exactly
    assert np.abs(res.value.numpy() - sinkhorn2(h, y, M)).max() < 1e-4


@pytest.mark.parametrize("block", [7, 64, 1 << 15])
@pytest.mark.parametrize("one_hot_share", [0.0, 0.8])
def test_blocks_and_active_set_agree_with_pot(monkeypatch, kernel, block, one_hot_share):
    # small blocks: many blocks, columns left over for phase B; mostly one-hot blocks take
    # the branch that sends the others to phase B at once
    monkeypatch.setattr(ps, "BLOCK_CPU", block)
    z, labels, q = lesson_batch(N=1, H=10, W=20, seed=5, dtype=torch.float64, confident=3.0)
    oh = F.one_hot(labels, 19).movedim(-1, 1).double()
    pick = torch.rand(labels.shape, generator=torch.Generator().manual_seed(6)) < one_hot_share
    q = torch.where(pick[:, None], oh, q)
    M = ground(torch.float64)
    h, y = columns(torch.softmax(z, 1)), columns(q)
    res, rows, cols = solve(h, y, M, tol=1e-9, max_iter=5000, kernel=kernel)
    assert float(rows.max()) <= 1.01e-9 and float(cols.max()) <= 1e-9
    assert np.abs(res.value.numpy() - sinkhorn2(h, y, M)).max() < 1e-8


def test_max_iter_returns_the_last_iterates_and_reports_it(kernel):
    z, _, q = lesson_batch(N=1, H=4, W=4, seed=7, dtype=torch.float64, confident=3.0)
    h, y = columns(torch.softmax(z, 1)), columns(q)
    res = ps.pixel_sinkhorn(h, y, ground(torch.float64), 0.01, tol=1e-12, max_iter=3, kernel=kernel)
    assert not res.converged and res.n_iter == 3 and res.err > 1e-12
    assert torch.isfinite(res.value).all() and torch.isfinite(res.u).all()


def reference(loss):
    """The same loss forced onto the log-domain path (wlearn.ot.sinkhorn_potentials)."""
    loss._fast_path_applies = lambda *a: False
    return loss


@pytest.mark.parametrize("masked", [False, True])
def test_gradient_equals_the_log_domain_reference_path(loss_path, masked):
    z, labels, q = lesson_batch(N=2, H=5, W=6, seed=8, dtype=torch.float64)
    mask = torch.rand(labels.shape, generator=torch.Generator().manual_seed(9)) < 0.6
    kw = {"mask": mask} if masked else {}
    M = ground(torch.float64)
    grads, values = [], []
    for make in (lambda L: L, reference):
        zz = z.clone().requires_grad_()
        loss = make(SoftWassersteinLoss(M, REG, tol=1e-12, max_iter=10000, reduction="sum"))
        v = loss(zz, q, **kw)
        v.backward()
        grads.append(zz.grad)
        values.append(v.detach())
    assert torch.allclose(values[0], values[1], rtol=1e-10)
    assert torch.allclose(grads[0], grads[1], atol=1e-9)
    if masked:
        assert (grads[0].movedim(1, -1)[~mask] == 0).all()


def test_one_hot_targets_take_the_closed_form_only_when_exactly_one_hot():
    z, labels, _ = lesson_batch(N=1, H=4, W=5, seed=10, dtype=torch.float64)
    oh = F.one_hot(labels, 19).movedim(-1, 1).double()
    M = ground(torch.float64)
    loss = SoftWassersteinLoss(M, REG, tol=1e-12, max_iter=10000, reduction="none")
    v = loss(z, oh)
    assert loss.last_n_iter == 0  # no iteration: Liu et al.'s closed form
    closed = (torch.softmax(z, 1) * M[:, labels[0]].permute(1, 2, 0)[None].movedim(-1, 1)).sum(1)
    assert torch.allclose(v, closed, rtol=1e-12)
    half = oh.clone()
    half[0, :, 0, 0] = 0
    half[0, 2, 0, 0] = half[0, 5, 0, 0] = 0.5  # one column not one-hot: the solver runs
    v2 = loss(z, half)
    assert loss.last_n_iter > 0
    ref = sinkhorn2(columns(torch.softmax(z, 1))[:, :1], columns(half)[:, :1], M)
    assert abs(v2[0, 0, 0].item() - ref[0]) < 1e-9
    assert torch.allclose(v2.flatten()[1:], v.flatten()[1:], rtol=1e-9)


def test_one_hot_closed_form_holds_where_the_kernel_would_underflow():
    # reg = 0.01 in float32: exp(-M/reg) underflows, the closed form does not need it
    z, labels, _ = lesson_batch(N=1, H=3, W=4, seed=11)
    oh = F.one_hot(labels, 19).movedim(-1, 1).float()
    M = ground()
    v = SoftWassersteinLoss(M, 0.01, reduction="none")(z, oh)
    closed = SoftWassersteinLoss(M.double(), 0.01, reduction="none")(z.double(), oh.double())
    assert torch.allclose(v.double(), closed, atol=1e-6)


def test_small_reg_in_float32_falls_back_to_the_log_domain():
    z, _, q = lesson_batch(N=1, H=2, W=3, seed=12)
    M = ground()
    loss = SoftWassersteinLoss(M, 0.02, tol=1e-6, max_iter=20000, reduction="none")
    v = loss(z, q)  # max(M)/reg = 50 > 35: the scaling domain is not used
    ref = sinkhorn2(columns(torch.softmax(z.double(), 1)), columns(q.double()), M, 0.02)
    assert np.abs(v.flatten().double().numpy() - ref).max() < 1e-4


def test_layouts_half_precision_and_no_spatial_dims():
    z, _, q = lesson_batch(N=2, H=3, W=4, seed=13)
    M = ground()
    loss = SoftWassersteinLoss(M, REG, reduction="none")
    a = loss(z, q)  # q is channels-last
    b = loss(z, q.contiguous())
    assert torch.allclose(a, b, atol=1e-6)
    zh = z.half().requires_grad_()
    vh = SoftWassersteinLoss(M, REG)(zh, q)
    vh.backward()
    assert vh.dtype == torch.float16 and torch.isfinite(zh.grad.float()).all()
    z2 = z[:, :, 0, 0].clone().requires_grad_()  # (N, C)
    v2 = loss(z2, q[:, :, 0, 0])
    assert torch.allclose(v2, a[:, 0, 0], atol=1e-6)
    v2.sum().backward()
    assert torch.isfinite(z2.grad).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_one_hot_targets_with_a_mask_match_the_log_domain_path(reduction):
    z, labels, _ = lesson_batch(N=2, H=4, W=5, seed=14, dtype=torch.float64)
    oh = F.one_hot(labels, 19).movedim(-1, 1).double()
    mask = torch.rand(labels.shape, generator=torch.Generator().manual_seed(15)) < 0.5
    oh[~mask[:, None].expand_as(oh)] = float("nan")  # never read
    M = ground(torch.float64)
    out, grads = [], []
    for make in (lambda L: L, reference):
        zz = z.clone().requires_grad_()
        loss = make(SoftWassersteinLoss(M, REG, tol=1e-12, max_iter=10000, reduction=reduction))
        v = loss(zz, torch.nan_to_num(oh) if make is reference else oh, mask=mask)
        (v.sum() if reduction == "none" else v).backward()
        out.append(v.detach())
        grads.append(zz.grad)
    assert torch.allclose(out[0], out[1], rtol=1e-10, atol=1e-12)
    assert torch.allclose(grads[0], grads[1], atol=1e-9)
    assert (grads[0].movedim(1, -1)[~mask] == 0).all()


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-3), (torch.float64, 1e-10)])
@pytest.mark.parametrize("n_cols", [1, 15, 16, 17, 300])
def test_compiled_kernel_agrees_with_the_torch_path(dtype, tol, n_cols):
    # partial blocks of 16 lanes, contiguous and transposed layouts of h and y
    if not ps.HAVE_COMPILED:
        pytest.skip("the compiled kernel was not built (test_kernel_is_built_here says why)")
    z, _, q = lesson_batch(N=1, H=15, W=20, seed=16, dtype=dtype, confident=3.0)
    h, y = columns(torch.softmax(z, 1))[:, :n_cols], columns(q)[:, :n_cols]
    M = ground(dtype)
    out = {}
    for name, (hh, yy) in {
        "strided": (h, y),
        "contiguous": (h.contiguous(), y.contiguous()),
    }.items():
        for kernel in ("compiled", "torch"):
            out[name, kernel] = solve(hh, yy, M, tol=tol, max_iter=5000, kernel=kernel)
    ref = out["strided", "torch"][0]
    for (_layout, kernel), (res, rows, cols) in out.items():
        assert res.err <= tol * 1.01
        assert float(rows.max()) <= tol * 1.01 and float(cols.max()) <= tol * 1.01
        # both stop each column within tol, perhaps some iterations apart: values within tol
        assert (res.value - ref.value).abs().max() <= 2 * tol
        if kernel == "compiled":  # each column stops at its first iterate within tol; the
            # PyTorch path checks a column there too but stores it with its block's quarter
            assert res.mean_iter <= ref.mean_iter + 0.05 and res.n_iter <= ref.n_iter + 1
    assert torch.equal(out["strided", "compiled"][0].u, out["contiguous", "compiled"][0].u)


def test_compiled_kernel_is_the_same_on_any_number_of_threads():
    if not ps.HAVE_COMPILED:
        pytest.skip("the compiled kernel was not built (test_kernel_is_built_here says why)")
    z, _, q = lesson_batch(N=2, H=40, W=64, seed=17)  # 5,120 columns: 20 blocks of 256
    h, y = columns(torch.softmax(z, 1)), columns(q)
    before = torch.get_num_threads()
    runs = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            runs.append(ps.pixel_sinkhorn(h, y, ground(), REG, tol=1e-3, max_iter=1000))
    finally:
        torch.set_num_threads(before)
    for res in runs[1:]:
        assert torch.equal(res.u, runs[0].u) and torch.equal(res.value, runs[0].value)
        assert res.mean_iter == runs[0].mean_iter and res.n_iter == runs[0].n_iter


def test_kernel_argument_is_checked():
    z, _, q = lesson_batch(N=1, H=2, W=2)
    h, y = columns(torch.softmax(z, 1)), columns(q)
    with pytest.raises(ValueError, match="kernel: expected 'auto', 'compiled' or 'torch'"):
        ps.pixel_sinkhorn(h, y, ground(), REG, tol=1e-3, max_iter=10, kernel="fast")
    with pytest.raises(ValueError, match="kernel: 'compiled' requested"):
        ps.pixel_sinkhorn(h.half(), y.half(), ground().half(), REG, tol=1e-3, max_iter=10,
                          kernel="compiled")  # fmt: skip
