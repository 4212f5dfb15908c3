"""Ordered-class data sets that are available offline.

:func:`load_diabetes_ordinal`: the scikit-learn diabetes data (442 patients, 10 baseline
measurements) with its target, disease progression one year later, cut at its quantiles
into ``C`` equally frequent ordered severity groups (like age groups in age estimation).
Neighbouring groups differ by a small amount of the same quantity, so the cost ``|i - j|``
of predicting group ``i`` for a patient in group ``j`` means something.

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

__all__ = ["OrdinalData", "load_anes96_party", "load_diabetes_ordinal"]

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

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    X: np.ndarray
    y: np.ndarray
    classes: tuple
    features: tuple
    description: str

    @property
    def num_classes(self) -> int:
        """Number of ordered classes ``C``."""
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

    See also notebooks/07_squared_emd.ipynb, which uses the diabetes groups by default.
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


def load_diabetes_ordinal(n_classes: int = 7) -> OrdinalData:
    """Diabetes progression cut into ``n_classes`` ordered, equally frequent groups.

    Source: :func:`sklearn.datasets.load_diabetes` (Efron et al. 2004, "Least angle
    regression"), shipped with scikit-learn. The continuous target (a quantitative measure of
    disease progression one year after baseline, 25 .. 346) is cut at its
    ``k / n_classes`` quantiles, ``k = 1 .. n_classes - 1``: group 0 = mildest progression.

    Parameters
    ----------
    n_classes : int
        Number of groups ``C`` (2 .. 20).

    Returns
    -------
    OrdinalData
        ``X`` (442, 10) float32 (scikit-learn's centred and scaled features), ``y`` (442,)
        int64 in ``0 .. C-1``; ``description`` lists the group boundaries.

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or not 2 <= n_classes <= 20:
        raise ValueError(
            f"n_classes: expected an integer in [2, 20], got {n_classes!r}; 442 "
            "patients do not fill more groups"
        )
    from sklearn.datasets import load_diabetes

    X, progression = load_diabetes(return_X_y=True)
    edges = np.quantile(progression, np.arange(1, n_classes) / n_classes)  # (C-1,)
    y = np.digitize(progression, edges).astype(np.int64)  # (442,)
    lo = np.concatenate([[progression.min()], edges])
    hi = np.concatenate([edges, [progression.max()]])
    classes = tuple(f"progression {a:.0f}-{b:.0f}" for a, b in zip(lo, hi, strict=True))
    return OrdinalData(
        X=X.astype(np.float32),
        y=y,
        classes=classes,
        features=("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"),
        description=f"scikit-learn diabetes data, disease progression cut into {n_classes} "
        f"equally frequent ordered groups at {np.round(edges, 1).tolist()}",
    )
