"""Every lesson's headings and figure labels use only the symbols of docs/notation.md.

As far as a test can: the symbols are read from the first column of the notation page's table
(Latin letters and Greek letters in its ``$...$``); a lesson's headings (markdown lines starting
with ``#``) and the text of its figure labels (``set_xlabel``, ``set_ylabel``, ``set_title``,
``suptitle``, ``xlabel``, ``ylabel``, ``title``, ``label=``) may contain, inside ``$...$``, only
those letters, and, outside math, no Greek letter the page does not list (``λ``, Frogner's
``1/ε``, belongs in the prose that says so, not in a heading or an axis).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTATION = REPO / "docs" / "notation.md"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# LaTeX commands that are formatting or operators, not symbols.
_NOT_SYMBOLS = {
    "mathrm",
    "text",
    "operatorname",
    "mathbf",
    "mathbb",
    "mathcal",
    "boldsymbol",
    "hat",
    "tilde",
    "widetilde",
    "bar",
    "overline",
    "star",
    "top",
    "sum",
    "prod",
    "log",
    "exp",
    "min",
    "max",
    "arg",
    "argmin",
    "argmax",
    "in",
    "le",
    "leq",
    "ge",
    "geq",
    "to",
    "infty",
    "cdot",
    "times",
    "left",
    "right",
    "big",
    "Big",
    "frac",
    "tfrac",
    "dfrac",
    "sqrt",
    "langle",
    "rangle",
    "lVert",
    "rVert",
    "Vert",
    "mid",
    "quad",
    "qquad",
    "approx",
    "neq",
    "ne",
    "sim",
    "propto",
    "odot",
    "oslash",
    "otimes",
    "partial",
    "nabla",
    "ldots",
    "dots",
    "cdots",
    "prime",
    "emptyset",
    "subset",
    "cup",
    "cap",
    "forall",
    "exists",
    "mapsto",
    "rightarrow",
    "leftarrow",
    "Rightarrow",
    "lfloor",
    "rfloor",
    "lceil",
    "rceil",
    "pm",
    "circ",
    "vert",
    "displaystyle",
    "scriptstyle",
    "textstyle",
}
# Inside these, letters are words (``\mathrm{KL}``, ``\text{bins}``), not symbols.
_WORDS = re.compile(r"\\(?:mathrm|text|operatorname|mathbb)\s*\{[^{}]*\}")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_MATH = re.compile(r"\$([^$]+)\$")
_GREEK = {
    unicodedata.lookup(f"GREEK SMALL LETTER {n}"): n.lower()
    for n in (
        "ALPHA BETA GAMMA DELTA EPSILON ZETA ETA THETA IOTA KAPPA LAMDA MU NU XI OMICRON PI RHO "
        "SIGMA TAU UPSILON PHI CHI PSI OMEGA"
    ).split()
}
_GREEK["ϵ"] = "epsilon"
_GREEK_NAMES = {"lamda": "lambda", "epsilon": "varepsilon"}
_LABEL = re.compile(
    r"""(?:set_xlabel|set_ylabel|set_title|suptitle|xlabel|ylabel|title|set_label)\(\s*"""
    r"""(f?(?P<q>["'])(?:(?!(?P=q))[^\\]|\\.)*(?P=q))"""
    r"""|label\s*=\s*(f?(?P<r>["'])(?:(?!(?P=r))[^\\]|\\.)*(?P=r))"""
)


def _symbols(math: str) -> set[str]:
    """The symbols of one math expression: Greek command names and Latin letters."""
    math = _WORDS.sub(" ", math)
    out = {c for c in _COMMAND.findall(math) if c not in _NOT_SYMBOLS}
    math = _COMMAND.sub(" ", math)
    out |= set(re.findall(r"[A-Za-z]", math))
    return out


def _allowed() -> set[str]:
    rows = [
        line for line in NOTATION.read_text(encoding="utf-8").splitlines() if line.startswith("| $")
    ]
    allowed: set[str] = set()
    for row in rows:
        first = row.split("|")[1]
        for m in _MATH.findall(first):
            allowed |= _symbols(m)
    return allowed | {"e", "epsilon"}  # Euler's number; "epsilon" spelt out as \epsilon


def _lesson_texts(path: Path) -> tuple[list[str], list[str]]:
    nb = nbformat.read(path, as_version=4)
    heads = [
        line
        for c in nb.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("#")
    ]
    labels = []
    for c in nb.cells:
        if c.cell_type == "code":
            for m in _LABEL.finditer(c.source):
                labels.append(m.group(1) or m.group(4))
    return heads, labels


def test_the_notation_page_lists_the_course_symbols():
    allowed = _allowed()
    assert {"K", "h", "y", "M", "T", "varepsilon", "gamma", "alpha", "f", "g", "G"} <= allowed
    assert "lambda" not in allowed and "rho" not in allowed  # the papers' names, not ours


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_headings_and_figure_labels_use_only_the_course_symbols(path):
    allowed = _allowed()
    heads, labels = _lesson_texts(path)
    bad = []
    for where, text in [("heading", h) for h in heads] + [("label", t) for t in labels]:
        for m in _MATH.findall(text):
            extra = _symbols(m) - allowed
            if extra:
                bad.append(f"{where} {text!r}: {sorted(extra)} not in docs/notation.md")
        plain = _MATH.sub(" ", text)
        for ch in plain:
            name = _GREEK.get(ch.lower())
            if name and _GREEK_NAMES.get(name, name) not in allowed:
                bad.append(f"{where} {text!r}: {ch} ({name}) not in docs/notation.md")
    assert not bad, "symbols outside the course's notation:\n  " + "\n  ".join(bad)
