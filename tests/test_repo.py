"""Repository invariants: dependency lists agree, notebooks follow the house style,
and the run-size / seed / device helpers of :mod:`wlearn._env` behave."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from wlearn import _env

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is what tomllib was before 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAME = re.compile(r"^(\d\d)_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
TORCH_PIN = "2.13.0"


# ---------------------------------------------------------------- dependency lists


def _pyproject_requirements() -> dict[str, str]:
    """name -> specifier for the dependencies and the lab/dev extras of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("lab", "dev"):
        reqs += project["optional-dependencies"][extra]
    out = {}
    for r in map(Requirement, reqs):
        out[r.name.lower()] = str(r.specifier)
    return out


def _environment_requirements() -> dict[str, str]:
    """name -> specifier for environment.yml (conda and pip entries), without python, pip
    and the editable install of wlearn itself."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    entries = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            entries += [p for p in dep["pip"] if not p.startswith("-")]
        else:
            entries.append(dep)
    out = {}
    for entry in entries:
        r = Requirement(entry.replace(" ", ""))
        if r.name.lower() not in ("python", "pip"):
            out[r.name.lower()] = str(r.specifier)
    return out


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert set(py) == set(env), (
        f"only in pyproject.toml: {sorted(set(py) - set(env))}; "
        f"only in environment.yml: {sorted(set(env) - set(py))}"
    )


def test_environment_yml_uses_the_same_version_bounds():
    py, env = _pyproject_requirements(), _environment_requirements()
    differ = {
        n: (py[n], env[n])
        for n in py
        if n != "torch" and SpecifierSet(py[n]) != SpecifierSet(env[n])
    }
    assert not differ, f"version bounds differ (pyproject, environment.yml): {differ}"


def test_torch_is_pinned_in_environment_yml_and_allowed_by_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert env["torch"] == f"=={TORCH_PIN}"
    assert TORCH_PIN in SpecifierSet(py["torch"])
    assert f"torch=={TORCH_PIN}" in (ROOT / "Makefile").read_text()


def test_pyyaml_is_a_dev_dependency():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "dev"
    ]
    assert any(Requirement(r).name.lower() == "pyyaml" for r in dev)


def test_gitignore_ignores_data_build_and_venv():
    lines = {line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()}
    for path in ("data", "build", ".venv"):
        assert path in lines, f".gitignore: expected an entry for {path}/"


def test_precommit_config_has_ruff_format_and_nbstripout():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"] for repo in config["repos"] for h in repo["hooks"]}
    assert {"ruff", "ruff-format", "nbstripout"} <= hooks


# ---------------------------------------------------------------- notebooks


def test_notebooks_exist_and_are_numbered_consecutively():
    assert NOTEBOOKS, "no notebooks in notebooks/"
    bad = [p.name for p in NOTEBOOKS if not NAME.match(p.name)]
    assert not bad, f"expected names NN_snake_case.ipynb, got {bad}"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert len(set(numbers)) == len(numbers), f"duplicate lesson numbers: {numbers}"
    assert numbers == list(range(1, len(numbers) + 1)), f"expected 01, 02, ... got {numbers}"


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_stripped(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i}: outputs stored"
            assert cell.execution_count is None, f"{path.name} cell {i}: execution count stored"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opening_cell_seeds_and_describes_the_run(path):
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    assert code, f"{path.name}: no code cells"
    first = code[0]
    assert "import wlearn" in first
    assert re.search(r"wlearn\.seed_everything\(\s*0\s*\)", first), (
        f"{path.name}: no seed_everything(0)"
    )
    assert re.search(r"print\(\s*wlearn\.describe_run\(\)\s*\)", first), (
        f"{path.name}: no describe_run"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_asserts_summary_and_exercises(path):
    nb = nbformat.read(path, as_version=4)
    assert any(re.search(r"^\s*assert\b", src, re.MULTILINE) for src in _code(nb)), (
        f"{path.name}: no assert cell"
    )
    md = _markdown(nb)
    assert re.search(r"^#+\s.*\bSummary\b", md, re.MULTILINE), f"{path.name}: no Summary heading"
    assert re.search(r"^#+\s.*\bExercises\b", md, re.MULTILINE), (
        f"{path.name}: no Exercises heading"
    )
    assert re.search(r"^#\s+\S", md, re.MULTILINE), f"{path.name}: no title heading"


# ---------------------------------------------------------------- wlearn._env


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        ("No", False),
        (" off ", False),
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
    ],
)
def test_read_full_values(value, expected):
    assert _env._read_full(value) is expected


@pytest.mark.parametrize("value", ["2", "full", "maybe", "-1"])
def test_read_full_rejects_bad_values(value):
    with pytest.raises(ValueError, match="WLEARN_FULL"):
        _env._read_full(value)


def _import_wlearn(full: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WLEARN_SIZE"} | {"WLEARN_FULL": full}
    code = "import wlearn; print(wlearn.FULL); print(wlearn.describe_run())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_wlearn_full_is_read_at_import():
    on, off = _import_wlearn("1"), _import_wlearn("0")
    assert on.returncode == 0 and on.stdout.splitlines()[0] == "True"
    assert "FULL (paper scale)" in on.stdout.splitlines()[1]
    assert off.returncode == 0 and off.stdout.splitlines()[0] == "False"
    assert "default" in off.stdout.splitlines()[1]


def test_bad_wlearn_full_fails_at_import_naming_the_variable():
    bad = _import_wlearn("maybe")
    assert bad.returncode != 0
    assert "WLEARN_FULL" in bad.stderr and "'maybe'" in bad.stderr


def _draw() -> tuple:
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_seed_everything_is_reproducible():
    _env.seed_everything(123)
    first = _draw()
    _env.seed_everything(123)
    assert _draw() == first
    _env.seed_everything(124)
    assert _draw() != first


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        _env.seed_everything(seed)


def test_seed_everything_accepts_numpy_integers():
    _env.seed_everything(np.int64(7))
    first = _draw()
    _env.seed_everything(7)
    assert _draw() == first


def test_get_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert _env.get_device().type == expected
    assert _env.get_device("cpu") == torch.device("cpu")
    assert _env.get_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device"):
            _env.get_device("cuda")


def test_describe_run_names_size_and_device():
    line = _env.describe_run()
    assert str(_env.get_device()) in line
    assert ("FULL (paper scale)" in line) is _env.FULL
    assert torch.__version__ in line


def test_ruff_check_and_format_are_clean():
    """The habits pre-commit enforces (ruff, ruff-format) hold for the whole repository, so a
    contributor without pre-commit still fails CI on an unformatted or lint-failing change."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment (the dev extra installs it)")
    paths = ["wlearn", "tests", "benchmarks", "data_scripts", "tools", "notebooks"]
    for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        out = subprocess.run([str(ruff), *args, *paths], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, (
            f"ruff {' '.join(args)} failed:\n{out.stdout[-3000:]}{out.stderr[-1000:]}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_its_numbered_title(path):
    """A learner (and the course site) sees the lesson's title before any code."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell is not the title"
    assert re.match(rf"#\s+{path.name[:2]}\b", first.source.lstrip()), (
        f"{path.name}: the first cell does not start with '# {path.name[:2]} ...'"
    )
