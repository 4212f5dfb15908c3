"""``python -m wlearn.segment train|evaluate|predict``: Cityscapes segmentation from a shell.

Usage::

    # cross-entropy first, then fine-tune with a Wasserstein loss (Liu et al. 2020 protocol)
    python -m wlearn.segment train --data data/cityscapes --loss ce --epochs 300 --out runs/ce
    python -m wlearn.segment train --data data/cityscapes --loss wass-d2 --init runs/ce/last.pt \\
        --epochs 50 --lr 1e-4 --amp bf16 --out runs/wass-d2
    # several GPUs: one process per GPU
    torchrun --nproc_per_node 4 -m wlearn.segment train --data data/cityscapes ...
    python -m wlearn.segment evaluate --data data/cityscapes --checkpoint runs/wass-d2/last.pt
    python -m wlearn.segment predict --data data/cityscapes --checkpoint runs/wass-d2/last.pt \\
        --out runs/wass-d2/pred --limit 8
    # the weights of a run, with a manifest (commands, seed, code and data versions, SHA-256)
    python -m wlearn.segment export --run runs/ce --data data/scenes --out ce_start.pt

``train`` writes ``out/last.pt`` (model, optimizer, scheduler, AMP scaler, epoch, args,
history, random states) and a row of ``out/metrics.csv`` after every epoch (only rank 0
writes); ``--resume`` continues from ``out/last.pt``. A NaN or infinite loss stops the run
with exit status 3 and a message naming the epoch, the step and the loss, before any
optimizer step or checkpoint. ``--data`` is a folder in the Cityscapes layout: the real
dataset (``data_scripts/prepare_cityscapes.py``) or generated scenes
(``data_scripts/make_scenes.py``).

Introduced in notebooks/09_cityscapes_gpu.ipynb.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from wlearn._env import seed_everything
from wlearn.data.cityscapes import CLASS_NAMES, NUM_CLASSES
from wlearn.segment import runtime as rtm
from wlearn.segment.engine import evaluate, load_checkpoint, save_checkpoint, train_one_epoch

NAN_EXIT = 3
"""Exit status of a run stopped by a non-finite loss."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="Cityscapes-layout root folder")
    p.add_argument("--model", choices=["enet"], default="enet")
    p.add_argument(
        "--width",
        type=float,
        default=None,
        help="ENet channel multiplier (train: default 1; evaluate/predict: the checkpoint's)",
    )
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="resize every image and label to H x W first (default: native size)",
    )
    p.add_argument(
        "--amp",
        choices=list(rtm.AMP_DTYPES),
        default="none",
        help="autocast the model (the losses compute in float32)",
    )
    p.add_argument("--workers", type=int, default=0, help="data-loading processes")
    p.add_argument("--device", default=None, help="default: CUDA when present, else CPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m wlearn.segment`` (commands ``train``, ``evaluate``, ``predict``).

    Returns
    -------
    argparse.ArgumentParser

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    ap = argparse.ArgumentParser(
        prog="python -m wlearn.segment", description=__doc__.split("\n")[0]
    )
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train (or fine-tune with --init) and checkpoint every epoch")
    _common(t)
    t.add_argument("--loss", choices=rtm.LOSSES, default="ce")
    t.add_argument("--tau", type=float, default=0.5, help="Huber threshold of --loss wass-huber")
    t.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument(
        "--crop",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="random crop of the (resized) training images",
    )
    t.add_argument(
        "--scale",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="random rescaling range of the training images (default: none)",
    )
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--weight-decay", type=float, default=2e-4)
    t.add_argument("--limit", type=int, default=None, help="use the first N training images")
    t.add_argument("--val-limit", type=int, default=None, help="use the first N val images")
    t.add_argument("--no-val", action="store_true", help="skip validation after each epoch")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--out", type=Path, required=True)
    e = sub.add_parser("evaluate", help="per-class IoU, Group-4 IoU and mIoU of a checkpoint")
    _common(e)
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--split", choices=["train", "val"], default="val")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--json", type=Path, default=None, help="also write the scores here")
    pr = sub.add_parser("predict", help="write colourised predictions (Cityscapes palette)")
    _common(pr)
    pr.add_argument("--checkpoint", type=Path, required=True)
    pr.add_argument("--split", choices=["train", "val", "test"], default="val")
    pr.add_argument("--limit", type=int, default=None)
    pr.add_argument("--out", type=Path, required=True)
    x = sub.add_parser("export", help="weights of a run and their manifest (wlearn.segment.start)")
    x.add_argument("--run", type=Path, required=True, help="the --out folder of a train run")
    x.add_argument("--data", type=Path, required=True, help="the --data folder it trained on")
    x.add_argument("--out", type=Path, required=True, help="weights file; manifest: same .json")
    return ap


def _check_args(ap, a) -> None:
    for name in ("batch_size", "epochs"):
        v = getattr(a, name, 1)
        if v < (0 if name == "epochs" else 1):
            ap.error(f"--{name.replace('_', '-')}: expected a positive integer, got {v}")
    if getattr(a, "lr", 1.0) <= 0:
        ap.error(f"--lr: expected a positive number, got {a.lr}")
    for name in ("size", "crop"):
        v = getattr(a, name, None)
        if v is not None and min(v) < 1:
            ap.error(f"--{name}: expected two positive integers H W, got {v}")


def build_model(a) -> torch.nn.Module:
    """The network named by the arguments (ENet, Paszke et al. 2016, Table 1, at ``a.width``).

    Parameters
    ----------
    a : argparse.Namespace
        Parsed arguments (``width``).

    Returns
    -------
    torch.nn.Module
        Logits (B, 19, H, W) for images (B, 3, H, W).
    """
    from wlearn.models import ENet

    return ENet(NUM_CLASSES, width=a.width)


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _log(rt, *msg, quiet: bool = False) -> None:
    if rt.is_main and not quiet:
        print(*msg, flush=True)


def _args_dict(a) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}


def _eval_kwargs(rt, amp) -> dict:
    return {
        "groups": {"Group 4": rtm.group_indices(4)},
        "amp_dtype": amp,
        "distributed": rt.distributed,
        "device": rt.device,
    }


def train(a, rt: rtm.Runtime) -> int:
    """The ``train`` command; returns the exit status.

    Parameters
    ----------
    a : argparse.Namespace
        Parsed arguments of ``train`` (see the module docstring).
    rt : Runtime
        From :func:`wlearn.segment.runtime.init_distributed`.

    Returns
    -------
    int
        0, or :data:`NAN_EXIT` when a non-finite loss stopped the run.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    out = Path(a.out)
    last, csv_path = out / "last.pt", out / "metrics.csv"
    if last.is_file() and not a.resume:
        raise SystemExit(
            f"--out: {last} exists; pass --resume to continue it, or choose another --out"
        )
    if not a.resume or not last.is_file():
        from wlearn.segment.start import code_version

        a.code_version = code_version()  # stored with the args: the code this run trains with
    seed_everything(a.seed)
    train_ds = rtm.make_dataset(
        a.data, "train", size=a.size, crop=a.crop, scale=a.scale, train=True, limit=a.limit
    )
    val_ds = None if a.no_val else rtm.make_dataset(a.data, "val", size=a.size, limit=a.val_limit)
    loader, sampler, val_loader = rtm.make_loaders(
        train_ds, val_ds, rt, batch_size=a.batch_size, workers=a.workers, seed=a.seed
    )
    model = build_model(a).to(rt.device)
    if a.init is not None:
        from wlearn.segment.start import manifest_path, verify

        if manifest_path(a.init).is_file():  # a starting point with a manifest: check its SHA
            verify(a.init)
        load_checkpoint(a.init, model=model, map_location=rt.device, restore_rng=False)
        _log(rt, f"init: weights from {a.init}", quiet=a.quiet)
    loss_fn = rtm.build_loss(a.loss, tau=a.tau).to(rt.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    total = max(1, a.epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=0.9)
    amp = rtm.AMP_DTYPES[a.amp]
    scaler = torch.amp.GradScaler(rt.device.type) if a.amp == "fp16" else None
    start, history = 0, []
    if a.resume and last.is_file():
        state = load_checkpoint(
            last,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            map_location=rt.device,
        )
        start, history = state["epoch"], state["history"]
        a.code_version = state["args"].get("code_version")
        _log(rt, f"resume: {last} after epoch {start}", quiet=a.quiet)
        if rt.is_main:
            rtm.truncate_csv(csv_path, start)
    net = model
    if rt.distributed:
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if rt.is_main:
        out.mkdir(parents=True, exist_ok=True)
    for epoch in range(start, a.epochs):
        sampler.set_epoch(epoch)
        rtm.reset_peak_memory(rt.device)
        t0, c0 = time.perf_counter(), time.process_time()
        desc = f"epoch {epoch + 1}/{a.epochs} (--loss {a.loss})"
        try:
            loss = train_one_epoch(
                net,
                loader,
                loss_fn,
                optimizer,
                device=rt.device,
                scheduler=scheduler,
                progress=a.progress and rt.is_main,
                desc=desc,
                amp_dtype=amp,
                scaler=scaler,
                distributed=rt.distributed,
            )
        except FloatingPointError as err:
            if rt.is_main:
                print(
                    f"stopped: {err}. Nothing was written for this epoch; {last} holds the "
                    f"last good epoch ({epoch}).",
                    file=sys.stderr,
                    flush=True,
                )
            return NAN_EXIT
        if rt.device.type == "cuda":
            torch.cuda.synchronize(rt.device)
        t_train = time.perf_counter() - t0
        n_images = len(sampler) * rt.world_size
        if rt.distributed:
            v = torch.tensor([loss], dtype=torch.float64, device=rt.device)
            dist.all_reduce(v)
            loss = float(v) / rt.world_size
        row = {
            "epoch": epoch + 1,
            "train_loss": loss,
            "lr": optimizer.param_groups[0]["lr"],
            "images_per_s": n_images / t_train,
        }
        if val_loader is not None:
            res = evaluate(net, val_loader, NUM_CLASSES, **_eval_kwargs(rt, amp))
            row.update(val_miou=res["miou"], group4_iou=res["group_iou"]["Group 4"])
            row.update(
                {
                    f"iou_{n.replace(' ', '_')}": float(v)
                    for n, v in zip(CLASS_NAMES, res["iou"], strict=True)
                }
            )
        row.update(
            seconds=time.perf_counter() - t0,
            cpu_seconds=time.process_time() - c0,
            peak_mem_mib=rtm.peak_memory_mib(rt.device),
        )
        history.append(row)
        if rt.is_main:
            save_checkpoint(
                last,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                epoch=epoch + 1,
                args=_args_dict(a),
                history=history,
                scaler=scaler,
            )
            rtm.append_csv(csv_path, row)
            val = (
                f", val mIoU {row['val_miou']:.3f}, Group 4 {row['group4_iou']:.3f}"
                if "val_miou" in row
                else ""
            )
            _log(
                rt,
                f"epoch {epoch + 1}/{a.epochs}: train loss {loss:.4f}{val}, "
                f"{row['images_per_s']:.1f} img/s, peak {row['peak_mem_mib']:.0f} MiB",
                quiet=a.quiet,
            )
    return 0


def _load_for_inference(a, rt):
    if not Path(a.checkpoint).is_file():
        raise ValueError(
            f"checkpoint: no file at {a.checkpoint}; pass the last.pt that "
            "'python -m wlearn.segment train --out DIR' wrote in DIR"
        )
    args = torch.load(a.checkpoint, map_location="cpu", weights_only=False).get("args", {})
    width = args.get("width")
    if a.width is None:
        a.width = 1.0 if width is None else width
    elif width is not None and width != a.width:
        raise SystemExit(f"--width: the checkpoint was trained with --width {width}, got {a.width}")
    model = build_model(a).to(rt.device)
    load_checkpoint(a.checkpoint, model=model, map_location=rt.device, restore_rng=False)
    return model.eval()


def format_scores(res: dict) -> str:
    """Per-class IoU with the official class names, Group-4 IoU and mIoU, as a text table.

    Parameters
    ----------
    res : dict
        What :func:`wlearn.segment.evaluate` returns with ``groups={"Group 4": ...}``.

    Returns
    -------
    str

    The columns of Liu et al. 2020, Table 1. Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    rows = [f"{'class':<15} {'IoU':>6}"]
    g4 = set(rtm.group_indices(4))
    for i, (name, v) in enumerate(zip(CLASS_NAMES, res["iou"].tolist(), strict=True)):
        rows.append(f"{name:<15} {100 * v:6.1f}" + ("  (Group 4)" if i in g4 else ""))
    rows.append(f"{'Group 4 IoU':<15} {100 * res['group_iou']['Group 4']:6.1f}")
    rows.append(f"{'mIoU':<15} {100 * res['miou']:6.1f}")
    return "\n".join(rows)


def evaluate_cmd(a, rt) -> int:
    """The ``evaluate`` command: scores of a checkpoint, printed (and written with ``--json``).

    Parameters
    ----------
    a : argparse.Namespace
        Parsed arguments of ``evaluate``.
    rt : Runtime

    Returns
    -------
    int
        The exit status, 0.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    model = _load_for_inference(a, rt)
    ds = rtm.make_dataset(a.data, a.split, size=a.size, limit=a.limit)
    loader = rtm.shard_loader(ds, rt, batch_size=a.batch_size, workers=a.workers)
    res = evaluate(model, loader, NUM_CLASSES, **_eval_kwargs(rt, rtm.AMP_DTYPES[a.amp]))
    _log(
        rt,
        f"{a.checkpoint} on {a.data} ({a.split}, {len(ds)} images)\n" + format_scores(res),
        quiet=a.quiet,
    )
    if a.json is not None and rt.is_main:
        scores = {
            "iou": dict(zip(CLASS_NAMES, res["iou"].tolist(), strict=True)),
            "group4_iou": res["group_iou"]["Group 4"],
            "miou": res["miou"],
            "pixel_accuracy": res["pixel_accuracy"],
        }
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(scores, indent=1))
    return 0


@torch.no_grad()
def predict_cmd(a, rt) -> int:
    """The ``predict`` command: ``OUT/<image name>_pred.png`` in the Cityscapes palette.

    Parameters
    ----------
    a : argparse.Namespace
        Parsed arguments of ``predict``.
    rt : Runtime

    Returns
    -------
    int
        The exit status, 0.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    from PIL import Image

    from wlearn.data.cityscapes import colorize

    model = _load_for_inference(a, rt)
    ds = rtm.make_dataset(a.data, a.split, size=a.size, limit=a.limit)
    base = ds.dataset if hasattr(ds, "dataset") else ds
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    amp = rtm.AMP_DTYPES[a.amp]
    for i in range(rt.rank, len(ds), rt.world_size):
        image, _ = ds[i]
        with torch.autocast(rt.device.type, dtype=amp, enabled=amp is not None):
            logits = model(image[None].to(rt.device))  # (1, 19, H, W)
        pred = logits.argmax(1)[0]  # (H, W)
        stem = base.files[i][0].name.replace("_leftImg8bit.png", "") if base.files else f"{i:06d}"
        Image.fromarray(colorize(pred)).save(out / f"{stem}_pred.png")
    _log(rt, f"predict: {len(ds)} colourised predictions under {out}", quiet=a.quiet)
    return 0


def export_cmd(a) -> int:
    """The ``export`` command: :func:`wlearn.segment.start.export_start`.

    Parameters
    ----------
    a : argparse.Namespace
        Parsed arguments of ``export`` (``run``, ``data``, ``out``).

    Returns
    -------
    int
        The exit status, 0.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb (``make ce-start``).
    """
    from wlearn.segment.start import export_start, manifest_path

    man = export_start(a.run, a.data, a.out)
    print(
        f"export: {a.out} ({man['bytes']} bytes, SHA-256 {man['sha256'][:12]}...) and "
        f"{manifest_path(a.out).name}; val mIoU {man['val']['miou']}, "
        f"{man['training']['cpu_seconds']:.0f} s of CPU"
    )
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m wlearn.segment``; returns the exit status.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    ap = build_parser()
    a = ap.parse_args(argv)
    if a.command == "export":
        return export_cmd(a)
    _check_args(ap, a)
    if a.command == "train" and a.width is None:
        a.width = 1.0
    rt = rtm.init_distributed(a.device)
    try:
        return {"train": train, "evaluate": evaluate_cmd, "predict": predict_cmd}[a.command](a, rt)
    finally:
        rtm.shutdown(rt)
