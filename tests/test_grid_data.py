"""Tests for wlearn.data.grid: the noisy-label toy problem of Frogner et al. 2015 (App. E.1)."""

from __future__ import annotations

import pytest
import torch

from wlearn.data.grid import (
    grid_centers,
    grid_distance,
    grid_neighbors,
    make_grid_data,
    switch_to_neighbors,
)
from wlearn.ground import grid


def test_centers_match_ground_grid():
    for n in (2, 3, 5):
        c = grid_centers(n)
        assert c.shape == (n * n, 2)
        assert torch.allclose(torch.cdist(c, c), grid(n, scale=False))


def test_neighbors_are_at_distance_one_and_symmetric():
    n = 4
    D = grid(n, scale=False)
    nb = grid_neighbors(n)
    assert sorted(len(v) for v in nb) == [2] * 4 + [3] * 8 + [4] * 4
    for k, v in enumerate(nb):
        assert all(D[k, j] == 1 for j in v)
        assert all(k in nb[j] for j in v)
        assert set(v) == {j for j in range(n * n) if D[k, j] == 1}


def test_switch_rate_and_targets():
    n, noise = 5, 0.4
    y = torch.arange(n * n).repeat(2000)
    y2 = switch_to_neighbors(y, n, noise, seed=3)
    flipped = y2 != y
    assert abs(flipped.float().mean().item() - noise) < 0.01
    assert (grid_distance(y2[flipped], y[flipped], n) == 1).all()
    # uniform over the neighbours of an interior class
    k = 12
    counts = torch.bincount(y2[(y == k) & flipped], minlength=n * n)[grid_neighbors(n)[k]]
    assert (counts.float() / counts.sum() - 0.25).abs().max() < 0.03
    assert torch.equal(switch_to_neighbors(y, n, noise, seed=3), y2)
    assert torch.equal(switch_to_neighbors(y, n, 0.0), y)
    assert (switch_to_neighbors(y, n, 1.0) != y).all()


def test_make_grid_data_shapes_and_clusters():
    d = make_grid_data(3, 0.5, n_train_per_class=40, n_test_per_class=10, sigma=0.2, seed=1)
    assert d.X_train.shape == (360, 2) and d.X_test.shape == (90, 2)
    assert d.y_test.bincount().tolist() == [10] * 9
    assert d.y_train_clean.bincount().tolist() == [40] * 9
    assert 0.4 < (d.y_train != d.y_train_clean).float().mean() < 0.6
    # points sit around their true vertex
    err = (d.X_train.double() - d.centers[d.y_train_clean]).norm(dim=1)
    assert err.mean() < 0.35
    again = make_grid_data(3, 0.5, n_train_per_class=40, n_test_per_class=10, sigma=0.2, seed=1)
    assert torch.equal(again.X_train, d.X_train) and torch.equal(again.y_train, d.y_train)


def test_grid_distance():
    assert torch.allclose(
        grid_distance([0, 0, 8], [0, 4, 0], 3),
        torch.tensor([0.0, 2**0.5, 8**0.5], dtype=torch.float64),
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: grid_centers(1), "n"),
        (lambda: switch_to_neighbors(torch.tensor([0, 9]), 3, 0.1), "y"),
        (lambda: switch_to_neighbors(torch.tensor([0.0]), 3, 0.1), "y"),
        (lambda: switch_to_neighbors(torch.tensor([0]), 3, 1.5), "noise"),
        (lambda: make_grid_data(3, 0.1, sigma=0), "sigma"),
        (lambda: make_grid_data(3, 0.1, n_train_per_class=0), "n_train_per_class"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
