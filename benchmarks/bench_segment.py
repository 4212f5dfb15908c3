"""ENet training throughput and peak memory per loss, as ratios to cross-entropy, in one run.

One training step = forward (autocast with ``--amp``), the loss in float32, backward and an
Adam step, on random images and targets (a band of ignored pixels, like Cityscapes' void).
Every loss of ``python -m wlearn.segment train --loss`` is measured: ``ce`` (the baseline),
``ial``, ``wass-d``, ``wass-d2``, ``wass-huber``. Rounds are interleaved (one timed block
of steps per loss in turn, best of ``--repeat``), so that a busy machine slows all alike.

Peak memory, as in ``benchmarks/bench_losses.py``: on CUDA ``torch.cuda.max_memory_allocated``
over one step, minus what was allocated before it; on CPU each loss runs in a fresh Python
process (``--case``) and the peak is the growth of the resident-set high-water mark
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``) over one step.

    python benchmarks/bench_segment.py                       # CUDA: 512 x 1024, batch 4, bf16
    python benchmarks/bench_segment.py --size 128 256 --batch-size 2 --amp none   # CPU default
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, peak_bytes, sync  # noqa: E402

from wlearn.models import ENet  # noqa: E402
from wlearn.segment import runtime as rtm  # noqa: E402

IGNORE = 255


def make_step(
    loss_name: str,
    device: torch.device,
    size,
    batch_size: int,
    amp: str,
    width: float,
    seed: int = 0,
):
    """A closure doing one training step of ENet with ``loss_name`` on fixed random data."""
    torch.manual_seed(seed)
    model = ENet(19, width=width).to(device)
    loss_fn = rtm.build_loss(loss_name).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(seed)
    H, W = size
    x = torch.randn(batch_size, 3, H, W, generator=g).to(device)
    t = torch.randint(0, 19, (batch_size, H, W), generator=g)
    t[:, : H // 8] = IGNORE
    t = t.to(device)
    dtype = rtm.AMP_DTYPES[amp]
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
        loss = loss_fn(logits.float(), t)
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return step


def peak_case(a, device: torch.device) -> float:
    """Peak extra memory (MiB) of one training step after a warm-up step."""
    step = make_step(a.case, device, a.size, a.batch_size, a.amp, a.width)
    step()  # warm-up: optimizer state, code paths
    return peak_bytes(step, device) / 2**20


def peak(a, name: str, device: torch.device) -> float:
    if device.type == "cuda":
        return peak_case(argparse.Namespace(**{**vars(a), "case": name}), device)
    cmd = [
        sys.executable,
        __file__,
        "--case",
        name,
        "--device",
        str(device),
        "--amp",
        a.amp,
        "--batch-size",
        str(a.batch_size),
        "--width",
        str(a.width),
        "--size",
        *map(str, a.size),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def run(a) -> dict:
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    steps = {n: make_step(n, device, a.size, a.batch_size, a.amp, a.width) for n in rtm.LOSSES}
    for s in steps.values():  # warm-up (cuDNN autotuning, allocator)
        s()
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(a.repeat):
        for n, s in steps.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(a.steps):
                s()
            sync(device)
            best[n] = min(best[n], time.perf_counter() - t0)
    del steps
    if device.type == "cuda":
        torch.cuda.empty_cache()
    res = {
        "device": device_name(device),
        "size": list(a.size),
        "batch_size": a.batch_size,
        "amp": a.amp,
        "width": a.width,
        "losses": {},
    }
    for n in rtm.LOSSES:
        res["losses"][n] = {
            "images_per_s": a.batch_size * a.steps / best[n],
            "peak_mib": peak(a, n, device),
        }
    return res


def report(res: dict) -> str:
    ce = res["losses"]["ce"]
    H, W = res["size"]
    lines = [
        f"ENet training step, {res['device']}, {H} x {W}, batch {res['batch_size']}, "
        f"AMP {res['amp']}, width {res['width']}",
        f"{'loss':>11} {'images/s':>9} {'peak MiB':>9} {'speed/CE':>9} {'memory/CE':>10}",
    ]
    for n, r in res["losses"].items():
        lines.append(
            f"{n:>11} {r['images_per_s']:9.2f} {r['peak_mib']:9.1f} "
            f"{r['images_per_s'] / ce['images_per_s']:9.2f} {r['peak_mib'] / ce['peak_mib']:10.2f}"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="default 512 1024 on CUDA, 128 256 on CPU",
    )
    ap.add_argument("--batch-size", type=int, default=None, help="default 4 on CUDA, 2 on CPU")
    ap.add_argument(
        "--amp",
        choices=list(rtm.AMP_DTYPES),
        default=None,
        help="default bf16 on CUDA, none on CPU",
    )
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=None, help="steps per timed block")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--case", choices=rtm.LOSSES, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    cuda = (a.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    a.size = a.size or ([512, 1024] if cuda else [128, 256])
    a.batch_size = a.batch_size or (4 if cuda else 2)
    a.amp = a.amp or ("bf16" if cuda else "none")
    a.steps = a.steps or (10 if cuda else 2)
    if a.case is not None:
        print(json.dumps({"peak_mib": peak_case(a, torch.device(a.device or "cpu"))}))
        return
    res = run(a)
    print(report(res))
    if a.json is not None:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
