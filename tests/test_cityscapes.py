"""Cityscapes labels, the scene generator, make_scenes.py and the Dataset."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers import labels as cs

from wlearn.data import cityscapes as C
from wlearn.data.scenes import generate_scenes

ROOT = Path(__file__).resolve().parents[1]


def test_labels_come_from_cityscapesscripts():
    assert C.NUM_CLASSES == 19
    for k, name in enumerate(C.CLASS_NAMES):
        lab = cs.name2label[name]
        assert lab.trainId == k and tuple(C.PALETTE[k]) == lab.color and C.LABEL_IDS[k] == lab.id
    for lab in cs.labels:
        if 0 <= lab.id < 256:
            assert C.ID_TO_TRAINID[lab.id] == (lab.trainId if 0 <= lab.trainId < 255 else 255)
    assert C.train_id("person") == 11
    ids = np.array([[7, 24, 0], [33, 3, 26]], np.uint8)
    assert C.to_train_ids(ids).tolist() == [[0, 11, 255], [18, 255, 13]]
    assert C.to_train_ids(torch.from_numpy(ids)).tolist() == [[0, 11, 255], [18, 255, 13]]
    rgb = C.colorize(np.array([[0, 255]]))
    assert tuple(rgb[0, 0]) == (128, 64, 128) and tuple(rgb[0, 1]) == (0, 0, 0)


def test_scenes_deterministic_and_plausible():
    X1, Y1 = generate_scenes(40, seed=3)
    X2, Y2 = generate_scenes(40, seed=3)
    assert np.array_equal(X1, X2) and np.array_equal(Y1, Y2)
    assert X1.shape == (40, 64, 128, 3) and X1.dtype == np.uint8 and Y1.shape == (40, 64, 128)
    assert not np.array_equal(generate_scenes(2, seed=4)[0], X1[:2])
    T = C.to_train_ids(Y1)
    assert set(np.unique(T)) - {255} == set(range(19))  # every class appears in 40 scenes
    sky, road = C.train_id("sky"), C.train_id("road")
    rows = np.arange(64)[None, :, None]
    assert (rows * (T == sky)).sum() / (T == sky).sum() < 20  # sky on top
    assert (rows * (T == road)).sum() / (T == road).sum() > 40  # road at the bottom
    # persons stand on the sidewalk side, cars on the road: compare the classes just below them
    big = generate_scenes(2, height=128, width=256, seed=0)[0]
    assert big.shape == (2, 128, 256, 3)


def test_bad_generator_inputs():
    with pytest.raises(ValueError, match="height"):
        generate_scenes(1, height=8)
    with pytest.raises(ValueError, match="n"):
        generate_scenes(0)


def test_paired_transform_keeps_pairs_aligned():
    torch.manual_seed(0)
    img = torch.arange(2 * 3 * 8 * 10, dtype=torch.float32).reshape(2, 3, 8, 10)[0]
    lab = (img[0] % 19).long()  # label = a function of the image
    for _ in range(10):
        tr = C.PairedTransform(scale=None, crop=(5, 6), hflip=True)
        i2, l2 = tr(img, lab)
        assert i2.shape == (3, 5, 6) and l2.shape == (5, 6)
        assert torch.equal((i2[0] % 19).long(), l2)
    i3, l3 = C.PairedTransform(scale=(1.5, 1.5), crop=None, hflip=False)(img, lab)
    assert i3.shape == (3, 12, 15) and l3.shape == (12, 15)
    assert set(l3.unique().tolist()) <= set(lab.unique().tolist())  # nearest: no new labels
    i4, l4 = C.PairedTransform(scale=None, crop=(12, 12), hflip=False)(img, lab)
    assert (l4 == 255).any() and i4.shape == (3, 12, 12)  # padded with ignore
    with pytest.raises(ValueError, match="scale"):
        C.PairedTransform(scale=(2, 1))
    with pytest.raises(ValueError, match="crop"):
        C.PairedTransform(crop=(0, 4))


def test_make_scenes_and_dataset_read_the_same_scenes(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "data_scripts" / "make_scenes.py"),
        "--root",
        str(tmp_path),
        "--n-train",
        "4",
        "--n-val",
        "2",
        "--height",
        "32",
        "--width",
        "64",
        "--seed",
        "5",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png" in files
    assert "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png" in files
    assert len(files) == 12 and not list(tmp_path.rglob("*.tmp"))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    assert "0 written" in out  # re-run skips
    disk = C.Cityscapes(tmp_path, "train")
    mem = C.load_cityscapes("train", full=False, n=4, height=32, width=64, seed=5)
    assert len(disk) == 4 and len(C.Cityscapes(tmp_path, "val")) == 2
    got = {tuple(disk[i][1].flatten()[:50].tolist()) for i in range(4)}
    want = {tuple(mem[i][1].flatten()[:50].tolist()) for i in range(4)}
    assert got == want  # the files hold the in-memory scenes, labelIds mapped to trainIds
    image, target = disk[0]
    assert image.shape == (3, 32, 64) and image.dtype == torch.float32
    assert target.dtype == torch.int64 and int(target.max()) <= 255
    assert set(target.unique().tolist()) - {255} <= set(range(19))
    assert np.allclose(
        disk.denormalize(image),
        np.array(__import__("PIL.Image", fromlist=["Image"]).open(disk.files[0][0])) / 255,
        atol=1e-5,
    )
    small = C.Cityscapes(tmp_path, "val", size=(16, 32))
    assert small[0][0].shape == (3, 16, 32) and small[0][1].shape == (16, 32)


def test_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="make_scenes.py"):
        C.Cityscapes(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        C.Cityscapes(tmp_path, "training")
    (tmp_path / "leftImg8bit" / "train" / "x").mkdir(parents=True)
    with pytest.raises(ValueError, match="no \\*_leftImg8bit.png"):
        C.Cityscapes(tmp_path, "train")
    from PIL import Image

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(
        tmp_path / "leftImg8bit" / "train" / "x" / "x_000000_000000_leftImg8bit.png"
    )
    with pytest.raises(ValueError, match="no label file"):
        C.Cityscapes(tmp_path, "train")
    with pytest.raises(ValueError, match="images"):
        C.Cityscapes.from_arrays(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="label_ids"):
        C.Cityscapes.from_arrays(np.zeros((2, 4, 4, 3), np.uint8), np.zeros((2, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="name"):
        C.train_id("lorry")


def test_full_fallback_is_loud(tmp_path, monkeypatch):
    from wlearn.data._common import FullDataMissingWarning

    monkeypatch.setattr(C, "DATA_ROOT", tmp_path)
    with pytest.warns(FullDataMissingWarning, match="make_scenes.py"):
        ds = C.load_cityscapes("val", full=True, n=3, height=32, width=64)
    assert len(ds) == 3
    with pytest.raises(ValueError, match="split"):
        C.load_cityscapes("test", full=False)
