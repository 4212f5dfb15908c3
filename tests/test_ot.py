"""wlearn.ot against POT, closed forms and first-order conditions."""

import numpy as np
import ot
import pytest
import torch
from _pot import relaxed_plan

from wlearn import ground
from wlearn import ot as wot


def problem(K=20, B=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(K, 3, generator=g, dtype=torch.float64)
    M = torch.cdist(x, x)
    M = M / M.max()
    shape = (K,) if B is None else (B, K)
    a = torch.rand(shape, generator=g, dtype=torch.float64) + 0.05
    b = torch.rand(shape, generator=g, dtype=torch.float64) + 0.05
    a, b = a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)
    return a.to(dtype), b.to(dtype), M.to(dtype)


def test_emd_matches_pot_and_dual():
    a, b, M = problem(B=4)
    r = wot.emd(a, b, M)
    for i in range(4):
        assert abs(r.value[i].item() - ot.emd2(a[i].numpy(), b[i].numpy(), M.numpy())) < 1e-12
        f, g = r.potentials[0][i], r.potentials[1][i]
        # strong duality and dual feasibility f_i + g_j <= M_ij
        assert abs((f @ a[i] + g @ b[i]).item() - r.value[i].item()) < 1e-10
        assert (f[:, None] + g[None, :] <= M + 1e-10).all()
    assert torch.allclose(r.plan.sum(-1), a, atol=1e-12)
    assert torch.allclose(r.plan.sum(-2), b, atol=1e-12)


def test_emd_closed_form_on_the_line():
    K = 12
    a, b, _ = problem(K)
    M = torch.abs(torch.arange(K)[:, None] - torch.arange(K)[None, :]).double()
    w1 = (torch.cumsum(a, 0) - torch.cumsum(b, 0)).abs().sum()
    assert abs(wot.emd(a, b, M).value.item() - w1.item()) < 1e-12


@pytest.mark.parametrize("reg", [0.5, 0.1, 0.02])
def test_sinkhorn_matches_pot(reg):
    a, b, M = problem()
    r = wot.sinkhorn(a, b, M, reg, tol=1e-12, max_iter=20000)
    ref = ot.sinkhorn2(
        a.numpy(), b.numpy(), M.numpy(), reg, method="sinkhorn", stopThr=1e-13, numItermax=100000
    )
    assert r.converged
    assert abs(r.value.item() - float(ref)) < 1e-9 * max(1.0, float(ref))
    assert torch.allclose(r.plan.sum(-1), a, atol=1e-11)
    assert torch.allclose(r.plan.sum(-2), b, atol=1e-11)


def test_sinkhorn_plan_matches_pot_and_objective():
    a, b, M = problem(K=15)
    r = wot.sinkhorn(a, b, M, 0.1, tol=1e-13, max_iter=20000)
    P = ot.sinkhorn(
        a.numpy(), b.numpy(), M.numpy(), 0.1, method="sinkhorn", stopThr=1e-14, numItermax=100000
    )
    assert np.abs(r.plan.numpy() - P).max() < 1e-10
    T = r.plan
    assert abs(r.objective.item() - ((T * M).sum() + 0.1 * (T * T.log()).sum()).item()) < 1e-12


def test_sinkhorn_potentials_give_the_plan():
    a, b, M = problem()
    r = wot.sinkhorn(a, b, M, 0.05, tol=1e-12, max_iter=20000)
    f, g = r.potentials
    T = torch.exp((f[:, None] + g[None, :] - M) / 0.05)
    assert torch.allclose(T, r.plan, rtol=1e-10, atol=1e-15)


def test_batched_equals_looped_and_broadcast():
    a, b, M = problem(B=5)
    r = wot.sinkhorn(a, b, M, 0.1, tol=1e-12, max_iter=10000)
    assert r.value.shape == (5,) and r.plan.shape == (5, 20, 20)
    for i in range(5):
        ri = wot.sinkhorn(a[i], b[i], M, 0.1, tol=1e-12, max_iter=10000)
        assert ri.value.shape == ()
        assert abs(ri.value.item() - r.value[i].item()) < 1e-12
    rb = wot.sinkhorn(a, b[0], M, 0.1, tol=1e-12, max_iter=10000)  # 1-D b broadcast
    assert (
        abs(
            rb.value[2].item()
            - wot.sinkhorn(a[2], b[0], M, 0.1, tol=1e-12, max_iter=10000).value.item()
        )
        < 1e-12
    )


def test_each_pair_stops_on_its_own_like_a_loop():
    # Pairs needing very different numbers of iterations: each one stops when it alone reaches
    # tol (the active set), so a batch gives what a loop over the pairs gives, iterate for
    # iterate, and n_iter is the slowest pair's count.
    a, b, M = problem(K=30, B=6, seed=3)
    tol = 1e-7
    r = wot.sinkhorn(a, b, M, 0.02, tol=tol, max_iter=20000)
    singles = [wot.sinkhorn(a[i], b[i], M, 0.02, tol=tol, max_iter=20000) for i in range(6)]
    counts = [s.n_iter for s in singles]
    assert len(set(counts)) > 2  # the pairs really do need different numbers of iterations
    assert r.n_iter == max(counts) and r.converged
    for i, s in enumerate(singles):
        assert torch.allclose(r.potentials[0][i], s.potentials[0], rtol=0, atol=1e-12)
        assert torch.allclose(r.potentials[1][i], s.potentials[1], rtol=0, atol=1e-12)
    # A pair frozen early is as converged as tol says, not more: its row error is <= tol.
    row = r.plan.sum(-1)
    assert ((row - a).abs().sum(-1) <= tol).all()
    # Not converging: the warning names max_iter and the slow pairs stay unconverged.
    with pytest.warns(RuntimeWarning, match="max_iter=5"):
        r5 = wot.sinkhorn(a, b, M, 0.02, tol=tol, max_iter=5)
    assert not r5.converged and r5.n_iter == 5


def test_small_reg_and_one_hot_stay_finite_and_approach_emd():
    a, _, M = problem(K=30)
    y = torch.zeros(30, dtype=torch.float64)
    y[7] = 1.0
    exact = ot.emd2(a.numpy(), y.numpy(), M.numpy())
    r = wot.sinkhorn(a, y, M, 1e-3 * M.max().item())
    assert torch.isfinite(r.value) and torch.isfinite(r.plan).all()
    assert all(torch.isfinite(p).all() for p in r.potentials)
    assert abs(r.value.item() - exact) < 1e-9  # one-hot target: the plan is forced
    _, b, _ = problem(K=30, seed=1)
    exact_ab = ot.emd2(a.numpy(), b.numpy(), M.numpy())
    gaps = [
        abs(wot.sinkhorn(a, b, M, reg, max_iter=20000, tol=1e-10).value.item() - exact_ab)
        for reg in (0.1, 0.03, 0.01)
    ]
    assert gaps[0] > gaps[1] > gaps[2]
    r = wot.sinkhorn(a, b, M, 3e-3, max_iter=20000, tol=1e-8)
    assert r.converged and abs(r.value.item() - exact_ab) < 2e-3 * exact_ab
    with pytest.warns(RuntimeWarning, match="max_iter=200"):
        r = wot.sinkhorn(a, b, M, 1e-3, max_iter=200)
    assert torch.isfinite(r.value) and torch.isfinite(r.plan).all() and not r.converged


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_numpy_inputs(dtype):
    a, b, M = problem(dtype=dtype)
    r = wot.sinkhorn(a, b, M, 0.1, tol=1e-5 if dtype == torch.float32 else 1e-12)
    assert r.value.dtype == dtype and r.plan.dtype == dtype
    r64 = wot.sinkhorn(a.double().numpy(), b.double().numpy(), M.double().numpy(), 0.1, tol=1e-12)
    assert isinstance(r64.value, torch.Tensor) and r64.value.dtype == torch.float64
    assert abs(r.value.item() - r64.value.item()) < (1e-5 if dtype == torch.float32 else 1e-10)


def test_log_kernel_agrees_with_matmul_kernel():
    from wlearn._kernels import LogKernel, MatmulKernel, choose_kernel

    _, _, M = problem()
    g = torch.randn(4, 20, dtype=torch.float64)
    g[0, 3] = -torch.inf  # a zero-mass bin
    mm, lg = MatmulKernel(M, 0.05), LogKernel(M, 0.05)
    assert torch.allclose(mm.lse_rows(g), lg.lse_rows(g), rtol=1e-12)
    assert torch.allclose(mm.lse_cols(g), lg.lse_cols(g), rtol=1e-12)
    f = torch.randn(4, 20, dtype=torch.float64) * 0.01
    assert torch.allclose(mm.cost(f, f[:, :]), lg.cost(f, f), rtol=1e-12)
    assert isinstance(choose_kernel(M, 1e-3, torch.float64)[0], LogKernel)
    assert choose_kernel(M, 0.02, torch.float32)[1] == torch.float64  # 50 > 35: float64 products
    assert choose_kernel(M, 0.1, torch.float32)[1] == torch.float32


def unbalanced_problem(seed=0):
    a, b, M = problem(K=12, seed=seed)
    return 2.0 * a, 0.5 * b, M


def test_unbalanced_matches_pot_with_shifted_cost():
    a, b, M = unbalanced_problem()
    reg, reg_m = 0.1, 0.7
    r = wot.unbalanced_sinkhorn(a, b, M, reg, reg_m, tol=1e-13, max_iter=20000)
    P = relaxed_plan(a, b, M, reg, reg_m, stopThr=1e-14, numItermax=100000)
    assert np.abs(r.plan.numpy() - P).max() < 1e-10


def test_unbalanced_first_order_conditions_and_objective():
    a, b, M = unbalanced_problem(1)
    reg, (ra, rb) = 0.05, (0.5, 2.0)
    r = wot.unbalanced_sinkhorn(a, b, M, reg, (ra, rb), tol=1e-13, max_iter=50000)
    T = r.plan
    r1, c1 = T.sum(-1), T.sum(-2)
    # d/dT of eq. (8): M + reg (log T + 1) + ra log(T1/a) + rb log(T^T 1/b) = 0
    grad = M + reg * (T.log() + 1) + ra * (r1 / a).log()[:, None] + rb * (c1 / b).log()[None, :]
    assert grad.abs().max() < 1e-9
    kl = lambda w, z: (w * (w / z).log() - w + z).sum()  # noqa: E731
    obj = (T * M).sum() + reg * (T * T.log()).sum() + ra * kl(r1, a) + rb * kl(c1, b)
    assert abs(obj.item() - r.objective.item()) < 1e-12
    assert abs(r.value.item() - (T * M).sum().item()) < 1e-14


def test_unbalanced_approaches_balanced_as_reg_m_grows():
    a, b, M = problem(K=16)
    bal = wot.sinkhorn(a, b, M, 0.1, tol=1e-12, max_iter=10000).value.item()
    gaps = [
        abs(
            wot.unbalanced_sinkhorn(a, b, M, 0.1, rm, tol=1e-11, max_iter=100000).value.item() - bal
        )
        for rm in (1, 10, 100)
    ]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.02 * bal


def test_unbalanced_zero_mass_is_finite():
    a, b, M = unbalanced_problem()
    b = torch.zeros_like(b)
    b[3] = 1.0
    r = wot.unbalanced_sinkhorn(a, b, M, 0.01, 1.0)
    assert torch.isfinite(r.value) and torch.isfinite(r.objective)
    assert all(torch.isfinite(p).all() for p in r.potentials)
    assert (r.plan[:, [i for i in range(12) if i != 3]] == 0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(a=[-0.1, 0.6, 0.5]), "a: expected non-negative"),
        (dict(b=[np.nan, 0.5, 0.5]), "b: expected finite"),
        (dict(a=[0.5, 0.5]), r"a: expected shape \(3,\)"),
        (dict(M=np.ones((3, 2))), "M: expected a square"),
        (dict(M=-np.ones((3, 3))), "M: expected non-negative"),
        (dict(reg=0.0), "reg: expected a finite number > 0"),
        (dict(reg=-1.0), "reg: expected a finite number > 0"),
        (dict(b=[0.2, 0.2, 0.2]), "equal total mass"),
        (dict(a=np.ones((2, 3)) / 3, b=np.ones((3, 3)) / 3), "batch size 2"),
        (dict(a=[0.0, 0.0, 0.0], b=[0, 0, 0.0]), "positive total mass"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, match):
    args = dict(a=[0.2, 0.3, 0.5], b=[0.3, 0.3, 0.4], M=1 - np.eye(3), reg=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        wot.sinkhorn(args["a"], args["b"], args["M"], args["reg"])
    if "reg" not in kwargs and "equal total mass" not in match:
        with pytest.raises(ValueError, match=match):
            wot.emd(args["a"], args["b"], args["M"])


def test_unbalanced_bad_reg_m_and_type():
    with pytest.raises(ValueError, match="reg_m"):
        wot.unbalanced_sinkhorn([0.5, 0.5], [1.0, 1.0], 1 - np.eye(2), 0.1, 0.0)
    with pytest.raises(ValueError, match="reg_m: expected a number or a pair"):
        wot.unbalanced_sinkhorn([0.5, 0.5], [1.0, 1.0], 1 - np.eye(2), 0.1, (1, 2, 3))
    with pytest.raises(TypeError, match="a: expected a torch.Tensor or numpy array"):
        wot.sinkhorn("abc", [1.0], np.zeros((1, 1)), 0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    a, b, M = problem(B=3)
    r_cpu = wot.sinkhorn(a, b, M, 0.05, tol=1e-12)
    r_gpu = wot.sinkhorn(a.cuda(), b.cuda(), M.cuda(), 0.05, tol=1e-12)
    assert r_gpu.value.device.type == "cuda"
    assert torch.allclose(r_gpu.value.cpu(), r_cpu.value, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_overrelaxation_gives_the_same_solution_in_fewer_iterations(dtype):
    a, b, M = problem(K=40, B=8, seed=5, dtype=dtype)
    a[0, :10] = 0  # zero-mass bins must stay finite under overrelaxation too
    a[0] /= a[0].sum()
    tol = 1e-6 if dtype == torch.float32 else 1e-9
    plain = wot.sinkhorn(a, b, M, 0.02, tol=tol, max_iter=50000)
    fast = wot.sinkhorn(a, b, M, 0.02, tol=tol, max_iter=50000, omega=1.8)
    assert plain.converged and fast.converged
    assert fast.n_iter * 3 < plain.n_iter  # several times fewer iterations at small reg
    rtol = 1e-4 if dtype == torch.float32 else 1e-7
    assert torch.allclose(fast.value, plain.value, rtol=rtol, atol=0)
    for T, ref in (
        (fast.plan.double(), a.double()),
        (fast.plan.double().transpose(1, 2), b.double()),
    ):
        assert ((T.sum(-1) - ref).abs().sum(-1) <= 2 * tol).all()  # both marginals within tol
    assert all(torch.isfinite(p).all() for p in fast.potentials)
    ref = ot.sinkhorn2(
        a[3].double().numpy(),
        b[3].double().numpy(),
        M.double().numpy(),
        0.02,
        method="sinkhorn",
        stopThr=1e-12,
        numItermax=100000,
    )
    assert abs(fast.value[3].item() - float(ref)) < (1e-4 if dtype == torch.float32 else 1e-8)


def test_overrelaxation_safeguard_still_converges_and_bad_omega_is_named():
    a, b, M = problem(K=30, B=4, seed=1)
    r = wot.sinkhorn(a, b, M, 0.05, tol=1e-9, max_iter=20000, omega=1.99)
    ref = wot.sinkhorn(a, b, M, 0.05, tol=1e-9, max_iter=20000)
    assert r.converged and torch.allclose(r.value, ref.value, rtol=1e-7)
    for bad in (0.5, 2.0, True, "fast"):
        with pytest.raises(ValueError, match="omega: expected"):
            wot.sinkhorn(a, b, M, 0.05, omega=bad)


def test_overrelaxed_pair_that_cycles_falls_back_and_converges():
    # Lesson 02's problem (pair 6 of its ten, eps = 0.005): at omega = 1.8 its marginal error
    # settled near 0.11 and never grew tenfold, so the growth safeguard never fired and the
    # pair ran to max_iter; the patience rule sends it back to plain Sinkhorn.
    rng = np.random.default_rng(0)
    X = rng.random((50, 2))
    M = ground.euclidean(X, normalize=False, scale=True)
    rng.dirichlet(np.ones(50), size=2)  # the lesson's h and y
    A = torch.as_tensor(rng.dirichlet(np.ones(50), size=10))[6]
    B = torch.as_tensor(rng.dirichlet(np.ones(50), size=10))[6]
    plain = wot.sinkhorn(A, B, M, 0.005, max_iter=20_000, tol=1e-6)
    fast = wot.sinkhorn(A, B, M, 0.005, max_iter=20_000, tol=1e-6, omega=1.8)
    assert plain.converged and fast.converged
    assert fast.n_iter < plain.n_iter
    assert torch.allclose(fast.plan, plain.plan, atol=1e-6)
