"""Self-checks of lesson 07: exact one-hot losses, the squared EMD, Hou's learned matrix.

References are computed when a check runs: ``wlearn.losses`` (``one_hot_wasserstein``,
``SquaredEMDLoss``, ``rank_transform``; Liu et al. 2020 eq. 2 and 5; Hou et al. 2016 and the
public code that describes its learned matrix, see :mod:`wlearn.losses.learned_ground`).
"""

from __future__ import annotations

import numpy as np
import torch

from wlearn.exercises._classification import _logits
from wlearn.exercises._core import _register, _rng

# ---------------------------------------------------------------------------- lesson 07


def _int_cases(r, what, got, exp, cases, hint):
    for g, e, case in zip(got, exp, cases, strict=True):
        bad = np.flatnonzero(g != e)
        if bad.size:
            i = int(bad[0])
            r.off(
                f"{what} at {case}: {bad.size} of {e.size} samples differ; sample {i}: expected "
                f"class {int(e[i])}, got {_fmt_class(g[i])}",
                hint,
            )
    r.ok(f"{what} ok on {len(cases)} cases ({sum(e.size for e in exp)} samples)")


def _fmt_class(x):
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


@_register(
    "07.1",
    "decoding by the lowest expected cost (the median for |i - j|)",
    "a function bayes_decode(logits, M) -> (N,) classes: argmin_k sum_j h_j M[k, j], "
    "h = softmax(logits); logits (N, K), M (K, K) tensors, rows = predicted class",
    (
        "predicting k when the truth is j costs M[k, j]; average over j with the weights h_j",
        "with M = |i - j| the minimiser is the median of h; M may be asymmetric",
    ),
)
def _ex_07_1(r, fn):
    from wlearn.ground import line
    from wlearn.losses import one_hot_wasserstein

    rng = _rng("07.1")
    asym = torch.as_tensor(rng.random((7, 7)) * (1 - np.eye(7)))
    got, exp, cases = [], [], []
    for name, D in (
        ("line(7, 1)", line(7, 1)),
        ("line(7, 2)", line(7, 2)),
        ("random asymmetric D", asym),
    ):
        z = _logits(rng, (40, 7))
        # expected cost of predicting p: sum_j s_j D[p, j] = W(s, one-hot p) with cost D^T
        costs = torch.stack(
            [one_hot_wasserstein(z, torch.full((40,), p), D.T, reduction="none") for p in range(7)],
            1,
        )  # (N, C)
        ref = costs.argmin(1).numpy()
        case = name
        got.append(
            r.array(r.call(fn, z.clone(), D.clone(), case=case), "classes", case, shape=(40,))
        )
        exp.append(ref)
        cases.append(case)
    r.ok("shape (N,) ok")
    _int_cases(r, "decoded classes", got, exp, cases, r.ex.hints[0])
    r.ok("with D = |i - j| your decoder is the median of the prediction")


@_register(
    "07.2",
    "the one-hot loss with the step metric (Liu et al. eq. 5)",
    "a function step_loss(logits, target) -> (N,): the one-hot Wasserstein loss with "
    "ground.step(D), as a formula in h = softmax(logits); logits (N, K), target (N,) tensors",
    (
        "with step(D) every wrong class costs 1 and the right one 0: sum_k h_k M[k, k*] = ?",
        "the result does not depend on how far the wrong classes are",
    ),
)
def _ex_07_2(r, fn):
    from wlearn.ground import line, step
    from wlearn.losses import one_hot_wasserstein

    rng = _rng("07.2")
    got, exp, cases = [], [], []
    for C in (7, 3, 19):
        z, t = _logits(rng, (12, C)), torch.as_tensor(rng.integers(0, C, 12))
        case = f"C={C}"
        got.append(r.array(r.call(fn, z.clone(), t.clone(), case=case), "loss", case, shape=(12,)))
        exp.append(one_hot_wasserstein(z, t, step(line(C, 1)), reduction="none").numpy())
        cases.append(case)
    r.ok("shape (N,) ok")
    r.close(
        "loss against one_hot_wasserstein(logits, t, ground.step(line(C, 1)))",
        got,
        exp,
        cases,
        atol=1e-12,
        rtol=1e-9,
        hint=r.ex.hints[0],
    )


@_register(
    "07.3",
    "Hou's rank transform of a distance matrix (as the public code computes it)",
    "a function hou_rank(D, mu, p) -> (K, K) tensor: rank each entry within its row "
    "(1 = smallest, ties averaged) and divide by K, raise to the power p, symmetrise (M + M^T) / 2, "
    "subtract mu, set the diagonal to 1; D (K, K) float64 tensor",
    (
        "the rank of D[i, j] in row i counts the entries below it, plus 1 (ties: their "
        "average rank, what scipy.stats.rankdata(D, axis=1) gives); divide by K, not K - 1",
        "the order matters: power first, then symmetrise, then subtract mu, then the diagonal",
    ),
)
def _ex_07_3(r, fn):
    from wlearn.losses import rank_transform

    rng = _rng("07.3")
    got, exp, cases = [], [], []
    for K, mu, p in ((8, 0.5, 1.0), (5, 0.25, 2.0), (6, 0.5, 1.0)):
        D = rng.random((K, K))
        D = (D + D.T) / 2
        np.fill_diagonal(D, 0)
        if K == 6:  # ties within a row, and an asymmetric matrix
            D[0, 3] = D[0, 4]
            D[2, 5] += 0.3
        D = torch.as_tensor(D)
        case = f"K={K}, mu={mu}, p={p}" + (" (ties, asymmetric)" if K == 6 else "")
        got.append(r.array(r.call(fn, D.clone(), mu, p, case=case), "M", case, shape=(K, K)))
        exp.append(rank_transform(D, mu=mu, p=p).numpy())
        cases.append(case)
    r.ok("shape (K, K) ok")
    r.close(
        "M against wlearn.losses.rank_transform",
        got,
        exp,
        cases,
        atol=1e-6,
        rtol=1e-6,
        hint=r.ex.hints[0],
    )
    r.ok("your transform is the rule of the public code (update_cost_matrix)")


@_register(
    "07.4",
    "the squared EMD of Hou et al. for soft targets",
    "a function my_squared_emd(h, q) -> (N,): sum_k (F_k(h) - F_k(q))^2 for histograms "
    "h, q (N, K) (tensors) on ordered classes",
    (
        "F_k(h) = h[:, :k + 1].sum(1): torch.cumsum(h, dim=1)",
        "square the differences of the CDFs, not of the histograms, and do not take the "
        "absolute value (that would be W_1)",
    ),
)
def _ex_07_4(r, fn):
    from wlearn.losses import SquaredEMDLoss

    rng = _rng("07.4")
    got, exp, cases = [], [], []
    for C in (7, 4):
        s = torch.as_tensor(rng.dirichlet(np.ones(C), size=8))
        q = torch.as_tensor(rng.dirichlet(0.5 * np.ones(C), size=8))
        case = f"C={C}"
        got.append(r.array(r.call(fn, s.clone(), q.clone(), case=case), "EMD^2", case, shape=(8,)))
        exp.append(SquaredEMDLoss(reduction="none")(s.log(), q).numpy())
        cases.append(case)
    r.ok("shape (N,) ok")
    r.close(
        "EMD^2 against wlearn.losses.SquaredEMDLoss",
        got,
        exp,
        cases,
        atol=1e-12,
        rtol=1e-9,
        hint=r.ex.hints[1],
    )
