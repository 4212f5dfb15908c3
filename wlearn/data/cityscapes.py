"""Cityscapes: labels, paired transforms and one Dataset for real and generated scenes.

Class definitions come from the official ``cityscapesscripts`` package (never copied by
hand): the 19 evaluated classes, their names, colours and categories, and the map from
the ``labelIds`` stored in ``gtFine`` files to ``trainIds`` (255 = ignored).

The same :class:`Cityscapes` class reads the real dataset (``leftImg8bit/{split}/{city}/
*_leftImg8bit.png`` and ``gtFine/{split}/{city}/*_gtFine_labelIds.png``) and the street
scenes of :mod:`wlearn.data.scenes`, either written to disk in that layout by
``data_scripts/make_scenes.py`` or kept in memory (:func:`generated_scenes`).

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from cityscapesscripts.helpers import labels as _cs
from torch.utils.data import Dataset

from wlearn.data._common import DATA_ROOT, full_data_missing

IGNORE_INDEX = 255
"""``trainId`` of every pixel left out of training and evaluation."""

_TRAIN = sorted((lab for lab in _cs.labels if 0 <= lab.trainId < 255), key=lambda lab: lab.trainId)
NUM_CLASSES = len(_TRAIN)  # 19
CLASS_NAMES: tuple[str, ...] = tuple(lab.name for lab in _TRAIN)
"""Names of the 19 train classes, indexed by ``trainId``."""
CATEGORIES: tuple[str, ...] = tuple(lab.category for lab in _TRAIN)
"""Official category of each train class (flat, construction, object, nature, sky, human, vehicle)."""
LABEL_IDS: tuple[int, ...] = tuple(lab.id for lab in _TRAIN)
"""``labelId`` (as stored in ``*_gtFine_labelIds.png``) of each train class."""
PALETTE = np.array([lab.color for lab in _TRAIN], dtype=np.uint8)  # (19, 3)
"""Official RGB colour of each train class, shape (19, 3)."""

ID_TO_TRAINID = np.full(256, IGNORE_INDEX, dtype=np.uint8)
"""Lookup table ``labelId -> trainId`` (255 for every ignored or unknown id), shape (256,)."""
for _lab in _cs.labels:
    if 0 <= _lab.id < 256 and 0 <= _lab.trainId < 255:
        ID_TO_TRAINID[_lab.id] = _lab.trainId

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_id(name: str) -> int:
    """``trainId`` of a class given by its official name (e.g. ``"person"`` -> 11).

    Parameters
    ----------
    name : str
        One of :data:`CLASS_NAMES`.

    Returns
    -------
    int

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    if name not in CLASS_NAMES:
        raise ValueError(
            f"name: expected one of {CLASS_NAMES}, got {name!r}; use the official "
            "lower-case name, e.g. 'traffic light'"
        )
    return CLASS_NAMES.index(name)


def to_train_ids(label_ids):
    """Map ``labelIds`` to ``trainIds`` (255 for ignored ids).

    Parameters
    ----------
    label_ids : numpy array or torch tensor of integers, any shape, values in [0, 255]

    Returns
    -------
    numpy array or torch tensor, the shape of ``label_ids``
        numpy ``uint8`` or torch ``int64``.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    if isinstance(label_ids, torch.Tensor):
        lut = torch.as_tensor(ID_TO_TRAINID, device=label_ids.device).long()
        return lut[label_ids.long()]
    a = np.asarray(label_ids)
    if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < 0 or a.max() > 255)):
        raise ValueError(
            f"label_ids: expected integers in [0, 255], got dtype {a.dtype}; pass "
            "the label PNG as read (np.array(Image.open(path)))"
        )
    return ID_TO_TRAINID[a]


def colorize(train_ids) -> np.ndarray:
    """Paint a ``trainId`` map in the official palette (ignored pixels black).

    Parameters
    ----------
    train_ids : array or tensor of integers, shape (H, W)

    Returns
    -------
    rgb : numpy ``uint8`` array, shape (H, W, 3)

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    t = train_ids.cpu().numpy() if isinstance(train_ids, torch.Tensor) else np.asarray(train_ids)
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = PALETTE
    return lut[t.astype(np.int64).clip(0, 255)]


class PairedTransform:
    """Random scale, crop and horizontal flip applied identically to an image and its label.

    The image is resampled bilinearly, the label with nearest neighbour (so no new classes
    appear); crops that fall outside the image are padded with 0 (image) and 255 (label).

    Parameters
    ----------
    scale : (float, float) or None
        Range of the random rescaling factor (``None``: no rescaling).
    crop : (int, int) or None
        Output size ``(H, W)`` of the random crop (``None``: no crop).
    hflip : bool
        Flip left-right with probability 1/2.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """

    def __init__(self, scale=(0.75, 1.25), crop=None, hflip: bool = True):
        if scale is not None and not (len(scale) == 2 and 0 < scale[0] <= scale[1]):
            raise ValueError(f"scale: expected (low, high) with 0 < low <= high, got {scale!r}")
        if crop is not None and not (len(crop) == 2 and min(crop) > 0):
            raise ValueError(f"crop: expected (H, W) with positive entries, got {crop!r}")
        self.scale, self.crop, self.hflip = scale, crop, bool(hflip)

    def __call__(self, image: torch.Tensor, target: torch.Tensor):
        """Transform a pair with one random draw.

        Parameters
        ----------
        image : torch.Tensor, shape (3, H, W), float
        target : torch.Tensor, shape (H, W), int64

        Returns
        -------
        image : torch.Tensor, shape (3, H', W')
        target : torch.Tensor, shape (H', W')
            ``(H', W')`` = ``crop`` when given.
        """
        if self.scale is not None and self.scale != (1, 1):
            lo, hi = self.scale
            s = lo + (hi - lo) * torch.rand(()).item()
            h, w = max(1, round(image.shape[1] * s)), max(1, round(image.shape[2] * s))
            image = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            target = F.interpolate(target[None, None].float(), size=(h, w), mode="nearest")[
                0, 0
            ].long()
        if self.crop is not None:
            ch, cw = self.crop
            ph, pw = max(0, ch - image.shape[1]), max(0, cw - image.shape[2])
            if ph or pw:
                image = F.pad(image, (0, pw, 0, ph), value=0.0)
                target = F.pad(target, (0, pw, 0, ph), value=IGNORE_INDEX)
            y = torch.randint(0, image.shape[1] - ch + 1, ()).item()
            x = torch.randint(0, image.shape[2] - cw + 1, ()).item()
            image, target = image[:, y : y + ch, x : x + cw], target[y : y + ch, x : x + cw]
        if self.hflip and torch.rand(()).item() < 0.5:
            image, target = image.flip(-1), target.flip(-1)
        return image, target


class Cityscapes(Dataset):
    """Image/label pairs in the Cityscapes layout, as ``(image, target)`` tensors.

    ``image``: float32 ``(3, H, W)``, normalized with ``mean``/``std``; ``target``: int64
    ``(H, W)`` of ``trainIds`` in ``[0, 19)`` or 255 (ignored).

    Parameters
    ----------
    root : str or Path
        Folder holding ``leftImg8bit/`` and ``gtFine/``.
    split : {"train", "val", "test"}
    transform : callable or None
        Called as ``transform(image, target)`` before normalization, e.g. :class:`PairedTransform`.
    size : (int, int) or None
        Resize every pair to ``(H, W)`` first (bilinear / nearest): e.g. (256, 512) on a CPU.
    mean, std : 3-tuples
        Per-channel normalization (default ImageNet).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """

    def __init__(
        self,
        root,
        split: str = "train",
        *,
        transform=None,
        size=None,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    ):
        self.transform, self.size = transform, size
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]  # (3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]  # (3, 1, 1)
        self._images = self._labels = None
        if root is None:  # in memory: see from_arrays
            self.files = []
            return
        if split not in ("train", "val", "test"):
            raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
        root = Path(root)
        img_dir = root / "leftImg8bit" / split
        if not img_dir.is_dir():
            raise ValueError(
                f"root: no folder {img_dir}. Download leftImg8bit_trainvaltest.zip and "
                "gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com into it, or "
                f"generate street scenes: python data_scripts/make_scenes.py --root {root}"
            )
        self.files = []
        for img in sorted(img_dir.glob("*/*_leftImg8bit.png")):
            stem = img.name[: -len("_leftImg8bit.png")]
            lab = root / "gtFine" / split / img.parent.name / f"{stem}_gtFine_labelIds.png"
            if not lab.is_file():
                raise ValueError(f"root: image {img} has no label file {lab}")
            self.files.append((img, lab))
        if not self.files:
            raise ValueError(f"root: no *_leftImg8bit.png files under {img_dir}/<city>/")

    @classmethod
    def from_arrays(cls, images, label_ids, **kwargs) -> Cityscapes:
        """A dataset held in memory.

        Parameters
        ----------
        images : uint8 array, shape (N, H, W, 3)
        label_ids : integer array, shape (N, H, W), Cityscapes ``labelIds`` (not ``trainIds``)
        **kwargs
            ``transform``, ``size``, ``mean``, ``std`` as in the constructor.

        Returns
        -------
        Cityscapes
        """
        images, label_ids = np.asarray(images), np.asarray(label_ids)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"images: expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}"
                "; pass RGB images as read from PNG files (channels last, 0..255)"
            )
        if label_ids.shape != images.shape[:3]:
            raise ValueError(
                f"label_ids: expected shape {images.shape[:3]}, got {label_ids.shape}"
                "; give one label map per image, of the image's height and width"
            )
        ds = cls(None, **kwargs)
        ds._images = torch.from_numpy(images).permute(0, 3, 1, 2)  # (N, 3, H, W)
        ds._labels = torch.from_numpy(to_train_ids(label_ids).astype(np.int64))  # (N, H, W)
        return ds

    def __len__(self) -> int:
        return len(self._images) if self._images is not None else len(self.files)

    def _load(self, i: int):
        if self._images is not None:
            return self._images[i].float() / 255, self._labels[i]
        from PIL import Image

        img_path, lab_path = self.files[i]
        img = torch.from_numpy(np.array(Image.open(img_path).convert("RGB"))).permute(2, 0, 1)
        lab = torch.from_numpy(to_train_ids(np.array(Image.open(lab_path))).astype(np.int64))
        return img.float() / 255, lab  # (3, H, W), (H, W)

    def __getitem__(self, i: int):
        image, target = self._load(i)
        if self.size is not None and tuple(image.shape[1:]) != tuple(self.size):
            image = F.interpolate(
                image[None], size=self.size, mode="bilinear", align_corners=False
            )[0]
            target = F.interpolate(target[None, None].float(), size=self.size, mode="nearest")[
                0, 0
            ].long()
        if self.transform is not None:
            image, target = self.transform(image, target)
        return (image - self.mean) / self.std, target

    def denormalize(self, image: torch.Tensor) -> np.ndarray:
        """Undo the normalization, for display.

        Parameters
        ----------
        image : torch.Tensor, shape (3, H, W)
            A normalized image of this dataset.

        Returns
        -------
        numpy.ndarray, shape (H, W, 3)
            Floats in [0, 1].
        """
        x = image.detach().cpu() * self.std + self.mean
        return x.clamp(0, 1).permute(1, 2, 0).numpy()


def generated_scenes(n: int, *, height: int = 64, width: int = 128, seed=0, **kwargs) -> Cityscapes:
    """``n`` street scenes of :func:`wlearn.data.scenes.generate_scenes`, in memory (no disk).

    Parameters
    ----------
    n : int
        Number of scenes.
    height, width : int
        Image size (at least 32 x 32).
    seed : int or list of int
        Seeds the scenes.
    **kwargs
        Passed to :class:`Cityscapes` (``transform``, ``size``, ``mean``, ``std``).

    Returns
    -------
    Cityscapes

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    from wlearn.data.scenes import generate_scenes

    images, label_ids = generate_scenes(n, height=height, width=width, seed=seed)
    return Cityscapes.from_arrays(images, label_ids, **kwargs)


def load_cityscapes(
    split: str = "train",
    *,
    full: bool | None = None,
    n: int = 256,
    height: int = 64,
    width: int = 128,
    seed: int = 0,
    **kwargs,
) -> Cityscapes:
    """The lesson's data: generated scenes by default, real Cityscapes with ``WLEARN_FULL=1``.

    With ``full`` (default :data:`wlearn.FULL`) it reads ``DATA_ROOT/cityscapes`` at ``size``
    (pass e.g. ``size=(256, 512)``); if that folder is missing it says so loudly and falls back
    to ``n`` generated scenes of ``height x width``. The generated splits are drawn from the
    seeds ``[seed, 0]`` (train) and ``[seed, 1]`` (val), so they never share a scene, and they
    are the scenes ``data_scripts/make_scenes.py --seed seed`` writes to disk.

    Parameters
    ----------
    split : {"train", "val"}
    full : bool, optional
        Read the real data; default :data:`wlearn.FULL`.
    n : int
        Number of generated scenes.
    height, width : int
        Size of the generated scenes.
    seed : int
        Seeds the generated scenes.
    **kwargs
        Passed to :class:`Cityscapes` (``transform``, ``mean``, ``std``; ``size`` for the real
        data only).

    Returns
    -------
    Cityscapes

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    if split not in ("train", "val"):
        raise ValueError(
            f"split: expected 'train' or 'val', got {split!r}; the test split has no public labels"
        )
    if full is None:
        from wlearn import FULL as full
    root = DATA_ROOT / "cityscapes"
    if full:
        if (root / "leftImg8bit" / split).is_dir():
            return Cityscapes(root, split, **kwargs)
        full_data_missing(
            "Cityscapes",
            root,
            f"make_scenes.py --root {root}   (or unzip the official leftImg8bit/gtFine there)",
            f"{n} generated street scenes of {height}x{width}",
        )
    kwargs.pop("size", None)
    return generated_scenes(
        n, height=height, width=width, seed=[seed, int(split == "val")], **kwargs
    )


def cityscapes_ready(root=None) -> bool:
    """Whether real (or generated) Cityscapes-layout data is prepared for ``WLEARN_SIZE=full``.

    Parameters
    ----------
    root : str or Path or None
        Default ``DATA_ROOT/cityscapes`` (``data_scripts/prepare_cityscapes.py`` writes it).

    Returns
    -------
    bool
        True when ``leftImg8bit/train`` and ``gtFine/val`` are there.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    root = DATA_ROOT / "cityscapes" if root is None else Path(root)
    return (root / "leftImg8bit" / "train").is_dir() and (root / "gtFine" / "val").is_dir()
