"""Tests for wlearn.data.tags (the simulated tag world, redundancy reduction, load_tags) and
wlearn.data.tag_format (the on-disk tag-dataset format)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from wlearn.data import tag_format
from wlearn.data._common import FullDataMissingWarning
from wlearn.data.tags import (
    DEFAULT_TAGS,
    load_tag_vectors,
    load_tags,
    make_tag_world,
    reduce_redundancy,
    tag_clusters,
)
from wlearn.ground import euclidean

SMALL = dict(n_train=60, n_test=30)


@pytest.fixture(scope="module")
def world():
    return make_tag_world(**SMALL, seed=3)


def test_embedded_table_covers_the_default_vocabulary_with_real_vectors():
    words, vectors = load_tag_vectors()
    assert words == list(DEFAULT_TAGS)
    assert len(set(words)) == len(words) >= 200
    assert vectors.shape == (len(words), 50) and np.isfinite(vectors).all()
    # real word geometry: puppy is nearer dog than car is, sunset nearer sunrise than snow
    U = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    w = {t: U[i] for i, t in enumerate(words)}
    assert w["dog"] @ w["puppy"] > w["dog"] @ w["car"]
    assert w["sunset"] @ w["sunrise"] > w["sunset"] @ w["snow"]


def test_world_shapes_and_contents(world):
    K = len(DEFAULT_TAGS)
    assert world.X_train.shape == (60, 64) and world.X_test.shape == (30, 64)
    assert world.Y_train.shape == (60, K) and world.Y_test.shape == (30, K)
    for Y in (world.Y_train, world.Y_test):
        assert set(np.unique(Y)) <= {0.0, 1.0}
        assert (Y.sum(1) >= 1).all()
    assert len(world.concepts_test) == 30
    assert all(1 <= len(c) <= 3 for c in world.concepts_test)
    assert all(name in DEFAULT_TAGS for c in world.concepts_test for name in c)
    M = world.M
    assert M.dtype == torch.float64 and M.shape == (K, K)
    assert torch.allclose(M, euclidean(world.vectors, scale=True))
    assert M.max() < 1 and torch.all(M.diagonal() == 0)


def test_world_is_deterministic_and_seeded():
    a, b = make_tag_world(**SMALL, seed=1), make_tag_world(**SMALL, seed=1)
    c = make_tag_world(**SMALL, seed=2)
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.Y_test, b.Y_test)
    assert not np.array_equal(a.Y_train, c.Y_train)


def test_items_are_tagged_near_their_concepts(world):
    """Tags of an item lie in its concepts' semantic neighbourhoods: the median distance from
    a tag to the nearest concept name is well below that of random tags."""
    M = world.M.numpy()
    idx = {w: i for i, w in enumerate(world.words)}
    rng = np.random.default_rng(0)
    near, rand = [], []
    for y, concepts in zip(world.Y_test, world.concepts_test, strict=True):
        c = [idx[name] for name in concepts]
        near += list(M[np.flatnonzero(y)][:, c].min(1))
        rand += list(M[rng.integers(len(M), size=int(y.sum()))][:, c].min(1))
    assert np.median(near) < 0.75 * np.median(rand)


def test_features_carry_the_concepts():
    """A least-squares read-out of the features predicts the test tags far better than chance."""
    w = make_tag_world(n_train=800, n_test=200, seed=0, feature_noise=0.5)
    W, *_ = np.linalg.lstsq(w.X_train, w.Y_train, rcond=None)
    S = w.X_test @ W
    hit = np.mean([y[np.argmax(s)] for s, y in zip(S, w.Y_test, strict=True)])
    assert hit > 5 * w.Y_test.mean()


def test_redundancy_reduction_keeps_one_tag_per_cluster(world):
    labels = tag_clusters(world.M)
    K = len(world.words)
    assert labels.shape == (K,) and labels.min() == 0
    assert 20 < labels.max() + 1 < K  # similar tags do share clusters
    R = reduce_redundancy(world.Y_train, labels, seed=0)
    assert ((R == 1) <= (world.Y_train == 1)).all()  # a subset of the tags
    for r, y in zip(R, world.Y_train, strict=True):
        kept, had = labels[r > 0], labels[y > 0]
        assert len(kept) == len(set(kept)) == len(set(had))  # one tag per cluster it had
    assert R.sum() < world.Y_train.sum()
    assert np.array_equal(R, reduce_redundancy(world.Y_train, labels, seed=0))


def test_tag_clusters_group_near_synonyms():
    words, vectors = load_tag_vectors()
    labels = tag_clusters(euclidean(vectors, scale=True))
    lab = dict(zip(words, labels, strict=True))
    assert lab["dog"] == lab["dogs"] and lab["car"] == lab["cars"]
    assert lab["dog"] != lab["car"]


def test_load_tags_default_and_reduced():
    d = load_tags(full=False, **SMALL)
    r = load_tags(reduced=True, full=False, **SMALL)
    assert d.source == "simulated" and not d.reduced and r.reduced
    assert np.array_equal(d.X_train, r.X_train)
    assert r.Y_train.sum() < d.Y_train.sum() and (r.Y_test.sum(1) >= 1).all()


def _write_small_dataset(root, K=6, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"tag{i}" for i in range(K)]
    vectors = rng.standard_normal((K, 5))
    splits = {}
    for name, n in (("train", 8), ("test", 4)):
        Y = (rng.random((n, K)) < 0.4).astype(np.float32)
        Y[:, 0] = 1
        splits[name] = (
            rng.standard_normal((n, 3)),
            sp.csr_matrix(Y),
            [f"{name}{i}" for i in range(n)],
        )
    tag_format.write_tag_dataset(root, words, vectors, splits)
    return words, vectors, splits


def test_tag_format_round_trip(tmp_path):
    words, vectors, splits = _write_small_dataset(tmp_path)
    w2, v2, s2 = tag_format.read_tag_dataset(tmp_path)
    assert w2 == words and np.allclose(v2, vectors)
    for name in ("train", "test"):
        X, Y, ids = splits[name]
        assert np.allclose(s2[name][0], X)
        assert (s2[name][1] != Y).nnz == 0
        assert s2[name][2] == ids
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_load_tags_reads_the_prepared_format(tmp_path):
    _write_small_dataset(tmp_path)
    d = load_tags(full=True, root=tmp_path)
    assert d.source == str(tmp_path) and d.X_train.shape == (8, 3) and d.Y_test.shape == (4, 6)
    assert d.M.shape == (6, 6)


def test_load_tags_falls_back_loudly(tmp_path, capsys):
    with pytest.warns(FullDataMissingWarning, match="prepare_flickr.py"):
        d = load_tags(full=True, root=tmp_path / "nothing", **SMALL)
    assert "prepare_flickr.py" in capsys.readouterr().out
    assert d.source == "simulated"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_tags(full=False, root=tmp_path / "nothing", **SMALL)  # quiet when not asked


def test_bad_inputs(tmp_path, world):
    for kw in (
        dict(n_train=0),
        dict(n_concepts=0),
        dict(neighbourhood=10_000),
        dict(tags_per_concept=0.5),
        dict(feature_noise=-1.0),
        dict(p_noise_tag=2.0),
    ):
        name = next(iter(kw))
        with pytest.raises(ValueError, match="vectors" if name == "neighbourhood" else name):
            make_tag_world(**{**SMALL, **kw})
    with pytest.raises(ValueError, match="labels"):
        reduce_redundancy(world.Y_train, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="M"):
        tag_clusters(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="threshold"):
        tag_clusters(world.M, threshold=-1)
    with pytest.raises(FileNotFoundError, match="prepare_tag_vectors"):
        load_tag_vectors(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="prepare_flickr"):
        tag_format.read_tag_dataset(tmp_path)
    with pytest.raises(ValueError, match="vectors"):
        tag_format.write_tag_dataset(tmp_path, ["a", "b"], np.zeros((3, 2)), {})
    with pytest.raises(ValueError, match="words"):
        tag_format.write_tag_dataset(tmp_path, ["a", "a"], np.zeros((2, 2)), {})
    with pytest.raises(ValueError, match="splits"):
        tag_format.write_tag_dataset(
            tmp_path,
            ["a", "b"],
            np.zeros((2, 2)),
            {"val": (np.zeros((1, 2)), np.zeros((1, 2)), ["x"])},
        )
    with pytest.raises(ValueError, match="splits"):
        tag_format.write_tag_dataset(
            tmp_path,
            ["a", "b"],
            np.zeros((2, 2)),
            {"train": (np.zeros((2, 2)), np.zeros((1, 2)), ["x"])},
        )
    with pytest.raises(ValueError, match="line breaks"):
        tag_format.save_lines(tmp_path / "v.txt", ["a\nb"])
