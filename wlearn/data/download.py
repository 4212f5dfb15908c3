"""Verified, atomic downloads and safe archive extraction for ``data_scripts/``.

Every data script describes its files by a table of (file name, SHA-256, size)
and a list of mirrors, then calls :func:`download`. A download streams into a
temporary file beside the destination, is checked for size and SHA-256 and only
then renamed into place (``os.replace``), so an interrupted or corrupt transfer
leaves nothing behind and a re-run never trusts a half-written file. Archives
are extracted by :func:`safe_extract_zip` / :func:`safe_extract_tar`, which
refuse members that would land outside the target folder.

No credentials are ever stored or sent: mirrors are plain public URLs.

Introduced in notebooks/04_mnist_p_metric.ipynb (``data_scripts/prepare_mnist.py``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

_CHUNK = 1 << 20
_TIMEOUT_S = 60


class DownloadError(RuntimeError):
    """Every mirror failed, or what came back did not match its size or SHA-256.

    Used by every ``data_scripts/prepare_*.py`` (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction folder.

    Used by every ``data_scripts/prepare_*.py`` (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """


def sha256sum(path: str | os.PathLike) -> str:
    """SHA-256 of a file, as 64 lowercase hex digits (read in 1 MiB chunks).

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    str

    Used by every ``data_scripts/prepare_*.py`` (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_sha256(sha256: str) -> str:
    s = str(sha256).strip().lower()
    if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise ValueError(
            f"sha256: expected 64 hex digits, got {sha256!r}; copy the checksum "
            "from the script's file table (sha256sum FILE prints it)"
        )
    return s


def _fetch(url: str, tmp: Path, timeout: float) -> None:
    """Stream ``url`` into the open path ``tmp``."""
    req = urllib.request.Request(url, headers={"User-Agent": "wlearn-data-script"})
    with urllib.request.urlopen(req, timeout=timeout) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f, _CHUNK)


def download(
    urls: str | Sequence[str],
    dest: str | os.PathLike,
    sha256: str,
    size: int | None = None,
    *,
    timeout: float = _TIMEOUT_S,
    quiet: bool = False,
) -> Path:
    """Download one file from the first mirror that serves it intact.

    Parameters
    ----------
    urls : str or sequence of str
        Mirrors, tried in order (``http(s)://`` or ``file://``).
    dest : path
        Final path of the file. Its folder is created if needed.
    sha256 : str
        Expected SHA-256 (64 hex digits).
    size : int, optional
        Expected size in bytes, checked before the hash.
    timeout : float
        Seconds before a silent connection is given up.
    quiet : bool
        Do not print progress lines.

    Returns
    -------
    dest : pathlib.Path
        The verified file. When ``dest`` already exists with the right hash,
        nothing is downloaded (a re-run is a no-op).

    Raises
    ------
    DownloadError
        When every mirror failed or served a wrong file; the message lists
        the URLs tried, why each failed, and where to place the file by hand.
        Nothing is left at ``dest`` or beside it.

    Used by every ``data_scripts/prepare_*.py`` (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """
    if isinstance(urls, str):
        urls = [urls]
    urls = list(urls)
    if not urls:
        raise ValueError("urls: expected at least one mirror URL, got an empty list")
    sha256 = _check_sha256(sha256)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(f"size: expected a non-negative integer or None, got {size!r}")
    dest = Path(dest)
    if dest.exists():
        if sha256sum(dest) == sha256:
            if not quiet:
                print(f"{dest}: present, SHA-256 verified")
            return dest
        raise DownloadError(
            f"{dest} exists but its SHA-256 is not {sha256}. "
            "Delete it (it is corrupt or a different file) and run again."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            if not quiet:
                print(f"{dest.name}: downloading {url}")
            _fetch(url, tmp, timeout)
            got_size = tmp.stat().st_size
            if size is not None and got_size != size:
                raise DownloadError(f"size {got_size} bytes, expected {size}")
            got = sha256sum(tmp)
            if got != sha256:
                raise DownloadError(f"SHA-256 {got}, expected {sha256}")
            os.replace(tmp, dest)
            if not quiet:
                print(f"{dest.name}: {got_size} bytes, SHA-256 verified")
            return dest
        except (OSError, urllib.error.URLError, DownloadError, ValueError) as e:
            failures.append(f"  {url}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(
        f"could not download {dest.name}; tried:\n" + "\n".join(failures) + "\n"
        f"If you are offline, fetch the file by other means and place it at {dest} "
        f"(expected SHA-256 {sha256}" + (f", {size} bytes" if size is not None else "") + ")."
    )


def _check_member_path(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in p.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has a '..' component")
    return p


def _finish(tmp_dir: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise FileExistsError(f"dest: {dest} already exists; remove it to extract again")
    os.replace(tmp_dir, dest)
    return dest


def safe_extract_zip(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a zip archive into the new folder ``dest``, atomically and safely.

    Members with absolute paths, ``..`` components or symlink entries are refused
    (:class:`UnsafeArchiveError`) before anything is written; every member's CRC is
    verified (``ZipFile.testzip``); a truncated or corrupt archive raises
    ``ValueError`` naming the file. Extraction goes to a temporary folder beside
    ``dest``, renamed into place only when complete.

    Parameters
    ----------
    archive : path
        The zip file.
    dest : path
        Folder to create (it must not exist yet).

    Returns
    -------
    dest : pathlib.Path

    Used by every ``data_scripts/prepare_*.py`` (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError) as e:
        raise ValueError(
            f"archive: {archive} is not a readable zip file ({e}); delete it and "
            "run the data script again"
        ) from None
    with zf:
        for info in zf.infolist():
            _check_member_path(info.filename, archive)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symlink")
        try:
            bad = zf.testzip()
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise ValueError(
                f"archive: {archive} is truncated or corrupt ({e}); delete it and "
                "run the data script again"
            ) from None
        if bad is not None:
            raise ValueError(
                f"archive: {archive} is corrupt (CRC error in member {bad!r}); "
                "delete it and run the data script again"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
        try:
            zf.extractall(tmp_dir)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
    return _finish(tmp_dir, dest)


def safe_extract_tar(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a tar archive (plain, gz, bz2 or xz) into the new folder ``dest``.

    Refused (:class:`UnsafeArchiveError`): absolute paths, ``..`` components,
    device files, and symlinks or hardlinks whose target leaves the folder.
    A truncated archive raises ``ValueError`` naming the file. Extraction goes
    to a temporary folder beside ``dest``, renamed into place only when complete.

    Parameters
    ----------
    archive : path
        The tar file.
    dest : path
        Folder to create (it must not exist yet).

    Returns
    -------
    dest : pathlib.Path

    Used by every ``data_scripts/prepare_*.py`` (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """
    archive, dest = Path(archive), Path(dest)
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(
            f"archive: {archive} is not a readable tar file ({e}); delete it and "
            "run the data script again"
        ) from None
    with tf:
        try:
            members = tf.getmembers()  # reads the whole archive: catches truncation
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ValueError(f"archive: {archive} is truncated or corrupt ({e})") from None
        for m in members:
            p = _check_member_path(m.name, archive)
            if m.isdev():
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device file")
            if m.issym() or m.islnk():
                link = PurePosixPath(m.linkname)
                target = link if m.islnk() else p.parent / link
                if link.is_absolute() or _escapes(target):
                    raise UnsafeArchiveError(
                        f"{archive}: link {m.name!r} -> {m.linkname!r} leaves the target folder"
                    )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
        try:
            # ``filter="data"`` (Python >= 3.12, and security back-ports) re-checks each
            # member; older Pythons rely on the checks above.
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for m in members:
                tf.extract(m, tmp_dir, set_attrs=False, **kw)
        except (tarfile.TarError, EOFError, OSError) as e:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise ValueError(f"archive: {archive} is truncated or corrupt ({e})") from None
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
    return _finish(tmp_dir, dest)


def _escapes(path: PurePosixPath) -> bool:
    """True when the relative ``path`` climbs above its root after resolving ``..``."""
    depth = 0
    for part in path.parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in (".", ""):
            depth += 1
    return False
