"""The review page (export/review.py, `faxflow review`) over real HTTP, on a database the
real pipeline wrote from a committed sample scan (`faxflow run INBOX`), and in a real
headless Chromium (the clerk's keyboard flow).

The pipeline runs once per module; every test works on its own copy of the database and
the page images (the stored image paths are relative to the database's folder, so a
copied workspace keeps working).
"""

from __future__ import annotations

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

    assert Path(CHROMIUM).exists(), "chromium is missing: run scripts/install-system-deps.sh --test"
    doc, page = _review_pages(workspace)[0]
    fields = [f for f in _open_fields(workspace, doc, page) if f["value_type"] != "check"]
    shots = Path(os.environ.get("FAXFLOW_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
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
