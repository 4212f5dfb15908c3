"""POT references shared by the tests (a helper module, not a test file)."""

from __future__ import annotations

import warnings

import numpy as np
import ot


def relaxed_plan(a, b, M, reg: float, reg_m: float, *, stopThr: float, numItermax: int):
    """POT's plan for Frogner et al.'s relaxed problem (eq. 8) with cost ``M``.

    Our kernel ``exp(-M/reg - 1)`` is POT's entropic kernel for the cost ``M + reg``
    (``reg_type="entropy"``, lesson 03). POT notes that this setting ignores its reference
    matrix ``c``, which is what we want: that notice is silenced here, nothing else.
    """
    a, b, M = (np.asarray(x) for x in (a, b, M))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="If reg_type = entropy", category=UserWarning)
        return ot.unbalanced.sinkhorn_unbalanced(
            a,
            b,
            M + reg,
            reg,
            reg_m,
            method="sinkhorn",
            reg_type="entropy",
            stopThr=stopThr,
            numItermax=numItermax,
        )
