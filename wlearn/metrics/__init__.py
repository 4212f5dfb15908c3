"""Evaluation metrics. Submodules add their names here."""

__all__: list[str] = []

from wlearn.metrics.ordinal import (  # noqa: E402
    OrdinalMetrics,
    accuracy,
    mean_absolute_class_error,
    off_by_one_accuracy,
)

__all__ += ["OrdinalMetrics", "accuracy", "mean_absolute_class_error", "off_by_one_accuracy"]

from wlearn.metrics.segmentation import ConfusionMatrix, mean_severity  # noqa: E402

__all__ += ["ConfusionMatrix", "mean_severity"]

from wlearn.metrics.tags import (  # noqa: E402
    missed_tag_distance,
    tag_auc,
    top_k_cost,
    top_k_cost_curve,
    top_k_tags,
)

__all__ += ["missed_tag_distance", "tag_auc", "top_k_cost", "top_k_cost_curve", "top_k_tags"]
