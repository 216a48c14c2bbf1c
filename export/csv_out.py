"""SQLite -> CSV: the municipal hand-off.

* One row per order line (``kind="order"``) or ledger entry (``kind="ledger"``), with the
  English column names of :data:`ORDER_COLUMNS` / :data:`LEDGER_COLUMNS` as header row.
  Corrected values are exported (they are what the derived rows hold).
* UTF-8 with BOM by default (Excel opens it as UTF-8), ``cp932`` on request. A character
  the encoding cannot represent becomes ``〓``; such a row is written with status
  ``review`` and the reason ``unencodable`` (the value in the CSV is not the value in
  the database), and the count is in :class:`ExportResult`.
* Text cells starting with ``= + - @``, TAB or CR get a leading apostrophe so Excel does
  not run them as formulas; numeric columns are plain numbers (``-5`` stays ``-5``).
* CRLF line endings. Atomic: a temp file in the target folder, fsync, ``os.replace``;
  ``out`` is either the old file or the complete new one, also when interrupted.
* ``only_new`` exports rows never exported; ``mark_exported`` stamps ``exported_at`` on
  the written rows in the same transaction that read them, after the file is in place
  (at-least-once: if the stamp fails, the rows are sent again next time, never lost).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from faxflow.export.store import ROW_STATUSES, Store, _now
from faxflow.templates.errors import ConfigError, TransientError
from faxflow.templates.reasons import describe

# (CSV header, database column, cell kind): kind is "text", "number" or "page".
ORDER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("source_file", "source_name", "text"),
    ("page", "page_index", "page"),
    ("order_no", "order_no", "text"),
    ("order_date", "order_date", "text"),
    ("buyer", "buyer", "text"),
    ("part_no", "part_no", "text"),
    ("description", "description", "text"),
    ("quantity", "quantity", "number"),
    ("unit", "unit", "text"),
    ("unit_price", "unit_price", "number"),
    ("amount", "amount", "number"),
    ("due_date", "due_date", "text"),
    ("status", "status", "text"),
    ("review_reason", "reasons", "text"),
)
LEDGER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("source_file", "source_name", "text"),
    ("page", "page_index", "page"),
    ("template", "template", "text"),
    ("date", "entry_date", "text"),
    ("part_no", "part_no", "text"),
    ("description", "description", "text"),
    ("in_qty", "in_qty", "number"),
    ("out_qty", "out_qty", "number"),
    ("balance", "balance", "number"),
    ("staff", "staff", "text"),
    ("status", "status", "text"),
    ("review_reason", "reasons", "text"),
)
KINDS = {"order": ("order_lines", ORDER_COLUMNS), "ledger": ("ledger_entries", LEDGER_COLUMNS)}
ENCODINGS = ("utf-8-sig", "utf-8", "cp932")
REPLACEMENT = "〓"
FORMULA_START = tuple("=+-@\t\r") + tuple("＝＋－＠")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
# Characters whose JIS X 0208 form cp932 knows under another code point.
_CP932_EQUIVALENTS = str.maketrans({"\u2014": "\u2015"})  # EM DASH -> HORIZONTAL BAR


@dataclass(frozen=True)
class ExportResult:
    """``rows`` written; ``skipped``: rows left out by the ``statuses`` filter (e.g. still
    in review); ``replaced_chars`` characters written as 〓 in ``replaced_rows`` rows."""

    path: Path
    rows: int
    skipped: int
    replaced_chars: int = 0
    replaced_rows: int = 0
    encoding: str = "utf-8-sig"


def export_csv(
    db_path: Path,
    out: Path,
    *,
    kind: str = "order",
    encoding: str = "utf-8-sig",
    statuses: tuple[str, ...] | None = None,
    only_new: bool = False,
    mark_exported: bool = False,
) -> ExportResult:
    """Write the order lines (or ledger entries) of the database at ``db_path`` to ``out``.

    ``statuses`` limits the rows (``("ok",)`` for a hand-off of checked rows only; None =
    all, review rows then carry their status and reason). ``only_new`` takes rows not
    exported yet; ``mark_exported`` stamps the written rows. If anything fails, ``out``
    is unchanged and no row is stamped.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown export kind {kind!r} (expected one of {', '.join(KINDS)})",
                          f"出力の種類 {kind!r} は使えません（{', '.join(KINDS)} のいずれか）")
    encoding = _check_encoding(encoding)
    if statuses is not None:
        bad = [s for s in statuses if s not in ROW_STATUSES]
        if bad:
            raise ConfigError(f"unknown status {bad[0]!r} (expected {', '.join(ROW_STATUSES)})",
                              f"状態 {bad[0]!r} は使えません（{', '.join(ROW_STATUSES)} のいずれか）")
    db_path, out = Path(db_path), Path(out)
    if not db_path.is_file():
        raise ConfigError(f"database {db_path} does not exist", f"データベース {db_path} がありません")
    table, columns = KINDS[kind]

    with Store.open(db_path) as store:
        db = store.db
        # mark_exported: hold the write lock from reading to stamping, so a row corrected
        # meanwhile cannot be stamped with content the file does not have.
        ctx = store.transaction() if mark_exported else _read_snapshot(db)
        with ctx:
            where, params = [], []
            if only_new:
                where.append("exported_at IS NULL")
            sql_where = (" WHERE " + " AND ".join(where)) if where else ""
            rows = list(db.query(
                f"SELECT * FROM {table}{sql_where} ORDER BY document_id, page_index, table_name, row_index",
                params))
            selected = [r for r in rows if statuses is None or r["status"] in statuses]
            skipped = len(rows) - len(selected)
            counts = _Counts()
            _atomic_write(out, encoding, lambda fh: _write_rows(fh, selected, columns, encoding, counts))
            if mark_exported and selected:
                now = _now()
                ids = [r["id"] for r in selected]
                for i in range(0, len(ids), 500):
                    chunk = ids[i:i + 500]
                    db.execute(f"UPDATE {table} SET exported_at = ? WHERE id IN ({','.join('?' * len(chunk))})",
                               [now, *chunk])
    return ExportResult(path=out, rows=len(selected), skipped=skipped, replaced_chars=counts.chars,
                        replaced_rows=counts.rows, encoding=encoding)


# ---------------------------------------------------------------------------- cells --

class _Counts:
    def __init__(self) -> None:
        self.chars = 0
        self.rows = 0


def _write_rows(fh: IO[str], rows: Iterable[dict], columns, encoding: str, counts: _Counts) -> None:
    writer = csv.writer(fh, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([c[0] for c in columns])
    for row in rows:
        reasons = list(json.loads(row["reasons"] or "[]"))
        cells: dict[str, str] = {}
        replaced = 0
        for header, column, cell_kind in columns:
            if column == "reasons":
                continue
            value = row[column]
            text = str(value + 1 if cell_kind == "page" else ("" if value is None else value))
            text, n = _encodable(text, encoding)
            replaced += n
            cells[header] = text
        status = row["status"]
        if replaced:
            counts.chars += replaced
            counts.rows += 1
            status = "review"  # what the CSV says is not what the database holds
            reasons.append("unencodable")
        cells["status"] = status
        reason_text, n = _encodable("; ".join(describe(r) for r in reasons), encoding)
        counts.chars += n
        cells["review_reason"] = reason_text
        writer.writerow([_excel_safe(cells[h], kind) for h, _, kind in columns])


def _encodable(text: str, encoding: str) -> tuple[str, int]:
    """``text`` with every character ``encoding`` cannot write replaced by 〓."""
    try:
        text.encode(encoding)
        return text, 0
    except UnicodeEncodeError:
        pass
    if encoding == "cp932":
        text = text.translate(_CP932_EQUIVALENTS)
    out, n = [], 0
    for ch in text:
        try:
            ch.encode(encoding)
            out.append(ch)
        except UnicodeEncodeError:  # also lone surrogates, in any encoding
            out.append(REPLACEMENT)
            n += 1
    return "".join(out), n


def _excel_safe(text: str, cell_kind: str) -> str:
    """Keep Excel from reading a text cell as a formula; numbers stay numbers."""
    if cell_kind in ("number", "page") and _NUMBER.fullmatch(text):
        return text
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def _check_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = encoding
    if name in ("ms932", "windows-31j"):
        name = "cp932"
    if name not in ENCODINGS:
        raise ConfigError(f"export encoding {encoding!r} is not supported (use {', '.join(ENCODINGS)})",
                          f"出力の文字コード {encoding!r} は使えません（{', '.join(ENCODINGS)} のいずれか）")
    return name


# --------------------------------------------------------------------- atomic write --

@contextlib.contextmanager
def _read_snapshot(db):
    """A read transaction: every SELECT sees the same state of the database."""
    db.conn.execute("BEGIN")
    try:
        yield db
    finally:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")


def _atomic_write(out: Path, encoding: str, write) -> None:
    """Write via a temp file in ``out``'s folder: fsync, then os.replace. On any error
    (or Ctrl-C) the temp file is removed and ``out`` is untouched."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = out.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        try:
            os.replace(tmp, out)
        except PermissionError as exc:  # Windows: the old file is open in Excel
            raise TransientError(
                f"cannot replace {out}: {exc} (is it open in Excel?)",
                f"{out} を置き換えられません（Excel などで開いていませんか？）: {exc}",
                file=out.name) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(out.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
