"""Batched log-domain Sinkhorn (wlearn.ot.sinkhorn) against POT's ot.sinkhorn2 looped over pairs.

B = 128 pairs of K = 1000 bins, M = distances between random unit vectors scaled into [0, 1),
reg = 0.1 and 0.02, the same stopping threshold for both. Prints the time ratio (target: >= 10x)
and the largest relative difference of the values (target: <= 1e-4), from one run.

    python benchmarks/bench_ot.py [--pairs 128] [--bins 1000] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=128)
    p.add_argument("--bins", type=int, default=1000)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    device = wlearn.get_device(args.device)
    a, b, M = problem(args.pairs, args.bins)
    print(f"device: {device_name(device)}; B={args.pairs}, K={args.bins}, tol={args.tol:g}")
    print("POT: ot.sinkhorn2(method='sinkhorn') on float64 NumPy arrays, one pair at a time")
    print(f"{'reg':>6} {'wlearn dtype':>13} {'wlearn batched s':>17} {'POT loop s':>11} {'speed-up':>9} "
          f"{'max rel diff':>13} {'iters':>6}")
    ok = True
    refs = {}
    for reg, dtype in ((0.1, torch.float64), (0.1, torch.float32), (0.02, torch.float64), (0.02, torch.float32)):
        at, bt, Mt = (torch.as_tensor(v, device=device, dtype=dtype) for v in (a, b, M))
        wot.sinkhorn(at[:2], bt[:2], Mt, reg, tol=args.tol, max_iter=10000)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        r = wot.sinkhorn(at, bt, Mt, reg, tol=args.tol, max_iter=10000)
        sync(device)
        t_w = time.perf_counter() - t0
        if reg not in refs:  # the POT loop does not depend on wlearn's dtype: run it once per reg
            t0 = time.perf_counter()
            refs[reg] = np.array([
                float(ot.sinkhorn2(a[i], b[i], M, reg, method="sinkhorn", stopThr=args.tol, numItermax=10000))
                for i in range(args.pairs)
            ]), time.perf_counter() - t0
        ref, t_p = refs[reg]
        rel = float(np.max(np.abs(r.value.cpu().numpy() - ref) / ref))
        speed = t_p / t_w
        ok &= speed >= 10 and rel <= 1e-4
        print(f"{reg:>6g} {str(dtype)[6:]:>13} {t_w:>17.3f} {t_p:>11.3f} {speed:>8.1f}x {rel:>13.2e} {r.n_iter:>6}")
    print("targets (>= 10x, <= 1e-4 relative):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
