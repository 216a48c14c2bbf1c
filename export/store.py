"""The SQLite store: Record -> rows, one transaction per document, keyed by sha256.

The ``fields`` table is the single source of truth: one row per value read, with its
full provenance (file, page, box, raw OCR text, confidence, engine) and, once a clerk
has looked at it, ``corrected_value``/``corrected_by``/``corrected_at``. The
``order_lines`` and ``ledger_entries`` tables are *derived* from ``fields`` (header
values + one table row) by :meth:`Store._refresh`, which runs in the same transaction
as every write (``save_document``, ``correct_field``). So a re-run and a correction
go through the same code, and a corrected value always wins.

Rules that keep wrong values out of the municipal database:

* a field with ``corrected_value`` set is never touched by a re-run (the new machine
  reading of that field is dropped); a trigger refuses to delete it or clear the
  correction, whoever tries;
* a derived row is ``ok`` only when no field it is built from is still ``review``
  (a corrected field counts as ok); its ``reasons`` are the open reasons;
* a page-level review reason that no value carries (e.g. a cross-field rule that only
  set ``Record.reasons``) becomes a pseudo field ``_page[...]`` on that page, so it
  holds every row of the page in review until a clerk confirms it with
  :meth:`Store.correct_field` like any other field;
* a table row that lacks a cell its table's other rows have (a re-run no longer read it;
  only a corrected cell survived) gets the missing cells as open fields with nothing
  read (:meth:`Store._fill_partial_rows`), so a page in review always has something a
  clerk can check;
* an unknown-form page a clerk marked as handled (:meth:`Store.mark_unknown_handled`)
  no longer holds its document in review;
* a derived row whose content changes after it was exported gets ``exported_at``
  reset, so the incremental hand-off sends it again.

See docs/schema.md for the tables and columns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from faxflow.templates.errors import ConfigError, ExitCode, FaxflowError, TransientError
from faxflow.templates.parse import canonical_money
from faxflow.templates.reasons import code_of
from faxflow.templates.rules import document_status
from faxflow.templates.types import Record, SourceFile, Value

BUSY_TIMEOUT_S = 30.0

DOCUMENT_STATUSES = ("ok", "review", "unknown_form", "failed")
PAGE_STATUSES = ("ok", "review", "unknown_form")
ROW_STATUSES = ("ok", "review")
_SEVERITY = {s: i for i, s in enumerate(DOCUMENT_STATUSES)}

ORDER_HEADER = ("order_no", "order_date", "buyer")
ORDER_COLUMNS = ("part_no", "description", "quantity", "unit", "unit_price", "amount", "due_date")
LEDGER_COLUMNS = ("date", "part_no", "description", "in_qty", "out_qty", "balance", "staff")
# Header values a later page may take from an earlier page of the same kind when its
# own box is blank (continuation sheets).
HEADER_FALLBACK = {"order": ORDER_HEADER, "ledger": ("part_no", "item", "description")}

# Why a clerk marked a page that matched no template as handled (pages.handled_reason).
HANDLED_REASONS = ("not_an_order", "new_form", "resend", "other")

PAGE_CHECK = "_page"  # name prefix of the pseudo field holding page-level reasons
CHECK_TYPE = "check"  # its value_type

# Columns of the derived tables that say what a row *is*; a change of any of them after
# an export resets exported_at (source_name/sha256 are bookkeeping, not content).
_ORDER_CONTENT = ORDER_HEADER + ORDER_COLUMNS + ("status", "reasons")
_LEDGER_CONTENT = ("template", "entry_date", "part_no", "description", "in_qty", "out_qty",
                   "balance", "staff", "status", "reasons")


class StoreError(FaxflowError):
    """The database cannot be written or read (not the file's fault: retried)."""

    code = "store"
    permanent = False
    exit_code = ExitCode.CANNOT_RUN


class CorrectionError(FaxflowError):
    """A clerk's correction was refused (unknown field, value of the wrong form)."""

    code = "correction"


# --------------------------------------------------------------------------- schema --

def _schema_v1(db: Database) -> None:
    statements = [
        """CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            sha256 TEXT UNIQUE,
            source_name TEXT NOT NULL,
            source_path TEXT,
            archived_path TEXT,
            kind TEXT,
            size INTEGER,
            page_count INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('ok', 'review', 'unknown_form', 'failed')),
            forced_status TEXT CHECK (forced_status IN ('ok', 'review', 'unknown_form', 'failed')),
            reasons TEXT NOT NULL DEFAULT '[]',
            templates TEXT NOT NULL DEFAULT '[]',
            notes TEXT NOT NULL DEFAULT '[]',
            received_at TEXT NOT NULL,
            processed_at TEXT NOT NULL,
            duration_s REAL,
            error_code TEXT,
            error_ja TEXT,
            error_en TEXT
        )""",
        "CREATE INDEX documents_status ON documents(status)",
        """CREATE TABLE pages (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id),
            page_index INTEGER NOT NULL,
            template TEXT,
            kind TEXT,
            status TEXT NOT NULL CHECK (status IN ('ok', 'review', 'unknown_form')),
            reasons TEXT NOT NULL DEFAULT '[]',
            read_status TEXT NOT NULL,
            read_reasons TEXT NOT NULL DEFAULT '[]',
            align_score REAL,
            notes TEXT NOT NULL DEFAULT '[]',
            image_path TEXT,
            UNIQUE (document_id, page_index)
        )""",
        """CREATE TABLE fields (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id),
            page_index INTEGER NOT NULL,
            template TEXT,
            name TEXT NOT NULL,
            table_name TEXT,
            row_index INTEGER,
            column_name TEXT,
            box TEXT,
            raw_text TEXT NOT NULL DEFAULT '',
            value TEXT NOT NULL DEFAULT '',
            value_type TEXT NOT NULL,
            confidence REAL,
            engine TEXT,
            status TEXT NOT NULL CHECK (status IN ('ok', 'review')),
            reasons TEXT NOT NULL DEFAULT '[]',
            corrected_value TEXT,
            corrected_by TEXT,
            corrected_at TEXT,
            CHECK ((corrected_value IS NULL) = (corrected_by IS NULL))
        )""",
        "CREATE INDEX fields_page ON fields(document_id, page_index)",
        "CREATE UNIQUE INDEX fields_key ON fields(document_id, page_index, name)",
        # A clerk's correction is never lost, whoever writes to the database.
        """CREATE TRIGGER fields_keep_correction_update BEFORE UPDATE ON fields
            WHEN OLD.corrected_value IS NOT NULL AND NEW.corrected_value IS NULL
            BEGIN SELECT RAISE(ABORT, 'a corrected field cannot lose its correction'); END""",
        """CREATE TRIGGER fields_keep_correction_delete BEFORE DELETE ON fields
            WHEN OLD.corrected_value IS NOT NULL
            BEGIN SELECT RAISE(ABORT, 'a corrected field cannot be deleted'); END""",
        """CREATE TABLE corrections (
            id INTEGER PRIMARY KEY,
            field_id INTEGER NOT NULL REFERENCES fields(id),
            document_id INTEGER NOT NULL REFERENCES documents(id),
            previous_value TEXT NOT NULL,
            new_value TEXT NOT NULL,
            corrected_by TEXT NOT NULL,
            corrected_at TEXT NOT NULL
        )""",
        "CREATE INDEX corrections_field ON corrections(field_id)",
        """CREATE TABLE order_lines (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id),
            page_index INTEGER NOT NULL,
            table_name TEXT NOT NULL DEFAULT '',
            row_index INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            source_name TEXT NOT NULL,
            order_no TEXT NOT NULL DEFAULT '',
            order_date TEXT NOT NULL DEFAULT '',
            buyer TEXT NOT NULL DEFAULT '',
            part_no TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            quantity TEXT NOT NULL DEFAULT '',
            unit TEXT NOT NULL DEFAULT '',
            unit_price TEXT NOT NULL DEFAULT '',
            amount TEXT NOT NULL DEFAULT '',
            due_date TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('ok', 'review')),
            reasons TEXT NOT NULL DEFAULT '[]',
            exported_at TEXT,
            UNIQUE (document_id, page_index, table_name, row_index)
        )""",
        "CREATE INDEX order_lines_export ON order_lines(exported_at, status)",
        """CREATE TABLE ledger_entries (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id),
            page_index INTEGER NOT NULL,
            table_name TEXT NOT NULL DEFAULT '',
            row_index INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            source_name TEXT NOT NULL,
            template TEXT,
            entry_date TEXT NOT NULL DEFAULT '',
            part_no TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            in_qty TEXT NOT NULL DEFAULT '',
            out_qty TEXT NOT NULL DEFAULT '',
            balance TEXT NOT NULL DEFAULT '',
            staff TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('ok', 'review')),
            reasons TEXT NOT NULL DEFAULT '[]',
            exported_at TEXT,
            UNIQUE (document_id, page_index, table_name, row_index)
        )""",
        "CREATE INDEX ledger_entries_export ON ledger_entries(exported_at, status)",
    ]
    for sql in statements:
        db.execute(sql)


def _schema_v2(db: Database) -> None:
    """A clerk can mark an unknown-form page as handled (who, when, why), and every
    document is derived again once (a partial row gets its missing cells as fields to
    check; see :meth:`Store._fill_partial_rows`)."""
    for column in ("handled_reason", "handled_note", "handled_by", "handled_at"):
        db.execute(f"ALTER TABLE pages ADD COLUMN {column} TEXT")
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rederive', '1')")


# MIGRATIONS[i] takes a database from schema version i to i + 1. Append, never edit.
MIGRATIONS = (_schema_v1, _schema_v2)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    """The schema version recorded in ``meta`` (0 for an empty database)."""
    names = db.table_names()
    if "meta" not in names:
        if [n for n in names if not n.startswith("sqlite_")]:
            raise ConfigError(
                f"{_db_name(db)} is not a faxflow database (it has tables but no meta table)",
                f"{_db_name(db)} は faxflow のデータベースではありません（meta テーブルがない）",
            )
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise ConfigError(f"{_db_name(db)}: meta table has no schema_version",
                          f"{_db_name(db)}: meta テーブルに schema_version がありません")
    try:
        return int(row[0])
    except ValueError as exc:
        raise ConfigError(f"{_db_name(db)}: bad schema_version {row[0]!r}",
                          f"{_db_name(db)}: schema_version の値が不正です ({row[0]!r})") from exc


def migrate(db: Database) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one step per transaction.

    Refuses (``ConfigError``) a database written by a newer faxflow. Safe when several
    processes open the same new database at once: each step re-reads the version
    under the write lock.
    """
    while True:
        _check_not_newer(db, schema_version(db))
        if schema_version(db) >= SCHEMA_VERSION:
            return SCHEMA_VERSION
        with _immediate(db):
            current = schema_version(db)
            _check_not_newer(db, current)
            if current < SCHEMA_VERSION:
                if current == 0:
                    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                MIGRATIONS[current](db)
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                           [str(current + 1)])


def _check_not_newer(db: Database, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{_db_name(db)} has schema version {version}, this faxflow knows only up to "
            f"{SCHEMA_VERSION}: upgrade faxflow (the database is left untouched)",
            f"{_db_name(db)} のスキーマ版 {version} はこの faxflow（{SCHEMA_VERSION} まで対応）より新しい"
            "ため開けません。faxflow を更新してください（データベースは変更していません）",
        )


def _db_name(db: Database) -> str:
    row = db.execute("PRAGMA database_list").fetchone()
    return (row[2] if row and row[2] else "database")


@contextlib.contextmanager
def _immediate(db: Database) -> Iterator[Database]:
    """One write transaction: ``BEGIN IMMEDIATE`` (take the write lock up front, so a
    busy database waits for the busy timeout instead of failing half-way), COMMIT, or
    ROLLBACK on any exception, KeyboardInterrupt included."""
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise _db_error(exc, db) from exc
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    try:
        db.conn.execute("COMMIT")
    except BaseException as exc:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            raise _db_error(exc, db) from exc
        raise


def _db_error(exc: sqlite3.Error, db: Database) -> FaxflowError:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return TransientError(
            f"database {_db_name(db)} is locked by another process ({msg})",
            f"データベース {_db_name(db)} が他の処理で使用中です ({msg})",
        )
    return StoreError(f"database {_db_name(db)}: {msg}", f"データベース {_db_name(db)} のエラー: {msg}")


# ---------------------------------------------------------------------------- store --

class Store:
    """The faxflow database. Open with :meth:`Store.open`; one per process/thread."""

    def __init__(self, db: Database, path: Path | None = None):
        self.db = db
        self.path = path

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str) -> Store:
        """Open (creating and migrating if needed) the database at ``path``.

        WAL journal, foreign keys on, busy timeout 30 s. ``ConfigError`` when the file is
        not a SQLite database or comes from a newer faxflow.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            db = Database(conn, execute_plugins=False)
            migrate(db)
            db.enable_wal()
            cls(db, path)._rederive_if_asked()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                raise TransientError(f"database {path} is locked ({exc})",
                                     f"データベース {path} が使用中です ({exc})") from exc
            raise ConfigError(f"cannot open database {path}: {exc}",
                              f"データベース {path} を開けません: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT / ROLLBACK)."""
        with _immediate(self.db) as db:
            yield db

    # -- queries --------------------------------------------------------------------------
    def has_document(self, sha256: str, *, include_failed: bool = False) -> bool:
        """True when a file with this content was stored. A file that only *failed* so
        far counts as new (dropping it again retries it) unless ``include_failed``."""
        sql = "SELECT 1 FROM documents WHERE sha256 = ?"
        if not include_failed:
            sql += " AND status != 'failed'"
        return self.db.execute(sql, [sha256]).fetchone() is not None

    def document_id(self, sha256: str) -> int | None:
        row = self.db.execute("SELECT id FROM documents WHERE sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

    def stats(self) -> dict[str, dict[str, int]]:
        """Counts per status: ``{"documents": {"ok": n, ...}, "pages": ..., "order_lines": ...,
        "ledger_entries": ..., "fields": {"ok", "review" (open), "corrected"},
        "not_exported": {"order_lines": n, "ledger_entries": n}}``."""
        out: dict[str, dict[str, int]] = {}
        for table, statuses in (("documents", DOCUMENT_STATUSES), ("pages", PAGE_STATUSES),
                                ("order_lines", ROW_STATUSES), ("ledger_entries", ROW_STATUSES)):
            counts = dict.fromkeys(statuses, 0)
            for status, n in self.db.execute(f"SELECT status, count(*) FROM {table} GROUP BY status"):
                counts[status] = n
            out[table] = counts
        fields = {"ok": 0, "review": 0, "corrected": 0}
        for state, n in self.db.execute(
            "SELECT CASE WHEN corrected_value IS NOT NULL THEN 'corrected' ELSE status END AS s,"
            " count(*) FROM fields GROUP BY s"
        ):
            fields[state] = n
        out["fields"] = fields
        out["not_exported"] = {
            t: self.db.execute(f"SELECT count(*) FROM {t} WHERE exported_at IS NULL").fetchone()[0]
            for t in ("order_lines", "ledger_entries")
        }
        return out

    # -- writing one document ---------------------------------------------------------------
    def save_document(
        self,
        src: SourceFile,
        records: list[Record],
        *,
        status: str | None = None,
        archived_path: str | Path | None = None,
        duration_s: float | None = None,
        notes: Sequence[str] = (),
        page_images: Mapping[int, str | Path] | None = None,
        received_at: str | dt.datetime | None = None,
    ) -> int:
        """Store everything read from one file in ONE transaction; return the document id.

        Idempotent by ``src.sha256``: saving the same content again updates the document
        in place (same id), replaces the machine-read values, and keeps every field a
        clerk corrected exactly as it is. ``status`` (e.g. the pipeline's own verdict)
        can only make the document stricter than what its pages say, never ``ok``-er.
        ``page_images`` maps page_index -> image path for the review page.
        """
        if status is not None and status not in DOCUMENT_STATUSES:
            raise ValueError(f"status must be one of {DOCUMENT_STATUSES}, not {status!r}")
        for r in records:
            if r.sha256 != src.sha256:
                raise ValueError(f"{src.name}: record of page {r.page_index} belongs to another file "
                                 f"({r.sha256[:12]} != {src.sha256[:12]})")
        # Build every row first (serialisation errors surface before anything is written).
        pages = [_page_row(r, page_images) for r in records]
        fields = _field_rows(src, records)
        derived = document_status(records)
        final = _worst(derived, status) if status else derived
        forced = status if status and _SEVERITY[status] > _SEVERITY[derived] else None
        now = _now()
        doc = {
            "sha256": src.sha256,
            "source_name": _safe_text(src.name),
            "source_path": _safe_text(str(src.path)),
            "archived_path": _safe_text(str(archived_path)) if archived_path is not None else None,
            "kind": src.kind,
            "size": src.size,
            "page_count": len(records),
            "status": final,
            "forced_status": forced,
            "reasons": _json(_unique(c for r in records for c in r.reasons)),
            "templates": _json(_unique(r.template_name for r in records if r.template_name)),
            "notes": _json(list(notes)),
            "processed_at": now,
            "duration_s": None if duration_s is None else float(duration_s),
            "error_code": None,
            "error_ja": None,
            "error_en": None,
        }
        try:
            with _immediate(self.db):
                row = self.db.execute("SELECT id FROM documents WHERE sha256 = ?", [src.sha256]).fetchone()
                if row is None:
                    doc["received_at"] = _timestamp(received_at) if received_at else now
                    doc_id = self.db.table("documents").insert(doc).last_pk
                else:
                    doc_id = row[0]
                    if received_at:
                        doc["received_at"] = _timestamp(received_at)
                    self.db.table("documents").update(doc_id, doc)
                self._write_pages(doc_id, pages)
                self._write_fields(doc_id, fields)
                self._fill_partial_rows(doc_id)
                self._refresh(doc_id)
        except sqlite3.Error as exc:
            raise _db_error(exc, self.db) from exc
        return int(doc_id)

    def _write_pages(self, doc_id: int, pages: list[dict[str, Any]]) -> None:
        existing = {r["page_index"]: r for r in self.db.query(
            "SELECT id, page_index, image_path FROM pages WHERE document_id = ?", [doc_id])}
        table = self.db.table("pages")
        for page in pages:
            old = existing.pop(page["page_index"], None)
            if old is None:
                table.insert({**page, "document_id": doc_id, "status": page["read_status"]})
            else:
                if page["image_path"] is None:
                    page = {**page, "image_path": old["image_path"]}
                table.update(old["id"], page)
        for old in existing.values():  # pages the new reading does not have
            corrected = self.db.execute(
                "SELECT 1 FROM fields WHERE document_id = ? AND page_index = ? AND corrected_value IS NOT NULL",
                [doc_id, old["page_index"]]).fetchone()
            if corrected:
                continue  # kept with its corrected fields
            self.db.execute("DELETE FROM fields WHERE document_id = ? AND page_index = ?",
                            [doc_id, old["page_index"]])
            self.db.execute("DELETE FROM pages WHERE id = ?", [old["id"]])

    def _write_fields(self, doc_id: int, fields: list[dict[str, Any]]) -> None:
        existing = {(r["page_index"], r["name"]): r for r in self.db.query(
            "SELECT id, page_index, name, corrected_value FROM fields WHERE document_id = ?", [doc_id])}
        new_rows, updates = [], []
        for f in fields:
            old = existing.pop((f["page_index"], f["name"]), None)
            if old is None:
                new_rows.append({**f, "document_id": doc_id})
            elif old["corrected_value"] is None:
                updates.append((f, old["id"]))  # same id: the review page's links hold
            # else: corrected by a clerk -> left exactly as it is
        if updates:
            columns = [c for c in updates[0][0] if not c.startswith("corrected_")]
            self.db.conn.executemany(
                f"UPDATE fields SET {', '.join(f'{c} = ?' for c in columns)}"
                " WHERE id = ? AND corrected_value IS NULL",
                [[f[c] for c in columns] + [fid] for f, fid in updates])
        if new_rows:
            self.db.table("fields").insert_all(new_rows)
        stale = [r["id"] for r in existing.values() if r["corrected_value"] is None]
        for chunk in _chunks(stale, 500):
            self.db.execute(f"DELETE FROM fields WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    # -- failures -----------------------------------------------------------------------------
    def record_failure(self, src_or_name: SourceFile | str | Path, sha256: str | None,
                       error: BaseException) -> int:
        """Record that a file could not be processed; return the document id.

        A document that already has pages from an earlier successful run keeps them and
        its status (a failed re-run does not make earlier values wrong); only the
        ``error_*`` columns tell about the failure. Without a sha256 (the file could not
        even be hashed) the failure is keyed by file name.
        """
        if isinstance(src_or_name, SourceFile):
            name, path = src_or_name.name, str(src_or_name.path)
            kind, size = src_or_name.kind, src_or_name.size
            sha256 = sha256 or src_or_name.sha256
        else:
            name, path, kind, size = Path(src_or_name).name, str(src_or_name), None, None
        code = getattr(error, "code", type(error).__name__)
        en = str(error) or type(error).__name__
        ja = getattr(error, "ja", None) or en
        now = _now()
        try:
            with _immediate(self.db):
                if sha256:
                    row = self.db.execute("SELECT id FROM documents WHERE sha256 = ?", [sha256]).fetchone()
                else:
                    row = self.db.execute(
                        "SELECT id FROM documents WHERE sha256 IS NULL AND source_name = ? AND status = 'failed'",
                        [_safe_text(name)]).fetchone()
                err = {"error_code": code, "error_ja": ja, "error_en": en, "processed_at": now}
                if row is None:
                    return int(self.db.table("documents").insert({
                        "sha256": sha256, "source_name": _safe_text(name), "source_path": _safe_text(path),
                        "kind": kind, "size": size, "page_count": 0, "status": "failed",
                        "received_at": now, **err}).last_pk)
                has_pages = self.db.execute("SELECT 1 FROM pages WHERE document_id = ?", [row[0]]).fetchone()
                if not has_pages:
                    err["status"] = "failed"
                self.db.table("documents").update(row[0], err)
                return int(row[0])
        except sqlite3.Error as exc:
            raise _db_error(exc, self.db) from exc

    # -- corrections (the review page) ------------------------------------------------------------
    def correct_field(self, field_id: int, value: str, by: str) -> str:
        """A clerk's value for one field; returns the canonical text stored.

        The value is normalised like machine values of the field's type (see
        docs/DEVELOPING.md "Canonical text") and refused with ``CorrectionError`` when it
        does not fit (e.g. letters in a quantity). ``""`` means "the field is empty".
        For a ``_page[...]`` check field any text confirms it. The derived order line /
        ledger entry, the page and the document are re-evaluated in the same transaction.
        Correcting again is allowed; every correction is logged in ``corrections``.
        """
        if not by or not by.strip():
            raise CorrectionError("a correction needs the name of the person making it",
                                  "訂正者の名前が必要です")
        try:
            with _immediate(self.db):
                rows = list(self.db.query(
                    "SELECT f.*, d.source_name FROM fields f JOIN documents d ON d.id = f.document_id"
                    " WHERE f.id = ?", [field_id]))
                if not rows:
                    raise CorrectionError(f"no field with id {field_id} (was the document re-read?)",
                                          f"項目 {field_id} が見つかりません（再読み取りされた可能性があります）")
                f = rows[0]
                canonical = canonical_correction(f["value_type"], value, name=f["name"],
                                                 file=f["source_name"], page=f["page_index"] + 1)
                previous = f["corrected_value"] if f["corrected_value"] is not None else f["value"]
                now = _now()
                self.db.execute(
                    "UPDATE fields SET corrected_value = ?, corrected_by = ?, corrected_at = ? WHERE id = ?",
                    [canonical, by.strip(), now, field_id])
                self.db.table("corrections").insert({
                    "field_id": field_id, "document_id": f["document_id"], "previous_value": previous,
                    "new_value": canonical, "corrected_by": by.strip(), "corrected_at": now})
                self._refresh(f["document_id"])
        except sqlite3.Error as exc:
            raise _db_error(exc, self.db) from exc
        return canonical

    # -- unknown forms (the review page) -------------------------------------------------------------
    def mark_unknown_handled(self, document_id: int, page_index: int, reason: str, by: str,
                             note: str = "") -> None:
        """A clerk has dealt with a page that matched no template: ``reason`` is one of
        :data:`HANDLED_REASONS` (``other`` needs a ``note``). Recorded on the page
        (``handled_reason``, ``handled_note``, ``handled_by``, ``handled_at``); the page
        keeps its status ``unknown_form`` and nothing is read or invented for it. It then
        no longer holds its document in review (a fax with a cover sheet and checked order
        pages becomes ``ok``). ``CorrectionError`` when the page is not an unknown form
        (any more), the reason is not known, or the name is missing."""
        by = (by or "").strip()
        note = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", note or "")).strip()[:200]
        if not by:
            raise CorrectionError("marking a page as handled needs the name of the person doing it",
                                  "確認者の名前が必要です")
        if reason not in HANDLED_REASONS:
            raise CorrectionError(f"unknown reason {reason!r} (one of {', '.join(HANDLED_REASONS)})",
                                  "対応の内容を選んでください")
        if reason == "other" and not note:
            raise CorrectionError("reason 'other' needs a note", "「その他」のときは内容を書いてください")
        try:
            with _immediate(self.db):
                row = self.db.execute("SELECT id, status FROM pages WHERE document_id = ? AND page_index = ?",
                                      [document_id, page_index]).fetchone()
                if row is None:
                    raise CorrectionError(f"no page {page_index + 1} in document {document_id}",
                                          "このページは見つかりません")
                if row[1] != "unknown_form":
                    raise CorrectionError(
                        f"page {page_index + 1} of document {document_id} is not an unknown form ({row[1]})",
                        "このページは用紙不明ではありません（読み直された可能性があります）",
                        page=page_index + 1)
                self.db.execute(
                    "UPDATE pages SET handled_reason = ?, handled_note = ?, handled_by = ?, handled_at = ?"
                    " WHERE id = ?", [reason, note or None, by, _now(), row[0]])
                self._refresh(document_id)
        except sqlite3.Error as exc:
            raise _db_error(exc, self.db) from exc

    # -- derivation: fields -> rows, page/document status ---------------------------------------
    def _rederive_if_asked(self) -> None:
        """Derive every document again once, when a migration asked for it (meta
        ``rederive``): new derivation rules then also hold for documents stored before."""
        if self.db.execute("SELECT 1 FROM meta WHERE key = 'rederive'").fetchone() is None:
            return
        try:
            with _immediate(self.db):
                if self.db.execute("SELECT 1 FROM meta WHERE key = 'rederive'").fetchone() is None:
                    return  # another process did it meanwhile
                for (doc_id,) in self.db.execute(
                        "SELECT DISTINCT document_id FROM pages ORDER BY document_id").fetchall():
                    self._fill_partial_rows(doc_id)
                    self._refresh(doc_id)
                self.db.execute("DELETE FROM meta WHERE key = 'rederive'")
        except sqlite3.Error as exc:
            raise _db_error(exc, self.db) from exc

    def _fill_partial_rows(self, doc_id: int) -> None:
        """Give a table row every cell the other rows of its table have on that page.

        A row lacks a cell only when a re-run no longer read the row and a clerk's
        corrected cell survived it. Without a field for the missing cells the row (and its
        page) would be in review with nothing a clerk could check: each missing cell
        becomes an open field with nothing read (``value`` and ``raw_text`` empty, no
        engine, reason ``cell_not_read``), of the column's type, with the box where the
        column crosses the row when the page shows both. The clerk enters what the paper
        says (or confirms it empty). Fields a later re-run reads replace these in place.
        Must run inside a write transaction."""
        pages = {p["page_index"]: p for p in self.db.query(
            "SELECT page_index, template, read_status FROM pages WHERE document_id = ?", [doc_id])}
        cells = list(self.db.query(
            "SELECT page_index, name, table_name, row_index, column_name, box, value_type FROM fields"
            " WHERE document_id = ? AND row_index IS NOT NULL ORDER BY page_index, id", [doc_id]))
        names = {(r[0], r[1]) for r in self.db.execute(
            "SELECT page_index, name FROM fields WHERE document_id = ?", [doc_id])}
        by_page: dict[int, list[dict]] = {}
        for f in cells:
            by_page.setdefault(f["page_index"], []).append(f)
        new_rows = []
        for pi, page_cells in sorted(by_page.items()):
            page = pages.get(pi)
            if page is None or page["read_status"] == "unknown_form":
                continue  # no table to complete (the kept cells stay as they are)
            columns: dict[str, dict[str, dict]] = {}  # table -> column -> a cell of that column
            rows: dict[tuple[str, int], dict[str, dict]] = {}
            for f in page_cells:
                table, column = f["table_name"] or "", f["column_name"] or f["name"]
                columns.setdefault(table, {}).setdefault(column, f)
                rows.setdefault((table, f["row_index"]), {})[column] = f
            for (table, ri), row in sorted(rows.items()):
                for column, like in columns[table].items():
                    name = f"{table}[{ri}].{column}"
                    if column in row or (pi, name) in names:
                        continue
                    names.add((pi, name))
                    new_rows.append({
                        "document_id": doc_id, "page_index": pi, "template": page["template"], "name": name,
                        "table_name": table, "row_index": ri, "column_name": column,
                        "box": _cell_box(like, row.values()), "raw_text": "", "value": "",
                        "value_type": like["value_type"], "confidence": None, "engine": None,
                        "status": "review", "reasons": _json(["cell_not_read"]),
                        "corrected_value": None, "corrected_by": None, "corrected_at": None,
                    })
        if new_rows:
            self.db.table("fields").insert_all(new_rows)

    def _refresh(self, doc_id: int) -> None:
        """Rebuild order_lines/ledger_entries of one document from its fields, and the
        page and document statuses. Must run inside a write transaction."""
        doc = next(self.db.query("SELECT sha256, source_name, status, forced_status FROM documents"
                                 " WHERE id = ?", [doc_id]))
        pages = list(self.db.query("SELECT * FROM pages WHERE document_id = ? ORDER BY page_index", [doc_id]))
        fields = list(self.db.query("SELECT * FROM fields WHERE document_id = ? ORDER BY page_index, id", [doc_id]))
        for f in fields:
            f["corrected"] = f["corrected_value"] is not None
            f["eff"] = f["corrected_value"] if f["corrected"] else f["value"]
            f["open"] = not f["corrected"] and f["status"] != "ok"
            f["reason_list"] = json.loads(f["reasons"] or "[]")
        header: dict[int, dict[str, dict]] = {}
        by_page: dict[int, list[dict]] = {}
        for f in fields:
            by_page.setdefault(f["page_index"], []).append(f)
        cells: dict[int, dict[tuple[str, int], dict[str, dict]]] = {}
        for f in fields:
            if f["row_index"] is None:
                header.setdefault(f["page_index"], {})[f["name"]] = f
            else:
                key = (f["table_name"] or "", f["row_index"])
                cells.setdefault(f["page_index"], {}).setdefault(key, {})[f["column_name"] or f["name"]] = f

        lines: dict[str, dict[tuple, dict]] = {"order_lines": {}, "ledger_entries": {}}
        page_updates = []
        for page in pages:
            pi, kind = page["page_index"], page["kind"]
            own_header = header.get(pi, {})
            used_header = dict(own_header)
            superseded: set[int] = set()
            for name in HEADER_FALLBACK.get(kind, ()):
                mine = own_header.get(name)
                if not _blank(mine) or not _only_empty_required(mine):
                    continue  # something there, or doubtful (e.g. alignment): no borrowing
                earlier = _earlier_header(pages, header, pi, kind, name)
                if earlier is not None:
                    if mine is not None:
                        superseded.add(mine["id"])  # its empty_required no longer matters
                    used_header[name] = earlier
            header_open = [f for f in used_header.values() if f["open"]]
            page_rows = cells.get(pi, {})
            columns_by_table: dict[str, set[str]] = {}
            for (table, _), row in page_rows.items():
                columns_by_table.setdefault(table, set()).update(row)
            page_reasons: list[str] = []
            page_review = False
            for (table, ri), row in sorted(page_rows.items()):
                row_open = [f for f in row.values() if f["open"]]
                missing = columns_by_table[table] - set(row)
                if not row_open and not missing and all(f["eff"] == "" for f in row.values()):
                    continue  # an empty row
                reasons = _unique(r for f in row_open + header_open for r in f["reason_list"])
                if missing:
                    reasons.append("partial_row")
                status = "review" if row_open or header_open or missing else "ok"
                if status == "review":
                    page_review = True
                    page_reasons.extend(reasons)
                if kind == "order":
                    lines["order_lines"][(pi, table, ri)] = _order_line(doc, used_header, row, status, reasons)
                elif kind == "ledger":
                    lines["ledger_entries"][(pi, table, ri)] = _ledger_entry(
                        doc, page["template"], used_header, row, status, reasons)
            # The page: every open field on it (except blank header boxes filled from an
            # earlier page) keeps it in review.
            for f in by_page.get(pi, ()):
                if f["open"] and f["id"] not in superseded:
                    page_review = True
                    page_reasons.extend(f["reason_list"])
            if page["read_status"] == "unknown_form":
                p_status, p_reasons = "unknown_form", json.loads(page["read_reasons"])
            else:
                p_status, p_reasons = ("review" if page_review else "ok"), _unique(page_reasons)
            page_updates.append((p_status, _json(p_reasons), page["id"]))
            page["status"], page["reason_list"] = p_status, p_reasons

        for p_status, p_reasons, page_id in page_updates:
            self.db.execute("UPDATE pages SET status = ?, reasons = ? WHERE id = ?", [p_status, p_reasons, page_id])
        for table, content in (("order_lines", _ORDER_CONTENT), ("ledger_entries", _LEDGER_CONTENT)):
            self._sync_rows(table, doc_id, lines[table], content)

        # An unknown-form page a clerk marked as handled no longer holds the document.
        active = [p for p in pages if not (p["status"] == "unknown_form" and p["handled_at"])]
        if not pages:
            d_status = "failed"
        elif not active or all(p["status"] == "unknown_form" for p in active):
            d_status = "unknown_form"
        elif all(p["status"] == "ok" for p in active):
            d_status = "ok"
        else:
            d_status = "review"
        if doc["forced_status"]:
            d_status = _worst(d_status, doc["forced_status"])
        d_reasons = _unique(r for p in (active or pages) for r in p["reason_list"])
        self.db.execute("UPDATE documents SET status = ?, reasons = ? WHERE id = ?",
                        [d_status, _json(d_reasons), doc_id])

    def _sync_rows(self, table: str, doc_id: int, new: dict[tuple, dict], content: tuple[str, ...]) -> None:
        existing = {(r["page_index"], r["table_name"], r["row_index"]): r
                    for r in self.db.query(f"SELECT * FROM {table} WHERE document_id = ?", [doc_id])}
        inserts = []
        for key, row in new.items():
            old = existing.pop(key, None)
            full = {**row, "document_id": doc_id, "page_index": key[0], "table_name": key[1], "row_index": key[2]}
            if old is None:
                inserts.append(full)
                continue
            changed = any(old[c] != full[c] for c in content)
            bookkeeping = any(old[c] != full[c] for c in ("sha256", "source_name"))
            if changed:
                full["exported_at"] = None  # send the new content again
                self.db.table(table).update(old["id"], full)
            elif bookkeeping:
                self.db.table(table).update(old["id"], {"sha256": full["sha256"], "source_name": full["source_name"]})
        if inserts:
            self.db.table(table).insert_all(inserts)
        for chunk in _chunks([r["id"] for r in existing.values()], 500):
            self.db.execute(f"DELETE FROM {table} WHERE id IN ({','.join('?' * len(chunk))})", chunk)


# ------------------------------------------------------------------- building rows --

def _page_row(r: Record, page_images: Mapping[int, str | Path] | None) -> dict[str, Any]:
    image = (page_images or {}).get(r.page_index)
    read_status = r.status if r.status in PAGE_STATUSES else "review"
    return {
        "page_index": int(r.page_index),
        "template": r.template_name,
        "kind": r.kind,
        "read_status": read_status,
        "read_reasons": _json(list(r.reasons)),
        "align_score": None if r.align_score is None else float(r.align_score),
        "notes": _json(list(r.notes)),
        "image_path": None if image is None else _safe_text(str(image)),
    }


def _field_rows(src: SourceFile, records: list[Record]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()

    def add(row: dict[str, Any]) -> None:
        key = (row["page_index"], row["name"])
        if key in seen:
            raise ValueError(f"{src.name}: page {key[0] + 1} has two values named {key[1]!r}")
        seen.add(key)
        rows.append(row)

    for r in records:
        values: list[Value] = []
        for name, v in r.header.items():
            add(_field_row(r, v, name=v.name or name, table=None, row=None, column=None))
            values.append(v)
        for i, row in enumerate(r.rows):
            for column, v in row.items():
                table = v.table or ""
                ri = v.row if v.row is not None else i
                col = v.column or column
                add(_field_row(r, v, name=v.name or f"{table}[{ri}].{col}", table=table, row=ri, column=col))
                values.append(v)
        if r.status in ("ok", "unknown_form"):
            continue
        # A page in review for a reason no value carries (or with no value in review):
        # that reason becomes a check field a clerk must confirm, holding the page's rows.
        carried = {code_of(x) for v in values for x in v.reasons}
        untraced = [x for x in r.reasons if code_of(x) not in carried]
        if not untraced and not any(v.status != "ok" for v in values):
            untraced = list(r.reasons)
        if untraced or not any(v.status != "ok" for v in values):
            add({
                "page_index": int(r.page_index), "template": r.template_name,
                "name": f"{PAGE_CHECK}[{','.join(sorted(set(untraced)))}]",
                "table_name": None, "row_index": None, "column_name": None, "box": None,
                "raw_text": "", "value": "", "value_type": CHECK_TYPE, "confidence": None,
                "engine": None, "status": "review", "reasons": _json(_unique(untraced)),
                "corrected_value": None, "corrected_by": None, "corrected_at": None,
            })
    return rows


def _field_row(r: Record, v: Value, *, name: str, table: str | None, row: int | None,
               column: str | None) -> dict[str, Any]:
    if v.page_index != r.page_index:
        raise ValueError(f"value {name!r} of page {r.page_index} says page {v.page_index}")
    return {
        "page_index": int(r.page_index),
        "template": r.template_name,
        "name": name,
        "table_name": table,
        "row_index": None if row is None else int(row),
        "column_name": column,
        "box": _json([int(x) for x in v.box]) if v.box is not None else None,
        "raw_text": v.raw_text or "",
        "value": v.text or "",
        "value_type": v.value_type,
        "confidence": None if v.confidence is None else float(v.confidence),
        "engine": v.engine,
        "status": "ok" if v.status == "ok" else "review",
        "reasons": _json(list(v.reasons)),
        "corrected_value": None,
        "corrected_by": None,
        "corrected_at": None,
    }


def _cell_box(column_cell: Mapping[str, Any], row_cells: Iterable[Mapping[str, Any]]) -> str | None:
    """The box of a missing cell: its column's x range (from a cell of that column) and
    its row's y range (from a cell of that row), or None when either is not known."""
    col = json.loads(column_cell["box"]) if column_cell["box"] else None
    row = next((json.loads(c["box"]) for c in row_cells if c["box"]), None)
    if not col or not row:
        return None
    return _json([int(col[0]), int(row[1]), int(col[2]), int(row[3])])


def _blank(f: dict | None) -> bool:
    """Nothing written in the box (or a clerk said it is empty)."""
    return f is None or (f["eff"] == "" and (f["corrected"] or not (f["raw_text"] or "").strip()))


def _only_empty_required(f: dict | None) -> bool:
    """A blank box whose only complaint is that it is blank."""
    return f is None or f["corrected"] or all(code_of(r) == "empty_required" for r in f["reason_list"])


def _earlier_header(pages: list[dict], header: dict[int, dict[str, dict]], pi: int, kind: str,
                    name: str) -> dict | None:
    """The nearest earlier page of the same kind whose ``name`` box is filled."""
    for p in reversed(pages):
        if p["page_index"] >= pi or p["kind"] != kind:
            continue
        f = header.get(p["page_index"], {}).get(name)
        if not _blank(f):
            return f
    return None


def _order_line(doc: dict, head: dict[str, dict], row: dict[str, dict], status: str,
                reasons: list[str]) -> dict[str, Any]:
    line = {"sha256": doc["sha256"], "source_name": doc["source_name"]}
    for name in ORDER_HEADER:
        line[name] = head[name]["eff"] if name in head else ""
    for name in ORDER_COLUMNS:
        line[name] = row[name]["eff"] if name in row else ""
    line["status"], line["reasons"] = status, _json(reasons)
    return line


def _ledger_entry(doc: dict, template: str | None, head: dict[str, dict], row: dict[str, dict],
                  status: str, reasons: list[str]) -> dict[str, Any]:
    def cell(name: str, *header_names: str) -> str:
        if _blank(row.get(name)):
            for h in header_names:
                if h in head and not _blank(head[h]):
                    return head[h]["eff"]  # a ledger card names its item once, in the header
        return row[name]["eff"] if name in row else ""

    entry = {"sha256": doc["sha256"], "source_name": doc["source_name"], "template": template,
             "entry_date": cell("date"), "part_no": cell("part_no", "part_no"),
             "description": cell("description", "item", "description")}
    for name in ("in_qty", "out_qty", "balance", "staff"):
        entry[name] = cell(name)
    entry["status"], entry["reasons"] = status, _json(reasons)
    return entry


# ----------------------------------------------------------------- corrections --

_CJK = r"\u3000-\u303f\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60"
_CJK_GAP = re.compile(f"(?<=[{_CJK}]) (?=[{_CJK}])")
_DASHES = re.compile("[ー－―‐‑−–—]")
_INT = re.compile(r"-?\d+")
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff]")


def canonical_correction(value_type: str, value: str, *, name: str = "", file: str | None = None,
                         page: int | None = None) -> str:
    """A clerk's input in the canonical text form of ``value_type`` (or CorrectionError)."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", value or "")).strip()
    text = re.sub(r"\s+", " ", text)
    if text == "":
        return ""

    def refuse(en: str, ja: str) -> CorrectionError:
        return CorrectionError(f"{en}: {value!r}", f"{ja}: {value!r}", file=file, page=page, field=name)

    if value_type in ("integer", "quantity"):
        digits = text.replace(",", "").replace(" ", "")
        if not _INT.fullmatch(digits):
            raise refuse("a whole number is expected (digits only, no unit)", "整数（数字のみ、単位なし）を入力してください")
        return str(int(digits))
    if value_type == "money":
        digits = re.sub(r"[¥￥円, ]", "", text)
        try:
            d = Decimal(digits)
        except InvalidOperation as exc:
            raise refuse("an amount in yen is expected", "金額（円）を入力してください") from exc
        if not d.is_finite() or not re.fullmatch(r"-?\d+(\.\d+)?", digits):
            raise refuse("an amount in yen is expected", "金額（円）を入力してください")
        return canonical_money(d + 0)  # + 0 turns -0 into 0
    if value_type == "date":
        m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
        try:
            if not m:
                raise ValueError(text)
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError as exc:
            raise refuse("a date YYYY-MM-DD is expected", "日付を YYYY-MM-DD の形で入力してください") from exc
    if value_type == "part_number":
        return _DASHES.sub("-", text).replace(" ", "").upper()
    return _CJK_GAP.sub("", text)  # text, check, anything else


# --------------------------------------------------------------------------- helpers --

def _worst(a: str, b: str) -> str:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _now() -> str:
    """Local time with its UTC offset, to the second (e.g. 2026-11-20T09:15:02+09:00)."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _timestamp(value: str | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return value.isoformat(timespec="seconds")
    return str(value)


def _safe_text(s: str) -> str:
    """File names from os.fsdecode may hold lone surrogates SQLite cannot store."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")
