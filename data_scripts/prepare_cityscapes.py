"""Download, verify, extract and convert Cityscapes (fine annotations) into ``--root``.

    CITYSCAPES_USERNAME=me CITYSCAPES_PASSWORD=... python data_scripts/prepare_cityscapes.py
    python data_scripts/prepare_cityscapes.py --archives ~/Downloads   # zips you already have

1. Archives: ``gtFine_trainvaltest.zip`` (241 MB) and ``leftImg8bit_trainvaltest.zip``
   (11 GB), taken from ``--archives DIR`` when given, else downloaded with the official
   ``cityscapesscripts.download.downloader`` (its ``login``, ``download_packages``: the
   server's MD5 of each package is checked by it). A Cityscapes account is needed
   (https://www.cityscapes-dataset.com/register/); it is read from ``CITYSCAPES_USERNAME`` /
   ``CITYSCAPES_PASSWORD`` or asked for (``getpass``), kept in memory and **never written to
   disk**: the official ``login`` offers to store it in a file, we answer no, and point its
   credentials folder at an empty temporary one so no stored file is read either. Downloads
   go to ``ROOT/archives/.partial/`` and resume there after an interruption (HTTP Range, as
   the official downloader does); a file that fails its MD5 is deleted, to be fetched again.
   A ``.part`` that already holds every byte (a run stopped after the last byte, before the
   rename) gets HTTP 416 for its resume request: it is checked against the server's MD5 and
   renamed, or, if corrupt, deleted and downloaded once more from the start.
2. Verification: every archive must be a readable zip whose members all pass their CRC
   check, lie under the expected top folder, and none escapes the target folder.
3. Extraction: :func:`wlearn.data.download.safe_extract_zip` into a staging folder beside
   ``ROOT``; only when every archive has been extracted are ``gtFine/`` and ``leftImg8bit/``
   moved into ``ROOT``, each with an ``OWNED`` file inside that says this script wrote it.
   A bad archive leaves nothing behind. The script never deletes what it did not write: a
   ``ROOT/gtFine/`` or ``ROOT/leftImg8bit/`` without that file (your own copy) stops it
   before anything is downloaded or extracted; one with it (left by an interrupted run) is
   replaced. A staging folder left by a run that was killed is removed by the next run
   (:func:`wlearn.data.download.remove_stale_temps`: only unlocked ``.staging-*`` folders).
4. Conversion: the official ``cityscapesscripts.preparation.createTrainIdLabelImgs`` writes
   ``*_gtFine_labelTrainIds.png`` beside the polygons (env ``CITYSCAPES_DATASET=ROOT``).
5. ``ROOT/.prepared`` is written last; a re-run on a finished folder does nothing.

Read by :class:`wlearn.data.cityscapes.Cityscapes` and ``python -m wlearn.segment``.
Introduced in notebooks/09_cityscapes_gpu.ipynb.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import json
import os
import shutil
import sys
import tempfile
import types
import zipfile
from pathlib import Path

from wlearn.data._common import DATA_ROOT
from wlearn.data.download import claim_temp, remove_stale_temps, safe_extract_zip

PACKAGES = {"gtFine_trainvaltest.zip": "gtFine", "leftImg8bit_trainvaltest.zip": "leftImg8bit"}
"""Official package name -> the top folder its members live in."""
MARKER = ".prepared"
OWNED = ".written-by-prepare_cityscapes"
"""Written inside each top folder this script moves into ``--root``: only such a folder is
ever replaced."""
STAGING = ".staging-"


def get_credentials() -> tuple[str, str]:
    """``(username, password)`` from the environment, else asked for (never stored)."""
    user = os.environ.get("CITYSCAPES_USERNAME") or input("Cityscapes username or email address: ")
    password = os.environ.get("CITYSCAPES_PASSWORD") or getpass.getpass("Cityscapes password: ")
    if not user or not password:
        raise SystemExit(
            "credentials: expected a Cityscapes username and password, got an empty one"
        )
    return user, password


@contextlib.contextmanager
def _official_login_without_storage(user: str, password: str):
    """Run the official ``downloader.login`` with our answers and an empty credentials folder.

    Its prompts are answered from memory (the store question with "n"), and its
    ``appdirs.user_data_dir`` points at a fresh temporary folder, which must still be empty
    afterwards (checked) and is deleted.
    """
    from cityscapesscripts.download import downloader as dl

    def answer(prompt=""):
        return "n" if "Store credentials" in prompt else user

    saved = dl.input, dl.getpass, dl.appdirs
    with tempfile.TemporaryDirectory(prefix="cityscapes-login-") as empty:
        dl.input = answer
        dl.getpass = types.SimpleNamespace(getpass=lambda prompt="": password)
        dl.appdirs = types.SimpleNamespace(user_data_dir=lambda *a, **k: empty)
        try:
            yield dl
        finally:
            dl.input, dl.getpass, dl.appdirs = saved
            if any(Path(empty).iterdir()):
                raise RuntimeError(f"credentials: the official login wrote into {empty}; refusing")


class _Watched:
    """The official downloader's session, noting the server's MD5 and the status of the last
    file request (the official ``download_packages`` keeps both to itself)."""

    def __init__(self, session):
        self._session, self.md5, self.status = session, None, None

    def get(self, url, *args, **kwargs):
        r = self._session.get(url, *args, **kwargs)
        if "md5-sum" in url:
            self.md5 = (r.text.split() or [None])[0]
        elif "file-handling" in url:
            self.status = r.status_code
        return r

    def __getattr__(self, name):
        return getattr(self._session, name)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(dl, session, partial: Path, name: str, *, resume: bool) -> _Watched:
    """One official ``download_packages`` call into ``partial/name``.

    Returns the watched session: ``status == 416`` means the server refused the resume
    request because the ``.part`` already reaches the end of the file (nothing was written).
    Any other failure exits; a file that failed its MD5 is deleted first.
    """
    watched = _Watched(session)
    try:
        dl.download_packages(
            session=watched, package_names=[name], destination_path=str(partial), resume=resume
        )
    except Exception as e:
        if 416 in (watched.status, getattr(getattr(e, "response", None), "status_code", None)):
            watched.status = 416
            return watched
        if "MD5" in str(e):
            (partial / name).unlink(missing_ok=True)  # corrupt: start afresh next time
        raise SystemExit(f"{name}: download failed ({e}). Run again to resume.") from None
    return watched


def download(archive_dir: Path, names, credentials=None) -> None:
    """Fetch the missing ``names`` into ``archive_dir`` with the official downloader (resumable).

    A ``.part`` left complete by an earlier run (the server answers the resume request with
    HTTP 416) is verified against the server's MD5 and renamed; a corrupt one is deleted and
    downloaded once more from the start.
    """
    missing = [n for n in names if not (archive_dir / n).is_file()]
    if not missing:
        return
    user, password = credentials or get_credentials()
    partial = archive_dir / ".partial"
    partial.mkdir(parents=True, exist_ok=True)
    with _official_login_without_storage(user, password) as dl:
        session = dl.login()
        for name in missing:
            part = partial / name
            got = _fetch(dl, session, partial, name, resume=part.is_file())
            if got.status == 416:  # the .part already reaches the end of the file
                if got.md5 is not None and _md5(part) == got.md5:
                    print(f"{name}: the partial download was already complete")
                else:
                    part.unlink(missing_ok=True)
                    print(
                        f"{name}: the partial download has the full length but the wrong MD5 "
                        f"(corrupt); deleted it, downloading {name} again from the start"
                    )
                    got = _fetch(dl, session, partial, name, resume=False)
                    if got.status == 416:
                        part.unlink(missing_ok=True)
                        raise SystemExit(
                            f"{name}: download failed (the server answered HTTP 416 "
                            "to a download from the start). Run again later."
                        )
            os.replace(part, archive_dir / name)
            print(f"{name}: downloaded, MD5 verified")


def verify(path: Path, top: str) -> None:
    """A readable zip whose members all lie under ``top/`` (or are top-level text files)."""
    if not path.is_file():
        raise SystemExit(f"--archives: {path.name} is missing from {path.parent}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise SystemExit(
            f"{path}: not a readable zip file ({e}); delete it and run again"
        ) from None
    if not any(n.startswith(top + "/") for n in names):
        raise SystemExit(
            f"{path}: expected members under {top}/, found none (is it the right package?)"
        )


def check_root(root: Path) -> None:
    """Stop, changing nothing, if ``root`` holds a ``gtFine/`` or ``leftImg8bit/`` that this
    script did not write (no :data:`OWNED` file inside): it is never deleted."""
    for top in PACKAGES.values():
        d = root / top
        if (d.exists() or d.is_symlink()) and not (d / OWNED).is_file():
            raise SystemExit(
                f"--root: {d} exists and was not written by this script (no {OWNED} file in "
                "it); nothing was changed. It is never deleted: move it elsewhere, or pass "
                "another --root"
            )


def extract_all(root: Path, archives: dict[str, Path]) -> None:
    """Extract every archive into a staging folder, then move the top folders into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for old in remove_stale_temps(root, STAGING, ""):  # left by a run that was killed
        print(f"{old}: removed, left by an interrupted run")
    check_root(root)
    stage, fd = claim_temp(root, STAGING, "", directory=True)
    try:
        for name, path in archives.items():
            print(f"{name}: extracting")
            try:
                safe_extract_zip(path, stage / name)  # checks paths and CRCs before writing
            except ValueError as e:  # UnsafeArchiveError is a ValueError too
                raise SystemExit(f"{name}: refused ({e}); nothing was written") from None
        for name in archives:
            top = PACKAGES[name]
            (stage / name / top / OWNED).write_text(
                "written by data_scripts/prepare_cityscapes.py\n"
            )
        check_root(root)  # again, just before replacing: nothing of the user's is ever deleted
        for name in archives:
            top = PACKAGES[name]
            dest = root / top
            if dest.exists():  # ours, left by an interrupted earlier run: replace it
                shutil.rmtree(dest)
            os.replace(stage / name / top, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        os.close(fd)


def convert(root: Path) -> int:
    """Official trainId conversion; returns the number of ``*_labelTrainIds.png`` files."""
    from cityscapesscripts.preparation import createTrainIdLabelImgs

    if not any((root / "gtFine").glob("*/*/*_gt*_polygons.json")):
        raise SystemExit(f"{root}/gtFine: no *_polygons.json files to convert")
    old = os.environ.get("CITYSCAPES_DATASET")
    os.environ["CITYSCAPES_DATASET"] = str(root)
    try:
        createTrainIdLabelImgs.main()
    finally:
        if old is None:
            del os.environ["CITYSCAPES_DATASET"]
        else:
            os.environ["CITYSCAPES_DATASET"] = old
    print()
    return len(list((root / "gtFine").glob("*/*/*_labelTrainIds.png")))


def prepare(root, archives=None, *, credentials=None) -> Path:
    """The whole pipeline (see the module docstring); returns ``root``."""
    root = Path(root)
    if (root / MARKER).is_file():
        print(f"{root}: already prepared ({MARKER} present); nothing to do")
        return root
    check_root(root)  # before anything is downloaded or extracted
    archive_dir = Path(archives) if archives is not None else root / "archives"
    if archives is None:
        download(archive_dir, PACKAGES, credentials)
    paths = {name: archive_dir / name for name in PACKAGES}
    for name, path in paths.items():
        verify(path, PACKAGES[name])
    extract_all(root, paths)
    n = convert(root)
    counts = {
        s: len(list((root / "leftImg8bit" / s).glob("*/*_leftImg8bit.png")))
        for s in ("train", "val", "test")
    }
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"images": counts, "labelTrainIds": n}, indent=1))
    os.replace(tmp, root / MARKER)
    print(f"{root}: prepared, images per split {counts}, {n} trainId label images")
    return root


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=DATA_ROOT / "cityscapes")
    ap.add_argument(
        "--archives",
        type=Path,
        default=None,
        help="folder holding the two zips already downloaded (no network)",
    )
    a = ap.parse_args(argv)
    prepare(a.root, a.archives)


if __name__ == "__main__":
    sys.exit(main())
