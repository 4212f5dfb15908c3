r"""Ground matrices learned from the network's own features, and the loss they enter.

Hou, Yu & Samaras 2016 (arXiv:1611.05916, Abstract) propose to learn the ground distance
matrix from the CNN's own features during training, with no prior on how the classes relate.
Only the abstract of the paper is in this course's library; **the rule implemented here is
taken, second-hand, from public code**, each source cited where it is used:

``liu-xiaofeng/OTM`` (GitHub)
    Files ``emd_loss.py``, ``OTM-EMD.py``, ``OTM-XE-EMD1.py``, ``OTM-XE-EMD2.py``, ``eval.py``:
    Theano/Lasagne code for the Adience age folds, uploaded in 2023 under another project's name
    (OTM; its README mentions a hierarchy tree), whose loss functions and variant names
    (XE-EMD1, XE-EMD2) appear to come from the authors' release (the project page,
    www3.cs.stonybrook.edu/~cvl/emd2.html, offers a code download). ``update_cost_matrix``:
    L1-normalise each training sample's penultimate features (the deterministic output of
    ``fc7``, averaged over the image and its mirror image), take each class's centroid over the
    whole training set, the Euclidean distances between centroids, replace each row by the
    percentile rank of its entries (``scipy.stats.percentileofscore(row, a, 'rank') / 100``, so
    ``1/K .. 1``) raised to the power ``omega`` (our ``p``, the course's power of a ground
    distance), symmetrise ``(M + M^T) / 2``, subtract ``mu`` and set the diagonal to 1.
    ``cost_matrix_loss``: ``(h - y)^2 * M[k*, :]``, averaged over the batch *and* the classes,
    added to cross-entropy (weights ``XenWei``, ``CmWei`` from a ``constants.py`` that is not
    in the repository). Training: 4 epochs of cross-entropy alone (learning rate 10^-2.5), then
    the combined loss (2 10^-3; Nesterov momentum 0.98 throughout); the matrix is recomputed
    after every epoch from the 4th on. ``OTM-EMD.py`` trains the squared EMD (``emd_l2``)
    alone from the first epoch; ``eval.py`` reports exact and 1-off accuracy. XE-EMD1:
    ``mu = 0.5, omega = 1``; XE-EMD2: ``mu = 0.25, omega = 2``.
``bjin96/emd`` (GitHub; ``loss_functions/emd.py``, ``run.py``)
    An independent TensorFlow re-implementation (2020-21, Adience). Same centroids of
    L1-normalised penultimate features, recomputed once per epoch (from the features of the
    training batches as they were computed during the epoch, not a separate pass); ranks
    ``0 .. K-1`` divided by ``K - 1`` (not ``1/K .. 1``), symmetrised, *then* raised to the
    power and **plus** the bias (``0.5`` or ``0.25``, the same numbers as ``mu``); the loss is
    ``sum_k h_k^2 M[k, k*]`` (``h^2``, not ``(h - y)^2``; the true class costs ``mu``, not 1),
    added to cross-entropy from the 5th epoch with the weight ``(mean CE / mean term over the
    4th epoch) / 3.5``.

Where they disagree (the sign of ``mu``, the rank scale, the order of power and
symmetrisation, the true class's cost, ``h^2`` against ``(h - y)^2``, the weights) we follow
``liu-xiaofeng/OTM``, the one that appears to come from the authors. Both are second-hand.

- :func:`class_centroids`, :func:`hou_ground_matrix` (the rule) and :class:`HouGroundMatrix`
  (it, recomputed once per epoch from the training set's features);
- :func:`cost_matrix_loss` / :class:`CostMatrixLoss`: ``sum_k (h_k - y_k)^2 M[k, k*]``;
- :class:`WarmupCombinedLoss`: cross-entropy alone for a few epochs, then
  ``CE + weight * term`` (how the sources combine them);
- :class:`LearnedGroundMatrix`: an older variant of this course (running means of raw
  features, squared distances over their maximum, fed to the linear one-hot loss), kept as a
  named variant: it is **not** Hou's rule.

Ground-matrix convention (project-wide): ``M[i, j]`` is the cost of predicting class ``i``
where the truth is ``j``; the learned matrices are symmetric.

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wlearn.losses._common import check_ignore_index as _check_ignore_index
from wlearn.losses._common import check_reduction as _check_reduction
from wlearn.losses.onehot import _check_class_target, _check_logits

__all__ = [
    "CostMatrixLoss",
    "HouGroundMatrix",
    "LearnedGroundMatrix",
    "WarmupCombinedLoss",
    "class_centroids",
    "cost_matrix_loss",
    "hou_ground_matrix",
    "rank_transform",
]


class LearnedGroundMatrix(nn.Module):
    r"""A ground matrix learned from the network's own features, with no prior on classes.

    Keeps a running mean feature vector ``c_k`` per class and sets

    .. math::

        D[i, j] = \frac{\|c_i - c_j\|^{p}}{\max_{a, b} \|c_a - c_b\|^{p}},

    squared distances (``p = 2``) by default, scaled so the largest entry is 1. Hou et al.
    2016 (Abstract) propose learning the ground matrix from the CNN's own features; the rule
    the public sources describe is :class:`HouGroundMatrix` (L1-normalised features, centroids
    over the training set once per epoch, row ranks, a loss quadratic in ``h``). This one
    differs in every step and is kept to compare with it. Update rule, for each class ``k``
    present in the batch with batch mean ``m_k``:

    - first time ``k`` is seen: ``c_k <- m_k``;
    - afterwards: ``c_k <- (1 - momentum) c_k + momentum m_k`` (exponential moving average).

    Until every class has been seen, ``D`` stays the 0-1 metric ``1 - I`` (no prior: all
    mistakes cost the same). ``D`` is symmetric with a zero diagonal. Use it with
    ``OneHotWassersteinLoss(learned)``, calling ``learned.update(features, target)`` each
    training step (features detached: no gradient flows into ``D``).

    Parameters
    ----------
    num_classes : int
        ``K``.
    num_features : int
        Feature dimension ``d``.
    momentum : float in (0, 1]
        Weight of the new batch mean.
    p : float > 0
        Exponent on the Euclidean distance between class means (2 = squared).

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(
        self, num_classes: int, num_features: int, *, momentum: float = 0.1, p: float = 2.0
    ):
        super().__init__()
        for name, v in (("num_classes", num_classes), ("num_features", num_features)):
            if (
                isinstance(v, bool)
                or not isinstance(v, int)
                or v < (2 if name == "num_classes" else 1)
            ):
                raise ValueError(
                    f"{name}: expected an integer >= {2 if name == 'num_classes' else 1}, got {v!r}"
                )
        if not 0 < float(momentum) <= 1:
            raise ValueError(f"momentum: expected a number in (0, 1], got {momentum!r}")
        if not float(p) > 0:
            raise ValueError(f"p: expected a number > 0, got {p!r}")
        self.momentum, self.p = float(momentum), float(p)
        C = num_classes
        self.register_buffer("centroids", torch.zeros(C, num_features, dtype=torch.float64))
        self.register_buffer("seen", torch.zeros(C, dtype=torch.bool))
        self.register_buffer("D", 1 - torch.eye(C, dtype=torch.float64))

    @torch.no_grad()
    def update(
        self, features: torch.Tensor, target: torch.Tensor, *, ignore_index: int = -100
    ) -> torch.Tensor:
        """Fold a batch into the class means and recompute ``D``; returns a copy of ``D``.

        Parameters
        ----------
        features : torch.Tensor, shape (N, d) or (N, d, d1, ..., dk)
            Features of each position (e.g. the penultimate layer).
        target : torch.Tensor, shape (N,) or (N, d1, ..., dk), integer
            Class per position; ``ignore_index`` positions are skipped.
        ignore_index : int
            Target value to skip.

        Returns
        -------
        torch.Tensor, shape (C, C), float64
            A copy of the updated ``D``.
        """
        C, d = self.centroids.shape
        if not isinstance(features, torch.Tensor) or features.ndim < 2 or features.shape[1] != d:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
            raise ValueError(
                f"features: expected shape (N, {d}) or (N, {d}, ...), got {shape}; "
                f"pass the features the model computes before its last layer, with "
                f"num_features={d} channels along dim 1"
            )
        feat = features.detach().to(self.centroids).movedim(1, -1).reshape(-1, d)  # (P, d)
        t = _check_class_target(target, features, C, ignore_index, "features").reshape(-1)  # (P,)
        keep = t != ignore_index
        feat, t = feat[keep], t[keep].to(self.centroids.device)
        counts = torch.bincount(t, minlength=C).to(feat.dtype)  # (C,)
        sums = torch.zeros_like(self.centroids).index_add_(0, t, feat)  # (C, d)
        present = counts > 0
        means = sums / counts.clamp_min(1)[:, None]
        first = present & ~self.seen
        again = present & self.seen
        self.centroids[first] = means[first]
        self.centroids[again] = torch.lerp(self.centroids[again], means[again], self.momentum)
        self.seen |= present
        if bool(self.seen.all()):
            dist = torch.cdist(self.centroids, self.centroids).pow(self.p)  # (C, C)
            dist.fill_diagonal_(0)
            m = dist.max()
            if m > 0:
                self.D = dist / m
        return self.D.clone()

    def extra_repr(self) -> str:
        C, d = self.centroids.shape
        return f"num_classes={C}, num_features={d}, momentum={self.momentum}, p={self.p}"


# ------------------------------------------------------------- Hou et al.'s learned matrix


def class_centroids(features: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""Centroid of each class's L1-normalised feature vectors.

    .. math::

        c_k = \frac{1}{|\{n : k^\star_n = k\}|} \sum_{n : k^\star_n = k}
              \frac{f_n}{\|f_n\|_1},

    the first step of the learned-matrix rule of the public code attributed to Hou et al. 2016
    (Abstract; ``update_cost_matrix`` in ``liu-xiaofeng/OTM``, ``emd_loss.py``, which divides
    the non-negative ``fc7`` features by their sum).

    Parameters
    ----------
    features : torch.Tensor, shape (N, d)
        Penultimate features of the training samples (non-negative, e.g. after a ReLU; a row
        of zeros stays zero).
    target : torch.Tensor, shape (N,), integer
        True class of each sample, in ``[0, K)``.
    num_classes : int
        ``K``; every class must have at least one sample.

    Returns
    -------
    torch.Tensor, shape (K, d), float64
    """
    if not isinstance(features, torch.Tensor) or features.ndim != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ValueError(
            f"features: expected a tensor of shape (N, d), got {shape}; pass "
            "model.penultimate(X) for the whole training set"
        )
    if features.is_floating_point() and (features < 0).any():
        raise ValueError(
            "features: expected non-negative features (Hou's rule divides each row by its "
            f"sum), got a minimum of {features.min().item():.3g}; take them after a ReLU"
        )
    t = _check_class_target(target, features, num_classes, None, "features")
    f = F.normalize(features.detach().double(), p=1, dim=1)  # (N, d), rows sum to 1
    counts = torch.bincount(t, minlength=num_classes)  # (K,)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"target: every class needs at least one sample to have a centroid; classes "
            f"{missing} have none (pass the whole training set)"
        )
    sums = torch.zeros(num_classes, f.shape[1], dtype=f.dtype, device=f.device)
    sums.index_add_(0, t.to(f.device), f)  # (K, d)
    return sums / counts.to(f)[:, None]


def rank_transform(D: torch.Tensor, *, mu: float = 0.5, p: float = 1.0) -> torch.Tensor:
    r"""Hou's transform of a distance matrix into a cost matrix: row ranks, power, shift.

    .. math::

        R_{ij} = \frac{\operatorname{rank}_i(D_{ij})}{K}, \qquad
        M = \tfrac12 \big(R^{p} + (R^{p})^\top\big) - \mu, \qquad M_{kk} = 1,

    where :math:`\operatorname{rank}_i(D_{ij}) \in \{1, \dots, K\}` is the rank of
    :math:`D_{ij}` within row :math:`i` (ties get their average rank), so :math:`R_{ij}` is the
    percentile rank ``scipy.stats.percentileofscore(D[i], D[i, j], kind="rank") / 100``. As in
    ``update_cost_matrix`` of ``liu-xiaofeng/OTM`` (``emd_loss.py``), the public code attributed
    to Hou et al. 2016 (Abstract): entries of classes near ``k`` can be negative (with
    ``mu = 0.5`` the nearest classes cost about ``-0.25``), which *rewards* predicted mass on
    them; the diagonal (the true class, whose term is ``(h_k - 1)^2``) costs 1.

    Parameters
    ----------
    D : torch.Tensor or array, shape (K, K)
        Distances between classes (any non-negative matrix; only the order within each row
        matters).
    mu : float
        The shift (XE-EMD1: 0.5, XE-EMD2: 0.25).
    p : float > 0
        The power (the public code's ``p``; XE-EMD1: 1, XE-EMD2: 2).

    Returns
    -------
    torch.Tensor, shape (K, K), float64
        Symmetric, diagonal 1.
    """
    D = torch.as_tensor(D, dtype=torch.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 2:
        raise ValueError(f"D: expected a square (K, K) matrix with K >= 2, got {tuple(D.shape)}")
    if not torch.isfinite(D).all():
        raise ValueError("D: expected finite distances, got NaN or inf entries")
    if not float(p) > 0:
        raise ValueError(f"p: expected a number > 0, got {p!r}")
    K = D.shape[0]
    less = (D[:, None, :] < D[:, :, None]).sum(2)  # (K, K): entries of row i below D[i, j]
    equal = (D[:, None, :] == D[:, :, None]).sum(2)  # (K, K): ties, D[i, j] itself included
    R = (less.double() + (equal.double() + 1) / 2) / K  # (K, K): average rank / K, in [1/K, 1]
    R = R.pow(float(p))
    M = (R + R.T) / 2 - float(mu)
    M.fill_diagonal_(1.0)
    return M


def hou_ground_matrix(
    features: torch.Tensor, target: torch.Tensor, num_classes: int, *, mu=0.5, p=1.0
) -> torch.Tensor:
    r"""The ground matrix Hou et al. learn from the network's features (as the public code does).

    :func:`class_centroids` of the L1-normalised features, Euclidean distances between them,
    then :func:`rank_transform`. Hou et al. 2016 (Abstract) propose learning the matrix from
    the CNN's own features; this rule is ``update_cost_matrix`` of ``liu-xiaofeng/OTM``
    (``emd_loss.py``), second-hand (see the module docstring).

    Parameters
    ----------
    features : torch.Tensor, shape (N, d)
        Non-negative penultimate features of the whole training set.
    target : torch.Tensor, shape (N,), integer
        Their true classes.
    num_classes : int
        ``K``.
    mu, p : float
        Shift and power of :func:`rank_transform`.

    Returns
    -------
    torch.Tensor, shape (K, K), float64
    """
    c = class_centroids(features, target, num_classes)  # (K, d)
    return rank_transform(torch.cdist(c, c), mu=mu, p=p)


class HouGroundMatrix(nn.Module):
    r"""Hou's learned ground matrix, recomputed from the whole training set when asked.

    Call :meth:`update` with the penultimate features of every training sample (in evaluation
    mode, no gradient) once per epoch, from the end of the cross-entropy warm-up on, as the
    public code attributed to Hou et al. 2016 (Abstract) does (``liu-xiaofeng/OTM``,
    ``OTM-XE-EMD1.py``: after every epoch from the 4th). :attr:`M` is the cost matrix of
    :func:`hou_ground_matrix`; :attr:`distances` the Euclidean distances between centroids
    before the rank transform. Use it with :class:`CostMatrixLoss`.

    Parameters
    ----------
    num_classes : int
        ``K`` (>= 2).
    mu : float
        Shift of :func:`rank_transform` (XE-EMD1: 0.5, XE-EMD2: 0.25).
    p : float > 0
        Power of :func:`rank_transform` (the public code's ``p``; XE-EMD1: 1, XE-EMD2: 2).

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(self, num_classes: int, *, mu: float = 0.5, p: float = 1.0):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
        if not float(p) > 0:
            raise ValueError(f"p: expected a number > 0, got {p!r}")
        self.mu, self.p = float(mu), float(p)
        K = num_classes
        self.register_buffer("M", torch.full((K, K), float("nan"), dtype=torch.float64))
        self.register_buffer("distances", torch.zeros(K, K, dtype=torch.float64))
        self.n_updates = 0

    @property
    def ready(self) -> bool:
        """Whether :meth:`update` has been called (before it, :attr:`M` is NaN)."""
        return self.n_updates > 0

    @torch.no_grad()
    def update(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Recompute the matrix from the features of the whole training set.

        Parameters
        ----------
        features : torch.Tensor, shape (N, d)
            Non-negative penultimate features (e.g. :meth:`wlearn.models.MLP.penultimate`).
        target : torch.Tensor, shape (N,), integer
            True classes.

        Returns
        -------
        torch.Tensor, shape (K, K), float64
            A copy of the new :attr:`M`.
        """
        K = self.M.shape[0]
        c = class_centroids(features, target, K)  # (K, d)
        dist = torch.cdist(c, c)  # (K, K)
        self.distances = dist.to(self.distances.device)
        self.M = rank_transform(dist, mu=self.mu, p=self.p).to(self.M.device)
        self.n_updates += 1
        return self.M.clone()

    def extra_repr(self) -> str:
        return f"num_classes={self.M.shape[0]}, mu={self.mu}, p={self.p}"


def cost_matrix_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    M: torch.Tensor,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Hou's loss for a ground matrix: quadratic in the prediction, weighted by a row of ``M``.

    .. math::

        L(h, k^\star) = \sum_{k=1}^{K} \big(h_k - y_k\big)^2\, M_{k k^\star},
        \qquad h = \mathrm{softmax}(z),\ y = \delta_{k^\star},

    ``cost_matrix_loss`` of ``liu-xiaofeng/OTM`` (``emd_loss.py``), the public code attributed
    to Hou et al. 2016 (Abstract), there averaged over the classes as well (a factor ``1/K``
    that we fold into the weight); here summed over the classes. Unlike the one-hot
    Wasserstein loss ``sum_k h_k M[k, k*]`` (Liu et al. 2020, Theorem 1), it is quadratic in
    ``h``, so it does not push all the mass onto the cheapest class.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, K), floating
        Raw scores.
    target : torch.Tensor, shape (N,), integer
        True classes in ``[0, K)`` or ``ignore_index``.
    M : torch.Tensor, shape (K, K)
        Cost matrix, ``M[k, k*]`` weighting the squared error on class ``k`` when the truth is
        ``k*`` (e.g. :attr:`HouGroundMatrix.M`); entries may be negative.
    ignore_index : int
        Target value that contributes nothing.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over the non-ignored samples.

    Returns
    -------
    torch.Tensor
        Scalar, or shape (N,) with ``reduction="none"`` (0 at ignored samples).
    """
    logits = _check_logits(logits)
    reduction = _check_reduction(reduction)
    if logits.ndim != 2:
        raise ValueError(
            f"logits: expected shape (N, K), got {tuple(logits.shape)}; flatten the positions "
            "first (logits.movedim(1, -1).reshape(-1, K))"
        )
    N, K = logits.shape
    if not isinstance(M, torch.Tensor) or M.shape != (K, K):
        shape = tuple(M.shape) if isinstance(M, torch.Tensor) else type(M).__name__
        raise ValueError(
            f"M: expected a ({K}, {K}) tensor for logits with {K} classes, got {shape}"
        )
    if not torch.isfinite(M).all():
        raise ValueError(
            "M: expected finite costs, got NaN or inf entries; a HouGroundMatrix is NaN until "
            "its first update (after the cross-entropy warm-up)"
        )
    t = _check_class_target(target, logits, K, ignore_index)
    keep = t != ignore_index  # (N,)
    t0 = t.masked_fill(~keep, 0)
    h = torch.softmax(
        logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, 1
    )
    y = F.one_hot(t0, K).to(h.dtype)  # (N, K)
    w = M.to(device=h.device, dtype=h.dtype).T[t0]  # (N, K): w[n, k] = M[k, t_n]
    per = ((h - y).pow(2) * w).sum(1) * keep  # (N,)
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.sum() / keep.sum()


class CostMatrixLoss(nn.Module):
    r"""Module form of :func:`cost_matrix_loss`, with a fixed or a learned matrix.

    .. math::

        L(h, k^\star) = \sum_k (h_k - y_k)^2 M_{k k^\star}

    (``cost_matrix_loss`` of ``liu-xiaofeng/OTM``, the public code attributed to Hou et al.
    2016, Abstract).

    Parameters
    ----------
    M : torch.Tensor, shape (K, K), or HouGroundMatrix
        The cost matrix; a :class:`HouGroundMatrix` is read afresh at every call.
    ignore_index : int
        Target value that contributes nothing.
    reduction : {"mean", "sum", "none"}
        As in :class:`torch.nn.CrossEntropyLoss`.

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(self, M, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.ignore_index = _check_ignore_index(ignore_index)
        if isinstance(M, HouGroundMatrix):
            self.ground = M
        else:
            self.ground = None
            self.register_buffer("M", torch.as_tensor(M, dtype=torch.float64).clone())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch (see the class docstring).

        Parameters
        ----------
        logits : torch.Tensor, shape (N, K), floating
            Raw scores.
        target : torch.Tensor, shape (N,), integer
            True classes.

        Returns
        -------
        torch.Tensor
            Scalar, or shape (N,) with ``reduction="none"``.
        """
        M = self.ground.M if self.ground is not None else self.M
        return cost_matrix_loss(
            logits, target, M, ignore_index=self.ignore_index, reduction=self.reduction
        )


class WarmupCombinedLoss(nn.Module):
    r"""Cross-entropy alone for ``warmup`` epochs, then ``ce_weight * CE + weight * term``.

    .. math::

        L_e(z, k^\star) = \begin{cases}
            -\log h_{k^\star} & e < e_0 \\
            \alpha\,(-\log h_{k^\star}) + \lambda\, \mathrm{term}(z, k^\star) & e \ge e_0
        \end{cases}

    with :math:`e` the epoch (0-based, set by the training loop in :attr:`epoch`), :math:`e_0`
    = ``warmup``, :math:`\alpha` = ``ce_weight``, :math:`\lambda` = ``weight``. This is how the
    public code attributed to Hou et al. 2016 (Abstract) trains its XE-EMD variants
    (``liu-xiaofeng/OTM``, ``OTM-XE-EMD1.py``: 4 epochs of cross-entropy, then
    ``XenWei * CE + CmWei * cost_matrix_loss``); ``warmup = 0, ce_weight = 0`` trains the term
    alone (``OTM-EMD.py``: the squared EMD alone from the start).

    Parameters
    ----------
    term : callable or None
        ``term(logits, target)`` -> scalar (e.g. :class:`wlearn.losses.SquaredEMDLoss`,
        :class:`CostMatrixLoss`); None: cross-entropy only.
    weight : float
        :math:`\lambda`.
    ce_weight : float
        :math:`\alpha` (0: the term alone after the warm-up).
    warmup : int
        Epochs of cross-entropy alone (>= 0).

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(self, term=None, *, weight: float = 1.0, ce_weight: float = 1.0, warmup: int = 0):
        super().__init__()
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup: expected an integer >= 0 (epochs), got {warmup!r}")
        if term is None and warmup:
            raise ValueError("warmup: cross-entropy alone has no warm-up; pass warmup=0")
        if term is not None and not callable(term):
            raise TypeError(f"term: expected a loss callable or None, got {type(term).__name__}")
        if float(weight) < 0 or float(ce_weight) < 0 or (term is None and ce_weight == 0):
            raise ValueError(
                f"weight, ce_weight: expected non-negative weights and a non-zero loss, got "
                f"{weight!r}, {ce_weight!r}"
            )
        self.term, self.weight, self.ce_weight = term, float(weight), float(ce_weight)
        self.warmup = warmup
        self.epoch = 0

    @property
    def warming_up(self) -> bool:
        """Whether the current :attr:`epoch` trains with cross-entropy alone."""
        return self.term is None or self.epoch < self.warmup

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch at the current :attr:`epoch`.

        Parameters
        ----------
        logits : torch.Tensor, shape (N, K), floating
            Raw scores.
        target : torch.Tensor, shape (N,), integer
            True classes.

        Returns
        -------
        torch.Tensor, shape ()
        """
        if self.warming_up:
            return F.cross_entropy(logits, target)
        out = self.weight * self.term(logits, target)
        if self.ce_weight:
            out = out + self.ce_weight * F.cross_entropy(logits, target)
        return out
