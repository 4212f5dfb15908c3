"""Tests for wlearn.models: shapes, probabilities, gradients, bad inputs."""

from __future__ import annotations

import pytest
import torch

from wlearn.models import MLP, LinearSoftmax, SmallCNN


def test_linear_softmax_is_affine_and_proba_sums_to_one():
    torch.manual_seed(0)
    m = LinearSoftmax(5, 3)
    X = torch.randn(7, 5)
    z = m(X)
    assert z.shape == (7, 3)
    assert torch.allclose(z, X @ m.linear.weight.T + m.linear.bias)
    P = m.predict_proba(X)
    assert torch.allclose(P.sum(1), torch.ones(7)) and (P > 0).all()
    assert torch.equal(P.argmax(1), z.argmax(1))
    assert not P.requires_grad


def test_linear_softmax_flattens_images():
    m = LinearSoftmax(64, 10)
    assert m(torch.rand(4, 8, 8)).shape == (4, 10)
    with pytest.raises(ValueError, match="64 features"):
        m(torch.rand(4, 63))


@pytest.mark.parametrize("shape", [(8, 8), (28, 28)])
def test_cnn_accepts_flat_and_image_inputs(shape):
    torch.manual_seed(0)
    m = SmallCNN(shape, 10)
    H, W = shape
    X = torch.rand(3, H * W)
    z = m(X)
    assert z.shape == (3, 10)
    assert torch.allclose(m(X.reshape(3, H, W)), z)
    assert torch.allclose(m(X.reshape(3, 1, H, W)), z)
    assert torch.allclose(m.predict_proba(X).sum(1), torch.ones(3))


def test_cnn_gradcheck_float64():
    torch.manual_seed(0)
    m = SmallCNN((8, 8), 4, channels=(2, 3), hidden=5).double()
    X = torch.rand(2, 64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: m(x), (X,))


def test_cnn_learns_all_parameters():
    torch.manual_seed(0)
    m = SmallCNN((8, 8), 10)
    loss = torch.nn.functional.cross_entropy(m(torch.rand(5, 64)), torch.arange(5))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LinearSoftmax(0, 3), "in_features"),
        (lambda: LinearSoftmax(3, 1), "n_classes"),
        (lambda: LinearSoftmax(3.0, 2), "in_features"),
        (lambda: SmallCNN((2, 8)), "image_shape"),
        (lambda: SmallCNN(8), "image_shape"),
        (lambda: SmallCNN((8, 8), 1), "n_classes"),
        (lambda: SmallCNN((8, 8), channels=(0, 2)), "channels"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_cnn_rejects_wrong_image_size():
    with pytest.raises(ValueError, match="expected shape"):
        SmallCNN((8, 8))(torch.rand(2, 784))


def test_mlp_logits_and_penultimate_features():
    torch.manual_seed(0)
    m = MLP(16, 3, hidden=(8, 5))
    X = torch.rand(4, 4, 4)
    f = m.penultimate(X)
    assert f.shape == (4, 5) and (f >= 0).all()
    assert torch.allclose(m(X), m.head(f))
    assert m(X.reshape(4, 16)).shape == (4, 3)
    with pytest.raises(ValueError, match="16 features"):
        m(torch.rand(2, 15))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MLP(0, 3), "in_features"),
        (lambda: MLP(4, 1), "n_classes"),
        (lambda: MLP(4, 3, hidden=()), "hidden"),
        (lambda: MLP(4, 3, hidden=8), "hidden"),
        (lambda: MLP(4, 3, hidden=(0,)), "hidden"),
    ],
)
def test_mlp_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
