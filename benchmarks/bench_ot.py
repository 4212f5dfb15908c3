"""Batched log-domain Sinkhorn (wlearn.ot.sinkhorn) against POT's ot.sinkhorn2 looped over pairs.

B = 128 pairs of K = 1000 bins, M = distances between random unit vectors scaled into [0, 1),
reg = 0.1 and 0.02, the same stopping threshold for both (wlearn's is the stricter: the L1 error
of both marginals, against POT's L2 error of one, checked every 10 iterations). wlearn runs
plain Sinkhorn (omega = 1) and overrelaxed Sinkhorn (omega = 1.8, same fixed point). Prints the
time ratio (target: >= 10x) and the largest relative difference of the values (target: <= 1e-4),
and the achieved L1 marginal errors of both, from one run.

    python benchmarks/bench_ot.py [--pairs 128] [--bins 1000] [--pot-pairs N] [--device cpu|cuda]

``--pot-pairs N`` times the POT loop on the first N pairs only and scales its time by B / N
(the pairs are independent draws; the reg = 0.02 loop takes many minutes on one core).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import ot
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, sync  # noqa: E402

import wlearn  # noqa: E402
from wlearn import ot as wot  # noqa: E402


def problem(B: int, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(K, 20))
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # random unit vectors
    M = ot.dist(x, x, metric="euclidean")
    M = M / M.max() * 0.999  # into [0, 1)
    a = rng.random((B, K)) + 0.01
    b = rng.random((B, K)) + 0.01
    return a / a.sum(1, keepdims=True), b / b.sum(1, keepdims=True), M


def l1_marginal_error(T: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Largest L1 error of either marginal of the plans ``T`` (B, K, K) against a, b (B, K)."""
    return float(max(np.abs(T.sum(2) - a).sum(1).max(), np.abs(T.sum(1) - b).sum(1).max()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=128)
    p.add_argument("--bins", type=int, default=1000)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--pot-pairs", type=int, default=None)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    device = wlearn.get_device(args.device)
    a, b, M = problem(args.pairs, args.bins)
    n_pot = min(args.pot_pairs or args.pairs, args.pairs)
    print(f"device: {device_name(device)}; B={args.pairs}, K={args.bins}, tol={args.tol:g}")
    print(
        "POT: ot.sinkhorn(method='sinkhorn') on float64 NumPy arrays, one pair at a time (the plan, "
        "to measure its marginals; ot.sinkhorn2 runs the same iterations)"
        + (
            f", timed on {n_pot} pairs and scaled by {args.pairs / n_pot:g}"
            if n_pot < args.pairs
            else ""
        )
    )
    print(
        f"{'reg':>5} {'dtype':>8} {'omega':>5} {'wlearn s':>9} {'POT loop s':>11} {'speed-up':>9} "
        f"{'max rel diff':>13} {'iters':>6} {'L1 err ours':>12} {'L1 err POT':>11}"
    )
    met = {}
    for reg in (0.1, 0.02):
        t0 = time.perf_counter()
        plans = [
            ot.sinkhorn(a[i], b[i], M, reg, method="sinkhorn", stopThr=args.tol, numItermax=100000)
            for i in range(n_pot)
        ]
        t_pot = (time.perf_counter() - t0) * args.pairs / n_pot
        ref = np.array([float(np.sum(T * M)) for T in plans])
        err_pot = l1_marginal_error(np.stack(plans), a[:n_pot], b[:n_pot])
        for dtype in (torch.float64, torch.float32):
            for omega in (1.0, 1.8):
                at, bt, Mt = (torch.as_tensor(v, device=device, dtype=dtype) for v in (a, b, M))
                with warnings.catch_warnings():  # warm-up: a few iterations, not to convergence
                    warnings.simplefilter("ignore", RuntimeWarning)
                    wot.sinkhorn(at[:2], bt[:2], Mt, reg, tol=args.tol, max_iter=100, omega=omega)
                sync(device)
                t0 = time.perf_counter()
                r = wot.sinkhorn(at, bt, Mt, reg, tol=args.tol, max_iter=100000, omega=omega)
                sync(device)
                t_w = time.perf_counter() - t0
                ours = r.value.double().cpu().numpy()[:n_pot]
                rel = float(np.max(np.abs(ours - ref) / ref))
                err = l1_marginal_error(r.plan.double().cpu().numpy()[:n_pot], a[:n_pot], b[:n_pot])
                speed = t_pot / t_w
                met[(reg, str(dtype)[6:], omega)] = speed >= 10 and rel <= 1e-4
                print(
                    f"{reg:>5g} {str(dtype)[6:]:>8} {omega:>5g} {t_w:>9.2f} {t_pot:>11.2f} {speed:>8.1f}x "
                    f"{rel:>13.2e} {r.n_iter:>6} {err:>12.2e} {err_pot:>11.2e}"
                )
    for reg in (0.1, 0.02):
        good = [f"{dt} omega={om:g}" for (r_, dt, om), ok in met.items() if r_ == reg and ok]
        print(
            f"reg {reg:g}: targets (>= 10x, <= 1e-4 relative) met by: {', '.join(good) or 'none'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
