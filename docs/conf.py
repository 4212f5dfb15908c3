"""Sphinx configuration of the course site (Sphinx + myst-nb + sphinx-book-theme).

``make course`` runs ``sphinx-build -b html docs build``: myst-nb executes each lesson once
(through jupyter-cache, in ``build/.jupyter_cache/<size>/<hash of wlearn>``; a later build, the
instructor build included, reuses the executed notebook until the lesson's code or the wlearn
package changes), the theme draws the
sidebar, the in-page contents, search, the download and launch buttons.
``tools/sphinx_wlearn.py`` adds what no extension does (solutions, ``cite:`` links, the
"wlearn used in this lesson" box, the claims ledger and the "What reproduces" page).

Environment: ``WLEARN_SIZE`` (the run size, as in the lessons), ``WLEARN_LESSONS="02 03"`` (build
only these lessons: for development), ``WLEARN_REPOSITORY_URL`` / ``WLEARN_REPOSITORY_BRANCH``
(where Binder finds the repository and its environment.yml), ``WLEARN_JUPYTERHUB_URL`` (a
JupyterHub for the launch button). ``-t instructor`` shows the solutions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "tools"))

# The lessons execute in kernels that inherit this environment: figures as inline PNG (an
# MPLBACKEND=agg from the shell would draw nothing), explorers as static figures.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
os.environ["WLEARN_STATIC"] = "1"

import wlearn  # noqa: E402  (after the environment is set)

project = "wlearn: learning with Wasserstein losses"
author = "The wlearn course authors"
copyright = "2026, " + author
language = "en"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinxcontrib.bibtex",
    "sphinx_togglebutton",
    "sphinx_codeautolink",
    "sphinx_wlearn",
]

root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "lessons.yaml"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["wlearn.css"]

# ---------------------------------------------------------------- lessons and their map

LESSONS = yaml.safe_load((DOCS / "lessons.yaml").read_text(encoding="utf-8"))["lessons"]
_only = os.environ.get("WLEARN_LESSONS", "").split()
if _only:
    wanted = {n.zfill(2) for n in _only}
    exclude_patterns += [f"notebooks/{x['file']}" for x in LESSONS if x["file"][:2] not in wanted]
    LESSONS = [x for x in LESSONS if x["file"][:2] in wanted]


def _course_map(lessons: list[dict]) -> str:
    """The course map as a Markdown table (from docs/lessons.yaml)."""
    rows = [
        "| Lesson | Minutes (reading + running) | Before it | Reproduces |",
        "|---|---|---|---|",
    ]
    for x in lessons:
        num, stem = x["file"][:2], x["file"].removesuffix(".ipynb")
        total = x["reading"] + x["running"]
        before = ", ".join(x["prerequisites"]) or "-"
        rows.append(
            f"| {num} {{doc}}`{x['title']} <notebooks/{stem}>` | {total} "
            f"({x['reading']} + {x['running']}) | {before} | {x['reproduces']} |"
        )
    return "\n".join(rows)


SIZE = str(wlearn.SIZE)
INSTRUCTOR = tags.has("instructor")  # noqa: F821  (Sphinx provides `tags`)
wlearn_size = SIZE
wlearn_instructor = INSTRUCTOR
wlearn_lessons_dir = "notebooks"
wlearn_reproduces_doc = "reproduces"
wlearn_bibliography_doc = "bibliography"
wlearn_bibfile = "references.bib"

# ---------------------------------------------------------------- MyST and myst-nb

myst_enable_extensions = ["dollarmath", "amsmath", "substitution", "colon_fence"]
myst_heading_anchors = 3
# "cite:" links are lesson citations (tools/sphinx_wlearn.py points them at the bibliography)
myst_url_schemes = ["http", "https", "mailto", "ftp", "cite"]
myst_substitutions = {
    "course_map": _course_map(LESSONS),
    "size": SIZE,
    "build_kind": "instructor build: solutions shown" if INSTRUCTOR else "learner site",
}

nb_execution_mode = "cache"


def _package_key() -> str:
    """A hash of the wlearn package (code, registry, embedded data): jupyter-cache keys an
    executed notebook on the notebook's code alone, so a change of wlearn must start a new
    cache, or lessons would keep outputs of the old code."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "wlearn").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


_CACHES = ROOT / "build" / ".jupyter_cache" / SIZE
nb_execution_cache_path = str(_CACHES / _package_key())
for _old in _CACHES.glob("*"):  # caches of an earlier wlearn: never used again
    if _old.is_dir() and str(_old) != nb_execution_cache_path:
        shutil.rmtree(_old, ignore_errors=True)
nb_execution_timeout = 1800  # seconds per cell
nb_execution_raise_on_error = False  # a failed lesson is a warning (make: -W --keep-going)
nb_execution_show_tb = True
nb_merge_streams = True
# Progress bars are ipywidgets: drop their views (the site loads no widget JavaScript).
nb_ipywidgets_js = {}
# A claim's box carries its record under application/vnd.wlearn.claim+json beside text/html:
# the page shows the HTML (its anchor is the link target of the "What reproduces" page); the
# record is read from the executed notebooks, so myst-nb's "unknown mime type" note is noise.
suppress_warnings = ["mystnb.unknown_mime_type"]
# numpydoc warns once per class about the house's "Shapes" section, which tools/sphinx_wlearn.py
# moves after numpydoc's output (see its docstring): nothing for the reader of the log to do
warnings.filterwarnings("ignore", message="Unknown section Shapes", category=UserWarning)
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("html", "application/vnd.jupyter.widget-state+json", None),
]

# ---------------------------------------------------------------- API reference

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
codeautolink_concat_default = True  # a lesson's cells share their imports
codeautolink_autodoc_inject = True  # each API entry lists the lessons that use it
codeautolink_warn_on_missing_inventory = False
codeautolink_warn_on_failed_resolve = False

# ---------------------------------------------------------------- bibliography

bibtex_bibfiles = [wlearn_bibfile]
bibtex_default_style = "plain"
bibtex_cite_id = "{key}"
bibtex_reference_style = "author_year"

# ---------------------------------------------------------------- math, served from the site

# tools/sphinx_wlearn.py copies MathJax 3 from the django-static-mathjax package into
# _static/mathjax/ (SVG output: its fonts are JavaScript, no web font to fetch).
mathjax_path = "mathjax/tex-svg-full.js"

# ---------------------------------------------------------------- theme

html_theme = "sphinx_book_theme"
html_context = {"default_mode": "auto"}  # light or dark as the reader's system
html_title = "wlearn"
html_last_updated_fmt = ""
html_copy_source = True
html_sourcelink_suffix = ""
# Placeholders until the course is published: set them (environment or here) to the public
# repository (Binder builds it from environment.yml) and to your institution's JupyterHub.
REPOSITORY_URL = os.environ.get("WLEARN_REPOSITORY_URL", "https://github.com/OWNER/wlearn")
JUPYTERHUB_URL = os.environ.get("WLEARN_JUPYTERHUB_URL", "https://jupyterhub.example.org")
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": os.environ.get("WLEARN_REPOSITORY_BRANCH", "main"),
    "path_to_docs": "",  # launch buttons open notebooks/NN_x.ipynb (docs/notebooks is a link)
    "use_download_button": True,
    "use_fullscreen_button": True,
    "use_repository_button": False,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "jupyterhub_url": JUPYTERHUB_URL,
        "notebook_interface": "jupyterlab",
    },
    "navbar_persistent": [],  # the sidebar has the search field
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
