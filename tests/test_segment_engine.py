"""The segmentation engine: a tiny run trains, checkpoints, resumes, and runs the protocol."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import wlearn
from wlearn.data.cityscapes import generated_scenes
from wlearn.ground import severity_matrix
from wlearn.losses import OneHotWassersteinLoss
from wlearn.segment import evaluate, finetune, fit, load_checkpoint, pretrain_finetune


class Tiny(nn.Module):
    def __init__(self, K=19):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.1), nn.Conv2d(8, K, 1)
        )

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def loaders():
    ds = generated_scenes(8, height=32, width=64, seed=0)
    return DataLoader(ds, batch_size=4, shuffle=True), DataLoader(ds, batch_size=8)


def test_fit_trains_and_history(loaders):
    tl, vl = loaders
    wlearn.seed_everything(0)
    m = Tiny()
    before = evaluate(m, vl, 19)["pixel_accuracy"]
    h = fit(
        m,
        tl,
        nn.CrossEntropyLoss(ignore_index=255),
        n_epochs=6,
        lr=1e-2,
        val_loader=vl,
        num_classes=19,
        device="cpu",
        progress=False,
        eval_kwargs={"D": severity_matrix()},
    )
    assert [r["epoch"] for r in h] == list(range(1, 7))
    assert h[-1]["loss"] < h[0]["loss"]
    assert evaluate(m, vl, 19)["pixel_accuracy"] > before
    assert "mean_severity" in h[-1] and h[-1]["lr"] < 1e-2  # poly schedule decays


def test_checkpoint_resume_equals_uninterrupted(loaders, tmp_path):
    tl, _ = loaders
    loss = nn.CrossEntropyLoss(ignore_index=255)
    wlearn.seed_everything(1)
    ref = Tiny()
    fit(ref, tl, loss, n_epochs=3, lr=1e-2, device="cpu", progress=False)

    wlearn.seed_everything(1)
    m = Tiny()
    ck = tmp_path / "run.pt"
    # stop after 2 of 3 epochs: same schedule (n_epochs=3), interrupted by max epochs
    opt = torch.optim.Adam(m.parameters(), lr=1e-2, weight_decay=2e-4)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=3 * len(tl), power=0.9)
    fit(
        m,
        tl,
        loss,
        n_epochs=2,
        optimizer=opt,
        scheduler=sched,
        device="cpu",
        checkpoint=ck,
        progress=False,
        args={"note": "test"},
    )
    state = torch.load(ck, weights_only=False)
    assert state["epoch"] == 2 and state["args"] == {"note": "test"}
    assert {"model", "optimizer", "scheduler", "rng", "history"} <= set(state)
    # a fresh process: new model and optimizer, resume to 3 epochs
    wlearn.seed_everything(123)
    m2 = Tiny()
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-2, weight_decay=2e-4)
    sched2 = torch.optim.lr_scheduler.PolynomialLR(opt2, total_iters=3 * len(tl), power=0.9)
    h = fit(
        m2,
        tl,
        loss,
        n_epochs=3,
        optimizer=opt2,
        scheduler=sched2,
        device="cpu",
        checkpoint=ck,
        progress=False,
    )
    assert [r["epoch"] for r in h] == [1, 2, 3]
    for a, b in zip(ref.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    m3 = Tiny()
    assert load_checkpoint(ck, model=m3)["epoch"] == 3
    assert torch.equal(m3.net[0].weight, m2.net[0].weight)


def test_pretrain_finetune_protocol(loaders, tmp_path):
    tl, vl = loaders
    wlearn.seed_everything(0)
    D = severity_matrix()
    losses = {
        "CE": nn.CrossEntropyLoss(ignore_index=255),
        "W": OneHotWassersteinLoss(D.float(), ignore_index=255),
    }
    out = pretrain_finetune(
        Tiny(),
        tl,
        vl,
        losses,
        num_classes=19,
        pre_epochs=2,
        ft_epochs=1,
        seeds=(0, 1),
        device="cpu",
        checkpoint_dir=tmp_path,
        progress=False,
        eval_kwargs={"D": D, "groups": {"G4": [11, 12, 13]}},
    )
    assert set(out["runs"]) == {"CE", "W"} and all(len(v) == 2 for v in out["runs"].values())
    assert {"miou", "mean_severity", "group_iou", "iou"} <= set(out["pretrained"])
    assert set(out["models"]) == {"CE", "W"}
    assert (tmp_path / "pretrain.pt").is_file() and (tmp_path / "W_seed1.pt").is_file()
    a, b = out["models"]["CE"].state_dict(), out["models"]["W"].state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # fine-tuned separately


def test_finetune_is_deterministic_leaves_the_start_alone_and_same_steps(loaders):
    """Same seed, same start: the same numbers (the paired comparisons of lesson 08 rely on it);
    the starting network is not modified; every loss runs the same number of steps."""
    tl, vl = loaders
    wlearn.seed_everything(0)
    start = Tiny()
    before = {k: v.clone() for k, v in start.state_dict().items()}
    losses = {
        "CE": nn.CrossEntropyLoss(ignore_index=255),
        "W": OneHotWassersteinLoss(severity_matrix().float(), ignore_index=255),
    }
    seen = []
    kw = dict(num_classes=19, epochs=1, seeds=(0, 1), device="cpu", progress=False)
    a = finetune(start, tl, vl, losses, callback=lambda n, s, r: seen.append((n, s)), **kw)
    b = finetune(start, tl, vl, losses, keep_models=False, **kw)
    assert seen == [("CE", 0), ("CE", 1), ("W", 0), ("W", 1)] and b["models"] == {}
    for name in losses:
        for ra, rb in zip(a["runs"][name], b["runs"][name], strict=True):
            assert torch.equal(ra["confusion"], rb["confusion"])
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(a["runs"]["CE"][0]["confusion"], a["runs"]["CE"][1]["confusion"])


def test_bad_inputs(loaders):
    tl, vl = loaders
    with pytest.raises(ValueError, match="n_epochs"):
        fit(Tiny(), tl, nn.CrossEntropyLoss(), n_epochs=-1, device="cpu")
    with pytest.raises(ValueError, match="num_classes"):
        fit(Tiny(), tl, nn.CrossEntropyLoss(), n_epochs=1, val_loader=vl, device="cpu")
    with pytest.raises(ValueError, match="scheduler"):
        fit(Tiny(), tl, nn.CrossEntropyLoss(), n_epochs=1, scheduler="cosine", device="cpu")
    with pytest.raises(ValueError, match="path"):
        load_checkpoint("/nonexistent/x.pt", model=Tiny())


def _evaluate_worker(rank, world, init_file, out_dir):
    """One rank: evaluates its shard with ``distributed=True``; saves the scores it returns."""
    import datetime

    import torch.distributed as dist
    from torch.utils.data import Subset

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        wlearn.seed_everything(0)
        ds = generated_scenes(8, height=32, width=64, seed=0)
        shard = DataLoader(Subset(ds, range(rank, len(ds), world)), batch_size=3)
        res = evaluate(Tiny(), shard, 19, device="cpu", D=severity_matrix(), distributed=True)
        torch.save(res, f"{out_dir}/rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_distributed_evaluate_sums_shards_over_two_gloo_processes(tmp_path):
    """Two CPU ranks, each evaluating half the scenes, return the scores of all the scenes;
    the engine sums through ConfusionMatrix.all_reduce, never its private counts."""
    import inspect

    import torch.multiprocessing as mp

    from wlearn.segment import engine

    assert "_conf" not in inspect.getsource(engine)
    mp.spawn(
        _evaluate_worker, args=(2, str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True
    )
    wlearn.seed_everything(0)
    one = evaluate(
        Tiny(),
        DataLoader(generated_scenes(8, height=32, width=64, seed=0), batch_size=8),
        19,
        device="cpu",
        D=severity_matrix(),
    )
    for k in range(2):
        two = torch.load(tmp_path / f"rank{k}.pt", weights_only=False)
        assert torch.equal(two["confusion"], one["confusion"])
        assert int(two["confusion"].sum()) > 0
        for key in ("miou", "pixel_accuracy", "mean_severity"):
            assert two[key] == pytest.approx(one[key], rel=0, abs=1e-12)
