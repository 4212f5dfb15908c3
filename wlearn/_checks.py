"""Input validation shared by the solvers and the losses.

Every error names the argument, what was expected and what was received.
"""

from __future__ import annotations

import numpy as np
import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def as_tensor(x, name: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Convert ``x`` (tensor, array or list) to a floating tensor.

    NumPy arrays and lists become float64 tensors (or ``like``'s dtype and device).
    """
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (np.ndarray, list, tuple, float, int, np.floating)):
        t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    else:
        raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")
    if like is not None:
        return t.to(device=like.device, dtype=like.dtype)
    if t.dtype not in FLOAT_DTYPES:
        t = t.to(torch.get_default_dtype())
    return t


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` holds NaN or inf."""
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).sum().item()
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries")


def check_nonnegative(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` holds NaN, inf or a negative entry."""
    check_finite(t, name)
    if (t < 0).any():
        raise ValueError(f"{name}: expected non-negative values, got minimum {t.min().item():.3g}")


def check_positive_scalar(x, name: str) -> float:
    """Return ``x`` as a float, raising unless it is a finite number > 0."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a positive number, got {x!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {x!r}")
    return v


def check_cost_matrix(M: torch.Tensor, name: str = "M") -> None:
    """Raise unless ``M`` is a square, finite, non-negative 2-D matrix."""
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name}: expected a square (K, K) matrix, got shape {tuple(M.shape)}")
    check_nonnegative(M, name)


def check_histograms(t: torch.Tensor, name: str, K: int) -> None:
    """Raise unless ``t`` has shape ``(K,)`` or ``(B, K)`` and non-negative finite entries."""
    if t.ndim not in (1, 2) or t.shape[-1] != K:
        raise ValueError(
            f"{name}: expected shape ({K},) or (B, {K}) to match M of shape ({K}, {K}), "
            f"got {tuple(t.shape)}"
        )
    check_nonnegative(t, name)


def check_simplex(t: torch.Tensor, name: str, atol: float | None = None) -> None:
    """Raise unless every row of ``t`` is non-negative and sums to one (within ``atol``)."""
    check_nonnegative(t, name)
    if atol is None:
        atol = 1e-3 if t.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-6
    s = t.sum(-1)
    err = (s - 1).abs().max().item()
    if err > atol:
        raise ValueError(
            f"{name}: expected rows on the probability simplex (sum 1 within {atol:g}), "
            f"got row sums off by up to {err:.3g}"
        )
