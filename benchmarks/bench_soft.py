"""Per-pixel soft-target Wasserstein loss: forward + backward throughput, as ratios, in one run.

:class:`wlearn.losses.SoftWassersteinLoss` (entropic, Sinkhorn over every pixel at once, with a
conservative target ``0.7 e_y + 0.3 softmax``) against, on the same logits,
:class:`wlearn.losses.OneHotWassersteinLoss` (closed form, one-hot target) and
``F.cross_entropy`` (one-hot target), plus :class:`wlearn.losses.SoftCrossEntropyLoss` on the
soft target. Reported: pixels per second of forward + backward and the ratio to cross-entropy,
with the Sinkhorn iteration count (it sets the cost: each iteration is two (P, C) x (C, C)
products and two exp/log passes).

    python benchmarks/bench_soft.py [--shape N C H W] [--reg 0.1] [--tol 1e-3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, timeit  # noqa: E402

import wlearn  # noqa: E402
from wlearn.ground import power, severity_matrix  # noqa: E402
from wlearn.losses import OneHotWassersteinLoss, SoftCrossEntropyLoss, SoftWassersteinLoss  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shape", type=int, nargs=4, default=(8, 19, 64, 128), metavar=("N", "C", "H", "W")
    )
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    device = wlearn.get_device(args.device)
    N, C, H, W = args.shape
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N, C, H, W, generator=g).to(device).requires_grad_()
    target = torch.randint(0, C, (N, H, W), generator=g).to(device)
    onehot = F.one_hot(target, C).movedim(-1, 1).float()  # (N, C, H, W)
    soft = 0.7 * onehot + 0.3 * torch.softmax(logits.detach(), 1)  # (N, C, H, W)
    D = severity_matrix() if C == 19 else 1 - torch.eye(C, dtype=torch.float64)
    M = power(D, 2).float().to(device)
    w_soft = SoftWassersteinLoss(M, args.reg, tol=args.tol, max_iter=1000)
    cases = {
        "cross_entropy (one-hot)": lambda: F.cross_entropy(logits, target),
        "OneHotWassersteinLoss": lambda: OneHotWassersteinLoss(M)(logits, target),
        "SoftCrossEntropyLoss (soft)": lambda: SoftCrossEntropyLoss()(logits, soft),
        "SoftWassersteinLoss (one-hot)": lambda: w_soft(logits, onehot),
        "SoftWassersteinLoss (soft)": lambda: w_soft(logits, soft),
    }
    P = N * H * W
    print(
        f"device: {device_name(device)}; logits {tuple(logits.shape)} = {P} pixels; "
        f"reg={args.reg}, tol={args.tol}"
    )
    base = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, f in cases.items():

            def step(f=f):
                logits.grad = None
                f().backward()

            t = timeit(step, device, repeat=args.repeat)
            base = base or t
            extra = (
                f"  ({w_soft.last_n_iter} Sinkhorn iterations)" if "SoftWasserstein" in name else ""
            )
            print(f"{name:32s} {P / t:12.3g} pixels/s   {t / base:6.2f}x cross-entropy time{extra}")


if __name__ == "__main__":
    main()
