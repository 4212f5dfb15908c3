"""The built course site, checked in a real headless browser (Debian's chromium).

What is checked, for the site in ``$WLEARN_SITE`` (``make test`` builds ``build/`` and sets
``WLEARN_SITE=build``): the course map loads; every lesson page loads with no JavaScript
error and no failed request, every ``<img>`` has been decoded (``naturalWidth > 0``), each
lesson shows at least one figure and its formulas are typeset by the bundled MathJax; every
local ``href``/``src`` resolves to an existing file, and every ``#anchor`` to an element of
the target page; every page of the API reference loads; the site also works over http.
Solutions: on the learner site every cell tagged ``solution`` is replaced by the note
"solution hidden: see the instructor build"; ``WLEARN_SITE=build/instructor`` checks the
instructor build instead (``make course-instructor``), where they are all shown.

Without ``WLEARN_SITE`` the site tests skip (``make unit`` needs no built site); the browser
self-tests below (a tiny site with a broken link and a broken image, which the checks must
catch) run whenever chromium is installed. Without chromium everything here skips, unless
``WLEARN_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which turns the skip into a failure.

The browser is driven over the Chrome DevTools Protocol on a pipe
(``--remote-debugging-pipe``: no port, no extra Python package).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRE = os.environ.get("WLEARN_REQUIRE_BROWSER", "") == "1"
SITE = os.environ.get("WLEARN_SITE", "")
LESSON = re.compile(r"^\d\d_[a-z0-9_]+\.html$")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
]


def chromium_path() -> str | None:
    """``$WLEARN_CHROMIUM``, else the first of chromium / chromium-browser / google-chrome."""
    if os.environ.get("WLEARN_CHROMIUM"):
        return os.environ["WLEARN_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
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


# ---------------------------------------------------------------- a minimal CDP client


class Browser:
    """Headless chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, executable: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="wlearn-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds():  # runs in the child before exec: the pipes become fds 3 and 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=child_fds,
            pass_fds=(3, 4),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (exit {self.proc.poll()})")
                self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None):
        """Send one command and return its result (events arriving meanwhile are kept)."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def visit(self, url: str, script: str, width: int = 1200, height: int = 900) -> dict:
        """Load ``url`` in a fresh tab, run ``script`` (an async JS function body returning
        JSON-able data) once the page has loaded, and return ``{"result": ..., "errors":
        [...]}``: JavaScript exceptions, console errors and failed requests of that tab."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=session)
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            nav = self.call("Page.navigate", {"url": url}, session=session)
            if nav.get("errorText"):
                return {"result": None, "errors": [f"navigation: {nav['errorText']}"]}
            self.wait_event("Page.loadEventFired", session, self.timeout)
            value = self.call(
                "Runtime.evaluate",
                {
                    "expression": f"(async () => {{ {script} }})()",
                    "awaitPromise": True,
                    "returnByValue": True,
                },
                session=session,
            )
            if "exceptionDetails" in value:
                raise RuntimeError(f"check script failed on {url}: {value['exceptionDetails']}")
            result = value["result"].get("value")
            self.call("Runtime.evaluate", {"expression": "1"}, session=session)  # flush events
            return {"result": result, "errors": self._errors(session)}
        finally:
            self.call("Target.closeTarget", {"targetId": target})

    def _errors(self, session: str) -> list[str]:
        """Errors of one tab; the browser's own favicon.ico request is not the site's."""
        errors, rest, urls = [], [], {}
        for ev in self.events:
            if ev.get("sessionId") != session:
                rest.append(ev)
                continue
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Network.requestWillBeSent":
                urls[p["requestId"]] = p["request"]["url"]
            if method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                errors.append(
                    f"JS exception: {d.get('exception', {}).get('description') or d.get('text')}"
                )
            elif method == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(
                    "console.error: "
                    + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
                )
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif method == "Network.loadingFailed" and not p.get("canceled"):
                url = urls.get(p.get("requestId"), "?")
                errors.append(f"request failed: {p.get('errorText')} ({p.get('type')}) {url}")
        self.events = rest
        return [e for e in errors if "/favicon.ico" not in e]

    def screenshot(self, url: str, path: Path, width: int = 1200, height: int = 900) -> None:
        """Save a PNG of ``url`` (the visible part) to ``path``."""
        import base64

        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        try:
            self.call("Page.enable", session=session)
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            self.call("Page.navigate", {"url": url}, session=session)
            self.wait_event("Page.loadEventFired", session, self.timeout)
            time.sleep(1.0)  # let MathJax typeset
            data = self.call("Page.captureScreenshot", {"format": "png"}, session=session)
            Path(path).write_bytes(base64.b64decode(data["data"]))
        finally:
            self.call("Target.closeTarget", {"targetId": target})


# What the page reports once loaded: images, links, ids, and MathJax's state.
PAGE_SCRIPT = r"""
const mj = window.MathJax && window.MathJax.startup;
if (mj) {
  await Promise.race([mj.promise, new Promise((done) => setTimeout(done, 30000))]);
}
const imgs = Array.from(document.images).map((i) => ({
  src: i.currentSrc || i.src, complete: i.complete, width: i.naturalWidth}));
const refs = [];
for (const el of document.querySelectorAll("a[href], link[href]")) refs.push(el.href);
for (const el of document.querySelectorAll("img[src], script[src], iframe[src]")) refs.push(el.src);
return {
  title: document.title,
  url: location.href,
  imgs: imgs,
  figures: document.querySelectorAll(".jp-OutputArea-output img, .jp-RenderedImage img").length,
  refs: refs,
  ids: Array.from(document.querySelectorAll("[id], a[name]")).map((e) => e.id || e.name),
  mathjax: !!mj,
  math_typeset: document.querySelectorAll("mjx-container").length,
  math_errors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
  solutions: document.querySelectorAll(".celltag_solution").length,
  hidden_solutions: document.querySelectorAll(".celltag_solution-hidden").length,
  text: document.body ? document.body.innerText.slice(0, 200000) : "",
};
"""


def _file_of(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")


@functools.cache
def _ids_in(path: Path) -> frozenset[str]:
    return frozenset(_ID.findall(path.read_text(encoding="utf-8", errors="replace")))


def broken_refs(page: dict, root: Path) -> list[str]:
    """Local references of a visited page (``page`` as returned by :data:`PAGE_SCRIPT`) that do
    not resolve: a missing file, a file outside ``root``, or an ``#anchor`` the target page
    does not have. Non-file URLs (http, data:, mailto:) are not checked here."""
    bad = []
    here = _file_of(page["url"])
    for ref in page["refs"]:
        target = _file_of(ref)
        if target is None:
            continue
        fragment = urlsplit(ref).fragment
        if not target.exists():
            bad.append(f"{ref}: no such file")
            continue
        try:
            target.resolve().relative_to(root.resolve())
        except ValueError:
            bad.append(f"{ref}: outside the site folder {root}")
            continue
        if target.is_dir():
            target = target / "index.html"
            if not target.exists():
                bad.append(f"{ref}: folder without index.html")
                continue
        if fragment and target.suffix == ".html":
            ids = set(page["ids"]) if here and target == here else _ids_in(target)
            # as browsers do: the fragment as written, then percent-decoded
            if fragment not in ids and unquote(fragment) not in ids:
                bad.append(f"{ref}: no element with id {unquote(fragment)!r}")
    return bad


def bad_images(page: dict) -> list[str]:
    return [
        f"{i['src'][:80]}: not decoded (naturalWidth {i['width']})"
        for i in page["imgs"]
        if not i["complete"] or i["width"] <= 0
    ]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser():
    with Browser(need_chromium()) as b:
        yield b


def _site() -> Path:
    if not SITE:
        pytest.skip("no built site to check: set WLEARN_SITE=build after `make course`")
    site = Path(SITE)
    if not site.is_absolute():
        site = ROOT / site
    if not (site / "index.html").is_file():
        pytest.fail(f"WLEARN_SITE={SITE}: expected {site / 'index.html'}; run `make course` first")
    return site.resolve()


@pytest.fixture(scope="module")
def site() -> Path:
    return _site()


def _lesson_pages() -> list[Path]:
    if not SITE:
        return []
    site = Path(SITE) if Path(SITE).is_absolute() else ROOT / SITE
    return sorted(p for p in site.glob("*.html") if LESSON.match(p.name))


def _api_pages() -> list[Path]:
    if not SITE:
        return []
    site = Path(SITE) if Path(SITE).is_absolute() else ROOT / SITE
    return sorted((site / "api").rglob("*.html"))


# ---------------------------------------------------------------- self-tests of the checks


def test_browser_is_available_when_required():
    """With WLEARN_REQUIRE_BROWSER=1 (CI) a missing chromium is a failure, not a skip."""
    need_chromium()


@pytest.fixture()
def tiny_site(tmp_path):
    """A two-page site with one good and one broken link, anchor and image each."""
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
    )
    (tmp_path / "ok.png").write_bytes(png)
    (tmp_path / "b.html").write_text('<html><body><p id="there">b</p></body></html>')
    (tmp_path / "index.html").write_text(
        '<html><head><title>t</title></head><body><p id="top">a</p>'
        '<a href="b.html#there">good</a> <a href="b.html#nowhere">bad anchor</a> '
        '<a href="missing.html">bad link</a> <a href="#top">self</a>'
        '<img src="ok.png"> <img src="broken.png"></body></html>'
    )
    return tmp_path


def test_checks_catch_broken_links_anchors_and_images(browser, tiny_site):
    seen = browser.visit((tiny_site / "index.html").as_uri(), PAGE_SCRIPT)
    page = seen["result"]
    bad = broken_refs(page, tiny_site)
    assert len(bad) == 3, bad  # the missing page, the missing anchor, the missing image
    assert any("missing.html" in b and "no such file" in b for b in bad)
    assert any("'nowhere'" in b for b in bad)
    assert any("broken.png" in b for b in bad)
    imgs = bad_images(page)
    assert len(imgs) == 1 and "broken.png" in imgs[0], imgs
    assert any("request failed" in e or "ERR_FILE_NOT_FOUND" in e for e in seen["errors"])


def test_checks_catch_javascript_errors(browser, tmp_path):
    (tmp_path / "index.html").write_text(
        "<html><body><script>undefinedFunction();</script></body></html>"
    )
    seen = browser.visit((tmp_path / "index.html").as_uri(), PAGE_SCRIPT)
    assert any("undefinedFunction" in e for e in seen["errors"]), seen["errors"]


# ---------------------------------------------------------------- the built site


def _has_math(site: Path, stem: str) -> bool:
    """Whether the lesson's markdown has ``$...$`` formulas (from its executed notebook)."""
    nb = json.loads((site / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return re.search(r"\$[^$\s][^$]*\$", text) is not None


def _solution_cells(site: Path, stem: str) -> int:
    """The number of cells tagged ``solution`` in the lesson's executed notebook."""
    nb = json.loads((site / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return sum("solution" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])


def _check_page(browser, path: Path, site: Path) -> dict:
    seen = browser.visit(path.as_uri(), PAGE_SCRIPT)
    page = seen["result"]
    problems = seen["errors"] + broken_refs(page, site) + bad_images(page)
    assert not problems, f"{path.relative_to(site)}:\n  " + "\n  ".join(problems)
    return page


def test_index_loads_and_links_every_lesson_and_the_api(browser, site):
    page = _check_page(browser, site / "index.html", site)
    assert "course map" in page["title"]
    linked = {Path(urlsplit(r).path).name for r in page["refs"]}
    lessons = {p.name for p in _lesson_pages()}
    assert lessons, f"no lesson pages NN_x.html in {site}"
    assert lessons <= linked, f"lessons not linked from the map: {sorted(lessons - linked)}"
    assert "wlearn.html" in linked, "the course map does not link the API reference"


@pytest.mark.parametrize("path", _lesson_pages(), ids=lambda p: p.stem)
def test_lesson_page_renders(browser, site, path):
    page = _check_page(browser, path, site)
    assert page["figures"] >= 1, f"{path.name}: no figure in the outputs"
    nav = [r for r in page["refs"] if urlsplit(r).path.endswith("/index.html")]
    assert nav, f"{path.name}: no link back to the course map"
    assert any("/api/" in r for r in page["refs"]), f"{path.name}: no API reference link"
    assert "wlearn used in this lesson" in page["text"]
    assert page["math_errors"] == 0, f"{path.name}: {page['math_errors']} formulas failed"
    if _has_math(site, path.stem):
        assert page["mathjax"] and page["math_typeset"] >= 1, f"{path.name}: no formula typeset"
    n = _solution_cells(site, path.stem)
    if site.name == "instructor":
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
def test_api_page_loads(browser, site, path):
    refresh = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', path.read_text())
    if refresh:  # pdoc's api/index.html only redirects to wlearn.html, checked itself
        assert (path.parent / refresh.group(1)).is_file(), f"{path}: redirects to nothing"
        return
    seen = browser.visit(path.as_uri(), PAGE_SCRIPT)
    page = seen["result"]
    problems = seen["errors"] + broken_refs(page, site) + bad_images(page)
    assert not problems, f"{path.relative_to(site)}:\n  " + "\n  ".join(problems)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_site(site):
    """The site served on 127.0.0.1 (an ephemeral port) for the duration of the module."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_site_works_over_http(browser, site, http_site):
    index = browser.visit(f"{http_site}/index.html", PAGE_SCRIPT)
    assert not index["errors"], index["errors"]
    lessons = _lesson_pages()
    assert lessons
    seen = browser.visit(f"{http_site}/{lessons[0].name}", PAGE_SCRIPT)
    page = seen["result"]
    assert not seen["errors"] and not bad_images(page), seen["errors"]
    assert page["figures"] >= 1
    if _has_math(site, lessons[0].stem):
        assert page["math_typeset"] >= 1
