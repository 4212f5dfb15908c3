"""Write generated street scenes in the Cityscapes layout.

    python data_scripts/make_scenes.py --root data/cityscapes --n-train 2975 --n-val 500 \
        --height 256 --width 512 --seed 0

writes ``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png`` and
``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png`` (Cityscapes labelIds, not
trainIds, exactly like the real dataset) and ``scenes.json`` (the generator's version, the
sizes, the seed and this command: the data version of a checkpoint trained on them), so that ``wlearn.data.cityscapes.Cityscapes`` and
the official ``cityscapesscripts`` tools read them unchanged. Every file is written to a
temporary name and renamed (atomic); re-running skips pairs that already exist.
Scenes come from :func:`wlearn.data.scenes.make_scene`; the val split uses a different seed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from wlearn.data.scenes import SCENES_VERSION, make_scene

MIN_SIZE = 1
"""Smallest ``--height`` and ``--width`` (0 would divide by zero in the scene layout)."""
CITIES = {"train": ("aachen", "bochum", "bremen"), "val": ("frankfurt", "lindau", "munster")}


def _save_png(array: np.ndarray, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)


def write_split(root: Path, split: str, n: int, height: int, width: int, seed: int) -> int:
    """Write ``n`` scenes of one split; returns the number of pairs written (not skipped)."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    written = 0
    for i in range(n):
        image, label_ids = make_scene(rng, height, width)  # always drawn: same scenes on re-runs
        city = CITIES[split][i % len(CITIES[split])]
        stem = f"{city}_{i // len(CITIES[split]):06d}_000019"
        img_dir, gt_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
        img, gt = img_dir / f"{stem}_leftImg8bit.png", gt_dir / f"{stem}_gtFine_labelIds.png"
        if img.is_file() and gt.is_file():
            continue
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        _save_png(label_ids, gt)
        _save_png(image, img)
        written += 1
    return written


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="output folder (e.g. data/cityscapes)")
    ap.add_argument("--n-train", type=int, default=2975)
    ap.add_argument("--n-val", type=int, default=500)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    for name in ("n_train", "n_val"):
        if getattr(a, name) < 0:
            ap.error(
                f"--{name.replace('_', '-')}: expected an integer >= 0, got {getattr(a, name)}"
            )
    for name in ("height", "width"):
        if getattr(a, name) < MIN_SIZE:
            ap.error(f"--{name}: expected an integer >= {MIN_SIZE}, got {getattr(a, name)}")
    for split, n in (("train", a.n_train), ("val", a.n_val)):
        w = write_split(a.root, split, n, a.height, a.width, a.seed)
        print(f"{split}: {w} written, {n - w} already there, under {a.root}")
    info = {
        "generator": "wlearn.data.scenes",
        "scenes_version": SCENES_VERSION,
        "n_train": a.n_train,
        "n_val": a.n_val,
        "height": a.height,
        "width": a.width,
        "seed": a.seed,
        "command": "python data_scripts/make_scenes.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
    }
    (a.root / "scenes.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
