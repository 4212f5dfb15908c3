"""The on-disk format of a prepared tag dataset (written by ``data_scripts/prepare_flickr.py``,
read by :func:`wlearn.data.load_tags`).

One directory::

    vocab.txt              K tags, one a line (UTF-8)
    tag_vectors.npy        (K, d) float32 word vectors of the tags (the ground metric)
    <split>_features.npy   (N, F) float32 item features
    <split>_tags.npz       (N, K) 0/1 tags, a scipy.sparse CSR matrix (``scipy.sparse.save_npz``)
    <split>_ids.txt        N item (photo) ids, one a line

with ``<split>`` in ``train``, ``test``. Every file is written atomically (to a temporary
name in the same directory, then renamed).

Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

SPLITS = ("train", "test")


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it.

    Parameters
    ----------
    path : str or Path
        Final file (its folder is created).
    write : callable
        ``write(f)`` writes the content to the binary file object ``f``.

    Used by ``data_scripts/prepare_flickr.py`` (full data of notebooks/06_tag_prediction.ipynb).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` atomically.

    Parameters
    ----------
    path : str or Path
        Final ``.npy`` file.
    array : numpy.ndarray, any shape
        Saved without pickling.

    Used by ``data_scripts/prepare_flickr.py`` (full data of notebooks/06_tag_prediction.ipynb).
    """
    atomic_write(Path(path), lambda f: np.save(f, array, allow_pickle=False))


def save_lines(path: str | Path, lines) -> None:
    """Write strings one a line (UTF-8), atomically.

    Parameters
    ----------
    path : str or Path
        Final text file.
    lines : iterable of str
        Without line breaks.

    Used by ``data_scripts/prepare_flickr.py`` (full data of notebooks/06_tag_prediction.ipynb).
    """
    lines = [str(s) for s in lines]
    bad = [s for s in lines if "\n" in s or "\r" in s]
    if bad:
        raise ValueError(
            f"lines: expected strings without line breaks, got {bad[0]!r}; "
            "replace them first (s.replace('\\n', ' '))"
        )
    atomic_write(Path(path), lambda f: f.write("".join(s + "\n" for s in lines).encode()))


def read_lines(path: str | Path) -> list[str]:
    """Read the strings written by :func:`save_lines`.

    Parameters
    ----------
    path : str or Path
        The text file.

    Returns
    -------
    list of str

    Introduced in notebooks/06_tag_prediction.ipynb.
    """
    return Path(path).read_text(encoding="utf-8").splitlines()


def write_tag_dataset(root: str | Path, words, vectors, splits: dict) -> None:
    """Write a tag dataset in the format above.

    Parameters
    ----------
    root : path
        Output directory (created).
    words : sequence of str, length K
    vectors : array, shape (K, d)
    splits : dict
        ``{split: (features (N, F), tags (N, K) 0/1 dense or sparse, ids (N,))}``.

    Used by ``data_scripts/prepare_flickr.py`` (full data of notebooks/06_tag_prediction.ipynb).
    """
    root = Path(root)
    words = [str(w) for w in words]
    vectors = np.asarray(vectors, dtype=np.float32)
    K = len(words)
    if vectors.ndim != 2 or vectors.shape[0] != K:
        raise ValueError(f"vectors: expected shape ({K}, d) to match words, got {vectors.shape}")
    if len(set(words)) != K:
        raise ValueError("words: expected distinct tags, got duplicates")
    for name, (X, Y, ids) in splits.items():
        if name not in SPLITS:
            raise ValueError(f"splits: expected keys in {SPLITS}, got {name!r}")
        X = np.asarray(X, dtype=np.float32)
        Y = sp.csr_matrix(Y, dtype=np.float32)
        ids = [str(i) for i in ids]
        if X.ndim != 2 or Y.shape != (X.shape[0], K) or len(ids) != X.shape[0]:
            raise ValueError(
                f"splits[{name!r}]: expected features (N, F), tags (N, {K}) and N ids, got "
                f"{X.shape}, {Y.shape} and {len(ids)}"
            )
        save_npy(root / f"{name}_features.npy", X)
        atomic_write(root / f"{name}_tags.npz", lambda f, Y=Y: sp.save_npz(f, Y))
        save_lines(root / f"{name}_ids.txt", ids)
    save_npy(root / "tag_vectors.npy", vectors)
    save_lines(root / "vocab.txt", words)  # last: its presence marks a complete dataset


def read_tag_dataset(root: str | Path):
    """Read a directory written by :func:`write_tag_dataset`.

    Parameters
    ----------
    root : str or Path
        The directory (``DATA_ROOT/flickr`` by default in :func:`wlearn.data.load_tags`).

    Returns
    -------
    words : list of str, length K
    vectors : np.ndarray, shape (K, d), float32
    splits : dict
        ``{split: (features (N, F) float32, tags (N, K) scipy.sparse CSR, ids list)}`` for the
        splits present.

    Introduced in notebooks/06_tag_prediction.ipynb.
    """
    root = Path(root)
    if not (root / "vocab.txt").is_file():
        raise FileNotFoundError(f"root: no vocab.txt in {root}; run data_scripts/prepare_flickr.py")
    words = read_lines(root / "vocab.txt")
    vectors = np.load(root / "tag_vectors.npy", allow_pickle=False).astype(np.float32)
    if vectors.shape[0] != len(words):
        raise ValueError(
            f"root: tag_vectors.npy has {vectors.shape[0]} rows for {len(words)} tags"
            "; the dataset is incomplete: run data_scripts/prepare_flickr.py again"
        )
    splits = {}
    for name in SPLITS:
        if not (root / f"{name}_features.npy").is_file():
            continue
        X = np.load(root / f"{name}_features.npy", allow_pickle=False).astype(np.float32)
        Y = sp.load_npz(root / f"{name}_tags.npz").tocsr()
        ids = read_lines(root / f"{name}_ids.txt")
        if Y.shape != (X.shape[0], len(words)) or len(ids) != X.shape[0]:
            raise ValueError(
                f"root: split {name!r} has features {X.shape}, tags {Y.shape}, {len(ids)} ids "
                f"for {len(words)} tags; the dataset is incomplete: run "
                "data_scripts/prepare_flickr.py again"
            )
        splits[name] = (X, Y, ids)
    return words, vectors, splits
