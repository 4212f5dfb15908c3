"""Input validation shared by the solvers and the losses.

Every error names the argument, what was expected and what was received, and ends with how to
fix it. The fix depends on what the argument is, and the project names its arguments the same
way everywhere (``input``, ``target``, ``a``, ``b``, ``M``, ``D``, ``reg``...), so the fixes
are looked up by name in :data:`FIXES`; a caller can pass its own with ``fix=``.

Used by :mod:`wlearn.ot` and :mod:`wlearn.losses`; see notebooks/01_optimal_transport.ipynb.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np
import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

_SOFTMAX = "if these are logits, apply torch.softmax(logits, dim=1) first"
_GROUND = (
    "a ground cost is a non-negative (K, K) distance matrix, one row per predicted class and "
    "one column per true class: build it with wlearn.ground (line, grid, euclidean, "
    "severity_matrix)"
)
_MEASURE = "a and b are measures: non-negative weights such as histograms or softmax outputs"
_NAN = "look for NaN/inf in the data, or a model that diverged (lower lr)"
_REG = (
    "the entropic regularization must be > 0: try reg = 0.1 * M.max() (smaller is closer to "
    "exact transport but needs more iterations; wlearn.ot.emd solves the exact problem)"
)

FIXES: dict[tuple[str, str], str] = {
    ("input", "nonnegative"): _SOFTMAX + " (torch.exp(logits) for an unnormalized measure)",
    ("input", "simplex"): _SOFTMAX + " (wlearn.train.fit does it with output='proba')",
    ("target", "nonnegative"): "targets are measures (0/1 tags, counts or probabilities), "
    "never negative",
    ("target", "simplex"): "divide each row by its sum (target / target.sum(1, keepdim=True)); "
    "for class indices use torch.nn.functional.one_hot(y, K).float()",
    ("M", "nonnegative"): _GROUND,
    ("M", "square"): _GROUND,
    ("D", "nonnegative"): _GROUND,
    ("D", "square"): _GROUND,
    ("a", "nonnegative"): _MEASURE,
    ("b", "nonnegative"): _MEASURE,
    ("a", "simplex"): "divide a by its sum (a / a.sum(-1, keepdim=True))",
    ("b", "simplex"): "divide b by its sum (b / b.sum(-1, keepdim=True))",
    ("a", "shape"): "give a one bin per row of M: shape (K,) or a batch (B, K) with K = M.shape[0]",
    ("b", "shape"): "give b one bin per column of M: shape (K,) or a batch (B, K) with "
    "K = M.shape[1]",
    ("reg", "positive"): _REG,
    ("reg_m", "positive"): "the marginal relaxation gamma must be > 0: larger values keep the "
    "plan's marginals closer to a and b",
    ("tol", "positive"): "use a small positive tolerance such as 1e-6",
    ("tol", "nonnegative"): "use a small tolerance such as 1e-6 (0 stops at the precision floor "
    "of the compute dtype)",
    ("max_iter", "count"): "pass a whole number of iterations >= 1, e.g. max_iter=1000",
    ("any", "finite"): _NAN,
    ("any", "nonnegative"): "pass non-negative values",
    ("any", "positive"): "pass a finite number > 0",
    ("any", "simplex"): "divide each row by its sum",
    ("any", "square"): "pass a square (K, K) matrix",
    ("any", "shape"): "pass one entry per class of M",
    ("any", "type"): "convert it with torch.as_tensor(x)",
    ("any", "real"): "pass real numbers: take x.real or x.abs() of a complex tensor, and convert "
    "text with float(x)",
    ("any", "count"): "pass a whole number >= 1",
}
"""How to fix each kind of failed check, by argument name (``"any"``: every other name)."""


def fix_for(name: str, kind: str) -> str:
    """The fix text of :data:`FIXES` for argument ``name`` and check ``kind``.

    Parameters
    ----------
    name : str
        Argument name as the error shows it; an index suffix is ignored (``"reg_m[0]"``).
    kind : {"finite", "nonnegative", "positive", "simplex", "square", "shape", "type", "real", \
"count"}
        Which check failed.

    Returns
    -------
    str
        The fix for ``name``, else the generic fix of ``kind``.

    See notebooks/01_optimal_transport.ipynb for the solvers whose errors use it.
    """
    base = name.split("[")[0]
    return FIXES.get((base, kind)) or FIXES[("any", kind)]


def _with_fix(msg: str, name: str, kind: str, fix: str | None) -> str:
    return f"{msg}; {fix if fix is not None else fix_for(name, kind)}"


def _real_tensor(x, name: str) -> torch.Tensor:
    """``x`` as a tensor of its own dtype (NumPy's for arrays, lists and numbers), refusing
    complex, text and object values with a TypeError naming ``name``."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (np.ndarray, np.generic, list, tuple, numbers.Number)):
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as e:  # ragged lists
            raise TypeError(
                _with_fix(
                    f"{name}: expected numbers, got {type(x).__name__} ({e})", name, "type", None
                )
            ) from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                _with_fix(
                    f"{name}: expected real numbers, got dtype {arr.dtype}", name, "real", None
                )
            )
        t = torch.as_tensor(np.ascontiguousarray(arr))  # negative strides: copied
    else:
        raise TypeError(
            _with_fix(
                f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}",
                name,
                "type",
                None,
            )
        )
    if t.is_complex():
        raise TypeError(
            _with_fix(f"{name}: expected real numbers, got dtype {t.dtype}", name, "real", None)
        )
    return t


def as_tensor(x, name: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Convert ``x`` (tensor, array, list or number) to a floating tensor.

    NumPy arrays and lists become float64 tensors, integer and bool tensors the default float
    dtype; with ``like``, the result is moved and cast to ``like``'s device and dtype (so a
    ground matrix follows its input, whatever the device). Several arguments that must share
    one dtype are converted together by :func:`as_float_tensors`.

    Parameters
    ----------
    x : torch.Tensor, numpy.ndarray, list, tuple or number, any shape
        The value to convert.
    name : str
        Argument name used in the error message.
    like : torch.Tensor, optional, any shape
        Reference for the device and dtype (floating).

    Returns
    -------
    torch.Tensor, the shape of ``x``
        Floating.

    Raises
    ------
    TypeError
        When ``x`` is none of the above, or complex, text or objects; the message says how to
        convert it.

    Used by :mod:`wlearn.ot` (notebooks/01_optimal_transport.ipynb).
    """
    from_torch = isinstance(x, torch.Tensor)
    t = _real_tensor(x, name)
    if not from_torch and t.dtype != torch.float64:
        t = t.to(torch.float64)
    if like is not None:
        dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
        return t.to(device=like.device, dtype=dtype)
    if t.dtype not in FLOAT_DTYPES:
        t = t.to(torch.get_default_dtype())
    return t


def as_float_tensors(
    *, lead: tuple[str, ...] = (), **values
) -> tuple[list[torch.Tensor], torch.dtype, torch.device]:
    """Convert several arguments to tensors of one floating dtype on one device.

    The dtype is decided by the first of these that exists: the floating torch tensors among
    the ``lead`` arguments (the measures ``a``, ``b``: a float64 ground matrix follows float32
    measures), the floating NumPy arrays among them (a float32 array stays float32; lists of
    floats count as float64), then the same two for the other arguments; the promoted dtype
    (``torch.promote_types``) when there are several. Integer and bool values never decide it
    and are promoted, never truncated: all-integer tensors give the default float dtype (as
    ``torch.div`` does), all-integer arrays and lists float64. The device is that of the
    first tensor (CPU without one). So ``emd(torch.tensor([0, 1]), torch.tensor([1., 0.]),
    [[0, .9], [.9, 0]])`` computes in float32 and keeps ``M``'s 0.9.

    Parameters
    ----------
    lead : tuple of str
        Names of the arguments whose dtype decides first.
    **values : torch.Tensor, numpy.ndarray, list or number, any shape
        The arguments by name (``a=a, b=b, M=M``), in order.

    Returns
    -------
    tensors : list of torch.Tensor, the shapes of ``values``
        In the order given.
    dtype : torch.dtype
        The common floating dtype.
    device : torch.device

    Raises
    ------
    TypeError
        Naming the argument, for complex, text or object values.

    Used by :mod:`wlearn.ot` (notebooks/01_optimal_transport.ipynb).
    """
    conv = {
        name: (_real_tensor(x, name), isinstance(x, torch.Tensor)) for name, x in values.items()
    }
    tiers = []
    for names in (lead, tuple(n for n in conv if n not in lead)):
        for from_torch in (True, False):
            tiers.append(
                [
                    conv[n][0].dtype
                    for n in names
                    if n in conv and conv[n][1] == from_torch and conv[n][0].is_floating_point()
                ]
            )
    found = next((t for t in tiers if t), None)
    if found is not None:
        dtype = functools.reduce(torch.promote_types, found)
    elif any(is_t for _, is_t in conv.values()):
        dtype = torch.get_default_dtype()
    else:
        dtype = torch.float64
    device = next((t.device for t, is_t in conv.values() if is_t), torch.device("cpu"))
    return [t.to(device=device, dtype=dtype) for t, _ in conv.values()], dtype, device


def check_finite(t: torch.Tensor, name: str, *, fix: str | None = None) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or inf.

    Parameters
    ----------
    t : torch.Tensor, any shape
        Values to check.
    name : str
        Argument name used in the error message.
    fix : str, optional
        How to fix it (default: :func:`fix_for` ``(name, "finite")``).

    See notebooks/01_optimal_transport.ipynb.
    """
    if t.is_complex():
        raise TypeError(
            _with_fix(f"{name}: expected real numbers, got dtype {t.dtype}", name, "real", None)
        )
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).sum().item()
        raise ValueError(
            _with_fix(
                f"{name}: expected finite values, got {bad} NaN/inf entries", name, "finite", fix
            )
        )


def check_nonnegative(t: torch.Tensor, name: str, *, fix: str | None = None) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN, inf or a negative entry.

    Parameters
    ----------
    t : torch.Tensor, any shape
        Values to check.
    name : str
        Argument name used in the error message.
    fix : str, optional
        How to fix a negative entry (default: :func:`fix_for` ``(name, "nonnegative")``;
        for ``input``: apply a softmax to the logits).

    See notebooks/01_optimal_transport.ipynb.
    """
    check_finite(t, name)
    if (t < 0).any():
        raise ValueError(
            _with_fix(
                f"{name}: expected non-negative values, got minimum {t.min().item():.3g}",
                name,
                "nonnegative",
                fix,
            )
        )


def _real_scalar(x, name: str, expected: str, kind: str, fix: str | None) -> float:
    """``x`` as a float if it is a real number (Python, NumPy, or a one-element array or
    tensor), not a bool or text; a TypeError naming ``name`` otherwise."""
    ok = isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))
    if isinstance(x, torch.Tensor):
        ok = x.numel() == 1 and not (x.is_complex() or x.dtype == torch.bool)
    elif isinstance(x, np.ndarray):
        ok = x.size == 1 and x.dtype.kind in "iuf"
    if not ok:
        raise TypeError(_with_fix(f"{name}: expected {expected}, got {x!r}", name, kind, fix))
    return float(x.item() if isinstance(x, (np.ndarray, torch.Tensor)) else x)


def check_positive_scalar(x, name: str, *, fix: str | None = None) -> float:
    """Return ``x`` as a float, raising unless it is a finite number > 0.

    Parameters
    ----------
    x : float
        The number (``reg``, ``reg_m``, ``tol``, ``p``, ``tau``...): a Python or NumPy real
        number or a one-element tensor; bools and text are refused.
    name : str
        Argument name used in the error message.
    fix : str, optional
        How to fix it (default: :func:`fix_for` ``(name, "positive")``).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        When ``x`` is not a real number (``"0.1"``, ``True``, ``1j``).
    ValueError
        When it is not finite or not > 0.

    See notebooks/02_sinkhorn.ipynb (``reg``) and 03_unbalanced_relaxation.ipynb (``reg_m``).
    """
    v = _real_scalar(x, name, "a positive number", "positive", fix)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(
            _with_fix(f"{name}: expected a finite number > 0, got {x!r}", name, "positive", fix)
        )
    return v


def check_nonnegative_scalar(x, name: str, *, fix: str | None = None) -> float:
    """Return ``x`` as a float, raising unless it is a finite number >= 0 (a tolerance).

    Parameters
    ----------
    x : float
        The number: a Python or NumPy real number or a one-element tensor.
    name : str
        Argument name used in the error message.
    fix : str, optional
        How to fix it (default: :func:`fix_for` ``(name, "nonnegative")``).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        When ``x`` is not a real number.
    ValueError
        When it is NaN, infinite or negative.

    See notebooks/02_sinkhorn.ipynb (``tol``).
    """
    v = _real_scalar(x, name, "a number >= 0", "nonnegative", fix)
    if not np.isfinite(v) or v < 0:
        raise ValueError(
            _with_fix(f"{name}: expected a finite number >= 0, got {x!r}", name, "nonnegative", fix)
        )
    return v


def check_count(x, name: str, *, fix: str | None = None) -> int:
    """Return ``x`` as an int, raising unless it is a whole number >= 1 (``max_iter``,
    ``batch_size``, ``n_epochs``).

    Parameters
    ----------
    x : int
        A Python or NumPy integer (``np.int64`` too); bools, floats and text are refused.
    name : str
        Argument name used in the error message.
    fix : str, optional
        How to fix it (default: :func:`fix_for` ``(name, "count")``).

    Returns
    -------
    int

    Raises
    ------
    TypeError
        When ``x`` is not an integer (``2.5``, ``True``, ``"10"``).
    ValueError
        When it is < 1.

    See notebooks/02_sinkhorn.ipynb (``max_iter``).
    """
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(
            _with_fix(f"{name}: expected an integer >= 1, got {x!r}", name, "count", fix)
        )
    if x < 1:
        raise ValueError(
            _with_fix(f"{name}: expected an integer >= 1, got {x!r}", name, "count", fix)
        )
    return int(x)


def check_cost_matrix(M: torch.Tensor, name: str = "M") -> None:
    """Raise ``ValueError`` unless ``M`` is a square, finite, non-negative 2-D matrix.

    Parameters
    ----------
    M : torch.Tensor, shape (K, K)
        Ground cost.
    name : str
        Argument name used in the error message (``"M"`` or ``"D"``).

    See notebooks/01_optimal_transport.ipynb.
    """
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(
            _with_fix(
                f"{name}: expected a square (K, K) matrix with K >= 1, got shape {tuple(M.shape)}",
                name,
                "square",
                None,
            )
        )
    check_nonnegative(M, name)


def check_histograms(t: torch.Tensor, name: str, K: int) -> None:
    """Raise ``ValueError`` unless ``t`` has shape ``(K,)`` or ``(B, K)`` and non-negative
    finite entries.

    Parameters
    ----------
    t : torch.Tensor, shape (K,) or (B, K)
        One measure or a batch of them.
    name : str
        Argument name used in the error message (``"a"`` or ``"b"``).
    K : int
        Number of bins: the size of the ground matrix.

    See notebooks/01_optimal_transport.ipynb.
    """
    if t.ndim not in (1, 2) or t.shape[-1] != K:
        raise ValueError(
            _with_fix(
                f"{name}: expected shape ({K},) or (B, {K}) to match M of shape ({K}, {K}), "
                f"got {tuple(t.shape)}",
                name,
                "shape",
                None,
            )
        )
    check_nonnegative(t, name)


def check_simplex(
    t: torch.Tensor, name: str, atol: float | None = None, *, fix: str | None = None
) -> None:
    """Raise ``ValueError`` unless every row of ``t`` is non-negative and sums to one.

    Parameters
    ----------
    t : torch.Tensor, shape (..., K)
        Rows along the last axis.
    name : str
        Argument name used in the error message.
    atol : float, optional
        Tolerance on the row sums (default 1e-3 for float16/bfloat16/float32, 1e-6 for
        float64).
    fix : str, optional
        How to fix it (default: :func:`fix_for` ``(name, "simplex")``; for ``input``: apply a
        softmax to the logits).

    See notebooks/02_sinkhorn.ipynb (the Sinkhorn loss compares histograms).
    """
    check_nonnegative(t, name, fix=fix)
    if atol is None:
        atol = 1e-3 if t.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-6
    if t.numel() == 0:
        return
    s = t.sum(-1)
    err = (s - 1).abs().max().item()
    if err > atol:
        raise ValueError(
            _with_fix(
                f"{name}: expected rows on the probability simplex (sum 1 within {atol:g}), "
                f"got row sums off by up to {err:.3g}",
                name,
                "simplex",
                fix,
            )
        )
