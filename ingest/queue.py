"""Exactly once: claiming inbox files, their states, recovery after a crash, and
where each file ends up.

* **Claim** = one atomic ``os.rename`` of ``inbox/NAME`` to
  ``processing/<token>/NAME`` (same filesystem). Of two processes renaming the same
  file, exactly one succeeds; the other sees ``FileNotFoundError`` and moves on. The
  per-claim folder keeps the original name (the pipeline and every message see the
  clerk's file name) and can never clash. ``<token>`` is ``<pid>-<unix time>-<random>``.
* **State** lives in the workspace database, table ``files``: one row per claim with
  queued / processing / done / failed / duplicate, attempts, times, error, worker pid
  and host, original name, sha256 and where the file went (``dest``).
* **Recovery** (:meth:`FileQueue.recover`, at every start and every few minutes in the
  watcher): a claim folder whose owner process is gone (or that is older than
  ``stale_after``) is taken over by renaming the folder (atomic again: one taker) and
  processed again; every start counts as an attempt and after ``max_attempts`` the
  file goes to ``failed/`` (a file that crashes the reader cannot loop forever).
* **Archive**: ``archive/YYYY-MM-DD/NAME``; the name is *reserved* before the file is
  read (an empty placeholder made with ``O_EXCL``, so the database can record where
  the scan will be) and the file is moved over it. A clash gets ``NAME (2).ext``;
  nothing in archive/ or failed/ is ever overwritten.
* **Failed**: ``failed/NAME`` plus ``failed/NAME.error.txt`` (reason in Japanese and
  English, time, attempts) and a ``failed`` document row via ``Store.record_failure``.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import shutil
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from faxflow.ingest.report import FileOutcome, WorkspaceStatus
from faxflow.ingest.settings import Settings
from faxflow.templates.errors import ConfigError, FaxflowError, TransientError

STATES = ("queued", "processing", "done", "failed", "duplicate")
ACTIVE = ("queued", "processing")
BUSY_TIMEOUT_S = 30.0
HOST = socket.gethostname()

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL,
    inbox_path TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'processing', 'done', 'failed', 'duplicate')),
    outcome TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    size INTEGER,
    mtime_ns INTEGER,
    sha256 TEXT,
    document_id INTEGER,
    pid INTEGER,
    host TEXT,
    run_id INTEGER,
    claimed_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    updated_ts REAL NOT NULL,
    duration_s REAL,
    pages INTEGER,
    fields INTEGER,
    flagged INTEGER,
    dest TEXT,
    error_code TEXT,
    error_en TEXT,
    error_ja TEXT
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    pid INTEGER,
    host TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    exit_code INTEGER,
    summary TEXT,
    report_path TEXT,
    message TEXT
);
"""


@dataclass(frozen=True)
class Claim:
    """A file this process owns: it sits at ``path`` = processing/<token>/<original name>."""

    id: int
    token: str
    path: Path
    original_name: str
    inbox_path: Path
    size: int
    mtime_ns: int
    sha256: str | None
    attempts: int = 0
    recovered: bool = False


# ---------------------------------------------------------------------------- helpers --

def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def new_token() -> str:
    return f"{os.getpid()}-{int(time.time())}-{secrets.token_hex(4)}"


def parse_token(token: str) -> tuple[int, float] | None:
    """(pid, unix time) of a claim token, None if the name is not one of ours."""
    parts = token.split("-")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0]), float(parts[1])
    except ValueError:
        return None


def pid_alive(pid: int | None) -> bool:
    """Is process ``pid`` running on this machine? (Zombies count as dead.)"""
    if not pid or pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, int(pid))  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def boot_time() -> float | None:
    """When this machine started (Linux: /proc/stat btime), None if unknown."""
    try:
        with open("/proc/stat", "rb") as fh:
            for line in fh:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def unique_names(name: str) -> Iterator[str]:
    """NAME, then 'stem (2).ext', 'stem (3).ext', ..."""
    yield name
    p = Path(name)
    stem, suffix = (p.stem, p.suffix) if p.stem else (name, "")
    n = 2
    while True:
        yield f"{stem} ({n}){suffix}"
        n += 1


def reserve_unique(folder: Path, name: str) -> Path:
    """Create an empty placeholder ``folder/NAME`` (or ``NAME (n)``) with O_EXCL and return
    it: the name is ours, no other process can take it, nothing existing is touched."""
    folder.mkdir(parents=True, exist_ok=True)
    for candidate in unique_names(name):
        path = folder / candidate
        if Path(str(path) + ".error.txt").exists():
            continue  # keep an old reason file with its scan's name
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise AssertionError("unreachable")  # pragma: no cover


def move_over(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` (our own placeholder). Across filesystems: copy to a
    temporary name beside ``dst``, fsync, rename, then delete ``src``."""
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    part = dst.with_name(dst.name + ".faxflow-part")
    shutil.copy2(src, part)
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(part, dst)
    os.unlink(src)


def write_atomic(path: Path, text: str) -> None:
    """UTF-8 with BOM (Notepad on older Windows shows Japanese correctly), via rename."""
    tmp = path.with_name(path.name + ".faxflow-tmp")
    with open(tmp, "w", encoding="utf-8-sig", newline="\r\n" if os.name == "nt" else "\n") as fh:
        fh.write(text)
    os.replace(tmp, path)


def error_text(name: str, error: FaxflowError, attempts: int, when: str) -> str:
    """The content of ``failed/NAME.error.txt``."""
    return (
        f"faxflow: 「{name}」を処理できませんでした / could not process {name}\n"
        f"日時 / time: {when}\n"
        f"試行回数 / attempts: {attempts}\n"
        f"種類 / code: {error.code}\n"
        "\n"
        f"理由:\n{error.ja}\n\nreason:\n{error.en}\n"
        "\n"
        "原因を直したファイルを受信フォルダ (inbox) に入れ直すと、もう一度処理されます。\n"
        "To try again, put the (fixed) file back into the inbox folder.\n"
    )


def is_locked_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def db_transient(exc: BaseException, db_path: Path | None = None) -> TransientError:
    where = f" {db_path}" if db_path else ""
    return TransientError(f"database{where} is locked by another process ({exc})",
                          f"データベース{where}が他の処理で使用中です（ロック中）", )


# ------------------------------------------------------------------------------ queue --

class FileQueue:
    """The ``files``/``runs`` tables of the workspace database and the file moves.

    One per process (it holds a SQLite connection). Open with :meth:`open`.
    """

    def __init__(self, settings: Settings, conn: sqlite3.Connection):
        self.settings = settings
        self.conn = conn
        self._store = None

    @classmethod
    def open(cls, settings: Settings) -> "FileQueue":
        db_path = Path(settings.db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        # The store owns the schema version (its meta table must come first); open it
        # once so a new database is created and migrated before we add our tables.
        try:
            from faxflow.export.store import Store
        except ImportError:  # pragma: no cover - before the store exists
            Store = None
        if Store is not None:
            Store.open(db_path).close()
        try:
            conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            for attempt in range(5):
                try:
                    conn.executescript(SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if not is_locked_error(exc) or attempt == 4:
                        raise
                    time.sleep(0.2 * (attempt + 1))
        except sqlite3.DatabaseError as exc:
            if is_locked_error(exc):
                raise db_transient(exc, db_path) from exc
            raise ConfigError(f"cannot open database {db_path}: {exc}",
                              f"データベース {db_path} を開けません: {exc}") from exc
        return cls(settings, conn)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self.conn.close()

    def __enter__(self) -> "FileQueue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- database helpers ------------------------------------------------------------------
    def _write(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        """One statement in its own transaction; 'database is locked' retried, then TransientError."""
        for attempt in range(6):
            try:
                return self.conn.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if not is_locked_error(exc):
                    raise
                if attempt == 5:
                    raise db_transient(exc, self.settings.db_path) from exc
                time.sleep(0.1 * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _update(self, file_id: int, **cols: Any) -> None:
        cols["updated_ts"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in cols)
        self._write(f"UPDATE files SET {sets} WHERE id = ?", [*cols.values(), file_id])

    def row(self, file_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM files WHERE id = ?", [file_id]).fetchone()

    def rel(self, path: Path) -> str:
        """A path relative to the workspace when it is inside it ('archive/2026-11-23/x.pdf')."""
        try:
            return Path(path).resolve().relative_to(Path(self.settings.home).resolve()).as_posix()
        except ValueError:
            return str(path)

    def abs(self, stored: str | None) -> Path | None:
        if not stored:
            return None
        p = Path(stored)
        return p if p.is_absolute() else Path(self.settings.home) / p

    @property
    def store(self):
        if self._store is None:
            from faxflow.export.store import Store

            self._store = Store.open(self.settings.db_path)
        return self._store

    # -- claiming --------------------------------------------------------------------------
    def claim(self, path: Path, *, run_id: int | None = None) -> Claim | None:
        """Take ``path`` out of the inbox. None if another process took it first.

        ``TransientError`` when the file is locked (a copier on Windows still holds
        it); ``ConfigError`` when processing/ is on another filesystem than the inbox.
        """
        path = Path(path)
        token = new_token()
        folder = Path(self.settings.processing) / token
        folder.mkdir(parents=True)
        dst = folder / path.name
        try:
            os.rename(path, dst)
        except FileNotFoundError:
            folder.rmdir()
            return None
        except PermissionError as exc:
            folder.rmdir()
            raise TransientError(f"{path.name}: the file is still in use by another program ({exc.strerror})",
                                 f"「{path.name}」は他のプログラムが使用中です（書き込み中の可能性）",
                                 file=path.name) from exc
        except OSError as exc:
            folder.rmdir()
            if exc.errno == errno.EXDEV:
                raise ConfigError(
                    f"the processing folder {self.settings.processing} must be on the same drive or share "
                    f"as the inbox {self.settings.inbox} (set [paths] processing in faxflow.toml)",
                    f"処理中フォルダ {self.settings.processing} は受信フォルダ {self.settings.inbox} と同じ"
                    "ドライブ（共有フォルダ）に置いてください（faxflow.toml の [paths] processing）",
                ) from exc
            raise TransientError(f"{path.name}: cannot move the file ({exc.strerror or exc})",
                                 f"「{path.name}」を移動できません（{exc.strerror or exc}）", file=path.name) from exc
        try:
            st = dst.stat()
            try:
                sha = sha256_of(dst)
            except OSError:
                sha = None
            now = time.time()
            cur = self._write(
                "INSERT INTO files (token, original_name, inbox_path, state, attempts, size, mtime_ns, sha256,"
                " pid, host, run_id, claimed_at, updated_ts) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?, ?)",
                [token, path.name, str(path), st.st_size, st.st_mtime_ns, sha, os.getpid(), HOST, run_id,
                 now_iso(), now])
        except BaseException:
            self._put_back(dst, path)
            raise
        return Claim(id=int(cur.lastrowid), token=token, path=dst, original_name=path.name, inbox_path=path,
                     size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha)

    def _put_back(self, src: Path, inbox_path: Path) -> bool:
        """Return a claimed file to the inbox (never over a newer file of the same name)."""
        try:
            if inbox_path.exists():
                return False
            os.rename(src, inbox_path)
            try:
                src.parent.rmdir()
            except OSError:
                pass
            return True
        except OSError:
            return False

    def start(self, claim: Claim) -> int | None:
        """Mark the claim as being read by this process; return the attempt number, or
        None if the claim is no longer ours (taken over by a recovery)."""
        cur = self._write(
            "UPDATE files SET state = 'processing', attempts = attempts + 1, pid = ?, host = ?, started_at = ?,"
            " updated_ts = ? WHERE id = ? AND token = ? AND state IN ('queued', 'processing')",
            [os.getpid(), HOST, now_iso(), time.time(), claim.id, claim.token])
        if cur.rowcount != 1:
            return None
        row = self.row(claim.id)
        return int(row["attempts"]) if row else None

    def finished(self, claim: Claim) -> FileOutcome | None:
        """What became of a claim that was finished under its own token already: a worker
        archived (or set aside) the file and then died with the pool (another worker's
        crash) before its result came back, so the dispatcher asks again. None when the
        claim was not finished (taken over, put back, or never started)."""
        row = self.row(claim.id)
        if row is None or row["token"] != claim.token or row["state"] not in ("done", "failed", "duplicate"):
            return None
        return FileOutcome(name=claim.original_name, state=row["state"], status=row["outcome"] or row["state"],
                           file_id=claim.id, sha256=row["sha256"], dest=row["dest"], pages=row["pages"] or 0,
                           fields=row["fields"] or 0, flagged=row["flagged"] or 0,
                           duration_s=row["duration_s"] or 0.0, attempts=row["attempts"] or 0,
                           error_code=row["error_code"], error_en=row["error_en"], error_ja=row["error_ja"])

    def heartbeat(self, claim: Claim) -> bool:
        """'Still reading it' (a long file must not look abandoned after ``stale_after``)."""
        cur = self._write("UPDATE files SET updated_ts = ? WHERE id = ? AND token = ? AND state = 'processing'",
                          [time.time(), claim.id, claim.token])
        return cur.rowcount == 1

    def still_ours(self, claim: Claim) -> bool:
        row = self.row(claim.id)
        return row is not None and row["token"] == claim.token and row["state"] in ACTIVE

    def reserve_archive(self, claim: Claim) -> Path:
        """The archive path this file will get, reserved now (reused across attempts so a
        document stored by an interrupted attempt keeps pointing at the right file)."""
        row = self.row(claim.id)
        old = self.abs(row["dest"]) if row is not None else None
        archive = Path(self.settings.archive)
        if old is not None and old.is_file() and old.stat().st_size == 0 and _inside(old, archive):
            return old
        dest = reserve_unique(archive / dt.date.today().isoformat(), claim.original_name)
        self._update(claim.id, dest=self.rel(dest))
        return dest

    def release(self, claim: Claim, error: FaxflowError | None = None) -> FileOutcome:
        """Not the file's fault (engine missing, database unusable): put it back into the
        inbox and forget the claim, as if it had never been taken."""
        row = self.row(claim.id)
        placeholder = self.abs(row["dest"]) if row is not None else None
        back = self._put_back(claim.path, claim.inbox_path)
        if back:
            self._write("DELETE FROM files WHERE id = ?", [claim.id])
            if placeholder is not None and placeholder.is_file() and placeholder.stat().st_size == 0:
                _unlink(placeholder)
        else:  # a new file with that name arrived meanwhile: leave it queued for the next run
            self._update(claim.id, state="queued", pid=None,
                         error_code=error.code if error else None,
                         error_en=error.en if error else None, error_ja=error.ja if error else None)
        return FileOutcome(name=claim.original_name, state="released", status="released", file_id=claim.id,
                           sha256=claim.sha256, attempts=claim.attempts,
                           error_code=error.code if error else None, error_en=error.en if error else None,
                           error_ja=error.ja if error else None, fatal=error is not None,
                           dest=self.rel(claim.inbox_path) if back else self.rel(claim.path))

    # -- the end of a file's way -----------------------------------------------------------
    def archive(self, claim: Claim, dest: Path, *, state: str, outcome: str, attempts: int,
                duration_s: float, pages: int = 0, fields: int = 0, flagged: int = 0,
                document_id: int | None = None, sha256: str | None = None) -> str:
        """Move the claimed file onto its reserved archive path; final state in the row."""
        self._update(claim.id, outcome=outcome)  # recovery reads it if we die right after the move
        move_over(claim.path, dest)
        rel = self.rel(dest)
        self._update(claim.id, state=state, outcome=outcome, attempts=attempts, finished_at=now_iso(),
                     duration_s=duration_s, pages=pages, fields=fields, flagged=flagged, dest=rel,
                     document_id=document_id, sha256=sha256 or claim.sha256,
                     error_code=None, error_en=None, error_ja=None)
        _rmdir(claim.path.parent)
        return rel

    def fail(self, claim: Claim, error: FaxflowError, *, attempts: int, duration_s: float = 0.0,
             sha256: str | None = None) -> str:
        """failed/NAME + failed/NAME.error.txt + a failed document row + the files row."""
        row = self.row(claim.id)
        placeholder = self.abs(row["dest"]) if row is not None else None
        dest = reserve_unique(Path(self.settings.failed), claim.original_name)
        sha = sha256 or claim.sha256
        # Say where the file goes before moving it (recovery reads this after a crash).
        self._update(claim.id, dest=self.rel(dest), outcome="failed")
        if placeholder is not None and placeholder != dest and placeholder.is_file() \
                and placeholder.stat().st_size == 0 and _inside(placeholder, Path(self.settings.archive)):
            _unlink(placeholder)
        try:
            self.store.record_failure(dest, sha, error)
        except Exception:  # the file and its reason file matter more than this row
            from faxflow.ingest.logs import get_logger

            get_logger().exception("%s: could not record the failure in the database", claim.original_name)
        move_over(claim.path, dest)
        write_atomic(Path(str(dest) + ".error.txt"), error_text(claim.original_name, error, attempts, now_iso()))
        rel = self.rel(dest)
        self._update(claim.id, state="failed", outcome="failed", attempts=attempts, finished_at=now_iso(),
                     duration_s=duration_s, dest=rel, sha256=sha, error_code=error.code,
                     error_en=error.en, error_ja=error.ja)
        _rmdir(claim.path.parent)
        return rel

    def done_elsewhere(self, sha256: str | None, file_id: int) -> bool:
        """Another claim of the same content already ended 'done'."""
        if not sha256:
            return False
        return self.conn.execute("SELECT 1 FROM files WHERE sha256 = ? AND state = 'done' AND id != ?",
                                 [sha256, file_id]).fetchone() is not None

    def stored_document(self, sha256: str) -> sqlite3.Row | None:
        try:
            return self.conn.execute("SELECT id, status, page_count FROM documents WHERE sha256 = ?",
                                     [sha256]).fetchone()
        except sqlite3.OperationalError:
            return None

    # -- recovery ----------------------------------------------------------------------------
    def recover(self, *, now: float | None = None) -> tuple[list[Claim], list[FileOutcome]]:
        """Take over claims whose owner is gone (or older than ``stale_after``).

        Returns the claims to process again (this process now owns them) and the
        outcomes of files that already used up their attempts (moved to failed/).
        """
        from faxflow.ingest.logs import get_logger

        log = get_logger()
        now = time.time() if now is None else now
        claims: list[Claim] = []
        failed: list[FileOutcome] = []
        processing = Path(self.settings.processing)
        seen_tokens: set[str] = set()
        try:
            folders = sorted(p for p in processing.iterdir() if p.is_dir())
        except FileNotFoundError:
            folders = []
        for folder in folders:
            token = folder.name
            seen_tokens.add(token)
            parsed = parse_token(token)
            if parsed is None:
                continue  # not ours
            row = self.conn.execute("SELECT * FROM files WHERE token = ?", [token]).fetchone()
            if row is not None and row["state"] not in ACTIVE:
                _rmdir(folder)  # finished; only the empty folder was left
                continue
            if row is not None:
                pid, host, since = row["pid"], row["host"], float(row["updated_ts"])
            else:
                pid, since = parsed
                host = HOST
            if not self._abandoned(pid, host, since, now):
                continue
            try:
                outcome_or_claim = self._take_over(folder, row)
            except Exception:  # one odd folder must not stop recovery of the others
                log.exception("could not recover %s", folder)
                continue
            if isinstance(outcome_or_claim, Claim):
                claims.append(outcome_or_claim)
            elif isinstance(outcome_or_claim, FileOutcome):
                failed.append(outcome_or_claim)
        # Rows still active whose folder is gone (finished but the row update was lost).
        for row in self.conn.execute("SELECT * FROM files WHERE state IN ('queued', 'processing')").fetchall():
            if row["token"] in seen_tokens or (processing / row["token"]).exists():
                continue
            if not self._abandoned(row["pid"], row["host"], float(row["updated_ts"]), now):
                continue
            self._settle_lost(row)
        return claims, failed

    def _abandoned(self, pid: int | None, host: str | None, since: float, now: float) -> bool:
        """No sign of life (claim, start or heartbeat) for ``stale_after``, or the owner
        process is gone, or the claim is older than this machine's last boot."""
        if now - since >= self.settings.stale_after:
            return True
        if host and host != HOST:
            return False  # cannot see another machine's processes: wait for stale_after
        boot = boot_time()
        if boot is not None and since < boot:
            return True  # the machine restarted since: its pid may belong to another program now
        return not pid_alive(pid)

    def _take_over(self, folder: Path, row: sqlite3.Row | None) -> Claim | FileOutcome | None:
        from faxflow.ingest.logs import get_logger

        new = new_token()
        if row is not None:
            # Compare-and-set on the row first: a worker that starts the file at the same
            # moment (start() checks the token) and we cannot both win.
            cur = self._write(
                "UPDATE files SET token = ?, state = 'queued', pid = ?, host = ?, updated_ts = ?"
                " WHERE id = ? AND token = ? AND state IN ('queued', 'processing')"
                " AND pid IS ? AND updated_ts = ?",
                [new, os.getpid(), HOST, time.time(), row["id"], row["token"], row["pid"], row["updated_ts"]])
            if cur.rowcount != 1:
                return None
        target = folder.with_name(new)
        try:
            os.rename(folder, target)
        except FileNotFoundError:
            return None  # another process took it over first
        files = [p for p in target.iterdir() if p.is_file()]
        if not files:
            _rmdir(target)
            if row is not None:
                self._settle_lost(self.row(row["id"]))
            return None
        path = files[0]
        st = path.stat()
        if row is None:
            cur = self._write(
                "INSERT INTO files (token, original_name, inbox_path, state, attempts, size, mtime_ns, sha256,"
                " pid, host, claimed_at, updated_ts) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?)",
                [new, path.name, str(Path(self.settings.inbox) / path.name), st.st_size, st.st_mtime_ns,
                 _try_sha(path), os.getpid(), HOST, now_iso(), time.time()])
            row = self.row(int(cur.lastrowid))
        claim = Claim(id=int(row["id"]), token=new, path=path, original_name=row["original_name"],
                      inbox_path=Path(row["inbox_path"]), size=st.st_size, mtime_ns=st.st_mtime_ns,
                      sha256=row["sha256"] or _try_sha(path), attempts=int(row["attempts"]), recovered=True)
        get_logger().info("recovered %s (left in processing/ after attempt %d)", claim.original_name, claim.attempts)
        if claim.attempts >= self.settings.max_attempts:
            error = interrupted_error(claim.original_name, claim.attempts)
            dest = self.fail(claim, error, attempts=claim.attempts)
            return FileOutcome(name=claim.original_name, state="failed", status="failed", file_id=claim.id,
                               sha256=claim.sha256, dest=dest, attempts=claim.attempts, error_code=error.code,
                               error_en=error.en, error_ja=error.ja)
        return claim

    def _settle_lost(self, row: sqlite3.Row | None) -> None:
        """A claim whose file already left processing/: finish its row from where the file is."""
        if row is None or row["state"] not in ACTIVE:
            return
        dest = self.abs(row["dest"])
        if dest is not None and dest.is_file() and dest.stat().st_size > 0:
            failed = _inside(dest, Path(self.settings.failed))
            state = "failed" if failed else ("duplicate" if row["outcome"] == "duplicate" else "done")
            self._update(row["id"], state=state, finished_at=now_iso())
        else:
            self._update(row["id"], state="failed", finished_at=now_iso(), error_code="lost",
                         error_en="the file left processing/ but was not found in archive/ or failed/",
                         error_ja="処理中フォルダからファイルが無くなりました（archive/ と failed/ を確認してください）")

    # -- runs and status ---------------------------------------------------------------------
    def start_run(self, kind: str) -> int:
        cur = self._write("INSERT INTO runs (kind, pid, host, started_at) VALUES (?, ?, ?, ?)",
                          [kind, os.getpid(), HOST, now_iso()])
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, *, exit_code: int, summary: dict | None = None,
                   report_path: str | None = None, message: str | None = None) -> None:
        self._write("UPDATE runs SET finished_at = ?, exit_code = ?, summary = ?, report_path = ?, message = ?"
                    " WHERE id = ?",
                    [now_iso(), int(exit_code), json.dumps(summary or {}, ensure_ascii=False),
                     report_path, message, run_id])

    def status(self, *, errors: int = 5) -> WorkspaceStatus:
        from faxflow.ingest.stability import candidates

        states = dict.fromkeys(STATES, 0)
        for r in self.conn.execute("SELECT state, count(*) AS n FROM files GROUP BY state"):
            states[r["state"]] = r["n"]
        done = {r["outcome"] or "?": r["n"] for r in self.conn.execute(
            "SELECT outcome, count(*) AS n FROM files WHERE state = 'done' GROUP BY outcome")}
        last_errors = [dict(r) for r in self.conn.execute(
            "SELECT original_name, dest, claimed_at, finished_at, error_code, error_en, error_ja FROM files"
            " WHERE state = 'failed' ORDER BY updated_ts DESC LIMIT ?", [errors])]
        b = self.conn.execute("SELECT * FROM runs WHERE kind = 'batch' ORDER BY id DESC LIMIT 1").fetchone()
        last_batch = None
        if b is not None:
            last_batch = dict(b)
            last_batch["summary"] = json.loads(b["summary"]) if b["summary"] else {}
            last_batch["alive"] = b["finished_at"] is None and b["host"] == HOST and pid_alive(b["pid"])
        watchers = [dict(r) for r in self.conn.execute(
            "SELECT * FROM runs WHERE kind = 'watch' AND finished_at IS NULL ORDER BY id DESC LIMIT 20")
            if r["host"] != HOST or pid_alive(r["pid"])]
        return WorkspaceStatus(home=Path(self.settings.home), db_path=Path(self.settings.db_path),
                               inbox=Path(self.settings.inbox), waiting=len(candidates(Path(self.settings.inbox))),
                               states=states, done_by_status=done, last_errors=last_errors,
                               last_batch=last_batch, watchers=watchers)


def workspace_status(settings: Settings, *, errors: int = 5) -> WorkspaceStatus:
    """What ``faxflow status`` shows."""
    with FileQueue.open(settings) as queue:
        return queue.status(errors=errors)


def interrupted_error(name: str, attempts: int) -> FaxflowError:
    from faxflow.templates.errors import InputError

    err = InputError(
        f"reading this file was interrupted {attempts} time(s) (the program stopped or crashed while "
        "reading it); it is set aside so it cannot stop the others",
        f"このファイルの処理が {attempts} 回中断されました（処理中にプログラムが停止・異常終了）。"
        "他のファイルの処理を止めないよう、ここに取り分けました。",
        file=name,
    )
    err.code = "interrupted"
    return err


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def _rmdir(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _try_sha(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None
