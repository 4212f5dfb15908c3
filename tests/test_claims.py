"""The claims registry and helper (wlearn.claims): coverage of the papers, both-way checks, ledger."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import wlearn.claims as wc
from wlearn import _env

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CALL = re.compile(r"""\bclaim\(\s*["']([^"']+)["']""")


def _calls() -> dict[str, list[str]]:
    """Lesson number -> the claim ids its code cells pass to ``claim(...)``."""
    out = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        src = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        out[path.name[:2]] = CALL.findall(src)
    return out


# --- the registry -------------------------------------------------------------------------


def test_registry_loads_and_ids_are_well_formed():
    rows = wc.registry()
    assert set(wc.papers()) >= {"frogner2015", "hou2016", "liu2020", "course"}
    for cid, row in rows.items():
        assert cid == row.id and cid.startswith(row.paper + "/")
        assert row.status in wc.STATUSES
        assert row.claim.strip(), cid
        assert re.fullmatch(r"\d\d", row.lesson), cid


def test_every_item_of_every_paper_has_a_row():
    covered = {(r.paper, r.item) for r in wc.registry().values()}
    missing = [f"{p}: {i}" for p, its in wc.items().items() for i in its if (p, i) not in covered]
    assert not missing, "items of the papers with no claim row:\n  " + "\n  ".join(missing)


def test_every_row_names_an_item_of_its_paper():
    items = wc.items()
    unknown = [
        f"{r.id}: {r.item!r}"
        for r in wc.registry().values()
        if r.paper != "course" and r.item not in items[r.paper]
    ]
    assert not unknown, "rows whose item is not in their paper's list:\n  " + "\n  ".join(unknown)


def test_every_row_is_claimed_by_its_lesson_and_every_call_is_registered():
    calls = _calls()
    rows = wc.registry()
    lessons = {p.name[:2] for p in NOTEBOOKS}
    not_called = [
        f"{r.id} (lesson {r.lesson})"
        for r in rows.values()
        if r.lesson not in lessons or r.id not in calls.get(r.lesson, [])
    ]
    assert not not_called, "rows whose lesson never calls claim(id):\n  " + "\n  ".join(not_called)
    wrong = [
        f"lesson {nb}: {cid}"
        for nb, ids in calls.items()
        for cid in ids
        if cid not in rows or rows[cid].lesson != nb
    ]
    assert not wrong, "claim() calls with no row for that lesson:\n  " + "\n  ".join(wrong)


def test_out_of_reach_rows_name_the_command_that_would_test_them():
    for r in wc.registry().values():
        if r.status == "out of reach offline":
            assert r.command.strip(), f"{r.id}: out of reach offline, but no command"


def test_the_paper_keys_have_a_bibliography_entry():
    bib = REPO / "docs" / "references.bib"
    if not bib.exists():
        pytest.skip("docs/references.bib not written yet")
    text = bib.read_text(encoding="utf-8")
    for key, info in wc.papers().items():
        if info["bibkey"]:
            assert re.search(r"@\w+\{" + re.escape(info["bibkey"]) + ",", text), key


# --- both ways ----------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch):
    """A registry of four rows, one per status, in place of the real one."""
    rows = {
        "t/yes": wc.Row("t/yes", "t", "Fig. 1", "it holds", "01", "reproduced", "0.5"),
        "t/no": wc.Row("t/no", "t", "Fig. 2", "it fails", "01", "not reproduced"),
        "t/fig": wc.Row("t/fig", "t", "Fig. 3", "a picture", "01", "shown"),
        "t/far": wc.Row(
            "t/far", "t", "Table 1", "big", "09", "out of reach offline", command="make x"
        ),
        "t/default": wc.Row(
            "t/default", "t", "Fig. 4", "slow", "01", "reproduced", sizes=("default", "full")
        ),
    }
    papers = {"t": {"short": "Test et al.", "citation": "", "bibkey": ""}}
    monkeypatch.setattr(wc, "_load", lambda: (papers, {"t": ("Fig. 1",)}, rows))
    return rows


def test_a_reproduced_claim_fails_the_run_when_it_stops_holding(fake):
    assert wc.evaluate("t/yes", holds=True, ours={"x": 0.4}).holds is True
    with pytest.raises(wc.ClaimMismatch, match=r"t/yes.*reproduced.*does not hold"):
        wc.evaluate("t/yes", holds=False, ours={"x": 0.6})


def test_a_not_reproduced_claim_fails_the_run_when_it_starts_holding(fake):
    assert wc.evaluate("t/no", holds=np.bool_(False)).holds is False
    with pytest.raises(wc.ClaimMismatch, match=r"NOT reproduced.*now HOLDS"):
        wc.evaluate("t/no", holds=True)


def test_holds_must_be_a_bool_for_checked_rows_and_none_otherwise(fake):
    with pytest.raises(TypeError, match="holds: expected a bool"):
        wc.evaluate("t/yes", holds=1)
    with pytest.raises(TypeError, match="holds: expected a bool"):
        wc.evaluate("t/yes")
    with pytest.raises(TypeError, match="holds: expected None"):
        wc.evaluate("t/fig", holds=True)
    assert wc.evaluate("t/fig").holds is None
    assert wc.evaluate("t/far").as_dict()["command"] == "make x"


def test_an_unknown_id_is_refused_naming_the_ids_of_its_paper(fake):
    with pytest.raises(KeyError, match=r"claim_id.*t/yes"):
        wc.evaluate("t/typo", holds=True)


def test_a_claim_is_not_asserted_at_a_size_it_does_not_list(fake, monkeypatch):
    monkeypatch.setattr(_env, "SIZE", "demo")
    rec = wc.evaluate("t/default", holds=False)
    assert rec.checked is False and rec.size == "demo"
    assert "checked at the default, full size" in str(rec)
    monkeypatch.setattr(_env, "SIZE", "default")
    with pytest.raises(wc.ClaimMismatch):
        wc.evaluate("t/default", holds=False)


def test_measured_values_become_plain_json(fake):
    ours = {
        "np": np.float32(0.123456789),
        "torch": torch.tensor(2.5),
        "arr": np.arange(3),
        "int": np.int64(7),
        "text": "tie",
        "nan": float("nan"),
    }
    rec = wc.evaluate("t/yes", holds=True, ours=ours)
    d = json.loads(json.dumps(rec.as_dict()))
    assert d["ours"] == {
        "np": 0.123457,
        "torch": 2.5,
        "arr": [0, 1, 2],
        "int": 7,
        "text": "tie",
        "nan": "nan",
    }
    with pytest.raises(TypeError, match="ours: expected numbers"):
        wc.evaluate("t/yes", holds=True, ours={"bad": object()})


def test_the_display_carries_the_record_and_says_the_status(fake):
    rec = wc.evaluate("t/no", holds=False, ours={"gain": -0.01})
    bundle = rec._repr_mimebundle_()
    assert bundle[wc.MIME]["id"] == "t/no" and bundle[wc.MIME]["ours"] == {"gain": -0.01}
    assert "not reproduced here" in bundle["text/plain"]
    assert 'id="claim-t-no"' in bundle["text/html"] and "not reproduced here" in bundle["text/html"]
    assert "paper: 0.5" in str(wc.evaluate("t/yes", holds=True))


def test_claim_prints_outside_ipython(fake, capsys):
    wc.claim("t/yes", holds=True, ours={"x": 1})
    assert "Test et al., Fig. 1: it holds" in capsys.readouterr().out


# --- the ledger ---------------------------------------------------------------------------


def _executed(tmp_path, name, records):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("claim(...)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=r._repr_mimebundle_()) for r in records
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# x"), cell]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_collect_and_write_ledger_list_every_row(fake, tmp_path):
    nb = _executed(
        tmp_path,
        "01_x.ipynb",
        [wc.evaluate("t/yes", holds=True, ours={"x": 0.4}), wc.evaluate("t/fig")],
    )
    got = wc.collect([nb])
    assert [r["id"] for r in got] == ["t/yes", "t/fig"] and got[0]["notebook"] == "01_x.ipynb"
    out = tmp_path / "build" / "claims.json"
    rows = wc.write_ledger([nb], out)
    assert json.loads(out.read_text()) == rows
    assert [r["id"] for r in rows] == list(fake)  # every registry row, in registry order
    by_id = {r["id"]: r for r in rows}
    assert by_id["t/yes"]["ours"] == {"x": 0.4} and by_id["t/yes"]["holds"] is True
    assert by_id["t/no"]["ours"] == {} and by_id["t/no"]["holds"] is None  # not run
    for r in rows:
        assert set(r) >= {"paper", "item", "claim", "lesson", "status", "ours", "paper_value"}
        assert "note" in r
    assert not list(out.parent.glob("*.part"))
