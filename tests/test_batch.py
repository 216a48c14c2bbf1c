"""The nightly batch: real folders, real worker processes, the real SQLite store.

Most tests use a small stand-in for the pipeline (``hashing_processor``) that really
reads each file (hash, empty/corrupt checks) and stores it through ``Store``, so they
run in well under a second per file; ``test_watch.py`` runs the real Pipeline.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from faxflow.ingest.batch import (LOCK_NAME, WorkspaceBusy, WorkspaceLock, classify, export_new_rows,
                                  handle_claim, run_batch)
from faxflow.ingest.pipeline import DocumentResult
from faxflow.ingest.queue import FileQueue
from faxflow.ingest.workspace import init_workspace, load_settings
from faxflow.templates.errors import (ConfigError, CorruptFile, EmptyFile, EngineError, ExitCode,
                                      TransientError)
from faxflow.templates.types import Record, SourceFile, Value

# Worker processes are spawned: they import this module again but inherit the environment.
PARENT_PID = int(os.environ.setdefault("FAXFLOW_TEST_PARENT_PID", str(os.getpid())))


# ------------------------------------------------------------- a stand-in pipeline --

def _review_record(sha: str) -> Record:
    v = Value(sha256=sha, page_index=0, name="quantity", box=(0, 0, 10, 10), raw_text="12O", value=None,
              text="12O", value_type="quantity", confidence=0.4, engine="fake", status="review",
              reasons=("low_confidence",))
    return Record(sha256=sha, page_index=0, template_name="fake_form", kind="order", header={"quantity": v},
                  status="review", reasons=("low_confidence",))


def hashing_processor(settings):
    """Factory: a processor that reads the file, hashes it, and stores one page per file.

    Content prefixes trigger problems: b"" empty, BAD corrupt, BOOM unexpected exception,
    CRASH kills the worker process, LOCKEDn 'database is locked' n times, CONFIG an error
    that is not the file's fault, GROW the file changes while read, REVIEW a flagged field,
    SLOW takes 0.3 s.
    """
    from faxflow.export.store import Store

    store = Store.open(settings.db_path)
    counters = Path(settings.home) / "counters"
    counters.mkdir(exist_ok=True)

    def bump(key: str) -> int:
        f = counters / key
        n = int(f.read_text()) + 1 if f.exists() else 1
        f.write_text(str(n))
        return n

    def process(path: Path, *, archived_path: str | None = None) -> DocumentResult:
        path = Path(path)
        data = path.read_bytes()
        name = path.name
        if not data:
            raise EmptyFile("the file is empty", "ファイルが空です", file=name)
        sha = hashlib.sha256(data).hexdigest()
        if data.startswith(b"BAD"):
            raise CorruptFile("the file is damaged", "ファイルが壊れています", file=name)
        if data.startswith(b"BOOM"):
            raise ZeroDivisionError("boom")
        if data.startswith(b"CRASH"):
            if os.getpid() != PARENT_PID:
                os._exit(3)
            raise RuntimeError("would crash")
        if data.startswith(b"LOCKED"):
            if bump(sha) <= int(data[6:7]):
                raise sqlite3.OperationalError("database is locked")
        if data.startswith(b"CONFIG"):
            raise ConfigError("the store cannot be opened", "データベースを開けません")
        if data.startswith(b"GROW") and not data.endswith(b"done"):
            with open(path, "ab") as fh:
                fh.write(b" done")
            raise CorruptFile("truncated", "途中で切れています", file=name)
        if data.startswith(b"SLOW"):
            time.sleep(0.3)
        if data.startswith(b"LONG"):  # record the row's heartbeat before and after a long read
            con = sqlite3.connect(settings.db_path)
            sql = "SELECT updated_ts FROM files WHERE original_name = ?"
            first = last = con.execute(sql, [name]).fetchone()[0]
            deadline = time.monotonic() + 6.0  # beats come every second; a loaded CI box may be late
            while last == first and time.monotonic() < deadline:
                time.sleep(0.1)
                last = con.execute(sql, [name]).fetchone()[0]
            (counters / "beats").write_text(f"{first} {last}")
        src = SourceFile(path=path, sha256=sha, kind="png", size=len(data))
        if store.has_document(sha):
            return DocumentResult(path=path, status="duplicate", source=src)
        if data.startswith(b"REVIEW"):
            records = [_review_record(sha)]
        else:
            records = [Record(sha256=sha, page_index=0, template_name=None, kind=None, status="unknown_form",
                              reasons=("unknown_form",))]
        doc_id = store.save_document(src, records, archived_path=archived_path)
        status = "review" if data.startswith(b"REVIEW") else "unknown_form"
        return DocumentResult(path=path, status=status, source=src, records=records, document_id=doc_id)

    return process


def broken_engine_factory(settings):
    raise EngineError("Tesseract language data 'jpn' is not installed", "Tesseract の日本語データがありません")


# --------------------------------------------------------------------------- helpers --

@pytest.fixture
def ws(tmp_path):
    init_workspace(tmp_path / "ws")
    return load_settings(tmp_path / "ws", stable_seconds=0.05, retry_backoff=0.01, lock_wait=0.3)


def drop(settings, name: str, data: bytes) -> Path:
    p = Path(settings.inbox) / name
    p.write_bytes(data)
    old = time.time() - 10
    os.utime(p, (old, old))
    return p


def db_rows(settings, sql: str) -> list[tuple]:
    return sqlite3.connect(settings.db_path).execute(sql).fetchall()


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- tests --

def test_batch_with_two_workers_sorts_every_file(ws):
    for i in range(6):
        drop(ws, f"注文書 {i}.png", f"page {i}".encode())
    drop(ws, "注文書 0 (copy).png", b"page 0")  # same content again
    drop(ws, "empty.pdf", b"")
    drop(ws, "broken.pdf", b"BAD pdf")
    drop(ws, "bug.png", b"BOOM")
    drop(ws, "check me.png", b"REVIEW 1")
    drop(ws, "~$lock.xlsx", b"x")  # ignored
    report = run_batch(ws, jobs=2, processor_factory=hashing_processor)

    assert report.counts == {"ok": 0, "review": 1, "unknown_form": 6, "duplicate": 1, "failed": 3}
    assert report.return_code == ExitCode.FILES_FAILED
    assert report.pages == 7 and report.flagged == 1
    assert tree(ws.inbox) == ["~$lock.xlsx"]
    assert tree(ws.processing) == []
    failed = tree(ws.failed)
    assert failed == ["broken.pdf", "broken.pdf.error.txt", "bug.png", "bug.png.error.txt",
                      "empty.pdf", "empty.pdf.error.txt"]
    bug = (Path(ws.failed) / "bug.png.error.txt").read_text(encoding="utf-8-sig")
    assert "予期しないエラー" in bug and "ZeroDivisionError: boom" in bug
    assert len(tree(ws.archive)) == 8
    # one document per distinct content (+ the failed ones), no half-written rows
    assert db_rows(ws, "SELECT count(*) FROM documents WHERE status != 'failed'") == [(7,)]
    assert db_rows(ws, "SELECT count(*) FROM documents d WHERE page_count != "
                       "(SELECT count(*) FROM pages p WHERE p.document_id = d.id)") == [(0,)]
    states = dict(db_rows(ws, "SELECT state, count(*) FROM files GROUP BY state"))
    assert states == {"done": 7, "duplicate": 1, "failed": 3}
    archived = db_rows(ws, "SELECT archived_path FROM documents WHERE source_name = 'check me.png'")[0][0]
    assert (Path(ws.home) / archived).read_bytes() == b"REVIEW 1"
    # the report file and the log
    text = report.path.read_text(encoding="utf-8-sig")
    assert report.path.parent == Path(ws.logs) and "failed/bug.png" in text and "ファイルが空です" in text
    assert "check me.png  p1  quantity  '12O'" in text and "low OCR confidence" in text
    log = (Path(ws.logs) / "faxflow.log").read_text(encoding="utf-8")
    assert sum(1 for line in log.splitlines() if " s  " in line and " -> " in line) == 11
    run = db_rows(ws, "SELECT exit_code, finished_at IS NOT NULL FROM runs WHERE kind = 'batch'")
    assert run == [(1, 1)]


def test_all_done_is_exit_0_and_an_empty_inbox_too(ws):
    assert run_batch(ws, processor_factory=hashing_processor, in_process=True).return_code == ExitCode.OK
    drop(ws, "a.png", b"one")
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True)
    assert report.return_code == ExitCode.OK and report.counts["unknown_form"] == 1


def test_database_locked_is_retried_then_succeeds(ws):
    drop(ws, "a.png", b"LOCKED2 a")
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True)
    (o,) = report.outcomes
    assert o.state == "done" and o.attempts == 3
    assert report.return_code == ExitCode.OK


def test_transient_errors_are_bounded(ws):
    drop(ws, "a.png", b"LOCKED9 a")
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True)
    (o,) = report.outcomes
    assert o.state == "failed" and o.attempts == ws.max_attempts
    assert "gave up after 3 attempt(s)" in o.error_en and "locked" in o.error_en
    assert (Path(ws.failed) / "a.png.error.txt").exists()


def test_a_file_that_changes_while_read_is_read_again(ws):
    drop(ws, "growing.png", b"GROW")
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True)
    (o,) = report.outcomes
    assert o.state == "done" and o.attempts == 2


def test_same_content_twice_in_one_batch_is_stored_once(ws):
    drop(ws, "a.png", b"SLOW same")
    drop(ws, "b.png", b"SLOW same")
    report = run_batch(ws, jobs=2, processor_factory=hashing_processor)
    assert sorted(o.state for o in report.outcomes) == ["done", "duplicate"]
    assert db_rows(ws, "SELECT count(*) FROM documents") == [(1,)]


def test_a_file_finished_by_a_worker_that_then_died_with_the_pool_is_reported_done(ws):
    # the pool breaks when any worker dies, also for a worker that had just archived its
    # file; the dispatcher then hands the same claim out again, and it must come back as
    # what it is (done), not as "abandoned" (a file missing from the batch report)
    drop(ws, "ok.png", b"fine")
    queue = FileQueue.open(ws)
    try:
        claim = queue.claim(Path(ws.inbox) / "ok.png")
        processor = hashing_processor(ws)
        first = handle_claim(claim, processor, queue, ws)
        again = handle_claim(claim, processor, queue, ws)
    finally:
        queue.close()
    assert first.state == "done"
    assert (again.state, again.status, again.dest) == ("done", first.status, first.dest)
    assert db_rows(ws, "SELECT count(*) FROM documents") == [(1,)]


def test_a_worker_that_dies_is_replaced_and_the_culprit_set_aside(ws):
    drop(ws, "crash.tif", b"CRASH")
    for i in range(4):
        drop(ws, f"ok{i}.png", f"fine {i}".encode())
    report = run_batch(ws, jobs=2, processor_factory=hashing_processor)
    by_name = {o.name: o for o in report.outcomes}
    assert by_name["crash.tif"].state == "failed" and by_name["crash.tif"].error_code == "interrupted"
    assert all(by_name[f"ok{i}.png"].state == "done" for i in range(4))
    assert (Path(ws.failed) / "crash.tif.error.txt").exists()
    assert tree(ws.processing) == [] and tree(ws.inbox) == []
    assert report.return_code == ExitCode.FILES_FAILED


def test_pipeline_that_cannot_start_exits_2_and_touches_nothing(ws):
    drop(ws, "a.png", b"one")
    report = run_batch(ws, jobs=1, processor_factory=broken_engine_factory)
    assert report.return_code == ExitCode.CANNOT_RUN and "jpn" in report.fatal_en
    assert tree(ws.inbox) == ["a.png"] and tree(ws.failed) == []
    assert "exit 2" in report.path.read_text(encoding="utf-8-sig")


def test_an_error_that_is_not_the_files_fault_puts_it_back_and_stops(ws):
    drop(ws, "a.png", b"CONFIG")
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True)
    assert report.return_code == ExitCode.CANNOT_RUN
    assert tree(ws.inbox) == ["a.png"] and tree(ws.failed) == [] and tree(ws.processing) == []
    assert db_rows(ws, "SELECT count(*) FROM files") == [(0,)]


def test_files_left_by_a_crashed_run_are_taken_over(ws):
    q = FileQueue.open(ws)
    claim = q.claim(drop(ws, "left.png", b"left over"))
    q.start(claim)
    # the crashed process had already stored the document before it died
    hashing_processor(ws)(claim.path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    q.conn.execute("UPDATE files SET pid = ? WHERE id = ?", [dead.pid, claim.id])
    q.close()
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True)
    (o,) = report.outcomes
    assert report.recovered == 1
    assert o.state == "done" and o.status == "unknown_form" and o.attempts == 2  # not a "duplicate" of itself
    assert db_rows(ws, "SELECT count(*) FROM documents") == [(1,)]


def test_a_second_batch_waits_then_gives_up_with_exit_2(ws):
    drop(ws, "a.png", b"one")
    lock = WorkspaceLock(Path(ws.home) / LOCK_NAME)
    lock.acquire(0)
    try:
        t0 = time.monotonic()
        with pytest.raises(WorkspaceBusy) as info:
            run_batch(ws, processor_factory=hashing_processor, in_process=True, lock_wait=0.5)
        assert time.monotonic() - t0 >= 0.5
        assert info.value.exit_code == ExitCode.CANNOT_RUN
        assert f"pid {os.getpid()}" in str(info.value) and "実行中" in info.value.ja
        assert tree(ws.inbox) == ["a.png"]
    finally:
        lock.release()
    assert run_batch(ws, processor_factory=hashing_processor, in_process=True).return_code == ExitCode.OK


def test_the_lock_is_released_when_its_process_dies(ws):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from faxflow.ingest.batch import WorkspaceLock;"
        "lock = WorkspaceLock(Path(sys.argv[1])); lock.acquire(0); print('locked', flush=True); time.sleep(60)"),
        str(Path(ws.home) / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkspaceBusy):
            WorkspaceLock(Path(ws.home) / LOCK_NAME).acquire(0)
    finally:
        holder.kill()
        holder.wait()
    lock = WorkspaceLock(Path(ws.home) / LOCK_NAME)
    lock.acquire(1)  # SIGKILL released it
    lock.release()


def test_stop_finishes_the_current_file_and_exits_130(ws):
    for i in range(20):
        drop(ws, f"f{i:02d}.png", f"SLOW {i}".encode())
    stop = threading.Event()

    class StopAfterTwo:  # like Ctrl-C / SIGTERM arriving while the 2nd file is being read
        def start(self, total):
            pass

        def advance(self, o):
            if o.name == "f01.png":
                stop.set()

        def stop(self):
            pass

    report = run_batch(ws, processor_factory=hashing_processor, jobs=1, stop=stop, handle_signals=False,
                       progress=StopAfterTwo())
    assert report.return_code == ExitCode.INTERRUPTED
    done = len(report.outcomes)
    assert 0 < done < 20 and all(o.state == "done" for o in report.outcomes)
    # nothing half-done: every file is either archived or still waiting in the inbox
    assert len(tree(ws.archive)) + len(tree(ws.inbox)) == 20 and tree(ws.processing) == []


def test_a_long_read_sends_heartbeats(ws):
    import dataclasses

    ws = dataclasses.replace(ws, stale_after=1.0)  # a heartbeat every second
    drop(ws, "long.tif", b"LONG")
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True)
    assert report.outcomes[0].state == "done"
    first, last = map(float, (Path(ws.home) / "counters" / "beats").read_text().split())
    assert last > first


def test_classify():
    locked = classify(sqlite3.OperationalError("database is locked"), "a.pdf")
    assert isinstance(locked, TransientError) and not locked.permanent
    assert isinstance(classify(PermissionError(13, "denied"), "a.pdf"), TransientError)
    bug = classify(KeyError("x"), "a.pdf")
    assert bug.permanent and "KeyError" in bug.en and "予期しない" in bug.ja and bug.file == "a.pdf"
    same = CorruptFile("x")
    assert classify(same, "a.pdf") is same
    assert classify(MemoryError(), "big.tif").code == "too_large"
    assert classify(sqlite3.DatabaseError("disk I/O error"), "a").exit_code == ExitCode.CANNOT_RUN


def test_progress_sees_every_file(ws):
    events = []

    class Sink:
        def start(self, total):
            events.append(("start", total))

        def advance(self, o):
            events.append(("advance", o.name))

        def stop(self):
            events.append(("stop",))

    drop(ws, "a.png", b"1")
    drop(ws, "b.png", b"")
    run_batch(ws, processor_factory=hashing_processor, in_process=True, progress=Sink())
    assert events[0] == ("start", 2) and events[-1] == ("stop",)
    assert sorted(e[1] for e in events if e[0] == "advance") == ["a.png", "b.png"]


def test_export_after_the_run(ws):
    drop(ws, "a.png", b"1")
    report = run_batch(ws, processor_factory=hashing_processor, in_process=True, export=True)
    assert report.exports == ["order: no new rows", "ledger: no new rows"]
    assert tree(ws.exports) == []
    assert export_new_rows(ws) == ["order: no new rows", "ledger: no new rows"]
