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


# --------------------------------------------------- hostile and broken mirrors (issue 16)
# Every server below listens on 127.0.0.1 only, answers a bounded number of connections,
# sends a bounded number of bytes and gives up after a bounded time.
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import socketserver  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from wlearn.data.download import claim_temp, remove_stale_temps  # noqa: E402

SERVER_TIME_S = 20  # no connection is served longer than this
SERVER_CAP = 64 << 20  # nor sent more bytes than this


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def raw_server():
    """``start(reply)`` -> URL of a TCP server on 127.0.0.1 whose connections are answered by
    ``reply(sock, sent)`` (``sent``: a list to append byte counts to); at most 8 connections."""
    servers = []

    def start(reply):
        sent = []

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                try:
                    self.request.recv(65536)  # the request line and headers
                    reply(self.request, sent)
                except OSError:  # the client hung up: what a cut-off looks like here
                    pass

        srv = _Server(("127.0.0.1", 0), Handler)
        srv.n_max = 8
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
        t.daemon = True
        t.start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/a.bin", sent

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _endless(sock, sent):
    """Headers without a length, then bytes until the client hangs up (or the caps)."""
    sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    block, n, end = b"x" * 65536, 0, time.monotonic() + SERVER_TIME_S
    while n < SERVER_CAP and time.monotonic() < end:
        try:
            sock.sendall(block)
        except OSError:
            break
        n += len(block)
    sent.append(n)


def _trickle(sock, sent):
    """The right length announced, then one byte every 50 ms (a slow, not silent, server)."""
    sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(PAYLOAD))
    n, end = 0, time.monotonic() + SERVER_TIME_S
    while n < len(PAYLOAD) and time.monotonic() < end:
        try:
            sock.sendall(PAYLOAD[n : n + 1])
        except OSError:
            break
        n += 1
        time.sleep(0.05)
    sent.append(n)


def _not_http(sock, sent):
    sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")  # BadStatusLine


def _cut_chunked(sock, sent):
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    sock.sendall(b"%x\r\n" % len(PAYLOAD) + PAYLOAD[:100])  # then the connection drops
    sock.shutdown(socket.SHUT_RDWR)  # IncompleteRead


def test_endless_server_is_cut_off_at_the_expected_size(raw_server, served, tmp_path):
    url, sent = raw_server(_endless)
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(DownloadError, match="more than the expected 12000 bytes"):
        download([url], dest, SHA, len(PAYLOAD), quiet=True)
    assert _leftovers(dest.parent) == []
    for _ in range(100):  # the server notices the hang-up
        if sent:
            break
        time.sleep(0.05)
    assert sent and sent[0] < SERVER_CAP // 4  # before: it read all 64 MiB into the .part
    root, base = served  # and the next mirror is tried
    (root / "a.bin").write_bytes(PAYLOAD)
    assert download([url, f"{base}/a.bin"], dest, SHA, len(PAYLOAD), quiet=True) == dest
    assert dest.read_bytes() == PAYLOAD and _leftovers(dest.parent) == ["a.bin"]


def test_slow_server_meets_the_deadline_and_the_next_mirror_is_tried(raw_server, served, tmp_path):
    url, sent = raw_server(_trickle)
    root, base = served
    (root / "a.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(DownloadError, match="deadline: not finished after 0.5 s"):
        download([url], dest, SHA, len(PAYLOAD), deadline=0.5, timeout=5, quiet=True)
    assert _leftovers(dest.parent) == []
    download([url, f"{base}/a.bin"], dest, SHA, len(PAYLOAD), deadline=0.5, quiet=True)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(ValueError, match="deadline: expected a number of seconds > 0"):
        download([url], tmp_path / "b.bin", SHA, deadline=0, quiet=True)


@pytest.mark.parametrize(
    "reply, why", [(_not_http, "BadStatusLine"), (_cut_chunked, "IncompleteRead")]
)
def test_mirror_that_is_not_http_or_cuts_its_reply_falls_through(
    raw_server, served, tmp_path, reply, why
):
    url, _ = raw_server(reply)
    root, base = served
    (root / "a.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(DownloadError, match=why):
        download([url], dest, SHA, len(PAYLOAD), quiet=True)
    assert download([url, f"{base}/a.bin"], dest, SHA, len(PAYLOAD), quiet=True) == dest
    assert _leftovers(dest.parent) == ["a.bin"]


# A child process that loads download.py by its path (no torch import: it starts fast).
_CHILD = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("dl", {path!r})
dl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dl)
what = sys.argv[1]
if what == "download":
    dl.download([sys.argv[2]], sys.argv[3], sys.argv[4], int(sys.argv[5]), quiet=True)
else:  # hold a temporary folder, as an extraction does, and write into it
    tmp, fd = dl.claim_temp(sys.argv[2], sys.argv[3], ".part", directory=True)
    (tmp / "member.bin").write_bytes(b"x" * 1000)
    time.sleep(60)
"""


def _child(tmp_path, *args):
    script = tmp_path / "child.py"
    path = str(Path(__file__).resolve().parents[1] / "wlearn" / "data" / "download.py")
    script.write_text(_CHILD.format(path=path))
    return subprocess.Popen([sys.executable, str(script), *map(str, args)])


def _wait_for(cond, proc, what):
    for _ in range(400):  # up to 20 s
        if cond():
            return
        assert proc.poll() is None, f"the child exited ({proc.returncode}) before {what}"
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_download_killed_mid_write_is_cleaned_by_the_next_run(raw_server, served, tmp_path, sig):
    url, _ = raw_server(_trickle)
    out = tmp_path / "out"
    out.mkdir()
    mine = [out / ".a.bin.notes.part", out / "a.bin.part", out / ".a.bin.ABCDEFGH.part"]
    for p in mine:  # the user's files, not of the pattern .a.bin.<8 of [a-z0-9_]>.part
        p.write_text("keep me")
    proc = _child(tmp_path, "download", url, out / "a.bin", SHA, len(PAYLOAD))
    try:
        parts = lambda: [p for p in out.glob(".a.bin.*.part") if p not in mine]  # noqa: E731
        _wait_for(lambda: parts() and parts()[0].stat().st_size > 0, proc, "a .part with bytes")
        assert remove_stale_temps(out, ".a.bin.") == []  # its process lives: untouched
        os.kill(proc.pid, sig)
    finally:
        proc.kill()
        proc.wait(20)
    (left,) = parts()  # what the killed run left
    root, base = served
    (root / "a.bin").write_bytes(PAYLOAD)
    download([f"{base}/a.bin"], out / "a.bin", SHA, len(PAYLOAD), quiet=True)
    assert not left.exists()  # before: every re-run left it there
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.bin"] + [p.name for p in mine])


def test_extraction_leftovers_are_cleaned_and_live_ones_kept(tmp_path):
    arc = _zip(tmp_path / "g.zip", GOOD)
    sub = tmp_path / "sub"
    sub.mkdir()
    proc = _child(tmp_path, "hold", sub, ".out.")
    try:
        _wait_for(lambda: list(sub.glob(".out.*.part/member.bin")), proc, "the held folder")
        (held,) = sub.glob(".out.*.part")
        stale, _ = claim_temp(sub, ".out.", directory=True)  # as if from a killed run:
        os.close(_)  # its lock is gone with its descriptor
        safe_extract_zip(arc, sub / "out")
        assert held.is_dir() and not stale.exists()  # the live one is another run's
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(20)
        shutil.rmtree(sub / "out")
        safe_extract_tar(_tar(tmp_path / "g.tar", GOOD, mode="w"), sub / "out")
        assert not held.exists()
    finally:
        proc.kill()
        proc.wait(20)
    assert sorted(p.name for p in sub.iterdir()) == ["out"]


def test_tar_symlink_chain_is_refused_as_unsafe_not_corrupt(tmp_path):
    # each link alone stays inside; followed in turn, l1 = l0/.. = the folder's parent
    arc = _tar(
        tmp_path / "chain.tar",
        {},
        links=[("l0", ".", tarfile.SYMTYPE), ("l1", "l0/..", tarfile.SYMTYPE)],
        mode="w",
    )
    with pytest.raises(UnsafeArchiveError, match="chain.tar: refused") as e:
        safe_extract_tar(arc, tmp_path / "out")
    assert "corrupt" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.tar"]
