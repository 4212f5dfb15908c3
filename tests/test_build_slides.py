"""tools/build_slides.py: the cell-tag to slide-type mapping and the reveal.js deck."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_slides as bs  # noqa: E402


def _tagged(cell, *tags):
    cell.metadata["tags"] = list(tags)
    return cell


LONG = "\n".join(f"x{i} = {i}" for i in range(bs.LONG_CODE_LINES + 1))


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("slide", "slide"),
        ("subslide", "subslide"),
        ("fragment", "fragment"),
        ("continue", "-"),
        ("skip", "skip"),
        ("notes", "notes"),
    ],
)
def test_tags_set_the_slide_type(tag, expected):
    assert bs.slide_type(_tagged(new_markdown_cell("## A heading"), tag)) == expected
    assert bs.slide_type(_tagged(new_code_cell("x = 1"), tag)) == expected


@pytest.mark.parametrize(
    "cell, expected",
    [
        (new_markdown_cell("# Title"), "slide"),
        (new_markdown_cell("## Section\n\ntext"), "slide"),
        (new_markdown_cell("\n### Part"), "subslide"),
        (new_markdown_cell("#### Detail"), "-"),
        (new_markdown_cell("Plain text with a # sign"), "-"),
        (new_code_cell("x = 1"), "-"),
        (new_code_cell(LONG), "subslide"),
        (new_code_cell("  \n"), "skip"),
        (new_markdown_cell(""), "skip"),
    ],
)
def test_defaults_for_untagged_cells(cell, expected):
    assert bs.slide_type(cell) == expected


def test_solution_cells_are_skipped_whatever_the_other_tags():
    assert bs.slide_type(_tagged(new_code_cell("answer = 42"), "solution")) == "skip"
    assert bs.slide_type(_tagged(new_code_cell("answer = 42"), "slide", "solution")) == "skip"


def test_exercise_cells_follow_the_defaults():
    assert bs.slide_type(_tagged(new_markdown_cell("### Exercise 1"), "exercise")) == "subslide"


def test_a_type_stored_in_the_notebook_is_kept_unless_a_tag_says_otherwise():
    cell = new_markdown_cell("## Heading")
    cell.metadata["slideshow"] = {"slide_type": "fragment"}
    assert bs.slide_type(cell) == "fragment"
    assert bs.slide_type(_tagged(cell, "notes")) == "notes"


def test_two_slide_tags_are_an_error_naming_the_tags():
    with pytest.raises(ValueError, match=r"tags: expected at most one slide tag.*skip.*slide"):
        bs.slide_type(_tagged(new_code_cell("x"), "skip", "slide"))


def test_the_cell_after_a_long_code_cell_starts_a_subslide():
    nb = new_notebook(
        cells=[
            new_markdown_cell("## S"),
            new_code_cell(LONG),
            new_markdown_cell("what it shows"),
            new_markdown_cell("more"),
            new_code_cell(LONG),
            _tagged(new_code_cell("answer"), "solution"),
            new_markdown_cell("after the skipped solution"),
        ]
    )
    types = [c.metadata.slideshow.slide_type for c in bs.assign_slide_types(nb).cells]
    assert types == ["slide", "subslide", "subslide", "-", "subslide", "skip", "subslide"]
    assert "slideshow" not in nb.cells[0].metadata  # the input is not modified


def test_deck_is_a_reveal_presentation_without_solutions(tmp_path):
    fig = new_code_cell("plot()")
    fig.outputs = [new_output("display_data", data={"text/plain": "a figure"})]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 01 · Deck"),
            new_markdown_cell("## First"),
            fig,
            _tagged(new_code_cell("secret_answer = 42"), "solution"),
            new_markdown_cell("## Second"),
            _tagged(new_markdown_cell("say this aloud"), "notes"),
        ]
    )
    path = tmp_path / "01_deck.slides.html"
    bs.write_deck(nb, path)
    page = path.read_text()
    assert "reveal" in page.lower() and "<section" in page
    assert page.count("<section") >= 3  # title, First, Second
    assert "secret_answer" not in page
    assert 'class="notes"' in page or "<aside" in page
    assert "<title>01 · Deck" in page
