"""The watcher and the batch as the IT helper runs them: real `faxflow` processes, the
real Pipeline, real folders and SQLite. Small generated images keep it fast (they come
out as unknown_form); the bad inputs are the ones offices really produce.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from faxflow.ingest.workspace import init_workspace
from faxflow.templates.errors import ExitCode

FAXFLOW = [sys.executable, "-m", "faxflow"]
ENV = {**os.environ, "OMP_THREAD_LIMIT": "1", "PYTHONUNBUFFERED": "1"}
ENV.pop("FAXFLOW_HOME", None)


# --------------------------------------------------------------------------- helpers --

def workspace(tmp_path: Path, *, stable: float = 0.3, jobs: int = 1, lock_wait: float = 10.0,
              name: str = "ws") -> Path:
    home = tmp_path / name
    init_workspace(home)
    (home / "faxflow.toml").write_text(
        f"[watch]\nstable_seconds = {stable}\npoll_interval = 0.5\n"
        f"[batch]\njobs = {jobs}\nretry_backoff = 0.1\nlock_wait = {lock_wait}\n", encoding="utf-8")
    return home


def png_bytes(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A small distinct 'scan': a frame, some lines and a number."""
    rnd = random.Random(seed)
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    d.rectangle((5, 5, size[0] - 6, size[1] - 6), outline=0, width=2)
    for _ in range(6):
        y = rnd.randrange(20, size[1] - 20)
        d.line((15, y, size[0] - 15, y), fill=0, width=1)
    d.text((20, 20), f"No. {seed}", fill=0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def quick_png(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A nearly blank distinct page (a few dots encode the seed): the cheapest input for
    the real pipeline (few features to match), for the tests that need many files."""
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    for bit in range(16):
        if seed >> bit & 1:
            x = 10 + bit * 12
            d.rectangle((x, 10, x + 3, 13), fill=0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def huge_png_header(w: int = 50_000, h: int = 50_000) -> bytes:
    """A PNG that claims to be 50,000 x 50,000 pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + \
        chunk(b"IEND", b"")


BAD_INPUTS = {
    "empty.pdf": b"",
    "readme.pdf": "これは画像ではありません / not an image\n".encode(),
    "broken.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\n" + bytes(range(256)) * 4,
    "huge 巨大.png": huge_png_header(),
}


def drop(inbox: Path, name: str, data: bytes) -> Path:
    """Write beside the inbox, then rename in: how a careful copier delivers a file."""
    tmp = inbox.parent / (name + ".incoming")
    tmp.write_bytes(data)
    os.replace(tmp, inbox / name)
    return inbox / name


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"faxflow exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def scans_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".error.txt"))


def query(home: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(home / "faxflow.db", timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def state_counts(home: Path) -> dict[str, int]:
    try:
        return dict(query(home, "SELECT state, count(*) FROM files GROUP BY state"))
    except sqlite3.OperationalError:
        return {}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Watcher:
    """`faxflow watch` in its own process group (so a crash can take the workers too)."""

    def __init__(self, home: Path, *args: str):
        self.home = home
        self.out = open(home / f"watch-{time.monotonic_ns()}.out", "w+b")
        self.proc = subprocess.Popen(FAXFLOW + ["watch", "--home", str(home), *args], stdout=self.out,
                                     stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        wait_for(lambda: b"watching" in self.output(), 60, "the watcher to start", self.proc)

    def output(self) -> bytes:
        return Path(self.out.name).read_bytes()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.out.close()
        return rc

    def crash(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the watcher and its workers, mid-file
        self.proc.wait(timeout=10)
        self.out.close()


def run(home: Path | None, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = FAXFLOW + ["run", *args] + (["--home", str(home)] if home else [])
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)


# ----------------------------------------------------------------------------- tests --

def test_watcher_takes_everything_and_survives_bad_files(tmp_path):
    home = workspace(tmp_path, stable=1.0)
    inbox = home / "inbox"
    early = {f"待機中 {i}.png": png_bytes(i) for i in range(2)}
    for name, data in early.items():
        drop(inbox, name, data)
    ignored = ["~$注文.xlsx", "scan.tmp", "Thumbs.db", ".hidden.png", "upload.pdf.part"]
    for name in ignored:
        (inbox / name).write_bytes(b"x")
    w = Watcher(home)
    try:
        # files waiting at start-up are processed too
        wait_for(lambda: len(scans_in(home / "archive")) == 2, 60, "the files present at start-up", w.proc)
        first = png_bytes(10)
        drop(inbox, "注文書 3 (FAX).png", first)
        for name, data in BAD_INPUTS.items():
            drop(inbox, name, data)
        wait_for(lambda: state_counts(home).get("failed") == len(BAD_INPUTS), 60, "the bad files", w.proc)
        wait_for(lambda: state_counts(home).get("done") == 3, 60, "the third file", w.proc)
        drop(inbox, "再送 注文書.png", first)  # the same FAX sent again

        # a file copied slowly in chunks (pauses shorter than stable_seconds) is not read early
        slow = png_bytes(11, size=(640, 480))
        target = inbox / "ゆっくり コピー.png"
        step = len(slow) // 8 + 1
        with open(target, "wb") as fh:
            for i in range(0, len(slow), step):
                fh.write(slow[i:i + step])
                fh.flush()
                time.sleep(0.4)
        drop(inbox, "最後.png", png_bytes(12))
        wait_for(lambda: state_counts(home).get("done") == 5 and state_counts(home).get("duplicate") == 1,
                 60, "the last files", w.proc)
        assert w.alive()
    finally:
        rc = w.stop()
    assert rc == 0  # SIGTERM: finished cleanly

    archived = {p.name for p in scans_in(home / "archive")}
    assert archived == {"待機中 0.png", "待機中 1.png", "注文書 3 (FAX).png", "再送 注文書.png",
                        "ゆっくり コピー.png", "最後.png"}
    assert sorted(p.name for p in scans_in(home / "failed")) == sorted(BAD_INPUTS)
    for name in BAD_INPUTS:
        reason = (home / "failed" / f"{name}.error.txt").read_text(encoding="utf-8-sig")
        assert "理由:" in reason and "reason:" in reason and name in reason
    codes = dict(query(home, "SELECT original_name, error_code FROM files WHERE state = 'failed'"))
    assert codes == {"empty.pdf": "empty", "readme.pdf": "unsupported", "broken.pdf": "corrupt",
                     "huge 巨大.png": "too_large"}
    assert sorted(files_in(inbox)) == sorted(ignored)
    assert files_in(home / "processing") == []
    # the slow copy was read whole: its document has the hash of the complete file
    assert query(home, "SELECT sha256 FROM documents WHERE source_name = 'ゆっくり コピー.png'") == [(sha(slow),)]
    assert query(home, "SELECT state FROM files WHERE original_name = '再送 注文書.png'") == [("duplicate",)]
    assert query(home, f"SELECT count(*) FROM documents WHERE sha256 = '{sha(first)}'") == [(1,)]
    log = (home / "logs" / "faxflow.log").read_text(encoding="utf-8")
    for name in list(BAD_INPUTS) + ["最後.png", "ゆっくり コピー.png"]:
        assert f"  {name} -> " in log, name


def test_sigkill_in_the_middle_then_restart_loses_nothing(tmp_path):
    home = workspace(tmp_path, stable=0.2, jobs=2)
    inbox = home / "inbox"
    contents = {f"fax {i:02d}.png": png_bytes(100 + i, size=(900, 700)) for i in range(30)}
    for name, data in contents.items():
        drop(inbox, name, data)
    w = Watcher(home)
    wait_for(lambda: state_counts(home).get("done", 0) >= 8, 120, "some files to be done", w.proc)
    w.crash()
    interrupted = files_in(home / "processing")
    assert interrupted, "the crash came too late: no file was being read"

    w = Watcher(home)
    try:
        wait_for(lambda: not files_in(inbox) and not files_in(home / "processing"), 120,
                 "every file to leave inbox/ and processing/", w.proc)
        wait_for(lambda: sum(state_counts(home).get(s, 0) for s in ("done", "failed", "duplicate")) >= 30,
                 60, "every file to be recorded", w.proc)
    finally:
        assert w.stop() == 0

    scans = scans_in(home / "archive") + scans_in(home / "failed")
    assert len(scans) == 30  # every file ends in archive/ or failed/, once
    assert sorted(sha(p.read_bytes()) for p in scans) == sorted(sha(d) for d in contents.values())
    assert scans_in(home / "failed") == []  # nothing was set aside: one crash is not the file's fault
    # exactly one document per distinct file, none half-written
    assert query(home, "SELECT count(*), count(DISTINCT sha256) FROM documents") == [(30, 30)]
    assert query(home, "SELECT count(*) FROM documents d WHERE page_count != "
                       "(SELECT count(*) FROM pages p WHERE p.document_id = d.id)") == [(0,)]
    assert state_counts(home) == {"done": 30}  # a file stored just before the crash is not its own duplicate
    retried = query(home, "SELECT count(*) FROM files WHERE attempts > 1")[0][0]
    assert retried <= len(interrupted)  # only the files that were in processing/ were read twice


def test_200_files_dropped_at_once(tmp_path):
    home = workspace(tmp_path, stable=0.3, jobs=2)
    inbox = home / "inbox"
    w = Watcher(home)
    try:
        for i in range(200):
            (inbox / f"一括 {i:03d}.png").write_bytes(quick_png(1000 + i))
        wait_for(lambda: state_counts(home).get("done", 0) == 200, 150, "200 files", w.proc)
    finally:
        assert w.stop() == 0
    assert len(scans_in(home / "archive")) == 200 and files_in(inbox) == [] and files_in(home / "failed") == []
    assert query(home, "SELECT count(DISTINCT sha256) FROM documents") == [(200,)]


def test_two_runs_at_once_take_each_file_once(tmp_path):
    home = workspace(tmp_path, stable=0.0, jobs=1, lock_wait=1.0)
    for i in range(20):
        drop(home / "inbox", f"夜間 {i:02d}.png", quick_png(300 + i))
    results: list[subprocess.CompletedProcess] = []
    threads = [threading.Thread(target=lambda: results.append(run(home))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results)
    assert codes in ([0, 0], [0, 2]), [r.stderr for r in results]
    if codes == [0, 2]:
        loser = next(r for r in results if r.returncode == 2)
        assert "another 'faxflow run' is still running" in loser.stderr
    assert len(scans_in(home / "archive")) == 20
    assert state_counts(home) == {"done": 20}
    assert query(home, "SELECT count(*) FROM documents") == [(20,)]
    assert query(home, "SELECT exit_code FROM runs WHERE kind = 'batch' AND exit_code = 0") == [(0,)]


def test_a_watcher_and_a_batch_share_the_inbox(tmp_path):
    home = workspace(tmp_path, stable=0.2, jobs=1)
    w = Watcher(home)
    try:
        for i in range(40):
            drop(home / "inbox", f"共有 {i:02d}.png", quick_png(500 + i))
        r = run(home)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: state_counts(home).get("done", 0) == 40, 60, "all 40 files", w.proc)
    finally:
        assert w.stop() == 0
    assert state_counts(home) == {"done": 40} and len(scans_in(home / "archive")) == 40
    assert query(home, "SELECT count(DISTINCT sha256), count(*) FROM documents") == [(40, 40)]


def test_run_inbox_without_a_workspace(tmp_path):
    inbox = tmp_path / "fax-in"
    inbox.mkdir()
    drop(inbox, "a.png", png_bytes(1))
    drop(inbox, "empty.tif", b"")
    r = run(None, str(inbox))
    assert r.returncode == ExitCode.FILES_FAILED
    # archive/, failed/, the database and the logs beside the inbox
    assert (tmp_path / "faxflow.db").is_file()
    assert [p.name for p in scans_in(tmp_path / "archive")] == ["a.png"]
    assert [p.name for p in scans_in(tmp_path / "failed")] == ["empty.tif"]
    assert list((tmp_path / "logs").glob("batch-*.txt"))
    # stdout is not a terminal: plain log lines, then a plain summary
    assert "done      unknown_form" in r.stderr and "empty.tif -> failed/empty.tif" in r.stderr
    assert "Failed (see failed/)" in r.stdout and "exit 1" in r.stdout
    assert "\x1b[" not in r.stdout + r.stderr

    status = subprocess.run(FAXFLOW + ["status", "--home", str(tmp_path)], capture_output=True, text=True,
                            env=ENV, timeout=60)
    assert status.returncode == 0
    assert "exit 1" in status.stdout and "failed/empty.tif" in status.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_watcher_stops_cleanly(tmp_path, sig):
    home = workspace(tmp_path)
    w = Watcher(home)
    assert w.stop(sig, timeout=20) == 0
    assert b"watcher stopped" in w.output()
    assert query(home, "SELECT exit_code, finished_at IS NOT NULL FROM runs WHERE kind = 'watch'") == [(0, 1)]
