"""Build the instructor's slide decks: each lesson as a reveal.js presentation.

Usage::

    python tools/build_slides.py [--out build/slides] [--only NN ...] [--executed build/notebooks]
                                 [--timeout SECONDS] [--src DIR]

Writes ``<out>/NN_x.slides.html`` with nbconvert's ``SlidesExporter`` (reveal.js, loaded from
its CDN when the deck is opened, as nbconvert does). The executed notebooks of ``make course``
(``build/notebooks``) are used when they are up to date (newer than the lesson, executed
without error at the same run size, see ``build_course.reusable``); otherwise the lesson is
executed here, in this process's environment, so ``WLEARN_SIZE=demo make slides`` builds
decks from the demo-size run.

Slide types come from cell tags (set them in JupyterLab's property inspector):

=============  ==============================================================================
tag            the cell ...
=============  ==============================================================================
``slide``      starts a new slide (left-right)
``subslide``   starts a new sub-slide (up-down, below the current slide)
``fragment``   appears on the current slide at the next key press
``continue``   joins the current (sub-)slide (the default for other cells)
``skip``       is left out of the deck
``notes``      goes to the speaker notes (press ``s`` in the deck)
=============  ==============================================================================

Untagged cells get a type from these defaults, in order:

1. a cell tagged ``solution`` is skipped (solutions belong to the instructor build of the
   site, not on the projector), whatever its other tags;
2. an explicit tag above wins; then a slide type already set in the notebook
   (``metadata.slideshow.slide_type``) is kept;
3. an empty cell is skipped;
4. a markdown cell whose first line is a ``# `` or ``## `` heading starts a slide, one with a
   ``### `` heading a sub-slide;
5. a code cell longer than :data:`LONG_CODE_LINES` lines starts a sub-slide, and the cell
   after it starts another one: the long code and its output stand alone;
6. any other cell continues the current slide.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nbconvert import SlidesExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_course  # noqa: E402  (tools/ is not a package)

SLIDE_TAGS = {
    "slide": "slide",
    "subslide": "subslide",
    "fragment": "fragment",
    "continue": "-",
    "skip": "skip",
    "notes": "notes",
}
SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")
LONG_CODE_LINES = 15


def slide_type(cell, after_long_code: bool = False) -> str:
    """The reveal.js slide type of one cell (module docstring: tags, then defaults).

    Parameters
    ----------
    cell : nbformat.NotebookNode
        A notebook cell.
    after_long_code : bool
        Whether the previous cell was a long code cell (rule 5): a cell that would continue
        the slide starts a sub-slide instead.

    Returns
    -------
    str
        One of :data:`SLIDE_TYPES`.
    """
    tags = cell.get("metadata", {}).get("tags", [])
    if "solution" in tags:
        return "skip"
    explicit = [SLIDE_TAGS[t] for t in tags if t in SLIDE_TAGS]
    if len(set(explicit)) > 1:
        raise ValueError(
            f"cell {cell.get('id', '?')}: tags: expected at most one slide tag of "
            f"{sorted(SLIDE_TAGS)}, got {[t for t in tags if t in SLIDE_TAGS]}; keep one"
        )
    if explicit:
        return explicit[0]
    stored = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
    if stored in SLIDE_TYPES:
        return stored
    source = cell.get("source", "")
    if not source.strip():
        return "skip"
    if cell.get("cell_type") == "markdown":
        first = source.lstrip().splitlines()[0]
        if first.startswith(("# ", "## ")):
            return "slide"
        if first.startswith("### "):
            return "subslide"
    if cell.get("cell_type") == "code" and len(source.strip().splitlines()) > LONG_CODE_LINES:
        return "subslide"
    return "subslide" if after_long_code else "-"


def is_long_code(cell) -> bool:
    """Whether ``cell`` is a code cell of more than :data:`LONG_CODE_LINES` lines."""
    return (
        cell.get("cell_type") == "code"
        and len(cell.get("source", "").strip().splitlines()) > LONG_CODE_LINES
    )


def assign_slide_types(nb):
    """A copy of ``nb`` with ``metadata.slideshow.slide_type`` set on every cell by
    :func:`slide_type`; widget outputs replaced by their static forms as on the site."""
    nb = build_course.for_site(nb, instructor=True)
    after_long = False
    for cell in nb.cells:
        kind = slide_type(cell, after_long)
        cell.metadata["slideshow"] = {"slide_type": kind}
        if kind != "skip":
            after_long = is_long_code(cell)
    return nb


def write_deck(nb, path: Path) -> None:
    """Write the reveal.js deck of an executed notebook to ``path``."""
    exporter = SlidesExporter()
    exporter.reveal_scroll = True  # long outputs scroll instead of overflowing
    exporter.reveal_number = "c/t"
    title = build_course.describe(nb)[0]
    body, _ = exporter.from_notebook_node(
        assign_slide_types(nb), resources={"metadata": {"name": title}}
    )
    path.write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/slides", help="output folder")
    parser.add_argument("--src", default=str(build_course.NOTEBOOKS), help="lesson folder")
    parser.add_argument("--only", nargs="+", metavar="NN", help="only these lesson numbers")
    parser.add_argument(
        "--executed",
        default="build/notebooks",
        metavar="DIR",
        help="reuse up-to-date executed notebooks from DIR (default: build/notebooks)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout: expected a positive number of seconds, got {args.timeout}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = build_course.lessons(args.src, args.only)
    if not paths:
        print(f"no lesson notebooks found in {args.src} (only={args.only})", file=sys.stderr)
        return 1
    failed = []
    for path in paths:
        nb, seconds, status, reused = build_course.executed_notebook(
            path, args.timeout, Path(args.executed) if args.executed else None
        )
        deck = out / f"{path.stem}.slides.html"
        write_deck(nb, deck)
        how = "executed notebook reused" if reused else f"executed in {seconds:.0f} s"
        print(f"{deck}  ({how}, {status})", flush=True)
        if status != "ok":
            failed.append(path.name)
    if failed:
        print(f"lessons that did not run to the end: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
