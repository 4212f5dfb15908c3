"""What every loader shares: where prepared data lives, and the loud fallback."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

DATA_ROOT = Path(os.environ.get("WLEARN_DATA", Path(__file__).resolve().parents[2] / "data"))
"""Root of the prepared full datasets (git-ignored ``data/`` at the repository root,
or ``$WLEARN_DATA``)."""


class FullDataMissingWarning(UserWarning):
    """``WLEARN_FULL=1`` was asked for but the prepared data is not there.

    Its message names the ``data_scripts/`` script that prepares the data. See
    notebooks/09_cityscapes_gpu.ipynb, which shows the fallback.
    """


def full_data_missing(what: str, path: Path | str, script: str, fallback: str) -> None:
    """Say loudly that full data is missing, which script makes it, and what is used instead.

    Prints a banner (visible in notebooks and logs) and emits a
    :class:`FullDataMissingWarning`.

    Parameters
    ----------
    what : str
        The dataset, e.g. ``"MNIST"``.
    path : path or str
        Where the prepared data was looked for.
    script : str
        The ``data_scripts/`` command that prepares it, with its arguments.
    fallback : str
        What is used instead.

    See notebooks/09_cityscapes_gpu.ipynb, which calls it when the full data is missing.
    """
    msg = (
        f"WLEARN_FULL=1 but the full {what} data is missing at {path}.\n"
        f"  Prepare it with:  python data_scripts/{script}\n"
        f"  Falling back to: {fallback}"
    )
    print("!" * 78 + "\n" + msg + "\n" + "!" * 78)
    warnings.warn(msg, FullDataMissingWarning, stacklevel=3)
