"""What every loss module shares: the ``reduction=`` argument of ``torch.nn`` losses."""

from __future__ import annotations

import torch

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    """Return ``reduction``, raising unless it is ``"mean"``, ``"sum"`` or ``"none"``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean, sum, or ``x`` itself (``"none"``)."""
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x
