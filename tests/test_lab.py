"""The lessons with an explorer, run live in a real JupyterLab, the way JupyterLab tests itself
(Galata drives it with Playwright; this is the same in Python).

JupyterLab is started on a free port of 127.0.0.1, token-less, with this environment's Python
(the course kernel), on a copy of the lessons (nothing is saved into ``notebooks/``), at
``WLEARN_SIZE=demo`` and with live explorers (``WLEARN_STATIC`` unset). For each lesson whose
code calls ``wlearn.explore`` (02, 03, 04 and 08 today), in headless chromium: open it, "Run
All Cells", wait for the kernel to finish, and check that no output is an error or a warning
(no error output, nothing on stderr); then move the first slider of each explorer one step and
check that its figure is redrawn (the image changes). No request may leave 127.0.0.1: news and
update checks are off, and the lessons load nothing from the network. Then one lesson is shown
as a RISE deck (jupyterlab-rise): one reveal.js slide per ``slide`` cell, nothing loaded from
the network. ``WLEARN_SCREENSHOTS=DIR`` keeps screenshots of each lesson and of the deck.

Runs only with ``WLEARN_LAB_TEST=1`` (``make lab-test``, a step of ``make test``): it takes
minutes. Without chromium it skips, unless ``WLEARN_REQUIRE_BROWSER=1`` (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_site import LAUNCH_ARGS, SHOTS, need_chromium

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPLORER_LESSONS = [p for p in NOTEBOOKS if "wlearn.explore" in p.read_text(encoding="utf-8")]
RUN_TIMEOUT_S = 900  # per lesson; a lesson takes under a minute of CPU at the demo size
# JupyterLab settings for the test: no autosave, no news or update checks (no network).
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

pytestmark = pytest.mark.skipif(
    os.environ.get("WLEARN_LAB_TEST", "") != "1",
    reason="the JupyterLab end-to-end test runs with WLEARN_LAB_TEST=1 (make lab-test)",
)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of the lessons; yields its base URL."""
    tmp = tmp_path_factory.mktemp("lab")
    work = tmp / "course"
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    settings = tmp / "settings"
    for rel, values in SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("WLEARN_STATIC", "MPLBACKEND")}
    env |= {
        "WLEARN_SIZE": "demo",
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--allow-root",  # CI runs as root
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--LabApp.extension_manager=readonly",
        f"--ServerApp.root_dir={work}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
    ]
    log = open(tmp / "jupyterlab.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(base + "api/status", timeout=5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"JupyterLab did not start:\n{(tmp / 'jupyterlab.log').read_text()}")
            time.sleep(1)
    yield base
    proc.terminate()  # the server shuts its kernels down
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def browser():
    executable = need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield b
        b.close()


# The notebook's state, read from JupyterLab's own model (window.jupyterapp).
STATE = r"""() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  const model = panel.content.model;
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    if (cell.type !== "code") continue;
    cells.push({index: i, count: cell.executionCount,
                outputs: cell.outputs.toJSON(),
                source: cell.sharedModel.getSource().slice(0, 80)});
  }
  return {kernel: kernel ? kernel.status : null, cells: cells,
          busy: panel.content.widgets.filter((w) => w.promptNode &&
                w.promptNode.textContent.includes("*")).length};
}"""

# Each explorer: a widget box with a slider and an output image; returns their images' sources.
EXPLORER_IMAGES = r"""() => Array.from(document.querySelectorAll(".jp-OutputArea-output .widget-vbox"))
  .filter((box) => box.querySelector(".noUi-handle") && box.querySelector(".widget-output"))
  .map((box) => { const img = box.querySelector(".widget-output img");
                  return img ? img.src : ""; })"""


SHUTDOWN = """async () => {
  if (window.jupyterapp) await window.jupyterapp.serviceManager.sessions.shutdownAll();
}"""


def problems_in(state: dict) -> list[str]:
    """Error outputs, stderr text (warnings included) and cells that did not run."""
    out = []
    for cell in state["cells"]:
        where = f"cell {cell['index']} ({cell['source'].splitlines()[0] if cell['source'] else ''})"
        if cell["count"] is None:
            out.append(f"{where}: not executed")
        for o in cell["outputs"]:
            if o.get("output_type") == "error":
                out.append(f"{where}: {o.get('ename')}: {o.get('evalue')}")
            elif o.get("output_type") == "stream" and o.get("name") == "stderr":
                text = "".join(o.get("text", ""))
                out.append(f"{where}: stderr: {text.strip()[:300]}")
    return out


def _wait_for_run(page, timeout_s: float) -> dict:
    """Poll the notebook until every code cell has run and the kernel is idle, or a cell
    failed (Run All stops there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(STATE)
        if state and state["kernel"] == "idle" and state["busy"] == 0:
            failed = any(
                o.get("output_type") == "error" for c in state["cells"] for o in c["outputs"]
            )
            if failed or all(c["count"] is not None for c in state["cells"]):
                return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the lesson did not finish in {timeout_s:.0f} s: {state}")
        page.wait_for_timeout(1000)


@pytest.mark.parametrize("path", EXPLORER_LESSONS, ids=lambda p: p.stem[:2])
def test_lesson_runs_clean_and_its_explorers_redraw(lab, browser, path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    external: list[str] = []

    def route(r):
        if r.request.url.startswith((lab, "data:", "blob:", "about:", "ws://127.0.0.1")):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    try:
        # a workspace of its own: no tab (and kernel) of an earlier lesson is restored
        page.goto(f"{lab}lab/workspaces/lesson{path.name[:2]}/tree/notebooks/{path.name}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=120000)
        page.wait_for_function(
            r"""() => { const p = window.jupyterapp.shell.currentWidget;
                  return p && p.sessionContext && p.sessionContext.session &&
                         p.sessionContext.session.kernel &&
                         p.sessionContext.session.kernel.status === "idle"; }""",
            timeout=120000,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        state = _wait_for_run(page, RUN_TIMEOUT_S)
        bad = problems_in(state)
        assert not bad, f"{path.name} in JupyterLab:\n  " + "\n  ".join(bad)

        page.wait_for_function(f"() => ({EXPLORER_IMAGES})().length > 0", timeout=60000)
        before = page.evaluate(EXPLORER_IMAGES)
        assert before and all(before), f"{path.name}: no explorer with a figure: {before}"
        boxes = page.locator(
            ".jp-OutputArea-output .widget-vbox:has(.widget-output):has(.noUi-handle)"
        )
        assert boxes.count() == len(before)
        for i in range(boxes.count()):
            handle = boxes.nth(i).locator(".noUi-handle").first
            handle.scroll_into_view_if_needed()
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                f"""() => {{ const now = ({EXPLORER_IMAGES})();
                      return now[{i}] && now[{i}] !== {json.dumps(before[i])}; }}""",
                timeout=120000,
            )
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"lab-{path.stem}.png"))
        after = _wait_for_run(page, RUN_TIMEOUT_S)
        bad = problems_in(after)
        assert not bad, f"{path.name} after moving the sliders:\n  " + "\n  ".join(bad)
        assert not external, f"{path.name}: requests outside 127.0.0.1: {external}"
    finally:
        if not page.is_closed():  # free the kernel's memory before the next lesson
            page.evaluate(SHUTDOWN)
        context.close()


def test_rise_presents_a_lesson_as_slides_offline(lab, browser):
    """jupyterlab-rise opens a lesson as a reveal.js deck, one slide per ``slide`` cell
    (``tools/slides.py`` sets them), with nothing loaded from the network."""
    import nbformat

    path = EXPLORER_LESSONS[0]
    nb = nbformat.read(path, as_version=4)
    types = [c.get("metadata", {}).get("slideshow", {}).get("slide_type") for c in nb.cells]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    external: list[str] = []

    def route(r):
        if r.request.url.startswith((lab, "data:", "blob:", "about:")):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    try:
        page.goto(f"{lab}rise/notebooks/{path.name}")
        page.wait_for_selector(".reveal .slides > section", timeout=120000)
        page.wait_for_timeout(3000)  # let the deck settle
        slides = page.locator(".reveal .slides > section").count()
        assert slides == types.count("slide"), (slides, types.count("slide"))
        assert page.locator(".reveal .slides section section").count() >= types.count("subslide")
        assert not external, f"RISE requested outside 127.0.0.1: {external}"
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"rise-{path.stem}.png"))
    finally:
        page.evaluate(SHUTDOWN)
        context.close()
