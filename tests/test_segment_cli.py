"""``python -m wlearn.segment``: train, resume, evaluate, predict, NaN stop, two processes."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import wlearn
from wlearn.data.cityscapes import CLASS_NAMES, PALETTE, Cityscapes
from wlearn.segment import cli, engine
from wlearn.segment import runtime as rtm

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--width", "0.25", "--batch-size", "2", "--seed", "0"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Six train and four val generated scenes, 32 x 64, in the Cityscapes layout."""
    root = tmp_path_factory.mktemp("scenes")
    subprocess.run(
        [
            sys.executable,
            str(REPO / "data_scripts" / "make_scenes.py"),
            "--root",
            str(root),
            "--n-train",
            "6",
            "--n-val",
            "4",
            "--height",
            "32",
            "--width",
            "64",
        ],
        check=True,
        capture_output=True,
    )
    return root


def _train(scenes, out, *extra):
    return cli.main(
        ["train", "--data", str(scenes), "--out", str(out), "--lr", "5e-3", *SMALL, *extra]
    )


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    """Two epochs straight through: the reference for the resume test."""
    out = tmp_path_factory.mktemp("run") / "full"
    assert _train(scenes, out, "--epochs", "2") == 0
    return out


def test_train_writes_checkpoint_and_metrics(trained):
    state = torch.load(trained / "last.pt", weights_only=False)
    assert state["epoch"] == 2 and state["args"]["loss"] == "ce" and state["args"]["width"] == 0.25
    assert {"model", "optimizer", "scheduler", "rng", "history"} <= set(state)
    rows = _rows(trained / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert list(rows[0]) == rtm.csv_columns()
    assert all(f"iou_{n.replace(' ', '_')}" in rows[0] for n in CLASS_NAMES)
    for r in rows:
        assert 0 <= float(r["val_miou"]) <= 1 and float(r["images_per_s"]) > 0
        assert float(r["peak_mem_mib"]) > 0 and np.isfinite(float(r["train_loss"]))


def test_resume_equals_uninterrupted(scenes, trained, tmp_path):
    out = tmp_path / "one"
    _stop_after_one_epoch(scenes, out)  # killed once epoch 1 of 2 is checkpointed
    assert torch.load(out / "last.pt", weights_only=False)["epoch"] == 1
    with pytest.raises(SystemExit, match="--resume"):
        _train(scenes, out, "--epochs", "2")  # refuses to overwrite without --resume
    assert _train(scenes, out, "--epochs", "2", "--resume") == 0
    resumed = torch.load(out / "last.pt", weights_only=False)
    ref = torch.load(trained / "last.pt", weights_only=False)
    assert resumed["epoch"] == 2
    for k, v in ref["model"].items():
        assert torch.allclose(v.float(), resumed["model"][k].float(), atol=1e-5), k
    rows, ref_rows = _rows(out / "metrics.csv"), _rows(trained / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["val_miou"]) == pytest.approx(float(ref_rows[1]["val_miou"]), abs=1e-6)


def _stop_after_one_epoch(scenes, out):
    """Run ``--epochs 2`` but stop (like a killed job) once epoch 1 is checkpointed."""
    real = rtm.append_csv
    calls = []

    def stop(path, row):
        real(path, row)
        calls.append(row["epoch"])
        raise KeyboardInterrupt

    rtm.append_csv = stop
    try:
        with pytest.raises(KeyboardInterrupt):
            _train(scenes, out, "--epochs", "2")
    finally:
        rtm.append_csv = real
    assert calls == [1]


def test_evaluate_prints_official_names_and_json(scenes, trained, tmp_path, capsys):
    js = tmp_path / "scores.json"
    assert (
        cli.main(
            [
                "evaluate",
                "--data",
                str(scenes),
                "--checkpoint",
                str(trained / "last.pt"),
                *SMALL,
                "--json",
                str(js),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert all(n in text for n in CLASS_NAMES) and "Group 4 IoU" in text and "mIoU" in text
    scores = json.loads(js.read_text())
    assert list(scores["iou"]) == list(CLASS_NAMES)
    # the same numbers as the engine's evaluate on the same data
    model = cli.build_model(
        cli.build_parser().parse_args(
            ["evaluate", "--data", "x", "--checkpoint", "x", "--width", "0.25"]
        )
    )
    engine.load_checkpoint(trained / "last.pt", model=model, restore_rng=False)
    ds = Cityscapes(scenes, "val")
    ref = engine.evaluate(
        model,
        torch.utils.data.DataLoader(ds, batch_size=4),
        19,
        groups={"g4": rtm.group_indices(4)},
    )
    assert scores["miou"] == pytest.approx(ref["miou"]) or (np.isnan(ref["miou"]))
    assert scores["group4_iou"] == pytest.approx(ref["group_iou"]["g4"], nan_ok=True)
    with pytest.raises(SystemExit, match="width"):
        cli.main(
            [
                "evaluate",
                "--data",
                str(scenes),
                "--checkpoint",
                str(trained / "last.pt"),
                "--width",
                "0.5",
            ]
        )


def test_predict_writes_palette_pngs(scenes, trained, tmp_path):
    out = tmp_path / "pred"
    assert (
        cli.main(
            [
                "predict",
                "--data",
                str(scenes),
                "--checkpoint",
                str(trained / "last.pt"),
                *SMALL,
                "--out",
                str(out),
                "--limit",
                "3",
            ]
        )
        == 0
    )
    files = sorted(out.glob("*_pred.png"))
    assert len(files) == 3 and files[0].name.startswith("frankfurt_")
    rgb = np.array(Image.open(files[0]))
    assert rgb.shape == (32, 64, 3)
    colours = {tuple(c) for c in rgb.reshape(-1, 3)}
    assert colours <= {tuple(c) for c in PALETTE}


class _NaNAt:
    """Cross-entropy that becomes NaN at call ``n`` (counting from 1)."""

    def __init__(self, n):
        self.n, self.calls, self.ce = n, 0, nn.CrossEntropyLoss(ignore_index=255)

    def to(self, device):
        return self

    def __call__(self, logits, target):
        self.calls += 1
        loss = self.ce(logits, target)
        return loss * float("nan") if self.calls >= self.n else loss


def test_nan_loss_stops_with_message_and_keeps_last_good(scenes, tmp_path, monkeypatch, capsys):
    out = tmp_path / "nan"
    # 6 images / batch 2 = 3 steps per epoch: NaN at the 2nd step of epoch 2
    monkeypatch.setattr(rtm, "build_loss", lambda name, tau=0.5: _NaNAt(5))
    assert _train(scenes, out, "--epochs", "3", "--no-val", "--loss", "wass-d2") == cli.NAN_EXIT
    err = capsys.readouterr().err
    assert "epoch 2/3" in err and "step 2" in err and "wass-d2" in err and "nan" in err
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v.float()).all() for v in state["model"].values())
    assert [int(r["epoch"]) for r in _rows(out / "metrics.csv")] == [1]
    # NaN in the very first step: nothing at all is written
    monkeypatch.setattr(rtm, "build_loss", lambda name, tau=0.5: _NaNAt(1))
    assert _train(scenes, tmp_path / "nan0", "--epochs", "1") == cli.NAN_EXIT
    assert not (tmp_path / "nan0" / "last.pt").exists()


@pytest.mark.parametrize("name", rtm.LOSSES)
def test_build_loss_all_names(name):
    loss = rtm.build_loss(name)
    z = torch.randn(2, 19, 4, 5, requires_grad=True)
    t = torch.randint(0, 19, (2, 4, 5))
    t[0, 0] = 255
    v = loss(z, t)
    v.backward()
    assert v.ndim == 0 and torch.isfinite(v) and torch.isfinite(z.grad).all()
    with pytest.raises(ValueError, match="loss"):
        rtm.build_loss("wass-d3")


def test_finetune_init_and_amp_bf16(scenes, trained, tmp_path):
    out = tmp_path / "ft"
    assert (
        _train(
            scenes,
            out,
            "--epochs",
            "1",
            "--no-val",
            "--loss",
            "wass-huber",
            "--tau",
            "0.3",
            "--init",
            str(trained / "last.pt"),
            "--amp",
            "bf16",
        )
        == 0
    )
    st = torch.load(out / "last.pt", weights_only=False)
    assert st["args"]["loss"] == "wass-huber" and st["args"]["amp"] == "bf16"
    assert all(torch.isfinite(v.float()).all() for v in st["model"].values())


def test_engine_scaler_roundtrip(tmp_path):
    m = nn.Conv2d(3, 19, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    batch = [(torch.randn(2, 3, 4, 4), torch.randint(0, 19, (2, 4, 4)))]
    loss = engine.train_one_epoch(
        m, batch, nn.CrossEntropyLoss(), opt, scaler=scaler, progress=False
    )
    assert np.isfinite(loss)
    engine.save_checkpoint(tmp_path / "s.pt", model=m, optimizer=opt, scaler=scaler)
    s2 = torch.amp.GradScaler("cpu", init_scale=1.0)
    engine.load_checkpoint(tmp_path / "s.pt", model=m, scaler=s2)
    assert s2.get_scale() == scaler.get_scale()


def test_bad_arguments(scenes, tmp_path):
    for bad in (
        ["--batch-size", "0"],
        ["--lr", "-1"],
        ["--crop", "0", "8"],
        ["--loss", "l2"],
        ["--amp", "fp8"],
    ):
        with pytest.raises(SystemExit):
            cli.main(["train", "--data", str(scenes), "--out", str(tmp_path / "b"), *bad])
    with pytest.raises(ValueError, match="root"):
        cli.main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c")])
    with pytest.raises(ValueError, match="checkpoint"):
        cli.main(["evaluate", "--data", str(scenes), "--checkpoint", str(tmp_path / "none.pt")])
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        os.environ["WORLD_SIZE"] = "two"
        try:
            rtm.init_distributed("cpu")
        finally:
            del os.environ["WORLD_SIZE"]


def test_two_processes_gloo(scenes, trained, tmp_path):
    """torchrun, 2 CPU processes: trains with DDP; rank 0 alone writes; the reduced
    confusion matrix gives exactly the single-process scores."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    run = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "wlearn.segment",
    ]
    out = tmp_path / "ddp"
    r = subprocess.run(
        run
        + [
            "train",
            "--data",
            str(scenes),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--lr",
            "5e-3",
            *SMALL,
            "--device",
            "cpu",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("epoch 1/1:") == 1  # rank 0 alone prints and writes
    assert [int(x["epoch"]) for x in _rows(out / "metrics.csv")] == [1]
    state = torch.load(out / "last.pt", weights_only=False)
    assert not any(k.startswith("module.") for k in state["model"])  # unwrapped DDP weights
    js2, js1 = tmp_path / "two.json", tmp_path / "one.json"
    ev = [
        "evaluate",
        "--data",
        str(scenes),
        "--checkpoint",
        str(trained / "last.pt"),
        *SMALL,
        "--device",
        "cpu",
    ]
    r = subprocess.run(
        run + ev + ["--json", str(js2)], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert cli.main(ev + ["--json", str(js1)]) == 0
    one, two = json.loads(js1.read_text()), json.loads(js2.read_text())
    flat = [(one["iou"][n], two["iou"][n]) for n in CLASS_NAMES]
    flat += [(one[k], two[k]) for k in ("group4_iou", "miou", "pixel_accuracy")]
    a, b = np.array(flat).T
    assert np.allclose(a, b, equal_nan=True, rtol=0, atol=1e-12)
    wlearn.seed_everything(0)
