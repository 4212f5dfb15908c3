"""Self-training pieces: class-balanced thresholds (against a brute-force quantile), pseudo-
labels, conservative targets (simplex rows, limits, LRENT's closed form as the minimiser of
its objective), one tiny round of self-training, bad inputs."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from wlearn.losses import SoftCrossEntropyLoss, SoftWassersteinLoss
from wlearn.segment.selftrain import (
    PseudoLabeler,
    class_balanced_thresholds,
    conservative_targets,
    lrent_pseudo_labels,
    pseudo_labels,
    self_train,
)


def probs(N=3, C=4, H=5, W=6, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(N, C, H, W, generator=g, dtype=torch.float64), 1)


def test_thresholds_are_per_class_quantiles_and_keep_the_portion():
    p = probs(N=4, C=4, H=10, W=10)
    for portion in (0.2, 0.5, 1.0):
        lam = class_balanced_thresholds([p[:2], p[2:]], 4, portion)  # two batches
        conf, lab = p.max(1)
        for c in range(4):
            v = conf[lab == c].sort(descending=True).values
            k = min(len(v) - 1, int(portion * len(v)))
            assert lam[c].item() == pytest.approx(v[k].item())
            kept = int((conf[lab == c] >= lam[c]).sum())
            assert kept == k + 1 + int((v[k + 1 :] == v[k]).sum())  # top portion (ties kept)
        y = pseudo_labels(p, lam)
        assert ((y == 255) | (y == lab)).all()
        for c in range(4):
            frac = (y == c).sum() / (lab == c).sum()
            assert abs(frac.item() - portion) <= 1.0 / (lab == c).sum().item() + 1e-6
    capped = class_balanced_thresholds([p], 4, 0.1, max_threshold=0.3)
    assert (capped <= 0.3).all()


def test_thresholds_never_predicted_class_is_inf_and_subsampling():
    p = probs(C=3)
    p = torch.cat([p, torch.zeros(3, 1, 5, 6, dtype=p.dtype)], 1)  # class 3 never wins
    lam = class_balanced_thresholds([p], 4, 0.5, max_per_class=10)
    assert torch.isinf(lam[3]) and torch.isfinite(lam[:3]).all()
    assert (pseudo_labels(p, lam) != 3).all()


def test_conservative_targets_rows_and_limits():
    p = probs()
    lam = class_balanced_thresholds([p], 4, 0.5)
    y = pseudo_labels(p, lam)
    keep = y != 255
    onehot = torch.nn.functional.one_hot(y.clamp_max(3), 4).movedim(-1, 1).double()
    for mode in ("hard", "prediction", "uniform", "lrent"):
        q = conservative_targets(p, y, mode=mode, alpha=0.4, thresholds=lam)
        assert q.shape == p.shape
        rows = q.movedim(1, -1)
        assert torch.allclose(rows[keep].sum(-1), torch.ones(int(keep.sum()), dtype=p.dtype))
        assert (rows[~keep] == 0).all() and (q >= 0).all()
    assert torch.equal(
        conservative_targets(p, y, mode="hard").movedim(1, -1)[keep], onehot.movedim(1, -1)[keep]
    )
    q0 = conservative_targets(p, y, mode="prediction", alpha=0.0)
    assert torch.equal(q0.movedim(1, -1)[keep], onehot.movedim(1, -1)[keep])
    q1 = conservative_targets(p, y, mode="prediction", alpha=1.0)
    assert torch.allclose(q1.movedim(1, -1)[keep], p.movedim(1, -1)[keep])
    qu = conservative_targets(p, y, mode="uniform", alpha=0.2)
    assert torch.allclose(
        qu.movedim(1, -1)[keep].min(-1).values, torch.full((int(keep.sum()),), 0.05, dtype=p.dtype)
    )
    # lrent tends to the one-hot of argmax p / lambda as alpha -> 0
    ql = conservative_targets(p, y, mode="lrent", alpha=1e-3, thresholds=lam)
    ref = (p / lam.view(1, 4, 1, 1)).argmax(1)
    assert torch.equal(ql.argmax(1)[keep], ref[keep])


def test_lrent_minimises_its_objective():
    """q = softmax(log(p/lambda)/alpha) minimises -sum q log(p/lambda) + alpha sum q log q."""
    p = probs(N=1, C=5, H=1, W=1, seed=3)
    lam = torch.tensor([0.3, 0.5, 0.2, 0.9, 0.4], dtype=torch.float64)
    y = torch.zeros(1, 1, 1, dtype=torch.long)
    alpha = 0.5
    q = conservative_targets(p, y, mode="lrent", alpha=alpha, thresholds=lam)[0, :, 0, 0]
    w = (p[0, :, 0, 0] / lam).log()

    def obj(v):
        return float(-(v * w).sum() + alpha * (v * v.log()).sum())

    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        d = torch.randn(5, generator=g, dtype=torch.float64)
        d -= d.mean()
        v = q + 1e-3 * d
        if (v > 0).all():
            assert obj(v) >= obj(q) - 1e-12


def test_lrent_pseudo_labels_follow_the_authors_selection_rule():
    """CRST keeps a pixel when -sum q log p + alpha sum q log q < -sum q log lambda (the value of
    q = 0), with q = (p / lambda)^(1/alpha) normalised: a NumPy port of that rule of Zou et
    al.'s label_selection (crst_seg.py) against lrent_pseudo_labels."""
    import numpy as np

    p = probs(N=2, C=5, H=6, W=7, seed=5, scale=3.0)
    lam = class_balanced_thresholds([p], 5, 0.3)
    for alpha in (0.1, 0.25, 1.0):
        q, keep = lrent_pseudo_labels(p, lam, alpha=alpha)
        pn, ln = p.movedim(1, -1).numpy(), lam.numpy()  # (N, H, W, C), (C,)
        soft = np.power(pn / ln, 1.0 / alpha)
        soft = soft / soft.sum(-1, keepdims=True)
        reg = np.sum(-soft * np.log(pn + 1e-32) + alpha * soft * np.log(soft + 1e-32), -1)
        sel = np.sum(-soft * np.log(ln + 1e-32), -1)
        assert np.array_equal(keep.numpy(), reg < sel)
        rows = q.movedim(1, -1)
        assert np.allclose(rows[keep].numpy(), soft[keep.numpy()], atol=1e-12)
        assert (rows[~keep] == 0).all() and (alpha == 1.0 or 0 < keep.float().mean() < 1)
    # alpha -> 0: CBST, the one-hot label argmax p / lambda where max p / lambda > 1
    q, keep = lrent_pseudo_labels(p, lam, alpha=1e-4)
    ratio = p / lam.view(1, 5, 1, 1)
    assert torch.equal(keep, ratio.max(1).values > 1)
    assert torch.equal(q.argmax(1)[keep], ratio.argmax(1)[keep])
    # a larger alpha keeps more pixels (Z^alpha grows with alpha)
    kept = [int(lrent_pseudo_labels(p, lam, alpha=a)[1].sum()) for a in (0.1, 0.25, 0.5, 1.0)]
    assert kept == sorted(kept)
    # a class never predicted (threshold inf) gets no mass
    lam_inf = lam.clone()
    lam_inf[2] = float("inf")
    q, _ = lrent_pseudo_labels(p, lam_inf, alpha=0.25)
    assert (q[:, 2] == 0).all()
    with pytest.raises(ValueError, match="alpha"):
        lrent_pseudo_labels(p, lam, alpha=0)
    with pytest.raises(ValueError, match="thresholds"):
        lrent_pseudo_labels(p, lam[:3])


def test_bad_inputs():
    p = probs()
    lam = torch.full((4,), 0.5, dtype=torch.float64)
    y = pseudo_labels(p, lam)
    with pytest.raises(ValueError, match="portion"):
        class_balanced_thresholds([p], 4, 0.0)
    with pytest.raises(ValueError, match="probs"):
        class_balanced_thresholds([p], 5, 0.5)
    with pytest.raises(ValueError, match="thresholds"):
        pseudo_labels(p, lam[:3])
    with pytest.raises(ValueError, match="mode"):
        conservative_targets(p, y, mode="smooth")
    with pytest.raises(ValueError, match="alpha"):
        conservative_targets(p, y, alpha=1.5)
    with pytest.raises(ValueError, match="alpha"):
        conservative_targets(p, y, mode="lrent", alpha=0.0, thresholds=lam)
    with pytest.raises(ValueError, match="thresholds"):
        conservative_targets(p, y, mode="lrent")
    with pytest.raises(ValueError, match="labels"):
        conservative_targets(p, y[:, :2])
    with pytest.raises(ValueError, match="probs"):
        pseudo_labels(y, lam)


class Tiny(nn.Module):
    def __init__(self, C=4):
        super().__init__()
        self.conv = nn.Conv2d(3, C, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_pseudo_labeler_and_one_round_of_self_training():
    torch.manual_seed(0)
    C = 4
    xs, ys = torch.randn(8, 3, 6, 6), torch.randint(0, C, (8, 6, 6))
    xt, yt = torch.randn(8, 3, 6, 6) + 0.5, torch.randint(0, C, (8, 6, 6))
    src = DataLoader(TensorDataset(xs, ys), batch_size=4, shuffle=True)
    tgt = DataLoader(TensorDataset(xt, yt), batch_size=4, shuffle=True)
    model = Tiny(C)
    lab = PseudoLabeler(model, (x for x, _ in tgt), C, portion=0.5, device="cpu")
    q, mask, y = lab(xt[:4])
    assert q.shape == (4, C, 6, 6) and mask.shape == (4, 6, 6) and 0 < mask.float().mean() < 1
    assert torch.equal(mask, y != 255)
    before = [p.detach().clone() for p in model.parameters()]
    M = 1 - torch.eye(C)
    for loss, mode in (
        (SoftCrossEntropyLoss(), "hard"),
        (SoftWassersteinLoss(M, 0.1, tol=1e-4), "prediction"),
    ):
        seen = []
        hist = self_train(
            model,
            src,
            tgt,
            loss,
            num_classes=C,
            rounds=2,
            steps_per_round=3,
            mode=mode,
            device="cpu",
            callback=lambda r, m, seen=seen: seen.append(r),
        )
        assert [h["round"] for h in hist] == [1, 2] and seen == [1, 2]
        assert [h["portion"] for h in hist] == pytest.approx([0.2, 0.25])
        for h in hist:
            assert 0 < h["coverage"] < 1 and 0 <= h["pseudo_accuracy"] <= 1 and h["loss"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # the teacher is a frozen copy: training the student does not move it
    assert all(not p.requires_grad for p in lab.teacher.parameters())
    with pytest.raises(ValueError, match="rounds"):
        self_train(model, src, tgt, SoftCrossEntropyLoss(), num_classes=C, rounds=0)


def test_compare_self_training_pairs_runs_by_seed_and_leaves_the_start_alone():
    from wlearn.data.cityscapes import generated_scenes
    from wlearn.segment import compare_self_training

    src = generated_scenes(4, height=32, width=64, seed=0)
    tgt = generated_scenes(4, height=32, width=64, seed=1)
    val = DataLoader(tgt, batch_size=4)
    torch.manual_seed(0)
    start = nn.Sequential(nn.Conv2d(3, 19, 3, padding=1))
    before = [p.clone() for p in start.parameters()]
    losses = {"CE": SoftCrossEntropyLoss(), "CE again": SoftCrossEntropyLoss()}
    kw = dict(num_classes=19, seeds=(0, 1), rounds=1, steps_per_round=2, mode="lrent", lr=1e-2)
    out = compare_self_training(start, src, tgt, val, losses, device="cpu", **kw)
    assert set(out) == set(losses) and all(len(v) == 2 for v in out.values())
    for a, b in zip(out["CE"], out["CE again"], strict=True):  # same seed: the same run
        assert torch.equal(a["confusion"], b["confusion"])
    assert all(torch.equal(p, q) for p, q in zip(before, start.parameters(), strict=True))
