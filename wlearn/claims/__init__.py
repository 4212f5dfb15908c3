"""Claims of the papers and of the course, checked both ways and collected into a ledger.

A lesson states each experimental claim of a paper (and each claim of its own) through
:func:`claim`, giving the id of a row of the **claims registry** and what it measured::

    claim("frogner2015/fig3a-converges", holds=bool(np.all(np.diff(rel_to_6, axis=1) < 0)),
          ours={"rel. distance (8)-(6), lambda=50, gamma=10": rel_to_6[-1, -1]})

The registry (``wlearn/claims/<paper>.yaml``, one file per paper and ``course.yaml`` for the
course's own claims) holds, for every row, the paper and item (figure, table, equation,
section), the claim in words, the lesson that tests it, the paper's printed values and the
**status** the lesson reports:

``reproduced``
    The lesson says the claim holds here. :func:`claim` fails the run when it does not.
``not reproduced``
    The lesson says the claim does not hold here (and says so in its text, with the numbers).
    :func:`claim` fails the run when it *starts* holding: the text would then be wrong.
``shown``
    A figure or picture without a testable statement: drawn, not checked.
``out of reach offline``
    Needs data or compute this course cannot have offline (full Cityscapes, YFCC100M, other
    backbones); the row names the command that would test it at full size.

Each file also lists the paper's **items** (every figure, table, proposition, equation and
quantitative claim drawn up from the paper); ``tests/test_claims.py`` checks that every item
has at least one row and that every row's lesson calls :func:`claim` with its id.

In a notebook, :func:`claim` displays a box with the claim, our numbers beside the paper's and
the status, and the box carries the whole record under the MIME type :data:`MIME`, so the
executed notebooks are the ledger's only source: :func:`collect` reads them back and
:func:`write_ledger` writes ``build/claims.json``.

Introduced in notebooks/01_optimal_transport.ipynb; the course's "What reproduces" page is
generated from the ledger.
"""

from __future__ import annotations

import functools
import html
import json
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from wlearn import _env

__all__ = [
    "MIME",
    "STATUSES",
    "ClaimMismatch",
    "Record",
    "Row",
    "claim",
    "collect",
    "evaluate",
    "items",
    "papers",
    "registry",
    "write_ledger",
]

MIME = "application/vnd.wlearn.claim+json"
"""The MIME type under which a displayed claim carries its record in a notebook's outputs."""

STATUSES = ("reproduced", "not reproduced", "shown", "out of reach offline")
"""The statuses a registry row may have (see the module docstring)."""

_CHECKED = ("reproduced", "not reproduced")
_HERE = Path(__file__).resolve().parent


class ClaimMismatch(AssertionError):
    """A claim's measured outcome disagrees with the status the lesson reports.

    Raised by :func:`claim` and :func:`evaluate`: a claim recorded as reproduced that does not
    hold here, or one recorded as not reproduced that now holds. Either the lesson's text (and
    the registry row) or the experiment is wrong. Introduced in
    notebooks/01_optimal_transport.ipynb.
    """


@dataclass(frozen=True)
class Row:
    """One row of the claims registry (a claim, where it is tested, and its expected status).

    Attributes
    ----------
    id : str
        ``"<paper>/<short-name>"``, unique; the lesson calls ``claim(id, ...)``.
    paper : str
        The registry file's paper key (``frogner2015``, ``hou2016``, ``liu2020``, ``course``).
    item : str
        The paper's item the claim is about ("Fig. 3a", "Table 1", "Prop. 5.2", "Sec. 6.1").
    claim : str
        The claim in words (ours, never a quotation unless marked as one).
    lesson : str
        The lesson that tests it, ``"NN"``.
    status : str
        One of :data:`STATUSES`.
    paper_value : str
        What the paper prints for it ("" when it prints no number).
    note : str
        Why it holds or not here, what differs from the paper's set-up.
    command : str
        For ``out of reach offline`` rows: the command that would test it at full size.
    sizes : tuple of str
        The run sizes at which the lesson checks the claim (default: all of
        :data:`wlearn.SIZES`). At other sizes the outcome is shown, not asserted.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """

    id: str
    paper: str
    item: str
    claim: str
    lesson: str
    status: str
    paper_value: str = ""
    note: str = ""
    command: str = ""
    sizes: tuple[str, ...] = _env.SIZES


@dataclass(frozen=True)
class Record:
    """The outcome of one claim in one run: the registry row and what the lesson measured.

    Attributes
    ----------
    row : Row
        The registry row.
    holds : bool or None
        Whether the claim held in this run (None for ``shown`` and ``out of reach offline``).
    ours : dict
        The measured values, label -> number or text (JSON-serialisable).
    size : str
        The run size (``demo``, ``default`` or ``full``).
    checked : bool
        Whether the status was asserted at this size (see :attr:`Row.sizes`).
    note : str
        A note from this run (added to the row's note in the ledger).

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """

    row: Row
    holds: bool | None
    ours: dict = field(default_factory=dict)
    size: str = _env.SIZE
    checked: bool = True
    note: str = ""

    def as_dict(self) -> dict:
        """The ledger row: the registry fields plus ``ours``, ``holds``, ``size``, ``checked``.

        Returns
        -------
        dict
            JSON-serialisable, with the keys ``id, paper, item, claim, lesson, status, ours,
            paper_value, note, command, holds, size, checked``.
        """
        r = self.row
        note = " ".join(x for x in (r.note, self.note) if x)
        return {
            "id": r.id,
            "paper": r.paper,
            "item": r.item,
            "claim": r.claim,
            "lesson": r.lesson,
            "status": r.status,
            "ours": self.ours,
            "paper_value": r.paper_value,
            "note": note,
            "command": r.command,
            "holds": self.holds,
            "size": self.size,
            "checked": self.checked,
        }

    def _verdict(self) -> str:
        status = self.row.status
        if status == "reproduced":
            v = "reproduced here"
        elif status == "not reproduced":
            v = "not reproduced here"
        elif status == "shown":
            v = "shown (no testable statement)"
        else:
            v = "out of reach offline"
        if status in _CHECKED and not self.checked:
            v += f" (checked at the {', '.join(self.row.sizes)} size; this run: {self.size})"
        return v

    def __str__(self) -> str:
        r = self.row
        mark = {"reproduced": "[holds]", "not reproduced": "[does not hold]"}.get(r.status, "[-]")
        lines = [f"{mark} {papers()[r.paper]['short']}, {r.item}: {r.claim}"]
        lines.append(f"    status: {self._verdict()}")
        if self.ours:
            lines.append("    ours:  " + "; ".join(f"{k} {_fmt(v)}" for k, v in self.ours.items()))
        if r.paper_value:
            lines.append(f"    paper: {r.paper_value}")
        if r.command:
            lines.append(f"    at full size: {r.command}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        r = self.row
        colour = {
            "reproduced": "#2e7d32",
            "not reproduced": "#b26a00",
            "shown": "#546e7a",
            "out of reach offline": "#546e7a",
        }[r.status]
        e = html.escape
        parts = [
            f'<div class="wlearn-claim" id="{e(anchor(r.id))}" '
            f'style="border-left:4px solid {colour};padding:0.3em 0.8em;margin:0.4em 0">',
            f"<strong>{e(papers()[r.paper]['short'])}, {e(r.item)}</strong>: {e(r.claim)}<br>",
            f'<span style="color:{colour};font-weight:bold">{e(self._verdict())}</span>',
        ]
        if self.ours:
            ours = "; ".join(f"{e(str(k))} {e(_fmt(v))}" for k, v in self.ours.items())
            parts.append(f"<br>ours: {ours}")
        if r.paper_value:
            parts.append(f"<br>paper: {e(r.paper_value)}")
        if r.command:
            parts.append(f"<br>at full size: <code>{e(r.command)}</code>")
        parts.append("</div>")
        return "".join(parts)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            "text/plain": str(self),
            "text/html": self._repr_html_(),
            MIME: self.as_dict(),
        }


def anchor(claim_id: str) -> str:
    """The HTML anchor of a claim's box in its lesson page (``claim-`` + id, ``/`` as ``-``).

    Parameters
    ----------
    claim_id : str
        A registry id such as ``"frogner2015/fig3a"``.

    Returns
    -------
    str
        ``"claim-frogner2015-fig3a"``.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """
    return "claim-" + claim_id.replace("/", "-").replace(".", "-")


def _fmt(v) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if not math.isfinite(v):
            return str(v)
        a = abs(v)
        if a != 0 and (a < 1e-3 or a >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _plain(v):
    """A JSON-serialisable copy of a measured value (numbers rounded to 6 significant digits)."""
    if isinstance(v, np.ndarray | list | tuple):
        return [_plain(x) for x in np.asarray(v, dtype=object).tolist()]
    if hasattr(v, "tolist") and not isinstance(v, str):  # numpy / torch scalars and tensors
        return _plain(v.tolist())
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        v = float(v)
        return float(f"{v:.6g}") if math.isfinite(v) else str(v)
    if isinstance(v, str):
        return v
    raise TypeError(
        f"ours: expected numbers, arrays, lists or strings as values, got {type(v).__name__} "
        f"({v!r}); pass float(x) or str(x)"
    )


@functools.cache
def _load() -> tuple[dict, dict, dict]:
    paper_info: dict[str, dict] = {}
    item_lists: dict[str, tuple[str, ...]] = {}
    rows: dict[str, Row] = {}
    for path in sorted(_HERE.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        key = path.stem
        if data.get("paper") != key:
            raise ValueError(f"{path.name}: expected 'paper: {key}', got {data.get('paper')!r}")
        paper_info[key] = {
            "short": data["short"],
            "citation": data["citation"],
            "bibkey": data.get("bibkey", ""),
        }
        item_lists[key] = tuple(str(i) for i in data.get("items", ()))
        for raw in data.get("claims", ()):
            raw = dict(raw)
            cid = raw.pop("id")
            if not cid.startswith(key + "/"):
                raise ValueError(f"{path.name}: claim id {cid!r} must start with '{key}/'")
            if cid in rows:
                raise ValueError(f"{path.name}: claim id {cid!r} is used twice")
            if "sizes" in raw:
                raw["sizes"] = tuple(raw["sizes"])
            raw["lesson"] = f"{int(raw['lesson']):02d}"
            row = Row(
                id=cid, paper=key, **{k: str(v) if k != "sizes" else v for k, v in raw.items()}
            )
            if row.status not in STATUSES:
                raise ValueError(
                    f"{path.name}: {cid}: status must be one of {STATUSES}, got {row.status!r}"
                )
            if not set(row.sizes) <= set(_env.SIZES) or not row.sizes:
                raise ValueError(
                    f"{path.name}: {cid}: sizes must be a non-empty subset of {_env.SIZES}, "
                    f"got {row.sizes!r}"
                )
            rows[cid] = row
    return paper_info, item_lists, rows


def papers() -> dict[str, dict]:
    """The papers of the registry: key -> ``{"short", "citation", "bibkey"}``.

    Returns
    -------
    dict
        ``{"frogner2015": {"short": "Frogner et al. 2015", ...}, ...}``, ``course`` included.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """
    return _load()[0]


def items() -> dict[str, tuple[str, ...]]:
    """The items drawn up from each paper (figures, tables, equations, propositions, claims).

    Returns
    -------
    dict
        paper key -> the item names, in the paper's order; every item has at least one row.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """
    return _load()[1]


def registry() -> dict[str, Row]:
    """Every registered claim, by id.

    Returns
    -------
    dict
        id -> :class:`Row`, in file order.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """
    return _load()[2]


def evaluate(claim_id: str, *, holds=None, ours: Mapping | None = None, note: str = "") -> Record:
    """Check one claim against the status its lesson reports, without displaying it.

    Parameters
    ----------
    claim_id : str
        A registry id (see :func:`registry`).
    holds : bool or None
        Whether the claim holds in this run: required (a Python or NumPy bool) for rows whose
        status is ``reproduced`` or ``not reproduced``; must be None for ``shown`` and
        ``out of reach offline`` rows.
    ours : mapping, optional
        What the lesson measured: label -> number, array, list or text.
    note : str
        A remark from this run, appended to the row's note in the ledger.

    Returns
    -------
    Record
        The row with the measured values.

    Raises
    ------
    ClaimMismatch
        The row says ``reproduced`` and ``holds`` is False, or ``not reproduced`` and ``holds``
        is True, at a size listed in the row's ``sizes``.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """
    rows = registry()
    if claim_id not in rows:
        near = [k for k in rows if k.split("/")[0] == str(claim_id).split("/")[0]]
        raise KeyError(
            f"claim_id: expected an id of the claims registry (wlearn/claims/*.yaml), got "
            f"{claim_id!r}; ids of that paper: {', '.join(near) or 'none'}"
        )
    row = rows[claim_id]
    if row.status in _CHECKED:
        if not isinstance(holds, bool | np.bool_):
            raise TypeError(
                f"holds: expected a bool for the {row.status!r} claim {claim_id}, got "
                f"{type(holds).__name__} ({holds!r}); pass the outcome of the comparison, "
                "e.g. holds=bool(ours_value < paper_bound)"
            )
        holds = bool(holds)
    elif holds is not None:
        raise TypeError(
            f"holds: expected None for the {row.status!r} claim {claim_id} (nothing is tested), "
            f"got {holds!r}; change its status in the registry if the lesson now tests it"
        )
    measured = {str(k): _plain(v) for k, v in (ours or {}).items()}
    checked = row.status in _CHECKED and _env.SIZE in row.sizes
    record = Record(row=row, holds=holds, ours=measured, size=_env.SIZE, checked=checked, note=note)
    if checked and holds != (row.status == "reproduced"):
        said = "reproduced" if row.status == "reproduced" else "NOT reproduced"
        now = "does not hold" if row.status == "reproduced" else "now HOLDS"
        raise ClaimMismatch(
            f"{claim_id} ({papers()[row.paper]['short']}, {row.item}): the lesson says this "
            f"claim is {said} here, but in this run it {now}.\n{record}\nEither the experiment "
            f"changed (find out why) or the lesson's text and the registry row "
            f"(wlearn/claims/{row.paper}.yaml) must change with it."
        )
    return record


def claim(claim_id: str, *, holds=None, ours: Mapping | None = None, note: str = "") -> None:
    """State a claim in a lesson: check it both ways and display it with our and the paper's numbers.

    Parameters
    ----------
    claim_id : str
        A registry id, e.g. ``"frogner2015/fig3a"`` (see :func:`registry`).
    holds : bool or None
        Whether the claim holds in this run (None for ``shown`` / ``out of reach`` rows).
    ours : mapping, optional
        What the lesson measured: label -> number, array, list or text.
    note : str
        A remark from this run, appended to the row's note in the ledger.

    Raises
    ------
    ClaimMismatch
        When the outcome contradicts the row's status (see :func:`evaluate`).

    Notes
    -----
    In a notebook the claim is displayed as a box whose outputs carry the record under
    :data:`MIME`; outside IPython it is printed. Introduced in
    notebooks/01_optimal_transport.ipynb.
    """
    record = evaluate(claim_id, holds=holds, ours=ours, note=note)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with the lab extra
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(record)
    else:
        print(record)


def collect(notebooks: Iterable[str | Path]) -> list[dict]:
    """The ledger rows carried by executed notebooks (outputs of type :data:`MIME`).

    Parameters
    ----------
    notebooks : iterable of str or Path
        Executed ``.ipynb`` files.

    Returns
    -------
    list of dict
        One row per claim (:meth:`Record.as_dict`), in notebook and cell order, each with an
        added ``notebook`` key (the file name). A claim displayed twice keeps its last record.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """
    seen: dict[str, dict] = {}
    for nb_path in notebooks:
        nb_path = Path(nb_path)
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", ()):
            for out in cell.get("outputs", ()) if cell.get("cell_type") == "code" else ():
                data = out.get("data", {})
                if MIME in data:
                    row = dict(data[MIME])
                    row["notebook"] = nb_path.name
                    seen.pop(row["id"], None)
                    seen[row["id"]] = row
    return list(seen.values())


def write_ledger(notebooks: Iterable[str | Path], path: str | Path) -> list[dict]:
    """Write ``claims.json``: every registry row, with our numbers from the executed notebooks.

    Rows no executed notebook displayed (a lesson not run, or a failed one) are written with
    ``ours`` empty and ``holds`` None, so the ledger always lists every claim.

    Parameters
    ----------
    notebooks : iterable of str or Path
        Executed ``.ipynb`` files.
    path : str or Path
        The JSON file to write (written whole or not at all: a temporary file is renamed).

    Returns
    -------
    list of dict
        The rows written, in registry order.

    See notebooks/01_optimal_transport.ipynb (the claims of every lesson).
    """
    measured = {r["id"]: r for r in collect(notebooks)}
    rows = []
    for cid, row in registry().items():
        if cid in measured:
            rows.append(measured[cid])
        else:
            rec = Record(row=row, holds=None, ours={}, size=_env.SIZE, checked=False)
            rows.append(dict(rec.as_dict(), notebook=""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return rows
