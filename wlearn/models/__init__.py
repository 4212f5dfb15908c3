"""Models written in plain torch (there is no CPU build of torchvision here)."""

from wlearn.models.cnn import SmallCNN
from wlearn.models.linear import LinearSoftmax
from wlearn.models.mlp import MLP

__all__: list[str] = ["LinearSoftmax", "MLP", "SmallCNN"]

from wlearn.models.enet import ENet  # noqa: E402

__all__ += ["ENet"]
