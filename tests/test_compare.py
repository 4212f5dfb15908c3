"""The comparison protocol of lesson 07 (wlearn.compare) on a small synthetic ordered task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wlearn.compare import METRICS, Comparison, Recipe, compare, train_recipe
from wlearn.data.ordinal import Split
from wlearn.losses import HouGroundMatrix, SquaredEMDLoss, WarmupCombinedLoss
from wlearn.models import MLP


def _split(seed: int, K: int = 4) -> Split:
    """Points on a line with noise, cut into K ordered classes."""
    g = torch.Generator().manual_seed(seed)

    def part(n):
        u = torch.rand(n, generator=g)
        X = torch.stack([u, u**2], 1) + 0.05 * torch.randn(n, 2, generator=g)
        return X, (u * K).long().clamp_max(K - 1)

    (Xtr, ytr), (Xva, yva), (Xte, yte) = part(120), part(60), part(60)
    return Split(Xtr, ytr, Xva, yva, Xte, yte, num_classes=K, name="toy")


MODEL = dict(make_model=lambda d, K: MLP(d, K, hidden=(8,)), device="cpu")


def test_recipe_builds_its_loss():
    loss, ground = Recipe("a").make_loss(4)
    assert isinstance(loss, WarmupCombinedLoss) and loss.term is None and ground is None
    loss, ground = Recipe("b", term="emd2", warmup=2).make_loss(4)
    assert isinstance(loss.term, SquaredEMDLoss) and loss.warmup == 2
    loss, ground = Recipe("c", term="cost-matrix", ground="learned", mu=0.25, p=2.0).make_loss(4)
    assert isinstance(ground, HouGroundMatrix) and (ground.mu, ground.p) == (0.25, 2.0)
    loss, ground = Recipe("d", term="cost-matrix", ground="line").make_loss(4)
    assert ground is None and torch.isfinite(loss.term.M).all()


@pytest.mark.parametrize(
    "kw, match",
    [({"term": "w2"}, "term"), ({"term": "cost-matrix"}, "ground"), ({"ground": "line"}, "ground")],
)
def test_bad_recipes_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        Recipe("x", **kw)


def test_train_recipe_is_reproducible_and_records_what_it_measured():
    r1 = train_recipe(Recipe("CE"), _split(0), lr=1e-2, n_epochs=3, seed=1, **MODEL)
    r2 = train_recipe(Recipe("CE"), _split(0), lr=1e-2, n_epochs=3, seed=1, **MODEL)
    assert r1.test == r2.test and torch.equal(r1.test_proba, r2.test_proba)
    assert set(r1.test) == set(METRICS) and all(len(v) == 3 for v in r1.val.values())
    assert r1.test_proba.shape == (60, 4) and torch.equal(r1.test_target, _split(0).y_test)
    assert r1.ground is None and r1.epochs == 3 and r1.cpu_seconds >= 0
    acc = (r1.test_proba.argmax(1) == r1.test_target).double().mean().item()
    assert r1.test["accuracy"] == pytest.approx(acc)


def test_train_recipe_learns_the_ground_matrix_after_the_warm_up():
    rec = Recipe("L", term="cost-matrix", ground="learned", warmup=2)
    run = train_recipe(rec, _split(0), lr=1e-2, n_epochs=4, seed=0, **MODEL)
    assert run.ground.shape == (4, 4) and torch.isfinite(run.ground).all()
    assert torch.equal(run.ground, run.ground.T) and (run.ground.diagonal() == 1).all()
    assert (run.distances.diagonal() == 0).all()


def test_converged_reads_the_last_epochs():
    run = train_recipe(Recipe("CE"), _split(0), lr=1e-2, n_epochs=2, seed=0, **MODEL)
    run.val["accuracy"] = [0.1, 0.5, 0.51, 0.5]
    assert run.converged(last=3, tol=0.015) and not run.converged(last=4, tol=0.015)


def test_compare_chooses_the_rate_on_validation_and_pairs_the_seeds():
    recipes = [Recipe("CE"), Recipe("CE again")]  # the same loss twice: paired differences 0
    cmp = compare(
        recipes, _split, seeds=[0, 1, 2], lrs=[1e-1, 1e-3], n_epochs=3, progress=False, **MODEL
    )
    assert isinstance(cmp, Comparison) and cmp.names == ["CE", "CE again"]
    for name in cmp.names:
        grid = cmp.grid[name]
        assert set(grid) == {1e-3, 1e-1}
        assert cmp.lr[name] == max(grid, key=lambda lr: (grid[lr], -lr))
        assert [r.seed for r in cmp.runs[name]] == [0, 1, 2]
        assert all(r.lr == cmp.lr[name] for r in cmp.runs[name])
    d = cmp.paired("CE again", "CE")
    assert all(np.all(v == 0) for v in d.values())
    assert cmp.gain("CE again", "CE")["mae"] == (0.0, 0.0)
    assert cmp.summary("CE again", "CE")["Δ MAE"] == "+0.000 ± 0.000"
    table = cmp.table("CE")
    assert "CE again" in table and "Δ 1-off" in table


def test_gain_is_signed_so_that_positive_is_better():
    cmp = Comparison(recipes=[Recipe("a"), Recipe("b")], seeds=[0, 1])
    cmp.lr = {"a": 1e-2, "b": 1e-2}

    class R:
        def __init__(self, acc, mae):
            self.test = {"accuracy": acc, "off_by_one": acc, "mae": mae}

    cmp.runs = {"a": [R(0.5, 1.0), R(0.6, 0.8)], "b": [R(0.6, 0.7), R(0.6, 0.6)]}
    g = cmp.gain("b", "a")
    assert g["accuracy"][0] == pytest.approx(0.05) and g["mae"][0] == pytest.approx(0.25)
    assert g["mae"][1] == pytest.approx(np.std([-0.3, -0.2], ddof=1))
    with pytest.raises(KeyError, match="name"):
        cmp.metrics("c")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"recipes": [Recipe("a"), Recipe("a")]}, "distinct"),
        ({"seeds": []}, "seeds"),
        ({"select_by": "loss"}, "select_by"),
    ],
)
def test_compare_refuses_bad_arguments(kw, match):
    args = dict(recipes=[Recipe("a")], data_fn=_split, seeds=[0], lrs=[1e-2], n_epochs=1) | kw
    with pytest.raises(ValueError, match=match):
        compare(progress=False, **MODEL, **args)
