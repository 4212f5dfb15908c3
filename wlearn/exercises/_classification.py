"""Self-checks of lessons 04-06: ground metrics on digits, the grid, tags.

References are computed when a check runs: ``wlearn.ot.emd`` (POT's ``ot.emd``),
``wlearn.losses``, ``wlearn.metrics``, ``wlearn.data.grid`` and closed forms.
"""

from __future__ import annotations

import numpy as np
import torch

from wlearn.exercises._core import _register, _rng


def _logits(rng, shape, scale=2.0):
    return torch.as_tensor(scale * rng.standard_normal(shape), dtype=torch.float64)


# ---------------------------------------------------------------------------- lesson 04


@_register(
    "04.1",
    "a ground metric on the digits where look-alikes are close",
    "a (10, 10) matrix M (tensor or array): symmetric, zero diagonal, positive off the "
    "diagonal, scaled into [0, 1), with 9 the nearest digit to 4 (and 4 to 9), 8 to 3 and 7 to 1",
    (
        "start from wlearn.ground.line(10, 1) and lower the entries of the pairs (4, 9), (3, 8), "
        "(1, 7) and their transposes below every other entry of their rows",
        "scale as Frogner et al.'s footnote 5: divide by the maximum, times (1 - 1e-3)",
    ),
)
def _ex_04_1(r, M):
    M = r.array(M, "M", "your matrix", shape=(10, 10))
    r.ok("shape (10, 10) ok")
    off = ~np.eye(10, dtype=bool)
    r.expect(
        np.isfinite(M).all() and (np.diag(M) == 0).all() and (M[off] > 0).all(),
        "zero diagonal, positive off the diagonal",
        f"expected a zero diagonal and positive entries elsewhere, got diagonal "
        f"{np.round(np.diag(M), 3)} and smallest off-diagonal entry {M[off].min():.3g}",
        "a digit costs nothing to itself and something to any other digit",
        fatal=True,
    )
    asym = float(np.abs(M - M.T).max())
    r.expect(
        asym == 0,
        "symmetric",
        f"not symmetric: |M - M^T| up to {asym:.3g}",
        "set M[i, j] and M[j, i] together",
    )
    r.expect(
        M.max() < 1,
        f"scaled into [0, 1) (max {M.max():.4g})",
        f"largest entry {M.max():.4g}: expected < 1",
        r.ex.hints[1],
    )
    for i, j in ((4, 9), (3, 8), (1, 7)):
        for u, v in ((i, j), (j, i)):
            others = [k for k in range(10) if k not in (u, v)]
            k = others[int(np.argmin(M[u, others]))]
            r.expect(
                M[u, v] < M[u, k],
                f"{v} is the nearest digit to {u}",
                f"nearest digit to {u} should be {v} (M[{u}, {v}] = {M[u, v]:.3g}), but "
                f"M[{u}, {k}] = {M[u, k]:.3g} is not larger than that",
                r.ex.hints[0],
            )


@_register(
    "04.3",
    "the Gibbs optimum that the entropic loss asks for",
    "a function gibbs_optimum(M, k, reg) -> h (K,): the minimiser over the simplex of "
    "sum_i h_i M[i, k] - reg H(h); M (K, K) float64 tensor, k the true class",
    (
        "set the derivative of sum_i h_i M[i, k] + reg sum_i h_i log h_i + mu (sum_i h_i - 1) to 0",
        "rows of M are predicted classes, columns true ones: the cost of predicting i is M[i, k]",
    ),
)
def _ex_04_3(r, fn):
    from wlearn.ground import line

    rng = _rng("04.3")
    asym = torch.as_tensor(rng.random((10, 10)) * (1 - np.eye(10)))
    got, exp, cases = [], [], []
    for name, M in (
        ("line(10, 0)", line(10, 0)),
        ("line(10, 1)", line(10, 1)),
        ("line(10, 4)", line(10, 4)),
        ("random asymmetric M", asym),
    ):
        for k, reg in ((4, 0.1), (0, 0.01), (9, 1.0)):
            case = f"{name}, k={k}, reg={reg}"
            h = r.array(r.call(fn, M.clone(), k, reg, case=case), "h", case, shape=(10,))
            if abs(h.sum() - 1) > 1e-9 or (h < 0).any():
                r.off(
                    f"h at {case} is not on the simplex: sum {h.sum():.6g}, minimum {h.min():.3g}",
                    "normalise h so that its entries sum to 1",
                )
            # closed form; its tangent gradient M[:, k] + reg (log h + 1) is constant there
            exp.append(torch.softmax(-M[:, k] / reg, 0).numpy())
            got.append(h)
            cases.append(case)
    r.ok("on the simplex in every case")
    r.close(
        "h against the minimiser softmax(-M[:, k] / reg)",
        got,
        exp,
        cases,
        atol=1e-9,
        rtol=1e-7,
        hint=r.ex.hints[1],
    )


# ---------------------------------------------------------------------------- lesson 05


@_register(
    "05.2",
    "the expected grid distance of the predicted distribution",
    "a function expected_grid_distance(h, y, n) -> (N,): sum_k h[i, k] ||c_k - c_y[i]|| for "
    "h (N, n*n) probabilities and y (N,) integer labels (tensors)",
    (
        "class k sits at c_k = (k // n, k % n): wlearn.data.grid.grid_centers(n), or read the "
        "column y of wlearn.ground.grid(n, scale=False)",
        "unscaled distances: one lattice step is 1",
    ),
)
def _ex_05_2(r, fn):
    import wlearn.ot as wot
    from wlearn.ground import grid

    rng = _rng("05.2")
    got, exp, cases = [], [], []
    for n in (3, 4, 6):
        K = n * n
        h = torch.as_tensor(rng.dirichlet(0.3 * np.ones(K), size=6))  # (6, K)
        y = torch.as_tensor(rng.integers(0, K, 6))
        M = grid(n, scale=False)
        case = f"n={n}"
        got.append(
            r.array(r.call(fn, h.clone(), y.clone(), n, case=case), "distance", case, shape=(6,))
        )
        # the exact transport cost to the one-hot label (lesson 04): the quantity W optimises
        exp.append(
            np.array(
                [wot.emd(h[i], torch.eye(K, dtype=h.dtype)[y[i]], M).value.item() for i in range(6)]
            )
        )
        cases.append(case)
    r.ok("shape (N,) ok")
    r.close(
        "expected distance against wlearn.ot.emd(h, one-hot label, grid(n, scale=False))",
        got,
        exp,
        cases,
        atol=1e-9,
        rtol=1e-8,
        hint=r.ex.hints[0],
    )


@_register(
    "05.3",
    "smoothed grid targets: mass keep on the label, the rest on its neighbours",
    "a function smooth_targets(y, n, keep) -> (N, n*n): keep on the label, (1 - keep) shared "
    "equally by its 2 to 4 lattice neighbours; y (N,) integer tensor",
    (
        "wlearn.data.grid.grid_neighbors(n)[k] lists the neighbours of class k",
        "a corner has 2 neighbours, an edge class 3, an interior class 4",
    ),
)
def _ex_05_3(r, fn):
    from wlearn.data.grid import grid_neighbors

    got, exp, cases = [], [], []
    for n, keep in ((3, 0.9), (5, 0.6), (4, 1.0)):
        K = n * n
        y = torch.arange(K).flip(0)
        ref = np.zeros((K, K))
        for i, k in enumerate(y.tolist()):
            ref[i, k] = keep
            nb = grid_neighbors(n)[k]
            ref[i, nb] += (1 - keep) / len(nb)
        case = f"n={n}, keep={keep}"
        q = r.array(r.call(fn, y.clone(), n, keep, case=case), "targets", case, shape=(K, K))
        if np.abs(q.sum(1) - 1).max() > 1e-9:
            r.off(
                f"rows at {case} sum to {np.round(q.sum(1), 4)}, expected 1",
                "the label keeps `keep`, the neighbours share 1 - keep",
            )
        got.append(q)
        exp.append(ref)
        cases.append(case)
    r.ok("shape (N, n*n) ok, rows sum to 1")
    r.close(
        "targets against grid_neighbors", got, exp, cases, atol=1e-12, rtol=0, hint=r.ex.hints[1]
    )


# ---------------------------------------------------------------------------- lesson 06


def _tags(rng, N, K):
    Y = (rng.random((N, K)) < 0.15).astype(np.float64)
    Y[np.arange(N), rng.integers(0, K, N)] = 1.0  # at least one tag per item
    return Y


@_register(
    "06.6",
    "the top-n cost C_n of tag proposals (Frogner et al.: top-K cost)",
    "a function my_top_k_cost(scores, Y, D, k) -> float: C_n (n = k proposed tags) averaged "
    "over items; scores (N, K) and Y (N, K) 0/1 NumPy arrays, D (K, K) distances",
    (
        "for every item: take the k highest scores, and for each proposed tag the distance to the "
        "nearest true tag; average over the k proposals, then over the items",
        "sort each row of scores in decreasing order and keep the first k tag indices "
        "(NumPy's argsort sorts in increasing order)",
    ),
)
def _ex_06_6(r, fn):
    from wlearn.ground import euclidean
    from wlearn.metrics import top_k_cost

    rng = _rng("06.6")
    got, exp, cases = [], [], []
    for N, K in ((20, 15), (7, 30)):
        S, Y = rng.standard_normal((N, K)), _tags(rng, N, K)
        D = euclidean(rng.standard_normal((K, 5)), scale=True).numpy()
        for k in (1, 3, K // 2):
            case = f"N={N}, K={K}, k={k}"
            got.append(
                r.array(
                    r.call(fn, S.copy(), Y.copy(), D.copy(), k, case=case), "C_n", case, shape=()
                )
            )
            exp.append(top_k_cost(S, Y, D, k))
            cases.append(case)
    r.close(
        "C_n against wlearn.metrics.top_k_cost",
        got,
        exp,
        cases,
        atol=1e-12,
        rtol=1e-9,
        hint=r.ex.hints[0],
    )


@_register(
    "06.7",
    "the generalized KL between raw tags and h = exp(z)",
    "a function gen_kl(t, z) -> (B,): sum_k t_k log(t_k / h_k) - t_k + h_k with h = exp(z), "
    "0 log 0 = 0; t (B, K) raw tags, z (B, K) logits (tensors)",
    (
        "torch.xlogy(t, t) is t log t with 0 log 0 = 0; log h = z",
        "the generalized KL (eq. 8) charges the mass difference too: - t_k + h_k",
    ),
)
def _ex_06_7(r, fn):
    from wlearn.losses import multilabel_kl

    rng = _rng("06.7")
    got, exp, cases = [], [], []
    for B, K, scale in ((4, 12, 1.0), (6, 30, 2.0)):
        t = torch.as_tensor(_tags(rng, B, K))
        t[0] *= 2.0  # an item tagged twice
        z = _logits(rng, (B, K), scale)
        case = f"B={B}, K={K}"
        got.append(r.array(r.call(fn, t.clone(), z.clone(), case=case), "KL~", case, shape=(B,)))
        exp.append(multilabel_kl(z, t, unbalanced=True).numpy())
        cases.append(case)
    r.ok("shape (B,) ok")
    r.close(
        "KL~ against wlearn.losses.multilabel_kl(z, t, unbalanced=True)",
        got,
        exp,
        cases,
        atol=1e-10,
        rtol=1e-9,
        hint=r.ex.hints[1],
    )
