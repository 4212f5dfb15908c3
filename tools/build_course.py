"""Build the course site: execute every lesson, write HTML pages, an API reference and a map.

Usage::

    python tools/build_course.py [--out build] [--only NN ...] [--timeout SECONDS] [--src DIR]
                                 [--instructor] [--executed DIR] [--no-api]

For each ``notebooks/NN_*.ipynb`` (in order) this executes the notebook with nbclient
(kernel ``python3``, matplotlib's inline backend, ``WLEARN_STATIC=1`` so that interactive explorers
draw static figures, working directory ``notebooks/``, a time limit for the whole notebook),
then writes the site, every link relative so that it works from ``file://`` and over http:

- ``<out>/index.html``: the course map (title, what it reproduces, seconds, status, links),
- ``<out>/NN_x.html``: the executed lesson, figures embedded, with a navigation bar (course
  map, previous, next, API reference) and the list of ``wlearn`` names it uses, each linked
  to its entry in the API reference,
- ``<out>/notebooks/NN_x.ipynb``: the executed notebook (with outputs, even on failure; reused
  by ``--executed`` in the instructor build and the slides),
- ``<out>/download/NN_x.ipynb``: what the pages link to for download: the executed notebook as
  the page shows it (on the learner site, without the solution cells),
- ``<out>/api/``: the ``wlearn`` API reference, generated from the docstrings by pdoc
  (numpy docstring format),
- ``<out>/_static/mathjax/``: MathJax 3 (SVG output) from the ``django-static-mathjax``
  package, so that formulas render offline, from ``file://`` too (the MathJax CDN is used
  when that package is missing).

Cells tagged ``solution`` are replaced on the learner site by the note "solution hidden: see
the instructor build"; ``--instructor`` (``make course-instructor``, ``--out build/instructor``)
shows them, marked. ``--executed DIR`` reuses the executed notebooks of an earlier build from
``DIR`` when they are newer than the lesson, ran without error and at the same run size
(``make course-instructor`` reuses ``build/notebooks``); the others are executed.

Prints a table (lesson, seconds, status). The run size follows ``WLEARN_SIZE`` /
``WLEARN_FULL`` as in the notebooks themselves. Every lesson is built even if one fails; the
exit status is 1 if any lesson failed or timed out. Called by ``make course``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import html
import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote

import jinja2
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

import wlearn

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
REPRODUCES = re.compile(
    r"^\s*\**\s*Reproduces\s*(\([^)\n]*\))?\s*:?\s*\**\s*:?\s*(.+)$", re.IGNORECASE | re.MULTILINE
)
SOLUTION_NOTE = "*solution hidden: see the instructor build*"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX_FILE = "tex-svg-full.js"
MATHJAX_CDN = f"https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/{MATHJAX_FILE}"
# Environment of the executed notebooks: figures as inline PNG outputs (with MPLBACKEND=agg,
# as under nbval, plt.show() would draw nothing), static explorers (wlearn.explore).
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "WLEARN_STATIC": "1"}


# ---------------------------------------------------------------- lessons and execution


def lessons(src: Path = NOTEBOOKS, only: list[str] | None = None) -> list[Path]:
    """The lesson notebooks ``NN_snake_case.ipynb`` in ``src``, in order; only numbers ``only``."""
    found = sorted(p for p in Path(src).glob("*.ipynb") if NAME.match(p.name))
    if only:
        wanted = {n.zfill(2) for n in only}
        found = [p for p in found if p.name[:2] in wanted]
    return found


def describe(nb) -> tuple[str, str]:
    """(title, reproduces): the first markdown heading, and the text after a ``Reproduces:``
    line in the markdown cells ("-" when the notebook has none)."""
    title, reproduces = "", "-"
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        if not title:
            heading = re.search(r"^#+\s+(.+)$", cell.source, re.MULTILINE)
            title = heading.group(1).strip() if heading else ""
        m = REPRODUCES.search(cell.source)
        if m and reproduces == "-":
            reproduces = m.group(2).strip().strip("*").strip()
            if m.group(1):  # "Reproduces (in spirit): X" -> "X (in spirit)"
                reproduces += f" {m.group(1)}"
        if title and reproduces != "-":
            break
    return title or "(untitled)", reproduces


def run_size() -> str:
    """The run size the lessons execute at (``wlearn.SIZE``: demo, default or full)."""
    return str(getattr(wlearn, "SIZE", "full" if wlearn.FULL else "default"))


def execute(path: Path, timeout: float) -> tuple[object, float, str]:
    """Execute one notebook. Returns (executed notebook, seconds, status).

    The kernel inherits this process's environment plus :data:`KERNEL_ENV`. The seconds,
    status and run size are also stored in the notebook's metadata (``wlearn_build``), which
    :func:`reusable` reads.
    """
    os.environ.update(KERNEL_ENV)  # inherited by the kernel
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + timeout
    # Each cell may use what is left of the notebook's time budget.
    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
    )
    start = time.monotonic()
    try:
        client.execute()
        status = "ok"
    except CellTimeoutError:
        status = f"timeout (> {timeout:.0f} s)"
    except (CellExecutionError, DeadKernelError) as err:
        last = ANSI.sub("", str(err)).strip().splitlines()
        status = "failed: " + (last[-1][:120] if last else type(err).__name__)
    seconds = time.monotonic() - start
    nb.metadata["wlearn_build"] = {
        "seconds": round(seconds, 1),
        "status": status,
        "size": run_size(),
    }
    return nb, seconds, status


def reusable(executed: Path, source: Path) -> bool:
    """Whether ``executed`` (a notebook written by :func:`execute`) can stand for ``source``:
    it exists, is at least as new as ``source``, ran without error and at the current
    :func:`run_size`."""
    if not executed.is_file() or executed.stat().st_mtime < source.stat().st_mtime:
        return False
    try:
        info = nbformat.read(executed, as_version=4).metadata.get("wlearn_build", {})
    except Exception:  # unreadable: execute again
        return False
    return info.get("status") == "ok" and info.get("size") == run_size()


def executed_notebook(
    path: Path, timeout: float, executed_dir: Path | None = None
) -> tuple[object, float, str, bool]:
    """(notebook, seconds, status, reused): from ``executed_dir`` when :func:`reusable`,
    else executed now."""
    if executed_dir is not None and reusable(Path(executed_dir) / path.name, path):
        nb = nbformat.read(Path(executed_dir) / path.name, as_version=4)
        info = nb.metadata["wlearn_build"]
        return nb, float(info.get("seconds", 0.0)), info["status"], True
    return (*execute(path, timeout), False)


# ---------------------------------------------------------------- learner / instructor


def is_solution(cell) -> bool:
    """Whether the cell is tagged ``solution``."""
    return "solution" in cell.get("metadata", {}).get("tags", [])


def for_site(nb, instructor: bool = False):
    """A copy of an executed notebook as the site shows it.

    Learner site (``instructor=False``): every cell tagged ``solution`` becomes a one-line
    markdown note (:data:`SOLUTION_NOTE`); instructor site: solution cells stay (the page
    marks them). Both: widget views are replaced by their static representations (the site
    loads no widget JavaScript) and the stored widget state is dropped. Cells tagged
    ``exercise`` are kept as they are.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        if is_solution(cell) and not instructor:
            note = nbformat.v4.new_markdown_cell(SOLUTION_NOTE)
            note.id = cell.get("id", note.id)
            note.metadata["tags"] = ["solution-hidden"]
            cells.append(note)
            continue
        if cell.cell_type == "code":
            kept = []
            for out in cell.outputs:
                data = out.get("data", {})
                if WIDGET_VIEW in data:
                    del data[WIDGET_VIEW]
                    if not data:  # a widget with no static form: nothing to show
                        continue
                kept.append(out)
            cell.outputs = kept
        cells.append(cell)
    nb.cells = cells
    return nb


# ---------------------------------------------------------------- wlearn names and API links


def _code_of(nb) -> list[str]:
    """Code cells as Python text (IPython magics and shell lines blanked)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            out.append("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines))
    return out


def _dotted(node) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def wlearn_names(nb) -> list[str]:
    """The dotted ``wlearn`` names a notebook imports, and the module attributes it uses.

    ``from wlearn.losses import SinkhornLoss`` gives ``wlearn.losses.SinkhornLoss``;
    ``import wlearn.ot as wot`` then ``wot.sinkhorn(...)`` gives ``wlearn.ot`` and
    ``wlearn.ot.sinkhorn``; ``import wlearn`` then ``wlearn.seed_everything(0)`` gives
    ``wlearn`` and ``wlearn.seed_everything``. Sorted, without duplicates; cells that do not
    parse are skipped.
    """
    aliases: dict[str, str] = {}  # local name -> dotted wlearn name
    names: set[str] = set()
    trees = []
    for src in _code_of(nb):
        try:
            trees.append(ast.parse(src))
        except SyntaxError:
            continue
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "wlearn" or a.name.startswith("wlearn."):
                        names.add(a.name)
                        if a.asname:
                            aliases[a.asname] = a.name
                        else:
                            aliases["wlearn"] = "wlearn"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "wlearn" or node.module.startswith("wlearn."):
                    for a in node.names:
                        if a.name == "*":
                            names.add(node.module)
                            continue
                        full = f"{node.module}.{a.name}"
                        names.add(full)
                        aliases[a.asname or a.name] = full
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                dotted = _dotted(node)
                if not dotted:
                    continue
                head, _, rest = dotted.partition(".")
                if head in aliases and rest:
                    names.add(f"{aliases[head]}.{rest}")
    return sorted(n for n in names if not _is_member_of_object(n))


def _is_member_of_object(name: str) -> bool:
    """Whether ``name`` reaches through a non-module object (``wlearn.data.DATA_ROOT.exists``,
    ``wlearn.losses.SinkhornLoss.forward``): such chains are not API entries of their own.
    Names that cannot be resolved are kept."""
    parts = name.split(".")
    obj = None
    for i, part in enumerate(parts):
        if obj is None or isinstance(obj, ModuleType):
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
                continue
            except ImportError:
                pass
        if obj is None or not hasattr(obj, part):
            return False
        if not isinstance(obj, ModuleType):
            return True
        obj = getattr(obj, part)
    return False


def public_modules(package: str = "wlearn") -> list[str]:
    """The importable modules of ``package`` whose names have no part starting with ``_``."""
    pkg = importlib.import_module(package)
    mods = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            mods.append(info.name)
    return sorted(mods)


PDOC_MODULE_TEMPLATE = """{% extends "default/module.html.jinja2" %}
{% block nav_title %}
<p><a class="pdoc-button" href="{{ "../" * (module.modulename.count(".") + 1) }}index.html"
   >&larr; course map</a></p>
{{ super() }}
{% endblock %}
"""


PDOC_MATH_TEMPLATE = """<script>
window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]]}, svg: {fontCache: "global"}};
</script>
{% if module is defined %}
<script id="MathJax-script" defer
  src="{{ "../" * (module.modulename.count(".") + 1) if "://" not in "URL" else "" }}URL"></script>
{% endif %}
<style>mjx-container {overflow-x: auto; overflow-y: hidden;}</style>
"""


def build_api(api_dir: Path, package: str = "wlearn", mathjax: str = "") -> int:
    """Write the API reference of ``package`` into ``api_dir`` with pdoc (numpy docstrings).

    Each page links back to the course map one level above ``api_dir``. ``mathjax``: the
    MathJax URL relative to the site root (or absolute), as :func:`mathjax_url` returns;
    empty for no math typesetting. Returns pdoc's exit status.
    """
    if api_dir.exists():
        shutil.rmtree(api_dir)
    with tempfile.TemporaryDirectory() as templates:
        Path(templates, "module.html.jinja2").write_text(PDOC_MODULE_TEMPLATE, encoding="utf-8")
        Path(templates, "math.html.jinja2").write_text(
            PDOC_MATH_TEMPLATE.replace("URL", mathjax), encoding="utf-8"
        )
        math = "--math" if mathjax else "--no-math"
        cmd = [sys.executable, "-m", "pdoc", "-d", "numpy", math, "-t", templates]
        cmd += ["-o", str(api_dir), *public_modules(package)]
        env = {**os.environ, "MPLBACKEND": "agg", "WLEARN_STATIC": "1"}
        status = subprocess.run(cmd, env=env).returncode
    if status == 0:
        print(f"   {unlink_dangling(api_dir)} links to private (undocumented) names unlinked")
    return status


_LOCAL_ANCHOR = re.compile(r'<a href="([^"#:?]*)#([^"]+)">(.*?)</a>', re.DOTALL)


def unlink_dangling(api_dir: Path) -> int:
    """Turn links to anchors that do not exist into plain text, in every page of ``api_dir``.

    pdoc links base classes and inherited members to their entries even when they are private
    (``_CostMixin``) and so not rendered. Returns the number of links removed.
    """
    ids: dict[Path, set[str]] = {}

    def ids_of(page: Path) -> set[str]:
        if page not in ids:
            ids[page] = set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))
        return ids[page]

    removed = 0
    for page in sorted(Path(api_dir).rglob("*.html")):
        text = page.read_text(encoding="utf-8")

        def fix(m, page=page):
            nonlocal removed
            target = (page.parent / m.group(1)).resolve() if m.group(1) else page.resolve()
            if not target.is_file():
                return m.group(0)
            frag = m.group(2)
            if frag in ids_of(target) or unquote(frag) in ids_of(target):
                return m.group(0)
            removed += 1
            return f'<span class="wl-unlinked">{m.group(3)}</span>'

        new = _LOCAL_ANCHOR.sub(fix, text)
        if new != text:
            page.write_text(new, encoding="utf-8")
    return removed


def api_anchors(api_dir: Path) -> dict[str, set[str]]:
    """``{module name: ids on its page}`` for the pages pdoc wrote into ``api_dir``."""
    index = {}
    for page in Path(api_dir).rglob("*.html"):
        rel = page.relative_to(api_dir).with_suffix("")
        if rel.name in ("index", "search"):
            continue
        ids = set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))
        index[".".join(rel.parts)] = ids
    return index


def api_href(name: str, anchors: dict[str, set[str]], api: str = "api") -> str | None:
    """The relative link to ``name``'s entry in the API reference, or None.

    The longest module prefix of ``name`` that has a page gives the page; the rest is the
    anchor when that page has it. Otherwise the object's defining module (``__module__``) is
    tried, then the module page without anchor.
    """
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        if module in anchors:
            page = f"{api}/{module.replace('.', '/')}.html"
            rest = ".".join(parts[i:])
            if not rest or rest in anchors[module]:
                return page + (f"#{rest}" if rest else "")
            try:  # re-exported without being documented here: look where it is defined
                obj = importlib.import_module(module)
                for p in parts[i:]:
                    obj = getattr(obj, p)
                home = getattr(obj, "__module__", None)
                qual = getattr(obj, "__qualname__", None)
                if home in anchors and qual in anchors[home]:
                    return f"{api}/{home.replace('.', '/')}.html#{qual}"
            except (ImportError, AttributeError):
                pass
            return page
    return None


# ---------------------------------------------------------------- pages


SITE_CSS = """
nav.wl-nav{font-family:sans-serif;font-size:15px;background:#f4f6f8;border-bottom:1px solid #d0d7de;
  padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:baseline}
nav.wl-nav.wl-bottom{border-top:1px solid #d0d7de;border-bottom:none;margin-top:2em}
nav.wl-nav a{text-decoration:none;color:#0550ae}
nav.wl-nav .wl-here{font-weight:bold}
aside.wl-uses{font-family:sans-serif;font-size:14px;margin:.8em 1em;padding:.5em .8em;
  border-left:4px solid #0550ae;background:#f6f8fa}
aside.wl-uses code{font-size:13px}
.celltag_solution-hidden{color:#666;font-style:italic}
.wl-instructor .celltag_solution{border-left:5px solid #bf8700;background:#fff8e5}
.wl-instructor .celltag_solution::before{content:"Solution (instructor build)";font:bold 13px sans-serif;
  color:#7d4e00;padding:.2em .6em;display:block}
"""

LESSON_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}<style type="text/css">{{ resources.wl_css }}</style>{% endblock extra_css %}
{%- block html_head_js_mathjax -%}
{% raw %}<script>
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
        processEscapes: true, processEnvironments: true, tags: "ams"},
  svg: {fontCache: "global"}
};
</script>{% endraw %}
<script src="{{ resources.mathjax_url }}" defer></script>
{%- endblock html_head_js_mathjax -%}
{%- block body_header -%}
{{ super() }}
{{ resources.wl_top }}
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.wl_bottom }}
{{ super() }}
{% endblock body_footer %}
"""


def exporter() -> HTMLExporter:
    """nbconvert's lab HTML exporter without require.js and widget scripts, markdown images
    embedded, plus the navigation bars given in ``resources``."""
    return HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"wlearn_lesson.html.j2": LESSON_TEMPLATE})],
        template_file="wlearn_lesson.html.j2",
        embed_images=True,
    )


def nav_bar(rows: list[dict], i: int, bottom: bool = False) -> str:
    """The navigation bar of lesson ``rows[i]``: course map, previous, next, API reference,
    executed notebook."""
    e = html.escape
    links = ['<a href="index.html">&#8962; Course map</a>']
    if i > 0:
        p = rows[i - 1]
        links.append(f'<a href="{e(p["stem"])}.html" rel="prev">&larr; {e(p["title"])}</a>')
    links.append(f'<span class="wl-here">{e(rows[i]["title"])}</span>')
    if i + 1 < len(rows):
        n = rows[i + 1]
        links.append(f'<a href="{e(n["stem"])}.html" rel="next">{e(n["title"])} &rarr;</a>')
    links.append('<a href="api/wlearn.html">API reference</a>')
    links.append(f'<a href="download/{e(rows[i]["stem"])}.ipynb">notebook (.ipynb)</a>')
    cls = "wl-nav wl-bottom" if bottom else "wl-nav"
    return f'<nav class="{cls}">' + " ".join(links) + "</nav>"


def uses_list(names: list[str], anchors: dict[str, set[str]]) -> str:
    """The "wlearn used in this lesson" box: each name linked to the API reference."""
    items = []
    for name in names:
        href = api_href(name, anchors)
        label = f"<code>{html.escape(name)}</code>"
        items.append(f'<a href="{html.escape(href)}">{label}</a>' if href else label)
    if not items:
        return ""
    return (
        '<aside class="wl-uses"><b>wlearn used in this lesson:</b> ' + ", ".join(items) + "</aside>"
    )


def mathjax_url(out: Path) -> str:
    """Copy MathJax 3 (``es5/tex-svg-full.js`` and what it loads on demand, from the PyPI
    package ``django-static-mathjax``, a plain copy of MathJax's files) into
    ``out/_static/mathjax`` and return its relative URL; the CDN URL when the package is
    missing. SVG output: the fonts are JavaScript data, not web fonts, which browsers refuse
    to load from ``file://``."""
    spec = importlib.util.find_spec("mathjax")
    src = Path(spec.origin).parent / "static" / "mathjax" / "es5" if spec and spec.origin else None
    if src is None or not (src / MATHJAX_FILE).is_file():
        print(
            "django-static-mathjax missing: formulas need the MathJax CDN (no offline math)",
            file=sys.stderr,
        )
        return MATHJAX_CDN
    dst = out / "_static" / "mathjax"
    if not (dst / MATHJAX_FILE).is_file():
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src.parent / "LICENSE", dst / "LICENSE")
        for sub in ("a11y", "ui", "input/tex/extensions", "output/svg"):
            shutil.copytree(src / sub, dst / sub, dirs_exist_ok=True)
        shutil.copy2(src / MATHJAX_FILE, dst / MATHJAX_FILE)  # last: marks a complete copy
    return f"_static/mathjax/{MATHJAX_FILE}"


def write_lesson(out: Path, nb, rows: list[dict], i: int, anchors, instructor: bool, mathjax: str):
    """Write ``out/<stem>.html`` for lesson ``rows[i]`` from its executed notebook, and
    ``out/download/<stem>.ipynb``, the notebook as the page shows it (learner site: without
    the solution cells; ``out/notebooks/`` keeps the full executed copies for reuse)."""
    page_nb = for_site(nb, instructor)
    (out / "download").mkdir(parents=True, exist_ok=True)
    nbformat.write(page_nb, out / "download" / f"{rows[i]['stem']}.ipynb")
    resources = {
        "wl_css": SITE_CSS,
        "wl_top": nav_bar(rows, i) + uses_list(rows[i]["names"], anchors),
        "wl_bottom": nav_bar(rows, i, bottom=True),
        "metadata": {"name": rows[i]["title"]},
    }
    exp = exporter()
    exp.mathjax_url = mathjax
    body, _ = exp.from_notebook_node(page_nb, resources=resources)
    if instructor:
        body = body.replace(
            '<body class="jp-Notebook"', '<body class="jp-Notebook wl-instructor"', 1
        )
    (out / f"{rows[i]['stem']}.html").write_text(body, encoding="utf-8")


def write_index(out: Path, rows: list[dict], instructor: bool = False, mathjax: str = "") -> None:
    """The course map: one row per lesson, linked to its HTML and executed notebook;
    ``mathjax`` (a URL as :func:`mathjax_url` returns, or empty) typesets formulas in titles."""
    body = []
    for r in rows:
        e = {k: html.escape(str(v)) for k, v in r.items()}
        body.append(
            f'<tr><td>{e["num"]}</td><td><a href="{e["stem"]}.html">{e["title"]}</a></td>'
            f"<td>{e['reproduces']}</td><td>{r['seconds']:.0f}</td>"
            f'<td class="{"ok" if r["status"] == "ok" else "bad"}">{e["status"]}</td>'
            f'<td><a href="download/{e["stem"]}.ipynb">ipynb</a></td></tr>'
        )
    kind = (
        "Instructor build: solutions shown."
        if instructor
        else "Solutions are hidden on this site (instructor build: <code>make course-instructor</code>)."
    )
    title = "wlearn: course map" + (" (instructor build)" if instructor else "")
    math = (
        '<script>window.MathJax = {tex: {inlineMath: [["$", "$"]]}, svg: {fontCache: "global"}};'
        f'</script>\n<script src="{html.escape(mathjax)}" defer></script>'
        if mathjax
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
.ok{{color:#060}}.bad{{color:#a00}}</style>
{math}</head><body>
<h1>wlearn: learning with Wasserstein losses</h1>
<p>Built {time.strftime("%Y-%m-%d %H:%M")}, run size: {html.escape(run_size())}. {kind}</p>
<p><a href="api/wlearn.html">API reference of the <code>wlearn</code> package</a>
(generated from its docstrings).</p>
<table><tr><th>#</th><th>Lesson</th><th>Reproduces</th><th>Seconds</th><th>Status</th>
<th>Notebook</th></tr>
{chr(10).join(body)}
</table></body></html>
"""
    (out / "index.html").write_text(page, encoding="utf-8")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=None, help="output folder (default: build, or build/instructor)"
    )
    parser.add_argument("--src", default=str(NOTEBOOKS), help="lesson folder (default: notebooks/)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="build only these lesson numbers")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds allowed per notebook (default: 900)"
    )
    parser.add_argument("--instructor", action="store_true", help="show the solution cells")
    parser.add_argument(
        "--executed", metavar="DIR", help="reuse up-to-date executed notebooks from DIR"
    )
    parser.add_argument("--no-api", action="store_true", help="skip the API reference (pdoc)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout: expected a positive number of seconds, got {args.timeout}")

    out = Path(args.out or ("build/instructor" if args.instructor else "build"))
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    paths = lessons(args.src, args.only)
    if not paths:
        print(f"no lesson notebooks found in {args.src} (only={args.only})", file=sys.stderr)
        return 1

    mathjax = mathjax_url(out)
    api_status = 0
    if not args.no_api:
        print("-- API reference (pdoc) ...", flush=True)
        api_status = build_api(out / "api", mathjax=mathjax)
        if api_status:
            print(f"   pdoc failed with exit status {api_status}", flush=True)
    anchors = api_anchors(out / "api") if (out / "api").is_dir() else {}

    rows, nbs = [], []
    for path in paths:
        print(f"-- {path.name} ...", flush=True)
        nb, seconds, status, reused = executed_notebook(
            path, args.timeout, Path(args.executed) if args.executed else None
        )
        nbformat.write(nb, out / "notebooks" / path.name)
        title, reproduces = describe(nb)
        rows.append(
            dict(
                num=path.name[:2],
                stem=path.stem,
                title=title,
                reproduces=reproduces,
                seconds=seconds,
                status=status,
                names=wlearn_names(nb),
            )
        )
        nbs.append(nb)
        print(f"   {seconds:6.1f} s  {status}{'  (reused)' if reused else ''}", flush=True)
    for i, nb in enumerate(nbs):
        write_lesson(out, nb, rows, i, anchors, args.instructor, mathjax)
    write_index(out, rows, args.instructor, mathjax)

    width = max(len(r["stem"]) for r in rows)
    print(f"\n{'lesson':<{width}}  {'seconds':>7}  status")
    for r in rows:
        print(f"{r['stem']:<{width}}  {r['seconds']:7.1f}  {r['status']}")
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} lessons ok; course map: {out / 'index.html'}")
    return 1 if failed or api_status else 0


if __name__ == "__main__":
    sys.exit(main())
