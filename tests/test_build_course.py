"""tools/build_course.py: lesson discovery, wlearn names and API links, learner/instructor
pages, reuse of executed notebooks, and one small end-to-end build (a real kernel)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_course as bc  # noqa: E402

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WIDGET = {"model_id": "abc", "version_major": 2, "version_minor": 0}


def _nb(*cells):
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _solution(src="answer = 42"):
    cell = new_code_cell(src)
    cell.metadata["tags"] = ["solution"]
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def _rows(n=3):
    return [
        dict(
            num=f"{i:02d}",
            stem=f"{i:02d}_l{i}",
            title=f"{i:02d} · L{i}",
            reproduces="-",
            seconds=1.0,
            status="ok",
            names=[],
        )
        for i in range(1, n + 1)
    ]


# ---------------------------------------------------------------- lessons, describe


def test_lessons_sorted_filtered_and_named(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "10_c.ipynb", "scratch.ipynb", "3_bad.ipynb"):
        nbformat.write(_nb(), tmp_path / name)
    assert [p.name for p in bc.lessons(tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in bc.lessons(tmp_path, ["2", "10"])] == ["02_b.ipynb", "10_c.ipynb"]


def test_describe_reads_title_and_reproduces():
    nb = _nb(new_markdown_cell("# 01 · Title\n\n**Reproduces:** Frogner Fig. 2"))
    assert bc.describe(nb) == ("01 · Title", "Frogner Fig. 2")
    assert bc.describe(_nb(new_code_cell("x = 1"))) == ("(untitled)", "-")
    nb = _nb(new_markdown_cell("# 07 · T\n\n**Reproduces (in spirit):** Hou et al. 2016"))
    assert bc.describe(nb) == ("07 · T", "Hou et al. 2016 (in spirit)")


# ---------------------------------------------------------------- wlearn names


def test_wlearn_names_imports_aliases_and_attributes():
    nb = _nb(
        new_code_cell(
            "%matplotlib inline\nimport wlearn\nimport wlearn.ot as wot\n"
            "from wlearn.losses import SinkhornLoss\nfrom wlearn import ground\n"
            "from wlearn.data import DATA_ROOT\n"
            "wlearn.seed_everything(0)\nr = wot.sinkhorn(a, b, M, reg=0.1)\n"
            "M = ground.line(3)\nDATA_ROOT.exists()\nSinkhornLoss.forward\nimport numpy as np\n"
        ),
        new_code_cell("this is not python ("),
        new_markdown_cell("import wlearn.plot"),
    )
    names = bc.wlearn_names(nb)
    assert names == [
        "wlearn",
        "wlearn.data.DATA_ROOT",
        "wlearn.ground",
        "wlearn.ground.line",
        "wlearn.losses.SinkhornLoss",
        "wlearn.ot",
        "wlearn.ot.sinkhorn",
        "wlearn.seed_everything",
    ], names  # no numpy, no markdown, no members of objects (DATA_ROOT.exists, .forward)


def test_wlearn_names_of_a_lesson_are_importable():
    nb = nbformat.read(ROOT / "notebooks" / "02_sinkhorn.ipynb", as_version=4)
    names = bc.wlearn_names(nb)
    assert "wlearn.losses.SinkhornLoss" in names and "wlearn.ot.sinkhorn" in names


# ---------------------------------------------------------------- API links


def test_api_href_prefers_the_page_that_has_the_anchor():
    anchors = {
        "wlearn": {"seed_everything"},
        "wlearn.ot": {"sinkhorn"},
        "wlearn.losses": set(),
        "wlearn.losses.sinkhorn": {"SinkhornLoss"},
    }
    assert bc.api_href("wlearn.seed_everything", anchors) == "api/wlearn.html#seed_everything"
    assert bc.api_href("wlearn.ot", anchors) == "api/wlearn/ot.html"
    assert bc.api_href("wlearn.ot.sinkhorn", anchors) == "api/wlearn/ot.html#sinkhorn"
    # re-exported but not documented on wlearn/losses.html: its defining module's entry
    assert (
        bc.api_href("wlearn.losses.SinkhornLoss", anchors)
        == "api/wlearn/losses/sinkhorn.html#SinkhornLoss"
    )
    assert bc.api_href("wlearn.ot.no_such_thing", anchors) == "api/wlearn/ot.html"
    assert bc.api_href("numpy.sum", anchors) is None


def test_unlink_dangling_keeps_good_links_and_removes_broken_ones(tmp_path):
    (tmp_path / "wlearn").mkdir()
    (tmp_path / "wlearn" / "b.html").write_text('<p id="there">b</p>')
    page = tmp_path / "wlearn" / "a.html"
    page.write_text(
        '<h2 id="top">a</h2><a href="#top">self</a> <a href="#_Private">_Private</a> '
        '<a href="b.html#there">b</a> <a href="b.html#gone">gone</a> '
        '<a href="https://x.org/#y">ext</a>'
    )
    assert bc.unlink_dangling(tmp_path) == 2
    text = page.read_text()
    assert '<a href="#top">' in text and '<a href="b.html#there">' in text
    assert '<a href="https://x.org/#y">' in text
    assert "#_Private" not in text and "#gone" not in text
    assert '<span class="wl-unlinked">_Private</span>' in text


def test_public_modules_lists_submodules_without_private_ones():
    mods = bc.public_modules()
    assert {"wlearn", "wlearn.ot", "wlearn.losses", "wlearn.losses.sinkhorn"} <= set(mods)
    assert not [m for m in mods if any(p.startswith("_") for p in m.split("."))]


# ---------------------------------------------------------------- learner / instructor


def test_for_site_hides_solutions_for_learners_and_keeps_them_for_instructors():
    exercise = new_markdown_cell("Try it")
    exercise.metadata["tags"] = ["exercise"]
    nb = _nb(new_markdown_cell("# T"), exercise, _solution("answer = 42"), new_code_cell("x = 1"))
    learner = bc.for_site(nb)
    assert len(learner.cells) == 4
    note = learner.cells[2]
    assert note.cell_type == "markdown" and note.source == bc.SOLUTION_NOTE
    assert note.id == nb.cells[2].id
    assert "answer = 42" not in str(learner.cells)
    assert learner.cells[1].metadata["tags"] == ["exercise"]  # exercises stay
    teacher = bc.for_site(nb, instructor=True)
    assert teacher.cells[2].source == "answer = 42"
    assert nb.cells[2].source == "answer = 42"  # the input is not modified


def test_for_site_replaces_widgets_by_their_static_form():
    cell = new_code_cell("bar")
    cell.outputs = [
        new_output("display_data", data={bc.WIDGET_VIEW: WIDGET, "text/plain": "100%|##|"}),
        new_output("display_data", data={bc.WIDGET_VIEW: WIDGET}),
        new_output("stream", name="stdout", text="hi\n"),
    ]
    nb = _nb(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    page = bc.for_site(nb)
    outs = page.cells[0].outputs
    assert len(outs) == 2 and outs[0]["data"] == {"text/plain": "100%|##|"}
    assert "widgets" not in page.metadata


# ---------------------------------------------------------------- reuse


def _executed(path, status="ok", size=None):
    nb = _nb(new_code_cell("x = 1"))
    nb.metadata["wlearn_build"] = {"seconds": 3.0, "status": status, "size": size or bc.run_size()}
    nbformat.write(nb, path)


def test_reusable_needs_a_newer_successful_run_at_the_same_size(tmp_path):
    src, done = tmp_path / "01_a.ipynb", tmp_path / "done.ipynb"
    nbformat.write(_nb(), src)
    assert not bc.reusable(done, src)  # missing
    _executed(done)
    os.utime(src, (1000, 1000))
    assert bc.reusable(done, src)
    os.utime(done, (500, 500))
    assert not bc.reusable(done, src)  # older than the lesson
    _executed(done, status="failed: boom")
    assert not bc.reusable(done, src)
    other = "full" if bc.run_size() != "full" else "demo"
    _executed(done, size=other)
    assert not bc.reusable(done, src)


# ---------------------------------------------------------------- pages


def test_nav_bar_links_map_neighbours_and_api_relatively():
    rows = _rows(3)
    first, mid, last = (bc.nav_bar(rows, i) for i in range(3))
    assert 'rel="prev"' not in first and 'href="02_l2.html" rel="next"' in first
    assert 'href="01_l1.html" rel="prev"' in mid and 'href="03_l3.html" rel="next"' in mid
    assert 'rel="next"' not in last
    for bar in (first, mid, last):
        assert 'href="index.html"' in bar and 'href="api/wlearn.html"' in bar
        assert not re.search(r'href="(/|[a-z]+://)', bar)


def _lesson_nb():
    fig = new_code_cell("plot()")
    fig.outputs = [new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
    return _nb(
        new_markdown_cell("# 01 · T\n\nThe cost $W(a, b)$."),
        new_code_cell("import wlearn.ot as wot\nwot.emd"),
        fig,
        _solution("answer = 42"),
    )


@pytest.mark.parametrize("instructor", [False, True])
def test_lesson_page_has_nav_uses_and_local_mathjax(tmp_path, instructor):
    nb, rows = _lesson_nb(), _rows(2)
    rows[0]["names"] = bc.wlearn_names(nb)
    anchors = {"wlearn": set(), "wlearn.ot": {"emd"}}
    bc.write_lesson(tmp_path, nb, rows, 0, anchors, instructor, "_static/mathjax/tex-svg-full.js")
    page = (tmp_path / "01_l1.html").read_text()
    assert page.count('<nav class="wl-nav') == 2
    assert "wlearn used in this lesson" in page and 'href="api/wlearn/ot.html#emd"' in page
    assert re.search(r'<script[^>]* src="_static/mathjax/tex-svg-full.js"', page)
    assert "require.min.js" not in page and "unpkg.com" not in page
    assert "data:image/png;base64," in page
    assert ("answer" in page) is instructor
    assert ("solution hidden: see the instructor build" in page) is not instructor
    assert ("wl-instructor" in page.split("<body", 1)[1][:80]) is instructor
    download = (tmp_path / "download" / "01_l1.ipynb").read_text()
    assert ("answer = 42" in download) is instructor


def test_index_links_lessons_notebooks_and_api(tmp_path):
    rows = _rows(2)
    bc.write_index(tmp_path, rows)
    page = (tmp_path / "index.html").read_text()
    for r in rows:
        assert f'href="{r["stem"]}.html"' in page and f'href="download/{r["stem"]}.ipynb"' in page
    assert 'href="api/wlearn.html"' in page and "course map" in page
    bc.write_index(tmp_path, rows, instructor=True)
    assert "instructor build" in (tmp_path / "index.html").read_text()
    assert "<script" not in page  # no MathJax unless given
    bc.write_index(tmp_path, rows, mathjax="_static/mathjax/tex-svg-full.js")
    assert 'src="_static/mathjax/tex-svg-full.js"' in (tmp_path / "index.html").read_text()


def test_mathjax_is_copied_for_offline_use(tmp_path):
    pytest.importorskip("mathjax", reason="django-static-mathjax not installed")
    url = bc.mathjax_url(tmp_path)
    assert url == f"_static/mathjax/{bc.MATHJAX_FILE}"
    assert (tmp_path / url).stat().st_size > 1_000_000


# ---------------------------------------------------------------- end to end


def test_main_rejects_bad_arguments(tmp_path, capsys):
    assert bc.main(["--src", str(tmp_path), "--out", str(tmp_path / "b"), "--no-api"]) == 1
    assert "no lesson notebooks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bc.main(["--timeout", "0"])


def test_small_build_executes_reuses_and_writes_the_site(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    src = tmp_path / "src"
    src.mkdir()
    nb = _nb(
        new_markdown_cell("# 01 · Tiny\n\n**Reproduces:** nothing"),
        new_code_cell(
            "import os\nimport matplotlib.pyplot as plt\n"
            "print('static', os.environ.get('WLEARN_STATIC'))\nplt.plot([0, 1])\nplt.show()"
        ),
        _solution("print('the answer')"),
    )
    nbformat.write(nb, src / "01_tiny.ipynb")
    out = tmp_path / "site"
    args = ["--src", str(src), "--out", str(out), "--no-api", "--timeout", "120"]
    assert bc.main(args) == 0
    page = (out / "01_tiny.html").read_text()
    assert "static 1" in page  # WLEARN_STATIC=1 reached the kernel
    assert "data:image/png;base64," in page  # the figure is an inline PNG
    assert "the answer" not in page and "solution hidden" in page
    done = nbformat.read(out / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert done.metadata["wlearn_build"]["status"] == "ok"
    assert "the answer" in str(done.cells)  # the full executed notebook, for reuse
    download = nbformat.read(out / "download" / "01_tiny.ipynb", as_version=4)
    assert "the answer" not in str(download.cells) and "solution hidden" in str(download.cells)
    assert "01 · Tiny" in (out / "index.html").read_text()
    capsys.readouterr()
    teacher = tmp_path / "teacher"
    args = ["--src", str(src), "--out", str(teacher), "--no-api", "--instructor"]
    assert bc.main([*args, "--executed", str(out / "notebooks")]) == 0
    assert "(reused)" in capsys.readouterr().out
    assert "the answer" in (teacher / "01_tiny.html").read_text()
    assert "the answer" in str(
        nbformat.read(teacher / "download" / "01_tiny.ipynb", as_version=4).cells
    )
