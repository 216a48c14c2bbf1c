"""Exactly once: atomic claims, file states, unique archive/failed names, crash recovery."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from faxflow.ingest.queue import (Claim, FileQueue, parse_token, pid_alive, reserve_unique, sha256_of,
                                  unique_names)
from faxflow.ingest.workspace import init_workspace, load_settings
from faxflow.templates.errors import CorruptFile, TransientError

PY = sys.executable


@pytest.fixture
def ws(tmp_path):
    init_workspace(tmp_path / "ws")
    return load_settings(tmp_path / "ws", stable_seconds=0.0, retry_backoff=0.01)


@pytest.fixture
def queue(ws):
    q = FileQueue.open(ws)
    yield q
    q.close()


def drop(settings, name: str, data: bytes = b"%PDF-1.4 test") -> Path:
    p = Path(settings.inbox) / name
    p.write_bytes(data)
    return p


def dead_pid() -> int:
    p = subprocess.Popen([PY, "-c", "pass"])
    p.wait()
    return p.pid


def rows(settings) -> list[dict]:
    con = sqlite3.connect(settings.db_path)
    con.row_factory = sqlite3.Row
    return [dict(r) for r in con.execute("SELECT * FROM files ORDER BY id")]


# ---------------------------------------------------------------------------- claims --

def test_claim_moves_the_file_keeping_its_name_and_records_it(ws, queue):
    src = drop(ws, "注文書 1.pdf", b"%PDF-1.4 hello")
    claim = queue.claim(src, run_id=7)
    assert not src.exists()
    assert claim.path.name == "注文書 1.pdf" and claim.path.read_bytes() == b"%PDF-1.4 hello"
    assert claim.path.parent.parent == Path(ws.processing)
    assert parse_token(claim.token)[0] == os.getpid()
    assert claim.sha256 == sha256_of(claim.path)
    (row,) = rows(ws)
    assert row["state"] == "queued" and row["original_name"] == "注文書 1.pdf" and row["attempts"] == 0
    assert row["pid"] == os.getpid() and row["run_id"] == 7 and row["sha256"] == claim.sha256
    assert queue.claim(src) is None  # already taken: nothing happens
    assert len(rows(ws)) == 1


def test_start_counts_attempts_and_only_the_owner_can_start(ws, queue):
    claim = queue.claim(drop(ws, "a.pdf"))
    assert queue.start(claim) == 1
    assert queue.start(claim) == 2
    other = Claim(**{**claim.__dict__, "token": "1-2-deadbeef"})
    assert queue.start(other) is None


CLAIMER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from faxflow.ingest.queue import FileQueue
    from faxflow.ingest.workspace import load_settings
    settings = load_settings(Path(sys.argv[1]))
    queue = FileQueue.open(settings)
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.005)
    names = sorted(p.name for p in Path(settings.inbox).iterdir())
    if sys.argv[3] == "reverse":
        names.reverse()
    taken = []
    for name in names:
        claim = queue.claim(Path(settings.inbox) / name)
        if claim is not None:
            taken.append(name)
    print(json.dumps(taken))
""")


def test_two_processes_claiming_the_same_50_files_take_each_once(ws, tmp_path):
    for i in range(50):
        drop(ws, f"fax {i:02d}.pdf", f"%PDF-1.4 {i}".encode())
    go = tmp_path / "go"
    procs = [subprocess.Popen([PY, "-c", CLAIMER, str(ws.home), str(go), order], stdout=subprocess.PIPE,
                              text=True) for order in ("forward", "forward", "reverse")]
    time.sleep(0.5)  # let them start and open the database
    go.touch()
    taken = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    everything = [n for t in taken for n in t]
    assert sorted(everything) == sorted(f"fax {i:02d}.pdf" for i in range(50))  # each exactly once
    r = rows(ws)
    assert len(r) == 50 and len({x["token"] for x in r}) == 50
    assert sorted(x["original_name"] for x in r) == sorted(everything)
    assert list(Path(ws.inbox).iterdir()) == []
    assert len(list(Path(ws.processing).rglob("*.pdf"))) == 50


def test_a_file_locked_by_another_program_is_not_claimed(ws, queue, monkeypatch):
    src = drop(ws, "a.pdf")

    def locked(a, b):
        raise PermissionError(13, "The process cannot access the file")

    monkeypatch.setattr(os, "rename", locked)
    with pytest.raises(TransientError):
        queue.claim(src)
    monkeypatch.undo()
    assert src.exists() and list(Path(ws.processing).iterdir()) == [] and rows(ws) == []


# ---------------------------------------------------------------- names never clash --

def test_unique_names():
    names = unique_names("注文書 1.pdf")
    assert [next(names) for _ in range(3)] == ["注文書 1.pdf", "注文書 1 (2).pdf", "注文書 1 (3).pdf"]
    names = unique_names("FAX0001")
    assert [next(names) for _ in range(2)] == ["FAX0001", "FAX0001 (2)"]
    names = unique_names("scan.2026.11.pdf")
    assert [next(names) for _ in range(2)] == ["scan.2026.11.pdf", "scan.2026.11 (2).pdf"]


def test_reserve_unique_never_touches_an_existing_file(tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"old")
    p = reserve_unique(tmp_path, "a.pdf")
    assert p.name == "a (2).pdf" and p.stat().st_size == 0
    assert (tmp_path / "a.pdf").read_bytes() == b"old"
    assert reserve_unique(tmp_path, "a.pdf").name == "a (3).pdf"


def test_archive_uses_the_date_folder_and_never_overwrites(ws, queue):
    today = dt.date.today().isoformat()
    outcomes = []
    for content in (b"%PDF-1.4 one", b"%PDF-1.4 two"):
        claim = queue.claim(drop(ws, "注文書.pdf", content))
        queue.start(claim)
        dest = queue.reserve_archive(claim)
        assert dest == queue.reserve_archive(claim)  # the reservation is kept across attempts
        outcomes.append(queue.archive(claim, dest, state="done", outcome="ok", attempts=1, duration_s=0.1))
    assert outcomes == [f"archive/{today}/注文書.pdf", f"archive/{today}/注文書 (2).pdf"]
    assert (Path(ws.home) / outcomes[0]).read_bytes() == b"%PDF-1.4 one"
    assert (Path(ws.home) / outcomes[1]).read_bytes() == b"%PDF-1.4 two"
    assert [r["state"] for r in rows(ws)] == ["done", "done"]
    assert list(Path(ws.processing).iterdir()) == []


def test_failed_file_gets_a_reason_file_in_both_languages(ws, queue):
    for content in (b"broken one", b"broken two"):
        claim = queue.claim(drop(ws, "壊れた 注文書.pdf", content))
        queue.start(claim)
        placeholder = queue.reserve_archive(claim)
        err = CorruptFile("the PDF is damaged", "PDFが壊れています", file=claim.original_name)
        rel = queue.fail(claim, err, attempts=1)
        assert not placeholder.exists()  # no empty file left in archive/
    failed = Path(ws.failed)
    assert sorted(p.name for p in failed.iterdir()) == [
        "壊れた 注文書 (2).pdf", "壊れた 注文書 (2).pdf.error.txt", "壊れた 注文書.pdf", "壊れた 注文書.pdf.error.txt"]
    text = (failed / "壊れた 注文書.pdf.error.txt").read_text(encoding="utf-8-sig")
    assert "PDFが壊れています" in text and "the PDF is damaged" in text and "corrupt" in text
    assert str(dt.date.today().year) in text
    assert (failed / "壊れた 注文書.pdf").read_bytes() == b"broken one"
    assert rel == "failed/壊れた 注文書 (2).pdf"
    r = rows(ws)
    assert [x["state"] for x in r] == ["failed", "failed"] and r[0]["error_ja"] == "PDFが壊れています"
    docs = sqlite3.connect(ws.db_path).execute("SELECT status, error_code FROM documents").fetchall()
    assert docs == [("failed", "corrupt"), ("failed", "corrupt")]


# --------------------------------------------------------------------------- recovery --

def _abandon(ws, queue, name: str, *, pid: int, attempts: int = 1, data: bytes | None = None) -> Claim:
    claim = queue.claim(drop(ws, name, data or name.encode()))
    for _ in range(attempts):
        queue.start(claim)
    queue.conn.execute("UPDATE files SET pid = ? WHERE id = ?", [pid, claim.id])
    return claim


def test_claims_of_a_dead_process_are_taken_over(ws, queue):
    old = _abandon(ws, queue, "a.pdf", pid=dead_pid())
    claims, failed = queue.recover()
    assert failed == [] and len(claims) == 1
    (claim,) = claims
    assert claim.id == old.id and claim.token != old.token and claim.recovered and claim.attempts == 1
    assert claim.path.exists() and not old.path.exists()
    assert queue.start(old) is None  # the dead owner's claim is no longer valid
    assert queue.start(claim) == 2
    assert rows(ws)[0]["pid"] == os.getpid()


def test_claims_of_a_live_process_are_left_alone_until_stale(ws, queue):
    helper = subprocess.Popen([PY, "-c", "import time; time.sleep(30)"])
    try:
        old = _abandon(ws, queue, "a.pdf", pid=helper.pid)
        assert queue.recover() == ([], [])
        assert old.path.exists()
        # ... unless it has been there longer than stale_after (pid reuse, hung process)
        queue.conn.execute("UPDATE files SET updated_ts = updated_ts - ?", [ws.stale_after + 1])
        claims, _ = queue.recover()
        assert [c.id for c in claims] == [old.id]
    finally:
        helper.kill()
        helper.wait()


def test_a_file_interrupted_max_attempts_times_goes_to_failed(ws, queue):
    _abandon(ws, queue, "crasher.tif", pid=dead_pid(), attempts=ws.max_attempts)
    claims, failed = queue.recover()
    assert claims == [] and len(failed) == 1
    assert failed[0].state == "failed" and failed[0].error_code == "interrupted"
    assert (Path(ws.failed) / "crasher.tif").exists()
    text = (Path(ws.failed) / "crasher.tif.error.txt").read_text(encoding="utf-8-sig")
    assert "中断" in text and "interrupted" in text
    assert rows(ws)[0]["state"] == "failed"


def test_a_claim_folder_without_a_row_is_recovered(ws, queue):
    # a crash between the rename and the INSERT
    token = f"{dead_pid()}-{int(time.time())}-0badf00d"
    folder = Path(ws.processing) / token
    folder.mkdir()
    (folder / "orphan.png").write_bytes(b"\x89PNG\r\n\x1a\n...")
    claims, failed = queue.recover()
    assert failed == [] and [c.original_name for c in claims] == ["orphan.png"]
    assert rows(ws)[0]["state"] == "queued" and rows(ws)[0]["sha256"]
    assert not folder.exists()


def test_a_claim_whose_file_was_already_archived_is_settled(ws, queue):
    claim = _abandon(ws, queue, "a.pdf", pid=dead_pid())
    dest = queue.reserve_archive(claim)
    os.replace(claim.path, dest)  # moved, then the process died before updating the row
    queue.conn.execute("UPDATE files SET outcome = 'ok' WHERE id = ?", [claim.id])
    assert queue.recover() == ([], [])
    assert rows(ws)[0]["state"] == "done" and dest.read_bytes() == b"a.pdf"
    assert not claim.path.parent.exists()


def test_a_claim_from_before_the_last_boot_is_abandoned_even_if_its_pid_is_alive(ws, queue, monkeypatch):
    import faxflow.ingest.queue as q

    old = _abandon(ws, queue, "a.pdf", pid=os.getpid())  # pid reused by a live process after a reboot
    assert queue.recover() == ([], [])
    monkeypatch.setattr(q, "boot_time", lambda: time.time() + 1)
    claims, _ = queue.recover()
    assert [c.id for c in claims] == [old.id]


def test_heartbeat_keeps_a_long_file_alive(ws, queue):
    claim = queue.claim(drop(ws, "long.pdf"))
    assert not queue.heartbeat(claim)  # not started yet
    queue.start(claim)
    before = rows(ws)[0]["updated_ts"]
    time.sleep(0.01)
    assert queue.heartbeat(claim)
    assert rows(ws)[0]["updated_ts"] > before


def test_foreign_folders_in_processing_are_ignored(ws, queue):
    (Path(ws.processing) / "not-ours").mkdir()
    assert queue.recover() == ([], [])
    assert (Path(ws.processing) / "not-ours").exists()


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(None) and not pid_alive(0)
    zombie = subprocess.Popen([PY, "-c", "pass"])
    deadline = time.time() + 10
    while time.time() < deadline:  # exited but not reaped: a zombie counts as dead
        try:
            state = Path(f"/proc/{zombie.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            break
        if state == b"Z":
            break
        time.sleep(0.01)
    if Path("/proc").is_dir():
        assert not pid_alive(zombie.pid)
    zombie.wait()


def test_status_counts_and_errors(ws, queue):
    from faxflow.ingest.queue import workspace_status

    claim = queue.claim(drop(ws, "bad.pdf"))
    queue.start(claim)
    queue.fail(claim, CorruptFile("damaged", "壊れています"), attempts=1)
    drop(ws, "waiting.pdf")
    run = queue.start_run("batch")
    queue.finish_run(run, exit_code=1, summary={"failed": 1}, report_path="logs/batch-x.txt")
    st = workspace_status(ws)
    assert st.states["failed"] == 1 and st.waiting == 1
    assert st.last_batch["exit_code"] == 1
    text = "\n".join(st.lines())
    assert "壊れています" in text and "failed/bad.pdf" in text and "exit 1" in text and "batch-x.txt" in text
