"""ConfusionMatrix, IoU and mean severity, against hand counts and the official evaluation."""

import numpy as np
import pytest
import torch
from PIL import Image

from wlearn.data.cityscapes import LABEL_IDS, NUM_CLASSES
from wlearn.ground import severity_matrix
from wlearn.metrics import ConfusionMatrix, mean_severity


def test_hand_count():
    t = torch.tensor([[0, 0, 1, 1, 2, 255]])
    p = torch.tensor([[0, 1, 1, 1, 0, 2]])
    cm = ConfusionMatrix(3)
    cm.update(p, t)
    expected = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    assert torch.equal(cm.confusion, expected)
    res = cm.compute()
    # IoU: class 0: 1/(1+1+1)=1/3; class 1: 2/(2+1+0)=2/3; class 2: 0/(0+0+1)=0
    assert torch.allclose(res["iou"], torch.tensor([1 / 3, 2 / 3, 0.0], dtype=torch.float64))
    assert res["miou"] == pytest.approx(1 / 3)
    assert res["pixel_accuracy"] == pytest.approx(3 / 5)


def test_logits_accumulate_and_copies():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    t = torch.randint(0, 4, (2, 5, 6))
    cm = ConfusionMatrix(4)
    cm.update(logits[:1], t[:1])
    cm.update(logits[1:], t[1:])
    ref = ConfusionMatrix(4)
    ref.update(logits.argmax(1), t)
    assert torch.equal(cm.confusion, ref.confusion)
    assert int(cm.confusion.sum()) == 60
    c = cm.compute()["confusion"]
    c += 100  # a copy: the accumulator is untouched
    assert int(cm.confusion.sum()) == 60
    cm.reset()
    assert int(cm.confusion.sum()) == 0
    assert np.isnan(cm.compute()["miou"])


def test_absent_class_is_nan_and_skipped():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    res = cm.compute(groups={"a": [0, 2]})
    assert np.isnan(res["iou"][2].item()) and res["miou"] == 1.0
    assert res["group_iou"]["a"] == 1.0


def test_mean_severity_by_hand():
    D = torch.tensor([[0.0, 0.3], [0.9, 0.0]])  # D[pred, true]
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([1, 1, 0, 0]), torch.tensor([0, 1, 1, 1]))
    # truth 0 predicted 1: D[1, 0] = 0.9; truth 1 predicted 0 (twice): D[0, 1] = 0.3
    assert cm.compute(D=D)["mean_severity"] == pytest.approx((0.9 + 2 * 0.3) / 4)
    assert mean_severity(torch.zeros(2, 2), D) == 0.0


def test_against_official_cityscapes_evaluation(tmp_path, monkeypatch):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    monkeypatch.setattr(np, "in1d", np.isin, raising=False)  # removed in NumPy 2.4
    rng = np.random.default_rng(0)
    ids = np.array(LABEL_IDS)
    cm = ConfusionMatrix(NUM_CLASSES)
    preds, gts = [], []
    for k in range(3):
        gt_t = rng.integers(0, NUM_CLASSES, (20, 30))
        pr_t = np.where(rng.random((20, 30)) < 0.6, gt_t, rng.integers(0, NUM_CLASSES, (20, 30)))
        gt_ids = ids[gt_t].astype(np.uint8)
        gt_ids[:2] = 0  # unlabeled: ignored by both
        gt_t = np.where(gt_ids == 0, 255, gt_t)
        p, g = (
            tmp_path / f"c_{k:06d}_000019_pred.png",
            tmp_path / f"c_{k:06d}_000019_gtFine_labelIds.png",
        )
        Image.fromarray(ids[pr_t].astype(np.uint8)).save(p)
        Image.fromarray(gt_ids).save(g)
        Image.fromarray(np.zeros((20, 30), np.uint16)).save(
            str(g).replace("labelIds", "instanceIds")
        )
        preds.append(str(p))
        gts.append(str(g))
        cm.update(torch.from_numpy(pr_t), torch.from_numpy(gt_t))
    args = ev.args
    monkeypatch.setattr(args, "quiet", True)
    monkeypatch.setattr(args, "JSONOutput", False)
    out = ev.evaluateImgLists(preds, gts, args)
    ours = cm.compute()
    for k, name in enumerate(ev.id2label[i].name for i in LABEL_IDS):
        assert ours["iou"][k].item() == pytest.approx(out["classScores"][name])
    assert ours["miou"] == pytest.approx(out["averageScoreClasses"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(1)
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="pred"):
        cm.update(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="target"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 7]))
    with pytest.raises(TypeError, match="pred"):
        cm.update([0, 1], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="confusion"):
        mean_severity(torch.zeros(3, 3), severity_matrix())


def _batches(n=4, K=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        t = torch.randint(0, K, (2, 6, 7), generator=g)
        t[:, 0] = 255  # an ignored row in every batch
        out.append((torch.randn(2, K, 6, 7, generator=g), t))
    return out


def test_merge_equals_one_matrix_of_all_batches():
    batches = _batches()
    whole = ConfusionMatrix(5)
    parts = [ConfusionMatrix(5) for _ in batches]
    for (p, t), cm in zip(batches, parts, strict=True):
        whole.update(p, t)
        cm.update(p, t)
    merged = ConfusionMatrix(5)
    for cm in parts:
        merged.merge(cm)
    assert torch.equal(merged.confusion, whole.confusion)
    assert int(merged.confusion.sum()) == 4 * 2 * 5 * 7  # every non-ignored pixel, once
    assert merged.compute()["miou"] == whole.compute()["miou"]
    before = parts[1].confusion
    parts[0].merge(parts[1])
    assert torch.equal(parts[1].confusion, before)  # the merged-in matrix is left unchanged


def test_merge_rejects_mismatched_matrices():
    cm = ConfusionMatrix(5)
    with pytest.raises(ValueError, match="other: expected num_classes=5.*got num_classes=4"):
        cm.merge(ConfusionMatrix(4))
    with pytest.raises(ValueError, match="other: expected ignore_index=255.*got ignore_index=-1"):
        cm.merge(ConfusionMatrix(5, ignore_index=-1))
    with pytest.raises(TypeError, match="other: expected a ConfusionMatrix, got Tensor"):
        cm.merge(torch.zeros(5, 5, dtype=torch.int64))
    assert int(cm.confusion.sum()) == 0  # nothing was added by the refused merges


def test_all_reduce_without_distributed_is_a_no_op():
    import torch.distributed as dist

    assert not (dist.is_available() and dist.is_initialized())
    cm = ConfusionMatrix(5)
    for p, t in _batches():
        cm.update(p, t)
    before = cm.confusion
    cm.all_reduce()
    assert torch.equal(cm.confusion, before)


def _all_reduce_worker(rank, world, init_file, out_dir):
    """One rank of the gloo test below: counts its own batches, sums, saves what it holds."""
    import datetime

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        cm = ConfusionMatrix(5)
        for p, t in _batches()[rank::world]:
            cm.update(p, t)
        own = cm.confusion
        cm.all_reduce()
        torch.save({"own": own, "total": cm.confusion}, f"{out_dir}/rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_all_reduce_sums_counts_over_two_gloo_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(
        _all_reduce_worker,
        args=(2, str(tmp_path / "rendezvous"), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    whole = ConfusionMatrix(5)
    for p, t in _batches():
        whole.update(p, t)
    r0, r1 = (torch.load(tmp_path / f"rank{k}.pt") for k in range(2))
    assert not torch.equal(r0["own"], r1["own"])  # each rank counted a different shard
    assert torch.equal(r0["own"] + r1["own"], whole.confusion)
    assert torch.equal(r0["total"], whole.confusion) and torch.equal(r1["total"], whole.confusion)


def test_no_course_code_reaches_np_in1d():
    """The official evaluation calls ``np.in1d`` (removed in NumPy 2.4); the course scores with
    its own ConfusionMatrix and uses that evaluation only as the reference above (shimmed).
    Every ``cityscapesscripts`` module that the course imports (labels, downloader, trainId
    conversion, and whatever they import) must be free of ``in1d``."""
    import json
    import re
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    sources = [
        *repo.glob("wlearn/**/*.py"),
        *repo.glob("data_scripts/*.py"),
        *repo.glob("benchmarks/*.py"),
        *repo.glob("notebooks/*.ipynb"),
    ]
    pattern = re.compile(r"(?:from|import)\s+(cityscapesscripts[\w.]*)(?:\s+import\s+(\w+))?")
    used = set()
    for f in sources:
        for mod, name in pattern.findall(f.read_text()):
            used.add(f"{mod}.{name}" if name else mod)
    assert "cityscapesscripts.helpers.labels" in used and len(used) >= 3
    assert not any(".evaluation" in m for m in used)
    code = (
        "import importlib, json, sys\n"
        f"for m in {sorted(used)!r}:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except ModuleNotFoundError:\n"  # `from package import function`
        "        importlib.import_module(m.rsplit('.', 1)[0])\n"
        "print(json.dumps({k: getattr(v, '__file__', None) for k, v in sys.modules.items()"
        " if k.startswith('cityscapesscripts')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "cityscapesscripts.preparation.json2labelImg" in loaded
    assert not any(".evaluation" in m for m in loaded)
    for m, path in loaded.items():
        if path:
            assert "in1d" not in Path(path).read_text(), m
