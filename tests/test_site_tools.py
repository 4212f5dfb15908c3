"""The course site's own tooling: ``tools/sphinx_wlearn.py`` (the Sphinx glue), ``docs/lessons.yaml``
(the course map's data) and ``docs/references.bib`` (every key the lessons cite).

The glue is tested on a small site of its own, built here with Sphinx + myst-nb from a fixture
notebook that states a claim (through a registry row added for the test), cites a paper, has a
solution cell and uses ``wlearn.ground.line``: the claim's box keeps its anchor and its
``text/html`` rendering, ``claims.json`` carries our number, the "What reproduces" page links to
the box, the solution is hidden (shown in the instructor build), the citation leads to the
bibliography entry, the "wlearn used in this lesson" box links into the API. A second build
with a failing lesson and an unknown citation key must fail and say why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import sphinx_wlearn as sw  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CITE = re.compile(r"\]\(cite:([^)\s]+)\)")


# ---------------------------------------------------------------- the course map's data


def _lessons() -> list[dict]:
    return yaml.safe_load((ROOT / "docs" / "lessons.yaml").read_text(encoding="utf-8"))["lessons"]


def test_lessons_yaml_lists_every_lesson_once_in_order():
    assert [x["file"] for x in _lessons()] == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("lesson", _lessons(), ids=lambda x: x["file"][:2])
def test_lessons_yaml_entry_is_complete(lesson):
    assert set(lesson) == {"file", "title", "reading", "running", "prerequisites", "reproduces"}
    assert lesson["title"].strip() and str(lesson["reproduces"]).strip()
    for key in ("reading", "running"):
        assert isinstance(lesson[key], int) and lesson[key] > 0, (key, lesson[key])
    earlier = {x["file"][:2] for x in _lessons() if x["file"] < lesson["file"]}
    bad = [p for p in lesson["prerequisites"] if p not in earlier]
    assert not bad, f"{lesson['file']}: prerequisites {bad} are not earlier lessons"


# ---------------------------------------------------------------- citations


def test_bib_has_the_three_papers_and_the_registry_keys():
    keys = sw.bib_keys(ROOT / "docs" / "references.bib")
    assert {"frogner2015", "hou2016", "liu2020"} <= keys
    import wlearn.claims as wc

    wanted = {p["bibkey"] for p in wc.papers().values() if p["bibkey"]}
    assert wanted <= keys, f"registry papers without a bib entry: {wanted - keys}"


def test_every_key_a_lesson_or_page_cites_is_in_the_bib():
    keys = sw.bib_keys(ROOT / "docs" / "references.bib")
    cited = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for key in CITE.findall(cell.source):
                    cited.setdefault(key, path.name)
    for page in (ROOT / "docs").glob("*.md"):
        for key in CITE.findall(page.read_text(encoding="utf-8")):
            cited.setdefault(key, page.name)
    missing = {k: where for k, where in cited.items() if k not in keys}
    assert not missing, f"cite: keys with no entry in docs/references.bib: {missing}"
    assert cited, "no page cites anything with cite:"


def test_bib_keys_reads_entry_keys(tmp_path):
    bib = tmp_path / "x.bib"
    bib.write_text("% c\n@article{a2020,\n title={x}}\n @Misc{ b-c ,\n}\n@string{s = 1}\n")
    assert sw.bib_keys(bib) == {"a2020", "b-c"}


# ---------------------------------------------------------------- small helpers


def test_split_shapes_moves_the_section_and_keeps_the_rest():
    lines = ["Summary.", "", "Shapes", "------", "input : (B, K).", "", "Notes", "-----", "x"]
    rest, body = sw.split_shapes(lines)
    assert rest == ["Summary.", "", "Notes", "-----", "x"]
    assert body == ["input : (B, K).", ""]
    assert sw.split_shapes(["no sections"]) == (["no sections"], [])
    rest, body = sw.split_shapes(["Shapes", "------", "a : (K,)"])
    assert (rest, body) == ([], ["a : (K,)"])


def test_split_trailers_moves_the_house_closing_paragraphs_out_of_sections():
    lines = [
        "Summary.",
        "",
        "Introduced in the summary stays.",
        "",
        "Parameters",
        "----------",
        "x : int",
        "    The x.",
        "",
        "Shapes: ``forward(a)`` with a (N, C)",
        "or (N, C, H).",
        "",
        "Introduced in notebooks/07_x.ipynb.",
    ]
    rest, moved = sw.split_trailers(lines)
    assert rest == [*lines[:9], ""]
    assert moved == [
        "Shapes: ``forward(a)`` with a (N, C)",
        "or (N, C, H).",
        "",
        "Introduced in notebooks/07_x.ipynb.",
        "",
    ]
    assert sw.split_trailers(["Returns", "-------", "float", "    A number."]) == (
        ["Returns", "-------", "float", "    A number."],
        [],
    )


def test_format_value():
    assert sw.format_value(0.123456) == "0.1235"
    assert sw.format_value([1, 2.5, "x"]) == "[1, 2.5, x]"
    assert sw.format_value(True) == "True"
    assert sw.format_value(3) == "3"


def test_reproduces_markdown_one_section_per_paper_with_linked_rows():
    papers = {
        "p1": {"short": "P1 2015", "citation": "A. Author. Title.", "bibkey": "p1"},
        "course": {"short": "This course", "citation": "The course.", "bibkey": ""},
    }
    rows = [
        dict(id="p1/a", paper="p1", item="Fig. 1", claim="x | y", lesson="02", status="reproduced",
             ours={"err": 0.5}, paper_value="0.4", notebook="02_x.ipynb", size="demo"),
        dict(id="p1/b", paper="p1", item="Eq. 2", claim="z", lesson="03", status="shown",
             ours={}, paper_value="", notebook=""),
    ]  # fmt: skip
    md = sw.reproduces_markdown(rows, papers, {"02": "notebooks/02_x.html"}, lambda i: "a-" + i)
    assert "## P1 2015" in md and "[A. Author. Title.](cite:p1)" in md
    assert "## This course" in md and "No claims registered yet." in md
    assert md.index("## P1 2015") < md.index("## This course")
    assert "| P1 2015 | 1 | 0 | 1 | 0 |" in md and "| This course | 0 | 0 | 0 | 0 |" in md
    assert '<a href="notebooks/02_x.html#a-p1/a">02</a>' in md
    assert "x \\| y" in md and "err 0.5" in md and "| 0.4 |" in md
    assert "reproduced (demo size)" in md
    assert "(not run in this build)" in md
    assert "1 reproduced, 1 shown." in md


# ---------------------------------------------------------------- a small site, built


FIXTURE_CLAIMS = '''
"""A registry row for the site test (added to wlearn.claims' registry in both processes)."""
import wlearn.claims as wc

ROW = wc.Row(id="frogner2015/site-fixture", paper="frogner2015", item="Fig. 3a",
             claim="the fixture's claim holds", lesson="01", status="reproduced",
             paper_value="0.1 (fixture)")


def install():
    papers, items, rows = wc._load()
    wc._load = lambda: (papers, items, {**rows, ROW.id: ROW})
'''

CONF = """
import os, sys
sys.path.insert(0, {tools!r})
sys.path.insert(0, os.path.dirname(__file__))
os.environ["WLEARN_STATIC"] = "1"
import fixture_claims
fixture_claims.install()
project = "fixture"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinxcontrib.bibtex", "sphinx_codeautolink",
              "sphinx_wlearn"]
exclude_patterns = ["_build"]
myst_url_schemes = ["http", "https", "cite"]
nb_execution_mode = "cache"
nb_execution_cache_path = {cache!r}
nb_execution_raise_on_error = False
suppress_warnings = ["mystnb.unknown_mime_type"]
bibtex_bibfiles = ["references.bib"]
bibtex_cite_id = "{{key}}"
codeautolink_concat_default = True
mathjax_path = "mathjax/tex-svg-full.js"
wlearn_instructor = tags.has("instructor")
"""

INDEX = """# Fixture

```{toctree}
:glob:

notebooks/*
reproduces
bibliography
api
```
"""


KEYS = ("frogner2015", "hou2016", "liu2020")


def _notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = cells
    return nb


def _site(tmp_path: Path, *, broken: bool = False) -> Path:
    src = tmp_path / "src"
    (src / "notebooks").mkdir(parents=True)
    (src / "conf.py").write_text(
        CONF.format(tools=str(ROOT / "tools"), cache=str(tmp_path / "cache")), encoding="utf-8"
    )
    (src / "fixture_claims.py").write_text(FIXTURE_CLAIMS, encoding="utf-8")
    (src / "notebooks" / "fixture_claims.py").write_text(FIXTURE_CLAIMS, encoding="utf-8")
    (src / "index.md").write_text(INDEX, encoding="utf-8")
    (src / "reproduces.md").write_text("# What reproduces\n\nGenerated below.\n")
    (src / "bibliography.md").write_text("# Bibliography\n\n```{bibliography}\n:all:\n```\n")
    (src / "api.md").write_text(
        "# API\n\n```{eval-rst}\n.. automodule:: wlearn.ground\n   :members: line\n```\n"
    )
    (src / "references.bib").write_text(
        "".join(f"@misc{{{k}, author={{A, B.}}, title={{T}}, year={{2015}}}}\n" for k in KEYS)
    )
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    solution = code("SOLUTION_MARKER = 42")
    solution.metadata["tags"] = ["solution"]
    lesson = _notebook(
        [
            md(
                "# 01 · Fixture\n\nAs [Frogner et al. 2015](cite:frogner2015) show "
                "(symbols: [notation](../docs/bibliography.md))."
            ),
            code(
                "import fixture_claims\nfixture_claims.install()\n"
                "import wlearn.claims as wc\nimport wlearn.ground\n"
                "M = wlearn.ground.line(3)\n"
                'wc.claim("frogner2015/site-fixture", holds=True, ours={"rel. error": 0.0123})'
            ),
            md("## Exercise"),
            solution,
        ]
    )
    nbformat.write(lesson, src / "notebooks" / "01_fixture.ipynb")
    if broken:
        bad = _notebook([md("# 02 · Broken\n\nSee [Nobody 1999](cite:nobody1999)."), code("1 / 0")])
        nbformat.write(bad, src / "notebooks" / "02_broken.ipynb")
    return src


def _build(src: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WLEARN_SIZE"}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", str(src), str(out), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    src = _site(tmp)
    done = _build(src, tmp / "out")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return src, tmp / "out", done


def test_claim_box_keeps_its_anchor_and_html(fixture_site):
    _, out, done = fixture_site
    assert ": WARNING:" not in done.stderr, done.stderr[-3000:]
    page = (out / "notebooks" / "01_fixture.html").read_text(encoding="utf-8")
    assert 'id="claim-frogner2015-site-fixture"' in page
    assert 'class="wlearn-claim"' in page and "reproduced here" in page
    assert "vnd.wlearn.claim" not in page and '"paper_value"' not in page


def test_ledger_is_written_from_the_executed_notebook(fixture_site):
    _, out, _ = fixture_site
    rows = {r["id"]: r for r in json.loads((out / "claims.json").read_text(encoding="utf-8"))}
    row = rows["frogner2015/site-fixture"]
    assert row["ours"] == {"rel. error": 0.0123}
    assert row["notebook"] == "01_fixture.ipynb" and row["holds"] is True
    assert (out / ".doctrees" / "jupyter_execute" / "notebooks" / "01_fixture.ipynb").is_file()
    assert not (out.parent / "jupyter_execute").exists()


def test_reproduces_page_links_each_claim_to_its_box(fixture_site):
    _, out, _ = fixture_site
    page = (out / "reproduces.html").read_text(encoding="utf-8")
    assert 'href="notebooks/01_fixture.html#claim-frogner2015-site-fixture"' in page
    assert "rel. error 0.0123" in page and "0.1 (fixture)" in page
    assert "Frogner et al. 2015" in page


def test_solution_is_hidden_on_the_learner_site(fixture_site):
    _, out, _ = fixture_site
    page = (out / "notebooks" / "01_fixture.html").read_text(encoding="utf-8")
    assert "SOLUTION_MARKER" not in page
    assert sw.SOLUTION_NOTE in page and "wlearn-solution-hidden" in page


def test_citation_links_to_the_bibliography_entry(fixture_site):
    _, out, _ = fixture_site
    page = (out / "notebooks" / "01_fixture.html").read_text(encoding="utf-8")
    assert re.search(r'href="\.\./bibliography\.html#frogner2015"[^>]*>Frogner et al\. 2015<', page)
    assert 'id="frogner2015"' in (out / "bibliography.html").read_text(encoding="utf-8")


def test_a_lesson_link_to_docs_leads_to_the_page(fixture_site):
    _, out, _ = fixture_site
    page = (out / "notebooks" / "01_fixture.html").read_text(encoding="utf-8")
    assert re.search(r'href="\.\./bibliography\.html"[^>]*>.{0,80}notation', page)


def test_uses_box_links_the_wlearn_names_into_the_api(fixture_site):
    _, out, _ = fixture_site
    page = (out / "notebooks" / "01_fixture.html").read_text(encoding="utf-8")
    box = page[page.index("wlearn used in this lesson") :]
    assert 'href="../api.html#wlearn.ground.line"' in box[:3000]


def test_mathjax_is_copied_into_the_site(fixture_site):
    _, out, _ = fixture_site
    assert (out / "_static" / "mathjax" / sw.MATHJAX_FILE).is_file()
    assert (out / "_static" / "mathjax" / "output" / "svg").is_dir()


def test_instructor_build_shows_and_marks_the_solution(fixture_site, tmp_path):
    src, _, _ = fixture_site
    done = _build(src, tmp_path / "instructor", "-t", "instructor")  # reuses the executed cache
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Using cached notebook" in done.stdout and "Executing notebook" not in done.stdout
    page = (tmp_path / "instructor" / "notebooks" / "01_fixture.html").read_text(encoding="utf-8")
    assert "SOLUTION_MARKER" in page and "wlearn-solution" in page
    assert sw.SOLUTION_NOTE not in page


def test_a_failed_lesson_and_an_unknown_key_fail_the_build(tmp_path):
    src = _site(tmp_path, broken=True)
    done = _build(src, tmp_path / "out")
    log = done.stdout + done.stderr
    assert done.returncode == 1, log[-3000:]
    assert re.search(r"notebooks/02_broken +[\d.]+ +failed: CellExecutionError", log), log[-3000:]
    assert "cite:nobody1999: no entry 'nobody1999'" in log
    assert (tmp_path / "out" / "notebooks" / "01_fixture.html").is_file()  # built all the same
