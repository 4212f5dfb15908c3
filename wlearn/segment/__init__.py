"""Semantic segmentation: the training/evaluation engine (Liu et al. 2020 protocol).

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from wlearn.segment.engine import (
    evaluate,
    finetune,
    fit,
    load_checkpoint,
    pretrain_finetune,
    save_checkpoint,
    train_one_epoch,
)

__all__ = [
    "evaluate",
    "finetune",
    "fit",
    "load_checkpoint",
    "pretrain_finetune",
    "save_checkpoint",
    "train_one_epoch",
]

from wlearn.segment.selftrain import (  # noqa: E402
    PseudoLabeler,
    class_balanced_thresholds,
    compare_self_training,
    conservative_targets,
    lrent_pseudo_labels,
    pseudo_labels,
    self_train,
)

__all__ += [
    "PseudoLabeler",
    "class_balanced_thresholds",
    "compare_self_training",
    "conservative_targets",
    "lrent_pseudo_labels",
    "pseudo_labels",
    "self_train",
]
