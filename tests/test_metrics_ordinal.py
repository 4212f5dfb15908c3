"""wlearn.metrics.ordinal against hand-computed values and numpy; bad inputs."""

import numpy as np
import pytest
import torch

from wlearn.metrics import (
    OrdinalMetrics,
    accuracy,
    mean_absolute_class_error,
    off_by_one_accuracy,
)


def test_hand_computed():
    pred = torch.tensor([0, 2, 1, 4, 3])
    y = torch.tensor([0, 1, 1, 1, 3])
    assert accuracy(pred, y) == pytest.approx(3 / 5)
    assert mean_absolute_class_error(pred, y) == pytest.approx((0 + 1 + 0 + 3 + 0) / 5)
    assert off_by_one_accuracy(pred, y) == pytest.approx(4 / 5)


def test_scores_are_argmaxed_and_ignore_index():
    scores = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 5.0], [0.0, 2.0, 1.0]])
    y = torch.tensor([0, 0, 255])
    assert accuracy(scores, y, ignore_index=255) == pytest.approx(0.5)
    assert mean_absolute_class_error(scores, y, ignore_index=255) == pytest.approx(1.0)


def test_accumulator_matches_one_shot_and_numpy():
    rng = np.random.default_rng(0)
    C = 6
    m = OrdinalMetrics(C, ignore_index=-1)
    preds, ys = [], []
    for _ in range(4):
        p = rng.integers(0, C, 50)
        y = rng.integers(-1, C, 50)
        m.update(torch.tensor(p), torch.tensor(y))
        preds.append(p)
        ys.append(y)
    p, y = np.concatenate(preds), np.concatenate(ys)
    keep = y != -1
    gap = np.abs(p[keep] - y[keep])
    out = m.compute()
    assert out["n"] == keep.sum()
    assert out["accuracy"] == pytest.approx((gap == 0).mean())
    assert out["mae"] == pytest.approx(gap.mean())
    assert out["off_by_one"] == pytest.approx((gap <= 1).mean())
    conf = m.confusion()
    conf[0, 0] += 1000  # a copy, not the internal state
    assert m.compute() == out
    m.reset()
    with pytest.raises(ValueError, match="no samples"):
        m.compute()


def test_spatial_scores():
    scores = torch.randn(2, 4, 3, 3)
    y = torch.randint(0, 4, (2, 3, 3))
    m = OrdinalMetrics(4)
    m.update(scores, y)
    assert m.compute()["mae"] == pytest.approx(mean_absolute_class_error(scores.argmax(1), y))


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_classes"):
        OrdinalMetrics(1)
    m = OrdinalMetrics(3)
    with pytest.raises(ValueError, match="pred: expected class indices in \\[0, 2\\]"):
        m.update(torch.tensor([0, 3]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="target: expected class indices"):
        m.update(torch.tensor([0, 1]), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="pred: expected shape"):
        accuracy(torch.tensor([0, 1, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="pred: expected class scores"):
        accuracy(torch.randn(3), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="target: expected integer"):
        accuracy(torch.tensor([0, 1]), torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="pred: expected a torch.Tensor"):
        accuracy([0, 1], torch.tensor([0, 1]))
