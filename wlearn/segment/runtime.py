"""What the segmentation command needs around the engine: processes, data, losses, records.

- :func:`init_distributed` / :class:`Runtime`: one process per GPU under ``torchrun`` (env
  ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), backend ``nccl`` on CUDA and ``gloo`` on CPU;
  a single process otherwise. Only rank 0 writes.
- :func:`build_loss`: the losses of Liu et al. (2020) Table 1 by name, on the severity matrix
  of :func:`wlearn.ground.severity_matrix`.
- :func:`make_loaders`: Cityscapes-layout folders (real or generated) with a
  ``DistributedSampler`` for training and an unpadded shard per rank for evaluation.
- :func:`peak_memory_mib`, :func:`append_csv`: the per-epoch record of ``out/metrics.csv``.

Introduced in notebooks/09_cityscapes_gpu.ipynb.
"""

from __future__ import annotations

import csv
import os
import resource
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from wlearn._env import get_device
from wlearn.data.cityscapes import CLASS_NAMES, IGNORE_INDEX, Cityscapes, PairedTransform

LOSSES = ("ce", "ial", "wass-d", "wass-d2", "wass-huber")
"""Names accepted by :func:`build_loss` (rows of Liu et al. 2020, Table 1)."""
AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Runtime:
    """Where this process runs: ``rank`` of ``world_size`` processes, on ``device``.

    Attributes
    ----------
    rank : int
        This process's rank (``RANK``).
    world_size : int
        Number of processes (``WORLD_SIZE``).
    local_rank : int
        Rank on this machine (``LOCAL_RANK``): the GPU it uses.
    device : torch.device

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, CSV files and logs."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    if v is None:
        return default
    if not v.strip().isdigit():
        raise ValueError(
            f"{name}: expected a non-negative integer in the environment, got {v!r}"
            f"; unset {name} or launch with torchrun, which sets it"
        )
    return int(v)


def init_distributed(device=None) -> Runtime:
    """Start ``torch.distributed`` when launched by ``torchrun`` with ``WORLD_SIZE > 1``.

    Parameters
    ----------
    device : str, torch.device or None
        ``None``: CUDA when present (``cuda:LOCAL_RANK`` under torchrun), else CPU.

    Returns
    -------
    Runtime
        Backend ``nccl`` when the device is CUDA, ``gloo`` otherwise.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = get_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 and dev.index is None else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world
        )
    return Runtime(rank, world, local, dev)


def shutdown(rt: Runtime) -> None:
    """End the process group (if this process started one), after every rank got here:
    a gloo rank that tears down its connections while a peer is still writing its last
    checkpoint can abort the peer ("terminate called without an active exception").

    Parameters
    ----------
    rt : Runtime
        What :func:`init_distributed` returned.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    if rt.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def build_loss(name: str, *, tau: float = 0.5, ignore_index: int = IGNORE_INDEX) -> nn.Module:
    r"""A loss of Liu et al. (2020, Table 1) by name.

    - ``"ce"``: cross-entropy;
    - ``"ial"``: :class:`wlearn.losses.ImportanceAwareLoss` (Chen, Gong & Yang 2017);
    - ``"wass-d"``, ``"wass-d2"``, ``"wass-huber"``: :class:`wlearn.losses.OneHotWassersteinLoss`
      with ground matrix :math:`f(D)`, ``D`` = :func:`wlearn.ground.severity_matrix` and
      :math:`f(d) = d`, :math:`d^2` (:func:`wlearn.ground.power`) or the Huber transform
      :math:`H_\tau` (:func:`wlearn.ground.huber`), Liu et al. eq. 2-4.

    Every loss skips pixels whose target is ``ignore_index``.

    Parameters
    ----------
    name : {"ce", "ial", "wass-d", "wass-d2", "wass-huber"}
    tau : float
        Huber threshold of ``"wass-huber"``.
    ignore_index : int
        Target value to skip (255 for Cityscapes ``trainIds``).

    Returns
    -------
    nn.Module
        A loss ``loss(logits (B, 19, H, W), target (B, H, W))``.
    """
    from wlearn.ground import huber, power, severity_matrix
    from wlearn.losses import ImportanceAwareLoss, OneHotWassersteinLoss

    if name == "ce":
        return nn.CrossEntropyLoss(ignore_index=ignore_index)
    if name == "ial":
        return ImportanceAwareLoss("cityscapes", ignore_index=ignore_index)
    D = severity_matrix("cityscapes")  # (19, 19), rows = predicted, columns = true
    grounds = {
        "wass-d": lambda: D,
        "wass-d2": lambda: power(D, 2),
        "wass-huber": lambda: huber(D, tau),
    }
    if name not in grounds:
        raise ValueError(
            f"loss: expected one of {LOSSES}, got {name!r}; pick one of these "
            "names (the rows of Liu et al. 2020, Table 1)"
        )
    return OneHotWassersteinLoss(grounds[name](), ignore_index=ignore_index)


def group_indices(group: int = 4) -> list[int]:
    """``trainId`` of the classes in one IAL importance group (Group 4: the road users).

    Parameters
    ----------
    group : {1, 2, 3, 4}
        See :func:`wlearn.ground.importance_groups` (Liu et al. 2020, Related Work).

    Returns
    -------
    list of int
    """
    from wlearn.ground import importance_groups

    return [i for i, g in enumerate(importance_groups("cityscapes").values()) if g == group]


def make_dataset(
    root,
    split: str,
    *,
    size=None,
    crop=None,
    scale=None,
    train: bool = False,
    limit: int | None = None,
):
    """A :class:`~wlearn.data.cityscapes.Cityscapes` split, optionally resized to ``size``,
    with random ``scale`` / ``crop`` / flips when ``train``, cut to its first ``limit`` items.

    Parameters
    ----------
    root : str or Path
        Cityscapes-layout folder.
    split : {"train", "val", "test"}
    size : (int, int) or None
        Resize every pair to ``(H, W)`` first.
    crop : (int, int) or None
        Random crop (``train`` only).
    scale : (float, float) or None
        Random rescaling range (``train`` only).
    train : bool
        Apply the random augmentation (:class:`~wlearn.data.cityscapes.PairedTransform`).
    limit : int or None
        Keep the first ``limit`` items.

    Returns
    -------
    Dataset
        Items ``(image (3, H, W), target (H, W) int64)``.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    tf = PairedTransform(scale=scale, crop=crop, hflip=True) if train else None
    ds = Cityscapes(root, split, transform=tf, size=None if size is None else tuple(size))
    if limit is not None:
        ds = Subset(ds, range(min(limit, len(ds))))
    return ds


def make_loaders(
    train_ds, val_ds, rt: Runtime, *, batch_size: int, workers: int = 0, seed: int = 0
):
    """Training loader with a ``DistributedSampler`` (shuffled, seeded; call
    ``sampler.set_epoch(epoch)`` each epoch; also used with one process, so that the order
    of a resumed run depends only on the epoch), and a validation loader over this rank's
    shard ``rank::world_size`` (no padding, so that no image is counted twice).

    Parameters
    ----------
    train_ds, val_ds : Dataset (``val_ds`` may be None)
    rt : Runtime
    batch_size : int
        Per process.
    workers : int
        Data-loading processes.
    seed : int
        Seeds the shuffling.

    Returns
    -------
    train_loader, sampler, val_loader
        ``val_loader`` is None without ``val_ds``.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    sampler = DistributedSampler(
        train_ds,
        num_replicas=rt.world_size,
        rank=rt.rank,
        shuffle=True,
        seed=seed,
        drop_last=rt.distributed,
    )
    train = DataLoader(
        train_ds,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        **_loader_kwargs(rt, workers),
    )
    val = (
        None if val_ds is None else shard_loader(val_ds, rt, batch_size=batch_size, workers=workers)
    )
    return train, sampler, val


def _loader_kwargs(rt: Runtime, workers: int) -> dict:
    return {
        "num_workers": workers,
        "pin_memory": rt.device.type == "cuda",
        "persistent_workers": workers > 0,
    }


def shard_loader(ds, rt: Runtime, *, batch_size: int, workers: int = 0) -> DataLoader:
    """In-order loader over this rank's shard ``ds[rank::world_size]`` (for evaluation).

    Parameters
    ----------
    ds : Dataset
    rt : Runtime
    batch_size : int
    workers : int
        Data-loading processes.

    Returns
    -------
    DataLoader

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    shard = Subset(ds, range(rt.rank, len(ds), rt.world_size))
    return DataLoader(shard, batch_size=batch_size, shuffle=False, **_loader_kwargs(rt, workers))


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak for :func:`peak_memory_mib`.

    Parameters
    ----------
    device : torch.device
        CUDA: reset torch's peak statistics; CPU: the process's resident-set high-water mark.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # reset the resident-set high-water mark (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak_memory`, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only). CPU: the process's resident-set
    high-water mark (``VmHWM`` in ``/proc/self/status``, else ``ru_maxrss``), which also
    counts the Python interpreter and libraries: compare CPU figures only with each other.

    Parameters
    ----------
    device : torch.device

    Returns
    -------
    float

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for row in f:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1]) / 1024  # KiB -> MiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def csv_columns() -> list[str]:
    """Columns of ``metrics.csv``: one row per epoch.

    Returns
    -------
    list of str

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    return (
        ["epoch", "train_loss", "val_miou", "group4_iou"]
        + [f"iou_{n.replace(' ', '_')}" for n in CLASS_NAMES]
        + ["lr", "seconds", "cpu_seconds", "images_per_s", "peak_mem_mib"]
    )


def append_csv(path, row: dict) -> None:
    """Append ``row`` to the CSV at ``path`` (header written when the file is new). A resumed
    run first drops rows of epochs that it is about to redo (see :func:`truncate_csv`).

    Parameters
    ----------
    path : str or Path
    row : dict
        ``{column: value}``; missing columns are left empty.

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    path = Path(path)
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=csv_columns())
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in csv_columns()})


def truncate_csv(path, last_epoch: int) -> None:
    """Keep only the rows of epochs ``<= last_epoch`` (those the checkpoint holds).

    Parameters
    ----------
    path : str or Path
        The CSV (nothing happens when it does not exist).
    last_epoch : int

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    path = Path(path)
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= last_epoch]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=csv_columns())
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
