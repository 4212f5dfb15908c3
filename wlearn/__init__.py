"""wlearn: the helper package of the course on learning with Wasserstein losses.

Modules: :mod:`wlearn.ot` (optimal-transport solvers), :mod:`wlearn.ground`
(ground metrics), :mod:`wlearn.losses` (training losses), :mod:`wlearn.metrics`,
:mod:`wlearn.data`, :mod:`wlearn.models`, :mod:`wlearn.train`, :mod:`wlearn.plot`.
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
