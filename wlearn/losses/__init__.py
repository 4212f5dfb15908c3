"""Training losses (``torch.nn.Module``\\ s, used like ``torch.nn.CrossEntropyLoss``).

- :mod:`wlearn.losses.sinkhorn`: Frogner et al. 2015, entropic and relaxed Wasserstein losses.
- :mod:`wlearn.losses.onehot`: exact losses for one-hot and ordered targets (Liu et al. 2020,
  Hou et al. 2016).
- :mod:`wlearn.losses.learned_ground`: Hou et al.'s learned ground matrix and the loss it
  enters, as the public code describes them; cross-entropy with a warm-up plus a term.
- :mod:`wlearn.losses.multilabel`: Wasserstein + KL on multi-label (tag) targets (Frogner et al. 2015).
- :mod:`wlearn.losses.importance`: the Importance-Aware Loss baseline (Chen, Gong & Yang 2017).
- :mod:`wlearn.losses.soft`: per-pixel Wasserstein and cross-entropy losses for soft targets
  (Liu et al. 2020, conservative self-training).
"""

from wlearn.losses.importance import ImportanceAwareLoss
from wlearn.losses.learned_ground import (
    CostMatrixLoss,
    HouGroundMatrix,
    LearnedGroundMatrix,
    WarmupCombinedLoss,
    class_centroids,
    cost_matrix_loss,
    hou_ground_matrix,
    rank_transform,
)
from wlearn.losses.onehot import OneHotWassersteinLoss, SquaredEMDLoss, one_hot_wasserstein
from wlearn.losses.sinkhorn import SinkhornLoss, UnbalancedSinkhornLoss

__all__ = ["SinkhornLoss", "UnbalancedSinkhornLoss"]
__all__ += ["LearnedGroundMatrix", "OneHotWassersteinLoss", "SquaredEMDLoss", "one_hot_wasserstein"]
__all__ += ["CostMatrixLoss", "HouGroundMatrix", "WarmupCombinedLoss", "class_centroids"]
__all__ += ["cost_matrix_loss", "hou_ground_matrix", "rank_transform"]
__all__ += ["ImportanceAwareLoss"]

from wlearn.losses.multilabel import (  # noqa: E402
    MultiLabelKLLoss,
    WassersteinKLLoss,
    multilabel_kl,
)

__all__ += ["MultiLabelKLLoss", "WassersteinKLLoss", "multilabel_kl"]

from wlearn.losses.soft import SoftCrossEntropyLoss, SoftWassersteinLoss  # noqa: E402

__all__ += ["SoftCrossEntropyLoss", "SoftWassersteinLoss"]
