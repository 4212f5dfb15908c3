"""Self-checking exercises (:mod:`wlearn.exercises`) and their cells in the lessons.

For every registered exercise: its lesson has a stub cell (tag ``exercise``) and, right after
it, a collapsed solution cell (tag ``solution``); the solution passes its check, the stub
says "not attempted yet", a typical wrong answer fails with a message naming what is off, and
odd answers are reported, never raised. The solutions are read from the notebooks (one source)
and run after the lesson's opening (import) cell only, so they must not depend on the lesson's
other cells.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from wlearn.exercises import CheckResult, check, list_exercises
from wlearn.exercises._core import _Report, _Stop
from wlearn.ground import grid, line

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
KEYS = [e.key for e in list_exercises()]
HEAD = "# Solution (hidden for learners; shown in the instructor build)"
MARK = re.compile(r"\*\*Self-check `(\d\d\.\d+)`\.\*\*")


def _quiet(fn, *args, **kw):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out = fn(*args, **kw)
    return out, buf.getvalue()


@functools.cache
def _cells(nn: str):
    """(opening cell source, {key: (exercise cell, solution cell)}, markdown) of lesson nn."""
    nb = nbformat.read(NOTEBOOKS[nn], as_version=4)
    opening = next(c.source for c in nb.cells if c.cell_type == "code")
    pairs = {}
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and "exercise" in c.metadata.get("tags", []):
            m = re.search(r'check\("(\d\d\.\d+)"', c.source)
            assert m, f"lesson {nn}: exercise cell {i} calls no check"
            assert m.group(1) not in pairs, f"lesson {nn}: two exercise cells for {m.group(1)}"
            pairs[m.group(1)] = (c, nb.cells[i + 1] if i + 1 < len(nb.cells) else None)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return opening, pairs, markdown


def _last_check_call(source: str) -> ast.Call:
    """The ``check(...)`` call of the cell's last statement (``assert check(...)`` or not)."""
    last = ast.parse(source).body[-1]
    call = last.test if isinstance(last, ast.Assert) else last.value
    assert isinstance(call, ast.Call) and getattr(call.func, "id", "") == "check", source
    return call


def _eval(node, ns):
    return eval(compile(ast.Expression(node), "<cell>", "eval"), ns)


@functools.cache
def _run(key: str):
    """Run the opening, exercise and solution cells of ``key``; return what they gave."""
    opening, pairs, _ = _cells(key[:2])
    ex, sol = pairs[key]
    ns: dict = {}
    _quiet(exec, opening, ns)
    _, stub_out = _quiet(exec, ex.source, ns)
    stub_call = _last_check_call(ex.source)
    stub_res, _ = _quiet(_eval, stub_call, ns)
    _, sol_out = _quiet(exec, sol.source, ns)
    call = _last_check_call(sol.source)
    answer = _eval(call.args[1], ns)
    context = {k.arg: _eval(k.value, ns) for k in call.keywords}
    return {
        "stub_out": stub_out,
        "stub_res": stub_res,
        "sol_out": sol_out,
        "answer": answer,
        "context": context,
    }


def _off_lines(res: CheckResult) -> list[str]:
    return [m for m in res.messages if m.lstrip().startswith("OFF")]


# --------------------------------------------------------------------- the lessons' cells


def test_every_lesson_has_at_least_two_checked_exercises():
    for nn in NOTEBOOKS:
        keys = [e.key for e in list_exercises(int(nn))]
        assert len(keys) >= 2, f"lesson {nn}: {keys}"


@pytest.mark.parametrize("nn", sorted(NOTEBOOKS))
def test_markdown_marks_exactly_the_checked_exercises(nn):
    _, pairs, markdown = _cells(nn)
    registered = {e.key for e in list_exercises(int(nn))}
    marked = set(MARK.findall(markdown))
    assert marked == registered == set(pairs), (marked, registered, set(pairs))
    for key in registered:  # the marked item is the k-th of the list
        k = key.split(".")[1]
        assert re.search(rf"^{k}\. \*\*Self-check `{re.escape(key)}`", markdown, re.M), key


@pytest.mark.parametrize("key", KEYS)
def test_exercise_cell_is_followed_by_a_hidden_solution(key):
    _, pairs, _ = _cells(key[:2])
    ex, sol = pairs[key]
    assert "..." in ex.source, "the learner's cell holds a stub"
    assert sol is not None and sol.cell_type == "code"
    assert "solution" in sol.metadata.get("tags", [])
    assert "exercise" not in sol.metadata.get("tags", [])
    assert sol.metadata.get("jupyter", {}).get("source_hidden") is True
    assert sol.source.splitlines()[0] == HEAD
    last = ast.parse(sol.source).body[-1]
    assert isinstance(last, ast.Assert), "a solution cell ends with assert check(...)"
    assert _eval(_last_check_call(sol.source).args[0], {}) == key


@pytest.mark.parametrize("key", KEYS)
def test_reference_solution_passes(key):
    run = _run(key)
    assert "OFF" not in run["sol_out"] and "=> passed" in run["sol_out"], run["sol_out"]
    res, _ = _quiet(check, key, run["answer"], **run["context"])
    assert res and res.passed and res.attempted


@pytest.mark.parametrize("key", KEYS)
def test_stub_cell_says_not_attempted(key):
    run = _run(key)
    ex = list_exercises(int(key[:2]))
    hint = next(e for e in ex if e.key == key).hints[0]
    assert f"Exercise {key}" in run["stub_out"] and "not attempted yet" in run["stub_out"]
    assert hint in run["stub_out"]
    assert not run["stub_res"] and not run["stub_res"].attempted


# --------------------------------------------------------------------- stubs and odd answers


def _raises_not_implemented(*args):
    raise NotImplementedError


def _divides_by_zero(*args):
    return 1 / 0


@pytest.mark.parametrize("key", KEYS)
def test_generic_stubs_are_not_attempted(key):
    run = _run(key)
    stubs = [None, ...]
    if callable(run["answer"]):
        stubs += [_raises_not_implemented, lambda *args: None]
    for stub in stubs:
        res, out = _quiet(check, key, stub, **run["context"])
        assert not res and not res.attempted and "not attempted yet" in out, (stub, out)


@pytest.mark.parametrize("key", KEYS)
def test_odd_answers_are_reported_not_raised(key):
    run = _run(key)
    odd = ["nonsense", np.zeros((2, 3, 4))]
    if callable(run["answer"]):
        odd += [_divides_by_zero, lambda *args: "a string"]
    for answer in odd:
        res, out = _quiet(check, key, answer, **run["context"])
        assert not res and res.attempted and _off_lines(res), (answer, out)
        assert "hint:" in out
    if callable(run["answer"]):
        res, _ = _quiet(check, key, _divides_by_zero, **run["context"])
        assert "ZeroDivisionError" in " ".join(_off_lines(res))


def test_unknown_key_raises_listing_the_valid_keys():
    with pytest.raises(ValueError, match=r"'99\.9'") as err:
        check("99.9", lambda: 0)
    assert all(k in str(err.value) for k in KEYS)
    with pytest.raises(ValueError, match="02.1"):
        check(2.1, None)


def test_unknown_context_raises_naming_what_is_accepted():
    with pytest.raises(TypeError, match="bogus"):
        check("02.1", None, bogus=1)
    with pytest.raises(TypeError, match=r"\['a', 'b'\]"):
        check("01.2", None, c=1)


def test_list_exercises_by_lesson():
    assert [e.key for e in list_exercises(2)] == [e.key for e in list_exercises("02")]
    assert all(e.key.startswith("02.") for e in list_exercises(2))
    assert sum(len(list_exercises(int(nn))) for nn in NOTEBOOKS) == len(KEYS)
    for bad in (0, 11, "x", True, 2.5):
        with pytest.raises(ValueError, match="lesson"):
            list_exercises(bad)


def test_result_is_truthy_only_when_passed():
    assert CheckResult("02.1", True, True, [])
    assert not CheckResult("02.1", False, True, [])
    assert not CheckResult("02.1", False, False, [])
    assert "not attempted" in repr(CheckResult("02.1", False, False, []))


def test_close_reports_expected_got_worst_error_and_case():
    ex = list_exercises(2)[0]
    r = _Report(ex)
    assert r.close("value", [1.0, 2.0], [1.0, 2.0 + 1e-12], ["case A", "case B"])
    assert r.lines[-1][0] and "worst error 1.0e-12 at case B" in r.lines[-1][1]
    with pytest.raises(_Stop):
        r.close(
            "value",
            [np.array([1.0, 5.0]), np.array([0.0, 0.0])],
            [np.array([1.0, 4.0]), np.zeros(2)],
            ["case A", "case B"],
            hint="a hint",
        )
    good, msg = r.lines[-1]
    assert not good and msg == (
        "value off at case A, entry [1]: expected 4, got 5 (error 1.00e+00 > tolerance 4.0e-07)"
    )
    assert r.hint == "a hint"
    with pytest.raises(_Stop):  # NaN must match NaN, nothing else
        r.close("iou", [np.array([0.5, 0.0])], [np.array([0.5, np.nan])], ["case C"])
    assert "expected nan at entry [1], got 0" in r.lines[-1][1]
    with pytest.raises(_Stop):
        r.close("x", [np.zeros(3)], [np.zeros(2)], ["case D"])
    assert "expected shape (2,) at case D, got (3,)" in r.lines[-1][1]


# --------------------------------------------------------------------- wrong answers


def _fn(wrong):
    """A wrong function answer built from nothing but the learner's signature."""
    return lambda ans, ctx: (wrong(ans), ctx)


def _naive_log_sinkhorn(a, b, M, reg, n_iter):  # the textbook kernel: NaN at small reg
    K = torch.exp(-M / reg)
    v = torch.ones_like(b)
    for _ in range(n_iter):
        u = a / (K @ v)
        v = b / (K.T @ u)
    return (u[:, None] * K * v[None, :] * M).sum().item()


def _smooth_by_four(y, n, keep=0.9):  # every class as if it had four neighbours
    from wlearn.data.grid import grid_neighbors

    q = torch.zeros(len(y), n * n, dtype=torch.float64)
    for i, k in enumerate(y.tolist()):
        q[i, k] = keep
        q[i, grid_neighbors(n)[k]] += (1 - keep) / 4
    return q


def _jin_rank(D, mu, p):  # bjin96/emd's variant of Hou's rank transform (lesson 07)
    K = D.shape[0]
    r = D.argsort(1).argsort(1).double() / (K - 1)
    return ((r + r.T) / 2) ** p + mu


WRONG = {  # key: (answer, context) -> wrong (answer, context), text of the OFF line
    "01.1": (_fn(lambda f: lambda s: float(s)), "W_2^2 against ot.emd off at shift s=2"),
    "01.2": (lambda ans, ctx: ((ans[0], ans[0]), ctx), "T1 and T2 are the same plan"),
    "01.5": (
        lambda ans, ctx: ((ans[0], lambda s, j, D: float(s @ D[j, :])), ctx),
        "one_hot_cost against ot.emd off",
    ),
    "02.1": (  # one iteration too many: not the smallest count
        lambda ans, ctx: ((ans[0], lambda a, b, M, reg, tol: ans[1](a, b, M, reg, tol) + 1), ctx),
        "iterations_needed off at K=20, reg=0.1, tol=1e-06: expected 38, got 39 (not the smallest)",
    ),
    "02.3": (_fn(lambda f: lambda f_, g_, c: (f_, g_)), "plan exp((f_c + g_c - (M + c)) / reg)"),
    "02.4": (_fn(lambda f: _naive_log_sinkhorn), "not finite"),
    "03.1": (
        _fn(lambda f: lambda h, y, M, reg, reg_m: f(h, y, M, reg, (reg_m[0], reg_m[0]))),
        "plan against wlearn.ot.unbalanced_sinkhorn off at reg=0.1, reg_m=(0.5, 5.0)",
    ),
    "03.2": (
        _fn(lambda f: lambda y, reg, reg_m: float(np.sqrt(2))),
        "plan mass against wlearn.ot.unbalanced_sinkhorn(2y, y, 0, ...) off",
    ),
    "03.4": (_fn(lambda f: lambda M, h, y, reg: M + reg), "POT's plan with your M2"),
    "04.1": (lambda ans, ctx: (line(10, 1), ctx), "nearest digit to 4 should be 9"),
    "04.3": (
        _fn(lambda f: lambda M, k, reg: torch.softmax(-M[k, :] / reg, 0)),
        "off at random asymmetric M",
    ),
    "05.2": (
        _fn(lambda f: lambda h, y, n: (h * grid(n)[:, y].T).sum(1)),  # scaled distances
        "expected distance against wlearn.ot.emd",
    ),
    "05.3": (_fn(lambda f: _smooth_by_four), "rows at n=3, keep=0.9 sum to"),
    "06.6": (
        _fn(lambda f: lambda S, Y, D, k: f(-S, Y, D, k)),  # the lowest scores
        "C_n against wlearn.metrics.top_k_cost off",
    ),
    "06.7": (
        _fn(lambda f: lambda t, z: (torch.xlogy(t, t) - t * z).sum(1)),  # no mass terms
        "KL~ against wlearn.losses.multilabel_kl",
    ),
    "07.1": (_fn(lambda f: lambda z, D: f(z, D.T)), "decoded classes at random asymmetric D"),
    "07.2": (
        _fn(lambda f: lambda z, t: -torch.log_softmax(z, 1).gather(1, t[:, None])[:, 0]),
        "loss against one_hot_wasserstein(logits, t, ground.step(line(C, 1))) off",
    ),
    "07.3": (
        _fn(lambda f: _jin_rank),  # the other public source's ranks 0..K-1 over K-1, plus mu
        "M against wlearn.losses.rank_transform off",
    ),
    "07.4": (
        _fn(lambda f: lambda s, q: (s.cumsum(1) - q.cumsum(1)).abs().sum(1)),  # that is W_1
        "EMD^2 against wlearn.losses.SquaredEMDLoss off",
    ),
    "08.2": (
        _fn(lambda f: lambda z, t, D: f(z, t, D.T)),  # importance read from a row
        "loss against one_hot_wasserstein(logits, k_star, D_imp) off",
    ),
    "08.4": (_fn(lambda f: lambda conf, D: f(conf, D.T)), "off at random asymmetric D"),
    "09.3": (lambda ans, ctx: (0.5, ctx), "with tau = 0.5, H_tau(d) != d^2"),
    "09.4": (_fn(lambda f: lambda conf: f(conf).nan_to_num(0.0)), "expected nan at entry"),
    "10.1": (
        _fn(lambda f: lambda p, lam, alpha: f(p, lam, 1.0)),  # alpha left out
        "keep against lrent_pseudo_labels off at C=5",
    ),
    "10.2": (
        _fn(lambda f: lambda z, t, D: f(z, t, D.T)),
        "closed form against SoftWassersteinLoss on one-hot targets off",
    ),
}


def test_every_exercise_has_a_wrong_answer_test():
    assert set(WRONG) == set(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_wrong_answer_fails_naming_what_is_off(key):
    run = _run(key)
    make, text = WRONG[key]
    answer, context = make(run["answer"], run["context"])
    res, out = _quiet(check, key, answer, **context)
    assert not res and res.attempted, out
    off = " | ".join(_off_lines(res))
    assert text in off, out
    assert "hint:" in out and "=> not yet" in out


def test_a_larger_tau_works_but_is_not_the_smallest():
    res, out = _quiet(check, "09.3", 2.0)
    assert not res and "huber(D, 2) == D ** 2 on severity_matrix()" in out
    assert "a smaller tau does too" in out


def test_numbers_in_the_report_are_the_references():
    """The OFF line quotes the reference of the worst case: here W_2^2 = s^2 at shift s."""
    res, _ = _quiet(check, "01.1", lambda s: 0.0)
    off = _off_lines(res)[0]
    expected = float(re.search(r"expected ([\d.e+-]+), got 0", off).group(1))
    shift = int(re.search(r"shift s=(\d+)", off).group(1))
    assert shift == 20 and expected == pytest.approx(shift**2)


def test_a_nan_mismatch_gets_the_exercise_hint_about_nan():
    res, out = _quiet(check, "09.4", lambda conf: torch.zeros(conf.shape[0], dtype=torch.float64))
    assert not res and "expected nan at entry" in out and "return NaN there" in out
