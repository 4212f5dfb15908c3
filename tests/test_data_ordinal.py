"""Ordered-class data (wlearn.data.ordinal): the rotated digits and their labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wlearn.data import DigitData, rotate_images, rotated_digits
from wlearn.data.ordinal import Split


def _digits(n_train=50, n_test=20, size=8):
    """A small DigitData: a vertical bar in every image, labels 0..9 cycling."""
    img = torch.zeros(size, size)
    img[1:-1, size // 2] = 1.0

    def part(n):
        return img.flatten().repeat(n, 1), torch.arange(n) % 10

    (Xtr, ytr), (Xte, yte) = part(n_train), part(n_test)
    return DigitData(Xtr, ytr, Xte, yte, (size, size), "toy")


def test_rotate_images_turns_anticlockwise_as_displayed():
    X = torch.zeros(1, 5, 5)
    X[0, 2, 4] = 1.0  # right of the centre
    up = rotate_images(X, torch.tensor([90.0]), (5, 5))[0]
    assert up[0, 2] == pytest.approx(1.0) and up.sum() == pytest.approx(1.0)  # now above it
    same = rotate_images(X.flatten(1), torch.tensor([0.0]), (5, 5))
    assert torch.allclose(same, X, atol=1e-6)


def test_rotated_digits_labels_are_the_angle_bins():
    d = rotated_digits(_digits(), seed=3, n_bins=4, max_angle=60.0, downsample=2)
    assert d.num_classes == 4 and d.image_shape == (4, 4)
    np.testing.assert_allclose(d.bin_edges, [-60, -30, 0, 30, 60])
    for a, y in ((d.angle_train, d.y_train), (d.angle_val, d.y_val), (d.angle_test, d.y_test)):
        assert ((a >= -60) & (a < 60)).all()
        assert torch.equal(y, torch.as_tensor(np.digitize(a.numpy(), d.bin_edges[1:-1])))
    assert len(d.y_train) + len(d.y_val) == 50 and len(d.y_val) == 10 and len(d.y_test) == 20
    assert d.X_train.shape == (40, 16) and d.X_train.dtype == torch.float32
    assert d.classes()[0] == "[-60, -30)"


def test_rotated_digits_seeds_are_reproducible_and_distinct():
    a, b, c = (rotated_digits(_digits(), seed=s, n_bins=4) for s in (1, 1, 2))
    assert torch.equal(a.angle_test, b.angle_test) and torch.equal(a.X_train, b.X_train)
    assert not torch.equal(a.angle_test, c.angle_test)


def test_task_gives_either_label_set_on_the_same_images():
    d = rotated_digits(_digits(), seed=0, n_bins=4)
    angle, digit = d.task("angle"), d.task("digit")
    assert isinstance(angle, Split) and angle.num_classes == 4 and digit.num_classes == 10
    assert torch.equal(angle.X_train, digit.X_train)
    assert torch.equal(digit.y_test, torch.arange(20) % 10)
    with pytest.raises(ValueError, match="labels"):
        d.task("colour")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_bins": 1}, "n_bins"),
        ({"max_angle": 0}, "max_angle"),
        ({"downsample": 3}, "downsample"),
        ({"val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_bad_arguments_name_themselves(kw, match):
    with pytest.raises(ValueError, match=match):
        rotated_digits(_digits(), **kw)


def test_rotate_images_refuses_wrong_shapes():
    with pytest.raises(ValueError, match="X"):
        rotate_images(torch.zeros(2, 10), torch.zeros(2), (3, 3))
    with pytest.raises(ValueError, match="angles"):
        rotate_images(torch.zeros(2, 9), torch.zeros(3), (3, 3))
