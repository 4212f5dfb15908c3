"""Careless and hostile use of the solvers, the losses and the training loops (issue 16).

Each test is one case that gave a wrong answer, a NaN or a misleading error before, and now
gives the right answer or an error naming the argument, the expected and the received value.
The data scripts' faults are in tests/test_download.py and tests/test_prepare_cityscapes.py;
properties over generated inputs in tests/test_properties.py.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import numpy as np
import ot as pot
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wlearn import ground
from wlearn import ot as wot
from wlearn.losses import (
    ImportanceAwareLoss,
    MultiLabelKLLoss,
    OneHotWassersteinLoss,
    SinkhornLoss,
    SoftCrossEntropyLoss,
    SoftWassersteinLoss,
    SquaredEMDLoss,
    UnbalancedSinkhornLoss,
    WassersteinKLLoss,
)
from wlearn.models import LinearSoftmax
from wlearn.segment import train_one_epoch
from wlearn.train import fit

REPO = Path(__file__).resolve().parents[1]
K = 4
M = ground.line(K, 2)  # float64, max 1
M2 = [[0, 0.9], [0.9, 0]]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --- 1. dtype contagion: integer and bool inputs are promoted, never truncated -------------
def test_integer_measure_does_not_truncate_the_cost():
    r = wot.emd(torch.tensor([0, 1]), torch.tensor([1.0, 0.0]), M2)
    assert r.value.dtype == torch.float32 and r.value.item() == pytest.approx(0.9, rel=1e-6)
    r = wot.sinkhorn(torch.tensor([0, 1]), torch.tensor([1.0, 0.0]), M2, 0.05)
    assert r.value.item() == pytest.approx(0.9, rel=1e-5)


def test_bool_measure_is_promoted_in_unbalanced_sinkhorn():
    b = torch.tensor([1.0, 1.0])
    got = wot.unbalanced_sinkhorn(torch.tensor([True, False]), b, M2, 0.1, 1.0).value
    ref = wot.unbalanced_sinkhorn(torch.tensor([1.0, 0.0]), b, M2, 0.1, 1.0).value
    assert got.dtype == torch.float32 and torch.allclose(got, ref)


def test_integer_cost_does_not_truncate_numpy_measures():
    a, b = np.array([0.3, 0.7]), np.array([0.5, 0.5])
    got = wot.emd(a, b, torch.tensor([[0, 1], [1, 0]])).value
    assert got.dtype == torch.float64 and got.item() == pytest.approx(0.2, abs=1e-12)
    got = wot.sinkhorn(a, b, torch.tensor([[0, 1], [1, 0]]), 0.05).value
    assert got.item() == pytest.approx(0.2, abs=1e-6)


# --- 12. float32 in, float32 out (NumPy too); the measures' dtype wins over M's -------------
@pytest.mark.parametrize("solver", ["emd", "sinkhorn", "unbalanced_sinkhorn"])
def test_numpy_float32_returns_float32(solver):
    a = np.array([0.2, 0.3, 0.5, 0.0], dtype=np.float32)
    b = np.array([0.1, 0.1, 0.4, 0.4], dtype=np.float32)
    args = {"emd": (), "sinkhorn": (0.1,), "unbalanced_sinkhorn": (0.1, 1.0)}[solver]
    r = getattr(wot, solver)(a, b, M.numpy().astype(np.float32), *args)
    assert r.value.dtype == torch.float32 and r.potentials[0].dtype == torch.float32
    r64 = getattr(wot, solver)(a.astype(np.float64), b.astype(np.float64), M.numpy(), *args)
    assert r.value.item() == pytest.approx(r64.value.item(), rel=1e-4, abs=1e-6)


# --- 6. emd at any total mass, and non-contiguous inputs ------------------------------------
@pytest.mark.parametrize("mass", [1e-250, 1e-200, 1e-9, 1e9, 1e12, 1e100])
def test_emd_scales_with_mass(mass):
    a = np.array([0.1, 0.2, 0.3, 0.4])
    b = np.array([0.4, 0.3, 0.2, 0.1])
    ref = wot.emd(a, b, M)
    r = wot.emd(a * mass, b * mass, M)
    assert r.value.item() == pytest.approx(mass * ref.value.item(), rel=1e-12)
    assert torch.allclose(r.plan.sum(1) / mass, torch.as_tensor(a), rtol=1e-12, atol=0)
    assert torch.allclose(r.plan.sum(0) / mass, torch.as_tensor(b), rtol=1e-12, atol=0)
    f, g = r.potentials  # the dual of the normalized problem is still optimal
    assert (f @ torch.as_tensor(a) + g @ torch.as_tensor(b)).item() == pytest.approx(
        ref.value.item(), rel=1e-10
    )


def test_emd_accepts_non_contiguous_inputs():
    rng = np.random.default_rng(0)
    A = rng.random((K, 3))
    A /= A.sum(0)
    Mn = M.numpy()
    ref = pot.emd2(np.ascontiguousarray(A[:, 0]), np.ascontiguousarray(A[::-1, 1]), Mn.T.copy())
    got = wot.emd(A[:, 0], A[::-1, 1], Mn.T).value.item()  # column slice, reversed, transposed
    assert got == pytest.approx(ref, abs=1e-12)
    At = torch.as_tensor(A)
    assert wot.emd(At[:, 0], At[:, 1], M.T).value.item() == pytest.approx(
        pot.emd2(A[:, 0].copy(), A[:, 1].copy(), Mn.T.copy()), abs=1e-12
    )


# --- 7. bad max_iter, reg, tol: errors naming the argument ---------------------------------
BAD = [
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(max_iter=-1), ValueError, "max_iter"),
    (dict(max_iter=2.5), TypeError, "max_iter"),
    (dict(max_iter=True), TypeError, "max_iter"),
    (dict(max_iter="10"), TypeError, "max_iter"),
    (dict(reg="0.1"), TypeError, "reg"),
    (dict(reg=True), TypeError, "reg"),
    (dict(reg=1j), TypeError, "reg"),
    (dict(reg=float("nan")), ValueError, "reg"),
    (dict(tol=float("nan")), ValueError, "tol"),
    (dict(tol=-1e-9), ValueError, "tol"),
    (dict(tol="1e-9"), TypeError, "tol"),
]


@pytest.mark.parametrize("kwargs, exc, name", BAD)
@pytest.mark.parametrize("solver", ["sinkhorn", "unbalanced_sinkhorn"])
def test_bad_solver_settings_name_the_argument(solver, kwargs, exc, name):
    args = dict(reg=0.1)
    args.update(kwargs)
    reg = args.pop("reg")
    extra = (1.0,) if solver == "unbalanced_sinkhorn" else ()
    with pytest.raises(exc, match=rf"^{name}: expected .*, got "):
        getattr(wot, solver)([0.5, 0.5], [0.5, 0.5], M2, reg, *extra, **args)


@pytest.mark.parametrize("kwargs, exc, name", [c for c in BAD if c[2] != "tol" or "nan" in str(c)])
def test_bad_loss_settings_name_the_argument(kwargs, exc, name):
    args = dict(reg=0.1)
    args.update(kwargs)
    with pytest.raises(exc, match=rf"^{name}: expected"):
        SinkhornLoss(M, args.pop("reg"), **args)


def test_numpy_and_tensor_numbers_are_accepted_as_settings():
    r = wot.sinkhorn([0.5, 0.5], [0.5, 0.5], M2, np.float32(0.1), max_iter=np.int64(50))
    assert r.n_iter <= 50
    assert wot.sinkhorn([0.5, 0.5], [0.5, 0.5], M2, torch.tensor(0.1), tol=np.float64(0)).converged


# --- 8. float32 at small reg: the stopping floor follows max(M)/reg -------------------------
def _one_hot_batch(dtype=torch.float32, B=8, K=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.softmax(torch.randn(B, K, generator=g), 1).to(dtype)
    b = F.one_hot(torch.randint(0, K, (B,), generator=g), K).to(dtype)
    return a, b, ground.line(K, 2).to(dtype)


def test_float32_one_hot_converges_at_reg_1e_3_max_m():
    a, b, Mk = _one_hot_batch()
    reg = 1e-3 * Mk.max().item()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = wot.sinkhorn(a, b, Mk, reg)
        loss = SinkhornLoss(Mk, reg)(a, b)
    assert r.converged and r.n_iter < 1000 and torch.isfinite(loss)
    # the answer is what float64 gives, to float32's resolution at this max(M)/reg
    r64 = wot.sinkhorn(a.double(), b.double(), Mk.double(), reg)
    assert torch.allclose(r.value.double(), r64.value, rtol=1e-3, atol=1e-4)


def test_not_converged_warning_says_what_would_help():
    g = torch.Generator().manual_seed(1)
    a, b = (torch.softmax(2 * torch.randn(4, 10, generator=g), 1) for _ in range(2))
    Mk = ground.line(10, 2)
    reg = 1e-3 * Mk.max().item()
    with pytest.warns(RuntimeWarning, match=r"increase max_iter to about [\d,]+") as rec:
        r = wot.sinkhorn(a, b, Mk, reg, max_iter=300)
    assert not r.converged
    need = int(re.search(r"about ([\d,]+)", str(rec[0].message)).group(1).replace(",", ""))
    assert _quiet(wot.sinkhorn, a, b, Mk, reg, max_iter=2 * need).converged  # it was right
    # an error that no longer falls: more iterations are not suggested, reg and float64 are
    tip = wot._advice(100, 1e-5, 1.05e-5, 1e-6, torch.float32, 0.01)
    assert "will not help" in tip and "reg" in tip and "float64" in tip
    assert "max_iter" not in tip


# --- 4 and 10. empty and all-ignored batches: as torch.nn.CrossEntropyLoss -----------------
def _loss_cases():
    soft = torch.softmax(torch.randn(2, K, 3, 3), 1)
    void = torch.full((2, 3, 3), 255)
    p0, t0 = torch.zeros(0, K), torch.zeros(0, K)
    return {
        "OneHot all ignored": (
            lambda red: OneHotWassersteinLoss(M, ignore_index=255, reduction=red),
            torch.randn(2, K, 3, 3),
            lambda z: (void,),
            {},
        ),
        "OneHot N=0": (
            lambda red: OneHotWassersteinLoss(M, reduction=red),
            torch.randn(0, K),
            lambda z: (torch.zeros(0, dtype=torch.long),),
            {},
        ),
        "OneHot empty image": (
            lambda red: OneHotWassersteinLoss(M, reduction=red),
            torch.randn(2, K, 0, 3),
            lambda z: (torch.zeros(2, 0, 3, dtype=torch.long),),
            {},
        ),
        "SquaredEMD N=0": (
            lambda red: SquaredEMDLoss(reduction=red),
            torch.randn(0, K),
            lambda z: (torch.zeros(0, dtype=torch.long),),
            {},
        ),
        "Importance all ignored": (
            lambda red: ImportanceAwareLoss("camvid", reduction=red),
            torch.randn(2, 11, 3, 3),
            lambda z: (void,),
            {},
        ),
        "SoftWasserstein all ignored": (
            lambda red: SoftWassersteinLoss(M, 0.1, ignore_index=255, reduction=red),
            torch.randn(2, K, 3, 3),
            lambda z: (soft,),
            {"labels": void},
        ),
        "SoftCE all masked": (
            lambda red: SoftCrossEntropyLoss(reduction=red),
            torch.randn(2, K, 3, 3),
            lambda z: (soft,),
            {"mask": torch.zeros(2, 3, 3, dtype=torch.bool)},
        ),
        "Sinkhorn B=0": (lambda red: SinkhornLoss(M, 0.1, reduction=red), p0, lambda z: (t0,), {}),
        "Unbalanced B=0": (
            lambda red: UnbalancedSinkhornLoss(M, 0.1, 1.0, reduction=red),
            p0,
            lambda z: (t0,),
            {},
        ),
        "WassersteinKL B=0": (
            lambda red: WassersteinKLLoss(M, 0.1, 1.0, reduction=red),
            p0,
            lambda z: (t0,),
            {},
        ),
        "WassersteinKL unbalanced B=0": (
            lambda red: WassersteinKLLoss(M, 0.1, 1.0, unbalanced=True, reduction=red),
            p0,
            lambda z: (t0,),
            {},
        ),
        "MultiLabelKL B=0": (lambda red: MultiLabelKLLoss(reduction=red), p0, lambda z: (t0,), {}),
    }


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", list(_loss_cases()))
def test_no_counted_position_gives_what_cross_entropy_gives(case, reduction):
    make, z, target, kw = _loss_cases()[case]
    z = z.clone().requires_grad_()
    loss = make(reduction)(z, *target(z), **kw)
    ref = F.cross_entropy(
        torch.zeros(2, 3, requires_grad=True), torch.full((2,), -100), reduction=reduction
    )
    if reduction == "mean":  # 0/0, as cross-entropy
        assert loss.shape == () and torch.isnan(loss) and torch.isnan(ref)
    elif reduction == "sum":
        assert loss.shape == () and loss.item() == 0 == ref.item()
    else:
        assert loss.shape == (z.shape[0],) + tuple(z.shape[2:]) and (loss == 0).all()
    loss.sum().backward()
    assert z.grad is not None and z.grad.shape == z.shape
    assert torch.isfinite(z.grad).all() and (z.grad == 0).all()


def test_all_ignored_crop_leaves_the_weights_unchanged_after_a_step():
    model = nn.Conv2d(3, K, 1)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = OneHotWassersteinLoss(M, ignore_index=255)(
        model(torch.randn(2, 3, 4, 4)), torch.full((2, 4, 4), 255)
    )
    loss.backward()
    opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


# --- 10. solvers on empty batches, complex inputs, a value used as a loss -------------------
@pytest.mark.parametrize("solver", ["emd", "sinkhorn", "unbalanced_sinkhorn"])
def test_solvers_on_an_empty_batch_and_zero_bins(solver):
    args = {"emd": (), "sinkhorn": (0.1,), "unbalanced_sinkhorn": (0.1, 1.0)}[solver]
    r = getattr(wot, solver)(torch.zeros(0, K), torch.zeros(0, K), M, *args)
    assert r.value.shape == (0,) and r.plan.shape == (0, K, K)
    assert r.potentials[0].shape == (0, K) == r.potentials[1].shape
    with pytest.raises(ValueError, match=r"^M: expected a square \(K, K\) matrix with K >= 1"):
        getattr(wot, solver)(torch.zeros(0), torch.zeros(0), torch.zeros(0, 0), *args)


@pytest.mark.parametrize("name", ["a", "b", "M"])
def test_complex_inputs_are_refused_naming_the_argument(name):
    args = dict(a=torch.tensor([0.5, 0.5]), b=torch.tensor([0.5, 0.5]), M=torch.tensor(M2))
    args[name] = args[name].to(torch.complex64)
    for solver, extra in ((wot.emd, ()), (wot.sinkhorn, (0.1,))):
        with pytest.raises(TypeError, match=rf"^{name}: expected real numbers, got dtype"):
            solver(args["a"], args["b"], args["M"], *extra)
    with pytest.raises(TypeError, match=r"^a: expected real numbers"):
        wot.sinkhorn(np.array([0.5, 0.5j]), [0.5, 0.5], M2, 0.1)


def test_complex_inputs_to_the_losses_are_refused():
    z = torch.randn(3, K, dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"^input: expected a real floating tensor"):
        SinkhornLoss(M, 0.1)(z, torch.eye(K)[:3])
    with pytest.raises(TypeError, match=r"^target: expected real numbers"):
        SinkhornLoss(M, 0.1)(torch.softmax(z.real, 1), torch.eye(K)[:3].to(z.dtype))
    with pytest.raises(TypeError, match=r"^logits: expected a floating tensor"):
        OneHotWassersteinLoss(M)(z, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match=r"^M: expected real numbers"):
        SinkhornLoss(M.to(torch.complex128), 0.1)


def test_integer_input_to_sinkhorn_loss_is_refused_and_integer_target_promoted():
    p = torch.softmax(torch.randn(3, K, dtype=torch.float64), 1)
    with pytest.raises(TypeError, match=r"^input: expected a real floating tensor, got dtype"):
        SinkhornLoss(M, 0.1)(torch.eye(K, dtype=torch.long)[:3], p)
    y = torch.tensor([0, 2, 3])
    got = SinkhornLoss(M, 0.1)(p, F.one_hot(y, K))  # int64 one-hot rows: promoted, not M cast
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(SinkhornLoss(M, 0.1)(p, F.one_hot(y, K).double()).item())


@pytest.mark.parametrize(
    "solver, args, loss",
    [
        (wot.sinkhorn, (0.1,), "SinkhornLoss"),
        (wot.unbalanced_sinkhorn, (0.1, 1.0), "UnbalancedSinkhornLoss"),
        (wot.emd, (), "OneHotWassersteinLoss"),
    ],
)
def test_solver_value_used_as_a_loss_names_the_loss_to_use(solver, args, loss):
    z = torch.randn(K, requires_grad=True)
    r = solver(torch.softmax(z, 0), torch.eye(K)[1], M, *args)
    assert r.value.requires_grad
    with pytest.raises(RuntimeError, match=rf"carries no gradient.*wlearn\.losses\.{loss}"):
        (r.value + z.sum()).backward()  # silent before: z got the gradient of z.sum() only
    with torch.no_grad():  # no graph, nothing to guard
        assert not solver(torch.softmax(z, 0), torch.eye(K)[1], M, *args).value.requires_grad


# --- 10. WassersteinKLLoss(unbalanced=True): an overflow of exp is named, not blamed on lr --
def test_unbalanced_kl_loss_names_the_exp_overflow():
    z = torch.tensor([[100.0, 0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"^input: expected logits whose exp fits in") as e:
        WassersteinKLLoss(M, 0.1, 1.0, unbalanced=True)(z, torch.tensor([[1.0, 0, 0, 1]]))
    assert "largest logit of 100" in str(e.value) and "lr" not in str(e.value)
    with pytest.raises(ValueError, match=r"^input: expected finite values"):
        MultiLabelKLLoss(unbalanced=True)(z * float("nan"), torch.tensor([[1.0, 0, 0, 1]]))


# --- 5, 10, 12. fit: checked after the step too; clear errors; NumPy numbers ----------------
def _blobs(n=60, k=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(k).repeat(n // k)
    return torch.randn(len(y), 2, generator=g) + 3 * torch.stack([y, -y], 1).float(), y


def test_fit_stops_when_the_last_step_breaks_the_weights():
    X, y = _blobs()
    model = LinearSoftmax(2, 3)
    with pytest.raises(FloatingPointError, match=r"optimizer step .* made \d+ weights NaN/inf"):
        fit(
            model,
            lambda z, t: (z * 1e30).sum(),  # a finite loss whose one step overflows float32
            X,
            y,
            n_epochs=1,
            lr=1e10,
            batch_size=len(y),  # one step: before, only the loss before a step was checked
            optimizer="sgd",
            progress=False,
        )


def test_fit_stops_before_a_step_with_a_nan_gradient_and_keeps_the_weights():
    X, y = _blobs()
    model = LinearSoftmax(2, 3)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(
        FloatingPointError, match="gradient became NaN/inf .* weights are unchanged"
    ):
        fit(
            model,
            lambda z, t: torch.sqrt((z * 0).sum()),  # value 0, gradient inf * 0 = NaN
            X,
            y,
            n_epochs=1,
            lr=0.1,
            batch_size=len(y),
            progress=False,
        )
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_fit_with_reduction_none_says_use_a_scalar_loss():
    X, y = _blobs()
    with pytest.raises(ValueError, match=r"^loss_fn: expected a scalar loss, got \(20,\).*'mean'"):
        fit(
            LinearSoftmax(2, 3),
            nn.CrossEntropyLoss(reduction="none"),
            X,
            y,
            n_epochs=1,
            lr=0.1,
            batch_size=20,
            progress=False,
        )


def test_fit_accepts_numpy_numbers():
    X, y = _blobs()
    hist = fit(
        LinearSoftmax(2, 3),
        nn.CrossEntropyLoss(),
        X,
        y,
        n_epochs=np.int64(2),
        lr=np.float32(0.05),
        batch_size=np.int64(16),
        progress=False,
    )
    assert len(hist.train_loss) == 2


def test_fit_names_nan_inputs_instead_of_lr():
    X, y = _blobs()
    X[[3, 7]] = float("nan")
    with pytest.raises(ValueError, match=r"^X: expected finite values, got NaN/inf in 2 rows") as e:
        fit(LinearSoftmax(2, 3), nn.CrossEntropyLoss(), X, y, n_epochs=1, lr=0.1, batch_size=8)
    assert "[3, 7]" in str(e.value) and "lr" not in str(e.value)


def test_fit_blames_the_loss_not_lr_when_outputs_are_finite():
    X, y = _blobs()
    with pytest.raises(
        FloatingPointError, match=r"for finite model outputs .*: the loss itself"
    ) as e:
        fit(
            LinearSoftmax(2, 3),
            lambda z, t: z.sum() * float("nan"),
            X,
            y,
            n_epochs=1,
            lr=0.1,
            batch_size=8,
            progress=False,
        )
    assert "lower lr" not in str(e.value)


def test_fit_warns_when_the_loss_diverges():
    X, y = _blobs()
    torch.manual_seed(0)
    with pytest.warns(RuntimeWarning, match=r"fit: the training loss grew .* lower lr"):
        hist = fit(
            LinearSoftmax(2, 3),
            lambda z, t: z.pow(2).mean(),  # SGD at this lr multiplies it by ~70 an epoch
            X,
            y,
            n_epochs=7,
            lr=0.5,
            batch_size=len(y),
            optimizer="sgd",
            progress=False,
        )
    assert 1e12 > hist.train_loss[-1] > 1e6 * hist.train_loss[0]


# --- 5, 10. segmentation: all-void crops are skipped, broken weights are caught --------------
def _crops(void_first: bool):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 2, 3, 8, 8, generator=g)
    targets = torch.randint(0, K, (2, 2, 8, 8), generator=g)
    if void_first:
        targets[0] = 255
    return list(zip(images, targets, strict=True))


def test_train_one_epoch_skips_an_all_void_crop():
    torch.manual_seed(0)
    model = nn.Conv2d(3, K, 1)
    loss_fn = OneHotWassersteinLoss(M, ignore_index=255)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = train_one_epoch(model, _crops(True), loss_fn, opt, progress=False)
    assert np.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # a loader of void crops only: no step at all
    before = [p.detach().clone() for p in model.parameters()]
    train_one_epoch(model, _crops(True)[:1], loss_fn, opt, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_train_one_epoch_catches_weights_broken_by_the_step():
    model = nn.Conv2d(3, K, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e30)
    ce = nn.CrossEntropyLoss(ignore_index=255)
    with pytest.raises(FloatingPointError, match=r"step 1 .* made weights NaN/inf"):
        # one step only: before, its broken weights were returned as if fine
        train_one_epoch(model, _crops(False)[:1], lambda z, t: ce(z, t) * 1e30, opt, progress=False)


def test_train_one_epoch_names_nan_images():
    model = nn.Conv2d(3, K, 1)
    crops = _crops(False)
    crops[0][0][0, 0, 0, 0] = float("nan")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="input images hold NaN/inf") as e:
        train_one_epoch(model, crops, nn.CrossEntropyLoss(), opt, progress=False)
    assert "lr" not in str(e.value).split(":", 2)[-1]


# --- 10. make_scenes --height 0 -------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--height", "--width"])
def test_make_scenes_refuses_a_zero_size(tmp_path, flag, capsys):
    spec = importlib.util.spec_from_file_location(
        "make_scenes", REPO / "data_scripts" / "make_scenes.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as e:
        mod.main(["--root", str(tmp_path / "cs"), "--n-train", "1", "--n-val", "0", flag, "0"])
    assert e.value.code == 2
    assert f"{flag}: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "cs").exists()
