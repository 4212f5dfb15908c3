"""Verified, atomic downloads and safe archive extraction for ``data_scripts/``.

Every data script describes its files by a table of (file name, SHA-256, size)
and a list of mirrors, then calls :func:`download`. A download streams into a
temporary file beside the destination, is checked for size and SHA-256 and only
then renamed into place (``os.replace``), so an interrupted or corrupt transfer
leaves nothing behind and a re-run never trusts a half-written file. A server
that sends more than the expected size, or too slowly, is cut off (``size``,
``deadline``) and the next mirror is tried, as after any failure, HTTP or not.
Archives are extracted by :func:`safe_extract_zip` / :func:`safe_extract_tar`,
which refuse members that would land outside the target folder.

A process killed outright (SIGKILL, a power cut) cannot clean up after itself:
every temporary file or folder is made by :func:`claim_temp`, which holds a lock
on it while its process lives, and the next run removes the unlocked ones of the
same name pattern (:func:`remove_stale_temps`): what an earlier run left, and
nothing else.

No credentials are ever stored or sent: mirrors are plain public URLs.

Introduced in notebooks/04_mnist_p_metric.ipynb (``data_scripts/prepare_mnist.py``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale temporaries are removed unlocked
    fcntl = None

_CHUNK = 1 << 20
_TIMEOUT_S = 60
_MIN_RATE = 20_000
"""Bytes per second below which a download of known size misses its default deadline."""
_DEADLINE_UNKNOWN_SIZE_S = 3600


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


def _lock(fd: int) -> bool:
    """Take the exclusive lock of ``fd`` without waiting; False if another process holds it."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def claim_temp(parent: str | os.PathLike, prefix: str, suffix: str = ".part", *, directory=False):
    """Create a temporary file or folder ``parent/<prefix>XXXXXXXX<suffix>`` and lock it.

    The lock (``flock``) lasts as long as the returned descriptor is open, and the kernel
    drops it when the process dies, however it dies; :func:`remove_stale_temps` removes
    only unlocked temporaries, so never one that a running process is writing.

    Parameters
    ----------
    parent : path
        Folder to create it in (it must exist).
    prefix, suffix : str
        Name pattern, as for :func:`tempfile.mkstemp`; the middle is 8 random characters.
    directory : bool
        Make a folder (:func:`tempfile.mkdtemp`) instead of a file.

    Returns
    -------
    path : pathlib.Path
        The new file or folder.
    fd : int
        Its open descriptor, holding the lock: ``os.close(fd)`` when done.

    Used by :func:`download`, the extractors and ``data_scripts/prepare_cityscapes.py``
    (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """
    if directory:
        path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
        fd = os.open(path, os.O_RDONLY)
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=parent)
        path = Path(name)
    _lock(fd)  # new and unknown to any other process: always granted
    return path, fd


def remove_stale_temps(parent: str | os.PathLike, prefix: str, suffix: str = ".part") -> list:
    """Remove the temporaries of :func:`claim_temp` left in ``parent`` by a killed run.

    Only names made of ``prefix``, 8 characters of :mod:`tempfile`'s alphabet and ``suffix``
    are considered, and of those only the ones no live process holds locked; anything else
    in ``parent`` is left alone.

    Parameters
    ----------
    parent : path
        Folder to clean (nothing happens if it does not exist).
    prefix, suffix : str
        The pattern given to :func:`claim_temp`.

    Returns
    -------
    list of pathlib.Path
        What was removed.

    Used by :func:`download`, the extractors and ``data_scripts/prepare_cityscapes.py``
    (full-size data; see notebooks/04_mnist_p_metric.ipynb).
    """
    parent = Path(parent)
    if not parent.is_dir():
        return []
    pattern = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}" + re.escape(suffix))
    removed = []
    for p in sorted(parent.iterdir()):
        if not pattern.fullmatch(p.name) or p.is_symlink():
            continue
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _lock(fd):
                continue  # a live process is using it
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        finally:
            os.close(fd)
    return removed


def _fetch(url: str, out, timeout: float, deadline: float, limit: int | None) -> int:
    """Stream ``url`` into the open binary file ``out``; returns the number of bytes.

    Stops with :class:`DownloadError` as soon as more than ``limit`` bytes arrive (nothing
    beyond ``limit`` is written) or ``deadline`` seconds have passed; each read waits at most
    ``timeout`` seconds.
    """
    req = urllib.request.Request(url, headers={"User-Agent": "wlearn-data-script"})
    end = time.monotonic() + deadline
    n = 0
    with urllib.request.urlopen(req, timeout=min(timeout, deadline)) as r:
        read = getattr(r, "read1", r.read)  # read1: what has arrived, without waiting for more
        while True:
            if time.monotonic() > end:
                raise DownloadError(
                    f"deadline: not finished after {deadline:g} s ({n} bytes received); "
                    "pass a larger deadline= for a slow connection"
                )
            chunk = read(_CHUNK)
            if not chunk:
                return n
            n += len(chunk)
            if limit is not None and n > limit:
                raise DownloadError(
                    f"the server sent more than the expected {limit} bytes; stopped reading"
                )
            out.write(chunk)


def download(
    urls: str | Sequence[str],
    dest: str | os.PathLike,
    sha256: str,
    size: int | None = None,
    *,
    timeout: float = _TIMEOUT_S,
    deadline: float | None = None,
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
        Expected size in bytes, checked before the hash; a mirror that sends more is cut
        off at ``size`` bytes (nothing more is written) and the next one is tried.
    timeout : float
        Seconds before a silent connection is given up (each read).
    deadline : float, optional
        Seconds for each mirror's whole transfer, after which it is cut off and the next
        mirror tried (a server that trickles bytes, or sends without end). Default:
        ``timeout + size / 20 kB/s``, or one hour when ``size`` is unknown.
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
        When every mirror failed (HTTP errors, a server that is not HTTP or cuts
        its reply, too many bytes, the deadline) or served a wrong file; the message
        lists the URLs tried, why each failed, and where to place the file by hand.
        Nothing is left at ``dest`` or beside it, and the ``.part`` files of an
        earlier run that was killed are removed.

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
    for name, value in (("timeout", timeout), ("deadline", deadline)):
        if value is None and name == "deadline":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name}: expected a number of seconds > 0, got {value!r}")
    if deadline is None:
        deadline = _DEADLINE_UNKNOWN_SIZE_S if size is None else timeout + size / _MIN_RATE
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
    remove_stale_temps(dest.parent, f".{dest.name}.")  # left by a run that was killed
    failures = []
    for url in urls:
        tmp, fd = claim_temp(dest.parent, f".{dest.name}.")
        try:
            if not quiet:
                print(f"{dest.name}: downloading {url}")
            with open(fd, "wb", buffering=0, closefd=False) as out:
                _fetch(url, out, timeout, deadline, size)
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
        except (
            OSError,  # URLError, timeouts, refused and reset connections
            http.client.HTTPException,  # not HTTP (BadStatusLine), a cut reply (IncompleteRead)
            DownloadError,
            ValueError,
        ) as e:
            failures.append(f"  {url}: {type(e).__name__}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
            os.close(fd)
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
        remove_stale_temps(dest.parent, f".{dest.name}.")  # left by a run that was killed
        tmp_dir, fd = claim_temp(dest.parent, f".{dest.name}.", directory=True)
        try:  # the lock is held until the rename
            try:
                zf.extractall(tmp_dir)
            except BaseException:
                shutil.rmtree(tmp_dir, ignore_errors=True)
                raise
            return _finish(tmp_dir, dest)
        finally:
            os.close(fd)


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
        remove_stale_temps(dest.parent, f".{dest.name}.")  # left by a run that was killed
        tmp_dir, fd = claim_temp(dest.parent, f".{dest.name}.", directory=True)
        try:  # the lock is held until the rename
            try:
                # ``filter="data"`` (Python >= 3.12, and security back-ports) re-checks each
                # member, resolving the links already extracted; older Pythons rely on the
                # checks above.
                kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                for m in members:
                    tf.extract(m, tmp_dir, set_attrs=False, **kw)
            except _FILTER_ERRORS as e:  # e.g. a chain of links that together leave the folder
                shutil.rmtree(tmp_dir, ignore_errors=True)
                raise UnsafeArchiveError(f"{archive}: refused, {e}") from None
            except (tarfile.TarError, EOFError, OSError) as e:
                shutil.rmtree(tmp_dir, ignore_errors=True)
                raise ValueError(f"archive: {archive} is truncated or corrupt ({e})") from None
            except BaseException:
                shutil.rmtree(tmp_dir, ignore_errors=True)
                raise
            return _finish(tmp_dir, dest)
        finally:
            os.close(fd)


_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
"""What ``filter="data"`` raises for a member it refuses (Python >= 3.12 and back-ports)."""


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
