"""Run size, seeding and device choice: read once, used everywhere.

``WLEARN_FULL=1`` switches every lesson from the embedded default (about two
minutes on a 2-core CPU) to paper scale (full data from ``data_scripts/``,
GPU when present). It is read once, when :mod:`wlearn` is imported.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _read_full(value: str | None) -> bool:
    """Parse the ``WLEARN_FULL`` environment variable."""
    v = (value or "").strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(
        f"WLEARN_FULL: expected one of 0/1, true/false, yes/no, on/off; got {value!r}"
    )


FULL: bool = _read_full(os.environ.get("WLEARN_FULL"))
"""True when ``WLEARN_FULL=1``: lessons run at paper scale."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device).

    Parameters
    ----------
    seed : int
        Non-negative seed.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))  # also seeds every CUDA device


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else CUDA when present, else CPU."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: CUDA was asked for ({device!r}) but none is available")
        return dev
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def describe_run() -> str:
    """One line for a notebook's opening cell: run size and device."""
    dev = get_device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    size = "FULL (paper scale)" if FULL else "default (embedded data; set WLEARN_FULL=1 for paper scale)"
    return f"wlearn run size: {size} | device: {dev} ({name}) | torch {torch.__version__}"
