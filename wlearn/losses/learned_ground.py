"""A ground matrix learned from the network's own features (Hou et al. 2016).

No prior on how the classes relate: the distance between two classes is the distance
between the running means of their feature vectors. Use it with
:class:`wlearn.losses.OneHotWassersteinLoss`.

Ground-matrix convention (project-wide): ``D[i, j]`` is the cost of predicting class ``i``
where the truth is ``j``; the learned matrix is symmetric.

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn

from wlearn.losses.onehot import _check_class_target

__all__ = ["LearnedGroundMatrix"]


class LearnedGroundMatrix(nn.Module):
    r"""A ground matrix learned from the network's own features, with no prior on classes.

    Keeps a running mean feature vector ``c_k`` per class and sets

    .. math::

        D[i, j] = \frac{\|c_i - c_j\|^{p}}{\max_{a, b} \|c_a - c_b\|^{p}},

    squared distances (``p = 2``) by default, scaled so the largest entry is 1 (Hou et al.
    2016, abstract, propose learning the ground matrix from the CNN's own features during
    training; this is the simplest such rule). Update rule, for each class ``k`` present in the
    batch with batch mean ``m_k``:

    - first time ``k`` is seen: ``c_k <- m_k``;
    - afterwards: ``c_k <- (1 - momentum) c_k + momentum m_k`` (exponential moving average).

    Until every class has been seen, ``D`` stays the 0-1 metric ``1 - I`` (no prior: all
    mistakes cost the same). ``D`` is symmetric with a zero diagonal. Use it with
    ``OneHotWassersteinLoss(learned)``, calling ``learned.update(features, target)`` each
    training step (features detached: no gradient flows into ``D``).

    Parameters
    ----------
    num_classes : int
        ``C``.
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
