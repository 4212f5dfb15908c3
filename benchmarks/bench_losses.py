"""Losses against their baselines: time and peak memory as ratios, measured in one run.

Sections (``--only NAME`` runs one):

- ``onehot``: :class:`wlearn.losses.OneHotWassersteinLoss` forward + backward against
  ``F.cross_entropy`` on Cityscapes-sized logits (2, 19, 512, 1024) float32 with ignored
  pixels (255; 17%). Targets (issue 17): at most 1.1x the time and no more peak memory than
  cross-entropy. Time: ``--processes`` fresh Python processes each time the two losses in
  turn, round after round (``--repeat`` rounds after one untimed), and divide each round's
  time by cross-entropy's in the same round; the target is on the median over processes of
  each process's median ratio. One ``PASS``/``FAIL`` line per target.
- ``sinkhorn``: :class:`wlearn.losses.SinkhornLoss` forward + backward on B=128 pairs of K=1000
  bins against (a) POT's ``ot.sinkhorn2`` on torch tensors looped over the batch with
  autograd, and (b) autograd through the same log-domain iterations unrolled (same kernel,
  same number of iterations). Targets: >= 10x faster than (a); >= 3x faster and >= 5x less
  peak memory than (b).

Peak memory. On CUDA: ``torch.cuda.max_memory_allocated`` during one forward + backward,
minus what was allocated before it. On CPU torch keeps no allocator statistics (and
``tracemalloc`` does not see torch's allocations), so each loss runs in a fresh Python process
(``--case``): the inputs are built, a tiny call loads the code paths, then one forward +
backward on the full inputs; the peak is the growth of the process's resident-set high-water
mark over that call, read from ``/proc/self/status`` (``VmHWM`` after resetting it through
``/proc/self/clear_refs``, since a child process inherits its parent's ``ru_maxrss`` across
exec; ``ru_maxrss`` is the fallback off Linux). Large tensors are mmap-ed and returned to the
system when freed, so this high-water mark follows the live tensors; it also counts the
gradient of the logits, equally for both.

    python benchmarks/bench_losses.py [--only onehot|sinkhorn] [--device cpu|cuda]
        [--repeat 7] [--processes 3] [--threads 2] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
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
    timeit,
    verdict,
)

import wlearn  # noqa: E402
from wlearn.ground import line  # noqa: E402
from wlearn.losses import OneHotWassersteinLoss  # noqa: E402

SHAPE = (2, 19, 512, 1024)  # (N, C, H, W): two Cityscapes crops at half resolution
IGNORE = 255


def _onehot_inputs(device: torch.device, shape=SHAPE, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    N, C, H, W = shape
    logits = torch.randn(shape, generator=g).to(device).requires_grad_()
    target = torch.randint(0, C, (N, H, W), generator=g)
    target[:, : H // 8] = IGNORE  # a band of ignored pixels (Cityscapes' "void")
    target[torch.rand((N, H, W), generator=g) < 0.05] = IGNORE
    return logits, target.to(device)


def _onehot_losses(C: int, device: torch.device):
    ow = OneHotWassersteinLoss(line(C, 2), ignore_index=IGNORE).to(device)
    return {
        "cross_entropy": lambda z, t: F.cross_entropy(z, t, ignore_index=IGNORE),
        "onehot_wasserstein": ow,
    }


def _step(loss_fn, logits, target):
    logits.grad = None
    loss_fn(logits, target).backward()


def _onehot_case(name: str, device: torch.device):
    fn = _onehot_losses(SHAPE[1], device)[name]
    small_z, small_t = _onehot_inputs(device, (1, SHAPE[1], 8, 8))
    _step(fn, small_z, small_t)  # load code paths before measuring
    logits, target = _onehot_inputs(device, SHAPE)
    return lambda: _step(fn, logits, target)


def _peak_case(name: str, device: torch.device) -> float:
    """Peak extra memory (bytes) of one forward + backward of case ``name`` (see CASES)."""
    return peak_bytes(CASES[name](device), device)


def _peak(name: str, device: torch.device) -> float:
    return fresh_process(__file__, ["--case", name, "--device", str(device)])["peak"]


def _onehot_round_times(device: torch.device, repeat: int, clock) -> dict:
    """This process's times (s) of each loss per round, the two interleaved."""
    logits, target = _onehot_inputs(device)
    losses = _onehot_losses(SHAPE[1], device)
    steps = {n: (lambda f=f: _step(f, logits, target)) for n, f in losses.items()}
    return interleaved(steps, device, repeat, clock=clock)


def bench_onehot(device: torch.device, args) -> bool:
    """OneHotWassersteinLoss vs F.cross_entropy: forward + backward time and peak memory."""
    print(
        f"\n== onehot: OneHotWassersteinLoss vs F.cross_entropy, logits {SHAPE} float32, "
        f"ignore_index={IGNORE}; {args.processes} fresh processes x {args.repeat} rounds"
    )
    P = SHAPE[0] * SHAPE[2] * SHAPE[3]
    per_process = []
    print(f"{'process':>8} {'CE s':>8} {'OW s':>8}   {'OW / CE time: median   min   max':>32}")
    for k in range(args.processes):
        extra = [
            "--threads",
            str(args.threads),
            "--clock",
            args.clock,
            "--repeat",
            str(args.repeat),
        ]
        t = fresh_process(__file__, ["--times", "onehot", "--device", str(device), *extra])
        st = ratio_stats(t["onehot_wasserstein"], t["cross_entropy"])
        per_process.append(st)
        ce, ow = (sorted(t[n])[len(t[n]) // 2] for n in ("cross_entropy", "onehot_wasserstein"))
        print(
            f"{k + 1:>8} {ce:8.4f} {ow:8.4f}   {st['median']:21.3f} {st['min']:5.3f} "
            f"{st['max']:5.3f}   ({P / ce:.3g} vs {P / ow:.3g} pixels/s)"
        )
    meds = sorted(st["median"] for st in per_process)
    med = meds[len(meds) // 2]
    m_ce, m_ow = _peak("cross_entropy", device), _peak("onehot_wasserstein", device)
    mib = 2.0**20
    print(
        f"median over processes {med:.3f}x (process medians {meds[0]:.3f}-{meds[-1]:.3f}); "
        f"peak memory: cross_entropy {m_ce / mib:.1f} MiB, onehot_wasserstein "
        f"{m_ow / mib:.1f} MiB ({'CUDA max_memory_allocated' if device.type == 'cuda' else 'VmHWM growth, fresh process'})"
    )
    ok = verdict("OneHotWassersteinLoss / cross-entropy time", med, 1.1)
    ok &= verdict("OneHotWassersteinLoss / cross-entropy peak memory", m_ow / m_ce, 1.0, "ratio")
    return ok


# --- sinkhorn: SinkhornLoss against POT looped and against unrolled autograd -----------------
B_SK, K_SK, REG_SK, TOL_SK = 128, 1000, 0.05, 1e-6


def _sinkhorn_inputs(device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(K_SK, 20, generator=g)
    x = x / x.norm(dim=1, keepdim=True)  # random unit vectors
    M = torch.cdist(x, x)
    M = (M / M.max() * 0.999).to(device)  # into [0, 1)
    logits = torch.randn(B_SK, K_SK, generator=g).to(device).requires_grad_()
    y = torch.softmax(2 * torch.randn(B_SK, K_SK, generator=g), -1).to(device)
    return M, logits, y


def _unrolled_sinkhorn(h, y, M, reg, n_iter):
    """Baseline (b): the log-domain iteration of wlearn.ot with autograd recording every step."""
    from wlearn._kernels import MatmulKernel

    kern = MatmulKernel(M, reg)
    la, lb = h.log(), y.log()
    f, g = torch.zeros_like(h), torch.zeros_like(y)
    for _ in range(n_iter):
        f = reg * (la - kern.lse_rows(g))
        g = reg * (lb - kern.lse_cols(f))
    return kern.cost(f, g).mean()


def _sinkhorn_case(name: str, device: torch.device):
    from wlearn.losses import SinkhornLoss

    M, logits, y = _sinkhorn_inputs(device)
    loss = SinkhornLoss(M, REG_SK, tol=TOL_SK, max_iter=1000)
    loss(torch.softmax(logits, -1), y)  # also gives the iteration count for (b)
    n_iter = loss.last_n_iter
    if name == "sinkhorn_wlearn":
        fn = lambda: loss(torch.softmax(logits, -1), y)  # noqa: E731
    elif name == "sinkhorn_unrolled":
        fn = lambda: _unrolled_sinkhorn(torch.softmax(logits, -1), y, M, REG_SK, n_iter)  # noqa: E731
    else:  # sinkhorn_pot: POT on torch tensors, looped, autograd through POT
        import ot

        def fn():
            h = torch.softmax(logits, -1)
            return torch.stack(
                [
                    ot.sinkhorn2(
                        h[i], y[i], M, REG_SK, method="sinkhorn", stopThr=TOL_SK, numItermax=1000
                    )
                    for i in range(B_SK)
                ]
            ).mean()

    def run():
        logits.grad = None
        fn().backward()

    run._n_iter = n_iter
    return run


def bench_sinkhorn(device: torch.device, args) -> bool:
    """SinkhornLoss vs POT looped (a) and unrolled autograd (b): time and peak memory."""
    repeat = args.repeat
    print(
        f"\n== sinkhorn: SinkhornLoss forward+backward, B={B_SK}, K={K_SK}, reg={REG_SK}, "
        f"tol={TOL_SK:g}, float32"
    )
    runs = {n: _sinkhorn_case(n, device) for n in ("sinkhorn_wlearn", "sinkhorn_unrolled")}
    t = {n: timeit(r, device, repeat=repeat) for n, r in runs.items()}
    t["sinkhorn_pot"] = timeit(_sinkhorn_case("sinkhorn_pot", device), device, repeat=1, warmup=0)
    m = {n: _peak(n, device) for n in ("sinkhorn_wlearn", "sinkhorn_unrolled")}
    print(
        f"iterations to tol: {runs['sinkhorn_wlearn']._n_iter} (the unrolled baseline runs every pair that many times; wlearn stops each pair on its own)"
    )
    print(f"{'method':>34} {'fwd+bwd s':>10} {'peak MiB':>9}")
    labels = {
        "sinkhorn_wlearn": "wlearn SinkhornLoss",
        "sinkhorn_pot": "(a) POT looped + autograd",
        "sinkhorn_unrolled": "(b) unrolled log-domain autograd",
    }
    for n in ("sinkhorn_wlearn", "sinkhorn_pot", "sinkhorn_unrolled"):
        mem = f"{m[n] / 2**20:9.1f}" if n in m else f"{'-':>9}"
        print(f"{labels[n]:>34} {t[n]:10.4f} {mem}")
    sa = t["sinkhorn_pot"] / t["sinkhorn_wlearn"]
    sb = t["sinkhorn_unrolled"] / t["sinkhorn_wlearn"]
    mb = m["sinkhorn_unrolled"] / max(m["sinkhorn_wlearn"], 1.0)
    ok = sa >= 10 and sb >= 3 and mb >= 5
    print(
        f"speed-up vs (a) {sa:.1f}x (target >= 10); vs (b) {sb:.1f}x (target >= 3); "
        f"peak memory (b)/wlearn {mb:.1f}x (target >= 5) -> {'OK' if ok else 'MISSED'}"
    )
    return ok


CASES = {
    "cross_entropy": lambda d: _onehot_case("cross_entropy", d),
    "onehot_wasserstein": lambda d: _onehot_case("onehot_wasserstein", d),
    "sinkhorn_wlearn": lambda d: _sinkhorn_case("sinkhorn_wlearn", d),
    "sinkhorn_unrolled": lambda d: _sinkhorn_case("sinkhorn_unrolled", d),
}


SECTIONS = {"onehot": bench_onehot, "sinkhorn": bench_sinkhorn}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=sorted(SECTIONS), default=None, help="run one section")
    p.add_argument("--device", default=None)
    p.add_argument("--repeat", type=int, default=7, help="timed rounds (per process)")
    p.add_argument("--processes", type=int, default=3, help="fresh processes (onehot)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one peak
    p.add_argument("--times", default=None, help=argparse.SUPPRESS)  # internal: one process
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = wlearn.get_device(args.device)
    if args.case is not None:
        print(json.dumps({"peak": _peak_case(args.case, device)}))
        return 0
    if args.times is not None:
        print(json.dumps(_onehot_round_times(device, args.repeat, CLOCKS[args.clock])))
        return 0
    if device.type == "cpu":
        print(load_note(args.threads))
    print(f"device: {device_name(device)}")
    ok = True
    for name, fn in SECTIONS.items():
        if args.only in (None, name):
            ok &= fn(device, args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
