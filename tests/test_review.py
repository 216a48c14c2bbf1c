"""The review page (export/review.py, `faxflow review`) over real HTTP, on a database the
real pipeline wrote from a committed sample scan (`faxflow run INBOX`), and in a real
headless Chromium (the clerk's keyboard flow).

The pipeline runs once per module; every test works on its own copy of the database and
the page images (the stored image paths are relative to the database's folder, so a
copied workspace keeps working).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sqlite3
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from faxflow.cli import app

pytestmark = pytest.mark.tesseract  # the database is written by the real pipeline
SCANS = Path(__file__).resolve().parent.parent / "samples" / "scans"
SAMPLE = "fax_cover_and_order.pdf"  # an unknown cover sheet + two yamada_order pages
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """`faxflow run INBOX` (no workspace: pages/ and faxflow.db beside the inbox)."""
    root = tmp_path_factory.mktemp("review_run")
    inbox = root / "inbox"
    inbox.mkdir()
    shutil.copy2(SCANS / SAMPLE, inbox / SAMPLE)
    result = CliRunner().invoke(app, ["run", str(inbox), "--jobs", "1", "--no-export", "--quiet"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def workspace(pristine, tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    shutil.copy2(pristine / "faxflow.db", home / "faxflow.db")
    shutil.copytree(pristine / "pages", home / "pages")
    return home


def _chromium(pw):
    """Debian's headless Chromium (never a downloaded browser): no sandbox as root, and no
    background connections, which this machine's closed network refuses."""
    assert Path(CHROMIUM).exists(), "chromium is missing: run scripts/install-system-deps.sh --test"
    return pw.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def _db(home):
    con = sqlite3.connect(home / "faxflow.db")
    con.row_factory = sqlite3.Row
    return con


class Client:
    """A tiny HTTP client that keeps cookies and never follows redirects."""

    def __init__(self, base: str):
        self.base = base
        self.cookies: dict[str, str] = {}

    def request(self, method, path, form=None, headers=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=dict(headers or {}))
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            resp = opener.open(req, timeout=10)
        except urllib.error.HTTPError as err:
            resp = err
        body = resp.read()
        for value in resp.headers.get_all("Set-Cookie") or []:
            k, _, v = value.split(";", 1)[0].partition("=")
            self.cookies[k.strip()] = v
        return resp.status, resp.headers, body

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form, **kw):
        return self.request("POST", path, form=form, **kw)

    def text(self, path):
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:500])
        return body.decode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def server(workspace):
    from faxflow.export.review import open_review_server

    srv = open_review_server(workspace / "faxflow.db", port=0)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def client(server):
    return Client(server.url.rstrip("/"))


def _token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def _review_pages(home):
    return _db(home).execute(
        "SELECT document_id, page_index FROM pages WHERE status = 'review' ORDER BY page_index").fetchall()


def _open_fields(home, doc, page):
    return _db(home).execute(
        "SELECT * FROM fields WHERE document_id = ? AND page_index = ? AND corrected_value IS NULL"
        " AND status = 'review'", [doc, page]).fetchall()


def _quantity_field(home):
    """An order-line quantity to correct: an open one if the reading left one, else any."""
    con = _db(home)
    row = con.execute("SELECT * FROM fields WHERE column_name = 'quantity' AND status = 'review'"
                      " ORDER BY page_index, row_index").fetchone()
    return row or con.execute("SELECT * FROM fields WHERE column_name = 'quantity' ORDER BY id").fetchone()


# ------------------------------------------------------------------------ page images --

def test_pipeline_keeps_each_page_image_beside_the_database(pristine):
    from faxflow.templates.loader import load_templates

    con = _db(pristine)
    doc = con.execute("SELECT * FROM documents").fetchone()
    pages = con.execute("SELECT * FROM pages ORDER BY page_index").fetchall()
    assert len(pages) == 3
    refs = {t.name: t.reference_image for t in load_templates([]).templates}
    for p in pages:
        assert p["image_path"] == f"pages/{doc['sha256'][:16]}/p{p['page_index'] + 1:03d}.png"
        with Image.open(pristine / p["image_path"]) as im:
            assert im.format == "PNG"
            size = im.size
        if p["template"]:  # aligned: in the template's reference pixels, which the boxes use
            with Image.open(refs[p["template"]]) as ref:
                assert size == ref.size
    assert pages[0]["status"] == "unknown_form"  # the cover sheet: its cleaned page is kept
    assert (pristine / "pages" / doc["sha256"][:16]).is_dir()


# ----------------------------------------------------------------------------- HTTP --

def test_list_shows_the_document_and_counts(client, workspace):
    html = client.text("/")
    assert SAMPLE in html
    assert "株式会社山田製作所 注文書" in html  # the template's title, not its name
    assert "要確認" in html and "完了" in html
    assert "用紙不明のページ" in html and "どのテンプレートにも一致しない用紙" in html
    for doc, page in _review_pages(workspace):
        assert f'href="/page/{doc}/{page}"' in html
    assert 'lang="ja"' in html


def test_page_view_shows_every_open_field(client, workspace):
    doc, page = _review_pages(workspace)[0]
    html = client.text(f"/page/{doc}/{page}")
    fields = _open_fields(workspace, doc, page)
    assert fields, "the sample page is expected to have values for review"
    for f in fields:
        assert f'id="f{f["id"]}"' in html
        if f["box"]:
            assert f'data-box="{f["id"]}"' in html and f'src="/crop/{f["id"]}"' in html
    assert html.count(">この値で確定</button>") == sum(f["value_type"] != "check" for f in fields)
    assert f'<image href="/image/{doc}/{page}"' in html
    assert "読み取った値" in html and "確信度" in html and "確認の理由" in html
    # the reasons are shown in Japanese
    from faxflow.templates.reasons import describe

    some = json.loads(fields[0]["reasons"])[0]
    assert describe(some).split(" (")[0] in html


def test_crop_and_page_image_are_pngs(client, workspace):
    f = _quantity_field(workspace)
    status, headers, body = client.get(f"/crop/{f['id']}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    x0, y0, x1, y1 = json.loads(f["box"])
    with Image.open(io.BytesIO(body)) as im:
        assert x1 - x0 < im.width <= x1 - x0 + 2 * 40 and y1 - y0 < im.height <= y1 - y0 + 2 * 40
    status, headers, body = client.get(f"/image/{f['document_id']}/{f['page_index']}")
    assert status == 200 and headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG")


def _named(client, name="山田 花子"):
    html = client.text("/")
    status, _, _ = client.post("/name", {"token": _token(html), "name": name, "back": "/"})
    assert status == 303
    return _token(html)


def test_valid_correction_is_saved_and_rows_are_derived_again(client, workspace):
    token = _named(client)
    f = _quantity_field(workspace)
    status, headers, _ = client.post(f"/correct/{f['id']}", {"token": token, "value": "１，２００"})
    assert status == 303 and headers["Location"] == f"/page/{f['document_id']}/{f['page_index']}"
    con = _db(workspace)
    row = con.execute("SELECT * FROM fields WHERE id = ?", [f["id"]]).fetchone()
    assert (row["corrected_value"], row["corrected_by"]) == ("1200", "山田 花子")
    line = con.execute("SELECT quantity FROM order_lines WHERE document_id = ? AND page_index = ? AND row_index = ?",
                       [f["document_id"], f["page_index"], f["row_index"]]).fetchone()
    assert line["quantity"] == "1200"
    log = con.execute("SELECT * FROM corrections WHERE field_id = ?", [f["id"]]).fetchall()
    assert [(r["new_value"], r["corrected_by"]) for r in log] == [("1200", "山田 花子")]
    # the field has left the open list of its page
    html = client.text(f"/page/{f['document_id']}/{f['page_index']}")
    assert f'id="f{f["id"]}"' not in html


def test_script_path_answers_json_and_reports_when_the_page_is_done(client, workspace):
    token = _named(client)
    doc, page = _review_pages(workspace)[-1]
    fields = _open_fields(workspace, doc, page)
    for i, f in enumerate(fields):
        value = "確認済み" if f["value_type"] == "check" else f["value"]
        status, _, body = client.post(f"/correct/{f['id']}", {"token": token, "value": value},
                                      headers={"Accept": "application/json"})
        data = json.loads(body)
        assert status == 200 and data["ok"], data
        assert data["remaining"] == len(fields) - i - 1
    assert data["next"] is None or re.fullmatch(r"/page/\d+/\d+", data["next"])
    html = client.text(f"/page/{doc}/{page}")
    assert "完了" in html and 'id="next"' in html
    assert _db(workspace).execute("SELECT status FROM pages WHERE document_id = ? AND page_index = ?",
                                  [doc, page]).fetchone()[0] == "ok"


def test_invalid_correction_shows_the_japanese_error_and_changes_nothing(client, workspace):
    token = _named(client)
    f = _quantity_field(workspace)
    before = _db(workspace).execute("SELECT count(*) FROM corrections").fetchone()[0]
    status, _, body = client.post(f"/correct/{f['id']}", {"token": token, "value": "12個x"})
    html = body.decode("utf-8")
    assert status == 422
    assert "整数（数字のみ、単位なし）を入力してください" in html
    assert 'value="12個x"' in html  # what the clerk typed stays in the box
    con = _db(workspace)
    assert con.execute("SELECT corrected_value FROM fields WHERE id = ?", [f["id"]]).fetchone()[0] is None
    assert con.execute("SELECT count(*) FROM corrections").fetchone()[0] == before
    status, _, body = client.post(f"/correct/{f['id']}", {"token": token, "value": "abc"},
                                  headers={"Accept": "application/json"})
    assert status == 422 and "整数" in json.loads(body)["error"]


def test_correction_needs_the_clerks_name(client, workspace):
    token = _token(client.text("/"))
    f = _quantity_field(workspace)
    status, _, body = client.post(f"/correct/{f['id']}", {"token": token, "value": "5"})
    assert status == 422 and "お名前を入力してください" in body.decode("utf-8")
    assert _db(workspace).execute("SELECT corrected_value FROM fields WHERE id = ?", [f["id"]]).fetchone()[0] is None


def test_post_without_the_check_token_is_refused(client, workspace):
    token = _named(client)
    f = _quantity_field(workspace)
    for form, headers in (({"value": "7"}, {}),
                          ({"value": "7", "token": "forged"}, {}),
                          ({"value": "7", "token": token}, {"Origin": "http://evil.example"})):
        status, _, body = client.post(f"/correct/{f['id']}", form, headers=headers)
        assert status == 403, (form, headers)
        assert "不正な要求です" in body.decode("utf-8")
    status, _, _ = client.post("/name", {"name": "x"})
    assert status == 403
    assert _db(workspace).execute("SELECT corrected_value FROM fields WHERE id = ?", [f["id"]]).fetchone()[0] is None


def test_paths_from_the_url_are_never_files(client, server, workspace):
    for path in ("/image/../../etc/passwd", "/image/1/0/../../../etc/passwd", "/crop/..%2F..%2Fetc%2Fpasswd",
                 "/static/../review.py", "/static/review.css/../../faxflow.db", "/faxflow.db",
                 "/pages/" + next((workspace / "pages").iterdir()).name + "/p001.png", "/%2e%2e/etc/passwd"):
        status, _, body = client.get(path)
        assert status == 404, path
        assert b"root:" not in body
    # a path stored in the database that is not a PNG page image is not served either
    con = _db(workspace)
    con.execute("UPDATE pages SET image_path = '/etc/passwd' WHERE page_index = 0")
    con.commit()
    doc = con.execute("SELECT document_id FROM pages WHERE page_index = 0").fetchone()[0]
    status, _, body = client.get(f"/image/{doc}/0")
    assert status == 404 and b"root:" not in body
    # a foreign Host (DNS rebinding) gets nothing
    status, _, body = client.get("/", headers={"Host": f"evil.example:{server.server_address[1]}"})
    assert status == 421 and SAMPLE.encode() not in body


def test_pages_open_while_a_watcher_holds_the_write_lock(client, workspace):
    """WAL: a batch writing a document does not block the clerk's reading."""
    doc, page = _review_pages(workspace)[0]
    writer = sqlite3.connect(workspace / "faxflow.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE documents SET notes = '[\"busy\"]'")
    try:
        assert SAMPLE in client.text("/")
        assert "確認が必要な項目" in client.text(f"/page/{doc}/{page}")
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_text_from_the_scan_is_escaped(client, workspace):
    f = _quantity_field(workspace)
    con = _db(workspace)
    con.execute("UPDATE fields SET raw_text = '<script>alert(1)</script>', status = 'review' WHERE id = ?", [f["id"]])
    con.execute("UPDATE documents SET source_name = '<b>x</b>.pdf'")
    con.commit()
    assert "<b>x</b>" not in client.text("/") and "&lt;b&gt;x&lt;/b&gt;.pdf" in client.text("/")
    html = client.text(f"/page/{f['document_id']}/{f['page_index']}")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_page_level_check_is_a_question_with_a_confirm_button(tmp_path):
    """A page in review for a reason no value carries gets a `_page[...]` check field."""
    from faxflow.export.review import open_review_server
    from faxflow.export.store import Store
    from faxflow.templates.types import Record, SourceFile, Value

    sha = "c" * 64
    v = Value(sha256=sha, page_index=0, name="order_no", box=(10, 10, 60, 30), raw_text="123456",
              value="123456", text="123456", value_type="text", confidence=0.99, engine="tesseract", status="ok")
    rec = Record(sha256=sha, page_index=0, template_name="yamada_order", kind="order", header={"order_no": v},
                 status="review", reasons=("total_mismatch",))
    with Store.open(tmp_path / "faxflow.db") as store:
        doc = store.save_document(SourceFile(tmp_path / "t.tif", sha, "tiff", 1), [rec])
    srv = open_review_server(tmp_path / "faxflow.db", port=0)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        client = Client(srv.url.rstrip("/"))
        token = _named(client)
        html = client.text(f"/page/{doc}/0")
        assert "ページ全体の確認" in html and "合計が明細の金額の合計と一致しない" in html
        assert ">確認</button>" in html and "この値で確定" not in html
        assert "このページの画像はありません" in html  # stored without an image: said so, no crash
        fid = _db(tmp_path).execute("SELECT id FROM fields WHERE value_type = 'check'").fetchone()[0]
        status, _, _ = client.post(f"/correct/{fid}", {"token": token, "value": "確認済み"})
        assert status == 303
        assert "完了" in client.text(f"/page/{doc}/0")
        assert _db(tmp_path).execute("SELECT status FROM documents").fetchone()[0] == "ok"
    finally:
        srv.shutdown()
        srv.server_close()


def test_review_command_refuses_a_workspace_without_database(tmp_path):
    result = CliRunner().invoke(app, ["review", "--home", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2
    assert "faxflow run" in result.output


# -------------------------------------------------------------------------- browser --

@pytest.mark.browser
def test_clerk_enters_name_and_corrects_a_value_with_the_keyboard(server, workspace, tmp_path):
    """Real Chromium: type the name + Enter, type a value + Enter; the next field gets
    the focus; the database has the correction. Leaves a screenshot to look at."""
    from playwright.sync_api import sync_playwright

    doc, page = _review_pages(workspace)[0]
    fields = [f for f in _open_fields(workspace, doc, page) if f["value_type"] != "check"]
    shots = Path(os.environ.get("FAXFLOW_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = _chromium(pw)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900}, locale="ja-JP")
            tab.goto(f"{server.url}page/{doc}/{page}")
            assert tab.locator("#reviewer").evaluate("e => e === document.activeElement")
            assert tab.locator(f"#f{fields[0]['id']} input[type=text]").is_disabled()
            tab.keyboard.type("佐藤")
            tab.keyboard.press("Enter")
            tab.wait_for_selector("header .who b")
            assert tab.locator("header .who b").inner_text() == "佐藤"
            first = tab.locator(f"#f{fields[0]['id']} input[type=text]")
            assert first.evaluate("e => e === document.activeElement")  # the first field has the focus
            # a number or date field: a wrong value first, then the right one
            checked = ("quantity", "integer", "money", "date")
            i = next((k for k, f in enumerate(fields) if f["value_type"] in checked), 0)
            target = fields[i]
            box = tab.locator(f"#f{target['id']} input[type=text]")
            box.click()
            tab.keyboard.press("Control+A")
            tab.keyboard.type("abc" if target["value_type"] != "date" else "12/5")
            tab.keyboard.press("Enter")
            if target["value_type"] in checked:  # the Japanese error beside the field, nothing saved
                tab.wait_for_selector(f"#f{target['id']} p.error:not(:empty)")
                assert "入力してください" in tab.locator(f"#f{target['id']} p.error").inner_text()
                assert box.evaluate("e => e === document.activeElement")
                assert _db(workspace).execute("SELECT corrected_value FROM fields WHERE id = ?",
                                              [target["id"]]).fetchone()[0] is None
                tab.keyboard.press("Control+A")
            else:  # free text takes anything: that was a correction; the next field is used
                tab.wait_for_selector(f"#f{target['id']}", state="detached")
                i, target = i + 1, fields[i + 1]
                tab.locator(f"#f{target['id']} input[type=text]").click()
                tab.keyboard.press("Control+A")
            wanted = {"quantity": "42", "integer": "42", "money": "4200", "date": "2026-12-05",
                      "part_number": "AB-1234"}.get(target["value_type"], "テスト値")
            tab.keyboard.type(wanted)
            tab.keyboard.press("Enter")
            tab.wait_for_selector(f"#f{target['id']}", state="detached")
            if len(fields) > i + 1:  # Enter saved and moved on to the next field
                focused = tab.evaluate("document.activeElement.closest('section.field')?.id")
                assert focused == f"f{fields[i + 1]['id']}"
            tab.screenshot(path=str(shots / "review_page.png"))
            tab.goto(server.url)
            tab.screenshot(path=str(shots / "review_list.png"), full_page=True)
        finally:
            browser.close()
    row = _db(workspace).execute("SELECT corrected_value, corrected_by FROM fields WHERE id = ?",
                                 [target["id"]]).fetchone()
    assert tuple(row) == (wanted, "佐藤")
    assert (shots / "review_page.png").stat().st_size > 10_000


# ------------------------------------------------- pages with nothing left to fix on them --

@contextlib.contextmanager
def _serving(db_path):
    from faxflow.export.review import open_review_server

    srv = open_review_server(db_path, port=0)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv, Client(srv.url.rstrip("/"))
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _val(sha, page, name, text, *, status="ok", reasons=(), vt="text", box=(10, 10, 60, 30), table=None,
         row=None, column=None, conf=0.97):
    from faxflow.templates.types import Value

    return Value(sha256=sha, page_index=page, name=name, box=box, raw_text=text, value=text or None, text=text,
                 value_type=vt, confidence=conf, engine="tesseract", status=status, reasons=tuple(reasons),
                 table=table, row=row, column=column)


def _order_record(sha, page, header, rows):
    from faxflow.templates.types import Record

    values = list(header.values()) + [v for r in rows for v in r.values()]
    status = "review" if any(v.status != "ok" for v in values) else "ok"
    return Record(sha256=sha, page_index=page, template_name="yamada_order", kind="order", header=header,
                  rows=rows, status=status, reasons=tuple(dict.fromkeys(x for v in values for x in v.reasons)))


def _row(sha, page, i, part_no, quantity, *, q_status="ok"):
    y = 400 + 60 * i
    return {"part_no": _val(sha, page, f"items[{i}].part_no", part_no, vt="part_number", box=(100, y, 300, y + 50),
                            table="items", row=i, column="part_no"),
            "quantity": _val(sha, page, f"items[{i}].quantity", quantity, vt="quantity", box=(400, y, 500, y + 50),
                             table="items", row=i, column="quantity", status=q_status,
                             reasons=("low_confidence",) if q_status != "ok" else ())}


def test_row_left_partial_by_a_rerun_is_asked_on_the_page_and_can_be_finished(tmp_path):
    """A re-run no longer reads row 0, whose quantity a clerk had corrected: the row kept
    only that cell. Its missing cell is asked on the page (nothing invented), the list
    counts it, and entering it closes the page and the document."""
    from faxflow.export.store import Store
    from faxflow.templates.types import SourceFile

    sha = "d" * 64
    src = SourceFile(tmp_path / "rerun.tif", sha, "tiff", 1)
    header = {"order_no": _val(sha, 0, "order_no", "123456")}
    with Store.open(tmp_path / "faxflow.db") as store:
        store.save_document(src, [_order_record(sha, 0, header, [_row(sha, 0, 0, "AB-1234", "12", q_status="review"),
                                                                 _row(sha, 0, 1, "CD-5678", "5")])])
        qid = store.db.execute("SELECT id FROM fields WHERE name = 'items[0].quantity'").fetchone()[0]
        store.correct_field(qid, "120", "山田")
        doc = store.save_document(src, [_order_record(sha, 0, header, [_row(sha, 0, 1, "CD-5678", "5")])])
    con = _db(tmp_path)
    assert con.execute("SELECT status FROM pages").fetchone()[0] == "review"
    missing = con.execute("SELECT * FROM fields WHERE name = 'items[0].part_no'").fetchone()
    assert (missing["value"], missing["raw_text"], missing["engine"]) == ("", "", None)
    with _serving(tmp_path / "faxflow.db") as (_, client):
        listing = client.text("/")
        assert re.search(rf'<td class="num">1</td><td><a class="button" href="/page/{doc}/0">', listing)
        token = _named(client)
        html = client.text(f"/page/{doc}/0")
        assert f'id="f{missing["id"]}"' in html and "（読み取りなし）" in html
        assert "読み直しでこの行が読めず" in html  # the reason, in Japanese
        assert json.loads(missing["box"]) == [100, 400, 300, 450]  # its column's x, its row's y: a crop
        assert 'id="done" hidden' in html
        status, _, body = client.post(f"/correct/{missing['id']}", {"token": token, "value": "ab-1234"},
                                      headers={"Accept": "application/json"})
        assert status == 200 and json.loads(body) == {"ok": True, "value": "AB-1234", "remaining": 0,
                                                      "page_done": True, "next": None}
        assert "このページの確認はすべて終わりました" in client.text(f"/page/{doc}/0")
        assert "確認が必要なページはありません" in client.text("/")
    con = _db(tmp_path)
    line = con.execute("SELECT * FROM order_lines WHERE row_index = 0").fetchone()
    assert (line["part_no"], line["quantity"], line["status"]) == ("AB-1234", "120", "ok")
    assert con.execute("SELECT status FROM documents").fetchone()[0] == "ok"
    assert [tuple(r) for r in con.execute("SELECT new_value, corrected_by FROM corrections ORDER BY id")] == [
        ("120", "山田"), ("AB-1234", "山田 花子")]


def test_page_waiting_for_an_earlier_pages_header_says_so_and_links_there(tmp_path):
    """Page 2 of an order leaves 注文番号 blank and takes page 1's, which is in review:
    page 2 has nothing of its own to fix. It is never shown as 完了 or as 0 open values;
    it points at page 1, and is done as soon as page 1 is."""
    from faxflow.export.store import Store
    from faxflow.templates.types import SourceFile

    sha = "e" * 64
    p0 = _order_record(sha, 0, {"order_no": _val(sha, 0, "order_no", "12345B", status="review",
                                                 reasons=("low_confidence",))}, [_row(sha, 0, 0, "AB-1234", "3")])
    blank = _val(sha, 1, "order_no", "", status="review", reasons=("empty_required",))
    p1 = _order_record(sha, 1, {"order_no": blank}, [_row(sha, 1, 0, "CD-5678", "5")])
    with Store.open(tmp_path / "faxflow.db") as store:
        doc = store.save_document(SourceFile(tmp_path / "two.tif", sha, "tiff", 1), [p0, p1])
    con = _db(tmp_path)
    assert [r[0] for r in con.execute("SELECT status FROM pages ORDER BY page_index")] == ["review", "review"]
    with _serving(tmp_path / "faxflow.db") as (_, client):
        token = _named(client)
        # the clerk says page 2's box is really empty: now nothing of its own is open
        blank_id = con.execute("SELECT id FROM fields WHERE page_index = 1 AND name = 'order_no'").fetchone()[0]
        status, _, body = client.post(f"/correct/{blank_id}", {"token": token, "value": ""},
                                      headers={"Accept": "application/json"})
        assert status == 200 and (json.loads(body)["remaining"], json.loads(body)["page_done"]) == (0, False)
        assert con.execute("SELECT status FROM pages WHERE page_index = 1").fetchone()[0] == "review"
        listing = client.text("/")
        assert re.search(rf'<span class="waiting">他のページの確認待ち</span></td><td><a class="button"'
                         rf' href="/page/{doc}/1">', listing)
        html = client.text(f"/page/{doc}/1")
        assert 'id="waiting"' in html and f'href="/page/{doc}/0">1ページ目を確認する' in html
        assert "このページの確認はすべて終わりました" not in html
        fid = con.execute("SELECT id FROM fields WHERE page_index = 0 AND name = 'order_no'").fetchone()[0]
        status, _, _ = client.post(f"/correct/{fid}", {"token": token, "value": "123456"})
        assert status == 303
        assert "このページの確認はすべて終わりました" in client.text(f"/page/{doc}/1")
    con = _db(tmp_path)
    assert [r[0] for r in con.execute("SELECT status FROM pages ORDER BY page_index")] == ["ok", "ok"]
    assert {r[0] for r in con.execute("SELECT order_no FROM order_lines")} == {"123456"}


# ------------------------------------------------------------------ unknown-form pages --

def test_unknown_form_page_is_marked_handled_with_a_reason_and_the_clerks_name(client, workspace):
    con = _db(workspace)
    doc, page = con.execute("SELECT document_id, page_index FROM pages WHERE status = 'unknown_form'").fetchone()
    html = client.text(f"/page/{doc}/{page}")
    assert f'action="/handle/{doc}/{page}"' in html
    for label in ("注文書ではない（送付状など）", "新しい取引先の用紙：テンプレートを作成する"):
        assert label in html
    token = _token(html)
    # no name yet: refused, nothing recorded
    status, _, body = client.post(f"/handle/{doc}/{page}", {"token": token, "reason": "not_an_order"})
    assert status == 422 and "お名前を入力してください" in body.decode()
    _named(client, "鈴木")
    status, _, body = client.post(f"/handle/{doc}/{page}", {"token": token, "reason": "other", "note": " "})
    assert status == 422 and "内容を書いてください" in body.decode()
    status, _, body = client.post(f"/handle/{doc}/{page}", {"token": token, "reason": "guess"})
    assert status == 422 and "選んでください" in body.decode()
    assert con.execute("SELECT handled_at FROM pages WHERE status = 'unknown_form'").fetchone()[0] is None
    # a page that is not an unknown form cannot be "handled"
    other = con.execute("SELECT page_index FROM pages WHERE document_id = ? AND status != 'unknown_form'",
                        [doc]).fetchone()[0]
    status, _, body = client.post(f"/handle/{doc}/{other}", {"token": token, "reason": "not_an_order"})
    assert status == 422 and "用紙不明ではありません" in body.decode()
    # without the check token: refused
    status, _, _ = client.post(f"/handle/{doc}/{page}", {"reason": "not_an_order"})
    assert status == 403

    status, headers, _ = client.post(f"/handle/{doc}/{page}", {"token": token, "reason": "not_an_order",
                                                                "note": "送付状"})
    assert status == 303 and headers["Location"] == f"/page/{doc}/{page}"
    row = _db(workspace).execute("SELECT * FROM pages WHERE document_id = ? AND page_index = ?", [doc, page]).fetchone()
    assert (row["status"], row["handled_reason"], row["handled_note"], row["handled_by"]) == (
        "unknown_form", "not_an_order", "送付状", "鈴木")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", row["handled_at"])
    assert _db(workspace).execute("SELECT count(*) FROM fields WHERE document_id = ? AND page_index = ?",
                                  [doc, page]).fetchone()[0] == 0  # nothing read, nothing invented
    html = client.text(f"/page/{doc}/{page}")
    assert 'id="handled"' in html and "注文書ではない（送付状など）（送付状）" in html and "鈴木" in html
    assert f'action="/handle/{doc}/{page}"' not in html
    listing = client.text("/")
    assert "用紙不明のページ" not in listing  # left the list ...
    assert "対応済みの用紙不明ページ（1）" in listing and f'href="/page/{doc}/{page}"' in listing  # ... kept apart


def test_fax_with_a_handled_cover_sheet_is_done_when_its_order_pages_are(workspace):
    """The sample: an unknown cover sheet and two order pages. Every value checked and the
    cover sheet handled -> the document is ok (it was 要確認 forever before)."""
    from faxflow.export.store import Store

    with Store.open(workspace / "faxflow.db") as store:
        doc, cover = store.db.execute(
            "SELECT document_id, page_index FROM pages WHERE status = 'unknown_form'").fetchone()
        for fid, value in store.db.execute("SELECT id, value FROM fields WHERE corrected_value IS NULL"
                                           " AND status = 'review'").fetchall():
            store.correct_field(fid, value or "確認済み", "佐藤")
        assert store.db.execute("SELECT status FROM documents").fetchone()[0] == "review"  # the cover sheet
        store.mark_unknown_handled(doc, cover, "new_form", "佐藤")
        assert store.db.execute("SELECT status FROM documents").fetchone()[0] == "ok"


# ------------------------------------------------------------- landscape pages: zoom --

def _landscape_workspace(home: Path) -> int:
    """A kawada_order page (A4 landscape) stored with its image: the template's blank form
    with values written into the boxes; some values in review."""
    from PIL import ImageDraw

    from faxflow.export.store import Store
    from faxflow.samples.forms import get_font
    from faxflow.templates.loader import load_templates
    from faxflow.templates.model import TableSpec
    from faxflow.templates.types import Record, SourceFile

    t = next(t for t in load_templates([]).templates if t.name == "kawada_order")
    sha = "f" * 64
    with Image.open(t.reference_image) as ref:
        im = ref.convert("L")
    draw = ImageDraw.Draw(im)
    font = get_font("gothic", 40)

    def value(name, spec_box, text, vt, **kw):
        x0, y0, x1, y1 = spec_box
        draw.text((x0 + 12, y0 + 8), text, fill=0, font=font)
        flagged = kw.pop("review", False)
        return _val(sha, 0, name, text, vt=vt, box=tuple(spec_box), status="review" if flagged else "ok",
                    reasons=("low_confidence",) if flagged else (), conf=0.5 if flagged else 0.97, **kw)

    specs = {f.name: f for f in t.fields}
    header = {"order_no": value("order_no", specs["order_no"].box, "240117", "part_number", review=True),
              "order_date": value("order_date", specs["order_date"].box, "2026-11-20", "date")}
    table = t.tables[0]
    cols = {c.name: c for c in table.columns}
    lines = [("1A-101", "六角ボルト M8", "120"), ("2B-202", "平座金", "35"), ("3C-303", "ナット M8", "8")]
    rows = []
    for i, (part, desc, qty) in enumerate(lines):
        rb = table.row_boxes()[i]
        cell = {}
        for col, text, vt in (("part_no", part, "part_number"), ("description", desc, "text"),
                              ("quantity", qty, "quantity")):
            cell[col] = value(f"{table.name}[{i}].{col}", TableSpec.cell_box(cols[col], rb), text, vt,
                              table=table.name, row=i, column=col, review=(col == "quantity" and i != 1))
        rows.append(cell)
    (home / "pages").mkdir(parents=True)
    im.save(home / "pages" / "p001.png")
    rec = Record(sha256=sha, page_index=0, template_name="kawada_order", kind="order", header=header, rows=rows,
                 status="review", reasons=("low_confidence",))
    with Store.open(home / "faxflow.db") as store:
        return store.save_document(SourceFile(home / "kawada.tif", sha, "tiff", 1), [rec],
                                   page_images={0: "pages/p001.png"})


@pytest.mark.browser
def test_landscape_page_zooms_and_the_keyboard_flow_keeps_going(tmp_path):
    """Real Chromium on an A4-landscape page: ＋ shows the image at 200 % of its pane, the
    pane follows the box of the field being typed, the focus never leaves the input, a
    click on the image zooms out and in again, and the zoom is kept for the next page."""
    from playwright.sync_api import sync_playwright

    doc = _landscape_workspace(tmp_path / "ws")
    fields = _open_fields(tmp_path / "ws", doc, 0)
    order = ["order_no", "lines[0].quantity", "lines[2].quantity"]
    assert sorted(f["name"] for f in fields) == sorted(order)
    ids = {f["name"]: f["id"] for f in fields}
    shots = Path(os.environ.get("FAXFLOW_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    def svg_width(tab):
        return tab.evaluate("document.querySelector('svg.pageimg').getBoundingClientRect().width")

    def box_in_view(tab, fid):
        return tab.evaluate("""fid => {
            const b = document.querySelector('g.box[data-box="' + fid + '"] rect').getBoundingClientRect();
            const p = document.querySelector('.pane').getBoundingClientRect();
            return b.left >= p.left && b.right <= p.right && b.top >= p.top && b.bottom <= p.bottom; }""", fid)

    def focused_card(tab):
        return tab.evaluate("document.activeElement.closest('section.field')?.id")

    with _serving(tmp_path / "ws" / "faxflow.db") as (srv, _), sync_playwright() as pw:
        browser = _chromium(pw)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900}, locale="ja-JP")
            tab.goto(f"{srv.url}page/{doc}/0")
            tab.keyboard.type("佐藤")
            tab.keyboard.press("Enter")
            tab.wait_for_selector("header .who b")
            assert tab.locator(".layout.landscape").count() == 1 and tab.locator(".zoombar").is_visible()
            assert focused_card(tab) == f"f{ids['order_no']}"
            fit = svg_width(tab)
            pane = tab.evaluate("document.querySelector('.pane').clientWidth")
            assert abs(fit - pane) <= 2
            tab.screenshot(path=str(shots / "review_landscape_fit.png"))
            tab.click(".zoombar [data-zoom=in]")
            tab.click(".zoombar [data-zoom=in]")
            assert tab.locator("#zoomlevel").inner_text() == "200%"
            assert abs(svg_width(tab) - 2 * fit) <= 4
            assert focused_card(tab) == f"f{ids['order_no']}"  # the clerk can type on
            assert box_in_view(tab, ids["order_no"])
            tab.keyboard.press("Control+A")
            tab.keyboard.type("240117")
            tab.keyboard.press("Enter")
            tab.wait_for_selector(f"#f{ids['order_no']}", state="detached")
            assert focused_card(tab) == f"f{ids['lines[0].quantity']}"
            tab.wait_for_function("""fid => {
                const b = document.querySelector('g.box[data-box="' + fid + '"] rect').getBoundingClientRect();
                const p = document.querySelector('.pane').getBoundingClientRect();
                return b.left >= p.left && b.right <= p.right && b.top >= p.top && b.bottom <= p.bottom; }""",
                                  arg=ids["lines[0].quantity"], timeout=5000)  # the pane followed (smoothly)
            tab.screenshot(path=str(shots / "review_landscape_zoomed.png"))
            # a click on the page image (not on a box) zooms out, another zooms in there
            pane_box = tab.locator(".pane").bounding_box()  # (its bottom may be below the window)
            spot = (pane_box["x"] + 20, pane_box["y"] + 70)  # under the zoom bar, beside the form
            tab.mouse.click(*spot)
            assert tab.locator("#zoomlevel").inner_text() == "100%" and abs(svg_width(tab) - fit) <= 2
            assert focused_card(tab) == f"f{ids['lines[0].quantity']}"
            tab.mouse.click(*spot)
            assert tab.locator("#zoomlevel").inner_text() == "200%"
            tab.keyboard.type("120")
            tab.keyboard.press("Enter")
            tab.wait_for_selector(f"#f{ids['lines[0].quantity']}", state="detached")
            assert focused_card(tab) == f"f{ids['lines[2].quantity']}"
            # the zoom is kept for the next landscape page
            tab.reload()
            assert tab.locator("#zoomlevel").inner_text() == "200%" and abs(svg_width(tab) - 2 * fit) <= 4
            tab.click(".zoombar [data-zoom=fit]")
            assert tab.locator("#zoomlevel").inner_text() == "100%"
        finally:
            browser.close()
    con = _db(tmp_path / "ws")
    assert [tuple(r) for r in con.execute("SELECT name, corrected_value, corrected_by FROM fields"
                                          " WHERE corrected_value IS NOT NULL ORDER BY id")] == [
        ("order_no", "240117", "佐藤"), ("lines[0].quantity", "120", "佐藤")]
