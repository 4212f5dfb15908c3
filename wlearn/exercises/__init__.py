"""Self-checking exercises: ``check(key, answer)`` says what is right and what is off.

Every lesson ends with exercises; those marked *self-check* in its list have a code cell
(tagged ``exercise``) with a stub and a ``check`` call, followed by a hidden solution cell
(tagged ``solution``, shown in the instructor build)::

    from wlearn.exercises import check

    def my_sinkhorn_fixed_iters(a, b, M, reg, n_iter):
        ...  # your code here

    check("02.1", my_sinkhorn_fixed_iters)   # "not attempted yet" until you fill it in

Keys are ``"NN.k"``: exercise ``k`` of lesson ``NN``. :func:`check` runs the answer (a value,
an array or tensor, a tuple, or a function) on several cases against a reference computed on
the spot with ``wlearn``, POT or a closed form, prints a short report (what is right, what is
off with expected vs got, the worst error and its case, and a hint) and returns a
:class:`CheckResult`, truthy only when everything passed. :func:`list_exercises` lists them.

Introduced in notebooks/01_optimal_transport.ipynb; used at the end of every lesson.
"""

from wlearn.exercises import (  # noqa: F401 (importing them registers the exercises)
    _classification,
    _ordinal,
    _relaxed,
    _segmentation,
    _transport,
)
from wlearn.exercises._core import CheckResult, Exercise, check, list_exercises

__all__ = ["CheckResult", "Exercise", "check", "list_exercises"]
