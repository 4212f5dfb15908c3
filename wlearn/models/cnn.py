"""A small convolutional network for digit images, 8x8 (scikit-learn) or 28x28 (MNIST).

Two 3x3 convolution blocks (ReLU, 2x2 max-pooling), an adaptive average pool to 2x2 so
that the head does not depend on the image size, and a two-layer classifier head:

``(N, 1, H, W) -> conv(c1) -> pool -> conv(c2) -> pool -> avgpool(2x2) -> fc(hidden) -> fc(K)``

Frogner et al. 2015 (Sec. 6.1) train a network on MNIST; its architecture is not given,
so this one is chosen to train in seconds on a CPU.

Introduced in notebooks/04_mnist_p_metric.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn

from wlearn.models.linear import _check_int


class SmallCNN(nn.Module):
    """Convolutional digit classifier returning logits.

    Parameters
    ----------
    image_shape : (int, int)
        ``(H, W)``, each >= 4 (two 2x2 poolings).
    n_classes : int
        Number of classes ``K``.
    channels : (int, int)
        Channels of the two convolution blocks.
    hidden : int
        Width of the hidden layer of the head.

    Shapes
    ------
    forward : (N, H * W), (N, H, W) or (N, 1, H, W) -> (N, K) logits.
    predict_proba : same inputs -> (N, K), rows sum to 1.

    Introduced in notebooks/04_mnist_p_metric.ipynb.
    """

    def __init__(
        self, image_shape=(28, 28), n_classes: int = 10, *, channels=(16, 32), hidden: int = 64
    ):
        super().__init__()
        if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2:
            raise ValueError(
                f"image_shape: expected (H, W), got {image_shape!r}; pass a pair "
                "such as data.image_shape"
            )
        self.image_shape = tuple(_check_int(s, "image_shape", 4) for s in image_shape)
        self.n_classes = _check_int(n_classes, "n_classes", 2)
        c1, c2 = (_check_int(c, "channels", 1) for c in channels)
        hidden = _check_int(hidden, "hidden", 1)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * c2, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of images.

        Parameters
        ----------
        X : torch.Tensor, shape (N, H * W), (N, H, W) or (N, 1, H, W)
            Images of ``image_shape``, flat or not.

        Returns
        -------
        torch.Tensor, shape (N, K)
        """
        H, W = self.image_shape
        if X.shape[1:] not in ((H * W,), (H, W), (1, H, W)):
            raise ValueError(
                f"X: expected shape (N, {H * W}), (N, {H}, {W}) or (N, 1, {H}, {W}), "
                f"got {tuple(X.shape)}; build the model with "
                "SmallCNN(image_shape=data.image_shape)"
            )
        X = X.reshape(X.shape[0], 1, H, W)  # (N, 1, H, W)
        return self.head(self.features(X))

    @torch.no_grad()
    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``softmax(forward(X))``.

        Parameters
        ----------
        X : torch.Tensor, shape (N, H * W), (N, H, W) or (N, 1, H, W)
            Images.

        Returns
        -------
        torch.Tensor, shape (N, K)
            Rows sum to 1.
        """
        return torch.softmax(self(X), dim=-1)
