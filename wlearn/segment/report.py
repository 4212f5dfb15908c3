"""Liu et al.'s tables, printed with our runs beside the paper's numbers.

- :data:`G4_CLASSES`, :data:`G4_HEADERS`: the seven Group-4 classes (Cityscapes names) and the
  column headers of Liu et al. (2020) Tables 1 and 3 ("Person Rider Car Truck Bus Motor Bike").
- :data:`PAPER_TABLE1_ENET`, :data:`PAPER_TABLE3`: the rows the paper prints (IoU in %).
- :func:`summarize`: mean and spread over seeds of the Group-4 IoUs, their mean and the mIoU.
- :func:`format_table`: a text table in the paper's layout, ours and the paper's rows together.
- :func:`paired`: per-seed differences between two rows (same seed: same batches and dropout).

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import numpy as np

G4_CLASSES = ("person", "rider", "car", "truck", "bus", "motorcycle", "bicycle")
"""The Group-4 classes in the column order of Liu et al. 2020, Tables 1 and 3."""
G4_HEADERS = ("Person", "Rider", "Car", "Truck", "Bus", "Motor", "Bike")
"""Liu et al.'s column headers for :data:`G4_CLASSES`."""

PAPER_TABLE1_ENET = {
    "ENet": [65.5, 38.4, 90.6, 36.9, 50.5, 38.8, 55.4, 58.3],
    "+IAL": [87.7, 41.3, 92.4, 73.5, 76.2, 24.1, 69.7, 67.5],
    "+L_d": [90.7, 48.7, 95.5, 70.8, 75.3, 46.2, 73.3, 69.1],
    "+L_d^2": [90.9, 49.6, 96.8, 71.4, 77.6, 46.3, 75.1, 69.3],
    "+L_Huber": [90.1, 49.5, 96.8, 72.6, 77.8, 46.2, 75.0, 69.5],
}
"""Liu et al. 2020, Table 1, ENet rows: the seven Group-4 IoUs and the last column ("mIoU",
read as the mean IoU over all 19 classes: it is not the mean of the seven), in %."""

PAPER_TABLE3 = {
    "LRENT": [61.7, 27.4, 83.5, 27.3, 37.8, 30.9, 41.1, 46.5],
    "L_d": [65.4, 33.7, 88.5, 36.2, 44.8, 39.3, 48.4, 46.8],
    "L_d^2": [65.7, 34.0, 88.9, 36.7, 45.3, 39.6, 49.1, 47.0],
    "L_Huber": [66.2, 34.7, 89.5, 37.1, 46.0, 40.8, 50.5, 47.3],
}
"""Liu et al. 2020, Table 3 (GTA5 -> Cityscapes, DeepLabV2), in the layout of Table 1, in %."""


def paper_row(values) -> dict:
    """A printed row as ``{"iou": 7 values, "g4": their mean, "miou": last column}`` (in %).

    Parameters
    ----------
    values : sequence of 8 floats
        The seven Group-4 IoUs and the mIoU, as in :data:`PAPER_TABLE1_ENET`.

    Returns
    -------
    dict

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    v = [float(x) for x in values]
    if len(v) != 8:
        raise ValueError(f"values: expected 7 Group-4 IoUs and the mIoU (8 numbers), got {len(v)}")
    return {"iou": v[:7], "g4": float(np.mean(v[:7])), "miou": v[7]}


def _g4_index():
    from wlearn.data.cityscapes import CLASS_NAMES

    return [CLASS_NAMES.index(n) for n in G4_CLASSES]


def per_seed(runs) -> dict:
    """The scores of each run, in %: Group-4 IoUs, their mean, mIoU (and severities).

    Parameters
    ----------
    runs : list of dict
        Evaluations of :func:`wlearn.segment.evaluate` (one per seed).

    Returns
    -------
    dict of numpy arrays
        ``"iou"`` (S, 7), ``"g4"`` (S,), ``"miou"`` (S,) and, when the runs have them,
        ``"severity"`` (S,).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    idx = _g4_index()
    iou = np.array([[100 * float(r["iou"][k]) for k in idx] for r in runs])  # (S, 7)
    out = {"iou": iou, "g4": np.nanmean(iou, 1), "miou": np.array([100 * r["miou"] for r in runs])}
    if runs and "mean_severity" in runs[0]:
        out["severity"] = np.array([r["mean_severity"] for r in runs])
    return out


def summarize(runs) -> dict:
    """Mean and standard deviation over seeds of :func:`per_seed`.

    Parameters
    ----------
    runs : list of dict
        Evaluations, one per seed.

    Returns
    -------
    dict
        For each key of :func:`per_seed`, ``(mean, sd)`` (``sd`` 0 for one run; arrays for
        ``"iou"``).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    out = {}
    for k, v in per_seed(runs).items():
        sd = v.std(0, ddof=1) if len(v) > 1 else np.zeros_like(v[0])
        out[k] = (v.mean(0), sd)
    return out


def paired(runs_a, runs_b, key: str = "g4") -> np.ndarray:
    """Per-seed differences ``a - b`` of one score (same seed: same batches and dropout).

    Parameters
    ----------
    runs_a, runs_b : list of dict
        Evaluations of two losses, one per seed, in the same seed order.
    key : {"g4", "miou", "severity"}
        The score compared (``"g4"``: mean Group-4 IoU in %).

    Returns
    -------
    numpy.ndarray, shape (S,)

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    if len(runs_a) != len(runs_b):
        raise ValueError(
            f"runs_b: expected as many seeds as runs_a ({len(runs_a)}), got {len(runs_b)}"
        )
    return per_seed(runs_a)[key] - per_seed(runs_b)[key]


def format_table(ours: dict, paper: dict | None = None, *, title: str = "") -> str:
    """A text table in the layout of Liu et al.'s Tables 1 and 3, ours beside the paper's.

    Parameters
    ----------
    ours : dict
        ``{row label: list of evaluations (one per seed)}``.
    paper : dict or None
        ``{row label of ours: (paper's label, 8 printed values)}``; rows without an entry get
        none.
    title : str
        First line.

    Returns
    -------
    str
        One line per row: the seven Group-4 IoUs, their mean and the mIoU, as
        ``mean`` (over seeds) and, under it, ``± sd`` when there are several seeds, then the
        paper's row when there is one. All in %.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    heads = [*G4_HEADERS, "G4 mean", "mIoU"]
    lw = max([len(k) for k in ours] + [len(p[0]) + 8 for p in (paper or {}).values()] + [12])
    lines = [title] if title else []
    lines.append(" " * lw + "".join(f"{h:>9}" for h in heads))
    for label, runs in ours.items():
        s = summarize(runs)
        mean = [*s["iou"][0], s["g4"][0], s["miou"][0]]
        sd = [*s["iou"][1], s["g4"][1], s["miou"][1]]
        lines.append(f"{label:<{lw}}" + "".join(f"{m:9.1f}" for m in mean))
        if len(runs) > 1:
            lines.append(f"{'  ± sd':<{lw}}" + "".join(f"{'±' + format(v, '.1f'):>9}" for v in sd))
        if paper and label in paper:
            name, vals = paper[label]
            row = paper_row(vals)
            cells = [*row["iou"], row["g4"], row["miou"]]
            lines.append(f"{'  paper ' + name:<{lw}}" + "".join(f"{v:9.1f}" for v in cells))
    return "\n".join(lines)


def read_metrics(path) -> dict:
    """The ``metrics.csv`` of ``python -m wlearn.segment train`` as ``{column: float array}``.

    Parameters
    ----------
    path : str or Path
        The CSV (one row per epoch, columns of :func:`wlearn.segment.runtime.csv_columns`).

    Returns
    -------
    dict
        ``{column: numpy array of floats}`` (NaN for empty cells).

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"path: {path} has no rows; did the run finish an epoch?")
    return {c: np.array([float(r[c]) if r[c] != "" else np.nan for r in rows]) for c in rows[0]}


def plot_class_iou(res, *, ax=None, highlight=None, bar: float | None = 30.0, title: str = ""):
    """Bar chart of the IoU of every class (in %), Group-4 classes in red.

    Parameters
    ----------
    res : dict
        An evaluation of :func:`wlearn.segment.evaluate` (``"iou"``, shape (19,)).
    ax : matplotlib Axes or None
        Where to draw (default: the current axes).
    highlight : sequence of int or None
        Classes drawn in red (default: Group 4).
    bar : float or None
        A dashed horizontal line at this IoU (the competence bar of lesson 08).
    title : str

    Returns
    -------
    matplotlib Axes

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    import matplotlib.pyplot as plt

    from wlearn.data.cityscapes import CLASS_NAMES

    ax = plt.gca() if ax is None else ax
    hi = set(_g4_index() if highlight is None else highlight)
    iou = 100 * np.asarray(res["iou"], dtype=float)
    ax.bar(range(len(iou)), iou, color=["C3" if k in hi else "0.6" for k in range(len(iou))])
    if bar is not None:
        ax.axhline(bar, color="k", ls="--", lw=1, label=f"{bar:g} %")
        ax.legend(loc="upper right")
    ax.set_xticks(range(len(iou)), CLASS_NAMES, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="IoU (%)", ylim=(0, 100), title=title)
    return ax


def format_bench(res: dict) -> str:
    """The table of ``benchmarks/bench_segment.py --json``: images/s, peak memory, ratios to CE.

    Parameters
    ----------
    res : dict
        The JSON the benchmark writes (``device``, ``size``, ``batch_size``, ``amp``,
        ``losses: {name: {images_per_s, peak_mib}}``).

    Returns
    -------
    str

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    ce = res["losses"]["ce"]
    H, W = res["size"]
    lines = [f"{res['device']}, {H} x {W}, batch {res['batch_size']}, AMP {res['amp']}"]
    lines.append(
        f"{'loss':<11}{'images/s':>10}{'peak MiB':>10}{'speed / CE':>12}{'memory / CE':>13}"
    )
    for k, v in res["losses"].items():
        speed, mem = v["images_per_s"] / ce["images_per_s"], v["peak_mib"] / ce["peak_mib"]
        lines.append(
            f"{k:<11}{v['images_per_s']:10.2f}{v['peak_mib']:10.1f}{speed:12.2f}{mem:13.2f}"
        )
    return "\n".join(lines)
