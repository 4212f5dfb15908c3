"""Set the RISE slide type of every lesson cell from the cells themselves, so that each lesson
presents as a deck in JupyterLab (jupyterlab-rise: ``make lab``, then the RISE button).

Usage::

    python tools/slides.py notebooks/*.ipynb          # write the slide types
    python tools/slides.py --check notebooks/*.ipynb  # list cells that break the rules, exit 1

The rules (the slide type is ``cell.metadata.slideshow.slide_type``, which RISE reads):

1. a cell tagged ``solution`` is skipped (solutions are not projected);
2. the first cell, and a markdown cell whose first line is a ``# `` or ``## `` heading, starts
   a slide (left-right);
3. a markdown cell whose first line is a ``### `` heading starts a sub-slide (up-down);
4. a markdown cell that follows a code cell starts a sub-slide: each explanation comes with the
   code and output after it;
5. any other cell continues the current slide (``-``) unless a slide type was set by hand
   (``fragment``, ``notes``, ...), which is kept.

The notebook's ``rise`` metadata asks for scrolling slides (a figure taller than the screen
stays reachable) and reveal.js's "white" theme, whose font ships with RISE (no web fonts). Cell ids, sources and all other metadata are left as they are; a notebook
whose slide types already follow the rules is not rewritten.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
# scroll: a slide taller than the screen scrolls; theme "white": its font ships with RISE (the
# default theme, "simple", imports its fonts from a web font service: nothing offline).
RISE_SETTINGS = {"scroll": True, "theme": "white"}
_HEADING = re.compile(r"^(#{1,6})\s+\S")


def _first_line(cell) -> str:
    for line in cell.source.splitlines():
        if line.strip():
            return line.lstrip()
    return ""


def rule_type(cell, index: int, previous_type: str | None) -> str | None:
    """The slide type the rules impose on a cell, or None where a hand-set type may stand.

    Parameters
    ----------
    cell : nbformat.NotebookNode
        The cell.
    index : int
        Its position in the notebook (0 for the first cell).
    previous_type : str or None
        The previous cell's type, ``"code"`` or ``"markdown"`` (None for the first cell).

    Returns
    -------
    str or None
        One of :data:`SLIDE_TYPES`, or None (rule 5: keep a valid type set by hand, else ``-``).
    """
    if "solution" in cell.get("metadata", {}).get("tags", []):
        return "skip"
    if index == 0:
        return "slide"
    if cell.cell_type == "markdown":
        m = _HEADING.match(_first_line(cell))
        if m and len(m.group(1)) <= 2:
            return "slide"
        if m and len(m.group(1)) == 3:
            return "subslide"
        if previous_type == "code":
            return "subslide"
    return None


def _current(cell) -> str | None:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def expected_types(nb) -> list[str]:
    """The slide type of every cell after :func:`apply` (rules 1-5, hand-set types kept)."""
    out, previous = [], None
    for i, cell in enumerate(nb.cells):
        forced = rule_type(cell, i, previous)
        current = _current(cell)
        out.append(forced or (current if current in SLIDE_TYPES else "-"))
        previous = cell.cell_type
    return out


def apply(nb) -> bool:
    """Set every cell's slide type and the notebook's ``rise`` settings. Returns whether
    anything changed."""
    changed = False
    for cell, wanted in zip(nb.cells, expected_types(nb), strict=True):
        if _current(cell) != wanted:
            cell.metadata.setdefault("slideshow", {})["slide_type"] = wanted
            changed = True
    rise = nb.metadata.setdefault("rise", {})
    for key, value in RISE_SETTINGS.items():
        if rise.get(key) != value:
            rise[key] = value
            changed = True
    return changed


def problems(nb) -> list[str]:
    """Cells whose slide type differs from :func:`expected_types`, as readable lines."""
    out = []
    for i, (cell, wanted) in enumerate(zip(nb.cells, expected_types(nb), strict=True)):
        have = _current(cell)
        if have != wanted:
            head = _first_line(cell)[:50]
            out.append(
                f"cell {i} ({cell.cell_type}, {head!r}): slide_type {have!r}, expected {wanted!r}"
            )
    if any(nb.metadata.get("rise", {}).get(k) != v for k, v in RISE_SETTINGS.items()):
        out.append(f"notebook metadata: expected rise settings {RISE_SETTINGS}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            found = problems(nb)
            if found:
                status = 1
                print(f"{path}: {len(found)} cells without the slide type the rules give:")
                print("  " + "\n  ".join(found))
        elif apply(nb):
            nbformat.write(nb, path)
            print(f"{path}: slide types set")
    if status:
        print("run: python tools/slides.py notebooks/*.ipynb")
    return status


if __name__ == "__main__":
    sys.exit(main())
