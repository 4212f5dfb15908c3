"""Tests for data_scripts/prepare_mnist.py, served from a local folder (no network)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from test_mnist import write_idx  # tests/ is on sys.path (pytest rootdir-relative import)

from wlearn.data import load_mnist, read_idx
from wlearn.data.download import sha256sum

SCRIPT = Path(__file__).resolve().parents[1] / "data_scripts" / "prepare_mnist.py"


@pytest.fixture
def script():
    spec = importlib.util.spec_from_file_location("prepare_mnist", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def mirror(tmp_path):
    """Four small IDX files in a folder; returns (folder, table of name, sha, size, shape)."""
    src = tmp_path / "mirror"
    src.mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(20) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(10) % 10).astype(np.uint8),
    }
    table = []
    for name, arr in arrays.items():
        p = write_idx(src / name, arr)
        table.append((name, sha256sum(p), p.stat().st_size, arr.shape))
    return src, table, arrays


def test_real_table_is_well_formed(script):
    assert [t[0] for t in script.TABLE] == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    for _, sha, size, _shape in script.TABLE:
        assert len(sha) == 64 and int(sha, 16) >= 0 and size > 0
    assert len({t[1] for t in script.TABLE}) == 4
    assert all(m.endswith("/") for m in script.MIRRORS)


def test_main_downloads_verifies_and_reruns(script, mirror, tmp_path, monkeypatch, capsys):
    src, table, arrays = mirror
    monkeypatch.setattr(script, "TABLE", table)
    monkeypatch.setattr(script, "MIRRORS", [(tmp_path / "dead").as_uri() + "/", src.as_uri() + "/"])
    root = tmp_path / "data" / "mnist"
    assert script.main(["--root", str(root)]) == 0
    assert sorted(p.name for p in root.iterdir()) == sorted(arrays)
    for name, arr in arrays.items():
        assert np.array_equal(read_idx(root / name), arr)  # parser round trip
        assert sha256sum(root / name) == sha256sum(src / name)
    # re-run: a no-op even with every mirror gone
    mtimes = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    monkeypatch.setattr(script, "MIRRORS", [(tmp_path / "dead").as_uri() + "/"])
    assert script.main(["--root", str(root), "--quiet"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == mtimes
    assert "verified" in capsys.readouterr().out


def test_corrupt_file_is_rejected_and_leaves_nothing(script, mirror, tmp_path, monkeypatch, capsys):
    src, table, _ = mirror
    bad = src / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-3] + b"xyz")
    monkeypatch.setattr(script, "TABLE", table)
    monkeypatch.setattr(script, "MIRRORS", [src.as_uri() + "/"])
    root = tmp_path / "out"
    assert script.main(["--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte.gz" in err and "SHA-256" in err
    assert not (root / bad.name).exists()
    assert not [p for p in root.iterdir() if p.name.endswith(".part")]


def test_offline_message(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(script, "MIRRORS", ["http://127.0.0.1:9/"])
    assert script.main(["--root", str(tmp_path / "m"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9/train-images-idx3-ubyte.gz" in err and "place it" in err


def test_wrong_shape_after_download_is_an_error(script, mirror, tmp_path, monkeypatch):
    src, table, _ = mirror
    table = [(n, s, z, (99,) if "labels" in n else shape) for n, s, z, shape in table]
    monkeypatch.setattr(script, "TABLE", table)
    monkeypatch.setattr(script, "MIRRORS", [src.as_uri() + "/"])
    assert script.main(["--root", str(tmp_path / "m"), "--quiet"]) == 1


def test_help(script, capsys):
    with pytest.raises(SystemExit) as e:
        script.main(["--help"])
    assert e.value.code == 0
    assert "--root" in capsys.readouterr().out


def test_prepared_files_feed_load_mnist(script, tmp_path, monkeypatch):
    """Files with the real shapes go through the script into load_mnist."""
    from test_mnist import _fake_mnist

    src = _fake_mnist(tmp_path / "src")
    table = [
        (n, hashlib.sha256((src / n).read_bytes()).hexdigest(), (src / n).stat().st_size, s)
        for n, _, _, s in script.TABLE
    ]
    monkeypatch.setattr(script, "TABLE", table)
    monkeypatch.setattr(script, "MIRRORS", [src.as_uri() + "/"])
    root = tmp_path / "mnist"
    assert script.main(["--root", str(root), "--quiet"]) == 0
    assert load_mnist(root).X_train.shape == (60000, 784)
