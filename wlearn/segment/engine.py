"""A reusable training and evaluation engine for semantic segmentation.

- :func:`train_one_epoch`, :func:`evaluate`: one pass, device-aware, with tqdm bars.
- :func:`fit`: several epochs with checkpoints (model, optimizer, scheduler, epoch, args,
  history and random-number states) written atomically after every epoch; a run that is
  stopped resumes where it stopped, with the same result as an uninterrupted run.
- :func:`finetune`, :func:`pretrain_finetune`: the protocol of Liu et al. (2020,
  Experiments): train with cross-entropy first (or start from a cross-entropy network), then
  fine-tune a copy of that network with each loss to compare.

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from wlearn._env import get_device, seed_everything
from wlearn.metrics.segmentation import ConfusionMatrix


def _to(batch, device):
    image, target = batch
    return image.to(device, non_blocking=True), target.to(device, non_blocking=True)


def train_one_epoch(
    model: nn.Module,
    loader,
    loss_fn,
    optimizer,
    *,
    device=None,
    scheduler=None,
    max_steps: int | None = None,
    progress: bool = True,
    desc: str = "train",
    amp_dtype: torch.dtype | None = None,
    scaler=None,
    distributed: bool = False,
) -> float:
    """One pass over ``loader``; returns the mean training loss.

    Parameters
    ----------
    model : nn.Module
        Maps images (B, 3, H, W) to logits (B, K, H, W).
    loader : iterable of (image (B, 3, H, W), target (B, H, W) int64)
    loss_fn : callable
        ``loss_fn(logits, target)`` -> scalar (e.g. ``nn.CrossEntropyLoss(ignore_index=255)``,
        :class:`wlearn.losses.OneHotWassersteinLoss`).
    optimizer : torch.optim.Optimizer
    device : torch device or None
        Default: the device of the model's parameters.
    scheduler : LR scheduler or None
        Stepped after every optimizer step.
    max_steps : int or None
        Stop after this many steps.
    progress : bool
        Show a tqdm bar.
    desc : str
        Progress-bar label, also named in the error raised on a non-finite loss.
    amp_dtype : torch.dtype or None
        Run the model under ``torch.autocast(device.type, dtype=amp_dtype)`` (``torch.bfloat16``
        or ``torch.float16``); the loss is computed in float32 outside autocast. Default: off.
    scaler : torch.amp.GradScaler or None
        Scales the loss before ``backward`` and unscales before the step (needed with float16).
    distributed : bool
        Under ``torch.distributed``: every rank learns whether any rank saw a non-finite loss
        (one ``all_reduce`` per step), so that all ranks stop together instead of hanging.

    Raises
    ------
    FloatingPointError
        When the loss is NaN or infinite, before ``backward`` and the optimizer step, or when
        the step made a weight NaN or infinite, right after it (so no broken weights are
        checkpointed); the message names ``desc``, the step, the loss function, the value and
        the cause (data, outputs that overflowed, or the loss). A batch whose targets are all
        ``loss_fn.ignore_index`` (a crop with no labelled pixel) is skipped: no step.

    See also notebooks/09_cityscapes_gpu.ipynb (``python -m wlearn.segment train`` runs it).
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    model.train()
    total, n = 0.0, 0
    ignore = getattr(loss_fn, "ignore_index", None)
    params = list(model.parameters())
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress)
    for batch in bar:
        if max_steps is not None and n >= max_steps:
            break
        image, target = _to(batch, device)
        void = ignore is not None and bool((target == ignore).all())
        if distributed and ignore is not None:  # every rank skips together, or none does
            import torch.distributed as dist

            flag = torch.tensor([int(not void)], device=device)
            dist.all_reduce(flag)
            void = int(flag) == 0
        if void:  # no labelled pixel: nothing to learn, and a mean over 0 pixels is NaN
            continue
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(image)
        loss = loss_fn(logits.float(), target)  # losses compute in float32
        _stop_if_not_finite(loss.detach(), distributed, desc, loss_fn, loss, n, image, logits)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        weights_ok = torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()
        _stop_if_not_finite(weights_ok, distributed, desc, loss_fn, loss, n, None, None)
        if scheduler is not None:
            scheduler.step()
        total, n = total + loss.item(), n + 1
        bar.set_postfix(loss=f"{total / n:.4f}")
    return total / max(n, 1)


def _stop_if_not_finite(value, distributed, desc, loss_fn, loss, n, image, logits) -> None:
    """Raise FloatingPointError (on every rank together) unless ``value`` is finite: the loss
    before the step (``image``, ``logits`` given) or the weights after it (a bool tensor)."""
    bad = ~torch.isfinite(value) if value.dtype != torch.bool else ~value
    if distributed:
        import torch.distributed as dist

        bad = bad.to(torch.int32)
        dist.all_reduce(bad)
    if not bool(bad):
        return
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
    where = f"{desc}: at step {n + 1} (on this rank or another)"
    if image is None:
        raise FloatingPointError(
            f"{where} the optimizer step made weights NaN/inf (loss {name} was "
            f"{loss.item():.4g}); stopped before any checkpoint. Lower lr, or use --amp bf16/none"
        )
    if not torch.isfinite(image).all():
        cause = "the input images hold NaN/inf: check the data loader"
    elif not torch.isfinite(logits.detach()).all() or logits.detach().abs().max() > 1e6:
        cause = "the model's outputs overflowed or grew huge. Lower lr, or use --amp bf16/none"
    else:
        cause = (
            "the loss failed on finite outputs (a crop with no labelled pixel gives a mean over "
            "0 pixels: give the loss an ignore_index attribute, as nn.CrossEntropyLoss has, and "
            "such crops are skipped)"
        )
    raise FloatingPointError(
        f"{where} loss {name} became {loss.item()}; stopped before the optimizer step: {cause}"
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    num_classes: int,
    *,
    device=None,
    ignore_index: int = 255,
    groups: dict | None = None,
    D=None,
    progress: bool = False,
    amp_dtype: torch.dtype | None = None,
    distributed: bool = False,
) -> dict:
    """Accumulate a :class:`~wlearn.metrics.ConfusionMatrix` over ``loader`` (eval mode).

    Returns :meth:`ConfusionMatrix.compute` (``confusion``, ``iou``, ``miou``,
    ``pixel_accuracy``, and ``group_iou`` / ``mean_severity`` when ``groups`` / ``D`` are given).
    ``amp_dtype`` runs the model under autocast (see :func:`train_one_epoch`). With
    ``distributed``, each rank evaluates its own shard of the data and the confusion matrices
    are summed over ranks (:meth:`ConfusionMatrix.all_reduce`) before the scores are
    computed, so every rank returns the scores of the whole data set.

    Parameters
    ----------
    model : nn.Module
        Maps images (B, 3, H, W) to logits (B, K, H, W).
    loader : iterable of (image (B, 3, H, W), target (B, H, W) int64)
    num_classes : int
        ``K``.
    device : torch device or None
        Default: the device of the model's parameters.
    ignore_index : int
        Target value to skip (255 for Cityscapes ``trainIds``).
    groups : dict or None
        ``{group name: class indices}`` for ``group_iou``.
    D : tensor or array, shape (K, K), or None
        Ground matrix for ``mean_severity`` (rows = predicted, columns = true class).
    progress : bool
        Show a tqdm bar.
    amp_dtype : torch.dtype or None
        Autocast dtype of the model, as in :func:`train_one_epoch`.
    distributed : bool
        Sum the counts over ``torch.distributed`` ranks.

    Returns
    -------
    dict
        See :meth:`wlearn.metrics.ConfusionMatrix.compute`; ``"confusion"`` has shape (K, K),
        ``"iou"`` shape (K,).

    IoU per class as in Liu et al. 2020, Experiments. Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index, device=device)
    for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
        image, target = _to(batch, device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(image)
        cm.update(logits, target)
    model.train(was_training)
    if distributed:
        cm.all_reduce()  # every rank now holds the counts of all ranks
    return cm.compute(groups=groups, D=D)


def _rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path,
    *,
    model,
    optimizer=None,
    scheduler=None,
    epoch: int = 0,
    args: dict | None = None,
    history: list | None = None,
    scaler=None,
) -> None:
    """Write a checkpoint atomically (temporary file, then rename).

    Holds ``model``, ``optimizer``, ``scheduler`` (and, when given, the AMP ``scaler``) state
    dicts, ``epoch`` (the number of finished epochs), ``args``, ``history`` and the
    random-number states.

    Parameters
    ----------
    path : str or Path
        The checkpoint file (its folder is created).
    model : nn.Module
    optimizer : torch.optim.Optimizer or None
    scheduler : LR scheduler or None
    epoch : int
        Number of finished epochs.
    args : dict or None
        Settings to store (e.g. the command-line arguments).
    history : list or None
        Per-epoch records.
    scaler : torch.amp.GradScaler or None

    See also notebooks/09_cityscapes_gpu.ipynb (``out/last.pt`` of ``python -m wlearn.segment``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "epoch": int(epoch),
        "args": dict(args or {}),
        "history": list(history or []),
        "rng": _rng_state(),
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path,
    *,
    model,
    optimizer=None,
    scheduler=None,
    map_location=None,
    restore_rng: bool = True,
    scaler=None,
) -> dict:
    """Load a checkpoint of :func:`save_checkpoint` into the given objects; returns it.

    Parameters
    ----------
    path : str or Path
        The checkpoint file.
    model : nn.Module
        Receives the weights.
    optimizer : torch.optim.Optimizer or None
    scheduler : LR scheduler or None
    map_location : torch device or None
        Default: the device of the model's parameters.
    restore_rng : bool
        Restore the random-number states (to resume a run exactly).
    scaler : torch.amp.GradScaler or None

    Returns
    -------
    dict
        The whole checkpoint (``epoch``, ``args``, ``history``...).

    See also notebooks/09_cityscapes_gpu.ipynb.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"path: no checkpoint at {path}; check the path, or train first "
            "(python -m wlearn.segment train ... --out DIR writes DIR/last.pt)"
        )
    map_location = map_location or next(model.parameters()).device
    state = torch.load(path, map_location=map_location, weights_only=False)
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if restore_rng:
        _set_rng_state(state["rng"])
    return state


def fit(
    model: nn.Module,
    train_loader,
    loss_fn,
    *,
    n_epochs: int,
    lr: float = 5e-4,
    weight_decay: float = 2e-4,
    optimizer=None,
    scheduler="poly",
    val_loader=None,
    num_classes: int | None = None,
    device=None,
    checkpoint=None,
    resume: bool = True,
    progress: bool = True,
    args: dict | None = None,
    eval_kwargs: dict | None = None,
    desc: str = "fit",
) -> list[dict]:
    """Train for ``n_epochs`` epochs, checkpointing after each; resume from ``checkpoint``.

    Parameters
    ----------
    model, train_loader, loss_fn : see :func:`train_one_epoch`
    n_epochs : int
        Total number of epochs (a resumed run does only the missing ones).
    lr, weight_decay : float
        For the default optimizer, Adam (as ENet's authors used).
    optimizer : torch.optim.Optimizer or None
    scheduler : "poly", None or an LR scheduler
        ``"poly"``: ``lr * (1 - step / total) ** 0.9``, stepped every iteration.
    val_loader : loader or None
        Evaluated after every epoch (needs ``num_classes``).
    num_classes : int or None
        ``K``, for the evaluation.
    device : torch device or None
        Default :func:`wlearn.get_device`.
    checkpoint : path or None
        Written after every epoch; if it exists and ``resume``, training continues from it.
    resume : bool
        Continue from an existing ``checkpoint``.
    progress : bool
        Show tqdm bars.
    args : dict or None
        Stored in the checkpoint (e.g. the command-line arguments).
    eval_kwargs : dict or None
        Passed to :func:`evaluate` (``groups``, ``D``).
    desc : str
        Progress-bar label.

    Returns
    -------
    history : list of dict
        One per epoch: ``epoch``, ``loss``, ``lr`` and, with a ``val_loader``, ``miou`` (and
        ``mean_severity`` / ``group_iou`` when asked for).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 0:
        raise ValueError(f"n_epochs: expected an integer >= 0, got {n_epochs!r}")
    if val_loader is not None and num_classes is None:
        raise ValueError(
            "num_classes: expected an integer when val_loader is given, got None; "
            "pass num_classes=K (19 for Cityscapes)"
        )
    device = get_device(device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if scheduler == "poly":
        total = max(1, n_epochs * len(train_loader))
        scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=0.9)
    elif isinstance(scheduler, str):
        raise ValueError(f"scheduler: expected 'poly', None or a scheduler, got {scheduler!r}")
    start, history = 0, []
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler)
        start, history = state["epoch"], state["history"]
    for epoch in range(start, n_epochs):
        loss = train_one_epoch(
            model,
            train_loader,
            loss_fn,
            optimizer,
            device=device,
            scheduler=scheduler,
            progress=progress,
            desc=f"{desc} {epoch + 1}/{n_epochs}",
        )
        rec = {"epoch": epoch + 1, "loss": loss, "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            res = evaluate(model, val_loader, num_classes, device=device, **(eval_kwargs or {}))
            rec.update(
                {k: v for k, v in res.items() if k in ("miou", "mean_severity", "group_iou")}
            )
        history.append(rec)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                epoch=epoch + 1,
                args=args,
                history=history,
            )
    return history


def finetune(
    model: nn.Module,
    train_loader,
    val_loader,
    losses: dict,
    *,
    num_classes: int,
    epochs: int = 1,
    lr: float = 5e-4,
    seeds=(0,),
    device=None,
    checkpoint_dir=None,
    progress: bool = True,
    eval_kwargs: dict | None = None,
    keep_models: bool = True,
    callback=None,
) -> dict:
    """Fine-tune a copy of ``model`` with every loss and every seed; evaluate each copy.

    For every loss in ``losses`` and every seed, a copy of ``model``'s weights is trained for
    ``epochs`` over ``train_loader`` with Adam at ``lr`` (poly decay), the seed setting dropout
    and batch order (:func:`wlearn.seed_everything` before each run), then evaluated on
    ``val_loader``. Every loss sees the same steps and the same data. Include
    cross-entropy in ``losses``: it is the control, trained for as long.

    Parameters
    ----------
    model : nn.Module
        The starting point, e.g. a cross-entropy network (left unchanged).
    train_loader, val_loader : loaders of (image (B, 3, H, W), target (B, H, W) int64)
    losses : dict
        ``{name: loss_fn}``.
    num_classes : int
        ``K``.
    epochs : int
        Epochs of each fine-tuning.
    lr : float
        Adam learning rate.
    seeds : sequence of int
        One fine-tuning per seed and loss.
    device : torch device or None
        Default :func:`wlearn.get_device`.
    checkpoint_dir : path or None
        Resumable checkpoints ``{name}_seed{seed}.pt`` go there.
    progress : bool
        Show tqdm bars.
    eval_kwargs : dict or None
        Passed to :func:`evaluate` (``groups``, ``D``).
    keep_models : bool
        Return the fine-tuned models of the first seed.
    callback : callable or None
        ``callback(name, seed, result)`` after each run (e.g. a progress bar).

    Returns
    -------
    dict
        ``"runs"`` (``{name: [evaluation per seed]}``) and, with ``keep_models``, ``"models"``
        (``{name: fine-tuned model of the first seed}``).

    The fine-tuning of Liu et al. 2020 (Experiments). Introduced in
    notebooks/08_importance_aware_segmentation.ipynb.
    """
    device = get_device(device)
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    ev = dict(eval_kwargs or {})
    base = copy.deepcopy(model.state_dict())
    out = {"runs": {name: [] for name in losses}, "models": {}}
    for name, loss_fn in losses.items():
        for k, seed in enumerate(seeds):
            seed_everything(seed)
            m = copy.deepcopy(model)
            m.load_state_dict(base)
            fit(
                m,
                train_loader,
                loss_fn,
                n_epochs=epochs,
                lr=lr,
                device=device,
                checkpoint=None if ckpt is None else ckpt / f"{name}_seed{seed}.pt",
                progress=progress,
                args={"phase": "finetune", "loss": name, "seed": seed},
                desc=f"{name} seed {seed}",
            )
            res = evaluate(m, val_loader, num_classes, device=device, **ev)
            out["runs"][name].append(res)
            if callback is not None:
                callback(name, seed, res)
            if keep_models and k == 0:
                out["models"][name] = m
    return out


def pretrain_finetune(
    model: nn.Module,
    train_loader,
    val_loader,
    losses: dict,
    *,
    num_classes: int,
    pre_epochs: int,
    ft_epochs: int,
    lr: float = 5e-3,
    ft_lr: float = 1e-3,
    seeds=(0,),
    pre_loss=None,
    device=None,
    checkpoint_dir=None,
    progress: bool = True,
    eval_kwargs: dict | None = None,
    keep_models: bool = True,
) -> dict:
    """Liu et al.'s protocol: cross-entropy training, then fine-tuning with each loss.

    ``model`` is trained with ``pre_loss`` (default cross-entropy, ignore index 255) for
    ``pre_epochs`` (in place); then :func:`finetune` fine-tunes a copy of it for ``ft_epochs``
    at ``ft_lr`` with every loss and seed. Include cross-entropy itself in ``losses`` for a
    fair baseline trained for as long.

    Parameters
    ----------
    model : nn.Module
        Maps images (B, 3, H, W) to logits (B, K, H, W); pre-trained in place.
    train_loader, val_loader : loaders of (image (B, 3, H, W), target (B, H, W) int64)
    losses : dict
        ``{name: loss_fn}``.
    num_classes : int
        ``K``.
    pre_epochs, ft_epochs : int
        Epochs of pre-training and of each fine-tuning.
    lr, ft_lr : float
        Adam learning rates of the two phases.
    seeds : sequence of int
        One fine-tuning per seed and loss.
    pre_loss : callable or None
        Default ``nn.CrossEntropyLoss(ignore_index=255)``.
    device : torch device or None
        Default :func:`wlearn.get_device`.
    checkpoint_dir : path or None
        Checkpoints ``pretrain.pt`` and ``{name}_seed{seed}.pt`` (resumable) go there.
    progress : bool
        Show tqdm bars.
    eval_kwargs : dict or None
        Passed to :func:`evaluate` (``groups``, ``D``).
    keep_models : bool
        Return the fine-tuned models of the first seed.

    Returns
    -------
    dict
        ``"pretrained"`` (the evaluation after pre-training), ``"runs"``
        (``{name: [evaluation per seed]}``) and, with ``keep_models``, ``"models"``
        (``{name: fine-tuned model of the first seed}``).

    The protocol of Liu et al. 2020, Experiments. Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    device = get_device(device)
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    pre_loss = nn.CrossEntropyLoss(ignore_index=255) if pre_loss is None else pre_loss
    ev = dict(eval_kwargs or {})
    fit(
        model,
        train_loader,
        pre_loss,
        n_epochs=pre_epochs,
        lr=lr,
        device=device,
        checkpoint=None if ckpt is None else ckpt / "pretrain.pt",
        progress=progress,
        args={"phase": "pretrain", "lr": lr},
        desc="pretrain CE",
    )
    out = {"pretrained": evaluate(model, val_loader, num_classes, device=device, **ev)}
    out |= finetune(
        model,
        train_loader,
        val_loader,
        losses,
        num_classes=num_classes,
        epochs=ft_epochs,
        lr=ft_lr,
        seeds=seeds,
        device=device,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        eval_kwargs=eval_kwargs,
        keep_models=keep_models,
    )
    return out
