"""Ordered-class data sets that are available offline.

:func:`load_anes96_party`: party identification on a 7-point scale, from the 1996 American
National Election Survey as shipped with ``statsmodels`` (944 respondents). The classes are
genuinely ordered (strong Democrat ... strong Republican) and neighbouring classes are hard
to tell apart from the survey answers, so a classifier's mistakes have a natural size.

The data set is complete as shipped (there is no larger "full" version), so
``WLEARN_FULL=1`` changes the number of seeds and epochs in the lesson, not the data.

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OrdinalData", "load_anes96_party"]

ANES96_CLASSES = (
    "strong Democrat",
    "weak Democrat",
    "independent-Democrat",
    "independent",
    "independent-Republican",
    "weak Republican",
    "strong Republican",
)

ANES96_FEATURES = (
    "vote",  # expected vote, 0 = Clinton, 1 = Dole
    "selfLR",  # own left-right position, 1 (extremely liberal) .. 7 (extremely conservative)
    "ClinLR",  # perceived left-right position of Bill Clinton, 1 .. 7
    "DoleLR",  # perceived left-right position of Bob Dole, 1 .. 7
    "TVnews",  # times per week watching TV news
    "age",
    "educ",  # 1 (grades 1-8) .. 7 (PhD)
    "income",  # household income bracket, 1 .. 24
    "logpopul",  # log(population of the place in 1000s + 0.1)
)


@dataclass(frozen=True)
class OrdinalData:
    """A classification data set whose classes ``0 .. C-1`` are ordered.

    Attributes
    ----------
    X : numpy.ndarray, shape (n, d), float32
        Raw (unstandardised) features.
    y : numpy.ndarray, shape (n,), int64
        Class in ``0 .. C-1``.
    classes : tuple of str, length C
        Class names in order.
    features : tuple of str, length d
        Feature names.
    description : str
        Where the data comes from.
    """

    X: np.ndarray
    y: np.ndarray
    classes: tuple
    features: tuple
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_anes96_party() -> OrdinalData:
    """Party identification (7 ordered classes) from 9 survey answers, 944 respondents.

    Source: ``statsmodels.datasets.anes96`` (1996 American National Election Survey,
    a subset prepared by statsmodels; public domain). Target ``PID``: 0 = strong Democrat
    ... 6 = strong Republican. Features: see ``ANES96_FEATURES``.

    Returns
    -------
    OrdinalData
        ``X`` (944, 9) float32, ``y`` (944,) int64 in 0..6.
    """
    try:
        from statsmodels.datasets import anes96
    except ImportError as err:  # pragma: no cover - statsmodels is a dependency
        raise ImportError("load_anes96_party needs statsmodels (pip install statsmodels)") from err
    df = anes96.load_pandas().data
    X = df[list(ANES96_FEATURES)].to_numpy(dtype=np.float32)  # (944, 9)
    y = df["PID"].to_numpy().astype(np.int64)  # (944,)
    if not np.isfinite(X).all() or y.min() < 0 or y.max() >= len(ANES96_CLASSES):
        raise ValueError("anes96: unexpected values in the statsmodels copy of the data")
    return OrdinalData(
        X=X,
        y=y,
        classes=ANES96_CLASSES,
        features=ANES96_FEATURES,
        description="1996 American National Election Survey (statsmodels.datasets.anes96): "
        "party identification on a 7-point scale from 9 survey answers, 944 respondents",
    )
