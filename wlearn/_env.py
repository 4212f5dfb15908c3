"""Run size, seeding and device choice: read once, used everywhere.

The run size is read once, when :mod:`wlearn` is imported, from two environment variables:

``WLEARN_SIZE``
    ``demo``: each lesson's key experiment, small enough to run live in class (under a minute
    on a CPU); ``default`` (also when unset): the embedded data, about two minutes on a 2-core
    CPU, the size CI checks; ``full``: paper scale (full data from ``data_scripts/``, the GPU
    when present). Case-insensitive.
``WLEARN_FULL``
    ``1`` (or true/yes/on) is an alias for ``WLEARN_SIZE=full``, kept from before
    ``WLEARN_SIZE`` existed. Setting both so that they disagree is an error.

Lessons choose their sizes with :func:`by_size`; :data:`SIZE`, :data:`FULL` and :data:`DEMO`
say which size this run has. See also the README, "Run sizes".
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

SIZES = ("demo", "default", "full")
"""The run sizes, smallest first."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_UNSET = object()


def _read_full(value: str | None) -> bool:
    """Parse the ``WLEARN_FULL`` environment variable.

    Parameters
    ----------
    value : str or None
        The variable's text (None when unset). ``1/true/yes/on`` mean True,
        ``0/false/no/off`` or empty mean False, case-insensitive.

    Returns
    -------
    bool
        Whether the full (paper-scale) size was asked for.
    """
    v = (value or "").strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(
        f"WLEARN_FULL: expected one of 0/1, true/false, yes/no, on/off; got {value!r}. "
        "Unset it, or use WLEARN_SIZE=demo|default|full instead"
    )


def _read_size(size: str | None, full: str | None = None) -> str:
    """The run size from the ``WLEARN_SIZE`` and ``WLEARN_FULL`` environment variables.

    Parameters
    ----------
    size : str or None
        Text of ``WLEARN_SIZE`` (None or blank when unset): one of :data:`SIZES`,
        case-insensitive, surrounding spaces ignored.
    full : str or None
        Text of ``WLEARN_FULL`` (None when unset), parsed by :func:`_read_full`. A true value
        is an alias for ``full``; it conflicts with ``WLEARN_SIZE=demo`` or ``default``, and an
        explicit false value (``0``, ``false``, ...) conflicts with ``WLEARN_SIZE=full``.

    Returns
    -------
    str
        ``"demo"``, ``"default"`` or ``"full"``.
    """
    is_full = _read_full(full)
    s = (size or "").strip().lower()
    if not s:
        return "full" if is_full else "default"
    if s not in SIZES:
        raise ValueError(
            f"WLEARN_SIZE: expected one of {', '.join(SIZES)} (case-insensitive); got {size!r}. "
            "Unset it for the default size"
        )
    explicit_false = (full or "").strip() != "" and not is_full
    if (is_full and s != "full") or (explicit_false and s == "full"):
        raise ValueError(
            f"WLEARN_SIZE={size!r} and WLEARN_FULL={full!r} disagree: WLEARN_FULL=1 means "
            "WLEARN_SIZE=full. Unset WLEARN_FULL and use WLEARN_SIZE alone"
        )
    return s


SIZE: str = _read_size(os.environ.get("WLEARN_SIZE"), os.environ.get("WLEARN_FULL"))
"""The run size, one of :data:`SIZES`: ``demo``, ``default`` or ``full``."""

FULL: bool = SIZE == "full"
"""True at paper scale (``WLEARN_SIZE=full`` or ``WLEARN_FULL=1``)."""

DEMO: bool = SIZE == "demo"
"""True at the classroom demo size (``WLEARN_SIZE=demo``)."""


def by_size(*, default, full, demo=_UNSET):
    """The value for this run's size: a lesson's sizes, written side by side.

    Parameters
    ----------
    default : object
        Value at the default size (embedded data, about two minutes on a 2-core CPU).
    full : object
        Value at paper scale (``WLEARN_SIZE=full`` or ``WLEARN_FULL=1``).
    demo : object, optional
        Value at the demo size (``WLEARN_SIZE=demo``, under a minute for a live run);
        when not given, the default value is used.

    Returns
    -------
    object
        ``demo``, ``default`` or ``full``, whichever matches :data:`SIZE` (read when this is
        called, so a test can monkeypatch ``wlearn._env.SIZE``).

    Examples
    --------
    >>> n_epochs, seeds = by_size(demo=(5, 1), default=(20, 3), full=(60, 10))

    Used in the configuration cell of the lessons that train models, e.g.
    notebooks/05_noisy_label_grid.ipynb.
    """
    if SIZE == "full":
        return full
    if SIZE == "demo" and demo is not _UNSET:
        return demo
    return default


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device).

    Parameters
    ----------
    seed : int
        Non-negative seed.

    Called in the opening cell of every lesson, e.g. notebooks/01_optimal_transport.ipynb.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))  # also seeds every CUDA device


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else CUDA when present, else CPU.

    Parameters
    ----------
    device : str, torch.device or None
        Device asked for; None picks CUDA when torch sees a GPU, else the CPU.

    Returns
    -------
    torch.device

    Used by the lessons that train models, e.g. notebooks/04_mnist_p_metric.ipynb.
    """
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: CUDA was asked for ({device!r}) but none is available")
        return dev
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


_SIZE_TEXT = {
    "demo": "demo (classroom size, under a minute; WLEARN_SIZE=default for the checked size)",
    "default": "default (embedded data; WLEARN_SIZE=demo for a live run, full for paper scale)",
    "full": "FULL (paper scale)",
}


def describe_run() -> str:
    """One line for a notebook's opening cell: run size, device and torch version.

    On a GPU the device part reads ``GPU <name>: cuda`` (and, below full size, how to scale
    up); at full size on a CPU it adds that paper scale needs a GPU for the lessons that train
    segmentation networks (08-10), which fall back to smaller runs there.

    Returns
    -------
    str
        E.g. ``"wlearn run size: demo (...) | device: cpu | torch 2.13.0"``.

    Printed in the opening cell of every lesson, e.g. notebooks/01_optimal_transport.ipynb.
    """
    dev = get_device()
    if dev.type == "cuda":
        where = f"GPU {torch.cuda.get_device_name(dev)}: {dev}"
        if SIZE != "full":
            where += " (WLEARN_SIZE=full scales the lessons up to paper size on it)"
    else:
        where = str(dev)
        if SIZE == "full":
            where += " (no GPU: paper scale needs one for the segmentation lessons 08-10)"
    return f"wlearn run size: {_SIZE_TEXT[SIZE]} | device: {where} | torch {torch.__version__}"
