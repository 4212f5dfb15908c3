"""The cross-entropy starting point of lessons 08-10: a committed ENet checkpoint and its manifest.

Liu et al. (2020, Experiments) fine-tune networks that were first trained with cross-entropy
("pre-trained with CE loss as their vanilla version"). The course ships such a network for
the generated street scenes of :mod:`wlearn.data.scenes`: ENet (Paszke et al. 2016) at
width 0.5, trained by the project's own command, ``python -m wlearn.segment train``, and
re-created by ``make ce-start``. Two files sit in ``wlearn/data/embedded/``:

- ``enet_ce_scenes.pt``: ``{"model": state_dict, "args": {...}, "epoch": n, "history": [...]}``,
  tensors and plain Python values only, so it loads with ``torch.load(weights_only=True)``
  (and, as a checkpoint of :func:`wlearn.segment.save_checkpoint` without optimizer, with
  ``--init`` of the command);
- ``enet_ce_scenes.json``: the manifest: the commands that made it, the seed, the code version
  (git commit), the data version (generator version, sizes, seed, SHA-256 of the scene files),
  the SHA-256 of the weights file, the CPU time of the training and the validation scores.

:func:`load_start` checks the file's SHA-256 against the manifest before loading it.

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import subprocess
from pathlib import Path

import torch

EMBEDDED = Path(__file__).resolve().parents[1] / "data" / "embedded"
START = EMBEDDED / "enet_ce_scenes.pt"
"""The committed cross-entropy checkpoint (its manifest: the same name with ``.json``)."""


def manifest_path(path=None) -> Path:
    """The manifest of a starting-point file: the same name with ``.json``.

    Parameters
    ----------
    path : str or Path or None
        The weights file (default :data:`START`).

    Returns
    -------
    Path

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    return Path(START if path is None else path).with_suffix(".json")


def sha256(path) -> str:
    """SHA-256 of a file, as 64 hexadecimal digits.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str

    Reference: :mod:`hashlib` (FIPS 180-4). Introduced in
    notebooks/08_importance_aware_segmentation.ipynb.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_sha256(root) -> str:
    """One SHA-256 over every file under ``root`` (relative paths and contents, sorted).

    Parameters
    ----------
    root : str or Path
        A folder, e.g. the generated scenes in the Cityscapes layout.

    Returns
    -------
    str
        Identical for identical trees, whatever the file system's listing order.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    root = Path(root)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(sha256(f).encode())
    return h.hexdigest()


def read_manifest(path=None) -> dict:
    """The manifest of a starting-point file.

    Parameters
    ----------
    path : str or Path or None
        The weights file (default :data:`START`); its manifest is :func:`manifest_path`.

    Returns
    -------
    dict
        See the module docstring.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise ValueError(
            f"path: no manifest {mpath} next to the weights; re-create both with `make ce-start`"
        )
    return json.loads(mpath.read_text(encoding="utf-8"))


def verify(path=None) -> dict:
    """Check a starting-point file against its manifest (SHA-256); return the manifest.

    Parameters
    ----------
    path : str or Path or None
        The weights file (default :data:`START`).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    ValueError
        When the file is missing or its SHA-256 differs from the manifest's.

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    path = Path(START if path is None else path)
    if not path.is_file():
        raise ValueError(f"path: no checkpoint at {path}; re-create it with `make ce-start`")
    man = read_manifest(path)
    got = sha256(path)
    if got != man["sha256"]:
        raise ValueError(
            f"path: {path} has SHA-256 {got}, its manifest says {man['sha256']}; the file was "
            "changed or truncated (git checkout it again, or re-create it with `make ce-start`)"
        )
    return man


def load_start(path=None, *, device=None):
    """The cross-entropy ENet of lessons 08-10, checked against its manifest.

    Parameters
    ----------
    path : str or Path or None
        The weights file (default :data:`START`, the committed one).
    device : torch device or None
        Default :func:`wlearn.get_device`.

    Returns
    -------
    model : wlearn.models.ENet
        In eval mode, on ``device``: logits (B, 19, H, W) for images (B, 3, H, W).
    manifest : dict
        See the module docstring (``manifest["val"]["iou"]``: the validation IoU per class).

    Raises
    ------
    ValueError
        When the SHA-256 of the file differs from its manifest's.

    The starting point of Liu et al.'s protocol (2020, Experiments: networks pre-trained with
    cross-entropy). Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    from wlearn._env import get_device
    from wlearn.models import ENet

    man = verify(path)
    device = get_device(device)
    state = torch.load(START if path is None else path, map_location=device, weights_only=True)
    model = ENet(man["model"]["num_classes"], width=man["model"]["width"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), man


def start_scenes(split: str, n: int, *, manifest: dict | None = None, **kwargs):
    """``n`` generated scenes of the starting point's data (its size, seed and generator).

    The first ``n`` scenes of ``split`` that ``data_scripts/make_scenes.py`` wrote for the
    training of the checkpoint (``load_cityscapes(split, n=n, ...)`` with the manifest's
    height, width and seed), in memory.

    Parameters
    ----------
    split : {"train", "val"}
    n : int
        Number of scenes.
    manifest : dict or None
        Default: the committed checkpoint's (:func:`read_manifest`).
    **kwargs
        Passed to :func:`wlearn.data.cityscapes.load_cityscapes` (``transform``, ``full``, ...).

    Returns
    -------
    wlearn.data.cityscapes.Cityscapes

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    from wlearn.data.cityscapes import load_cityscapes

    data = (read_manifest() if manifest is None else manifest)["data"]
    return load_cityscapes(
        split, n=n, height=data["height"], width=data["width"], seed=data["seed"], **kwargs
    )


def _git(*args) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def code_version() -> dict:
    """The git commit of the working tree and whether its code differs from it.

    Returns
    -------
    dict
        ``{"commit": 40 hex digits or "unknown", "dirty": bool}``; ``dirty`` when files under
        ``wlearn/`` or ``data_scripts/`` have uncommitted changes (the weights file itself and
        its manifest excepted).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    commit = _git("rev-parse", "HEAD") or "unknown"
    status = _git("status", "--porcelain", "--", "wlearn", "data_scripts")
    own = {START.name, manifest_path().name}
    dirty = any(line and Path(line[3:]).name not in own for line in status.splitlines())
    return {"commit": commit, "dirty": dirty}


def export_start(run, data, out=None) -> dict:
    """Write a starting-point file (weights only) and its manifest from a training run.

    Parameters
    ----------
    run : str or Path
        The ``--out`` folder of ``python -m wlearn.segment train`` (its ``last.pt``).
    data : str or Path
        The ``--data`` folder it trained on, written by ``data_scripts/make_scenes.py`` (its
        ``scenes.json`` says how).
    out : str or Path or None
        The weights file to write (default :data:`START`); the manifest goes next to it.

    Returns
    -------
    dict
        The manifest written.

    ``make ce-start`` runs it as ``python -m wlearn.segment export``. Introduced in
    notebooks/08_importance_aware_segmentation.ipynb.
    """
    from wlearn.data.cityscapes import CLASS_NAMES, NUM_CLASSES

    run, data = Path(run), Path(data)
    out = Path(START if out is None else out)
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    scenes_info = json.loads((data / "scenes.json").read_text(encoding="utf-8"))
    args, history = state["args"], state["history"]
    keep = {"model": state["model"], "args": args, "epoch": state["epoch"], "history": history}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(keep, tmp)
    tmp.replace(out)
    flags = []
    for k in ("data", "loss", "width", "batch_size", "epochs", "lr", "weight_decay", "seed"):
        flags += [f"--{k.replace('_', '-')}", str(args[k])]
    if args.get("val_limit") is not None:
        flags += ["--val-limit", str(args["val_limit"])]
    flags += ["--out", str(args["out"])]
    last = history[-1] if history else {}
    man = {
        "file": out.name,
        "sha256": sha256(out),
        "bytes": out.stat().st_size,
        "commands": [
            scenes_info["command"],
            "OMP_NUM_THREADS=1 python -m wlearn.segment train " + shlex.join(flags),
            f"python -m wlearn.segment export --run {run} --data {data} --out {out.name}",
        ],
        "seed": args["seed"],
        "code_version": args.get("code_version") or code_version(),
        "data": {
            "generator": "wlearn.data.scenes",
            "scenes_version": scenes_info["scenes_version"],
            "n_train": scenes_info["n_train"],
            "n_val": scenes_info["n_val"],
            "height": scenes_info["height"],
            "width": scenes_info["width"],
            "seed": scenes_info["seed"],
            "sha256_of_files": tree_sha256(data),
        },
        "model": {"name": "ENet", "width": args["width"], "num_classes": NUM_CLASSES},
        "training": {
            "loss": args["loss"],
            "epochs": state["epoch"],
            "cpu_seconds": round(sum(r.get("cpu_seconds", 0.0) for r in history), 1),
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "val": {
            "images": args.get("val_limit") or scenes_info["n_val"],
            "miou": last.get("val_miou"),
            "group4_iou": last.get("group4_iou"),
            "iou": {n: last.get(f"iou_{n.replace(' ', '_')}") for n in CLASS_NAMES},
        },
    }
    mpath = manifest_path(out)
    mpath.write_text(json.dumps(man, indent=1) + "\n", encoding="utf-8")
    return man


def table1_settings() -> dict:
    """The fine-tuning settings of lesson 08's Table 1 at this run size (``wlearn.SIZE``).

    Lesson 10 recomputes two of its rows (the one-hot case of Liu's Huber claim) with the same
    settings, so both lessons read them here.

    Returns
    -------
    dict
        ``n_ft`` (the first training scenes of the starting point used to fine-tune),
        ``n_val`` (its first validation scenes), ``seeds``, ``batch`` (scenes per Adam step; one
        pass over ``n_ft`` scenes) and ``lr`` (Adam, poly decay). Fixed on the cross-entropy
        control alone (lesson 08, section 5).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    from wlearn._env import by_size

    n_ft, n_val, seeds = by_size(
        demo=(96, 50, (0,)), default=(240, 100, (0, 1, 2)), full=(240, 100, (0, 1, 2))
    )
    return {"n_ft": n_ft, "n_val": n_val, "seeds": seeds, "batch": 8, "lr": 5e-4}


def write_scenes(root, n_train: int, n_val: int, *, manifest: dict | None = None) -> None:
    """Write the starting point's scenes in the Cityscapes layout (``data_scripts/make_scenes.py``).

    The first ``n_train`` training and ``n_val`` validation scenes of the manifest's data
    (its height, width and seed), so that ``python -m wlearn.segment`` can fine-tune the
    committed start on them.

    Parameters
    ----------
    root : str or Path
        The folder to write (``leftImg8bit/``, ``gtFine/``, ``scenes.json``).
    n_train, n_val : int
        Numbers of scenes.
    manifest : dict or None
        Default: the committed checkpoint's (:func:`read_manifest`).

    Introduced in notebooks/09_cityscapes_gpu.ipynb.
    """
    import sys

    d = (read_manifest() if manifest is None else manifest)["data"]
    script = Path(__file__).resolve().parents[2] / "data_scripts" / "make_scenes.py"
    args = ["--root", root, "--n-train", n_train, "--n-val", n_val, "--height", d["height"]]
    args += ["--width", d["width"], "--seed", d["seed"]]
    subprocess.run([sys.executable, str(script), *map(str, args)], check=True, capture_output=True)
