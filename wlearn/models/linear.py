"""Multiclass linear model: logits ``z = Theta x + c``, probabilities ``h = softmax(z)``.

The course's notation (docs/notation.md): :math:`\\Theta` is ``linear.weight`` (K, D) and
:math:`c` is ``linear.bias`` (K,); the letter :math:`W` is kept for the Wasserstein loss.

The hypothesis class of Frogner et al. 2015 (Sec. 5: ``H = s o H_o``, a softmax over a
base model; Sec. 6.2 and App. E.1: a linear model).

Introduced in notebooks/04_mnist_p_metric.ipynb and 05_noisy_label_grid.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_int(x, name: str, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {x!r}; pass a Python int")
    return x


class LinearSoftmax(nn.Module):
    """Linear logits for ``n_classes`` classes; :meth:`predict_proba` applies the softmax.

    Parameters
    ----------
    in_features : int
        Input dimension ``D`` (inputs of shape ``(N, D)``, or ``(N, ...)`` flattened to it).
    n_classes : int
        Number of classes ``K`` (>= 2).

    Shapes
    ------
    forward : (N, D) -> (N, K) logits.  predict_proba : (N, D) -> (N, K), rows sum to 1.

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """

    def __init__(self, in_features: int, n_classes: int):
        super().__init__()
        self.in_features = _check_int(in_features, "in_features", 1)
        self.n_classes = _check_int(n_classes, "n_classes", 2)
        self.linear = nn.Linear(in_features, n_classes)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits ``z = Theta x + c``.

        Parameters
        ----------
        X : torch.Tensor, shape (N, D) (or (N, ...) with D entries per row)
            Inputs.

        Returns
        -------
        torch.Tensor, shape (N, K)
        """
        X = X.reshape(X.shape[0], -1)  # (N, D)
        if X.shape[1] != self.in_features:
            raise ValueError(
                f"X: expected {self.in_features} features per row, got {X.shape[1]}; "
                "build the model for the data: LinearSoftmax(X.shape[1], K)"
            )
        return self.linear(X)

    @torch.no_grad()
    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``h = softmax(Theta x + c)``.

        Parameters
        ----------
        X : torch.Tensor, shape (N, D)
            Inputs.

        Returns
        -------
        torch.Tensor, shape (N, K)
            Rows sum to 1.
        """
        return torch.softmax(self(X), dim=-1)
