"""Tag prediction data (Frogner et al. 2015, Sec. 6.2): a simulated tag world on real word
vectors by default, the prepared Flickr (YFCC100M) tag dataset with ``WLEARN_FULL=1``.

The default **items are simulated; the word metric is real**: the tag vocabulary is a few
hundred descriptive Flickr-style tags, embedded with the GloVe 6B 50-d vectors (committed in
``wlearn/data/embedded/tag_vectors.npz`` by ``data_scripts/prepare_tag_vectors.py``), and the
ground metric is the Euclidean distance between unit word vectors, scaled into [0, 1)
(footnote 5). Each simulated item draws one to three latent concepts (points of the real word
space: k-means centres of the vocabulary); its applicable tags are each concept's semantic
neighbourhood (the nearest tags in the real space); a user tags it partially and
redundantly (several near-synonyms of one concept, none of another's, now and then an
unrelated popular tag); its features are a noisy linear projection of its concepts.

The reduced-redundancy variant keeps, for every item, one tag from each cluster of similar
tags that it carries ("selecting one tag to apply from amongst each cluster of applicable,
semantically similar tags", Sec. 6.2).

Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wlearn._env import FULL
from wlearn.data._common import DATA_ROOT, full_data_missing
from wlearn.data.tag_format import read_tag_dataset
from wlearn.ground import euclidean

EMBEDDED_VECTORS = Path(__file__).resolve().parent / "embedded" / "tag_vectors.npz"
"""The committed word-vector table of :data:`DEFAULT_TAGS` (GloVe 6B 50-d, PDDL 1.0)."""

FLICKR_DIR = "flickr"
"""Sub-directory of ``DATA_ROOT`` written by ``data_scripts/prepare_flickr.py``."""

DEFAULT_TAGS: tuple[str, ...] = tuple(
    """
beach sea ocean sand waves surf coast shore island bay harbor boat sailing ship yacht pier
lighthouse sunset sunrise sky clouds sun dusk dawn horizon twilight rainbow storm lightning rain
fog mist mountain mountains hiking peak valley cliff rocks canyon hill hills alps glacier
volcano trail climbing snow winter ice frozen cold skiing snowboarding frost snowman snowy
forest trees tree woods leaves autumn fall foliage moss fern jungle park nature landscape
flower flowers garden rose tulip daisy orchid bloom blossom spring petals sunflower lily
dog puppy dogs cat kitten cats pet horse pony cow sheep goat pig chicken farm barn bird birds
eagle owl duck swan seagull parrot pigeon heron zoo lion tiger elephant giraffe monkey bear
zebra wildlife safari insect butterfly bee spider dragonfly fish aquarium underwater diving
coral shark dolphin whale turtle city street urban downtown skyline skyscraper building
buildings architecture bridge tower road highway traffic car cars truck bus taxi motorcycle
bike bicycle train railway station subway airport airplane plane night lights neon fireworks
lamp candle light shadow church cathedral temple mosque castle palace ruins monument statue
museum sculpture art painting graffiti mural gallery drawing design people portrait face
smile woman man girl boy child children baby family friends kids wedding bride groom party
birthday celebration festival parade carnival costume concert music band guitar drums singer
stage dance dancing food dinner lunch breakfast restaurant cake pizza bread coffee wine beer
cocktail fruit vegetables cheese chocolate dessert sports football soccer baseball basketball
tennis golf hockey racing stadium marathon water river lake waterfall stream pond reflection
desert dunes cactus christmas holiday vacation travel tourism trip house home kitchen window
door interior room fountain bench market shop shopping school university campus students
protest police soldier army fashion dress model sunny summer tropical palm village
countryside field meadow grass harvest wheat camping tent campfire fishing kayak canoe
swimming pool blue green red yellow white black old vintage
""".split()
)
"""The embedded vocabulary: descriptive Flickr-style tags, all in the GloVe 6B vocabulary."""


@dataclass
class TagData:
    """A multi-label tag dataset.

    Attributes
    ----------
    X_train, X_test : np.ndarray, shape (N, F), float32
        Item features.
    Y_train, Y_test : np.ndarray, shape (N, K), float32
        Observed tags, 0/1 (every item carries at least one tag).
    words : list of str, length K
        The tag vocabulary.
    vectors : np.ndarray, shape (K, d)
        Word vectors of ``words``.
    source : str
        ``"simulated"`` or the directory the data was read from.
    reduced : bool
        True for the reduced-redundancy variant.
    concepts_test : list of list of str or None
        Simulated world only: the names of each test item's latent concepts.

    Introduced in notebooks/06_tag_prediction.ipynb.
    """

    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    words: list[str]
    vectors: np.ndarray
    source: str = "simulated"
    reduced: bool = False
    concepts_test: list[list[str]] | None = field(default=None, repr=False)

    @property
    def M(self) -> torch.Tensor:
        """Ground metric ``M[k, k'] = ||v_k/|v_k| - v_k'/|v_k'| ||``, scaled into [0, 1);
        shape (K, K), float64 (Frogner et al. 2015, Sec. 6.2 and footnote 5)."""
        return euclidean(self.vectors, normalize=True, scale=True)


def load_tag_vectors(path: str | Path = EMBEDDED_VECTORS) -> tuple[list[str], np.ndarray]:
    """Read a word-vector table written by ``data_scripts/prepare_tag_vectors.py``.

    Parameters
    ----------
    path : str or Path
        An ``.npz`` with ``words`` and ``vectors`` (default: the committed table).

    Returns
    -------
    words : list of str, length K
    vectors : np.ndarray, shape (K, d), float32

    Introduced in notebooks/06_tag_prediction.ipynb.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"path: no word-vector table at {path}; run data_scripts/prepare_tag_vectors.py"
        )
    with np.load(path, allow_pickle=False) as z:
        words = [str(w) for w in z["words"]]
        vectors = np.asarray(z["vectors"], dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(
            f"path: expected 'vectors' of shape ({len(words)}, d) in {path}, got {vectors.shape}"
            "; run data_scripts/prepare_tag_vectors.py again"
        )
    return words, vectors


def _check_int(x, name: str, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {x!r}")
    return int(x)


def _unit(V: np.ndarray) -> np.ndarray:
    return V / np.linalg.norm(V, axis=1, keepdims=True)


def _concept_centres(U: np.ndarray, C: int, rng: np.random.Generator) -> np.ndarray:
    """Spherical k-means (k-means++ start, 30 Lloyd steps) of unit rows ``U`` (K, d) -> (C, d)."""
    K = U.shape[0]
    centres = [U[rng.integers(K)]]
    for _ in range(C - 1):
        d2 = np.min(2 - 2 * U @ np.stack(centres).T, axis=1).clip(0)  # (K,)
        centres.append(U[rng.choice(K, p=d2 / d2.sum())])
    c = np.stack(centres)  # (C, d)
    for _ in range(30):
        lab = np.argmax(U @ c.T, axis=1)  # (K,)
        for j in range(C):
            if (lab == j).any():
                c[j] = U[lab == j].sum(0)
        c = _unit(c)
    return c


def make_tag_world(
    n_train: int = 1500,
    n_test: int = 1000,
    *,
    n_concepts: int = 60,
    n_features: int = 64,
    neighbourhood: int = 8,
    tags_per_concept: float = 2.0,
    feature_noise: float = 2.0,
    p_noise_tag: float = 0.2,
    seed: int = 0,
    words: list[str] | None = None,
    vectors: np.ndarray | None = None,
) -> TagData:
    """Simulate a Flickr-like tag world on real word vectors (seeded, deterministic).

    Concepts are ``n_concepts`` spherical k-means centres of the unit word vectors. Tag ``k``
    belongs to concept ``c``'s neighbourhood when it is among its ``neighbourhood`` nearest
    tags; a user picks it with probability proportional to ``pop_k * exp(-4 ||c - v_k||)``
    (``pop_k`` a Zipf popularity). Each item draws 1, 2 or 3 concepts (probabilities
    0.5, 0.35, 0.15; concepts themselves Zipf-popular) with strengths ``s ~ U(0.5, 1.5)``,
    ``1 + Poisson(tags_per_concept - 1)`` tags per concept without replacement, and with
    probability ``p_noise_tag`` one extra popular tag. Features:
    ``x = z A + feature_noise * eps``, ``z`` the (C,) concept strengths, ``A`` a fixed
    (C, F) Gaussian matrix with rows of unit norm, ``eps ~ N(0, I_F / F)``.

    Parameters
    ----------
    n_train, n_test : int
        Numbers of items.
    n_concepts, n_features, neighbourhood : int
        C, F and the size of a concept's tag neighbourhood.
    tags_per_concept : float
        Mean number of tags a user gives per concept (>= 1).
    feature_noise : float
        Standard deviation of the feature noise relative to a unit concept signal.
    p_noise_tag : float
        Probability of one unrelated popular tag per item.
    seed : int
    words, vectors : optional
        Vocabulary and (K, d) vectors; default the embedded table (:func:`load_tag_vectors`).

    Returns
    -------
    TagData
        With ``concepts_test`` naming each test item's concepts by their nearest tag.

    A stand-in for the Flickr data of Frogner et al. 2015, Sec. 6.2. Introduced in notebooks/06_tag_prediction.ipynb.
    """
    n_train, n_test = _check_int(n_train, "n_train", 1), _check_int(n_test, "n_test", 1)
    C = _check_int(n_concepts, "n_concepts", 1)
    F = _check_int(n_features, "n_features", 1)
    m = _check_int(neighbourhood, "neighbourhood", 1)
    if not np.isfinite(tags_per_concept) or tags_per_concept < 1:
        raise ValueError(f"tags_per_concept: expected a number >= 1, got {tags_per_concept!r}")
    if not np.isfinite(feature_noise) or feature_noise < 0:
        raise ValueError(f"feature_noise: expected a number >= 0, got {feature_noise!r}")
    if not 0 <= p_noise_tag <= 1:
        raise ValueError(f"p_noise_tag: expected a probability in [0, 1], got {p_noise_tag!r}")
    if words is None or vectors is None:
        words, vectors = load_tag_vectors()
    vectors = np.asarray(vectors, dtype=np.float64)
    K = len(words)
    if vectors.shape[0] != K or not (C <= K and m <= K):
        raise ValueError(
            f"vectors: expected ({K}, d) with n_concepts ({C}) and neighbourhood ({m}) <= K, "
            f"got {vectors.shape}"
        )
    rng = np.random.default_rng(seed)
    U = _unit(vectors)
    centres = _concept_centres(U, C, rng)
    dist = np.sqrt(np.clip(2 - 2 * centres @ U.T, 0, None))  # (C, K)
    near = np.argsort(dist, axis=1, kind="stable")[:, :m]  # (C, m)
    pop = 1.0 / np.sqrt(1.0 + rng.permutation(K))  # (K,) Zipf-like tag popularity
    pick = pop[near] * np.exp(-4.0 * np.take_along_axis(dist, near, 1))  # (C, m)
    pick /= pick.sum(1, keepdims=True)
    cpop = 1.0 / (1.0 + rng.permutation(C)) ** 0.7
    cpop /= cpop.sum()
    A = rng.standard_normal((C, F))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    names = [words[int(np.argmin(d))] for d in dist]

    N = n_train + n_test
    Z = np.zeros((N, C))
    Y = np.zeros((N, K), dtype=np.float32)
    n_c = rng.choice([1, 2, 3], size=N, p=[0.5, 0.35, 0.15])
    for i in range(N):
        cs = rng.choice(C, size=n_c[i], replace=False, p=cpop)
        Z[i, cs] = rng.uniform(0.5, 1.5, size=n_c[i])
        for c in cs:
            n_t = min(m, 1 + rng.poisson(tags_per_concept - 1))
            Y[i, near[c, rng.choice(m, size=n_t, replace=False, p=pick[c])]] = 1
        if rng.random() < p_noise_tag:
            Y[i, rng.choice(K, p=pop / pop.sum())] = 1
    X = (Z @ A + feature_noise * rng.standard_normal((N, F)) / np.sqrt(F)).astype(np.float32)
    concepts = [[names[c] for c in np.flatnonzero(z)] for z in Z[n_train:]]
    return TagData(
        X[:n_train],
        Y[:n_train],
        X[n_train:],
        Y[n_train:],
        list(words),
        vectors.astype(np.float32),
        concepts_test=concepts,
    )


def tag_clusters(M, threshold: float = 0.45) -> np.ndarray:
    """Group tags into clusters of similar tags: average-linkage agglomerative clustering of the
    ground metric, cut at ``threshold`` (in the units of ``M``).

    Parameters
    ----------
    M : array or tensor, shape (K, K)
        Symmetric ground metric with zero diagonal.
    threshold : float
        Largest average distance inside a cluster.

    Returns
    -------
    labels : np.ndarray, shape (K,), int
        Cluster index of every tag, 0..n_clusters-1.

    The clusters of the reduced-redundancy variant (Frogner et al. 2015, Sec. 6.2).
    Introduced in notebooks/06_tag_prediction.ipynb.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    M = np.asarray(M.detach().cpu() if isinstance(M, torch.Tensor) else M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or not np.allclose(M, M.T):
        raise ValueError(
            f"M: expected a symmetric (K, K) matrix, got shape {M.shape}; pass "
            "distances between tags such as TagData.M"
        )
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold: expected a number >= 0, got {threshold!r}")
    if M.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    Z = linkage(squareform(M, checks=False), method="average")
    return fcluster(Z, t=threshold, criterion="distance").astype(np.int64) - 1


def reduce_redundancy(Y, labels, seed: int = 0) -> np.ndarray:
    """Keep, for every item, one tag (chosen at random) from each cluster it has tags in.

    Parameters
    ----------
    Y : array, shape (N, K)
        0/1 tags.
    labels : array, shape (K,)
        Cluster of every tag (:func:`tag_clusters`).
    seed : int

    Returns
    -------
    Y_reduced : np.ndarray, shape (N, K), float32
        A subset of ``Y``'s tags with at most one per cluster per item; an item keeps at
        least one tag whenever it had one.

    The reduced-redundancy variant of Frogner et al. 2015, Sec. 6.2. Introduced in notebooks/06_tag_prediction.ipynb.
    """
    Y = np.asarray(Y)
    labels = np.asarray(labels)
    if Y.ndim != 2 or labels.shape != (Y.shape[1],):
        raise ValueError(
            f"labels: expected shape ({Y.shape[-1]},) to match Y of shape {Y.shape}, "
            f"got {labels.shape}; pass one cluster label per tag (tag_clusters(M))"
        )
    rng = np.random.default_rng(seed)
    out = np.zeros(Y.shape, dtype=np.float32)
    for i in range(Y.shape[0]):
        tags = np.flatnonzero(Y[i])
        for c in np.unique(labels[tags]):
            out[i, rng.choice(tags[labels[tags] == c])] = 1
    return out


def load_tags(
    reduced: bool = False,
    *,
    full: bool | None = None,
    root: str | Path | None = None,
    seed: int = 0,
    threshold: float = 0.45,
    **world,
) -> TagData:
    """The tag-prediction data of notebooks/06_tag_prediction.ipynb.

    Parameters
    ----------
    reduced : bool
        Return the reduced-redundancy variant (one tag per cluster of similar tags, clusters
        from :func:`tag_clusters` at ``threshold``).
    full : bool, optional
        Read the prepared Flickr data (default ``wlearn.FULL``); when it is missing, say so
        loudly and fall back to the simulated world.
    root : path, optional
        Directory of the prepared data (default ``DATA_ROOT/flickr``).
    seed : int
        Seed of the simulated world and of the tag kept per cluster.
    threshold : float
        Cluster cut of :func:`tag_clusters` (``reduced`` only).
    **world
        Passed to :func:`make_tag_world` (simulated world only).

    Returns
    -------
    TagData
    """
    full = FULL if full is None else bool(full)
    root = Path(root) if root is not None else DATA_ROOT / FLICKR_DIR
    data = None
    if full:
        if (root / "vocab.txt").is_file():
            words, vectors, splits = read_tag_dataset(root)
            (X_tr, Y_tr), (X_te, Y_te) = splits["train"][:2], splits["test"][:2]
            data = TagData(
                X_tr,
                Y_tr.toarray().astype(np.float32),
                X_te,
                Y_te.toarray().astype(np.float32),
                words,
                vectors,
                source=str(root),
            )
        else:
            full_data_missing(
                "Flickr tag",
                root,
                "prepare_flickr.py",
                "the simulated tag world on embedded GloVe vectors",
            )
    if data is None:
        data = make_tag_world(seed=seed, **world)
    if reduced:
        labels = tag_clusters(data.M, threshold)
        data.Y_train = reduce_redundancy(data.Y_train, labels, seed)
        data.Y_test = reduce_redundancy(data.Y_test, labels, seed + 1)
        data.reduced = True
    return data
