"""End to end on the committed sample scans: `faxflow run INBOX` -> SQLite -> `faxflow export`.

Checks the product's promise on real files, real Tesseract and a real database:
* every scan ends in archive/, nothing in failed/, a second run adds nothing;
* the CSV says what the database says;
* every value the CSV marks `ok` is right (no silent wrong value), checked against the
  samples' ground truth;
* accuracy does not fall below what was measured when this test was written.
"""

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faxflow.cli import app

pytestmark = [pytest.mark.tesseract, pytest.mark.slow]
SCANS = Path(__file__).resolve().parent.parent / "samples" / "scans"
ORDER_CELLS = ("order_no", "order_date", "buyer", "part_no", "description", "quantity", "unit",
               "unit_price", "amount", "due_date")


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    inbox = root / "inbox"
    inbox.mkdir()
    for scan in SCANS.iterdir():
        if not scan.name.endswith(".truth.json"):
            shutil.copy2(scan, inbox / scan.name)
    runner = CliRunner()
    first = runner.invoke(app, ["run", str(inbox), "--jobs", "2", "--no-export"])
    out = root / "orders.csv"
    exported = runner.invoke(app, ["export", "--home", str(root), "--out", str(out)])
    return root, first, exported, out


def test_every_scan_is_archived_and_stored_once(ran):
    root, first, _, _ = ran
    assert first.exit_code == 0, first.output
    names = {p.name for p in SCANS.iterdir() if not p.name.endswith(".truth.json")}
    archived = {p.name for p in (root / "archive").rglob("*") if p.is_file()}
    assert names <= archived
    assert not any((root / "failed").iterdir())
    con = sqlite3.connect(root / "faxflow.db")
    assert con.execute("select count(*) from documents").fetchone()[0] == len(names)
    # a second run over an empty inbox, and the same files dropped again, add nothing
    for scan in SCANS.glob("*.tif"):
        shutil.copy2(scan, root / "inbox" / scan.name)
    again = CliRunner().invoke(app, ["run", str(root / "inbox"), "--jobs", "1", "--no-export"])
    assert again.exit_code == 0, again.output
    assert con.execute("select count(*) from documents").fetchone()[0] == len(names)


def _truth_rows():
    """(source file, page 1-based, row cells) for every truth order row, header merged in."""
    out = {}
    for tp in SCANS.glob("*.truth.json"):
        truth = json.loads(tp.read_text(encoding="utf-8"))
        for page in truth["pages"]:
            if page.get("kind") != "order":
                continue
            for row in page["rows"]:
                cells = dict(page["header"]) | row["fields"]
                out[(truth["file"], page["index"] + 1, row["row"])] = cells
    return out


def test_csv_matches_database_and_ok_rows_are_right(ran):
    root, _, exported, out = ran
    assert exported.exit_code == 0, exported.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    con = sqlite3.connect(root / "faxflow.db")
    con.row_factory = sqlite3.Row
    db_rows = con.execute("select * from order_lines order by document_id, page_index, row_index").fetchall()
    assert len(rows) == len(db_rows) > 0
    truth = _truth_rows()
    # every truth row of a matched page must be in the CSV (a missed row is a lost order line)
    by_key = {}
    for r, d in zip(rows, db_rows):
        for col in ("part_no", "quantity", "amount", "due_date", "status"):
            db = d[col] or ""
            assert r[col] in (db, "'" + db), (col, r[col], db)  # "'" escapes = + - @ for Excel
        by_key[(r["source_file"], int(r["page"]), d["row_index"])] = r
    missing = [k for k in truth if k not in by_key]
    assert not missing, f"order rows missing from the CSV: {missing}"
    silent = []
    right = total = 0
    for key, cells in truth.items():
        r = by_key[key]
        for col in ORDER_CELLS:
            expected = cells.get(col, "")
            got = r[col][1:] if r[col][:1] == "'" and r[col][1:2] in "=+-@" else r[col]
            same = got == expected or (col in ("description", "buyer")
                                        and got.replace(" ", "") == expected.replace(" ", ""))
            total += 1
            right += same
            if r["status"] == "ok" and not same:
                silent.append((key, col, expected, got))
    assert not silent, f"wrong values exported as ok: {silent}"
    # regression guard: measured 157/270 (58%) when written; raise it as accuracy improves
    assert right / total >= 0.55, f"accuracy {right}/{total}"


@pytest.mark.tesseract
def test_demo_processes_samples_and_says_where_everything_is(tmp_path):
    """What `make demo` runs: samples -> batch -> CSV -> graded summary, ending with the
    paths of the database and CSV and how to open the review page."""
    from faxflow.ingest.demo import run_demo

    lines: list[str] = []
    summary = run_demo(tmp_path / "demo", count=1, seed=3, jobs=1, echo=lines.append)
    text = "\n".join(lines)
    assert summary.db_path.exists() and summary.csv_paths and all(p.exists() for p in summary.csv_paths)
    assert "faxflow demo summary" in text and "silent errors" in text
    assert f"faxflow review --home {tmp_path / 'demo'}" in text
