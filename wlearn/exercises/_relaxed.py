"""Self-checks of lesson 03: the relaxed transport problem (8) for unnormalized measures.

References are computed when a check runs: ``wlearn.ot.unbalanced_sinkhorn`` and POT's
``ot.unbalanced.sinkhorn_unbalanced``.
"""

from __future__ import annotations

import numpy as np

from wlearn.exercises._core import _register, _rng
from wlearn.exercises._transport import _hist, _median_cost, _quiet

# ---------------------------------------------------------------------------- lesson 03


@_register(
    "03.1",
    "the relaxed fixed point with two penalties (gamma_a, gamma_b)",
    "a function my_relaxed_plan(h, y, M, reg, reg_m) -> T (K, K), iterated to convergence; "
    "reg_m = (gamma_a, gamma_b); h, y (K,), M (K, K) NumPy arrays",
    (
        "section 2's relaxed_fixed_point uses one exponent for both updates; with reg_m = "
        "(gamma_a, gamma_b) the update of u takes the exponent of gamma_a, that of v of gamma_b",
        "iterate until u and v stop changing (a few thousand iterations are plenty here)",
    ),
)
def _ex_03_1(r, fn):
    import wlearn.ot as wot

    rng = _rng("03.1")
    got, exp, cases = [], [], []
    cols = []
    for reg, reg_m in (
        (0.1, (1.0, 1.0)),
        (0.1, (0.5, 5.0)),
        (0.5, (5.0, 0.5)),
        (0.1, (1.0, 100.0)),
    ):
        K = 10
        M, h, y = _median_cost(rng, K), _hist(rng, K, 1.5), _hist(rng, K)
        case = f"reg={reg}, reg_m={reg_m}"
        ref = wot.unbalanced_sinkhorn(h, y, M, reg, reg_m, max_iter=100_000, tol=1e-12)
        exp.append(ref.plan.numpy())
        got.append(r.array(r.call(fn, h, y, M, reg, reg_m, case=case), "T", case, shape=(K, K)))
        cases.append(case)
        cols.append(np.abs(ref.plan.numpy().sum(0) - y).sum() / y.sum())
    r.ok("shape (K, K) ok")
    if r.close(
        "plan against wlearn.ot.unbalanced_sinkhorn",
        got,
        exp,
        cases,
        atol=1e-9,
        rtol=1e-6,
        hint=r.ex.hints[0],
    ):
        r.ok(
            f"with gamma_b = 100 the columns sum to y within {cols[-1]:.1e} (relative L1), "
            f"with gamma_b = 1 only within {cols[0]:.1e}"
        )


@_register(
    "03.2",
    "the mass of the relaxed plan for h = 2y and M = 0",
    "a function plan_mass(y, reg, reg_m) -> float, the total mass of the optimal plan of (8) "
    "with h = 2 y, M = 0, gamma_a = gamma_b = reg_m; y (K,) a NumPy histogram",
    (
        "with M = 0 the kernel is the constant exp(-1), so T = u v^T: write the fixed point of "
        "Prop. 4.2 for U = sum(u) and V = sum(v), two linear equations in log U and log V; the "
        "mass is exp(-1) U V",
        "with theta = g / (g + 1), g = reg_m / reg, the sums involve S = sum_k y_k^theta",
    ),
)
def _ex_03_2(r, fn):
    import wlearn.ot as wot

    rng = _rng("03.2")
    got, exp, cases = [], [], []
    for K in (5, 12):
        y = _hist(rng, K)
        for reg, reg_m in ((0.1, 0.01), (1.0, 1.0), (0.1, 1.0), (0.1, 10.0)):
            case = f"K={K}, reg={reg}, reg_m={reg_m}"
            ref = wot.unbalanced_sinkhorn(
                2 * y, y, np.zeros((K, K)), reg, reg_m, max_iter=100_000, tol=1e-13
            )
            exp.append(ref.plan.sum().item())
            got.append(r.array(r.call(fn, y.copy(), reg, reg_m, case=case), "mass", case, shape=()))
            cases.append(case)
    r.close(
        "plan mass against wlearn.ot.unbalanced_sinkhorn(2y, y, 0, ...)",
        got,
        exp,
        cases,
        atol=1e-10,
        rtol=1e-8,
        hint=r.ex.hints[1],
    )
    r.ok("as gamma grows the mass tends to sqrt(2), the geometric mean of the masses 2 and 1")


@_register(
    "03.4",
    "the cost matrix that makes POT's reg_type='kl' solve (8)",
    "a function cost_for_pot_kl(M, h, y, reg) -> M2 (K, K) such that "
    "ot.unbalanced.sinkhorn_unbalanced(h, y, M2, reg, reg_m, method='sinkhorn', reg_type='kl') "
    "returns the plan of (8) with cost M; NumPy arrays",
    (
        "reg KL(T || h y^T) = reg sum T log T - reg sum T log(h_i y_j) - reg sum T + const",
        "match it term by term with <T, M> + reg sum T log T; the notebook found M + reg for "
        "reg_type='entropy'",
    ),
)
def _ex_03_4(r, fn):
    import ot

    import wlearn.ot as wot

    rng = _rng("03.4")
    got, exp, cases = [], [], []
    for K, reg, reg_m in ((8, 0.1, 0.5), (8, 0.3, 5.0), (12, 0.1, 2.0)):
        M, h, y = _median_cost(rng, K), _hist(rng, K, 1.5), _hist(rng, K)
        case = f"K={K}, reg={reg}, reg_m={reg_m}"
        M2 = r.array(
            r.call(fn, M.copy(), h.copy(), y.copy(), reg, case=case), "M2", case, shape=(K, K)
        )
        if not np.isfinite(M2).all():
            r.off(f"M2 at {case} is not finite")
        exp.append(
            wot.unbalanced_sinkhorn(h, y, M, reg, reg_m, max_iter=100_000, tol=1e-13).plan.numpy()
        )
        got.append(
            _quiet(
                ot.unbalanced.sinkhorn_unbalanced,
                h,
                y,
                M2,
                reg,
                reg_m,
                method="sinkhorn",
                reg_type="kl",
                numItermax=100_000,
                stopThr=1e-15,
            )
        )
        cases.append(case)
    r.ok("shape (K, K) ok, finite")
    r.close(
        "POT's plan with your M2 against the plan of (8)",
        got,
        exp,
        cases,
        atol=1e-9,
        rtol=1e-6,
        hint=r.ex.hints[0],
    )
