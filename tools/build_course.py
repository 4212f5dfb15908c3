"""Build the course: execute every lesson in order and write HTML plus a course map.

Usage::

    python tools/build_course.py [--out build] [--only NN ...] [--timeout SECONDS] [--src DIR]

For each ``notebooks/NN_*.ipynb`` (in order) this executes the notebook with nbclient
(kernel ``python3``, ``MPLBACKEND=agg``, working directory ``notebooks/``, a time limit for
the whole notebook), then writes

- ``<out>/notebooks/NN_x.ipynb``: the executed notebook (with outputs, even on failure),
- ``<out>/NN_x.html``: the same as HTML, figures embedded,
- ``<out>/index.html``: the course map (title, what it reproduces, seconds, status, links),

and prints a table (lesson, seconds, status). The run size follows ``WLEARN_FULL`` as in the
notebooks themselves. Every lesson is built even if one fails; the exit status is 1 if any
lesson failed or timed out. Called by ``make course``.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import time
from pathlib import Path

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
    r"^\s*\**\s*Reproduces\s*:?\s*\**\s*:?\s*(.+)$", re.IGNORECASE | re.MULTILINE
)


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
            reproduces = m.group(1).strip().strip("*").strip()
        if title and reproduces != "-":
            break
    return title or "(untitled)", reproduces


def execute(path: Path, timeout: float) -> tuple[object, float, str]:
    """Execute one notebook. Returns (executed notebook, seconds, status)."""
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
    return nb, time.monotonic() - start, status


def write_index(out: Path, rows: list[dict]) -> None:
    """The course map: one row per lesson, linked to its HTML and executed notebook."""
    body = []
    for r in rows:
        e = {k: html.escape(str(v)) for k, v in r.items()}
        body.append(
            f'<tr><td>{e["num"]}</td><td><a href="{e["stem"]}.html">{e["title"]}</a></td>'
            f"<td>{e['reproduces']}</td><td>{r['seconds']:.0f}</td>"
            f'<td class="{"ok" if r["status"] == "ok" else "bad"}">{e["status"]}</td>'
            f'<td><a href="notebooks/{e["stem"]}.ipynb">ipynb</a></td></tr>'
        )
    size = "full (WLEARN_FULL=1)" if wlearn.FULL else "default"
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>wlearn: course map</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
.ok{{color:#060}}.bad{{color:#a00}}</style></head><body>
<h1>wlearn: learning with Wasserstein losses</h1>
<p>Built {time.strftime("%Y-%m-%d %H:%M")}, run size: {size}.</p>
<table><tr><th>#</th><th>Lesson</th><th>Reproduces</th><th>Seconds</th><th>Status</th>
<th>Notebook</th></tr>
{chr(10).join(body)}
</table></body></html>
"""
    (out / "index.html").write_text(page, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build", help="output folder (default: build)")
    parser.add_argument("--src", default=str(NOTEBOOKS), help="lesson folder (default: notebooks/)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="build only these lesson numbers")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds allowed per notebook (default: 900)"
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout: expected a positive number of seconds, got {args.timeout}")

    os.environ["MPLBACKEND"] = "agg"  # inherited by the kernels
    out = Path(args.out)
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    paths = lessons(args.src, args.only)
    if not paths:
        print(f"no lesson notebooks found in {args.src} (only={args.only})", file=sys.stderr)
        return 1

    rows = []
    for path in paths:
        print(f"-- {path.name} ...", flush=True)
        nb, seconds, status = execute(path, args.timeout)
        nbformat.write(nb, out / "notebooks" / path.name)
        body, _ = HTMLExporter().from_notebook_node(nb)
        (out / f"{path.stem}.html").write_text(body, encoding="utf-8")
        title, reproduces = describe(nb)
        rows.append(
            dict(
                num=path.name[:2],
                stem=path.stem,
                title=title,
                reproduces=reproduces,
                seconds=seconds,
                status=status,
            )
        )
        print(f"   {seconds:6.1f} s  {status}", flush=True)
    write_index(out, rows)

    width = max(len(r["stem"]) for r in rows)
    print(f"\n{'lesson':<{width}}  {'seconds':>7}  status")
    for r in rows:
        print(f"{r['stem']:<{width}}  {r['seconds']:7.1f}  {r['status']}")
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} lessons ok; course map: {out / 'index.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
