"""wlearn: the helper package of the course on learning with Wasserstein losses.

Modules: :mod:`wlearn.ot` (optimal-transport solvers), :mod:`wlearn.ground`
(ground metrics), :mod:`wlearn.severity` (severity matrices for driving scenes),
:mod:`wlearn.losses` (training losses), :mod:`wlearn.metrics`, :mod:`wlearn.data`,
:mod:`wlearn.models`, :mod:`wlearn.train`, :mod:`wlearn.plot`, :mod:`wlearn.segment`
(the segmentation command, ``python -m wlearn.segment``), :mod:`wlearn.explore` (slider
explorers for JupyterLab) and :mod:`wlearn.exercises` (``check`` for the lessons' exercises).

The run size (``WLEARN_SIZE=demo|default|full``, or ``WLEARN_FULL=1``) is read once, here.
"""

from wlearn._env import (
    DEMO,
    FULL,
    SIZE,
    SIZES,
    by_size,
    describe_run,
    get_device,
    seed_everything,
)

__all__ = [
    "DEMO",
    "FULL",
    "SIZE",
    "SIZES",
    "by_size",
    "describe_run",
    "get_device",
    "seed_everything",
]
__version__ = "0.1.0"
