"""Self-checks of lessons 01-02: exact transport and Sinkhorn.

References are computed when a check runs: ``wlearn.ot.emd`` (POT's ``ot.emd`` underneath),
``wlearn.ot.sinkhorn`` and closed forms.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from wlearn.exercises._core import _is_int, _register, _rng


def _hist(rng, K, mass=1.0, zeros=0):
    h = rng.dirichlet(np.ones(K))
    if zeros:
        h[rng.choice(K, zeros, replace=False)] = 0.0
    return mass * h / h.sum()


def _cloud_cost(rng, K):
    """Euclidean distances between K random points of the unit square, scaled into [0, 1)."""
    import wlearn.ground as ground

    return ground.euclidean(rng.random((K, 2)), normalize=False, scale=True).numpy()


def _median_cost(rng, K):
    X = rng.random((K, 2))
    M = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))  # (K, K)
    return M / np.median(M)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


# ---------------------------------------------------------------------------- lesson 01


@_register(
    "01.1",
    "W_2^2 between a histogram and its copy shifted by s bins",
    "a function w22_of_shift(s) -> float, for an integer shift s >= 0",
    (
        "with M = |k - k'|^2 every unit of mass travels s bins: what does each unit pay?",
        "the answer does not depend on the histogram, only on the shift",
    ),
)
def _ex_01_1(r, f):
    import wlearn.ground as ground
    import wlearn.ot as wot

    rng, K = _rng("01.1"), 40
    M = ground.line(K, p=2, scale=False)
    got, exp, cases = [], [], []
    for s in (0, 1, 2, 5, 12, 20):
        for n in range(2):
            a = np.zeros(K)
            a[: K - 20] = _hist(rng, K - 20, zeros=5)
            b = np.roll(a, s)
            exp.append(wot.emd(a, b, M).value.item())
            got.append(r.array(r.call(f, s, case=f"shift {s}"), "W_2^2", f"shift {s}", shape=()))
            cases.append(f"shift s={s} (random histogram {n + 1})")
    r.close(
        "W_2^2 against ot.emd",
        got,
        exp,
        cases,
        atol=1e-8,
        rtol=1e-9,
        hint="compare with wlearn.ot.emd(a, shifted a, ground.line(K, 2, scale=False))",
    )


@_register(
    "01.2",
    "two different optimal plans with the same cost",
    "a pair (T1, T2) of (K, K) plans, with the histograms as check(..., a=a, b=b)",
    (
        "on a line with d = |k - k'| (section 3), moving mass 2 bins at once costs as much as "
        "passing it on bin by bin",
        "a plan has rows summing to a and columns summing to b",
    ),
    context=("a", "b"),
)
def _ex_01_2(r, plans, a, b):
    import wlearn.ground as ground
    import wlearn.ot as wot

    if not isinstance(plans, (tuple, list)) or len(plans) != 2:
        r.off(
            f"expected a pair (T1, T2), got {type(plans).__name__}",
            "pass check('01.2', (T1, T2), a=a, b=b)",
        )
    a, b = r.array(a, "a", "a"), r.array(b, "b", "b")
    r.expect(
        a.ndim == 1 and a.shape == b.shape and a.size >= 2,
        f"a and b: two histograms on K = {a.size} bins",
        f"a, b: expected two 1-D histograms of equal length, got shapes {a.shape}, {b.shape}",
        fatal=True,
    )
    r.expect(
        (a >= 0).all() and (b >= 0).all() and abs(a.sum() - b.sum()) < 1e-9,
        f"equal masses ({a.sum():.6g})",
        f"a, b: expected non-negative entries of equal total mass, got {a.sum():.6g} "
        f"and {b.sum():.6g}",
        fatal=True,
    )
    K = a.size
    M = ground.line(K, p=1, scale=False).numpy()
    W = wot.emd(a, b, M).value.item()
    Ts = [r.array(T, f"T{i + 1}", f"T{i + 1}", shape=(K, K)) for i, T in enumerate(plans)]
    r.ok(f"shapes ({K}, {K}) ok")
    for i, T in enumerate(Ts, 1):
        feasible = (
            (T >= -1e-12).all()
            and np.allclose(T.sum(1), a, atol=1e-9)
            and np.allclose(T.sum(0), b, atol=1e-9)
        )
        r.expect(
            feasible,
            f"T{i}: non-negative, marginals a and b",
            f"T{i}: marginals off: rows sum to {np.round(T.sum(1), 4)} (expected a = "
            f"{np.round(a, 4)}), columns to {np.round(T.sum(0), 4)} (expected b = "
            f"{np.round(b, 4)}), minimum entry {T.min():.3g}",
            fatal=True,
        )
        cost = float((T * M).sum())
        r.expect(
            abs(cost - W) < 1e-9,
            f"T{i}: cost {cost:.6g} = W_1(a, b) (ot.emd)",
            f"T{i}: cost <T, M> = {cost:.6g}, but the optimum (wlearn.ot.emd) is {W:.6g}: "
            "not optimal",
            fatal=True,
        )
    diff = float(np.abs(Ts[0] - Ts[1]).max())
    r.expect(
        diff > 1e-6,
        f"T1 and T2 differ (largest difference {diff:.3g})",
        "T1 and T2 are the same plan: find a second optimal plan",
        "send some mass directly over two bins instead of step by step",
    )


@_register(
    "01.5",
    "an asymmetric severity matrix and the entry the one-hot closed form reads",
    "a pair (D, one_hot_cost): D a (4, 4) matrix on (car, bus, person, road), rows = predicted, "
    "columns = true; one_hot_cost(h, j, D) -> float, W(h, delta_j) without a solver",
    (
        "rows of D are predicted classes, columns true ones: 'car labelled person' is D[person, car]",
        "with a one-hot target all the mass goes to the true class j: which column is read?",
    ),
)
def _ex_01_5(r, answer):
    import wlearn.ot as wot

    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        r.off(f"expected a pair (D, one_hot_cost), got {type(answer).__name__}")
    D, f = answer
    D = r.array(D, "D", "D", shape=(4, 4))
    car, _bus, person, road = range(4)
    r.ok("shape (4, 4) ok")
    r.expect(
        np.isfinite(D).all() and (D >= 0).all() and (np.diag(D) == 0).all(),
        "non-negative, zero diagonal",
        "D: expected non-negative entries and a zero diagonal",
        "a correct prediction costs nothing",
        fatal=True,
    )
    r.expect(
        D[person, car] > D[road, car],
        f"car labelled person ({D[person, car]:.3g}) costs more than car labelled road "
        f"({D[road, car]:.3g})",
        f"car labelled person costs D[person, car] = {D[person, car]:.3g}, not more than car "
        f"labelled road D[road, car] = {D[road, car]:.3g}",
        r.ex.hints[0],
    )
    r.expect(
        D[car, person] > D[person, car],
        f"person labelled car ({D[car, person]:.3g}) is worse than car labelled person "
        f"({D[person, car]:.3g})",
        f"person labelled car is D[car, person] = {D[car, person]:.3g}, not worse than car "
        f"labelled person D[person, car] = {D[person, car]:.3g}",
        r.ex.hints[0],
    )
    rng = _rng("01.5")
    D_asym = rng.random((4, 4)) * (1 - np.eye(4))
    got, exp, cases = [], [], []
    for n in range(8):
        M = D if n % 2 == 0 else D_asym
        h, j = _hist(rng, 4), int(rng.integers(4))
        case = f"h = {np.round(h, 3)}, true class {j}" + (" (your D)" if M is D else "")
        exp.append(wot.emd(h, np.eye(4)[j], M).value.item())
        got.append(r.array(r.call(f, h, j, M, case=case), "one_hot_cost", case, shape=()))
        cases.append(case)
    r.close(
        "one_hot_cost against ot.emd", got, exp, cases, atol=1e-10, rtol=1e-9, hint=r.ex.hints[1]
    )


# ---------------------------------------------------------------------------- lesson 02


def _first_within(a, b, M, reg, tol, target, n_max=100_000):
    """Reference for 02.1: values of naive Sinkhorn-Knopp after 1, 2, ... iterations (from
    v = 1) until the first one within ``tol`` of ``target``; returns all of them."""
    G = np.exp(-M / reg)  # (K, K), the Gibbs kernel; reg >= 0.01 keeps it positive here
    v, values = np.ones_like(b), []
    while len(values) < n_max:
        u = a / (G @ v)
        v = b / (G.T @ u)
        values.append(float(np.sum(u[:, None] * G * v[None, :] * M)))
        if abs(values[-1] - target) <= tol:
            break
    return np.array(values)


@_register(
    "02.1",
    "Sinkhorn-Knopp with a fixed number of iterations, and how many it needs",
    "a pair (my_sinkhorn_fixed_iters, iterations_needed): my_sinkhorn_fixed_iters(a, b, M, reg, "
    "n_iter) -> float, the transport cost <T, M> after n_iter iterations from v = 1; "
    "iterations_needed(a, b, M, reg, tol) -> int, the smallest n_iter whose value is within tol "
    "of the converged wlearn.ot.sinkhorn(a, b, M, reg).value; a, b (K,), M (K, K) NumPy arrays",
    (
        "section 2's sinkhorn_knopp already runs the iteration: only its stopping rule changes "
        "(exactly n_iter passes of the loop, one update of u then one of v in each)",
        "for iterations_needed, compute the converged value once (a small tol and a large "
        "max_iter in wlearn.ot.sinkhorn), then count passes of the loop until the value is close",
    ),
)
def _ex_02_1(r, answer):
    import wlearn.ot as wot

    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        r.off(
            f"expected a pair (my_sinkhorn_fixed_iters, iterations_needed), got "
            f"{type(answer).__name__}",
            "pass check('02.1', (my_sinkhorn_fixed_iters, iterations_needed))",
        )
    fixed, needed = answer
    rng = _rng("02.1")
    problems = [
        (K, reg, _cloud_cost(rng, K), _hist(rng, K), _hist(rng, K))
        for K, reg in ((20, 0.1), (30, 0.05), (25, 0.01))
    ]
    got, exp, cases = [], [], []
    for K, reg, M, a, b in problems:
        for n_iter in (1, 3, 20, 200):
            case = f"K={K}, reg={reg}, n_iter={n_iter}"
            ref = _quiet(wot.sinkhorn, a, b, M, reg, max_iter=n_iter, tol=0.0)
            exp.append(ref.value.item())
            got.append(
                r.array(r.call(fixed, a, b, M, reg, n_iter, case=case), "value", case, shape=())
            )
            cases.append(case)
    r.close(
        "<T, M> against wlearn.ot.sinkhorn(..., max_iter=n_iter, tol=0)",
        got,
        exp,
        cases,
        atol=1e-10,
        rtol=1e-8,
        hint=r.ex.hints[0],
    )
    counts = {}
    for K, reg, M, a, b in problems:
        tol = 1e-6
        case = f"K={K}, reg={reg}, tol={tol:g}"
        target = wot.sinkhorn(a, b, M, reg, max_iter=100_000, tol=1e-13).value.item()
        values = _first_within(a, b, M, reg, tol, target)
        n = r.call(needed, a, b, M, reg, tol, case=case)
        if not _is_int(n) or int(n) < 1:
            r.off(f"iterations_needed at {case}: expected a positive integer, got {n!r}")
        n, n_ref = int(n), len(values)
        err = np.abs(values - target)  # err[k - 1]: error after k iterations
        borderline = (n == n_ref + 1 and err[-1] > 0.999 * tol) or (
            n == n_ref - 1 and n >= 1 and err[n - 1] <= 1.001 * tol
        )  # float rounding at the threshold
        r.expect(
            n == n_ref or borderline,
            f"iterations_needed at {case}: {n}",
            f"iterations_needed off at {case}: expected {n_ref}, got {n} ("
            + ("the value is not yet within tol then" if n < n_ref else "not the smallest")
            + ")",
            r.ex.hints[1],
            fatal=True,
        )
        counts[reg] = n_ref
    r.ok(
        "iterations to reach 1e-6: "
        + ", ".join(f"{c} at reg = {reg:g}" for reg, c in counts.items())
        + ": the smaller reg, the more iterations"
    )


@_register(
    "02.3",
    "the potentials for the cost M + c",
    "a function shift_potentials(f, g, c) -> (f_c, g_c): potentials for M + c with the same plan; "
    "f, g (K,) NumPy arrays, c a number",
    (
        "T = exp((f_i + g_j - M_ij) / reg): if every M_ij grows by c, what must f_i + g_j do?",
        "any split of c between f and g gives the same plan",
    ),
)
def _ex_02_3(r, fn):
    import wlearn.ot as wot

    rng = _rng("02.3")
    got, exp, cases = [], [], []
    for K, reg, c in ((12, 0.1, 0.5), (20, 0.05, 3.0), (15, 0.2, 10.0), (10, 0.05, 0.0)):
        M, a, b = _cloud_cost(rng, K), _hist(rng, K), _hist(rng, K)
        f, g = (p.numpy() for p in wot.sinkhorn(a, b, M, reg, tol=1e-12).potentials)
        case = f"K={K}, reg={reg}, c={c}"
        out = r.call(fn, f.copy(), g.copy(), c, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            r.off(f"expected a pair (f_c, g_c) at {case}, got {type(out).__name__}")
        fc, gc = (
            r.array(p, name, case, shape=(K,)) for p, name in zip(out, ("f_c", "g_c"), strict=True)
        )
        exp.append(wot.sinkhorn(a, b, M + c, reg, tol=1e-12).plan.numpy())
        got.append(np.exp((fc[:, None] + gc[None, :] - (M + c)) / reg))
        cases.append(case)
    r.ok("returns a pair of (K,) potentials")
    r.close(
        "plan exp((f_c + g_c - (M + c)) / reg) against wlearn.ot.sinkhorn(a, b, M + c)",
        got,
        exp,
        cases,
        atol=1e-10,
        rtol=1e-6,
        hint=r.ex.hints[0],
    )


@_register(
    "02.4",
    "the log-domain Sinkhorn iteration with torch.logsumexp",
    "a function my_log_sinkhorn(a, b, M, reg, n_iter) -> float, <T, M> after n_iter iterations "
    "on the potentials; a, b (K,), M (K, K) float64 tensors",
    (
        "section 5 writes both updates; start from g = 0, and turn each log of a sum over j (or "
        "over i) into one torch.logsumexp along the matching dim of a (K, K) tensor",
        "torch.logsumexp(x, dim=1) sums over j for x[i, j]; the plan is exp((f_i + g_j - M_ij) / "
        "reg), built by broadcasting f[:, None] against g[None, :]",
    ),
)
def _ex_02_4(r, fn):
    import wlearn.ground as ground
    import wlearn.ot as wot

    rng = _rng("02.4")
    a_far, b_far = np.zeros(30), np.zeros(30)
    a_far[:3], b_far[-3:] = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
    problems = [(a_far, b_far, ground.line(30, p=1).numpy(), "far apart, K=30")]
    problems.append((_hist(rng, 20), _hist(rng, 20), _cloud_cost(rng, 20), "random, K=20"))
    got, exp, cases = [], [], []
    for a, b, M, name in problems:
        for reg, n_iter in ((0.05, 5), (1e-3, 10), (1e-3, 300)):
            case = f"{name}, reg={reg:g}, n_iter={n_iter}"
            at, bt, Mt = (torch.as_tensor(x, dtype=torch.float64) for x in (a, b, M))
            exp.append(_quiet(wot.sinkhorn, at, bt, Mt, reg, max_iter=n_iter, tol=0.0).value.item())
            v = r.array(
                r.call(fn, at.clone(), bt.clone(), Mt.clone(), reg, n_iter, case=case),
                "value",
                case,
                shape=(),
            )
            if not np.isfinite(v):
                r.off(f"value at {case} is {v}: not finite", r.ex.hints[0])
            got.append(v)
            cases.append(case)
    r.ok("finite at reg = 1e-3, where the naive kernel gives NaN")
    r.close(
        "<T, M> against wlearn.ot.sinkhorn(..., max_iter=n_iter, tol=0)",
        got,
        exp,
        cases,
        atol=1e-10,
        rtol=1e-8,
        hint=r.ex.hints[0],
    )
