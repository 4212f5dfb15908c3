"""Download and verify the 70,000 MNIST digits into ``data/mnist/`` (or ``--root``).

Used by ``wlearn.data.load_mnist`` when ``WLEARN_FULL=1``
(notebooks/04_mnist_p_metric.ipynb). Each of the four IDX files is tried on every
mirror in turn, checked against the size and SHA-256 below, and only then moved
into place; a re-run with the files present and intact downloads nothing.

The SHA-256 values are of the gzip files as distributed (LeCun, Cortes & Burges);
the same values are pinned by PyTorch's mirror scripts, TensorFlow's Haskell
bindings (nixpkgs) and Guild AI's MNIST package.

Usage::

    python data_scripts/prepare_mnist.py            # into data/mnist/
    python data_scripts/prepare_mnist.py --root /somewhere/mnist
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wlearn.data import DATA_ROOT
from wlearn.data.download import DownloadError, download
from wlearn.data.mnist import read_idx

# (file name, SHA-256, size in bytes, expected array shape)
TABLE = [
    (
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9_912_422,
        (60000, 28, 28),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28_881,
        (60000,),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1_648_877,
        (10000, 28, 28),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4_542,
        (10000,),
    ),
]

# Base URLs, tried in order; the file name is appended.
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]


def prepare(root: Path, *, quiet: bool = False) -> list[Path]:
    """Download, verify and parse-check every file of :data:`TABLE` into ``root``."""
    out = []
    for name, sha256, size, shape in TABLE:
        dest = download([m + name for m in MIRRORS], root / name, sha256, size, quiet=quiet)
        arr = read_idx(dest)
        if tuple(arr.shape) != tuple(shape):
            raise ValueError(f"{dest}: parsed shape {arr.shape}, expected {shape}")
        out.append(dest)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Download the four MNIST IDX files, verify size and SHA-256, and place "
        "them in ROOT (default: data/mnist/ under the repository, or $WLEARN_DATA/mnist)."
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=DATA_ROOT / "mnist",
        help="destination folder (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    args = parser.parse_args(argv)
    try:
        prepare(args.root, quiet=args.quiet)
    except (DownloadError, ValueError) as e:
        print(f"prepare_mnist: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"MNIST ready in {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
