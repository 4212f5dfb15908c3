"""The machinery of the self-checks: registry, report, comparisons. Lessons live next door.

A checker is a private function ``run(r, answer, **context)`` registered with
:func:`_register`. It calls the learner's code through ``r.call`` (which turns a stub into
"not attempted yet" and any other exception into a failed check), converts what comes back with
``r.array`` and records what is right and what is off with ``r.ok``, ``r.off`` and
``r.close``. A fatal ``off`` stops the checker; the report lists what passed before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

_REGISTRY: dict[str, Exercise] = {}


@dataclass(frozen=True)
class Exercise:
    """One checkable exercise of a lesson.

    Attributes
    ----------
    key : str
        ``"NN.k"``: exercise ``k`` of the list at the end of ``notebooks/NN_*.ipynb``.
    title : str
        What the exercise asks for, in a line.
    answer : str
        What to pass to :func:`check`: a value, a tuple or a function, with its shapes.
    hints : tuple of str
        The first is printed for an unanswered stub, the others with specific mistakes.
    context : tuple of str
        Names of the keyword arguments :func:`check` accepts for this exercise.
    runner : callable
        The checker, ``runner(report, answer, **context)``; called by :func:`check` only.

    Introduced in notebooks/01_optimal_transport.ipynb (its self-checked exercises).
    """

    key: str
    title: str
    answer: str
    hints: tuple[str, ...]
    context: tuple[str, ...] = ()
    runner: Callable = field(default=None, repr=False, compare=False)

    @property
    def lesson(self) -> int:
        """The lesson number ``NN`` of the key (an int, e.g. 2 for ``"02.1"``)."""
        return int(self.key[:2])


@dataclass
class CheckResult:
    """What :func:`check` returns: truthy only when every check passed.

    Attributes
    ----------
    key : str
        The exercise checked.
    passed : bool
        Every check passed (so ``assert check(...)`` holds).
    attempted : bool
        False for an unanswered stub (``None``, ``...``, a function that returns ``None`` or
        raises ``NotImplementedError``).
    messages : list of str
        The lines of the printed report: what is right, what is off, the hint.

    Introduced in notebooks/01_optimal_transport.ipynb (its self-checked exercises).
    """

    key: str
    passed: bool
    attempted: bool
    messages: list[str]

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        state = "passed" if self.passed else ("off" if self.attempted else "not attempted")
        return f"<check {self.key}: {state}>"


def _register(key: str, title: str, answer: str, hints, context=()):
    """Decorator: register ``run(r, answer, **context)`` as the checker of ``key``."""

    def deco(run):
        if key in _REGISTRY:
            raise ValueError(f"key: exercise {key!r} is registered twice")
        _REGISTRY[key] = Exercise(key, title, answer, tuple(hints), tuple(context), run)
        return run

    return deco


class _Stop(Exception):
    """A fatal check failed: stop the checker, report what passed before."""


class _NotAttempted(Exception):
    """The answer is still a stub."""


def _is_stub(x) -> bool:
    return x is None or x is Ellipsis


def _fmt(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{x:.6g}"
    return str(x)


class _Report:
    """Collects the lines of one check. ``r.ok(...)``, ``r.off(...)``, ``r.close(...)``."""

    def __init__(self, ex: Exercise):
        self.ex = ex
        self.lines: list[tuple[bool, str]] = []
        self.hint: str | None = None
        self.calls = 0

    # -- recording ------------------------------------------------------------------------
    def ok(self, msg: str) -> None:
        self.lines.append((True, msg))

    def off(self, msg: str, hint: str | None = None, *, fatal: bool = True) -> None:
        self.lines.append((False, msg))
        if self.hint is None:
            self.hint = hint if hint is not None else self.ex.hints[0]
        if fatal:
            raise _Stop

    def expect(
        self, cond, ok_msg: str, off_msg: str, hint: str | None = None, *, fatal: bool = False
    ) -> bool:
        """Record ``ok_msg`` if ``cond`` holds, else ``off_msg`` (fatal or not)."""
        if cond:
            self.ok(ok_msg)
        else:
            self.off(off_msg, hint, fatal=fatal)
        return bool(cond)

    # -- calling the learner's code -------------------------------------------------------
    def call(self, fn, *args, case: str = ""):
        """``fn(*args)``: a stub (``NotImplementedError``, ``None`` or ``...`` on the first
        call) is "not attempted"; any other exception or a later ``None`` is a fatal off."""
        if not callable(fn):
            self.off(
                f"expected a function, got {type(fn).__name__}",
                "define the function with `def` and pass its name, without calling it",
            )
        try:
            out = fn(*args)
        except NotImplementedError:
            if self.calls == 0:
                raise _NotAttempted from None
            self.off(f"your function raised NotImplementedError at {case}")
        except Exception as e:  # the learner's bug: report it, never raise
            self.off(f"your function raised {type(e).__name__}: {e} (at {case})")
        if _is_stub(out):
            if self.calls == 0:
                raise _NotAttempted
            self.off(f"your function returned {out!r} at {case}", "did you forget `return`?")
        self.calls += 1
        return out

    def array(self, x, what: str, case: str = "", *, shape=None) -> np.ndarray:
        """``x`` (number, list, NumPy array or tensor) as a float64 array; fatal off if it is
        not one, or if its shape differs from ``shape`` (a tuple, when given)."""
        if isinstance(x, torch.Tensor):
            a = x.detach().cpu().double().numpy()
        else:
            try:
                a = np.asarray(x, dtype=np.float64)
            except (TypeError, ValueError):
                self.off(
                    f"{what}: expected a number, array or tensor at {case}, got {type(x).__name__}"
                )
        if shape is not None and a.shape != tuple(shape):
            self.off(
                f"{what}: expected shape {tuple(shape)} at {case}, got {a.shape}",
                "check the shape the exercise asks for (batch first, then classes)",
            )
        return a

    def close(
        self,
        what: str,
        got: list,
        expected: list,
        cases: list[str],
        *,
        atol: float = 1e-9,
        rtol: float = 1e-7,
        hint: str | None = None,
        nan_hint: str | None = None,
    ) -> bool:
        """Compare ``got[c]`` with ``expected[c]`` for every case ``c`` (arrays of the same
        shape; NaN must match NaN, ``nan_hint`` says why when it does not); record one ok line
        with the worst error, or a fatal off line with expected vs got at the worst entry."""
        worst = (-1.0, 0.0, None, None)  # (error / tolerance, error, case index, entry)
        for c, (g, e) in enumerate(zip(got, expected, strict=True)):
            g = self.array(g, what, cases[c], shape=np.shape(e))
            e = np.asarray(e, dtype=np.float64)
            nan_e = np.isnan(e)
            bad = (nan_e != np.isnan(g)) | np.isinf(g)
            if bad.any():
                idx = np.unravel_index(np.argmax(bad), e.shape)
                self.off(
                    f"{what} off at {cases[c]}: expected {_fmt(e[idx])} at entry {_idx(idx)}, "
                    f"got {_fmt(g[idx])}",
                    nan_hint
                    or "NaN or inf where the reference has a number (or the reverse): "
                    "look for 0 log 0, 0 / 0 or log 0",
                )
            err = np.where(nan_e, 0.0, np.abs(g - e))
            tol = atol + rtol * np.abs(np.where(nan_e, 0.0, e))
            ratio = err / tol
            if ratio.size and ratio.max() > worst[0]:
                k = np.unravel_index(np.argmax(ratio), ratio.shape)
                worst = (float(ratio[k]), float(err[k]), c, (k, float(e[k]), float(g[k])))
        if worst[2] is None:
            return True
        c, (k, e_k, g_k) = worst[2], worst[3]
        where = f"{cases[c]}" + (f", entry {_idx(k)}" if len(k) else "")
        if worst[0] <= 1:
            self.ok(
                f"{what} ok on {len(cases)} case{'s' * (len(cases) > 1)} "
                f"(worst error {worst[1]:.1e} at {where})"
            )
            return True
        self.off(
            f"{what} off at {where}: expected {_fmt(e_k)}, got {_fmt(g_k)} (error "
            f"{worst[1]:.2e} > tolerance {atol + rtol * abs(e_k):.1e})",
            hint,
        )
        return False

    # -- output ---------------------------------------------------------------------------
    def result(self, attempted: bool) -> CheckResult:
        ex = self.ex
        head = f"Exercise {ex.key}: {ex.title}"
        if not attempted:
            msgs = [f"{head}: not attempted yet.", f"  hint: {ex.hints[0]}"]
            return CheckResult(ex.key, False, False, msgs)
        n_off = sum(not good for good, _ in self.lines)
        msgs = [head] + [f"  {'ok ' if good else 'OFF'}  {m}" for good, m in self.lines]
        if n_off:
            msgs.append(f"  hint: {self.hint}")
            msgs.append(f"=> not yet: {n_off} check{'s' * (n_off > 1)} off.")
        else:
            n = len(self.lines)
            msgs.append("=> passed." if n == 1 else f"=> passed: all {n} checks ok.")
        return CheckResult(ex.key, n_off == 0 and bool(self.lines), True, msgs)


def _idx(k) -> str:
    return "[" + ", ".join(str(int(i)) for i in k) + "]"


def _get(key) -> Exercise:
    if not isinstance(key, str) or key not in _REGISTRY:
        raise ValueError(
            f"key: expected one of the registered exercises {sorted(_REGISTRY)}, "
            f"got {key!r}; see wlearn.exercises.list_exercises()"
        )
    return _REGISTRY[key]


def check(key: str, answer=None, **context) -> CheckResult:
    """Check a learner's answer to exercise ``key`` against a reference, on several cases.

    Prints a short report: what is right ("shape (K, K) ok", "marginals ok"), what is off
    (expected against got, the worst error and the case where it happens) and a hint. An
    unanswered stub (``None``, ``...``, or a function that returns ``None`` or raises
    ``NotImplementedError``) prints "not attempted yet" and the first hint. It never raises
    because of the answer: a learner's exception is reported as a failed check. References
    are computed when the check runs, with ``wlearn``, POT or a closed form.

    Parameters
    ----------
    key : str
        ``"NN.k"``, exercise ``k`` of lesson ``NN``; :func:`list_exercises` lists them.
    answer : any
        What the exercise asks for (see ``Exercise.answer``): a number, an array or tensor of
        the shape the exercise states, a tuple of those, or a function.
    **context
        Further named parts of the answer some exercises take (``Exercise.context``), e.g.
        the histograms ``a=..., b=...`` of exercise ``"01.2"``.

    Returns
    -------
    CheckResult
        Truthy only when every check passed, so that a solution cell can
        ``assert check(key, answer)``; ``.messages`` holds the printed lines.

    Raises
    ------
    ValueError
        If ``key`` is not a registered exercise (the message lists the valid keys).
    TypeError
        If ``context`` names an argument the exercise does not take.

    Introduced in notebooks/01_optimal_transport.ipynb; every lesson ends with such checks.
    """
    ex = _get(key)
    extra = sorted(set(context) - set(ex.context))
    if extra:
        raise TypeError(
            f"check({key!r}): unexpected keyword argument(s) {extra}; this exercise "
            f"takes {list(ex.context) or 'none'}"
        )
    r = _Report(ex)
    parts = [answer, *answer] if isinstance(answer, tuple) else [answer]
    parts += [context.get(name) for name in ex.context]
    attempted = not any(_is_stub(p) for p in parts)
    if attempted:
        try:
            ex.runner(r, answer, **{k: context.get(k) for k in ex.context})
        except _NotAttempted:
            attempted = False
        except _Stop:
            pass
        except Exception as e:  # an answer of a kind the checker did not foresee
            r.lines.append((False, f"could not check this answer: {type(e).__name__}: {e}"))
            r.hint = r.hint or ex.hints[0]
    res = r.result(attempted)
    print("\n".join(res.messages))
    return res


def list_exercises(lesson=None) -> list[Exercise]:
    """The registered exercises, in key order, of every lesson or of one.

    Parameters
    ----------
    lesson : int, str or None
        A lesson number (``2`` or ``"02"``); ``None`` lists every lesson.

    Returns
    -------
    list of Exercise
        Each with its ``key``, ``title``, ``answer`` (what to pass to :func:`check`) and
        ``hints``.

    Raises
    ------
    ValueError
        If ``lesson`` is not the number of a lesson with exercises.

    Introduced in notebooks/01_optimal_transport.ipynb; see also :func:`check`.
    """
    out = [_REGISTRY[k] for k in sorted(_REGISTRY)]
    if lesson is None:
        return out
    lessons = sorted({e.lesson for e in out})
    try:
        n = int(lesson)
    except (TypeError, ValueError):
        n = None
    if isinstance(lesson, bool) or n not in lessons or (isinstance(lesson, float) and lesson != n):
        raise ValueError(
            f"lesson: expected one of {lessons} (an int or a string like '02'), got {lesson!r}"
        )
    return [e for e in out if e.lesson == n]


def _rng(key: str) -> np.random.Generator:
    """The fixed generator of an exercise's cases (seeded by its key)."""
    return np.random.default_rng(int(key.replace(".", "")))


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _finite_number(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
