"""data_scripts/prepare_cityscapes.py on small zips of generated scenes; network faked."""

import hashlib
import importlib.util
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from wlearn.data.cityscapes import Cityscapes, train_id
from wlearn.data.scenes import generate_scenes

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "alice@example.org", "pw-5ecret-Zq81"


def _load():
    spec = importlib.util.spec_from_file_location(
        "prepare_cityscapes", REPO / "data_scripts" / "prepare_cityscapes.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pc = _load()


def _png(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _polygons(h, w):
    """A car rectangle on road, in the official polygon format."""
    return json.dumps(
        {
            "imgHeight": h,
            "imgWidth": w,
            "objects": [
                {
                    "label": "road",
                    "polygon": [[0, h // 2], [w - 1, h // 2], [w - 1, h - 1], [0, h - 1]],
                },
                {
                    "label": "car",
                    "polygon": [[4, h // 2 + 2], [20, h // 2 + 2], [20, h - 4], [4, h - 4]],
                },
            ],
        }
    )


def make_zips(folder: Path, *, extra_gt=None):
    """The two official packages in miniature: 2 train + 1 val generated scenes, 32 x 64."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = generate_scenes(3, height=32, width=64, seed=0)
    items = [("train", "aachen", 0), ("train", "bochum", 1), ("val", "frankfurt", 2)]
    with (
        zipfile.ZipFile(folder / "gtFine_trainvaltest.zip", "w") as gt,
        zipfile.ZipFile(folder / "leftImg8bit_trainvaltest.zip", "w") as im,
    ):
        gt.writestr("license.txt", "test")
        for split, city, i in items:
            stem = f"{city}_{i:06d}_000019"
            gt.writestr(f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png", _png(labels[i]))
            gt.writestr(f"gtFine/{split}/{city}/{stem}_gtFine_polygons.json", _polygons(32, 64))
            im.writestr(f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", _png(images[i]))
        for name, data in (extra_gt or {}).items():
            gt.writestr(name, data)
    return folder


class _Resp:
    def __init__(self, status, text, content, js):
        self.status_code, self.text, self.content, self.js = status, text, content, js

    def raise_for_status(self):  # as requests does
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code} Client Error", response=self)

    def json(self):
        return self.js

    def iter_content(self, chunk_size=1):
        return [self.content[k : k + chunk_size] for k in range(0, len(self.content), chunk_size)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeSession:
    """The four endpoints the official downloader uses, served from local zips."""

    def __init__(self, folder: Path, log: list, cut: int | None = None):
        self.folder, self.log, self.cut = folder, log, cut

    def _resp(self, status=200, text="", content=b"", js=None):
        return _Resp(status, text, content, js)

    def get(self, url, allow_redirects=True, stream=False, headers=None):
        self.log.append(("GET", url, dict(headers or {})))
        names = list(pc.PACKAGES)
        if url.endswith("/login"):
            return self._resp()
        if url.endswith("?list"):
            return self._resp(
                js=[
                    {"name": n, "packageID": str(k), "size": "1KB", "thirdparty": "0"}
                    for k, n in enumerate(names)
                ]
            )
        data = (self.folder / names[int(url.rsplit("=", 1)[1])]).read_bytes()
        if "md5-sum" in url:
            return self._resp(text=hashlib.md5(data).hexdigest() + "  name")
        start = int(headers["Range"][6:-1]) if headers and "Range" in headers else 0
        if start >= len(data):  # "Range Not Satisfiable": the client already has every byte
            return self._resp(status=416)
        body = data[start:]
        if self.cut is not None:  # the connection drops after `cut` bytes
            body, self.cut = body[: self.cut], None
        return self._resp(status=206 if start else 200, content=body)

    def post(self, url, data=None, allow_redirects=True):
        self.log.append(("POST", url, dict(data)))
        ok = data["username"] == USER and data["password"] == PASSWORD
        return self._resp(status=302 if ok else 200)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private HOME so that any credentials file would land where we look."""
    h = tmp_path / "home"
    h.mkdir()
    for var in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(var, str(h))
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    return h


def _no_secret_on_disk(*folders):
    for folder in folders:
        for f in Path(folder).rglob("*"):
            if f.is_file():
                assert PASSWORD.encode() not in f.read_bytes(), f


def test_prepare_from_archives_end_to_end(tmp_path, home):
    src = make_zips(tmp_path / "zips")
    root = tmp_path / "cityscapes"
    pc.prepare(root, src)
    assert (root / pc.MARKER).is_file()
    info = json.loads((root / pc.MARKER).read_text())
    assert info["images"] == {"train": 2, "val": 1, "test": 0} and info["labelTrainIds"] == 3
    tid = np.array(
        Image.open(root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png")
    )
    assert tid[32 // 2 + 6, 10] == train_id("car") and tid[32 - 2, 40] == train_id("road")
    assert tid[2, 2] == 255  # unlabelled
    assert len(Cityscapes(root, "train")) == 2 and len(Cityscapes(root, "val")) == 1
    assert not list(root.glob(".staging-*"))
    # a re-run on a finished folder does nothing (even with the zips gone)
    stamp = (root / pc.MARKER).stat().st_mtime_ns
    pc.prepare(root, tmp_path / "nowhere")
    assert (root / pc.MARKER).stat().st_mtime_ns == stamp


def test_escaping_member_writes_nothing(tmp_path, home):
    src = make_zips(tmp_path / "zips", extra_gt={"gtFine/../../evil.txt": "x"})
    root = tmp_path / "cityscapes"
    with pytest.raises(SystemExit, match="refused"):
        pc.prepare(root, src)
    assert not (tmp_path / "evil.txt").exists() and not (root.parent / "evil.txt").exists()
    assert not root.exists() or not any(root.iterdir())


def test_truncated_archive_writes_nothing(tmp_path, home):
    src = make_zips(tmp_path / "zips")
    z = src / "leftImg8bit_trainvaltest.zip"
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    root = tmp_path / "cityscapes"
    with pytest.raises(SystemExit, match="zip"):
        pc.prepare(root, src)
    assert not root.exists() or not any(root.iterdir())
    # a corrupt member (bad CRC) in an otherwise readable zip: refused at extraction
    src2 = make_zips(tmp_path / "zips2")
    g = src2 / "gtFine_trainvaltest.zip"
    data = bytearray(g.read_bytes())
    k = data.find(b"IHDR")  # inside the first PNG's stored bytes
    data[k + 8] ^= 0xFF
    g.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="nothing was written"):
        pc.prepare(tmp_path / "c2", src2)
    assert not any((tmp_path / "c2").iterdir())


def test_download_resumes_verifies_and_never_stores_credentials(tmp_path, home, monkeypatch):
    from cityscapesscripts.download import downloader as dl

    src = make_zips(tmp_path / "zips")
    log = []
    monkeypatch.setattr(dl.requests, "Session", lambda: FakeSession(src, log, cut=100))
    monkeypatch.setenv("CITYSCAPES_USERNAME", USER)
    monkeypatch.setenv("CITYSCAPES_PASSWORD", PASSWORD)
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("asked for input"))
    root = tmp_path / "cityscapes"
    # the first package arrives cut after 100 bytes: its MD5 fails, the partial is removed
    with pytest.raises(SystemExit, match="MD5"):
        pc.prepare(root)
    assert not (root / "archives" / "gtFine_trainvaltest.zip").exists()
    assert not any((root / "archives" / ".partial").iterdir())
    # an interrupted transfer (partial file on disk) resumes with a Range request
    part = root / "archives" / ".partial" / "gtFine_trainvaltest.zip"
    part.write_bytes((src / part.name).read_bytes()[:100])
    log.clear()
    monkeypatch.setattr(dl.requests, "Session", lambda: FakeSession(src, log))
    pc.prepare(root)
    assert (root / pc.MARKER).is_file()
    ranges = [h.get("Range") for m, u, h in log if "file-handling" in u]
    assert ranges == ["bytes=100-", None]
    assert (root / "archives" / part.name).read_bytes() == (src / part.name).read_bytes()
    assert any(m == "POST" and d.get("password") == PASSWORD for m, u, d in log)
    _no_secret_on_disk(tmp_path, home)
    assert not any(home.rglob("credentials.json"))


def test_bad_credentials_and_prompt(tmp_path, home, monkeypatch):
    from cityscapesscripts.download import downloader as dl

    src = make_zips(tmp_path / "zips")
    monkeypatch.setattr(dl.requests, "Session", lambda: FakeSession(src, []))
    monkeypatch.delenv("CITYSCAPES_USERNAME", raising=False)
    monkeypatch.delenv("CITYSCAPES_PASSWORD", raising=False)
    monkeypatch.setattr("builtins.input", lambda *a: USER)
    monkeypatch.setattr(pc.getpass, "getpass", lambda *a: "wrong-" + PASSWORD)
    with pytest.raises(Exception, match="Bad credentials"):
        pc.prepare(tmp_path / "cs")
    _no_secret_on_disk(tmp_path, home)
    import getpass

    import appdirs

    assert dl.getpass is getpass and dl.appdirs is appdirs  # the official module is restored


def _complete_part(tmp_path, monkeypatch, *, corrupt: bool, cut: int | None = None):
    """A root whose gtFine download stopped after its last byte, before the rename."""
    from cityscapesscripts.download import downloader as dl

    src = make_zips(tmp_path / "zips")
    root = tmp_path / "cityscapes"
    part = root / "archives" / ".partial" / "gtFine_trainvaltest.zip"
    part.parent.mkdir(parents=True)
    data = bytearray((src / part.name).read_bytes())
    if corrupt:
        data[len(data) // 2] ^= 0xFF  # full length, one byte wrong
    part.write_bytes(bytes(data))
    log = []
    monkeypatch.setattr(dl.requests, "Session", lambda: FakeSession(src, log, cut=cut))
    monkeypatch.setenv("CITYSCAPES_USERNAME", USER)
    monkeypatch.setenv("CITYSCAPES_PASSWORD", PASSWORD)
    return src, root, part, log


def _file_requests(log):
    return [(u.rsplit("=", 1)[1], h.get("Range")) for m, u, h in log if "file-handling" in u]


def test_complete_part_resumes_to_a_verified_file(tmp_path, home, monkeypatch, capsys):
    src, root, part, log = _complete_part(tmp_path, monkeypatch, corrupt=False)
    n = part.stat().st_size
    pc.prepare(root)
    assert (root / pc.MARKER).is_file()
    # one resume request past the end (answered 416), no second transfer of gtFine
    assert _file_requests(log) == [("0", f"bytes={n}-"), ("1", None)]
    assert (root / "archives" / part.name).read_bytes() == (src / part.name).read_bytes()
    assert not any(part.parent.iterdir())
    out = capsys.readouterr().out
    assert "gtFine_trainvaltest.zip: the partial download was already complete" in out


def test_corrupt_complete_part_is_downloaded_again_once(tmp_path, home, monkeypatch, capsys):
    src, root, part, log = _complete_part(tmp_path, monkeypatch, corrupt=True)
    n = part.stat().st_size
    pc.prepare(root)
    assert _file_requests(log) == [("0", f"bytes={n}-"), ("0", None), ("1", None)]
    assert (root / "archives" / part.name).read_bytes() == (src / part.name).read_bytes()
    assert not any(part.parent.iterdir())
    out = capsys.readouterr().out
    assert "wrong MD5 (corrupt); deleted it, downloading gtFine_trainvaltest.zip again" in out
    assert (root / pc.MARKER).is_file()


def test_corrupt_complete_part_then_failed_download_leaves_nothing(tmp_path, home, monkeypatch):
    # the one new download is cut after 100 bytes: its MD5 fails too
    src, root, part, log = _complete_part(tmp_path, monkeypatch, corrupt=True, cut=100)
    n = part.stat().st_size
    with pytest.raises(SystemExit, match="gtFine_trainvaltest.zip: download failed.*MD5"):
        pc.prepare(root)
    assert _file_requests(log) == [("0", f"bytes={n}-"), ("0", None)]  # retried once only
    assert not (root / "archives" / part.name).exists()
    assert not any(part.parent.iterdir())  # neither the corrupt nor the cut file is kept
    assert sorted(p.name for p in root.iterdir()) == ["archives"]  # nothing extracted


# --- what the script did not write is never deleted; what a killed run left is (issue 16) --
@pytest.mark.parametrize("top", ["gtFine", "leftImg8bit"])
def test_a_folder_of_the_user_in_root_is_never_deleted(tmp_path, home, top):
    src = make_zips(tmp_path / "zips")
    root = tmp_path / "cityscapes"
    (root / top).mkdir(parents=True)
    (root / top / "my_notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match=rf"--root: .*{top} exists and was not written by"):
        pc.prepare(root, src)
    assert (root / top / "my_notes.txt").read_text() == "mine"  # before: deleted, no prompt
    assert sorted(p.name for p in root.iterdir()) == [top]  # nothing extracted, no staging
    assert sorted(p.name for p in (root / top).iterdir()) == ["my_notes.txt"]


def test_a_folder_left_by_an_interrupted_run_is_replaced(tmp_path, home):
    src = make_zips(tmp_path / "zips")
    root = tmp_path / "cityscapes"
    (root / "gtFine" / "train").mkdir(parents=True)  # moved in, then the run stopped
    (root / "gtFine" / pc.OWNED).write_text("written by data_scripts/prepare_cityscapes.py\n")
    (root / "gtFine" / "train" / "half_written.png").write_bytes(b"")
    pc.prepare(root, src)
    assert (root / pc.MARKER).is_file() and (root / "gtFine" / pc.OWNED).is_file()
    assert not (root / "gtFine" / "train" / "half_written.png").exists()
    assert len(Cityscapes(root, "train")) == 2


_KILLED_CHILD = """
import importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("pc", {script!r})
pc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pc)
real = pc.safe_extract_zip

def slow(archive, dest):  # extract, then hang inside the staging folder until killed
    real(archive, dest)
    (Path(dest).parent / "ready").write_text("")
    time.sleep(60)

pc.safe_extract_zip = slow
pc.prepare(Path(sys.argv[1]), Path(sys.argv[2]))
"""


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next(tmp_path, home):
    import signal
    import subprocess
    import sys
    import time

    src = make_zips(tmp_path / "zips")
    root = tmp_path / "cityscapes"
    child = tmp_path / "child.py"
    child.write_text(
        _KILLED_CHILD.format(script=str(REPO / "data_scripts" / "prepare_cityscapes.py"))
    )
    proc = subprocess.Popen([sys.executable, str(child), str(root), str(src)])
    try:
        for _ in range(1200):  # the child imports torch: up to 60 s
            if list(root.glob(".staging-*/ready")) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the child exited ({proc.returncode}) before extracting"
        (stage,) = root.glob(".staging-*")
        assert pc.remove_stale_temps(root, pc.STAGING, "") == []  # alive: its lock holds
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert stage.is_dir() and any(stage.rglob("*.png"))  # what the kill left
    pc.prepare(root, src)
    assert not stage.exists() and not list(root.glob(".staging-*"))  # before: kept for ever
    assert (root / pc.MARKER).is_file()
