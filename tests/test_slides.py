"""tools/slides.py: the RISE slide type of every lesson cell follows from the cells (headings start
slides, solutions are skipped), and the lessons carry it, so each presents as a deck."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import slides  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell


def _nb(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def _types(nb):
    return [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]


def test_rules():
    solution = code("x = 1")
    solution.metadata["tags"] = ["solution"]
    fragment = code("y = 2")
    fragment.metadata["slideshow"] = {"slide_type": "fragment"}
    nb = _nb(
        [
            md("# 01 · Title"),
            code("import wlearn"),
            md("## 1. Section\n\ntext"),
            md("more text"),
            code("a = 1"),
            md("an explanation after code"),
            md("\n### A subsection"),
            md("#### a small heading"),
            fragment,
            solution,
            md("## Exercises"),
        ]
    )
    assert slides.apply(nb) is True
    assert _types(nb) == [
        "slide",  # the first cell
        "-",
        "slide",  # ## heading
        "-",
        "-",
        "subslide",  # markdown after code
        "subslide",  # ### heading (after blank lines)
        "-",  # #### heading: continues
        "fragment",  # set by hand: kept
        "skip",  # solution
        "slide",
    ]
    assert nb.metadata["rise"] == slides.RISE_SETTINGS
    assert slides.problems(nb) == []
    assert slides.apply(nb) is False  # idempotent


def test_rule_overrides_a_stale_type_and_problems_name_the_cell():
    nb = _nb([md("# T"), md("## S")])
    nb.cells[1].metadata["slideshow"] = {"slide_type": "-"}
    found = slides.problems(nb)
    assert any("cell 1" in f and "expected 'slide'" in f for f in found), found
    assert any("rise settings" in f for f in found)
    slides.apply(nb)
    assert _types(nb) == ["slide", "slide"]


def test_rewriting_changes_only_metadata(tmp_path):
    src = NOTEBOOKS[0]
    before = nbformat.read(src, as_version=4)
    path = tmp_path / src.name
    path.write_bytes(src.read_bytes())
    assert slides.main([str(path)]) == 0
    after = nbformat.read(path, as_version=4)
    assert [c.source for c in after.cells] == [c.source for c in before.cells]
    assert [c.get("id") for c in after.cells] == [c.get("id") for c in before.cells]
    assert slides.main(["--check", str(path)]) == 0
    text = path.read_bytes()
    assert slides.main([str(path)]) == 0
    assert path.read_bytes() == text  # a second run writes nothing new


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_lesson_has_its_slide_types(path):
    """Fails after a lesson changes until `python tools/slides.py notebooks/*.ipynb` is run."""
    found = slides.problems(nbformat.read(path, as_version=4))
    assert not found, (
        f"{path.name}: slide types out of date; run python tools/slides.py notebooks/*.ipynb\n  "
        + "\n  ".join(found[:10])
    )
