"""Tests for wlearn.train: the loss contract, seeding, history, evaluation, bad inputs."""

from __future__ import annotations

import pytest
import torch

import wlearn
from wlearn.ground import line
from wlearn.losses import SinkhornLoss
from wlearn.models import LinearSoftmax
from wlearn.train import History, _prepare, accuracy_metric, evaluate, fit, predict_proba


def _blobs(n=60, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(K).repeat(n // K)
    X = torch.randn(len(y), 2, generator=g) * 0.3 + 3 * torch.stack([y, -y], 1).float()
    return X, y


def test_prepare_applies_the_contract():
    z = torch.randn(4, 3)
    y = torch.tensor([0, 2, 1, 2])
    inp, tgt = _prepare(z, y, "logits", "index")
    assert inp is z and torch.equal(tgt, y)
    inp, tgt = _prepare(z, y, "proba", "onehot")
    assert torch.allclose(inp, torch.softmax(z, -1))
    assert torch.equal(tgt, torch.eye(3)[y])
    soft = torch.softmax(torch.randn(4, 3), -1).double()
    inp, tgt = _prepare(z, soft, "proba", "onehot")
    assert tgt.dtype == z.dtype and torch.allclose(tgt, soft.float())
    assert torch.equal(_prepare(z, torch.eye(3)[y], "logits", "index")[1], y)


def test_loss_receives_what_the_contract_says():
    X, y = _blobs()
    seen = {}

    def spy(inp, tgt):
        seen["inp"], seen["tgt"] = inp.detach(), tgt
        return inp.sum() * 0 + (inp - tgt).pow(2).mean()

    fit(
        LinearSoftmax(2, 3),
        spy,
        X,
        y,
        n_epochs=1,
        lr=0.1,
        batch_size=1000,
        output="proba",
        target="onehot",
        progress=False,
    )
    assert torch.allclose(seen["inp"].sum(1), torch.ones(len(y)))
    assert seen["tgt"].shape == (len(y), 3) and seen["tgt"].sum() == len(y)


@pytest.mark.parametrize("kind", ["ce", "sinkhorn"])
def test_fit_learns_separable_blobs(kind):
    X, y = _blobs()
    wlearn.seed_everything(0)
    m = LinearSoftmax(2, 3)
    if kind == "ce":
        hist = fit(
            m,
            torch.nn.CrossEntropyLoss(),
            X,
            y,
            n_epochs=30,
            lr=0.1,
            batch_size=16,
            X_val=X,
            y_val=y,
            progress=False,
        )
    else:
        hist = fit(
            m,
            SinkhornLoss(line(3, 1), reg=0.1),
            X,
            y,
            n_epochs=30,
            lr=0.1,
            batch_size=16,
            output="proba",
            target="onehot",
            X_val=X,
            y_val=y,
            progress=False,
        )
    assert isinstance(hist, History) and hist.epochs == list(range(1, 31))
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.metrics["accuracy"][-1] == 1.0
    assert evaluate(m, X, y) == {"accuracy": 1.0}
    assert hist.seconds > 0


def test_fit_is_seeded():
    X, y = _blobs()
    weights = []
    for _ in range(2):
        wlearn.seed_everything(0)
        m = LinearSoftmax(2, 3)
        fit(
            m,
            torch.nn.CrossEntropyLoss(),
            X,
            y,
            n_epochs=3,
            lr=0.1,
            batch_size=7,
            seed=5,
            progress=False,
        )
        weights.append(m.linear.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    wlearn.seed_everything(0)
    m = LinearSoftmax(2, 3)
    fit(
        m,
        torch.nn.CrossEntropyLoss(),
        X,
        y,
        n_epochs=3,
        lr=0.1,
        batch_size=7,
        seed=6,
        progress=False,
    )
    assert not torch.equal(m.linear.weight, weights[0])


def test_history_records_custom_metrics_and_train_loss_is_the_epoch_mean():
    X, y = _blobs()
    m = LinearSoftmax(2, 3)
    loss = torch.nn.CrossEntropyLoss()
    hist = fit(
        m,
        loss,
        X,
        y,
        n_epochs=1,
        lr=1e-12,
        batch_size=len(y),
        X_val=X,
        y_val=y,
        metrics={"acc": accuracy_metric, "n": lambda P, t: len(t)},
        progress=False,
    )
    assert set(hist.metrics) == {"acc", "n"} and hist.metrics["n"] == [len(y)]
    assert abs(hist.train_loss[0] - loss(m(X), y).item()) < 1e-5


def test_predict_proba_and_evaluate_restore_mode():
    X, y = _blobs()
    m = LinearSoftmax(2, 3)
    m.train()
    P = predict_proba(m, X, batch_size=7)
    assert m.training and P.shape == (len(y), 3) and torch.allclose(P.sum(1), torch.ones(len(y)))
    assert torch.allclose(P, m.predict_proba(X))
    assert accuracy_metric(P, torch.eye(3)[y]) == accuracy_metric(P, y)


def test_nan_loss_names_where_it_happened():
    X, y = _blobs()  # the cause (loss, outputs, weights): tests/test_robustness.py
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 1, minibatch 1"):
        fit(
            LinearSoftmax(2, 3),
            lambda i, t: i.sum() * float("nan"),
            X,
            y,
            n_epochs=1,
            lr=0.1,
            batch_size=8,
            progress=False,
        )


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(output="probs"), ValueError, "output"),
        (dict(target="label"), ValueError, "target"),
        (dict(optimizer="lbfgs"), ValueError, "optimizer"),
        (dict(n_epochs=0), ValueError, "n_epochs"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(lr=-1.0), ValueError, "lr"),
        (dict(lr=float("nan")), ValueError, "lr"),
        (dict(X_val=torch.zeros(3, 2)), ValueError, "X_val, y_val"),
        (dict(y=torch.zeros(60)), TypeError, "y"),
        (dict(y=torch.zeros(5, dtype=torch.long)), ValueError, "y"),
        (dict(X=[[0.0, 1.0]]), TypeError, "X"),
    ],
)
def test_fit_bad_arguments(kwargs, err, match):
    X, y = _blobs()
    args = dict(X=X, y=y, n_epochs=1, lr=0.1, batch_size=8, progress=False)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        fit(LinearSoftmax(2, 3), torch.nn.CrossEntropyLoss(), **args)


def test_predict_proba_bad_input():
    with pytest.raises(TypeError, match="X"):
        predict_proba(LinearSoftmax(2, 3), [[0.0, 0.0]])
