"""Tests for data_scripts/prepare_flickr.py: small YFCC100M-format metadata files (both column
layouts, plain and bz2), features aligned with a photo-id list, the script end to end."""

from __future__ import annotations

import bz2
import importlib
import sys
from pathlib import Path
from urllib.parse import quote_plus

import numpy as np
import pytest

from wlearn.data.tag_format import read_tag_dataset
from wlearn.data.tags import load_tags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "data_scripts"))
pf = importlib.import_module("prepare_flickr")

VECTORS = {
    w: np.eye(6)[i % 6] + 0.1 * i
    for i, w in enumerate(["beach", "sea", "dog", "puppy", "sunset", "city", "street", "snow"])
}


def _line(pid, tags, marker="0", layout=25):
    """One metadata line with ``tags`` URL-encoded in the user-tag column."""
    cols = pf.LAYOUTS[layout]
    fields = [f"f{i}" for i in range(layout)]
    fields[cols["id"]] = pid
    fields[cols["tags"]] = ",".join(quote_plus(t) for t in tags)
    fields[cols["marker"]] = marker
    return "\t".join(fields) + "\n"


def _fake_vectors(words):
    return {w: VECTORS[w].astype(np.float32) for w in words if w in VECTORS}


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """20 photos with features; tags in mixed case, with machine tags, years, cameras."""
    rng = np.random.default_rng(0)
    ids = [str(1000 + i) for i in range(20)]
    lines = []
    for i, pid in enumerate(ids):
        tags = (
            ["Beach", "sea", "2008", "canon", "geo:lat=1.5", "new york"]
            if i % 2
            else ["dog", "sunset"]
        )
        if i % 5 == 0:
            tags.append("city")
        if i == 3:
            tags = ["canon", "nikon d90"]  # no descriptive tag: never selected
        lines.append(_line(pid, tags, layout=25 if i < 10 else 23))
    lines.append(_line("1019", ["snow"], marker="1"))  # a video with an id we hold: skipped
    lines.append(_line("9999", ["street"]))  # no features: ignored
    meta = tmp_path / "yfcc100m_dataset.bz2"
    meta.write_bytes(bz2.compress("".join(lines).encode()))
    feats = rng.standard_normal((20, 4)).astype(np.float32)
    np.save(tmp_path / "feats.npy", feats)
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    monkeypatch.setattr(pf, "glove_vectors", lambda words, root=None: _fake_vectors(words))
    return tmp_path, ids, feats


def test_decode_and_filter_tags():
    assert pf.decode_tags("New+York,beach,%C3%A9t%C3%A9,beach,") == ["new york", "beach", "été"]
    assert [
        t
        for t in ["beach", "2008", "canon", "geo:lat=1", "new york", "d90", "x"]
        if pf.is_descriptive(t)
    ] == ["beach"]


def test_end_to_end(inputs):
    tmp, ids, feats = inputs
    out = pf.main(
        [
            "--metadata",
            str(tmp / "yfcc100m_dataset.bz2"),
            "--features",
            str(tmp / "feats.npy"),
            "--photo-ids",
            str(tmp / "ids.txt"),
            "--n-tags",
            "4",
            "--n-train",
            "10",
            "--n-test",
            "8",
            "--out",
            str(tmp / "flickr"),
        ]
    )
    words, vectors, splits = read_tag_dataset(out)
    # frequencies: dog, sunset 10 (even rows); beach, sea 9 (odd rows but 3); city 4
    assert sorted(words) == sorted(["beach", "dog", "sea", "sunset"])
    assert "city" not in words and "canon" not in words and "2008" not in words
    assert np.allclose(vectors, np.stack([VECTORS[w] for w in words]))
    tr, te = splits["train"], splits["test"]
    assert len(tr[2]) == 10 and len(te[2]) == 8
    assert not set(tr[2]) & set(te[2]) and "1003" not in tr[2] + te[2]
    for X, Y, pids in (tr, te):
        Y = Y.toarray()
        for x, y, pid in zip(X, Y, pids, strict=True):
            i = ids.index(pid)
            assert np.allclose(x, feats[i])  # features follow the id list
            want = {"beach", "sea"} if i % 2 else {"dog", "sunset"}
            assert {words[j] for j in np.flatnonzero(y)} == want
    d = load_tags(full=True, root=out)
    assert d.Y_train.shape == (10, 4) and d.source == str(out)


def test_deterministic_and_seeded(inputs):
    tmp = inputs[0]
    args = [
        "--metadata",
        str(tmp / "yfcc100m_dataset.bz2"),
        "--features",
        str(tmp / "feats.npy"),
        "--photo-ids",
        str(tmp / "ids.txt"),
        "--n-tags",
        "2",
        "--n-train",
        "5",
        "--n-test",
        "5",
    ]
    a = read_tag_dataset(pf.main(args + ["--out", str(tmp / "a")]))[2]["train"][2]
    b = read_tag_dataset(pf.main(args + ["--out", str(tmp / "b")]))[2]["train"][2]
    c = read_tag_dataset(pf.main(args + ["--out", str(tmp / "c"), "--seed", "1"]))[2]["train"][2]
    assert a == b and a != c


def test_plain_text_metadata_and_word2vec(tmp_path, inputs):
    tmp = inputs[0]
    plain = tmp / "yfcc100m_dataset"
    plain.write_bytes(bz2.decompress((tmp / "yfcc100m_dataset.bz2").read_bytes()))
    w2v = tmp / "vec.bin"
    with open(w2v, "wb") as f:
        f.write(f"{len(VECTORS)} 6\n".encode())
        for w, v in VECTORS.items():
            f.write(w.encode() + b" " + v.astype("<f4").tobytes() + b"\n")
    out = pf.main(
        [
            "--metadata",
            str(plain),
            "--features",
            str(tmp / "feats.npy"),
            "--photo-ids",
            str(tmp / "ids.txt"),
            "--n-tags",
            "3",
            "--n-train",
            "4",
            "--n-test",
            "4",
            "--word2vec",
            str(w2v),
            "--out",
            str(tmp / "w"),
        ]
    )
    words, vectors, _ = read_tag_dataset(out)
    assert len(words) == 3 and np.allclose(vectors, np.stack([VECTORS[w] for w in words]))


def test_bad_inputs(inputs):
    tmp = inputs[0]
    base = [
        "--metadata",
        str(tmp / "yfcc100m_dataset.bz2"),
        "--features",
        str(tmp / "feats.npy"),
        "--photo-ids",
        str(tmp / "ids.txt"),
        "--out",
        str(tmp / "x"),
    ]
    with pytest.raises(ValueError, match="n_tags"):
        pf.main(base + ["--n-tags", "50", "--n-train", "2", "--n-test", "2"])
    with pytest.raises(ValueError, match="need 30 photos"):
        pf.main(base + ["--n-tags", "2", "--n-train", "15", "--n-test", "15"])
    with pytest.raises(ValueError, match="--n-train"):
        pf.main(base + ["--n-train", "0"])
    (tmp / "ids.txt").write_text("1\n2\n")
    with pytest.raises(ValueError, match="features"):
        pf.main(base + ["--n-tags", "2"])
    bad = tmp / "bad.txt"
    bad.write_text("1\t2\t3\n")
    with pytest.raises(ValueError, match="line 1 .* 3 tab-separated fields"):
        pf.read_photo_tags(bad, ["1"])
    assert not (tmp / "x").exists()
