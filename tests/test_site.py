"""The built course site in a real browser: Playwright (PyPI) driving Debian's chromium.

The site in ``$WLEARN_SITE`` (``make test`` builds ``build/test-site`` at the demo size; ``make
site-test`` checks ``build/``) is served on 127.0.0.1 and visited page by page. Every visit
fails on a JavaScript error, a console error, a failed request or an HTTP error, on any request
that leaves the site (each one is blocked and recorded: the site must work on a closed
network), on a local link, ``src`` or ``#anchor`` that does not resolve, and on an image that
does not decode. Then:

- the course map loads, lists every lesson in order in its table and in the sidebar, and links
  the API reference, the "What reproduces" page and the bibliography;
- every lesson page shows at least one figure, its formulas typeset by the site's own MathJax,
  an in-page table of contents, the download button (its notebook), the Binder and JupyterHub
  launch buttons, the "wlearn used in this lesson" links into the API; on the learner site its
  solution cells are hidden (``WLEARN_SITE=build/instructor``: all shown);
- every page of the API reference loads;
- the search for "Sinkhorn" returns lesson 02; the bibliography lists the three papers and
  every ``cite:`` link leads to an entry; the "What reproduces" page loads and links each claim.

``WLEARN_SCREENSHOTS=DIR`` saves screenshots of the index, a lesson, the search results and the
"What reproduces" page there. Without ``WLEARN_SITE`` the site tests skip (``make unit`` needs
no built site); the self-tests of the checks (a tiny site with a broken link, a broken image, a
JavaScript error and an external request) run whenever chromium is installed. Without chromium
everything here skips, unless ``WLEARN_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which turns
the skip into a failure. No browser is ever downloaded: Playwright launches
``$WLEARN_CHROMIUM`` or the ``chromium`` on the PATH.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRE = os.environ.get("WLEARN_REQUIRE_BROWSER", "") == "1"
SITE = os.environ.get("WLEARN_SITE", "")
SHOTS = os.environ.get("WLEARN_SCREENSHOTS", "")
LESSON = re.compile(r"^\d\d_[a-z0-9_]+\.html$")
# A closed network: no background requests of the browser's own, no sandbox (root in CI).
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
PAPERS = ("frogner2015", "hou2016", "liu2020")


def chromium_path() -> str | None:
    """``$WLEARN_CHROMIUM``, else the first of chromium / chromium-browser on the PATH."""
    if os.environ.get("WLEARN_CHROMIUM"):
        return os.environ["WLEARN_CHROMIUM"]
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def need_chromium() -> str:
    """The chromium executable; skip the test without one, fail when it is required."""
    path = chromium_path()
    if path is None:
        msg = "chromium not found (apt-get install -y chromium, or set WLEARN_CHROMIUM)"
        if REQUIRE:
            pytest.fail(f"WLEARN_REQUIRE_BROWSER=1 but {msg}")
        pytest.skip(msg)
    return path


# ---------------------------------------------------------------- serving and visiting


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """A folder served on 127.0.0.1 (an ephemeral port) in a thread."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).resolve()
        handler = functools.partial(_QuietHandler, directory=str(self.folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, rel: str) -> str:
        return self.base + rel

    def file_of(self, url: str) -> Path | None:
        """The served file of a URL of this server (None for any other URL)."""
        if not url.startswith(self.base):
            return None
        return self.folder / unquote(urlsplit(url).path).lstrip("/")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# What a page reports once loaded (after MathJax has typeset): images, references, ids.
PAGE_SCRIPT = r"""async () => {
  const mj = window.MathJax && window.MathJax.startup;
  if (mj && mj.promise) {
    await Promise.race([mj.promise, new Promise((done) => setTimeout(done, 30000))]);
  }
  const refs = [];
  for (const el of document.querySelectorAll("a[href], link[href]")) refs.push(el.href);
  for (const el of document.querySelectorAll("img[src], script[src], iframe[src]")) refs.push(el.src);
  const q = (s) => document.querySelectorAll(s);
  return {
    title: document.title,
    url: location.href,
    imgs: Array.from(document.images).map((i) => ({src: i.currentSrc || i.src,
                                                    complete: i.complete, width: i.naturalWidth})),
    figures: q(".cell_output img").length,
    refs: refs,
    ids: Array.from(q("[id], a[name]")).map((e) => e.id || e.name),
    mathjax: !!mj,
    math_typeset: q("mjx-container").length,
    math_errors: q("mjx-merror, [data-mjx-error]").length,
    solutions: q(".wlearn-solution").length,
    hidden_solutions: q(".wlearn-solution-hidden").length,
    uses: Array.from(q(".wlearn-uses a")).map((a) => a.href),
    cites: Array.from(q("a.wlearn-cite")).map((a) => a.href),
    page_toc: q("#pst-page-toc-nav a").length,
    sidebar: Array.from(q(".bd-sidenav a")).map((a) => a.href),
    text: document.body ? document.body.innerText.slice(0, 200000) : "",
  };
}"""


class Visitor:
    """Visits pages of one served site in headless chromium and collects what goes wrong."""

    def __init__(self, browser, server: Server):
        self.browser, self.server = browser, server

    def visit(self, url: str, *, wait_for: str | None = None, shot: str | None = None) -> dict:
        """Load ``url``; return :data:`PAGE_SCRIPT`'s report plus ``problems`` (errors, failed or
        external requests) and ``external`` (the blocked requests that left the site)."""
        context = self.browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        external: list[str] = []
        local = (self.server.base, "data:", "blob:", "about:")

        def route(r):
            if r.request.url.startswith(local):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()

        def failed(req):
            if req.url.startswith(local) and "/favicon.ico" not in req.url:
                problems.append(f"request failed: {req.failure} {req.url}")

        def response(resp):
            if resp.status >= 400 and "/favicon.ico" not in resp.url:
                problems.append(f"HTTP {resp.status}: {resp.url}")

        def console(msg):
            if msg.type == "error" and "favicon.ico" not in msg.text:
                problems.append(f"console.error: {msg.text}")

        page.route("**/*", route)
        page.on("requestfailed", failed)
        page.on("response", response)
        page.on("console", console)
        page.on("pageerror", lambda err: problems.append(f"JavaScript error: {err}"))
        try:
            page.goto(url, wait_until="load")
            if wait_for:
                page.wait_for_selector(wait_for, timeout=30000)
            report = page.evaluate(PAGE_SCRIPT)
            if shot and SHOTS:
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(SHOTS) / shot))
        finally:
            context.close()
        report["problems"] = problems + [f"external request: {u}" for u in external]
        report["external"] = external
        return report

    def broken_refs(self, page: dict) -> list[str]:
        """Local references of a visited page that do not resolve: a missing file, or an
        ``#anchor`` the target page does not have. Links that leave the site (launch buttons,
        DOIs) are links, not requests: they are not followed."""
        bad = []
        here = self.server.file_of(page["url"])
        for ref in page["refs"]:
            target = self.server.file_of(ref)
            if target is None:
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                bad.append(f"{ref}: no such file")
                continue
            fragment = unquote(urlsplit(ref).fragment)
            if fragment and target.suffix == ".html":
                ids = set(page["ids"]) if target == here else _ids_in(target)
                if fragment not in ids:
                    bad.append(f"{ref}: no element with id {fragment!r}")
        return bad

    def check(self, url: str, **kwargs) -> dict:
        """:meth:`visit`, then fail on any problem, broken reference or undecoded image."""
        page = self.visit(url, **kwargs)
        bad = page["problems"] + self.broken_refs(page) + bad_images(page)
        assert not bad, f"{url}:\n  " + "\n  ".join(bad)
        return page


_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")


@functools.cache
def _ids_in(path: Path) -> frozenset[str]:
    return frozenset(_ID.findall(path.read_text(encoding="utf-8", errors="replace")))


def bad_images(page: dict) -> list[str]:
    return [
        f"{i['src'][:80]}: not decoded (naturalWidth {i['width']})"
        for i in page["imgs"]
        if not i["complete"] or i["width"] <= 0
    ]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser():
    executable = need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield b
        b.close()


def _site_dir() -> Path | None:
    if not SITE:
        return None
    site = Path(SITE)
    return (site if site.is_absolute() else ROOT / site).resolve()


@pytest.fixture(scope="module")
def site() -> Path:
    site = _site_dir()
    if site is None:
        pytest.skip("no built site to check: set WLEARN_SITE=build after `make course`")
    if not (site / "index.html").is_file():
        pytest.fail(f"WLEARN_SITE={SITE}: expected {site / 'index.html'}; run `make course` first")
    return site


@pytest.fixture(scope="module")
def visitor(browser, site):
    server = Server(site)
    yield Visitor(browser, server)
    server.close()


def _lesson_pages() -> list[Path]:
    site = _site_dir()
    return (
        sorted(p for p in (site / "notebooks").glob("*.html") if LESSON.match(p.name))
        if site
        else []
    )


def _api_pages() -> list[Path]:
    site = _site_dir()
    return sorted((site / "api").glob("*.html")) if site else []


def _executed(site: Path, stem: str) -> dict:
    path = site / ".doctrees" / "jupyter_execute" / "notebooks" / f"{stem}.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))


def _has_math(site: Path, stem: str) -> bool:
    nb = _executed(site, stem)
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return re.search(r"\$[^$\s][^$]*\$", text) is not None


def _solution_cells(site: Path, stem: str) -> int:
    nb = _executed(site, stem)
    return sum("solution" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])


# ---------------------------------------------------------------- self-tests of the checks


def test_browser_is_available_when_required():
    """With WLEARN_REQUIRE_BROWSER=1 (CI) a missing chromium is a failure, not a skip."""
    need_chromium()


@pytest.fixture()
def tiny(browser, tmp_path):
    """A two-page site with good and broken links, anchors and images, a JavaScript error and
    an image that asks a host outside the site."""
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
    )
    (tmp_path / "ok.png").write_bytes(png)
    (tmp_path / "b.html").write_text('<html><body><p id="there">b</p></body></html>')
    (tmp_path / "index.html").write_text(
        '<html><head><title>t</title></head><body><p id="top">a</p>'
        '<a href="b.html#there">good</a> <a href="b.html#nowhere">bad anchor</a> '
        '<a href="missing.html">bad link</a> <a href="#top">self</a> '
        '<a href="https://example.org/">a link out is fine</a>'
        '<img src="ok.png"> <img src="broken.png"></body></html>'
    )
    (tmp_path / "js.html").write_text(
        "<html><body><script>undefinedFunction();</script></body></html>"
    )
    (tmp_path / "out.html").write_text(
        '<html><body><img src="http://192.0.2.1/pixel.png"><script>'
        'fetch("https://cdn.example.org/x.js").catch(() => {});</script></body></html>'
    )
    server = Server(tmp_path)
    yield Visitor(browser, server)
    server.close()


def test_checks_catch_broken_links_anchors_and_images(tiny):
    page = tiny.visit(tiny.server.url("index.html"))
    bad = tiny.broken_refs(page)
    assert len(bad) == 3, bad  # the missing page, the missing anchor, the missing image
    assert any("missing.html" in b and "no such file" in b for b in bad)
    assert any("'nowhere'" in b for b in bad)
    assert any("broken.png" in b for b in bad)
    imgs = bad_images(page)
    assert len(imgs) == 1 and "broken.png" in imgs[0], imgs
    assert any("HTTP 404" in p and "broken.png" in p for p in page["problems"]), page["problems"]
    assert page["external"] == []


def test_checks_catch_javascript_errors(tiny):
    page = tiny.visit(tiny.server.url("js.html"))
    assert any("undefinedFunction" in p for p in page["problems"]), page["problems"]


def test_checks_block_and_report_requests_outside_the_site(tiny):
    page = tiny.visit(tiny.server.url("out.html"))
    assert "http://192.0.2.1/pixel.png" in page["external"], page
    assert "https://cdn.example.org/x.js" in page["external"], page
    assert any(p.startswith("external request:") for p in page["problems"])


# ---------------------------------------------------------------- the built site


def test_index_is_the_course_map_and_links_everything(visitor, site):
    page = visitor.check(visitor.server.url("index.html"), shot="index.png")
    assert "wlearn" in page["title"]
    lessons = _lesson_pages()
    assert lessons, f"no lesson pages notebooks/NN_x.html in {site}"
    linked = [visitor.server.file_of(r) for r in page["refs"]]
    for lesson in lessons:
        assert lesson in linked, f"{lesson.name} is not linked from the course map"
    for name in ("api.html", "reproduces.html", "bibliography.html", "notation.html"):
        assert site / name in linked, f"the course map does not link {name}"
    order = [visitor.server.file_of(r) for r in page["sidebar"]]
    in_sidebar = [p for p in order if p in lessons]
    assert in_sidebar == lessons, "the sidebar does not list the lessons in order"
    rows = re.findall(r"<tr\b.*?</tr>", (site / "index.html").read_text(encoding="utf-8"), re.S)
    for lesson in lessons:
        row = [r for r in rows if f'href="notebooks/{lesson.name}"' in r]
        assert row and re.search(r"<p>\d+ \(\d+ \+ \d+\)</p>", row[0]), (
            f"the course map has no row with minutes for lesson {lesson.name[:2]}"
        )
    assert len(page["cites"]) >= 3  # the three papers, cited from the front page


@pytest.mark.parametrize("path", _lesson_pages(), ids=lambda p: p.stem[:2])
def test_lesson_page_renders(visitor, site, path):
    shot = "lesson.png" if path.name.startswith("02_") else None
    page = visitor.check(visitor.server.url(f"notebooks/{path.name}"), shot=shot)
    assert page["figures"] >= 1, f"{path.name}: no figure in the outputs"
    assert page["page_toc"] >= 2, f"{path.name}: no in-page table of contents"
    assert page["uses"], f"{path.name}: no 'wlearn used in this lesson' links"
    assert all("/api/" in u and "#" in u for u in page["uses"]), page["uses"]
    assert page["math_errors"] == 0, f"{path.name}: {page['math_errors']} formulas failed"
    if _has_math(site, path.stem):
        assert page["mathjax"] and page["math_typeset"] >= 1, f"{path.name}: no formula typeset"
    refs = page["refs"]
    download = visitor.server.url(f"_sources/notebooks/{path.stem}.ipynb")
    assert download in refs, f"{path.name}: no download button for its notebook"
    assert any(r.startswith("https://mybinder.org/v2/gh/") and path.stem in r for r in refs), (
        f"{path.name}: no Binder launch button"
    )
    assert any("/hub/user-redirect/git-pull?" in r and path.stem in r for r in refs), (
        f"{path.name}: no JupyterHub launch button"
    )
    n = _solution_cells(site, path.stem)
    if (site / "index.html").read_text(encoding="utf-8").count("instructor build: solutions"):
        assert (page["solutions"], page["hidden_solutions"]) == (n, 0), (
            f"{path.name}: the instructor build should show its {n} solution cells"
        )
    else:
        assert (page["solutions"], page["hidden_solutions"]) == (0, n), (
            f"{path.name}: the learner site should hide its {n} solution cells"
        )
        if n:
            assert "solution hidden: see the instructor build" in page["text"]


@pytest.mark.parametrize("path", _api_pages(), ids=lambda p: p.stem)
def test_api_page_loads(visitor, site, path):
    page = visitor.check(visitor.server.url(f"api/{path.name}"))
    assert page["title"]


def test_search_for_sinkhorn_returns_lesson_02(visitor, site):
    lesson = [p for p in _lesson_pages() if p.name.startswith("02_")]
    if not lesson:
        pytest.skip("lesson 02 is not in this build")
    page = visitor.check(
        visitor.server.url("search.html?q=Sinkhorn"),
        wait_for="#search-results ul.search li",
        shot="search.png",
    )
    found = [visitor.server.file_of(r) for r in page["refs"]]
    assert lesson[0] in found, "the search for 'Sinkhorn' does not list lesson 02"


def test_bibliography_lists_the_papers_and_every_citation_resolves(visitor, site):
    page = visitor.check(visitor.server.url("bibliography.html"))
    for key in PAPERS:
        assert key in page["ids"], f"the bibliography has no entry {key!r}"
    cites = []
    for rel in ["index.html", "reproduces.html"] + [f"notebooks/{p.name}" for p in _lesson_pages()]:
        text = (site / rel).read_text(encoding="utf-8")
        assert 'href="cite:' not in text, f"{rel}: a cite: link was not resolved"
        for tag in re.findall(r"<a\s[^>]*>", text):
            if "wlearn-cite" in tag:
                href = re.search(r'href="([^"]+)"', tag).group(1)
                cites.append((rel, href))
    assert cites, "no page cites the bibliography"
    ids = _ids_in(site / "bibliography.html")
    for rel, href in cites:
        target, _, key = href.partition("#")
        assert (site / rel).parent.joinpath(target).resolve() == site / "bibliography.html", href
        assert key in ids, f"{rel}: {href} has no entry in the bibliography"


def test_reproduces_page_links_every_claim(visitor, site):
    page = visitor.check(visitor.server.url("reproduces.html"), shot="reproduces.png")
    rows = json.loads((site / "claims.json").read_text(encoding="utf-8"))
    import wlearn.claims as wc

    assert len(rows) == len(wc.registry())
    for info in wc.papers().values():
        assert info["short"] in page["text"]
    for row in rows:
        if row["notebook"]:
            want = visitor.server.url(
                f"notebooks/{Path(row['notebook']).stem}.html#{wc.anchor(row['id'])}"
            )
            assert want in page["refs"], f"no link to the box of {row['id']}"
