"""Training losses (``torch.nn.Module``\\ s, used like ``torch.nn.CrossEntropyLoss``).

- :mod:`wlearn.losses.sinkhorn`: Frogner et al. 2015, entropic and relaxed Wasserstein losses.
"""

from wlearn.losses.sinkhorn import SinkhornLoss, UnbalancedSinkhornLoss

__all__ = ["SinkhornLoss", "UnbalancedSinkhornLoss"]
