"""Tests for wlearn.data.download: verified atomic downloads, safe extraction."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from wlearn.data.download import (
    DownloadError,
    UnsafeArchiveError,
    download,
    safe_extract_tar,
    safe_extract_zip,
    sha256sum,
)

PAYLOAD = b"wasserstein " * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def served(tmp_path):
    """A folder served over http on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_sha256sum_matches_hashlib(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(PAYLOAD)
    assert sha256sum(f) == SHA


def test_download_over_http_and_rerun_is_noop(served, tmp_path):
    root, base = served
    (root / "a.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "a.bin"
    assert download([f"{base}/a.bin"], dest, SHA, len(PAYLOAD), quiet=True) == dest
    assert dest.read_bytes() == PAYLOAD
    (root / "a.bin").unlink()  # a re-run must not touch the network
    mtime = dest.stat().st_mtime_ns
    assert download([f"{base}/a.bin"], dest, SHA, len(PAYLOAD), quiet=True) == dest
    assert dest.stat().st_mtime_ns == mtime
    assert _leftovers(dest.parent) == ["a.bin"]


def test_download_falls_through_to_second_mirror(served, tmp_path):
    root, base = served
    (root / "good.bin").write_bytes(PAYLOAD)
    (root / "bad.bin").write_bytes(PAYLOAD[:-1] + b"!")
    dest = tmp_path / "out" / "f.bin"
    urls = [f"{base}/missing.bin", f"{base}/bad.bin", f"{base}/good.bin"]
    download(urls, dest, SHA, quiet=True)
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["f.bin"]


def test_download_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "f.bin"
    download(src.as_uri(), dest, SHA.upper(), len(PAYLOAD), quiet=True)
    assert sha256sum(dest) == SHA


def test_corrupt_download_leaves_nothing(served, tmp_path):
    root, base = served
    (root / "bad.bin").write_bytes(PAYLOAD[:-1] + b"!")
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DownloadError, match="SHA-256"):
        download([f"{base}/bad.bin"], dest, SHA, quiet=True)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_wrong_size_is_rejected_before_hash(served, tmp_path):
    root, base = served
    (root / "a.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(DownloadError, match="size"):
        download([f"{base}/a.bin"], dest, SHA, len(PAYLOAD) + 1, quiet=True)
    assert _leftovers(dest.parent) == []


def test_offline_error_lists_urls_and_manual_placement(tmp_path):
    dest = tmp_path / "out" / "a.bin"
    urls = ["http://127.0.0.1:9/a.bin", (tmp_path / "nope.bin").as_uri()]
    with pytest.raises(DownloadError) as e:
        download(urls, dest, SHA, 12, quiet=True, timeout=2)
    msg = str(e.value)
    assert all(u in msg for u in urls)
    assert str(dest) in msg and SHA in msg and "place it" in msg
    assert _leftovers(dest.parent) == []


def test_existing_file_with_wrong_hash_is_not_trusted(tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"something else")
    with pytest.raises(DownloadError, match="exists"):
        download("file:///nonexistent", dest, SHA, quiet=True)
    assert dest.read_bytes() == b"something else"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(urls=[], sha256=SHA), "urls"),
        (dict(urls="file:///x", sha256="abc"), "sha256"),
        (dict(urls="file:///x", sha256="g" * 64), "sha256"),
        (dict(urls="file:///x", sha256=SHA, size=-1), "size"),
        (dict(urls="file:///x", sha256=SHA, size=1.5), "size"),
    ],
)
def test_download_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        download(dest=tmp_path / "a", quiet=True, **kwargs)


# --------------------------------------------------------------------- archives
def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _tar(path: Path, members: dict[str, bytes], links=(), mode="w:gz") -> Path:
    with tarfile.open(path, mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            t.addfile(info)
    return path


GOOD = {"d/a.txt": b"a" * 5000, "b.txt": b"bb"}


def test_zip_roundtrip(tmp_path):
    out = safe_extract_zip(_zip(tmp_path / "g.zip", GOOD), tmp_path / "out")
    assert (out / "d" / "a.txt").read_bytes() == GOOD["d/a.txt"]
    assert (out / "b.txt").read_bytes() == b"bb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.zip", "out"]


def test_tar_roundtrip_with_inner_symlink(tmp_path):
    arc = _tar(tmp_path / "g.tar.gz", GOOD, links=[("d/link", "a.txt", tarfile.SYMTYPE)])
    out = safe_extract_tar(arc, tmp_path / "out")
    assert (out / "d" / "a.txt").read_bytes() == GOOD["d/a.txt"]
    assert (out / "d" / "link").read_bytes() == GOOD["d/a.txt"]


@pytest.mark.parametrize("evil", ["../evil.txt", "d/../../evil.txt", "/tmp/evil.txt"])
def test_zip_rejects_escaping_paths(tmp_path, evil):
    arc = _zip(tmp_path / "e.zip", {"ok.txt": b"ok", evil: b"evil"})
    with pytest.raises(UnsafeArchiveError):
        safe_extract_zip(arc, tmp_path / "sub" / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert _leftovers(tmp_path / "sub") == []


def test_zip_rejects_symlink_member(tmp_path):
    arc = tmp_path / "s.zip"
    with zipfile.ZipFile(arc, "w") as z:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symlink"):
        safe_extract_zip(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/evil.txt"])
def test_tar_rejects_escaping_paths(tmp_path, evil):
    arc = _tar(tmp_path / "e.tar.gz", {"ok.txt": b"ok", evil: b"evil"})
    with pytest.raises(UnsafeArchiveError):
        safe_extract_tar(arc, tmp_path / "sub" / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert _leftovers(tmp_path / "sub") == []


@pytest.mark.parametrize(
    "name, target, kind",
    [
        ("up", "../../etc/passwd", tarfile.SYMTYPE),
        ("abs", "/etc/passwd", tarfile.SYMTYPE),
        ("d/up", "../../x", tarfile.SYMTYPE),
        ("hard", "../outside", tarfile.LNKTYPE),
    ],
)
def test_tar_rejects_escaping_links(tmp_path, name, target, kind):
    arc = _tar(tmp_path / "l.tar", GOOD, links=[(name, target, kind)], mode="w")
    with pytest.raises(UnsafeArchiveError, match="leaves"):
        safe_extract_tar(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_archives_give_clear_errors(tmp_path):
    big = {"a.bin": bytes(range(256)) * 4000}
    z = _zip(tmp_path / "t.zip", big)
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(ValueError, match="t.zip"):
        safe_extract_zip(z, tmp_path / "zout")
    t = _tar(tmp_path / "t.tar.gz", big)
    t.write_bytes(t.read_bytes()[: t.stat().st_size // 2])
    with pytest.raises(ValueError, match="t.tar.gz"):
        safe_extract_tar(t, tmp_path / "tout")
    assert not (tmp_path / "zout").exists() and not (tmp_path / "tout").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_corrupt_zip_member_crc(tmp_path):
    z = _zip(tmp_path / "c.zip", {"a.txt": b"hello world " * 100})
    raw = bytearray(z.read_bytes())
    i = raw.find(b"a.txt") + len(b"a.txt") + 3  # a byte inside the compressed data
    raw[i] ^= 0xFF
    z.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="c.zip"):
        safe_extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_refuses_existing_dest(tmp_path):
    arc = _zip(tmp_path / "g.zip", GOOD)
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        safe_extract_zip(arc, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.zip", "out"]
