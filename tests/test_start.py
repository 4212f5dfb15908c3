"""The cross-entropy starting point of lessons 08-10: the recipe at a tiny size (scenes, train,
export, load with the SHA-256 check) and the committed checkpoint against its manifest."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wlearn.data.cityscapes import CLASS_NAMES
from wlearn.segment import cli
from wlearn.segment import start as st

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``make ce-start`` at a tiny size: 4 + 2 scenes of 32 x 64, one epoch, width 0.25."""
    root = tmp_path_factory.mktemp("ce_start")
    data, run, out = root / "scenes", root / "run", root / "start.pt"
    make = [sys.executable, str(REPO / "data_scripts" / "make_scenes.py"), "--root", str(data)]
    make += ["--n-train", "4", "--n-val", "2", "--height", "32", "--width", "64", "--seed", "3"]
    subprocess.run(make, check=True, capture_output=True)
    args = ["train", "--data", str(data), "--out", str(run), "--width", "0.25", "--quiet"]
    args += ["--batch-size", "2", "--epochs", "1", "--lr", "5e-3", "--seed", "0"]
    assert cli.main(args) == 0
    assert cli.main(["export", "--run", str(run), "--data", str(data), "--out", str(out)]) == 0
    return data, run, out


def test_export_writes_weights_only_file_and_manifest(tiny):
    data, run, out = tiny
    man = st.read_manifest(out)
    assert man["sha256"] == st.sha256(out) and man["bytes"] == out.stat().st_size
    state = torch.load(out, weights_only=True)  # tensors and plain values only
    assert set(state) == {"model", "args", "epoch", "history"} and state["epoch"] == 1
    assert man["seed"] == 0 and man["model"] == {"name": "ENet", "width": 0.25, "num_classes": 19}
    assert man["data"]["seed"] == 3 and (man["data"]["height"], man["data"]["width"]) == (32, 64)
    assert man["data"]["sha256_of_files"] == st.tree_sha256(data)
    assert len(man["code_version"]["commit"]) in (40, 7) and "dirty" in man["code_version"]
    assert "make_scenes.py" in man["commands"][0] and "--loss ce" in man["commands"][1]
    assert man["training"]["cpu_seconds"] > 0 and set(man["val"]["iou"]) == set(CLASS_NAMES)
    scenes = json.loads((data / "scenes.json").read_text())
    assert scenes["n_train"] == 4 and scenes["scenes_version"] == man["data"]["scenes_version"]


def test_load_start_checks_the_sha_and_gives_the_trained_network(tiny, tmp_path):
    _, run, out = tiny
    model, man = st.load_start(out, device="cpu")
    trained = torch.load(run / "last.pt", weights_only=False)["model"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained[k]), k
    assert not model.training and man["file"] == out.name
    # the same scenes in memory as on disk: the val split of the manifest's seed and size
    val = st.start_scenes("val", 2, manifest=man)
    assert val[0][0].shape == (3, 32, 64)
    # one flipped byte: refused, naming the file and the way back
    bad = tmp_path / "bad.pt"
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 1
    bad.write_bytes(bytes(blob))
    st.manifest_path(bad).write_text(st.manifest_path(out).read_text())
    with pytest.raises(ValueError, match="SHA-256"):
        st.load_start(bad, device="cpu")
    with pytest.raises(ValueError, match="SHA-256"):  # --init checks it too
        cli.main(
            ["train", "--data", str(tiny[0]), "--out", str(tmp_path / "r"), "--init", str(bad)]
        )
    with pytest.raises(ValueError, match="no manifest"):
        st.read_manifest(tmp_path / "nothing.pt")


def test_the_committed_checkpoint_matches_its_manifest():
    if not st.START.is_file():
        pytest.skip("no committed checkpoint yet: make ce-start")
    man = st.verify()
    assert man["file"] == st.START.name and man["code_version"]["commit"] != "unknown"
    assert not man["code_version"]["dirty"]
    model, _ = st.load_start(device="cpu")
    assert model(torch.zeros(1, 3, 32, 64)).shape == (1, 19, 32, 64)
    assert set(man["val"]["iou"]) == set(CLASS_NAMES) and man["training"]["cpu_seconds"] > 0


def test_write_scenes_writes_the_manifests_scenes(tiny, tmp_path):
    data, _, out = tiny
    man = st.read_manifest(out)
    st.write_scenes(tmp_path / "again", 4, 2, manifest=man)
    assert st.tree_sha256(tmp_path / "again" / "gtFine") == st.tree_sha256(data / "gtFine")
    s = st.table1_settings()
    assert s["n_ft"] % s["batch"] == 0 and len(s["seeds"]) >= 1 and s["lr"] > 0
