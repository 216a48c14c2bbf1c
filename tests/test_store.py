"""export/store.py: one transaction per document, idempotent by sha256, corrections kept."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from faxflow.export.store import SCHEMA_VERSION, CorrectionError, Store, canonical_correction
from faxflow.templates.errors import ConfigError, CorruptFile
from faxflow.templates.types import Record, SourceFile, Value

SHA = "a" * 64


def val(name, text, *, page=0, status="ok", reasons=(), vt="text", raw=None, table=None, row=None,
        column=None, sha=SHA, box=(10, 20, 30, 40), conf=0.95, engine="tesseract"):
    return Value(sha256=sha, page_index=page, name=name, box=box, raw_text=text if raw is None else raw,
                 value=text or None, text=text, value_type=vt, confidence=conf, engine=engine,
                 status=status, reasons=tuple(reasons), table=table, row=row, column=column)


COLUMN_TYPES = {"part_no": "part_number", "quantity": "quantity", "in_qty": "quantity", "out_qty": "quantity",
                "balance": "quantity", "unit_price": "money", "amount": "money", "due_date": "date",
                "date": "date"}


def cell(row, column, text, **kw):
    kw.setdefault("vt", COLUMN_TYPES.get(column, "text"))
    return val(f"items[{row}].{column}", text, table="items", row=row, column=column, **kw)


def order_page(page=0, *, sha=SHA, header=None, rows=None, status=None, reasons=None):
    if header is None:
        header = {"order_no": "PO-240117", "order_date": "2026-11-20", "buyer": "山田製作所"}
    hdr = {k: val(k, v, page=page, sha=sha, vt="date" if k == "order_date" else "text") for k, v in header.items()}
    if rows is None:
        rows = [
            {"part_no": cell(0, "part_no", "AB-1234", page=page, sha=sha),
             "quantity": cell(0, "quantity", "120", page=page, sha=sha, status="review",
                              reasons=("low_confidence",), engine="handwriting", conf=0.41)},
            {"part_no": cell(1, "part_no", "CD-5678", page=page, sha=sha),
             "quantity": cell(1, "quantity", "5", page=page, sha=sha)},
        ]
    values = list(hdr.values()) + [v for r in rows for v in r.values()]
    if status is None:
        status = "review" if any(v.status != "ok" for v in values) else "ok"
    if reasons is None:
        reasons = tuple(dict.fromkeys(x for v in values for x in v.reasons))
    return Record(sha256=sha, page_index=page, template_name="yamada_order", kind="order", header=hdr,
                  rows=rows, status=status, reasons=tuple(reasons), align_score=0.93, notes=("deskew=-1.4",))


def source(sha=SHA, name="s0001.tif"):
    return SourceFile(path=Path("/inbox") / name, sha256=sha, kind="tiff", size=1234)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "faxflow.db")
    yield s
    s.close()


def rows(store, sql, params=()):
    return list(store.db.query(sql, params))


def field_id(store, name, page=0):
    return rows(store, "SELECT id FROM fields WHERE name = ? AND page_index = ?", [name, page])[0]["id"]


def counts(store):
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("documents", "pages", "fields", "order_lines", "ledger_entries", "corrections")}


# ------------------------------------------------------------------------------ schema --

def test_open_creates_schema_wal_foreign_keys_busy_timeout(store, tmp_path):
    assert rows(store, "SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"] == str(SCHEMA_VERSION)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert {"documents", "pages", "fields", "order_lines", "ledger_entries", "corrections"} <= set(
        store.db.table_names())
    store.close()
    Store.open(tmp_path / "faxflow.db").close()  # reopening an up-to-date database is a no-op


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "faxflow.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    with pytest.raises(ConfigError, match="newer|upgrade") as exc:
        Store.open(path)
    assert "faxflow" in exc.value.ja
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION + 1)


def test_foreign_database_and_garbage_file_are_refused(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(ConfigError, match="not a faxflow database"):
        Store.open(other)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError):
        Store.open(garbage)


# ------------------------------------------------------------------------ save_document --

def test_save_document_writes_all_rows_with_provenance(store):
    doc_id = store.save_document(source(), [order_page()], archived_path="/archive/s0001.tif", duration_s=1.5)
    doc = rows(store, "SELECT * FROM documents")[0]
    assert doc["id"] == doc_id and doc["sha256"] == SHA and doc["source_name"] == "s0001.tif"
    assert doc["status"] == "review" and json.loads(doc["reasons"]) == ["low_confidence"]
    assert json.loads(doc["templates"]) == ["yamada_order"] and doc["page_count"] == 1
    assert doc["archived_path"] == "/archive/s0001.tif" and doc["duration_s"] == 1.5 and doc["received_at"]
    page = rows(store, "SELECT * FROM pages")[0]
    assert (page["status"], page["align_score"], json.loads(page["notes"])) == ("review", 0.93, ["deskew=-1.4"])
    q = rows(store, "SELECT * FROM fields WHERE name = 'items[0].quantity'")[0]
    assert json.loads(q["box"]) == [10, 20, 30, 40]
    assert (q["raw_text"], q["value"], q["engine"], q["confidence"], q["status"]) == (
        "120", "120", "handwriting", 0.41, "review")
    assert (q["table_name"], q["row_index"], q["column_name"]) == ("items", 0, "quantity")
    lines = rows(store, "SELECT * FROM order_lines ORDER BY row_index")
    assert [(l["part_no"], l["quantity"], l["status"]) for l in lines] == [
        ("AB-1234", "120", "review"), ("CD-5678", "5", "ok")]
    assert lines[0]["order_no"] == "PO-240117" and lines[0]["buyer"] == "山田製作所"
    assert json.loads(lines[0]["reasons"]) == ["low_confidence"] and lines[0]["sha256"] == SHA
    assert store.has_document(SHA) and not store.has_document("b" * 64)


def test_same_sha256_twice_is_one_document_with_stable_ids(store):
    first = store.save_document(source(), [order_page()])
    ids = {r["name"]: r["id"] for r in rows(store, "SELECT id, name FROM fields")}
    second = store.save_document(source(name="renamed.tif"), [order_page()])
    assert first == second
    assert counts(store)["documents"] == 1 and counts(store)["order_lines"] == 2
    assert {r["name"]: r["id"] for r in rows(store, "SELECT id, name FROM fields")} == ids
    assert rows(store, "SELECT source_name FROM order_lines")[0]["source_name"] == "renamed.tif"


def test_resave_replaces_machine_values_and_drops_vanished_rows(store):
    store.save_document(source(), [order_page()])
    new_rows = [{"part_no": cell(0, "part_no", "AB-1235"), "quantity": cell(0, "quantity", "12")}]
    store.save_document(source(), [order_page(rows=new_rows)])
    lines = rows(store, "SELECT * FROM order_lines")
    assert [(l["part_no"], l["quantity"], l["status"]) for l in lines] == [("AB-1235", "12", "ok")]
    assert counts(store)["fields"] == 5
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "ok"


def test_failure_mid_save_writes_nothing(store, monkeypatch):
    def boom(self, doc_id):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "_refresh", boom)  # runs after documents/pages/fields were written
    with pytest.raises(RuntimeError):
        store.save_document(source(), [order_page()])
    assert set(counts(store).values()) == {0}
    assert not store.has_document(SHA)


def test_unserialisable_value_writes_nothing(store):
    bad = order_page()
    bad.header["buyer"] = val("buyer", "山田", box=(object(), 0, 1, 1))
    with pytest.raises(TypeError):
        store.save_document(source(), [bad])
    assert set(counts(store).values()) == {0}


def test_failed_resave_keeps_previous_state_and_corrections(store, monkeypatch):
    store.save_document(source(), [order_page()])
    store.correct_field(field_id(store, "items[0].quantity"), "121", "tanaka")
    before = {t: rows(store, f"SELECT * FROM {t} ORDER BY id") for t in ("documents", "fields", "order_lines")}

    def boom(self, doc_id):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(Store, "_refresh", boom)
    with pytest.raises(RuntimeError):
        store.save_document(source(), [order_page(rows=[{"part_no": cell(0, "part_no", "ZZ-0000")}])])
    assert {t: rows(store, f"SELECT * FROM {t} ORDER BY id") for t in before} == before


def test_duplicate_value_names_are_refused_before_writing(store):
    rec = order_page()
    rec.rows.append({"part_no": cell(0, "part_no", "DUP-1")})
    with pytest.raises(ValueError, match="two values"):
        store.save_document(source(), [rec])
    assert counts(store)["documents"] == 0


def test_status_argument_only_makes_a_document_stricter(store):
    ok_page = order_page(rows=[{"part_no": cell(0, "part_no", "AB-1")}])
    store.save_document(source(), [ok_page], status="review")
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "review"
    store.save_document(source("b" * 64), [order_page(sha="b" * 64)], status="ok")
    assert rows(store, "SELECT status FROM documents WHERE sha256 = ?", ["b" * 64])[0]["status"] == "review"


def test_no_pages_is_a_failed_document(store):
    store.save_document(source(), [], status="failed")
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "failed"
    assert not store.has_document(SHA) and store.has_document(SHA, include_failed=True)


def test_unknown_form_page(store):
    rec = Record(sha256=SHA, page_index=0, template_name=None, kind=None, status="unknown_form",
                 reasons=("unknown_form",))
    store.save_document(source(), [rec])
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "unknown_form"
    assert rows(store, "SELECT status, reasons FROM pages")[0] == {"status": "unknown_form",
                                                                  "reasons": '["unknown_form"]'}
    assert counts(store)["order_lines"] == 0


# -------------------------------------------------------------------------- corrections --

def test_correct_field_flips_the_row_page_and_document_to_ok(store):
    store.save_document(source(), [order_page()])
    fid = field_id(store, "items[0].quantity")
    assert store.correct_field(fid, "１，２００", "tanaka") == "1200"
    line = rows(store, "SELECT * FROM order_lines WHERE row_index = 0")[0]
    assert (line["quantity"], line["status"], line["reasons"]) == ("1200", "ok", "[]")
    assert rows(store, "SELECT status FROM pages")[0]["status"] == "ok"
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "ok"
    f = rows(store, "SELECT * FROM fields WHERE id = ?", [fid])[0]
    assert (f["value"], f["status"], f["corrected_value"], f["corrected_by"]) == ("120", "review", "1200", "tanaka")
    assert f["corrected_at"]
    log = rows(store, "SELECT * FROM corrections")
    assert [(c["previous_value"], c["new_value"], c["corrected_by"]) for c in log] == [("120", "1200", "tanaka")]


def test_row_stays_in_review_while_any_of_its_fields_is_open(store):
    rows_ = [{"part_no": cell(0, "part_no", "AB-1Z34", status="review", reasons=("pattern",)),
              "quantity": cell(0, "quantity", "7", status="review", reasons=("low_confidence",))}]
    store.save_document(source(), [order_page(rows=rows_)])
    store.correct_field(field_id(store, "items[0].quantity"), "7", "tanaka")  # confirming counts
    line = rows(store, "SELECT * FROM order_lines")[0]
    assert (line["status"], json.loads(line["reasons"])) == ("review", ["pattern"])
    store.correct_field(field_id(store, "items[0].part_no"), "ab－1234", "tanaka")
    line = rows(store, "SELECT * FROM order_lines")[0]
    assert (line["part_no"], line["status"]) == ("AB-1234", "ok")


def test_header_field_in_review_holds_every_row_of_the_page(store):
    header = {"order_no": "PO-1", "order_date": "2026-11-20", "buyer": "山田製作所"}
    rec = order_page(header=header, rows=[{"part_no": cell(0, "part_no", "AB-1")},
                                          {"part_no": cell(1, "part_no", "AB-2")}])
    rec.header["order_no"] = val("order_no", "P0-1", status="review", reasons=("pattern",))
    store.save_document(source(), [rec])
    assert {l["status"] for l in rows(store, "SELECT status FROM order_lines")} == {"review"}
    store.correct_field(field_id(store, "order_no"), "PO-1", "sato")
    assert {(l["order_no"], l["status"]) for l in rows(store, "SELECT * FROM order_lines")} == {("PO-1", "ok")}


def test_corrected_field_survives_a_resave(store):
    store.save_document(source(), [order_page()])
    fid = field_id(store, "items[0].quantity")
    store.correct_field(fid, "125", "tanaka")
    # The re-run reads the same box differently, with high confidence: the clerk still wins.
    rerun = [{"part_no": cell(0, "part_no", "AB-1234"), "quantity": cell(0, "quantity", "720", conf=0.99)},
             {"part_no": cell(1, "part_no", "CD-5678"), "quantity": cell(1, "quantity", "5")}]
    store.save_document(source(), [order_page(rows=rerun)])
    f = rows(store, "SELECT * FROM fields WHERE id = ?", [fid])[0]
    assert (f["corrected_value"], f["corrected_by"], f["value"], f["confidence"]) == ("125", "tanaka", "120", 0.41)
    line = rows(store, "SELECT * FROM order_lines WHERE row_index = 0")[0]
    assert (line["quantity"], line["status"]) == ("125", "ok")


def test_corrected_field_survives_a_resave_that_no_longer_reads_its_row(store):
    store.save_document(source(), [order_page()])
    store.correct_field(field_id(store, "items[0].quantity"), "125", "tanaka")
    store.save_document(source(), [order_page(rows=[{"part_no": cell(1, "part_no", "CD-5678"),
                                                     "quantity": cell(1, "quantity", "5")}])])
    assert rows(store, "SELECT corrected_value FROM fields WHERE name = 'items[0].quantity'") == [
        {"corrected_value": "125"}]
    # Row 0 now has only the corrected cell: never a silent "ok", and never a row in review
    # with nothing to check: its missing cell is an open field with nothing read.
    line = rows(store, "SELECT * FROM order_lines WHERE row_index = 0")[0]
    assert (line["quantity"], line["part_no"], line["status"]) == ("125", "", "review")
    assert "cell_not_read" in json.loads(line["reasons"])
    missing = rows(store, "SELECT * FROM fields WHERE name = 'items[0].part_no'")[0]
    assert (missing["value"], missing["raw_text"], missing["engine"], missing["status"], missing["value_type"],
            json.loads(missing["reasons"])) == ("", "", None, "review", "part_number", ["cell_not_read"])
    assert json.loads(missing["box"]) == [10, 20, 30, 40]  # the column's x, the row's y
    store.correct_field(missing["id"], "AB-1234", "tanaka")
    line = rows(store, "SELECT * FROM order_lines WHERE row_index = 0")[0]
    assert (line["part_no"], line["quantity"], line["status"]) == ("AB-1234", "125", "ok")
    assert rows(store, "SELECT status FROM pages")[0]["status"] == "ok"


def test_database_refuses_to_drop_a_correction(store):
    store.save_document(source(), [order_page()])
    fid = field_id(store, "items[0].quantity")
    store.correct_field(fid, "125", "tanaka")
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("DELETE FROM fields WHERE id = ?", [fid])
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("UPDATE fields SET corrected_value = NULL, corrected_by = NULL WHERE id = ?", [fid])


@pytest.mark.parametrize("value_type, typed, expected", [
    ("quantity", "１２０", "120"),
    ("quantity", "1,200", "1200"),
    ("money", "¥12,000", "12000"),
    ("money", "3.50", "3.5"),
    ("money", "1200.0", "1200"),
    ("date", "2026/12/5", "2026-12-05"),
    ("part_number", " ab－1234 ", "AB-1234"),
    ("text", "六角 ボルト  M8×30", "六角ボルト M8×30"),
    ("quantity", "", ""),
], ids=lambda x: repr(x))
def test_canonical_correction(value_type, typed, expected):
    assert canonical_correction(value_type, typed) == expected


@pytest.mark.parametrize("value_type, typed", [
    ("quantity", "12個"), ("quantity", "=1+1"), ("money", "abc"), ("money", "1e5"), ("date", "12/5"),
    ("date", "2026-02-30"),
])
def test_bad_corrections_are_refused(store, value_type, typed):
    with pytest.raises(CorrectionError):
        canonical_correction(value_type, typed, name="items[0].quantity")


def test_correct_field_refuses_unknown_field_bad_value_and_anonymous_clerk(store):
    store.save_document(source(), [order_page()])
    fid = field_id(store, "items[0].quantity")
    with pytest.raises(CorrectionError) as exc:
        store.correct_field(fid, "百二十", "tanaka")
    assert exc.value.field == "items[0].quantity" and exc.value.file == "s0001.tif"
    with pytest.raises(CorrectionError):
        store.correct_field(fid, "120", " ")
    with pytest.raises(CorrectionError):
        store.correct_field(999_999, "120", "tanaka")
    assert rows(store, "SELECT corrected_value FROM fields WHERE id = ?", [fid])[0]["corrected_value"] is None
    assert counts(store)["corrections"] == 0


def test_page_reason_no_value_carries_needs_a_confirmation(store):
    rows_ = [{"part_no": cell(0, "part_no", "AB-1"), "quantity": cell(0, "quantity", "2"),
              "amount": cell(0, "amount", "999", vt="money")}]
    rec = order_page(rows=rows_, status="review", reasons=("amount_mismatch",))
    store.save_document(source(), [rec])
    line = rows(store, "SELECT * FROM order_lines")[0]
    assert (line["status"], json.loads(line["reasons"])) == ("review", ["amount_mismatch"])
    check = rows(store, "SELECT * FROM fields WHERE value_type = 'check'")[0]
    assert check["name"].startswith("_page") and check["status"] == "review"
    store.correct_field(check["id"], "確認済み", "sato")
    assert rows(store, "SELECT status FROM order_lines")[0]["status"] == "ok"
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "ok"


def test_continuation_page_takes_the_order_header_of_the_earlier_page(store):
    p0 = order_page(0)
    blank = {"order_no": "", "order_date": "", "buyer": ""}
    p1 = order_page(1, header=blank, rows=[{"part_no": cell(0, "part_no", "EF-1", page=1),
                                             "quantity": cell(0, "quantity", "3", page=1)}])
    p1.header["order_no"] = val("order_no", "", page=1, status="review", reasons=("empty_required",))
    p1 = replace(p1, status="review", reasons=("empty_required",))
    store.save_document(source(), [p0, p1])
    line = rows(store, "SELECT * FROM order_lines WHERE page_index = 1")[0]
    assert (line["order_no"], line["order_date"], line["buyer"], line["status"]) == (
        "PO-240117", "2026-11-20", "山田製作所", "ok")
    assert rows(store, "SELECT status FROM pages WHERE page_index = 1")[0]["status"] == "ok"


def test_continuation_page_with_something_unreadable_in_its_header_does_not_borrow(store):
    p0 = order_page(0)
    p1 = order_page(1, rows=[{"part_no": cell(0, "part_no", "EF-1", page=1)}])
    p1.header["order_no"] = val("order_no", "", raw="P?-24", page=1, status="review", reasons=("unreadable",))
    store.save_document(source(), [p0, p1])
    line = rows(store, "SELECT * FROM order_lines WHERE page_index = 1")[0]
    assert (line["order_no"], line["status"]) == ("", "review")


def test_ledger_entries(store):
    hdr = {"year": val("year", "2026", vt="integer"), "part_no": val("part_no", "AB-1234", vt="part_number")}
    row = {c: cell(0, c, t) for c, t in (("date", "2026-04-01"), ("in_qty", "10"), ("out_qty", ""),
                                         ("balance", "110"), ("staff", "佐藤"), ("part_no", ""))}
    rec = Record(sha256=SHA, page_index=0, template_name="zaiko_card", kind="ledger", header=hdr,
                 rows=[row], status="ok")
    store.save_document(source(), [rec])
    e = rows(store, "SELECT * FROM ledger_entries")[0]
    assert (e["template"], e["entry_date"], e["part_no"], e["in_qty"], e["out_qty"], e["balance"], e["staff"],
            e["status"]) == ("zaiko_card", "2026-04-01", "AB-1234", "10", "", "110", "佐藤", "ok")
    assert counts(store)["order_lines"] == 0


@pytest.mark.parametrize("name", ["item", "description"])
def test_ledger_card_names_its_item_once_in_the_header(store, name):
    """The shipped ledger card has 品名 in its header as ``description``; rows that leave
    品名 blank take it (as they take the header's 品番)."""
    hdr = {"part_no": val("part_no", "AB-1234", vt="part_number"), name: val(name, "六角ボルト")}
    row = {c: cell(0, c, t) for c, t in (("date", "2026-04-01"), ("in_qty", "10"), ("description", ""),
                                         ("part_no", ""))}
    rec = Record(sha256=SHA, page_index=0, template_name="zaiko_card", kind="ledger", header=hdr,
                 rows=[row], status="ok")
    store.save_document(source(), [rec])
    e = rows(store, "SELECT * FROM ledger_entries")[0]
    assert (e["part_no"], e["description"]) == ("AB-1234", "六角ボルト")


def test_empty_rows_are_not_lines(store):
    rows_ = [{"part_no": cell(0, "part_no", "AB-1")}, {"part_no": cell(1, "part_no", "")}]
    store.save_document(source(), [order_page(rows=rows_)])
    assert counts(store)["order_lines"] == 1


def test_correction_after_export_sends_the_row_again(store):
    store.save_document(source(), [order_page()])
    store.db.execute("UPDATE order_lines SET exported_at = '2026-11-20T20:00:00+09:00'")
    store.save_document(source(), [order_page()])  # identical re-run: stays exported
    assert store.stats()["not_exported"]["order_lines"] == 0
    store.correct_field(field_id(store, "items[0].quantity"), "150", "tanaka")
    assert rows(store, "SELECT row_index FROM order_lines WHERE exported_at IS NULL") == [{"row_index": 0}]


# ----------------------------------------------------------------------------- failures --

def test_record_failure_then_success(store):
    err = CorruptFile("cannot decode TIFF", "TIFFを読めない", file="s0001.tif")
    doc_id = store.record_failure(source(), None, err)
    doc = rows(store, "SELECT * FROM documents")[0]
    assert (doc["status"], doc["error_code"], doc["error_ja"]) == ("failed", "corrupt", "TIFFを読めない")
    assert "s0001.tif" in doc["error_en"] and "cannot decode TIFF" in doc["error_en"]
    assert not store.has_document(SHA)  # a failed file is retried when dropped again
    assert store.save_document(source(), [order_page()]) == doc_id
    doc = rows(store, "SELECT * FROM documents")[0]
    assert (doc["status"], doc["error_code"]) == ("review", None)


def test_record_failure_after_success_keeps_the_data(store):
    store.save_document(source(), [order_page()])
    store.record_failure(source(), SHA, CorruptFile("boom"))
    doc = rows(store, "SELECT * FROM documents")[0]
    assert (doc["status"], doc["error_code"]) == ("review", "corrupt")
    assert counts(store)["order_lines"] == 2


def test_record_failure_without_hash_is_keyed_by_name(store):
    a = store.record_failure("/inbox/broken.pdf", None, CorruptFile("boom"))
    b = store.record_failure(Path("/inbox/broken.pdf"), None, CorruptFile("boom again"))
    assert a == b and counts(store)["documents"] == 1
    assert store.record_failure("other.pdf", None, OSError("x")) != a


def test_stats(store):
    store.save_document(source(), [order_page()])
    store.record_failure("x.pdf", None, CorruptFile("boom"))
    s = store.stats()
    assert s["documents"] == {"ok": 0, "review": 1, "unknown_form": 0, "failed": 1}
    assert s["order_lines"] == {"ok": 1, "review": 1}
    assert s["fields"]["review"] == 1 and s["not_exported"]["order_lines"] == 2


def test_a_locked_database_is_a_transient_error_and_nothing_is_half_written(tmp_path, monkeypatch):
    import faxflow.export.store as store_mod
    from faxflow.templates.errors import TransientError

    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "faxflow.db"
    holder, other = Store.open(path), Store.open(path)
    try:
        with holder.transaction():
            holder.db.execute("UPDATE meta SET value = value")
            with pytest.raises(TransientError) as err:
                other.save_document(source(), [order_page()])
            assert err.value.permanent is False
        other.save_document(source(), [order_page()])  # the lock is gone: the retry works
        assert holder.has_document(SHA)
    finally:
        holder.close()
        other.close()


def test_blank_header_box_on_a_doubtful_page_does_not_borrow(store):
    p0 = order_page(0)
    p1 = order_page(1, rows=[{"part_no": cell(0, "part_no", "EF-1", page=1)}])
    p1.header["order_no"] = val("order_no", "", page=1, status="review",
                                reasons=("empty_required", "alignment_doubtful"))
    store.save_document(source(), [p0, p1])
    line = rows(store, "SELECT * FROM order_lines WHERE page_index = 1")[0]
    assert (line["order_no"], line["status"]) == ("", "review")
    assert "alignment_doubtful" in json.loads(line["reasons"])


def test_undecodable_file_name_is_stored_readably(store):
    # os.fsdecode gives lone surrogates for a non-UTF-8 name (a Shift_JIS name on a share).
    store.save_document(source(name="\udc93\udc5a.tif"), [order_page()])
    assert rows(store, "SELECT source_name FROM documents")[0]["source_name"] == "\\udc93\\udc5a.tif"


def test_schema_v1_database_is_migrated_and_a_stuck_partial_row_gets_its_cells(tmp_path):
    """A database written before schema 2 may hold a row in review with nothing to check
    (a partial row left by a re-run): opening it adds the handled_* columns and derives
    every document again, so the row's missing cell becomes a field a clerk can fill."""
    path = tmp_path / "faxflow.db"
    with Store.open(path) as s:
        s.save_document(source(), [order_page()])
        s.correct_field(field_id(s, "items[0].quantity"), "125", "tanaka")
        s.save_document(source(), [order_page(rows=[{"part_no": cell(1, "part_no", "CD-5678"),
                                                     "quantity": cell(1, "quantity", "5")}])])
    with sqlite3.connect(path) as conn:  # back to what schema 1 stored
        conn.execute("DELETE FROM fields WHERE name = 'items[0].part_no'")
        for column in ("handled_reason", "handled_note", "handled_by", "handled_at"):
            conn.execute(f"ALTER TABLE pages DROP COLUMN {column}")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store.open(path) as s:
        assert rows(s, "SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"] == "2"
        assert not rows(s, "SELECT * FROM meta WHERE key = 'rederive'")
        assert {"handled_reason", "handled_note", "handled_by", "handled_at"} <= {
            c.name for c in s.db.table("pages").columns}
        f = rows(s, "SELECT * FROM fields WHERE name = 'items[0].part_no'")[0]
        assert (f["status"], f["value"], json.loads(f["reasons"])) == ("review", "", ["cell_not_read"])
        s.correct_field(f["id"], "AB-1234", "sato")
        assert rows(s, "SELECT status FROM documents")[0]["status"] == "ok"


def test_unknown_page_marked_handled_no_longer_holds_its_document(store):
    unknown = Record(sha256=SHA, page_index=1, template_name=None, kind=None, status="unknown_form",
                     reasons=("unknown_form",))
    ok_page = order_page(rows=[{"part_no": cell(0, "part_no", "AB-1234"), "quantity": cell(0, "quantity", "5")}])
    doc = store.save_document(source(), [ok_page, unknown])
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "review"
    for bad, by, note in (("guess", "sato", ""), ("other", "sato", " "), ("not_an_order", " ", "")):
        with pytest.raises(CorrectionError):
            store.mark_unknown_handled(doc, 1, bad, by, note)
    with pytest.raises(CorrectionError, match="not an unknown form"):
        store.mark_unknown_handled(doc, 0, "not_an_order", "sato")
    store.mark_unknown_handled(doc, 1, "not_an_order", "sato", "送付状")
    page = rows(store, "SELECT * FROM pages WHERE page_index = 1")[0]
    assert (page["status"], page["handled_reason"], page["handled_note"], page["handled_by"]) == (
        "unknown_form", "not_an_order", "送付状", "sato")
    assert rows(store, "SELECT status, reasons FROM documents")[0] == {"status": "ok", "reasons": "[]"}
    # a re-run of the same content keeps what the clerk said about the page
    store.save_document(source(), [ok_page, unknown])
    assert rows(store, "SELECT handled_by FROM pages WHERE page_index = 1")[0]["handled_by"] == "sato"
    assert rows(store, "SELECT status FROM documents")[0]["status"] == "ok"
