"""The course site's own glue to Sphinx, myst-nb, sphinx-book-theme and sphinx-codeautolink:
only what none of them does. Loaded by ``docs/conf.py``.

- **Solutions.** myst-nb gives each code cell a container with a ``tag_<tag>`` class. On the
  learner site a cell tagged ``solution`` is replaced by the note "solution hidden: see the
  instructor build"; the instructor build (``sphinx-build -t instructor``, ``make
  course-instructor``) keeps it and marks it (class ``wlearn-solution``, styled in
  ``docs/_static/wlearn.css``).
- **Citations.** A lesson cites with a Markdown link to ``cite:<key>``,
  ``[Frogner et al. 2015](cite:frogner2015)``: JupyterLab shows the link text; here the link
  goes to the entry of ``docs/references.bib`` on the bibliography page (sphinxcontrib-bibtex,
  ``bibtex_cite_id = "{key}"``). An unknown key is a build warning.
- **wlearn used in this lesson.** sphinx-codeautolink resolves the names in a lesson's code
  (and links them in place); a collapsed box at the top of each lesson lists the ``wlearn``
  names it resolved, each linked to its entry in the API reference.
- **The claims ledger.** Once the lessons have been read (myst-nb has executed them and
  written the executed notebooks), the "What reproduces" page is read: ``claims.json`` is
  written into the output folder with :func:`wlearn.claims.write_ledger`, and the page's
  tables are generated from the ledger's rows (per paper, per item: ours beside the paper's,
  the status, a link to the claim's box in its lesson). That page is read last and on every
  build; do not build with ``-j`` (parallel reading would lose that order).
- **Failed lessons fail the build.** myst-nb reports a lesson that raised as a warning and
  builds on; at the end a table (lesson, seconds, status) is printed and the build's exit
  status is 1 if any lesson failed (every page is still written).
- **The house's docstring endings.** numpydoc drops sections it does not know (``Shapes``) and
  reads a paragraph after a parameter list as one more parameter; the ``Shapes`` section and
  the closing paragraphs ("Shapes: ...", "Introduced in notebooks/...", "See notebooks/...",
  "Used by ...") are moved after numpydoc's output instead.
- **Links from a lesson to the site's pages.** A lesson links to ``../docs/notation.md`` (the
  path from ``notebooks/``, which JupyterLab opens); the site reads the lessons through
  ``docs/notebooks``, so such links are rewritten to ``../notation.md`` before parsing.
- **MathJax from the site.** MathJax 3 (``tex-svg-full.js`` and the parts it loads on demand)
  is copied from the ``django-static-mathjax`` package into ``_static/mathjax/``
  (``mathjax_path``), so formulas need no network.
- **Where executed notebooks go.** myst-nb writes them to ``<outdir>/../jupyter_execute``;
  here they go to ``<doctreedir>/jupyter_execute``, so that each site (``build/``,
  ``build/instructor/``, ``build/test-site/``) keeps its own next to its doctrees.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections import Counter
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

SOLUTION_NOTE = "solution hidden: see the instructor build"
CITE = "cite:"
_BIBKEY = re.compile(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)


# ---------------------------------------------------------------- configuration helpers


def executed_dir(app: Sphinx) -> Path:
    """The folder where myst-nb writes the executed notebooks of this build."""
    return Path(app.doctreedir) / "jupyter_execute"


def _relocate_executed_notebooks(app: Sphinx) -> None:
    config = getattr(app.env, "mystnb_config", None)
    if config is not None:
        app.env.mystnb_config = config.copy(output_folder=str(executed_dir(app)))


def is_lesson(app: Sphinx, docname: str) -> bool:
    """Whether ``docname`` is a lesson (a notebook under ``wlearn_lessons_dir``)."""
    prefix = app.config.wlearn_lessons_dir.rstrip("/") + "/"
    return docname.startswith(prefix) and app.env.doc2path(docname).suffix == ".ipynb"


def bib_keys(path: Path) -> set[str]:
    """The entry keys of a BibTeX file.

    Parameters
    ----------
    path : Path
        A ``.bib`` file.

    Returns
    -------
    set of str
        The keys of its ``@type{key, ...}`` entries.
    """
    return set(_BIBKEY.findall(Path(path).read_text(encoding="utf-8")))


MATHJAX_FILE = "tex-svg-full.js"
MATHJAX_PARTS = ("a11y", "ui", "input/tex/extensions", "output/svg")


def copy_mathjax(dest: Path) -> Path:
    """Copy MathJax 3 from the ``django-static-mathjax`` package into ``dest``.

    Parameters
    ----------
    dest : Path
        The folder to fill (``<outdir>/_static/mathjax``); left alone when complete.

    Returns
    -------
    Path
        ``dest / MATHJAX_FILE``, the script the pages load.

    Raises
    ------
    RuntimeError
        When the package is not installed (``pip install -e '.[lab]'``).
    """
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "django-static-mathjax is not installed (pip install -e '.[lab]'); the site serves "
            "MathJax itself and loads nothing from the network"
        )
    src = Path(spec.origin).parent / "static" / "mathjax" / "es5"
    dest = Path(dest)
    if not (dest / MATHJAX_FILE).is_file():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src.parent / "LICENSE", dest / "LICENSE")
        for part in MATHJAX_PARTS:
            shutil.copytree(src / part, dest / part, dirs_exist_ok=True)
        shutil.copy2(src / MATHJAX_FILE, dest / MATHJAX_FILE)  # last: marks a complete copy
    return dest / MATHJAX_FILE


# ---------------------------------------------------------------- solutions


def _solutions(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not is_lesson(app, docname):
        return
    for cell in list(doctree.findall(nodes.container)):
        if "tag_solution" not in cell.get("classes", []):
            continue
        if app.config.wlearn_instructor:
            cell["classes"].append("wlearn-solution")
        else:
            note = nodes.paragraph(classes=["wlearn-solution-hidden"])
            note += nodes.emphasis(text=SOLUTION_NOTE)
            cell.replace_self(note)
            note["classes"] = ["wlearn-solution-hidden"]  # not the cell's tag classes


# ---------------------------------------------------------------- citations


def _citations(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    keys = app.env.wlearn_bib_keys
    target = app.config.wlearn_bibliography_doc
    for ref in list(doctree.findall(nodes.reference)):
        uri = ref.get("refuri", "")
        if not uri.startswith(CITE):
            continue
        key = uri[len(CITE) :]
        if key not in keys:
            logger.warning(
                f"cite:{key}: no entry {key!r} in {app.config.wlearn_bibfile} "
                f"(known: {', '.join(sorted(keys))})",
                location=ref,
                type="wlearn",
                subtype="cite",
            )
            continue
        ref["refuri"] = app.builder.get_relative_uri(docname, target) + "#" + nodes.make_id(key)
        ref["classes"].append("wlearn-cite")
        ref["internal"] = True


# ---------------------------------------------------------------- wlearn used in this lesson


def used_names(app: Sphinx, docname: str) -> list[str]:
    """The ``wlearn`` names sphinx-codeautolink resolved in a document's code, sorted."""
    transforms = getattr(app.env, "sphinx_codeautolink_transforms", {}).get(docname, [])
    found = set()
    for transform in transforms:
        for name in transform.names:
            location = getattr(name, "resolved_location", None) or ""
            if location == "wlearn" or location.startswith("wlearn."):
                found.add(location)
    return sorted(found)


def _uses_box(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if not is_lesson(app, docname):
        return
    objects = app.env.get_domain("py").objects
    items = nodes.bullet_list(classes=["wlearn-uses-list"])
    for name in used_names(app, docname):
        entry = objects.get(name)
        if entry is None:
            continue
        href = app.builder.get_relative_uri(docname, entry.docname) + "#" + entry.node_id
        ref = nodes.reference("", "", internal=True, refuri=href)
        ref += nodes.literal(text=name)
        items += nodes.list_item("", nodes.paragraph("", "", ref))
    if not len(items):
        return
    box = nodes.admonition(classes=["dropdown", "wlearn-uses"])
    box += nodes.title(text=f"wlearn used in this lesson ({len(items)})")
    box += items
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, box)
    else:
        section.insert(1, box)  # after the title


def _resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    _citations(app, doctree, docname)
    _uses_box(app, doctree, docname)


# ---------------------------------------------------------------- the claims ledger and page


def _read_reproduces_last(app: Sphinx, env, docnames: list[str]) -> None:
    page = app.config.wlearn_reproduces_doc
    if page in docnames:
        docnames.remove(page)
        docnames.append(page)


def _always_reread_reproduces(app: Sphinx, env, added, changed, removed) -> list[str]:
    page = app.config.wlearn_reproduces_doc
    return [page] if page in env.found_docs else []


def _cell(text) -> str:
    """Text for a cell of a Markdown table (no line breaks, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def format_value(value) -> str:
    """A measured value as the page shows it (4 significant digits; lists in brackets).

    Parameters
    ----------
    value : object
        A number, text, or a (nested) list of them, as in a ledger row's ``ours``.

    Returns
    -------
    str
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def reproduces_markdown(rows: list[dict], papers: dict, lesson_href: dict, anchor) -> str:
    """The "What reproduces" tables (MyST Markdown) from the ledger's rows.

    Parameters
    ----------
    rows : list of dict
        Ledger rows (:func:`wlearn.claims.write_ledger`).
    papers : dict
        ``wlearn.claims.papers()``: key -> ``{"short", "citation", "bibkey"}``.
    lesson_href : dict
        Lesson number ``"NN"`` -> the relative URL of its page.
    anchor : callable
        Claim id -> the id of its box in the lesson page (:func:`wlearn.claims.anchor`).

    Returns
    -------
    str
        A table of the counts per paper and status, then one section per paper (the course's
        own claims last): the counts and a table with one row per claim: item, claim, ours, paper, status, lesson (linked to the claim's box
        when the lesson displayed it in this build).
    """
    out = []
    by_paper: dict[str, list[dict]] = {}
    for row in rows:
        by_paper.setdefault(row["paper"], []).append(row)
    order = sorted(papers, key=lambda k: (not papers[k].get("bibkey"), k))  # the course last
    statuses = ("reproduced", "not reproduced", "shown", "out of reach offline")
    out += ["| | " + " | ".join(statuses) + " |", "|---" * (len(statuses) + 1) + "|"]
    for key in order:
        counts = Counter(r["status"] for r in by_paper.get(key, []))
        cells = [papers[key]["short"], *(str(counts.get(s, 0)) for s in statuses)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    for key in order:
        info = papers[key]
        mine = by_paper.get(key, [])
        citation = _cell(info["citation"])
        if info.get("bibkey"):
            citation = f"[{citation}](cite:{info['bibkey']})"
        out += [f"## {info['short']}", "", citation, ""]
        if not mine:
            out += ["No claims registered yet.", ""]
            continue
        counts = Counter(r["status"] for r in mine)
        out += [", ".join(f"{counts[st]} {st}" for st in statuses if counts[st]) + ".", ""]
        out += ["| Item | Claim | Ours | Paper | Status | Lesson |", "|---|---|---|---|---|---|"]
        for r in mine:
            ours = "; ".join(f"{k} {format_value(v)}" for k, v in r.get("ours", {}).items())
            if not ours:
                ours = "(not run in this build)" if not r.get("notebook") else "-"
            href = lesson_href.get(r["lesson"])
            if href and r.get("notebook"):
                href += "#" + anchor(r["id"])
            lesson = f'<a href="{href}">{r["lesson"]}</a>' if href else r["lesson"]
            status = r["status"]
            if r.get("size") and r.get("notebook"):
                status += f" ({r['size']} size)"
            cells = [r["item"], r["claim"], ours, r.get("paper_value") or "-", status, lesson]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out)


DOCS_LINK = "](../docs/"


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    if is_lesson(app, docname):
        source[0] = source[0].replace(DOCS_LINK, "](../")
    elif docname == app.config.wlearn_reproduces_doc:
        _reproduces_page(app, docname, source)


def _reproduces_page(app: Sphinx, docname: str, source: list[str]) -> None:
    import wlearn.claims as wc

    executed = sorted(
        p
        for p in (executed_dir(app) / app.config.wlearn_lessons_dir).glob("*.ipynb")
        if is_lesson(app, f"{app.config.wlearn_lessons_dir}/{p.stem}")
    )
    ledger = Path(app.outdir) / "claims.json"
    rows = wc.write_ledger(executed, ledger)
    logger.info(f"claims ledger: {len(rows)} rows from {len(executed)} notebooks -> {ledger}")
    lesson_href = {}
    for doc in sorted(app.env.found_docs):
        if is_lesson(app, doc):
            lesson_href[Path(doc).name[:2]] = app.builder.get_relative_uri(docname, doc)
    source[0] += "\n\n" + reproduces_markdown(rows, wc.papers(), lesson_href, wc.anchor)


# ---------------------------------------------------------------- failed lessons


def lesson_runs(app: Sphinx) -> list[tuple[str, float | None, str]]:
    """(lesson, seconds, status) of every lesson of this build, from myst-nb's execution data.

    Status: ``ok`` or ``failed: <error>``; seconds: the run that produced the page's outputs
    (an earlier build's, when jupyter-cache had the executed notebook).
    """
    from myst_nb.sphinx_ import NbMetadataCollector

    out = []
    for doc in sorted(d for d in app.env.found_docs if is_lesson(app, d)):
        data = NbMetadataCollector.get_exec_data(app.env, doc) or {}
        if not data:
            status = "failed: not executed"
        elif data.get("succeeded"):
            status = "ok"
        else:
            status = f"failed: {data.get('error')}"
        out.append((doc, data.get("runtime"), status))
    return out


def _report_lessons(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    runs = lesson_runs(app)
    if not runs:
        return
    width = max(len(doc) for doc, _, _ in runs)
    lines = [f"{'lesson':<{width}}  seconds  status"]
    for doc, seconds, status in runs:
        sec = f"{seconds:7.1f}" if seconds is not None else "      -"
        lines.append(f"{doc:<{width}}  {sec}  {status}")
    logger.info("\n" + "\n".join(lines))
    failed = [doc for doc, _, status in runs if status.startswith("failed")]
    if failed:
        logger.error(
            f"{len(failed)} lesson(s) failed: {', '.join(failed)} (reports/ has the tracebacks)"
        )
        app.statuscode = 1


# ---------------------------------------------------------------- docstring endings


def split_shapes(lines: list[str]) -> tuple[list[str], list[str]]:
    """Take a numpydoc ``Shapes`` section out of a docstring.

    Parameters
    ----------
    lines : list of str
        The docstring's lines (autodoc's ``autodoc-process-docstring`` list).

    Returns
    -------
    (list of str, list of str)
        The lines without the section, and the section's body (empty when there is none).
        The section ends at the next section header (a line followed by dashes) or the end.
    """
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Shapes" and re.fullmatch(r"\s*-{6,}\s*", lines[i + 1]):
            end = i + 2
            while end < len(lines):
                nxt = lines[end + 1] if end + 1 < len(lines) else ""
                if lines[end].strip() and re.fullmatch(r"\s*-{3,}\s*", nxt):
                    break
                end += 1
            return lines[:i] + lines[end:], lines[i + 2 : end]
    return lines, []


_TRAILER = re.compile(r"^(Shapes:|Introduced in |See notebooks/|Used by )")
_HEADER = re.compile(r"\s*-{3,}\s*")


def split_trailers(lines: list[str]) -> tuple[list[str], list[str]]:
    """Take out the closing paragraphs numpydoc would read as parameters.

    Parameters
    ----------
    lines : list of str
        The docstring's lines (dedented, as autodoc passes them).

    Returns
    -------
    (list of str, list of str)
        The lines without them, and the paragraphs taken out (blank-line separated). A
        paragraph is taken out when it comes after the first section header, follows a blank
        line and starts like the house's closing lines (:data:`_TRAILER`).
    """
    headers = [
        i for i in range(len(lines) - 1) if _HEADER.fullmatch(lines[i + 1]) and lines[i].strip()
    ]
    first = headers[0] if headers else len(lines)
    kept, moved, i = [], [], 0
    while i < len(lines):
        if i > first and _TRAILER.match(lines[i]) and not lines[i - 1].strip():
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            moved += [*lines[i:j], ""]
            i = j
        else:
            kept.append(lines[i])
            i += 1
    return kept, moved


def _docstring_out(app, what, name, obj, options, lines) -> None:
    rest, shapes = split_shapes(lines)
    rest, trailers = split_trailers(rest)
    if shapes or trailers:
        lines[:] = rest
        app.env.wlearn_moved = getattr(app.env, "wlearn_moved", {})
        app.env.wlearn_moved[name] = (shapes, trailers)


def _docstring_back(app, what, name, obj, options, lines) -> None:
    shapes, trailers = getattr(app.env, "wlearn_moved", {}).pop(name, ([], []))
    if shapes:
        lines += ["", ".. rubric:: Shapes", "", *shapes, ""]
    if trailers:
        lines += ["", *trailers]


# ---------------------------------------------------------------- setup


def _builder_inited(app: Sphinx) -> None:
    _relocate_executed_notebooks(app)
    mathjax = app.config.mathjax_path
    if app.builder.format == "html" and "://" not in mathjax and not mathjax.startswith("/"):
        copy_mathjax(Path(app.outdir) / "_static" / Path(mathjax).parent)
    bibfile = Path(app.confdir) / app.config.wlearn_bibfile
    app.env.wlearn_bib_keys = bib_keys(bibfile)


def setup(app: Sphinx) -> dict:
    """Register the configuration values and event handlers (module docstring)."""
    app.add_config_value("wlearn_instructor", False, "env", bool)
    app.add_config_value("wlearn_size", "default", "env", str)
    app.add_config_value("wlearn_lessons_dir", "notebooks", "env", str)
    app.add_config_value("wlearn_reproduces_doc", "reproduces", "env", str)
    app.add_config_value("wlearn_bibliography_doc", "bibliography", "env", str)
    app.add_config_value("wlearn_bibfile", "references.bib", "env", str)
    app.connect("builder-inited", _builder_inited, priority=600)  # after myst-nb's
    app.connect("env-get-outdated", _always_reread_reproduces)
    app.connect("env-before-read-docs", _read_reproduces_last)
    app.connect("source-read", _source_read)
    app.set_html_assets_policy("always")  # MathJax on every page: lesson titles carry math
    app.connect("doctree-read", _solutions, priority=400)  # before codeautolink parses code
    app.connect("doctree-resolved", _resolved)
    app.connect("build-finished", _report_lessons)
    app.connect("autodoc-process-docstring", _docstring_out, priority=400)  # before numpydoc
    app.connect("autodoc-process-docstring", _docstring_back, priority=600)  # after it
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
