"""A multilayer perceptron on flattened inputs, with access to its penultimate features.

``(N, D) -> fc(h1) -> ReLU -> fc(h2) -> ReLU -> ... -> fc(K)``: the last hidden layer's
activations (after the ReLU, so non-negative) are what :meth:`MLP.penultimate` returns, the
features from which Hou et al.'s ground matrix is learned (lesson 07).

Why not :class:`wlearn.models.SmallCNN` in lesson 07: its max-pooling and final 2 x 2 average
pooling throw away most of where the strokes are, which is what the rotation angle of a digit
is about; with the same budget it reached 40% exact accuracy on the angle bins where this MLP
reaches about 58% (measured when the lesson's protocol was fixed).

Introduced in notebooks/07_squared_emd.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn

from wlearn.models.linear import _check_int


class MLP(nn.Module):
    """ReLU network returning logits; :meth:`penultimate` returns its last hidden layer.

    Parameters
    ----------
    in_features : int
        Input dimension ``D`` (inputs of shape ``(N, D)``, or ``(N, ...)`` flattened to it).
    n_classes : int
        Number of classes ``K`` (>= 2).
    hidden : sequence of int
        Widths of the hidden layers (at least one).

    Shapes
    ------
    forward : (N, D) -> (N, K) logits.  penultimate : (N, D) -> (N, hidden[-1]), >= 0.

    Introduced in notebooks/07_squared_emd.ipynb.
    """

    def __init__(self, in_features: int, n_classes: int, *, hidden=(128, 64)):
        super().__init__()
        self.in_features = _check_int(in_features, "in_features", 1)
        self.n_classes = _check_int(n_classes, "n_classes", 2)
        if isinstance(hidden, int) or len(hidden) == 0:
            raise ValueError(
                f"hidden: expected a non-empty sequence of layer widths, got {hidden!r}; "
                "e.g. hidden=(128, 64)"
            )
        widths = [self.in_features] + [_check_int(h, "hidden", 1) for h in hidden]
        layers = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], self.n_classes)

    def _flat(self, X: torch.Tensor) -> torch.Tensor:
        X = X.reshape(X.shape[0], -1)  # (N, D)
        if X.shape[1] != self.in_features:
            raise ValueError(
                f"X: expected {self.in_features} features per sample, got {X.shape[1]}; "
                "build the model with MLP(in_features=X[0].numel(), ...)"
            )
        return X

    def penultimate(self, X: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (after the ReLU).

        Parameters
        ----------
        X : torch.Tensor, shape (N, D) or (N, ...)
            Inputs.

        Returns
        -------
        torch.Tensor, shape (N, hidden[-1])
            Non-negative features.
        """
        return self.body(self._flat(X))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits of a batch.

        Parameters
        ----------
        X : torch.Tensor, shape (N, D) or (N, ...)
            Inputs.

        Returns
        -------
        torch.Tensor, shape (N, K)
        """
        return self.head(self.penultimate(X))
