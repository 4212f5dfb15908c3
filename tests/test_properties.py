"""Properties of the solvers and losses over generated inputs (``hypothesis``), issue 16.

What must hold for *every* input, not just the hand-picked ones of tests/test_ot.py:

- marginals: the plans of :func:`wlearn.ot.emd` and :func:`~wlearn.ot.sinkhorn` have the
  measures as marginals (to the tolerance in force);
- bounds: ``W <= <T_reg, M> <= W + reg min(H(a), H(b))`` and
  ``W - reg (H(a) + H(b)) <= objective <= W - reg max(H(a), H(b))`` between the exact cost
  ``W`` and the entropic one (from ``H(T) <= H(a) + H(b)`` for any coupling, ``H(T) >=
  max(H(a), H(b))``, and the optimality of each plan for its own problem);
- agreement with POT (``ot.emd2``, ``ot.sinkhorn2``, ``ot.unbalanced.sinkhorn_unbalanced``);
- finiteness in float32 and float64 down to ``reg = 1e-3 max(M)``, for the solvers and the
  losses, values and gradients, and float32 agreeing with float64 to what float32 resolves;
- gradients against finite differences: the hand-written backward passes of
  :class:`~wlearn.losses.SinkhornLoss` (Frogner et al. 2015, Algorithm 1: the gradient of the
  regularized objective along the simplex), :class:`~wlearn.losses.UnbalancedSinkhornLoss`,
  :class:`~wlearn.losses.SoftWassersteinLoss` and :class:`~wlearn.losses.OneHotWassersteinLoss`;
- invalid inputs refused with an error whose message starts with the argument's name.

Example counts are kept small so that the unit suite stays fast; the examples are fixed
(``derandomize``), so a failure reproduces. ``WLEARN_HYPOTHESIS=thorough`` runs 20 times more,
drawn at random, to search harder (``pytest tests/test_properties.py``).
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import ot as pot
import pytest
import torch
from _pot import relaxed_plan
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wlearn import ot as wot
from wlearn.losses import (
    OneHotWassersteinLoss,
    SinkhornLoss,
    SoftWassersteinLoss,
    UnbalancedSinkhornLoss,
)
from wlearn.ot import _tol_floor

settings.register_profile(
    "wlearn",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("wlearn"), derandomize=False)
PROFILE = os.environ.get("WLEARN_HYPOTHESIS", "wlearn")
settings.load_profile(PROFILE)
SCALE = 20 if PROFILE == "thorough" else 1


def examples(n: int):
    """``settings(max_examples=n)``, times 20 in the thorough profile."""
    return settings(max_examples=n * SCALE)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --- strategies ------------------------------------------------------------------------------
@st.composite
def problems(draw, k_max=10, zeros=True, one_hot=True, floor=0.0):
    """``(a, b, M)`` float64 NumPy: measures of mass 1 on K bins (some zero, possibly one-hot;
    every bin ``>= floor / (1 + K floor)`` with ``floor``) and a ground cost from a point
    cloud or the line, scaled by a factor 1e-3 .. 1e3."""
    K = draw(st.integers(2, k_max))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)

    def measure():
        kind = draw(st.sampled_from(["dense", "sparse", "one-hot"] if one_hot else ["dense"]))
        if kind == "one-hot":
            x = np.zeros(K)
            x[rng.integers(K)] = 1.0
            return x
        x = rng.random(K) ** draw(st.sampled_from([1.0, 4.0]))  # some bins near zero
        if kind == "sparse" and zeros:
            x[rng.random(K) < 0.4] = 0.0
            x[rng.integers(K)] += 0.5  # never all zero
        return (x / x.sum() + floor) / (1 + K * floor)

    a, b = measure(), measure()
    if draw(st.booleans()):
        pts = rng.normal(size=(K, draw(st.integers(1, 3))))
        M = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)) ** draw(st.sampled_from([1, 2]))
    else:
        M = np.abs(np.arange(K)[:, None] - np.arange(K)[None]).astype(float) ** 2
    M = M / M.max() * 10 ** draw(st.floats(-3, 3))
    return a, b, M


def reg_ratio(lo=-3.0, hi=0.0):
    """``reg / max(M)``, log-uniform in ``[10**lo, 10**hi]``."""
    return st.floats(lo, hi).map(lambda e: 10.0**e)


def entropy(x):
    x = x[x > 0]
    return float(-(x * np.log(x)).sum())


# --- marginals -------------------------------------------------------------------------------
@examples(40)
@given(problems())
def test_emd_plan_has_the_marginals_and_strong_duality(p):
    a, b, M = p
    r = wot.emd(a, b, M)
    T = r.plan.numpy()
    assert (T >= 0).all()
    assert np.abs(T.sum(1) - a).sum() <= 1e-12 and np.abs(T.sum(0) - b).sum() <= 1e-12
    f, g = (x.numpy() for x in r.potentials)
    scale = M.max()
    assert abs(f @ a + g @ b - r.value.item()) <= 1e-9 * scale  # strong duality
    assert (f[:, None] + g[None] <= M + 1e-9 * scale).all()  # dual feasibility


@examples(25)
@given(problems(), reg_ratio(-1.3, 0.0), st.sampled_from([torch.float64, torch.float32]))
def test_sinkhorn_plan_has_the_marginals_to_the_tolerance_in_force(p, ratio, dtype):
    a, b, M = (torch.as_tensor(x, dtype=dtype) for x in p)
    reg = ratio * M.max().item()
    r = wot.sinkhorn(a, b, M, reg, max_iter=20000, tol=1e-9)
    assert r.converged
    T = r.plan.double()
    eps = torch.finfo(dtype).eps
    tol = max(1e-9, _tol_floor(dtype, 1 / ratio))  # float32 may compute in float64: finer
    slack = 4 * a.shape[0] * eps  # the plan's own rounding, summed over a row
    assert (T.sum(1) - a.double()).abs().sum() <= tol + slack
    assert (T.sum(0) - b.double()).abs().sum() <= tol + slack


# --- bounds between exact and entropic transport ---------------------------------------------
@examples(30)
@given(problems(), reg_ratio(-1.5, 0.0))
def test_entropic_cost_and_objective_lie_in_their_bounds(p, ratio):
    a, b, M = p
    reg = ratio * M.max()
    W = wot.emd(a, b, M).value.item()
    r = wot.sinkhorn(a, b, M, reg, max_iter=50000, tol=1e-11)
    assert r.converged
    Ha, Hb = entropy(a), entropy(b)
    v, obj = r.value.item(), r.objective.item()
    slack = 1e-8 * M.max()  # the marginal error allowed by tol, times the largest cost
    assert W - slack <= v <= W + reg * min(Ha, Hb) + slack
    assert W - reg * (Ha + Hb) - slack <= obj <= W - reg * max(Ha, Hb) + slack


@examples(20)
@given(problems(k_max=8), st.floats(-250, 250))
def test_emd_is_homogeneous_in_the_mass(p, e):
    a, b, M = p
    mass = 10.0**e
    ref, r = wot.emd(a, b, M), wot.emd(a * mass, b * mass, M)
    assert r.value.item() == pytest.approx(mass * ref.value.item(), rel=1e-9, abs=1e-300)
    T = r.plan / mass  # an optimal plan (not always ref's: optimal plans need not be unique)
    assert (
        np.abs(T.sum(1).numpy() - a).sum() <= 1e-12 and np.abs(T.sum(0).numpy() - b).sum() <= 1e-12
    )
    assert (T * torch.as_tensor(M)).sum().item() == pytest.approx(ref.value.item(), rel=1e-9)


# --- agreement with POT ----------------------------------------------------------------------
@examples(30)
@given(problems())
def test_emd_agrees_with_pot(p):
    a, b, M = p
    assert wot.emd(a, b, M).value.item() == pytest.approx(
        pot.emd2(a, b, M), rel=1e-10, abs=1e-12 * M.max()
    )


@examples(20)
@given(problems(k_max=8), reg_ratio(-1.3, 0.0))
def test_sinkhorn_agrees_with_pot(p, ratio):
    a, b, M = p
    reg = ratio * M.max()
    r = wot.sinkhorn(a, b, M, reg, max_iter=50000, tol=1e-12)
    ref = _quiet(
        pot.sinkhorn2, a, b, M, reg, method="sinkhorn_log", stopThr=1e-13, numItermax=100000
    )
    assert r.value.item() == pytest.approx(float(ref), rel=1e-7, abs=1e-9 * M.max())


@examples(20)
@given(problems(k_max=6, one_hot=False), reg_ratio(-1.0, 0.0), st.floats(-1, 1))
def test_unbalanced_sinkhorn_agrees_with_pot(p, ratio, e):
    a, b, M = p
    M = M / M.max()  # POT's plain unbalanced iteration needs exp(-M/reg) well away from 0
    a, b = 2 * a, 0.5 * b  # unequal masses
    reg, reg_m = ratio, 10.0**e
    r = wot.unbalanced_sinkhorn(a, b, M, reg, reg_m, max_iter=50000, tol=1e-13)
    P = relaxed_plan(a, b, M, reg, reg_m, stopThr=1e-15, numItermax=200000)
    assert np.abs(r.plan.numpy() - P).max() <= 1e-8


# --- finiteness in float32 and float64 down to reg = 1e-3 max(M) -----------------------------
@examples(30)
@given(problems(), reg_ratio(-3.0, 0.0), st.sampled_from([torch.float32, torch.float64]))
def test_solvers_stay_finite_down_to_reg_1e_3_max_m(p, ratio, dtype):
    a, b, M = (torch.as_tensor(x, dtype=dtype) for x in p)
    reg = ratio * M.max().item()
    for r in (
        _quiet(wot.sinkhorn, a, b, M, reg, max_iter=50),
        _quiet(wot.unbalanced_sinkhorn, a, b, M, reg, reg * 10, max_iter=50),
    ):
        assert r.value.dtype == dtype
        for t in (r.value, r.objective, *r.potentials, r.plan):
            assert torch.isfinite(t).all()


@examples(30)
@given(problems(), reg_ratio(-3.0, 0.0))
def test_float32_agrees_with_float64_to_what_float32_resolves(p, ratio):
    a, b, M = p
    b = np.eye(len(b))[np.argmax(b)]  # one-hot targets converge in a few iterations
    reg = ratio * M.max()
    r64 = wot.sinkhorn(a, b, M, reg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and float32 converges, without a warning
        r32 = wot.sinkhorn(*(np.float32(x) for x in (a, b, M)), np.float32(reg))
    assert r32.converged and r32.value.dtype == torch.float32
    # marginals within the float32 floor at this max(M)/reg: the cost within floor * max(M)
    floor = _tol_floor(torch.float32, 1 / ratio) if ratio < 1 / 35 else 1e-5
    assert abs(r32.value.item() - r64.value.item()) <= 4 * floor * M.max() + 1e-5 * r64.value


@examples(25)
@given(problems(k_max=8), reg_ratio(-3.0, 0.0), st.sampled_from([torch.float32, torch.float64]))
def test_losses_stay_finite_down_to_reg_1e_3_max_m(p, ratio, dtype):
    a, b, M = p
    reg = ratio * M.max()
    K = len(a)
    z = torch.tensor(np.log(np.maximum(a, 1e-30)), dtype=dtype)[None].repeat(2, 1)
    z = (z + torch.linspace(0, 1, K, dtype=dtype)).requires_grad_()  # (2, K) logits
    y = torch.as_tensor(np.stack([b, np.eye(K)[np.argmax(b)]]), dtype=dtype)
    with warnings.catch_warnings():  # 50 iterations: not always converged, always finite
        warnings.simplefilter("ignore")
        losses = (
            SinkhornLoss(M, reg, max_iter=50)(torch.softmax(z, 1), y),
            UnbalancedSinkhornLoss(M, reg, 10 * reg, max_iter=50)(torch.exp(z.clamp(max=30)), y),
            OneHotWassersteinLoss(M)(z, y.argmax(1)),
            SoftWassersteinLoss(M, reg, max_iter=50)(z[:, :, None], y[:, :, None]),
        )
    for loss in losses:
        (grad,) = torch.autograd.grad(loss, z, retain_graph=True)
        assert loss.dtype == dtype and torch.isfinite(loss) and torch.isfinite(grad).all()


# --- gradients against finite differences ----------------------------------------------------
def _tangent(rng, K):
    d = rng.normal(size=K)
    return torch.as_tensor(d - d.mean())  # sums to zero: stays on the simplex


@examples(15)
@given(problems(k_max=6, one_hot=False, floor=0.01), reg_ratio(-1.0, 0.0), st.integers(0, 99))
def test_sinkhorn_loss_gradient_is_the_objective_gradient_along_the_simplex(p, ratio, seed):
    a, b, M = p
    M = M / M.max()
    reg = ratio
    h = torch.as_tensor(a).requires_grad_()
    SinkhornLoss(M, reg, max_iter=100000, tol=1e-13, reduction="sum")(
        h[None], torch.tensor(b)[None]
    ).backward()
    d, eps = _tangent(np.random.default_rng(seed), len(a)), 1e-6  # every bin >= 1e-3

    def obj(t):
        return wot.sinkhorn(a + t * d.numpy(), b, M, reg, tol=1e-14, max_iter=200000).objective

    assume(((torch.as_tensor(a) - eps * d.abs()) > 0).all())
    fd = (obj(eps) - obj(-eps)).item() / (2 * eps)
    assert fd == pytest.approx((h.grad @ d).item(), abs=1e-5)


@examples(15)
@given(problems(k_max=6, one_hot=False, floor=0.01), reg_ratio(-1.0, 0.0), st.floats(-1, 1))
def test_unbalanced_loss_gradient_matches_finite_differences(p, ratio, e):
    a, b, M = p
    M = M / M.max()
    reg, reg_m = ratio, 10.0**e
    loss = UnbalancedSinkhornLoss(M, reg, reg_m, max_iter=100000, tol=1e-14, reduction="sum")
    h = torch.as_tensor(2 * a)[None].requires_grad_()
    y = torch.as_tensor(b)[None]
    loss(h, y).backward()
    d, eps = torch.as_tensor(np.random.default_rng(0).normal(size=len(a))), 1e-6
    assume(((h.detach() - eps * d.abs()) > 0).all())
    with torch.no_grad():
        fd = (loss(h + eps * d, y) - loss(h - eps * d, y)).item() / (2 * eps)
    assert fd == pytest.approx((h.grad[0] @ d).item(), rel=1e-4, abs=1e-5)


@examples(15)
@given(st.integers(2, 6), st.integers(1, 3), st.integers(0, 2**31 - 1), st.booleans())
def test_one_hot_loss_passes_gradcheck(C, P, seed, ignore):
    g = torch.Generator().manual_seed(seed)
    D = torch.rand(C, C, generator=g, dtype=torch.float64)
    z = torch.randn(3, C, P, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, C, (3, P), generator=g)
    if ignore:
        t[0] = -100
    for reduction in ("mean", "sum", "none"):
        loss = OneHotWassersteinLoss(D, reduction=reduction)
        assert torch.autograd.gradcheck(lambda z, f=loss: f(z, t), (z,), eps=1e-6, atol=1e-7)


@examples(10)
@given(problems(k_max=5, one_hot=False, floor=0.01), reg_ratio(-1.0, 0.0), st.integers(0, 99))
def test_soft_wasserstein_gradient_is_the_objective_gradient_through_softmax(p, ratio, seed):
    a, b, M = p
    M = M / M.max()
    reg, C = ratio, len(a)
    loss = SoftWassersteinLoss(M, reg, max_iter=100000, tol=1e-13, reduction="sum")
    z = torch.as_tensor(np.log(a))[None, :, None].requires_grad_()  # (1, C, 1)
    q = torch.as_tensor(b)[None, :, None]
    loss(z, q).backward()
    d, eps = torch.as_tensor(np.random.default_rng(seed).normal(size=C)), 1e-6

    def obj(t):
        s = torch.softmax(z.detach()[0, :, 0] + t * d, 0)
        return wot.sinkhorn(s, b, M, reg, tol=1e-14, max_iter=200000).objective

    fd = (obj(eps) - obj(-eps)).item() / (2 * eps)
    assert fd == pytest.approx((z.grad[0, :, 0] @ d).item(), abs=1e-5)


# --- invalid inputs are refused, naming the argument -----------------------------------------
BAD_NUMBERS = st.one_of(
    st.floats(max_value=0.0, allow_nan=False),
    st.just(float("nan")),
    st.just(float("inf")),
    st.text(max_size=4),
    st.booleans(),
    st.complex_numbers(allow_nan=False, allow_infinity=False).filter(lambda c: c.imag != 0),
    st.none(),
)
BAD_COUNTS = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=4),
    st.none(),
)
BAD_TOLS = st.one_of(
    st.floats(max_value=-1e-300, allow_nan=False),
    st.just(float("nan")),
    st.just(float("inf")),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)


@st.composite
def bad_measure(draw, K):
    """A measure of K bins that is not one: a negative, NaN or inf entry, or a wrong shape."""
    x = np.full(K, 1.0 / K)
    kind = draw(st.sampled_from(["negative", "nan", "inf", "shape", "complex", "text"]))
    if kind == "shape":
        return np.full(draw(st.sampled_from([K + 1, 1, 0])), 1.0)
    if kind == "complex":
        return x.astype(complex) * 1j
    if kind == "text":
        return ["x"] * K
    x[draw(st.integers(0, K - 1))] = {"negative": -0.5, "nan": np.nan, "inf": np.inf}[kind]
    return x


def _refused(name, fn, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as e:
        _quiet(fn, *args, **kwargs)
    assert str(e.value).startswith(f"{name}:"), str(e.value)
    return str(e.value)


SOLVERS = {
    "emd": lambda a, b, M, **kw: wot.emd(a, b, M),
    "sinkhorn": lambda a, b, M, reg=0.1, **kw: wot.sinkhorn(a, b, M, reg, **kw),
    "unbalanced_sinkhorn": lambda a, b, M, reg=0.1, **kw: wot.unbalanced_sinkhorn(
        a, b, M, reg, 1.0, **kw
    ),
}
GOOD = (np.full(3, 1 / 3), np.full(3, 1 / 3), 1 - np.eye(3))


@examples(40)
@given(st.sampled_from(["sinkhorn", "unbalanced_sinkhorn"]), st.data())
def test_bad_settings_are_refused_naming_the_argument(solver, data):
    name = data.draw(st.sampled_from(["reg", "max_iter", "tol"]))
    value = data.draw({"reg": BAD_NUMBERS, "max_iter": BAD_COUNTS, "tol": BAD_TOLS}[name])
    msg = _refused(name, SOLVERS[solver], *GOOD, **{name: value})
    assert "expected" in msg and "got" in msg
    kw = {"reg": value} if name == "reg" else {"reg": 0.1, name: value}
    _refused(name, SinkhornLoss, GOOD[2], **kw)  # and the loss's settings alike


@examples(40)
@given(st.sampled_from(list(SOLVERS)), st.sampled_from(["a", "b", "M"]), st.data())
def test_bad_measures_and_costs_are_refused_naming_the_argument(solver, name, data):
    args = dict(zip("abM", GOOD, strict=True))
    if name == "M":
        kind = data.draw(st.sampled_from(["negative", "nan", "rect", "empty", "complex"]))
        M = 1 - np.eye(3)
        if kind == "negative":
            M[0, 1] = -1
        elif kind == "nan":
            M[1, 2] = np.nan
        elif kind == "rect":
            M = M[:, :2]
        elif kind == "empty":
            M = np.zeros((0, 0))
        else:
            M = M * 1j
        args["M"] = M
    else:
        args[name] = data.draw(bad_measure(3))
    _refused(name, SOLVERS[solver], args["a"], args["b"], args["M"])


@examples(20)
@given(problems(k_max=6), st.sampled_from(["negative", "nan", "not normalized", "shape"]))
def test_sinkhorn_loss_refuses_bad_inputs_naming_them(p, kind):
    a, b, M = p
    h, y = torch.as_tensor(a)[None].clone(), torch.as_tensor(b)[None]
    if kind == "negative":
        h[0, 0] = -0.1
    elif kind == "nan":
        h[0, -1] = math.nan
    elif kind == "not normalized":
        h = h * 2
    else:
        h = h[:, :-1]
    _refused("input", SinkhornLoss(M, 0.1 * M.max()), h, y)
