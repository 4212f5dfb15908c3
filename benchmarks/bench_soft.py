"""Per-pixel soft-target Wasserstein loss: forward + backward time as ratios to cross-entropy.

:class:`wlearn.losses.SoftWassersteinLoss` (entropic, one Sinkhorn problem per pixel) on the
conservative targets of lesson 10 (``wlearn.segment.conservative_targets``, mode
``"prediction"``: ``0.7 e_y + 0.3 p``, here with the teacher ``p`` = the logits' own softmax)
and on one-hot targets, against ``F.cross_entropy`` (one-hot target) on the same logits, with
:class:`wlearn.losses.OneHotWassersteinLoss` and :class:`wlearn.losses.SoftCrossEntropyLoss`
for reference. The losses run in turn, round after round (``--repeat`` rounds after one
untimed), and each round's time is divided by cross-entropy's in the same round: the table
gives the median, min and max of these ratios over the rounds, and pixels per second from the
median time.

Targets (issue 17, at the default shape, 2 CPU threads): ``SoftWassersteinLoss`` at most 10x
cross-entropy's time on conservative targets and at most 3x on one-hot targets, median over
the rounds; one ``PASS``/``FAIL`` line each, and the exit status is 1 if one fails.
``--reference`` also times, on conservative targets, the PyTorch path of the per-pixel solver
(what the loss runs on the GPU, and on the CPU where the compiled kernel
``wlearn/losses/_pixel_lanes.c`` was not built) and the log-domain path the loss takes when the
scaling domain could underflow (``max(M)/reg > 35`` in float32), the implementation before
issue 17.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over one forward + backward; on CPU
with ``--memory``, each loss in a fresh process (``VmHWM`` growth, see ``_common.peak_bytes``).

    python benchmarks/bench_soft.py [--shape 2 19 256 512] [--reg 0.1] [--tol 1e-3]
        [--repeat 9] [--threads 2] [--device cpu|cuda] [--reference] [--memory] [--clock cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CLOCKS,
    device_name,
    fresh_process,
    interleaved,
    load_note,
    peak_bytes,
    ratio_stats,
    verdict,
)

import wlearn  # noqa: E402
from wlearn.ground import power, severity_matrix  # noqa: E402
from wlearn.losses import (  # noqa: E402
    OneHotWassersteinLoss,
    SoftCrossEntropyLoss,
    SoftWassersteinLoss,
    _pixel_sinkhorn,
)
from wlearn.segment import conservative_targets  # noqa: E402

CE = "cross_entropy (one-hot)"
SOFT, ONEHOT, REF, TORCH = (
    "SoftWassersteinLoss (conservative)",
    "SoftWassersteinLoss (one-hot)",
    "SoftWasserstein log-domain (cons.)",
    "SoftWasserstein PyTorch path (cons.)",
)
TARGETS = {SOFT: 10.0, ONEHOT: 3.0}


def build(args, device: torch.device):
    """The inputs and one closure per loss (forward + backward), and the loss modules."""
    N, C, H, W = args.shape
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N, C, H, W, generator=g).to(device).requires_grad_()
    target = torch.randint(0, C, (N, H, W), generator=g).to(device)
    onehot = F.one_hot(target, C).movedim(-1, 1).float()  # (N, C, H, W)
    probs = torch.softmax(logits.detach(), 1)  # the teacher's prediction p
    soft = conservative_targets(probs, target, mode="prediction", alpha=0.3)  # (N, C, H, W)
    D = severity_matrix() if C == 19 else 1 - torch.eye(C, dtype=torch.float64)
    M = power(D, 2).float().to(device)
    w = SoftWassersteinLoss(M, args.reg, tol=args.tol, max_iter=1000)
    w_ref = SoftWassersteinLoss(M, args.reg, tol=args.tol, max_iter=1000)
    w_ref._fast_path_applies = lambda *a: False  # the log-domain path, as before issue 17
    calls = {
        CE: lambda: F.cross_entropy(logits, target),
        "OneHotWassersteinLoss": lambda: OneHotWassersteinLoss(M)(logits, target),
        "SoftCrossEntropyLoss (conservative)": lambda: SoftCrossEntropyLoss()(logits, soft),
        ONEHOT: lambda: w(logits, onehot),
        SOFT: lambda: w(logits, soft),
    }
    if args.reference:
        calls[REF] = lambda: w_ref(logits, soft)
        if _pixel_sinkhorn.HAVE_COMPILED and device.type == "cpu":
            calls[TORCH] = lambda: torch_path(w, logits, soft)

    def step(f):
        def run():
            logits.grad = None
            f().backward()

        return run

    return {name: step(f) for name, f in calls.items()}, w, N * H * W


def torch_path(w, logits, soft):
    """``w(logits, soft)`` with the per-pixel solver on its PyTorch path."""
    compiled, _pixel_sinkhorn.HAVE_COMPILED = _pixel_sinkhorn.HAVE_COMPILED, False
    try:
        return w(logits, soft)
    finally:
        _pixel_sinkhorn.HAVE_COMPILED = compiled


def iterations(w, run) -> str:
    run()
    mean = getattr(w, "last_mean_iter", None)
    return f"{w.last_n_iter} max, " + (
        f"{mean:.2f} mean iterations" if mean is not None else "iterations"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shape", type=int, nargs=4, default=(2, 19, 256, 512), metavar=("N", "C", "H", "W")
    )
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--repeat", type=int, default=9, help="timed rounds")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default=None)
    ap.add_argument(
        "--reference", action="store_true", help="also time the PyTorch and log-domain paths"
    )
    ap.add_argument("--memory", action="store_true", help="CPU: peak memory, fresh processes")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one CPU peak
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = wlearn.get_device(args.device)
    steps, w, P = build(args, device)
    if args.case is not None:
        steps[args.case]()  # load the code paths
        print(json.dumps({"peak": peak_bytes(steps[args.case], device)}))
        return 0
    if device.type == "cpu":
        print(load_note(args.threads))
    print(
        f"device: {device_name(device)}; logits {tuple(args.shape)} = {P} pixels; "
        f"reg={args.reg}, tol={args.tol}; {args.repeat} interleaved rounds"
    )
    compiled = _pixel_sinkhorn.HAVE_COMPILED and device.type == "cpu"
    print(
        "per-pixel solver: "
        + ("compiled kernel (_pixel_lanes.c)" if compiled else "PyTorch path")
        + ("" if compiled or device.type != "cpu" else " (the compiled kernel was not built)")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        times = interleaved(steps, device, args.repeat, clock=CLOCKS[args.clock])
        its = {n: iterations(w, steps[n]) for n in (ONEHOT, SOFT)}
    peaks = {}
    if device.type == "cuda":
        peaks = {n: peak_bytes(f, device) for n, f in steps.items()}
    elif args.memory:
        argv_case = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--memory"]
        peaks = {n: fresh_process(__file__, [*argv_case, "--case", n])["peak"] for n in steps}
    print(
        f"{'loss, forward + backward':36s} {'pixels/s':>9s}   {'time / cross-entropy':>20s}"
        f"{'   peak MiB' if peaks else ''}"
    )
    print(f"{'':36s} {'(median)':>9s}   {'median   min   max':>20s}")
    stats = {}
    for name, t in times.items():
        st = stats[name] = ratio_stats(t, times[CE])
        med_t = sorted(t)[len(t) // 2]
        mem = f"{peaks[name] / 2**20:11.1f}" if peaks else ""
        extra = f"  ({its[name]})" if name in its else ""
        print(
            f"{name:36s} {P / med_t:9.3g}   {st['median']:6.2f} {st['min']:5.2f} {st['max']:5.2f}"
            f"{mem}{extra}"
        )
    ok = True
    for name, target in TARGETS.items():
        ok &= verdict(f"{name} / cross-entropy time", stats[name]["median"], target)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
