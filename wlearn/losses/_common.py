"""What every loss module shares: the ``reduction=`` and ``ignore_index=`` arguments of
``torch.nn`` losses, checked with errors that say how to fix them."""

from __future__ import annotations

import torch

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    """Return ``reduction``, raising unless it is ``"mean"``, ``"sum"`` or ``"none"``.

    Parameters
    ----------
    reduction : str
        As in ``torch.nn.CrossEntropyLoss``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Naming the three choices and what each does.

    See notebooks/04_mnist_p_metric.ipynb, where the losses are first trained.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction: expected one of {REDUCTIONS}, got {reduction!r}; use 'mean' (average "
            "over samples), 'sum', or 'none' (one value per sample), as in "
            "torch.nn.CrossEntropyLoss"
        )
    return reduction


def check_ignore_index(ignore_index) -> int:
    """Return ``ignore_index``, raising unless it is an ``int`` (not a bool or a float).

    Parameters
    ----------
    ignore_index : int
        Target value whose positions contribute nothing, as in ``torch.nn.CrossEntropyLoss``.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        Naming the usual values.

    See notebooks/08_importance_aware_segmentation.ipynb (255 marks Cityscapes' void pixels).
    """
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            f"ignore_index: expected an int, got {ignore_index!r}; pass an integer such as -100 "
            "(the default of torch.nn.CrossEntropyLoss) or 255 (Cityscapes trainIds)"
        )
    return ignore_index


def check_same_device(target: torch.Tensor, like: torch.Tensor, name: str) -> None:
    """Raise unless ``target`` is on the device of the loss's input ``like``.

    Parameters
    ----------
    target : torch.Tensor, any shape
        The target passed to a loss.
    like : torch.Tensor, any shape
        The loss's input (logits or probabilities).
    name : str
        The input's argument name, used in the fix (``target.to(<name>.device)``).

    Raises
    ------
    ValueError
        Naming ``target``, the expected and the received device, and the fix.

    See notebooks/09_cityscapes_gpu.ipynb, where the losses run on a GPU.
    """
    if target.device != like.device:
        raise ValueError(
            f"target: expected device {like.device}, got {target.device}; move it "
            f"with target.to({name}.device)"
        )


def reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean, sum, or ``x`` itself (``"none"``).

    Parameters
    ----------
    x : torch.Tensor, shape (B,)
        One loss value per sample.
    reduction : {"mean", "sum", "none"}
        Already checked by :func:`check_reduction`.

    Returns
    -------
    torch.Tensor, shape () or (B,)

    See notebooks/04_mnist_p_metric.ipynb.
    """
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def no_positions(like: torch.Tensor, reduction: str, shape) -> torch.Tensor:
    """The loss of a batch in which no position counts (``B = 0``, or every target at
    ``ignore_index``), as ``torch.nn.CrossEntropyLoss`` gives it: NaN for ``"mean"`` (0/0),
    0 for ``"sum"``, zeros of ``shape`` for ``"none"``; and in every case a gradient of
    exactly zero for ``like`` (the loss's input), never NaN, so that an optimizer step on
    such a batch changes no weight.

    Parameters
    ----------
    like : torch.Tensor, any shape
        The loss's input (logits or probabilities); the result is attached to its graph.
    reduction : {"mean", "sum", "none"}
        Already checked by :func:`check_reduction`.
    shape : tuple of int
        Shape of the ``"none"`` result, e.g. ``(N, d1, ..., dk)``.

    Returns
    -------
    torch.Tensor
        Shape () or ``shape``.

    See notebooks/08_importance_aware_segmentation.ipynb, where crops without a labelled
    pixel occur.
    """
    # masked_fill, not ``like * 0``: zero even where ``like`` is inf, and a zero gradient
    zero = like.masked_fill(torch.ones_like(like, dtype=torch.bool), 0).sum()  # ()
    if reduction == "none":
        return zero + like.new_zeros(tuple(shape))
    return zero if reduction == "sum" else zero + float("nan")


def check_real_floating(t, name: str, fix: str) -> torch.Tensor:
    """Return ``t``, raising a TypeError unless it is a real floating tensor.

    Parameters
    ----------
    t : torch.Tensor, any shape
        A loss's input (model outputs).
    name : str
        Its argument name.
    fix : str
        What to pass instead.

    Returns
    -------
    torch.Tensor, the shape of ``t``

    Raises
    ------
    TypeError
        Naming ``name``, the expected and the received dtype, and ``fix``.

    See notebooks/04_mnist_p_metric.ipynb, where the losses are first trained.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}; {fix}")
    if not t.is_floating_point():
        raise TypeError(f"{name}: expected a real floating tensor, got dtype {t.dtype}; {fix}")
    return t
