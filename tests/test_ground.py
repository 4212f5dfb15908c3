"""Ground metrics: shapes, scaling (Frogner footnote 5), closed forms and bad input."""

import math

import pytest
import torch

from wlearn import ground


def test_line_is_scaled_power_of_index_distance():
    M = ground.line(10, 2)
    i = torch.arange(10.0, dtype=torch.float64)
    raw = (i[:, None] - i[None, :]).abs() ** 2
    assert M.shape == (10, 10) and M.dtype == torch.float64
    assert 0 <= M.min() and M.max() < 1 and abs(M.max().item() - 0.999) < 1e-12
    assert torch.allclose(M, raw / raw.max() * 0.999)
    assert torch.equal(ground.line(10, 2, scale=False), raw)


def test_line_p0_is_the_zero_one_metric():
    M = ground.line(4, 0, scale=False)
    assert torch.equal(M, 1 - torch.eye(4, dtype=torch.float64))


def test_grid_is_euclidean_on_the_plane():
    M = ground.grid(3, scale=False)
    assert M.shape == (9, 9)
    assert abs(M[0, 8].item() - math.sqrt(8)) < 1e-12  # (0,0) to (2,2)
    assert abs(M[1, 3].item() - math.sqrt(2)) < 1e-12  # (0,1) to (1,0)
    assert torch.allclose(M, M.T)


def test_euclidean_normalizes_rows():
    X = torch.tensor([[3.0, 0.0], [0.0, 5.0], [1.0, 1.0]])
    M = ground.euclidean(X)
    assert abs(M[0, 1].item() - math.sqrt(2)) < 1e-12
    assert torch.all(M.diagonal() == 0)
    M2 = ground.euclidean(X, normalize=False)
    assert abs(M2[0, 1].item() - math.sqrt(34)) < 1e-12
    with pytest.raises(ValueError, match="X: cannot normalize rows of zero length"):
        ground.euclidean([[0.0, 0.0], [1.0, 0.0]])


def test_transforms():
    D = ground.line(5, 1, scale=False) / 4  # distances 0, .25, .5, .75, 1
    assert torch.allclose(ground.power(D, 2), D**2)
    H = ground.huber(D, 0.5)
    assert torch.allclose(H[0, 1], D[0, 1] ** 2)  # d <= tau: quadratic
    assert torch.allclose(H[0, 4], torch.tensor(0.5 * (2 * 1.0 - 0.5), dtype=torch.float64))
    # Huber is continuous at tau
    assert abs(ground.huber(torch.full((1, 1), 0.5), 0.5).item() - 0.25) < 1e-12
    assert torch.equal(ground.step(D), 1 - torch.eye(5, dtype=torch.float64))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ground.line(1, 1), "K: expected an integer >= 2"),
        (lambda: ground.line(5, -1), "p: expected a finite exponent >= 0"),
        (lambda: ground.grid(0), "n: expected an integer >= 1"),
        (lambda: ground.power(-torch.ones(2, 2), 2), "D: expected non-negative"),
        (lambda: ground.huber(torch.ones(2, 3), 0.5), r"D: expected a square"),
        (lambda: ground.huber(torch.ones(2, 2), 0), "tau: expected a finite number > 0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
