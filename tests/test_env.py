"""The run size (``WLEARN_SIZE`` / ``WLEARN_FULL``), :func:`wlearn.by_size` and
:func:`wlearn.describe_run` of :mod:`wlearn._env`. (Seeding and devices: tests/test_repo.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import wlearn
from wlearn import _env


@pytest.mark.parametrize(
    "size, full, expected",
    [
        (None, None, "default"),
        ("", None, "default"),
        ("  ", "", "default"),
        ("demo", None, "demo"),
        ("DEMO", None, "demo"),
        (" Demo ", "0", "demo"),
        ("default", None, "default"),
        ("Default", "off", "default"),
        ("full", None, "full"),
        ("FULL", "1", "full"),
        ("full", "yes", "full"),
        (None, "1", "full"),
        (None, "true", "full"),
        (None, "0", "default"),
    ],
)
def test_read_size(size, full, expected):
    assert _env._read_size(size, full) == expected


@pytest.mark.parametrize("size", ["small", "paper", "1", "demo,full", "defaults"])
def test_bad_size_names_variable_allowed_values_and_value(size):
    with pytest.raises(ValueError) as err:
        _env._read_size(size, None)
    msg = str(err.value)
    assert "WLEARN_SIZE" in msg and repr(size) in msg
    assert all(s in msg for s in ("demo", "default", "full"))


def test_bad_full_value_still_names_wlearn_full():
    with pytest.raises(ValueError, match="WLEARN_FULL.*'maybe'"):
        _env._read_size("demo", "maybe")


@pytest.mark.parametrize(
    "size, full",
    [("demo", "1"), ("default", "true"), ("DEMO", "on"), ("full", "0"), ("full", "no")],
)
def test_conflicting_size_and_full_is_an_error(size, full):
    with pytest.raises(ValueError, match="WLEARN_SIZE.*WLEARN_FULL.*disagree"):
        _env._read_size(size, full)


def test_package_exports_the_size():
    for name in ("SIZE", "SIZES", "FULL", "DEMO", "by_size"):
        assert name in wlearn.__all__ and getattr(wlearn, name) is getattr(_env, name)
    assert _env.SIZE in _env.SIZES == ("demo", "default", "full")
    assert _env.FULL is (_env.SIZE == "full") and _env.DEMO is (_env.SIZE == "demo")


@pytest.mark.parametrize(
    "size, kwargs, expected",
    [
        ("demo", dict(demo=1, default=2, full=3), 1),
        ("default", dict(demo=1, default=2, full=3), 2),
        ("full", dict(demo=1, default=2, full=3), 3),
        ("demo", dict(default=2, full=3), 2),  # demo falls back to default
        ("demo", dict(demo=None, default=2, full=3), None),  # None is a value, not "missing"
        ("full", dict(default=2, full=3), 3),
    ],
)
def test_by_size(monkeypatch, size, kwargs, expected):
    monkeypatch.setattr(_env, "SIZE", size)
    assert wlearn.by_size(**kwargs) == expected


def test_by_size_needs_default_and_full():
    with pytest.raises(TypeError):
        wlearn.by_size(demo=1, default=2)  # full missing
    with pytest.raises(TypeError):
        wlearn.by_size(demo=1, full=3)  # default missing
    with pytest.raises(TypeError):
        wlearn.by_size(1, 2, 3)  # keywords only: the order of sizes is never guessed


@pytest.mark.parametrize(
    "size, word", [("demo", "demo"), ("default", "default"), ("full", "FULL (paper scale)")]
)
def test_describe_run_names_the_size(monkeypatch, size, word):
    monkeypatch.setattr(_env, "SIZE", size)
    line = _env.describe_run()
    assert line.startswith(f"wlearn run size: {word}")
    assert torch.__version__ in line


def test_describe_run_on_cpu(monkeypatch):
    monkeypatch.setattr(_env, "get_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(_env, "SIZE", "default")
    line = _env.describe_run()
    assert "device: cpu" in line and "GPU" not in line
    monkeypatch.setattr(_env, "SIZE", "full")
    assert "paper scale needs one" in _env.describe_run()  # full on a CPU: say a GPU is needed


def test_describe_run_on_a_gpu_says_so(monkeypatch):
    monkeypatch.setattr(_env, "get_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev=None: "Test GPU 9000")
    monkeypatch.setattr(_env, "SIZE", "default")
    line = _env.describe_run()
    assert "device: GPU Test GPU 9000: cuda" in line
    assert "WLEARN_SIZE=full" in line  # how to scale up
    monkeypatch.setattr(_env, "SIZE", "full")
    line = _env.describe_run()
    assert "GPU Test GPU 9000" in line and "needs one" not in line


def _import_wlearn(**env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in ("WLEARN_SIZE", "WLEARN_FULL")}
    code = "import wlearn; print(wlearn.SIZE, wlearn.FULL, wlearn.DEMO)"
    return subprocess.run(
        [sys.executable, "-c", code], env={**e, **env}, capture_output=True, text=True
    )


def test_size_is_read_at_import():
    assert _import_wlearn().stdout.split() == ["default", "False", "False"]
    assert _import_wlearn(WLEARN_SIZE="Demo").stdout.split() == ["demo", "False", "True"]
    assert _import_wlearn(WLEARN_SIZE="full").stdout.split() == ["full", "True", "False"]
    assert _import_wlearn(WLEARN_FULL="1").stdout.split() == ["full", "True", "False"]


def test_bad_or_conflicting_size_fails_at_import():
    bad = _import_wlearn(WLEARN_SIZE="tiny")
    assert bad.returncode != 0 and "WLEARN_SIZE" in bad.stderr and "'tiny'" in bad.stderr
    both = _import_wlearn(WLEARN_SIZE="demo", WLEARN_FULL="1")
    assert both.returncode != 0 and "disagree" in both.stderr
