"""Self-checks of lessons 08-10: severity matrices, segmentation metrics, soft targets.

References are computed when a check runs: ``wlearn.losses``, ``wlearn.metrics``,
``wlearn.ground`` and ``wlearn.segment.selftrain``.
"""

from __future__ import annotations

import numpy as np
import torch

from wlearn.exercises._core import _finite_number, _register, _rng


def _seg_case(rng, N, C, H, W):
    z = torch.as_tensor(2 * rng.standard_normal((N, C, H, W)))  # (N, C, H, W)
    t = torch.as_tensor(rng.integers(0, C, (N, H, W)))  # (N, H, W)
    return z, t


# ---------------------------------------------------------------------------- lesson 08


@_register(
    "08.2",
    "the one-hot loss with the importance matrix is omega_k* (1 - h_k*)",
    "a function importance_w_loss(logits, k_star, D_imp) -> (N, H, W): the loss per pixel as "
    "a formula in h_k* = softmax(logits)[k*] and the importance omega_k* read from D_imp; "
    "logits (N, C, H, W), k_star (N, H, W), D_imp (C, C) tensors",
    (
        "D_imp[i, j] = omega of the TRUE class j for every i != j (rows = predicted): read a column",
        "sum_i h_i D[i, k*] with a constant column: factor omega_k* out, and "
        "sum_{i != k*} h_i = 1 - h_k*",
    ),
)
def _ex_08_2(r, fn):
    from wlearn.ground import importance_matrix
    from wlearn.losses import one_hot_wasserstein

    rng = _rng("08.2")
    got, exp, cases = [], [], []
    for name, D in (
        ("cityscapes", importance_matrix()),
        (
            "camvid, weights (0.1, 0.2, 0.3, 2)",
            importance_matrix("camvid", group_weights=(0.1, 0.2, 0.3, 2.0)),
        ),
    ):
        C = D.shape[0]
        z, t = _seg_case(rng, 2, C, 3, 4)
        case = name
        got.append(
            r.array(
                r.call(fn, z.clone(), t.clone(), D.clone(), case=case),
                "loss",
                case,
                shape=(2, 3, 4),
            )
        )
        exp.append(one_hot_wasserstein(z, t, D, reduction="none").numpy())
        cases.append(case)
    r.ok("shape (N, H, W) ok")
    r.close(
        "loss against one_hot_wasserstein(logits, k_star, D_imp)",
        got,
        exp,
        cases,
        atol=1e-12,
        rtol=1e-9,
        hint=r.ex.hints[0],
    )


@_register(
    "08.4",
    "the mean severity of mistakes from a confusion matrix",
    "a function my_mean_severity(conf, D) -> float: sum_{t,p} conf[t, p] D[p, t] / sum conf; "
    "conf (K, K) counts [true, predicted], D (K, K) [predicted, true] (tensors)",
    (
        "the confusion matrix is [true, predicted], the ground matrix [predicted, true]: one of "
        "them must be transposed",
        "divide by the number of pixels, conf.sum(), not by the number of mistakes",
    ),
)
def _ex_08_4(r, fn):
    from wlearn.ground import importance_matrix, severity_matrix
    from wlearn.metrics import mean_severity

    rng = _rng("08.4")
    asym = torch.as_tensor(rng.random((5, 5)) * (1 - np.eye(5)))
    got, exp, cases = [], [], []
    for name, D in (
        ("severity_matrix()", severity_matrix()),
        ("importance_matrix()", importance_matrix()),
        ("random asymmetric D", asym),
    ):
        K = D.shape[0]
        conf = torch.as_tensor(rng.integers(0, 50, (K, K)) + np.diag(rng.integers(100, 500, K)))
        case = name
        got.append(
            r.array(r.call(fn, conf.clone(), D.clone(), case=case), "severity", case, shape=())
        )
        exp.append(mean_severity(conf, D))
        cases.append(case)
    r.close(
        "mean severity against wlearn.metrics.mean_severity",
        got,
        exp,
        cases,
        atol=1e-12,
        rtol=1e-9,
        hint=r.ex.hints[0],
    )


# ---------------------------------------------------------------------------- lesson 09


@_register(
    "09.3",
    "the Huber threshold tau that makes H_tau(d) = d^2 on the severity matrix",
    "a number tau: the smallest tau with wlearn.ground.huber(D, tau) == D ** 2 for every "
    "entry of D in [0, 1] (severity_matrix() has entries in [0, 1])",
    (
        "H_tau(d) = d^2 for d <= tau and tau (2 d - tau) above: which d must stay below tau?",
        "any larger tau works too; the exercise asks for the smallest",
    ),
)
def _ex_09_3(r, tau):
    from wlearn.ground import huber, severity_matrix

    if not _finite_number(tau) or isinstance(tau, bool) or float(tau) <= 0:
        r.off(f"expected a positive number, got {tau!r}")
    tau = float(tau)
    grid = torch.linspace(0, 1, 121, dtype=torch.float64).reshape(11, 11)  # every d in [0, 1]
    for name, D in (("severity_matrix()", severity_matrix()), ("d in [0, 1]", grid)):
        H = huber(D, tau)
        bad = (H - D**2).abs() > 1e-12
        if bad.any():
            d = float(D[bad].max())
            r.off(
                f"with tau = {tau:g}, H_tau(d) != d^2 on {name}: at d = {d:.3g}, H = "
                f"{tau * (2 * d - tau):.4g}, d^2 = {d * d:.4g}",
                r.ex.hints[0],
            )
        r.ok(f"huber(D, {tau:g}) == D ** 2 on {name}")
    smallest = float(severity_matrix().max())
    r.expect(
        abs(tau - smallest) < 1e-9,
        f"tau = {tau:g} is the smallest such value (max D)",
        f"tau = {tau:g} works, but a smaller tau does too",
        r.ex.hints[1],
    )


@_register(
    "09.4",
    "IoU from a confusion matrix summed over shards",
    "a function iou_from_confusion(conf) -> (K,): TP / (TP + FP + FN) per class, NaN for a "
    "class absent from truth and prediction; conf (K, K) int64 tensor [true, predicted]",
    (
        "TP = diagonal, FN = row sum - TP, FP = column sum - TP (rows = truth)",
        "0 / 0 for a class that never occurs: return NaN there, not 0",
    ),
)
def _ex_09_4(r, fn):
    from wlearn.metrics import ConfusionMatrix

    rng = _rng("09.4")
    got, exp, cases = [], [], []
    for K, n_shards in ((5, 2), (19, 3)):
        t = torch.as_tensor(rng.integers(0, K - 1, (2 * n_shards, 4, 6)))  # class K-1: absent
        p = torch.where(
            torch.as_tensor(rng.random(t.shape) < 0.7),
            t,
            torch.as_tensor(rng.integers(0, K - 2, t.shape)),
        )
        p[0, 0, 0] = K - 2  # make sure one class is predicted
        whole = ConfusionMatrix(K, ignore_index=255)
        whole.update(p, t)
        summed = torch.zeros(K, K, dtype=torch.int64)
        for s in range(n_shards):  # one matrix per rank, then the sum (all_reduce)
            shard = ConfusionMatrix(K, ignore_index=255)
            shard.update(p[2 * s : 2 * s + 2], t[2 * s : 2 * s + 2])
            summed += shard.confusion
        case = f"K={K}, {n_shards} shards"
        got.append(r.array(r.call(fn, summed.clone(), case=case), "IoU", case, shape=(K,)))
        exp.append(whole.iou().numpy())
        cases.append(case)
    r.ok("shape (K,) ok")
    r.close(
        "IoU of the summed shards against ConfusionMatrix.iou() on all pixels",
        got,
        exp,
        cases,
        atol=1e-12,
        rtol=1e-9,
        hint=r.ex.hints[0],
        nan_hint=r.ex.hints[1],
    )


# ---------------------------------------------------------------------------- lesson 10


@_register(
    "10.1",
    "LRENT's soft pseudo-labels and the pixels that get one (Zou et al. 2019)",
    "a function lrent_targets(probs, thresholds, alpha) -> (q, keep): q (N, C, H, W) with "
    "q_k proportional to (p_k / lambda_k)^(1 / alpha) along dim 1 where keep, zeros elsewhere; "
    "keep (N, H, W) bool, True where Z = sum_k (p_k / lambda_k)^(1 / alpha) > 1; probs "
    "(N, C, H, W), thresholds (C,) tensors (inf for a class never predicted)",
    (
        "work with logarithms: a_k = (log p_k - log lambda_k) / alpha, log Z = logsumexp_k a_k, "
        "q = exp(a - log Z)",
        "the value of the objective at q is -alpha log Z and q = 0 costs 0: keep where log Z > 0",
        "a class with lambda_k = inf gets q_k = 0 (its a_k is -inf)",
    ),
)
def _ex_10_1(r, fn):
    from wlearn.segment.selftrain import class_balanced_thresholds, lrent_pseudo_labels

    rng = _rng("10.1")
    got_q, exp_q, got_k, exp_k, cases = [], [], [], [], []
    for C, alpha in ((5, 0.5), (5, 0.1), (19, 0.25)):
        probs = torch.softmax(torch.as_tensor(2 * rng.standard_normal((2, C, 3, 4))), 1)
        lam = class_balanced_thresholds([probs], C, portion=0.3)
        if C == 5:
            lam[int(probs.argmax(1).flatten()[0])] = float("inf")  # a class left out
        case = f"C={C}, alpha={alpha}"
        out = r.call(fn, probs.clone(), lam.clone(), alpha, case=case)
        if not (isinstance(out, tuple) and len(out) == 2):
            r.off(f"expected a pair (q, keep) at {case}, got {type(out).__name__}", r.ex.hints[1])
        q, keep = out
        got_q.append(r.array(q, "q", case, shape=tuple(probs.shape)))
        got_k.append(r.array(keep, "keep", case, shape=(2, 3, 4)).astype(float))
        ref_q, ref_k = lrent_pseudo_labels(probs, lam, alpha=alpha)
        exp_q.append(ref_q.numpy())
        exp_k.append(ref_k.numpy().astype(float))
        cases.append(case)
    r.ok("shapes ok")
    r.close(
        "keep against lrent_pseudo_labels",
        got_k,
        exp_k,
        cases,
        atol=0.5,
        rtol=0,
        hint=r.ex.hints[1],
    )
    r.close(
        "q against lrent_pseudo_labels",
        got_q,
        exp_q,
        cases,
        atol=1e-10,
        rtol=1e-7,
        hint=r.ex.hints[0],
    )


@_register(
    "10.2",
    "the one-hot closed form on segmentation shapes equals Sinkhorn on one-hot targets",
    "a function onehot_w(logits, k_star, D) -> (N, H, W): sum_i h_i D[i, k*] per pixel, "
    "h = softmax over dim 1; logits (N, C, H, W), k_star (N, H, W), D (C, C) tensors",
    (
        "D[:, k_star] has shape (C, N, H, W): move the class axis with .movedim(0, 1) first",
        "rows of D are predicted classes: D[i, k] is the cost of predicting i at a pixel of class k",
    ),
)
def _ex_10_2(r, fn):
    from wlearn.ground import power, severity_matrix
    from wlearn.losses import SoftWassersteinLoss

    rng = _rng("10.2")
    got, exp, cases = [], [], []
    for name, D in (
        ("severity_matrix()", severity_matrix()),
        ("power(severity_matrix(), 2)", power(severity_matrix(), 2)),
    ):
        C = D.shape[0]
        z, t = _seg_case(rng, 2, C, 2, 3)
        onehot = torch.nn.functional.one_hot(t, C).movedim(-1, 1).double()  # (N, C, H, W)
        ref = SoftWassersteinLoss(D, 0.05, tol=1e-12, max_iter=5000, reduction="none")(z, onehot)
        case = name
        got.append(
            r.array(
                r.call(fn, z.clone(), t.clone(), D.clone(), case=case),
                "loss",
                case,
                shape=(2, 2, 3),
            )
        )
        exp.append(ref.detach().numpy())
        cases.append(case)
    r.ok("shape (N, H, W) ok")
    r.close(
        "closed form against SoftWassersteinLoss on one-hot targets",
        got,
        exp,
        cases,
        atol=1e-9,
        rtol=1e-7,
        hint=r.ex.hints[1],
    )
