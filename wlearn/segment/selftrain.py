"""Self-training for unsupervised domain adaptation with conservative (soft) pseudo-labels.

The recipe of class-balanced self-training (CBST, Zou et al. 2018) and its confidence-
regularized version (CRST, Zou et al. 2019), as Liu et al. (2020, Table 3) use it:

1. **Pseudo-labels with class-balanced thresholds.** A snapshot of the network (the
   *teacher*) predicts ``p = softmax(z)`` on target images. For every class ``c`` the
   threshold ``lambda_c`` is the confidence above which the top ``portion`` of the pixels
   predicted as ``c`` lie (a per-class quantile: frequent, easy classes do not crowd out the
   rare ones). A pixel gets the pseudo-label ``argmax p`` if ``max p >= lambda_argmax``, and is
   ignored otherwise (:func:`class_balanced_thresholds`, :func:`pseudo_labels`).
2. **Conservative targets.** The one-hot pseudo-label is smoothed
   (:func:`conservative_targets`), so that a wrong pseudo-label costs less:
   ``"prediction"``: ``q = (1 - alpha) e_y + alpha p`` (mix with the teacher's prediction);
   ``"uniform"``: ``q = (1 - alpha) e_y + alpha / C`` (label smoothing);
   ``"lrent"``: CRST's label-entropy regularizer (LRENT, Zou et al. 2019), see
   :func:`lrent_pseudo_labels`: the soft pseudo-label and the choice of the pixels that get
   one both come from minimising a regularised objective; ``"hard"``: ``q = e_y``.
3. **Rounds.** Each round takes a new teacher snapshot, raises ``portion`` (CBST: from 20 %
   by 5 % a round up to 50 %) and trains the student on labelled source batches
   (cross-entropy) plus pseudo-labelled target batches with any soft-target loss
   (:class:`wlearn.losses.SoftCrossEntropyLoss`, :class:`wlearn.losses.SoftWassersteinLoss`).
   The teacher is applied on the fly to each target batch, so nothing of size
   ``(N, C, H, W)`` is stored and the same code runs on full Cityscapes.

Introduced in notebooks/10_self_training_adaptation.ipynb.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from wlearn._env import get_device

MODES = ("hard", "prediction", "uniform", "lrent")


def _check_probs(probs) -> torch.Tensor:
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point() or probs.ndim < 2:
        got = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise ValueError(
            f"probs: expected a floating tensor (N, C, ...) of probabilities, got {got}"
            "; pass torch.softmax(teacher(images), dim=1)"
        )
    return probs


def _check_fraction(x, name: str, low_open: bool = True) -> float:
    ok = (
        isinstance(x, (int, float))
        and not isinstance(x, bool)
        and (0 < x <= 1 if low_open else 0 <= x <= 1)
    )
    if not ok:
        raise ValueError(
            f"{name}: expected a number in {'(0, 1]' if low_open else '[0, 1]'}, got {x!r}"
        )
    return float(x)


@torch.no_grad()
def class_balanced_thresholds(
    probs_batches,
    num_classes: int,
    portion: float,
    *,
    max_threshold: float = 1.0,
    max_per_class: int = 200_000,
    seed: int = 0,
) -> torch.Tensor:
    """Per-class confidence thresholds ``lambda_c`` (CBST, Zou et al. 2018, Alg. 1).

    ``lambda_c`` is the ``(1 - portion)`` quantile of ``max_k p_k`` over the pixels whose
    ``argmax`` is ``c``, so that about a fraction ``portion`` of them is kept; capped at
    ``max_threshold``. A class that is never predicted gets ``inf`` (never pseudo-labelled).

    Parameters
    ----------
    probs_batches : iterable of torch.Tensor, each (B, C, H, W) (or (B, C, ...))
        Teacher probabilities, e.g. ``(softmax(teacher(x)) for x in images)``.
    num_classes : int
        ``C``.
    portion : float in (0, 1]
        Fraction of each class's pixels to keep.
    max_threshold : float in (0, 1]
        Upper bound on every ``lambda_c``.
    max_per_class : int
        At most this many confidences per class are kept (a random subsample beyond), to
        bound memory on large target sets.
    seed : int
        Seeds that subsample.

    Returns
    -------
    torch.Tensor, shape (C,), float64, on the CPU

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    portion = _check_fraction(portion, "portion")
    max_threshold = _check_fraction(max_threshold, "max_threshold")
    C = num_classes
    g = torch.Generator().manual_seed(seed)
    confs: list[list[torch.Tensor]] = [[] for _ in range(C)]
    for p in probs_batches:
        p = _check_probs(p)
        if p.shape[1] != C:
            raise ValueError(
                f"probs: expected {C} classes along dim 1, got {p.shape[1]}; pass "
                "num_classes equal to the model's output channels"
            )
        conf, lab = p.detach().max(1)
        conf, lab = conf.reshape(-1).double().cpu(), lab.reshape(-1).cpu()  # (P,), (P,)
        for c in lab.unique().tolist():
            confs[c].append(conf[lab == c])
    lam = torch.full((C,), float("inf"), dtype=torch.float64)
    for c in range(C):
        if not confs[c]:
            continue
        v = torch.cat(confs[c])
        if v.numel() > max_per_class:
            v = v[torch.randperm(v.numel(), generator=g)[:max_per_class]]
        v = v.sort(descending=True).values
        k = min(v.numel() - 1, int(portion * v.numel()))
        lam[c] = min(float(v[k]), max_threshold)
    return lam


def pseudo_labels(
    probs: torch.Tensor, thresholds: torch.Tensor, *, ignore_index: int = 255
) -> torch.Tensor:
    """``argmax p`` where ``max p >= lambda_argmax``, ``ignore_index`` elsewhere.

    Parameters
    ----------
    probs : torch.Tensor, shape (N, C, H, W) (or (N, C, ...))
    thresholds : torch.Tensor, shape (C,)
        From :func:`class_balanced_thresholds`.
    ignore_index : int
        Label of the pixels left without a pseudo-label.

    Returns
    -------
    torch.Tensor, int64, shape (N, H, W)

    CBST (Zou et al. 2018, Alg. 1). Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    probs = _check_probs(probs)
    C = probs.shape[1]
    if not isinstance(thresholds, torch.Tensor) or thresholds.shape != (C,):
        got = (
            tuple(thresholds.shape)
            if isinstance(thresholds, torch.Tensor)
            else type(thresholds).__name__
        )
        raise ValueError(f"thresholds: expected a tensor of shape ({C},), got {got}")
    conf, lab = probs.max(1)  # (N, H, W)
    lam = thresholds.to(device=probs.device, dtype=conf.dtype)[lab]  # (N, H, W)
    return lab.masked_fill(conf < lam, ignore_index)


def conservative_targets(
    probs: torch.Tensor,
    labels: torch.Tensor,
    *,
    mode: str = "prediction",
    alpha: float = 0.3,
    thresholds: torch.Tensor | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Smooth one-hot pseudo-labels into conservative soft targets ``q`` (N, C, H, W).

    Parameters
    ----------
    probs : torch.Tensor, shape (N, C, H, W)
        The teacher's probabilities ``p``.
    labels : torch.Tensor, int64, shape (N, H, W)
        Pseudo-labels ``y`` (``ignore_index`` where none).
    mode : {"hard", "prediction", "uniform", "lrent"}
        ``"hard"``: ``e_y``; ``"prediction"``: ``(1 - alpha) e_y + alpha p``;
        ``"uniform"``: ``(1 - alpha) e_y + alpha / C``; ``"lrent"``:
        ``q_k ∝ (p_k / lambda_k)^(1/alpha)`` over the classes with a finite threshold
        (CRST's label-entropy regularizer with weight ``alpha``; needs ``thresholds``;
        it tends to ``e_{argmax p/lambda}`` as ``alpha -> 0``).
    alpha : float in [0, 1] (in (0, 1] for "lrent")
        Smoothing weight.
    thresholds : torch.Tensor, shape (C,), or None
        The class-balanced thresholds ``lambda`` (``"lrent"`` only).
    ignore_index : int
        Value of ``labels`` without a pseudo-label.

    Returns
    -------
    torch.Tensor, shape (N, C, H, W), dtype of ``probs``: rows on the simplex along dim 1 at
    labelled positions, zeros at ignored ones (mask them in the loss).

    The conservative targets of Liu et al. 2020 (Table 3); "lrent" is the closed form of
    :func:`lrent_pseudo_labels` (Zou et al. 2019, LRENT), here on CBST's pixels.
    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    probs = _check_probs(probs)
    if mode not in MODES:
        raise ValueError(
            f"mode: expected one of {MODES}, got {mode!r}; 'prediction' mixes the "
            "pseudo-label with the teacher's prediction"
        )
    alpha = _check_fraction(alpha, "alpha", low_open=(mode == "lrent"))
    C = probs.shape[1]
    expected = (probs.shape[0],) + tuple(probs.shape[2:])
    if (
        not isinstance(labels, torch.Tensor)
        or tuple(labels.shape) != expected
        or labels.is_floating_point()
    ):
        got = (
            (labels.dtype, tuple(labels.shape))
            if isinstance(labels, torch.Tensor)
            else type(labels).__name__
        )
        raise ValueError(
            f"labels: expected an integer tensor of shape {expected}, got {got}; "
            "pass the output of pseudo_labels(probs, thresholds)"
        )
    keep = labels != ignore_index  # (N, H, W)
    onehot = (
        F.one_hot(labels.masked_fill(~keep, 0).long(), C).movedim(-1, 1).to(probs.dtype)
    )  # (N, C, H, W)
    if mode == "hard":
        q = onehot
    elif mode == "prediction":
        q = (1 - alpha) * onehot + alpha * probs
    elif mode == "uniform":
        q = (1 - alpha) * onehot + alpha / C
    else:
        if (
            thresholds is None
            or not isinstance(thresholds, torch.Tensor)
            or thresholds.shape != (C,)
        ):
            raise ValueError(
                f"thresholds: expected a tensor of shape ({C},) for mode='lrent', got "
                f"{None if thresholds is None else tuple(getattr(thresholds, 'shape', ()))}"
            )
        q, _ = _lrent(probs, thresholds, alpha)
    return q * keep.unsqueeze(1).to(q.dtype)


def _lrent(probs: torch.Tensor, thresholds: torch.Tensor, alpha: float):
    """``q = softmax(log(p / lambda) / alpha)`` over the classes with a finite threshold, and
    ``log Z`` with ``Z = sum_k (p_k / lambda_k)^(1 / alpha)``, both in the log domain."""
    C = probs.shape[1]
    lam = thresholds.to(device=probs.device, dtype=probs.dtype)
    shape = (1, C) + (1,) * (probs.ndim - 2)
    a = (probs.clamp_min(1e-30).log() - lam.clamp_min(1e-30).log().view(shape)) / alpha
    a = a.masked_fill(~torch.isfinite(lam).view(shape), float("-inf"))  # (N, C, ...)
    log_z = torch.logsumexp(a, 1)  # (N, ...)
    q = torch.nan_to_num(torch.exp(a - log_z.unsqueeze(1)), nan=0.0)  # (N, C, ...)
    return q, log_z


def lrent_pseudo_labels(probs: torch.Tensor, thresholds: torch.Tensor, *, alpha: float = 0.25):
    r"""CRST's label-entropy-regularised soft pseudo-labels and the pixels that get one (LRENT).

    Zou et al. (2019; label-regularised self-training with the entropy regulariser) choose each
    target pixel's pseudo-label :math:`\hat y` in the probability simplex *or* :math:`\hat y = 0`
    (no label) to minimise

    .. math::

        \ell(\hat y) = -\sum_k \hat y_k \log\frac{p_k}{\lambda_k}
        + \alpha \sum_k \hat y_k \log \hat y_k ,

    with ``p`` the teacher's probabilities, :math:`\lambda_k` the class-balanced thresholds of
    CBST (Zou et al. 2018; :func:`class_balanced_thresholds`) and :math:`\alpha > 0` the weight
    of the regulariser. On the simplex the minimiser is the tempered, threshold-normalised
    prediction

    .. math::

        \hat y_k = \frac{(p_k / \lambda_k)^{1/\alpha}}{Z}, \qquad
        Z = \sum_j (p_j / \lambda_j)^{1/\alpha}, \qquad \ell(\hat y) = -\alpha \log Z,

    and :math:`\hat y = 0` costs 0, so a pixel is pseudo-labelled exactly when :math:`Z > 1`.
    As :math:`\alpha \to 0` this is CBST: :math:`\hat y` becomes one-hot at
    :math:`\arg\max_k p_k/\lambda_k`, kept when :math:`\max_k p_k / \lambda_k > 1`. The network
    is then trained with cross-entropy against :math:`\hat y` (:class:`wlearn.losses.SoftCrossEntropyLoss`):
    that is the LRENT row of Liu et al. (2020, Table 3). We read the objective in Zou et al.
    (2019) and checked the closed form and the selection rule against the authors' code
    (``crst_seg.py``, ``label_selection``; their released LRENT script uses ``alpha = 0.25``);
    their rare-class patch mining is left out.

    Parameters
    ----------
    probs : torch.Tensor, shape (N, C, H, W) (or (N, C, ...))
        The teacher's probabilities ``p``.
    thresholds : torch.Tensor, shape (C,)
        ``lambda`` from :func:`class_balanced_thresholds`; classes with ``inf`` (never predicted)
        get no mass.
    alpha : float > 0
        Weight of the entropy regulariser (larger: softer pseudo-labels, more pixels kept).

    Returns
    -------
    q : torch.Tensor, shape of ``probs``
        Rows on the simplex along dim 1 where ``keep``, zeros elsewhere.
    keep : torch.Tensor, bool, shape (N, H, W)
        The pixels that get a pseudo-label (``Z > 1``).

    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    probs = _check_probs(probs)
    C = probs.shape[1]
    if not isinstance(thresholds, torch.Tensor) or thresholds.shape != (C,):
        got = tuple(thresholds.shape) if isinstance(thresholds, torch.Tensor) else thresholds
        raise ValueError(f"thresholds: expected a tensor of shape ({C},), got {got}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(
            f"alpha: expected a number > 0, got {alpha!r}; Zou et al.'s code uses 0.25"
        )
    q, log_z = _lrent(probs, thresholds, float(alpha))
    keep = log_z > 0  # (N, ...)
    return q * keep.unsqueeze(1).to(q.dtype), keep


class PseudoLabeler:
    """A frozen teacher, its class-balanced thresholds and the smoothing rule.

    ``labeler(images)`` -> ``(q (B, C, H, W), mask (B, H, W), labels (B, H, W))``.

    Parameters
    ----------
    teacher : nn.Module
        Copied and frozen in eval mode.
    target_images : iterable of image batches (B, 3, H, W)
        Target-domain images over which the thresholds are computed.
    num_classes : int
        ``C``.
    portion, max_threshold : float
        See :func:`class_balanced_thresholds`.
    mode, alpha : see :func:`conservative_targets`; with ``mode="lrent"`` both the soft labels
        and the pixels that get one come from :func:`lrent_pseudo_labels` (CRST's rule).
    ignore_index : int
        Label of the pixels left without a pseudo-label.
    device : torch device or None
        Where the teacher runs (default :func:`wlearn.get_device`).

    CBST (Zou et al. 2018, Alg. 1) with conservative targets (Liu et al. 2020, Table 3).
    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """

    def __init__(
        self,
        teacher: nn.Module,
        target_images,
        num_classes: int,
        *,
        portion: float,
        mode: str = "prediction",
        alpha: float = 0.3,
        max_threshold: float = 1.0,
        ignore_index: int = 255,
        device=None,
    ):
        self.device = get_device(device)
        self.teacher = copy.deepcopy(teacher).to(self.device).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.mode, self.alpha, self.ignore_index = mode, alpha, ignore_index
        conservative_targets(
            torch.full((1, num_classes, 1), 1.0 / num_classes),
            torch.zeros(1, 1, dtype=torch.long),
            mode=mode,
            alpha=alpha,
            thresholds=torch.ones(num_classes),
        )  # validate settings now
        self.thresholds = class_balanced_thresholds(
            (self.probs(x) for x in target_images),
            num_classes,
            portion,
            max_threshold=max_threshold,
        )

    @torch.no_grad()
    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's probabilities.

        Parameters
        ----------
        images : torch.Tensor, shape (B, 3, H, W)

        Returns
        -------
        torch.Tensor, shape (B, C, H, W)
        """
        return torch.softmax(self.teacher(images.to(self.device)), 1)  # (B, C, H, W)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor):
        """Pseudo-labels and conservative targets of a batch.

        Parameters
        ----------
        images : torch.Tensor, shape (B, 3, H, W)

        Returns
        -------
        q : torch.Tensor, shape (B, C, H, W)
            Soft targets (zeros where there is no pseudo-label).
        mask : torch.Tensor, shape (B, H, W), bool
            Where there is a pseudo-label.
        labels : torch.Tensor, shape (B, H, W), int64
            The pseudo-labels (``ignore_index`` elsewhere).
        """
        p = self.probs(images)
        if self.mode == "lrent":  # CRST: the soft label and the selection from one objective
            q, keep = lrent_pseudo_labels(p, self.thresholds, alpha=self.alpha)
            labels = q.argmax(1).masked_fill(~keep, self.ignore_index)
            return q, keep, labels
        labels = pseudo_labels(p, self.thresholds, ignore_index=self.ignore_index)
        q = conservative_targets(
            p,
            labels,
            mode=self.mode,
            alpha=self.alpha,
            thresholds=self.thresholds,
            ignore_index=self.ignore_index,
        )
        return q, labels != self.ignore_index, labels


def _images(loader):
    for batch in loader:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def self_train(
    model: nn.Module,
    source_loader,
    target_loader,
    loss_fn,
    *,
    num_classes: int,
    rounds: int = 3,
    steps_per_round: int = 100,
    portion=(0.2, 0.05, 0.5),
    mode: str = "prediction",
    alpha: float = 0.3,
    max_threshold: float = 1.0,
    lr: float = 1e-3,
    weight_decay: float = 2e-4,
    target_weight: float = 1.0,
    ignore_index: int = 255,
    device=None,
    callback=None,
) -> list[dict]:
    """Rounds of self-training on a labelled source and an unlabelled target (in place).

    Round ``r`` (0-based): a teacher snapshot of ``model`` and thresholds for
    ``portion_r = min(p0 + r * dp, p_max)`` over ``target_loader``; then ``steps_per_round``
    Adam steps on ``CE(source) + target_weight * loss_fn(logits_t, q, mask=mask)``, one source
    and one target batch per step (the loaders are cycled).

    Parameters
    ----------
    model : nn.Module
        Usually trained on the source first ("source-only"); (B, 3, H, W) -> (B, C, H, W).
    source_loader : loader of (image, target trainIds)
    target_loader : loader of (image, ...) or of images; labels, if any, are not used
        except to report the pseudo-labels' accuracy in the history.
    loss_fn : callable ``loss_fn(logits, q, mask=mask)``
        A soft-target loss, e.g. :class:`wlearn.losses.SoftCrossEntropyLoss` (with
        ``mode="hard"`` it is plain cross-entropy on pseudo-labels) or
        :class:`wlearn.losses.SoftWassersteinLoss`.
    portion : (float, float, float)
        ``(p0, dp, p_max)``, CBST's schedule.
    num_classes : int
        ``C``.
    rounds, steps_per_round : int
        Number of teacher snapshots, and of Adam steps after each.
    mode, alpha : see :func:`conservative_targets`.
    max_threshold : float
        See :func:`class_balanced_thresholds`.
    lr, weight_decay : float
        Of the Adam optimizer.
    target_weight : float
        Weight of the target loss against the source cross-entropy.
    ignore_index : int
        Void label of the source targets and of the pseudo-labels.
    device : torch device or None
        Default :func:`wlearn.get_device`.
    callback : callable or None
        ``callback(round, model)`` after every round (e.g. to evaluate).

    Returns
    -------
    history : list of dict
        One per round: ``round``, ``portion``, ``loss`` (mean total), ``coverage`` (fraction of
        target pixels pseudo-labelled) and ``pseudo_accuracy`` (fraction of those whose
        pseudo-label is right, when target labels are available).

    CBST's rounds (Zou et al. 2018, Alg. 1) as Liu et al. 2020 use them (Table 3).
    Introduced in notebooks/10_self_training_adaptation.ipynb.
    """
    for name, v in (("rounds", rounds), ("steps_per_round", steps_per_round)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}; pass a positive int")
    if len(portion) != 3:
        raise ValueError(
            f"portion: expected (p0, dp, p_max), got {portion!r}; CBST's schedule "
            "is (0.2, 0.05, 0.5)"
        )
    device = get_device(device)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    src = itertools.cycle(source_loader) if len(source_loader) else None
    history = []
    for r in range(rounds):
        por = min(portion[0] + r * portion[1], portion[2])
        labeler = PseudoLabeler(
            model,
            _images(target_loader),
            num_classes,
            portion=por,
            mode=mode,
            alpha=alpha,
            max_threshold=max_threshold,
            ignore_index=ignore_index,
            device=device,
        )
        model.train()
        tot, kept, seen, right, known = 0.0, 0, 0, 0, 0
        tgt = itertools.cycle(target_loader)
        for _ in range(steps_per_round):
            xs, ys = (t.to(device) for t in next(src))
            tb = next(tgt)
            xt = (tb[0] if isinstance(tb, (tuple, list)) else tb).to(device)
            q, mask, lab = labeler(xt)
            logits = model(torch.cat([xs, xt]))  # (Bs + Bt, C, H, W)
            ls, lt = logits[: len(xs)], logits[len(xs) :]
            loss = F.cross_entropy(ls, ys, ignore_index=ignore_index)
            if mask.any():
                loss = loss + target_weight * loss_fn(lt, q, mask=mask)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss: got {loss.item()} in round {r}; lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item()
            kept, seen = kept + int(mask.sum()), seen + mask.numel()
            if isinstance(tb, (tuple, list)) and len(tb) > 1:
                yt = tb[1].to(device)
                m = mask & (yt != ignore_index)
                right, known = right + int((lab[m] == yt[m]).sum()), known + int(m.sum())
        history.append(
            {
                "round": r + 1,
                "portion": por,
                "loss": tot / steps_per_round,
                "coverage": kept / max(seen, 1),
                "pseudo_accuracy": right / known if known else float("nan"),
            }
        )
        if callback is not None:
            callback(r + 1, model)
    return history


def compare_self_training(
    start: nn.Module,
    source,
    target,
    val_loader,
    losses: dict,
    *,
    num_classes: int,
    seeds=(0,),
    batch_size: int = 2,
    groups: dict | None = None,
    **kwargs,
) -> dict:
    """Self-train a copy of ``start`` with every loss and seed; evaluate each on the target.

    Every run reseeds (:func:`wlearn.seed_everything`), copies ``start``, draws its source and
    target batches from shuffled loaders over ``source`` and ``target`` and calls
    :func:`self_train` with ``kwargs``: the losses see the same batches, rounds and steps, so
    they can be compared seed by seed.

    Parameters
    ----------
    start : nn.Module
        The source-only network (left unchanged).
    source, target : Dataset
        Labelled source and (labels unused) target training sets.
    val_loader : loader of (image, target)
        Labelled target-domain evaluation data.
    losses : dict
        ``{name: loss_fn(logits, q, mask=mask)}``.
    num_classes : int
        ``C``.
    seeds : sequence of int
        One run per seed and loss.
    batch_size : int
        Source images and target images per step (each).
    groups : dict or None
        Passed to :func:`wlearn.segment.evaluate` (e.g. ``{"Group 4": [...]}``).
    **kwargs
        Passed to :func:`self_train` (``rounds``, ``steps_per_round``, ``mode``, ``alpha``,
        ``lr``, ...).

    Returns
    -------
    dict
        ``{name: [evaluation per seed]}``.

    The protocol of Liu et al. 2020, Table 3. Introduced in
    notebooks/10_self_training_adaptation.ipynb.
    """
    from torch.utils.data import DataLoader

    from wlearn._env import seed_everything
    from wlearn.segment.engine import evaluate

    base = copy.deepcopy(start.state_dict())
    out = {name: [] for name in losses}
    for name, loss_fn in losses.items():
        for seed in seeds:
            seed_everything(seed)
            model = copy.deepcopy(start)
            model.load_state_dict(base)
            s_loader = DataLoader(source, batch_size=batch_size, shuffle=True, drop_last=True)
            t_loader = DataLoader(target, batch_size=batch_size, shuffle=True, drop_last=True)
            self_train(model, s_loader, t_loader, loss_fn, num_classes=num_classes, **kwargs)
            out[name].append(evaluate(model, val_loader, num_classes, groups=groups))
    return out
