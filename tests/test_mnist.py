"""Tests for wlearn.data.mnist: the IDX reader and the three digit loaders."""

from __future__ import annotations

import gzip
import struct
import warnings

import numpy as np
import pytest
import torch

from wlearn import _env
from wlearn.data import DigitData, load_digit_data, load_digits, load_mnist, load_mnist5k, read_idx
from wlearn.data._common import FullDataMissingWarning

CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def write_idx(path, arr, *, gz=None):
    """Write ``arr`` as an IDX file (gzip when the name ends in .gz)."""
    arr = np.asarray(arr)
    head = bytes([0, 0, CODES[arr.dtype.type], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    gz = str(path).endswith(".gz") if gz is None else gz
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(raw)
    return path


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_read_idx_roundtrip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    got = read_idx(write_idx(tmp_path / name, arr))
    assert got.shape == (3, 4, 5) and got.dtype == np.dtype(dtype)
    assert np.array_equal(got, arr)


def test_read_idx_1d(tmp_path):
    arr = np.arange(7, dtype=np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "l.idx", arr)), arr)


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"", "not an IDX"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x02" + struct.pack(">I", 2), "truncated header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x00\x00", "2 data bytes, expected 3"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x00\x00", "2 data bytes, expected 1"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, raw, match):
    p = tmp_path / "bad.idx"
    p.write_bytes(raw)
    with pytest.raises(ValueError, match=match) as e:
        read_idx(p)
    assert "bad.idx" in str(e.value)


def test_read_idx_rejects_bad_gzip(tmp_path):
    p = tmp_path / "bad.idx.gz"
    p.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="bad.idx.gz"):
        read_idx(p)


def _check(d: DigitData, n_train, n_test, shape, name):
    assert isinstance(d, DigitData) and d.name == name and d.image_shape == shape
    assert d.X_train.shape == (n_train, shape[0] * shape[1]) and d.X_train.dtype == torch.float32
    assert d.X_test.shape == (n_test, shape[0] * shape[1])
    assert d.y_train.dtype == torch.int64 and d.y_train.shape == (n_train,)
    assert float(d.X_train.min()) >= 0 and float(d.X_train.max()) == 1.0
    assert set(d.y_train.tolist()) == set(range(10)) == set(d.y_test.tolist())


def test_load_digits_fixed_split():
    d1, d2 = load_digits(), load_digits()
    _check(d1, 1257, 540, (8, 8), "digits")
    assert torch.equal(d1.X_test, d2.X_test) and torch.equal(d1.y_train, d2.y_train)
    # stratified: every class has about 54 test images
    assert d1.y_test.bincount().min() >= 50


def test_load_mnist5k_from_package():
    d = load_mnist5k()
    _check(d, 4000, 1000, (28, 28), "mnist5k")
    assert d.y_train.bincount().tolist() == [400] * 10


def _fake_mnist(root, n_train=60000, n_test=10000):
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        img[0, 0, 0] = 255
        lab = (np.arange(n) % 10).astype(np.uint8)
        write_idx(root / f"{split}-images-idx3-ubyte.gz", img)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", lab)
    return root


def test_load_mnist_reads_prepared_files(tmp_path):
    d = load_mnist(_fake_mnist(tmp_path / "mnist"))
    _check(d, 60000, 10000, (28, 28), "mnist")


def test_load_mnist_wrong_shapes(tmp_path):
    root = _fake_mnist(tmp_path / "mnist", n_train=100, n_test=10)
    with pytest.raises(ValueError, match="expected \\(60000, 28, 28\\)"):
        load_mnist(root)


def test_load_mnist_missing_names_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_mnist.py"):
        load_mnist(tmp_path / "nowhere")


def test_load_digit_data_switch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_env, "FULL", False)
    assert load_digit_data().name == "digits"
    assert load_digit_data(default="mnist5k").name == "mnist5k"
    monkeypatch.setattr(_env, "FULL", True)
    with pytest.warns(FullDataMissingWarning, match="prepare_mnist.py"):
        d = load_digit_data(root=tmp_path / "nowhere")
    assert d.name == "digits"
    assert "Falling back" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_digit_data(root=_fake_mnist(tmp_path / "m")).name == "mnist"


@pytest.mark.parametrize(
    "kwargs, match", [(dict(size="big"), "size"), (dict(default="cifar"), "default")]
)
def test_load_digit_data_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digit_data(**kwargs)
