"""export/csv_out.py: the municipal hand-off (encodings, Excel safety, atomic write, incremental)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import faxflow.export.csv_out as csv_out
from faxflow.export.csv_out import LEDGER_COLUMNS, ORDER_COLUMNS, export_csv
from faxflow.export.store import Store
from faxflow.templates.errors import ConfigError, TransientError
from faxflow.templates.reasons import describe
from faxflow.templates.types import Record, SourceFile, Value

SHA = "c" * 64
ORDER_HEADER = [c[0] for c in ORDER_COLUMNS]
TYPES = {"part_no": "part_number", "quantity": "quantity", "unit_price": "money", "amount": "money",
         "due_date": "date", "date": "date", "in_qty": "quantity", "out_qty": "quantity", "balance": "quantity"}


def val(name, text, *, status="ok", reasons=(), vt="text", table=None, row=None, column=None, page=0, sha=SHA):
    return Value(sha256=sha, page_index=page, name=name, box=(0, 0, 10, 10), raw_text=text, value=text or None,
                 text=text, value_type=vt, confidence=0.9, engine="tesseract", status=status,
                 reasons=tuple(reasons), table=table, row=row, column=column)


def order_record(lines, *, header=None, sha=SHA, page=0):
    header = header or {"order_no": "PO-1", "order_date": "2026-11-20", "buyer": "山田製作所"}
    hdr = {k: val(k, v, page=page, sha=sha) for k, v in header.items()}
    rows = []
    for i, line in enumerate(lines):
        row = {}
        for column, spec in line.items():
            text, status, reasons = (spec, "ok", ()) if isinstance(spec, str) else spec
            row[column] = val(f"items[{i}].{column}", text, status=status, reasons=reasons, table="items",
                              row=i, column=column, vt=TYPES.get(column, "text"), page=page, sha=sha)
        rows.append(row)
    values = list(hdr.values()) + [v for r in rows for v in r.values()]
    status = "review" if any(v.status != "ok" for v in values) else "ok"
    return Record(sha256=sha, page_index=page, template_name="yamada_order", kind="order", header=hdr,
                  rows=rows, status=status)


LINES = [
    {"part_no": "AB-1234", "description": "六角ボルト M8×30", "quantity": "120", "unit": "個",
     "unit_price": "35", "amount": "4200", "due_date": "2026-12-05"},
    {"part_no": "CD-5678", "description": "ワッシャー", "quantity": ("50", "review", ("low_confidence",)),
     "unit": "個", "unit_price": "3.5", "amount": "175", "due_date": "2026-12-05"},
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "faxflow.db"
    with Store.open(path) as store:
        store.save_document(SourceFile(Path("/inbox/fax1.tif"), SHA, "tiff", 10), [order_record(LINES)])
    return path


def read(path, encoding="utf-8-sig"):
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def correct(db, name, value):
    with Store.open(db) as store:
        fid = store.db.execute("SELECT id FROM fields WHERE name = ?", [name]).fetchone()[0]
        store.correct_field(fid, value, "tanaka")


def exported_flags(db):
    with Store.open(db) as store:
        return [r[0] is not None for r in store.db.execute("SELECT exported_at FROM order_lines ORDER BY row_index")]


def test_default_is_utf8_with_bom_crlf_and_the_documented_columns(db, tmp_path):
    out = tmp_path / "exports" / "orders.csv"
    result = export_csv(db, out)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == 3 and data.replace(b"\r\n", b"").count(b"\n") == 0
    table = read(out)
    assert table[0] == ORDER_HEADER == [
        "source_file", "page", "order_no", "order_date", "buyer", "part_no", "description", "quantity", "unit",
        "unit_price", "amount", "due_date", "status", "review_reason"]
    assert table[1] == ["fax1.tif", "1", "PO-1", "2026-11-20", "山田製作所", "AB-1234", "六角ボルト M8×30", "120",
                        "個", "35", "4200", "2026-12-05", "ok", ""]
    assert table[2][12:] == ["review", describe("low_confidence")]
    assert (result.rows, result.skipped, result.path, result.replaced_chars) == (2, 0, out, 0)


def test_cp932_round_trip(db, tmp_path):
    out = tmp_path / "orders_sjis.csv"
    result = export_csv(db, out, encoding="cp932")
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read(out, "cp932") == read_utf8(db, tmp_path)
    assert result.encoding == "cp932" and result.replaced_chars == 0


def read_utf8(db, tmp_path):
    out = tmp_path / "ref.csv"
    export_csv(db, out)
    return read(out)


def test_unencodable_character_is_replaced_counted_and_flagged(tmp_path):
    db = tmp_path / "faxflow.db"
    header = {"order_no": "PO-2", "order_date": "2026-11-20", "buyer": "𠮷野商店"}  # 𠮷 is not in cp932
    with Store.open(db) as store:
        store.save_document(SourceFile(Path("/inbox/f.tif"), SHA, "tiff", 1),
                            [order_record([{"part_no": "AB-1", "quantity": "1"}], header=header)])
    out = tmp_path / "o.csv"
    result = export_csv(db, out, encoding="cp932")
    row = read(out, "cp932")[1]
    assert row[4] == "〓野商店"
    assert row[12] == "review" and describe("unencodable") in row[13]
    assert (result.replaced_chars, result.replaced_rows) == (1, 1)
    # UTF-8 carries it unchanged, and the row keeps its real status
    export_csv(db, out)
    assert read(out)[1][4] == "𠮷野商店" and read(out)[1][12] == "ok"


def test_formula_like_text_is_escaped_numbers_are_not(tmp_path):
    db = tmp_path / "faxflow.db"
    lines = [{"part_no": "-AB1", "description": "=HYPERLINK(\"http://x\")", "unit": "@pcs", "quantity": "3"},
             {"part_no": "+81", "description": "\tx", "quantity": "4"}]
    with Store.open(db) as store:
        store.save_document(SourceFile(Path("/inbox/f.tif"), SHA, "tiff", 1), [order_record(lines)])
    out = tmp_path / "o.csv"
    export_csv(db, out)
    r1, r2 = read(out)[1:]
    assert (r1[5], r1[6], r1[8], r1[7]) == ("'-AB1", "'=HYPERLINK(\"http://x\")", "'@pcs", "3")
    assert (r2[5], r2[6], r2[7]) == ("'+81", "'\tx", "4")


def test_negative_numbers_stay_numbers_in_ledger_csv(tmp_path):
    db = tmp_path / "faxflow.db"
    row = {c: val(f"t[0].{c}", t, table="t", row=0, column=c, vt=TYPES.get(c, "text"))
           for c, t in (("date", "2026-04-01"), ("part_no", "AB-1"), ("description", "-ボルト"),
                        ("in_qty", "0"), ("out_qty", "5"), ("balance", "-5"), ("staff", "佐藤"))}
    rec = Record(sha256=SHA, page_index=0, template_name="zaiko_card", kind="ledger", rows=[row], status="ok")
    with Store.open(db) as store:
        store.save_document(SourceFile(Path("/inbox/l.tif"), SHA, "tiff", 1), [rec])
    out = tmp_path / "ledger.csv"
    result = export_csv(db, out, kind="ledger")
    table = read(out)
    assert table[0] == [c[0] for c in LEDGER_COLUMNS] == [
        "source_file", "page", "template", "date", "part_no", "description", "in_qty", "out_qty", "balance",
        "staff", "status", "review_reason"]
    assert table[1] == ["l.tif", "1", "zaiko_card", "2026-04-01", "AB-1", "'-ボルト", "0", "5", "-5", "佐藤",
                        "ok", ""]
    assert result.rows == 1
    assert read(out)[1:] and export_csv(db, tmp_path / "o.csv").rows == 0  # no order lines in a ledger


def test_corrected_values_are_exported_as_ok(db, tmp_path):
    correct(db, "items[1].quantity", "５０")
    out = tmp_path / "o.csv"
    export_csv(db, out, statuses=("ok",))
    rows = read(out)[1:]
    assert [(r[5], r[7], r[12], r[13]) for r in rows] == [("AB-1234", "120", "ok", ""), ("CD-5678", "50", "ok", "")]


def test_status_filter_counts_skipped_rows(db, tmp_path):
    result = export_csv(db, tmp_path / "o.csv", statuses=("ok",))
    assert (result.rows, result.skipped) == (1, 1)
    assert [r[5] for r in read(tmp_path / "o.csv")[1:]] == ["AB-1234"]


def test_only_new_and_mark_exported(db, tmp_path):
    out = tmp_path / "o.csv"
    first = export_csv(db, out, statuses=("ok",), only_new=True, mark_exported=True)
    assert first.rows == 1 and exported_flags(db) == [True, False]
    again = export_csv(db, out, statuses=("ok",), only_new=True, mark_exported=True)
    assert (again.rows, again.skipped) == (0, 1) and read(out) == [ORDER_HEADER]
    correct(db, "items[1].quantity", "50")  # the clerk clears the review row: it is new now
    third = export_csv(db, out, statuses=("ok",), only_new=True, mark_exported=True)
    assert third.rows == 1 and [r[5] for r in read(out)[1:]] == ["CD-5678"]
    assert exported_flags(db) == [True, True]
    # A later correction of an exported row sends it again.
    correct(db, "items[0].quantity", "121")
    assert exported_flags(db) == [False, True]
    assert [r[7] for r in read_new(db, out)] == ["121"]


def read_new(db, out):
    export_csv(db, out, only_new=True)
    return read(out)[1:]


def test_without_mark_exported_nothing_is_stamped(db, tmp_path):
    export_csv(db, tmp_path / "o.csv", only_new=True)
    assert exported_flags(db) == [False, False]


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_failure_while_writing_leaves_the_old_file_and_no_temp(db, tmp_path, monkeypatch, exc):
    out = tmp_path / "o.csv"
    out.write_bytes(b"old file\r\n")
    real = csv_out._write_rows

    def half_then_fail(fh, *args):
        real(fh, *args)  # the whole content reached the temp file ...
        fh.write("partial")
        raise exc  # ... and then the export dies

    monkeypatch.setattr(csv_out, "_write_rows", half_then_fail)
    with pytest.raises(type(exc)):
        export_csv(db, out, mark_exported=True)
    assert out.read_bytes() == b"old file\r\n"
    assert sorted(p.name for p in tmp_path.iterdir() if "o.csv" in p.name) == ["o.csv"]
    assert exported_flags(db) == [False, False]


def test_replace_refused_is_transient_and_keeps_everything(db, tmp_path, monkeypatch):
    out = tmp_path / "o.csv"
    out.write_bytes(b"old file\r\n")

    def locked(src, dst):
        raise PermissionError(13, "file is open in another program")

    monkeypatch.setattr(csv_out.os, "replace", locked)
    with pytest.raises(TransientError) as err:
        export_csv(db, out, mark_exported=True)
    assert "Excel" in err.value.ja
    assert out.read_bytes() == b"old file\r\n"
    assert [p.name for p in tmp_path.iterdir() if "o.csv" in p.name] == ["o.csv"]
    assert exported_flags(db) == [False, False]


def test_bad_arguments_are_config_errors(db, tmp_path):
    with pytest.raises(ConfigError):
        export_csv(db, tmp_path / "o.csv", kind="invoice")
    with pytest.raises(ConfigError):
        export_csv(db, tmp_path / "o.csv", encoding="latin-1")
    with pytest.raises(ConfigError):
        export_csv(db, tmp_path / "o.csv", statuses=("done",))
    with pytest.raises(ConfigError):
        export_csv(tmp_path / "missing.db", tmp_path / "o.csv")
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "o.csv").exists()


def test_encoding_aliases(db, tmp_path):
    assert export_csv(db, tmp_path / "o.csv", encoding="MS932").encoding == "cp932"
    assert export_csv(db, tmp_path / "o.csv", encoding="utf8").encoding == "utf-8"
    assert not (tmp_path / "o.csv").read_bytes().startswith(b"\xef\xbb\xbf")
