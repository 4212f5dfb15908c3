"""A domain shift for unsupervised domain adaptation, in the Cityscapes label space.

Liu et al. (2020, Table 3) adapt a segmenter trained on labelled GTA5 frames (a video game)
to unlabelled Cityscapes photographs. The embedded stand-in keeps the *layout* of the street
scenes of :mod:`wlearn.data.scenes` (same classes, same geometry, same label statistics) and
changes their *appearance* between two styles:

- ``"source"``: the scenes as the generator draws them (the "game": clean, bright, saturated);
- ``"target"``: the same kind of scenes seen in another city at dusk: a different palette
  per class (grey overcast sky, autumn foliage, brick-red facades, dark wet asphalt, faded
  paint on vehicles, dark clothes), different lighting (darker, lower contrast, a vignette
  and a warm street-light gradient) and different textures (brick courses on buildings,
  grainy asphalt, blotchy foliage, optical blur and stronger sensor noise).

:func:`restyle` applies a style to generated images using their labels (so every class gets
its own palette and texture); :func:`load_adaptation` returns the three datasets of the task:
a labelled source training set, an unlabelled target training set (its labels are kept only to
*measure* the pseudo-labels, never to train) and a labelled target validation set. With
``WLEARN_FULL=1`` and prepared data it reads GTA5 (``DATA_ROOT/gta5/images/*.png`` and
``labels/*.png``, whose label PNGs hold Cityscapes ``labelIds``) as the source and Cityscapes
(``DATA_ROOT/cityscapes``) train and val as the target, and falls back loudly otherwise.

Introduced in notebooks/10_self_training_adaptation.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wlearn.data import scenes as _sc
from wlearn.data._common import DATA_ROOT, full_data_missing
from wlearn.data.cityscapes import IMAGENET_MEAN, IMAGENET_STD, Cityscapes

STYLES = ("source", "target")

# target palette: labelId -> (RGB the class is pulled towards, weight of the pull)
_TARGET_PALETTE = {
    _sc.SKY: ((0.55, 0.55, 0.58), 0.8),  # overcast
    _sc.VEGETATION: ((0.6, 0.42, 0.12), 0.7),  # autumn
    _sc.TERRAIN: ((0.45, 0.38, 0.2), 0.6),  # dry grass
    _sc.BUILDING: ((0.55, 0.28, 0.2), 0.55),  # brick
    _sc.WALL: ((0.35, 0.33, 0.3), 0.5),
    _sc.FENCE: ((0.25, 0.2, 0.15), 0.5),
    _sc.ROAD: ((0.16, 0.17, 0.2), 0.6),  # wet asphalt
    _sc.SIDEWALK: ((0.4, 0.38, 0.34), 0.5),
    _sc.POLE: ((0.2, 0.22, 0.2), 0.6),
    _sc.PERSON: ((0.2, 0.18, 0.2), 0.4),  # dark coats
    _sc.RIDER: ((0.2, 0.18, 0.2), 0.4),
    _sc.CAR: ((0.4, 0.4, 0.42), 0.35),  # faded paint
    _sc.TRUCK: ((0.4, 0.4, 0.42), 0.35),
    _sc.BUS: ((0.4, 0.4, 0.42), 0.35),
    _sc.TRAIN: ((0.4, 0.4, 0.42), 0.35),
}
_TEXTURED = {
    _sc.BUILDING: "brick",
    _sc.WALL: "brick",
    _sc.ROAD: "grain",
    _sc.SIDEWALK: "grain",
    _sc.VEGETATION: "blotch",
    _sc.TERRAIN: "blotch",
}


def _blur(img: np.ndarray) -> np.ndarray:
    """3x3 binomial blur of an (H, W, 3) image, edges replicated."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")  # (H+2, W+2, 3)
    k = (0.25, 0.5, 0.25)
    rows = k[0] * p[:-2] + k[1] * p[1:-1] + k[2] * p[2:]  # (H, W+2, 3)
    return k[0] * rows[:, :-2] + k[1] * rows[:, 1:-1] + k[2] * rows[:, 2:]  # (H, W, 3)


def _texture(kind: str, H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative texture (H, W), always positive: brick courses, asphalt grain or blotchy
    foliage. Grain and blotches are log-normal, ``exp(sigma * N(0, 1))``: a texture ``1 + sigma
    * N(0, 1)`` goes negative for a few pixels in a few thousand images, and a negative
    intensity raised to a fractional power (the lighting curve) is NaN."""
    yy, xx = np.mgrid[0:H, 0:W]
    if kind == "brick":
        ph = rng.integers(0, 4)
        return 1 - 0.25 * (((yy + ph) % 4) == 0) - 0.15 * (((xx + 3 * ((yy + ph) // 4)) % 6) == 0)
    if kind == "grain":
        return np.exp(0.18 * rng.standard_normal((H, W)))
    g = rng.standard_normal((H // 4 + 2, W // 4 + 2))
    return np.exp(0.25 * np.kron(g, np.ones((4, 4)))[:H, :W])  # (H, W)


def _target_style(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One image (H, W, 3) in [0, 1] with labelIds (H, W) -> the target style."""
    H, W = lab.shape
    yy, xx = np.mgrid[0:H, 0:W]
    out = img.copy()
    lum = img.mean(-1, keepdims=True)  # (H, W, 1): keep shading, change hue
    for lid, (rgb, w) in _TARGET_PALETTE.items():
        m = lab == lid
        if m.any():
            w = w * rng.uniform(0.8, 1.2)
            tint = np.asarray(rgb) * (0.6 + 0.8 * lum[m])  # (n, 3)
            out[m] = (1 - w) * img[m] + w * tint
    for lid, kind in _TEXTURED.items():
        m = lab == lid
        if m.any():
            out[m] *= _texture(kind, H, W, rng)[m][:, None]
    # lighting: darker and flatter, a warm glow from street lights low in the frame, vignette
    out = 0.05 + 0.75 * out**1.15 * rng.uniform(0.85, 1.1)
    glow = np.exp(-(((yy / H) - rng.uniform(0.5, 0.9)) ** 2) / 0.08)[..., None]  # (H, W, 1)
    out = out + 0.12 * glow * np.array([1.0, 0.7, 0.3])
    r2 = ((yy + 0.5) / H - 0.5) ** 2 + ((xx + 0.5) / W - 0.5) ** 2
    out = out * (1 - 0.5 * r2)[..., None]
    out = _blur(out) + rng.uniform(0.02, 0.045) * rng.standard_normal(out.shape)
    return np.clip(out, 0, 1)


def restyle(images, label_ids, style: str = "target", *, seed=0) -> np.ndarray:
    """Render generated scenes in a domain's style, class by class.

    Parameters
    ----------
    images : uint8 array, shape (N, H, W, 3)
        Scenes of :func:`wlearn.data.scenes.generate_scenes`.
    label_ids : integer array, shape (N, H, W)
        Their Cityscapes ``labelIds`` (used to give each class its palette and texture).
    style : {"source", "target"}
        ``"source"`` returns a copy of ``images`` (the generator's own look); ``"target"``
        changes palette, lighting and textures (see the module docstring).
    seed : int or list of int
        Seeds the random parts of the style (tints, texture phases, noise).

    Returns
    -------
    uint8 array, shape (N, H, W, 3)

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    if style not in STYLES:
        raise ValueError(f"style: expected one of {STYLES}, got {style!r}")
    images, label_ids = np.asarray(images), np.asarray(label_ids)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images: expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if label_ids.shape != images.shape[:3]:
        raise ValueError(f"label_ids: expected shape {images.shape[:3]}, got {label_ids.shape}")
    if style == "source":
        return images.copy()
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for i in range(len(images)):
        out[i] = (_target_style(images[i] / 255.0, label_ids[i], rng) * 255).astype(np.uint8)
    return out


def domain_scenes(
    n: int, style: str, *, height: int = 64, width: int = 128, seed=0, **kwargs
) -> Cityscapes:
    """``n`` generated scenes in ``style``, as an in-memory :class:`Cityscapes` dataset.

    The layouts are :func:`~wlearn.data.scenes.generate_scenes` ``(n, seed=seed)``; the
    target style is seeded by ``[seed, 7]``.

    Parameters
    ----------
    n : int
        Number of scenes.
    style : {"source", "target"}
        See :func:`restyle`.
    height, width : int
        Image size (at least 32 x 32).
    seed : int or list of int
        Seeds the layouts and the style.
    **kwargs
        Passed to :class:`Cityscapes` (``transform``, ``mean``, ``std``).

    Returns
    -------
    Cityscapes
        Items ``(image (3, H, W) float32, target (H, W) int64 trainIds)``.

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    images, label_ids = _sc.generate_scenes(n, height=height, width=width, seed=seed)
    seed_list = list(seed) if isinstance(seed, (list, tuple)) else [seed]
    images = restyle(images, label_ids, style, seed=seed_list + [7])
    return Cityscapes.from_arrays(images, label_ids, **kwargs)


class GTA5(Cityscapes):
    """GTA5 frames (Richter et al. 2016) with labels in the Cityscapes ``labelId`` space.

    Reads ``root/images/NNNNN.png`` and ``root/labels/NNNNN.png`` (the label PNGs' indices are
    Cityscapes ``labelIds``); items are ``(image (3, H, W) float32, target (H, W) int64
    trainIds)`` exactly as for :class:`Cityscapes`. The source domain of Liu et al. 2020,
    Table 3.

    Parameters
    ----------
    root : str or Path
        Folder holding ``images/`` and ``labels/`` (the GTA5 release of
        download.visinf.tu-darmstadt.de/data/from_games).
    transform, size, mean, std : see :class:`Cityscapes`
        Augmentation, resizing and normalization.

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """

    def __init__(self, root, *, transform=None, size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__(None, transform=transform, size=size, mean=mean, std=std)
        root = Path(root)
        if not (root / "images").is_dir():
            raise ValueError(
                f"root: no folder {root / 'images'}; unzip the GTA5 images/ and "
                "labels/ of download.visinf.tu-darmstadt.de/data/from_games there"
            )
        for img in sorted((root / "images").glob("*.png")):
            lab = root / "labels" / img.name
            if not lab.is_file():
                raise ValueError(
                    f"root: image {img} has no label file {lab}; unzip the GTA5 "
                    "labels archive next to the images"
                )
            self.files.append((img, lab))
        if not self.files:
            raise ValueError(
                f"root: no *.png files under {root / 'images'}; unzip the GTA5 images archive there"
            )


@dataclass
class AdaptationData:
    """The three datasets of unsupervised domain adaptation.

    Attributes
    ----------
    source : Cityscapes
        Labelled source-domain training set.
    target : Cityscapes
        Target-domain training set: train on its images only; its labels are there to
        measure pseudo-labels.
    target_val : Cityscapes
        Labelled target-domain evaluation set.
    source_val : Cityscapes
        Labelled source-domain evaluation set (to show the gap).
    full : bool
        Whether the paper-scale data (GTA5 -> Cityscapes) was loaded.

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """

    source: Cityscapes
    target: Cityscapes
    target_val: Cityscapes
    source_val: Cityscapes
    full: bool


def load_adaptation(
    *,
    full: bool | None = None,
    n_source: int = 256,
    n_target: int = 256,
    n_val: int = 128,
    height: int = 64,
    width: int = 128,
    seed: int = 0,
    size=(256, 512),
    **kwargs,
) -> AdaptationData:
    """Source and target domains: generated styles by default, GTA5 -> Cityscapes when full.

    Embedded (default): source = ``n_source`` scenes in the ``"source"`` style, target =
    ``n_target`` other scenes in the ``"target"`` style, target_val / source_val = ``n_val``
    further scenes in each style; all of ``height x width``, from disjoint seeds
    ``[seed, 10 + k]``. Full (``full`` or :data:`wlearn.FULL`): GTA5 from ``DATA_ROOT/gta5``
    (source; its last 500 frames are the source_val), Cityscapes train (target) and val
    (target_val) from ``DATA_ROOT/cityscapes``, resized to ``size``; if either is missing it
    says so loudly (:func:`wlearn.data.full_data_missing`) and uses the embedded domains.

    Parameters
    ----------
    full : bool, optional
        Paper-scale data; default :data:`wlearn.FULL`.
    n_source, n_target, n_val : int
        Numbers of generated scenes (embedded data only).
    height, width : int
        Size of the generated scenes.
    seed : int
        Seeds the generated scenes.
    size : (int, int)
        ``(H, W)`` the full data is resized to.
    **kwargs
        Passed to :class:`Cityscapes` (``transform``, ``mean``, ``std``).

    Returns
    -------
    AdaptationData

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    if full is None:
        from wlearn import FULL as full
    for name, v in (("n_source", n_source), ("n_target", n_target), ("n_val", n_val)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if full:
        gta, cs = DATA_ROOT / "gta5", DATA_ROOT / "cityscapes"
        have = (gta / "images").is_dir() and all(
            (cs / "leftImg8bit" / s).is_dir() for s in ("train", "val")
        )
        if have:
            import torch.utils.data as tud

            source = GTA5(gta, size=size, **kwargs)
            n = len(source)
            k = min(500, n // 10)
            return AdaptationData(
                source=tud.Subset(source, range(n - k)),
                target=Cityscapes(cs, "train", size=size, **kwargs),
                target_val=Cityscapes(cs, "val", size=size, **kwargs),
                source_val=tud.Subset(source, range(n - k, n)),
                full=True,
            )
        full_data_missing(
            "GTA5 -> Cityscapes",
            f"{gta} and {cs}",
            f"make_scenes.py --root {cs}   (Cityscapes), and unzip the GTA5 images/ and labels/ "
            f"of download.visinf.tu-darmstadt.de/data/from_games into {gta}",
            f"{n_source} + {n_target} generated scenes of {height}x{width} in two styles",
        )
    kw = dict(height=height, width=width, **kwargs)
    return AdaptationData(
        source=domain_scenes(n_source, "source", seed=[seed, 10], **kw),
        target=domain_scenes(n_target, "target", seed=[seed, 11], **kw),
        target_val=domain_scenes(n_val, "target", seed=[seed, 12], **kw),
        source_val=domain_scenes(n_val, "source", seed=[seed, 13], **kw),
        full=False,
    )
