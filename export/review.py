"""The review page (レビュー画面): a small local web server where clerks check and fix
the values faxflow was unsure of.

``faxflow review`` calls :func:`open_review_server` and serves until Ctrl-C. Pages:

* ``/``                       documents / pages waiting for review, newest first, with counts
* ``/page/<doc id>/<page>``   one page: its image with the open fields' boxes drawn over it,
                              and for each open field a crop, the value read, raw OCR text,
                              confidence, the reasons, an input and 「この値で確定」
* ``/image/<doc id>/<page>``  the page image (its path comes from ``pages.image_path``)
* ``/crop/<field id>``        the page image cut at the field's box (PNG, small margin)
* ``POST /correct/<field id>`` -> :meth:`Store.correct_field`; JSON for the page's script
                              (``Accept: application/json``), else a redirect / the page
                              again with the error beside the field (works without script)
* ``POST /handle/<doc id>/<page>`` an unknown-form page dealt with (reason, note) ->
                              :meth:`Store.mark_unknown_handled`; it then leaves the list
* ``POST /name``              the clerk's name, kept in a cookie and passed as ``by``

A page in review with no open field of its own waits for a header box of an earlier page
(continuation sheets): it says so and links there, never "完了". The page image can be
zoomed (＋/－, or a click on it; the script keeps the focus in the input being typed).

Safety: every text is escaped; POSTs need the token made at server start (CSRF) and a
same-origin ``Origin`` when the browser sends one; bound to 127.0.0.1 unless told
otherwise, and then the ``Host`` header must name the loopback (DNS rebinding); URLs
carry only numeric ids, file paths come only from the database. The database is opened
per request (a watcher may be writing at the same time: WAL, busy timeout, and a
locked database is reported to the clerk, nothing half-saved).

Clerk-facing text is Japanese; log lines are English.
"""

from __future__ import annotations

import hmac
import html
import io
import json
import logging
import re
import secrets
import socket
import struct
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from faxflow.templates.errors import ConfigError, FaxflowError
from faxflow.templates.reasons import describe

log = logging.getLogger("faxflow")

NAME_COOKIE = "faxflow_reviewer"
MAX_BODY = 64 * 1024
MAX_NAME = 40
CROP_MARGIN = 12  # pixels of page around a field's box in its crop (at least)
IMAGE_CACHE = 4  # decoded page images kept (a 300-dpi A4 page is ~9 MB)

# Japanese labels of the canonical field names (templates/model.py); other names are shown as they are.
LABELS_JA = {
    "order_no": "注文番号", "order_date": "注文日", "buyer": "発注者", "total": "合計",
    "part_no": "品番", "description": "品名", "quantity": "数量", "unit": "単位",
    "unit_price": "単価", "amount": "金額", "due_date": "納期", "note": "備考",
    "date": "日付", "in_qty": "入庫", "out_qty": "出庫", "balance": "残高", "staff": "担当",
    "item": "品名", "year": "年",
}
TYPE_HINT_JA = {
    "integer": "数字のみ", "quantity": "数字のみ（単位なし）", "money": "金額（円）・数字のみ",
    "date": "日付 例: 2026-12-05", "part_number": "英数字と -", "text": "文字",
}
STATUS_JA = {"ok": "完了", "review": "要確認", "unknown_form": "用紙不明", "failed": "読み取り失敗"}
# What a clerk did about a page that matched no template (store.HANDLED_REASONS, in this order).
HANDLED_JA = {
    "not_an_order": "注文書ではない（送付状など）",
    "new_form": "新しい取引先の用紙：テンプレートを作成する",
    "resend": "読めない・一部しか届いていない：取引先に送り直しを依頼する",
    "other": "その他（下に内容を書く）",
}
ZOOM_LEVELS = (1, 1.5, 2, 3)  # the page image: 1 = the width of its pane


# ----------------------------------------------------------------------------- server --

class ReviewServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` holding the :class:`ReviewApp`; one thread per request."""

    daemon_threads = True

    def __init__(self, app: ReviewApp, host: str, port: int):
        self.app = app
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        app.port = self.server_address[1]
        app.loopback_only = _is_loopback(host)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"


def open_review_server(db_path: Path | str, *, host: str = "127.0.0.1", port: int = 8765,
                       template_dirs: Iterable[Path | None] = ()) -> ReviewServer:
    """The review server for the database at ``db_path``, bound and ready for
    ``serve_forever()`` (``port=0``: any free port). ``ConfigError`` when there is no
    database yet or the port is taken."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise ConfigError(f"no database at {db_path}: process some scans first (faxflow run)",
                          f"データベース {db_path} がありません。先に faxflow run で読み取ってください")
    app = ReviewApp(db_path, titles=template_titles(template_dirs))
    try:
        return ReviewServer(app, host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (try --port)",
                          f"{host}:{port} で待ち受けできません（{exc.strerror or exc}）。"
                          "--port で別の番号を指定してください") from exc


def template_titles(dirs: Iterable[Path | None]) -> dict[str, str]:
    """template name -> its title (for the list), from the shipped and the workspace's templates."""
    from faxflow.templates.loader import load_templates

    try:
        return {t.name: t.title or t.name for t in load_templates(list(dirs)).templates}
    except (OSError, FaxflowError) as exc:  # titles are a nicety: names are shown instead
        log.warning("review: template titles not available (%s)", exc)
        return {}


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


# --------------------------------------------------------------------------- responses --

@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def _html(body: str, status: int = 200) -> Response:
    return Response(status, body.encode("utf-8"))


def _json_response(data: dict[str, Any], status: int = 200) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")


def _redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(303, b"", "text/plain; charset=utf-8", [("Location", location)] + (headers or []))


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# -------------------------------------------------------------------------------- app --

@dataclass
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    form: dict[str, str]
    cookies: dict[str, str]

    @property
    def wants_json(self) -> bool:
        return "application/json" in (self.headers.get("Accept") or "")

    @property
    def reviewer(self) -> str:
        return _clean_name(self.cookies.get(NAME_COOKIE, ""))


class ReviewApp:
    """The review pages, independent of the HTTP plumbing: ``handle(request) -> Response``."""

    def __init__(self, db_path: Path, *, titles: Mapping[str, str] | None = None, token: str | None = None):
        self.db_path = Path(db_path)
        self.titles = dict(titles or {})
        self.token = token or secrets.token_urlsafe(24)
        self.port: int | None = None
        self.loopback_only = True
        self._images: dict[tuple, Any] = {}  # decoded page images, oldest first
        self._cache_lock = threading.Lock()

    # -- routing ----------------------------------------------------------------------------
    ROUTES = (
        ("GET", re.compile(r"/"), "index"),
        ("GET", re.compile(r"/page/(\d{1,12})/(\d{1,6})"), "page"),
        ("GET", re.compile(r"/image/(\d{1,12})/(\d{1,6})"), "image"),
        ("GET", re.compile(r"/crop/(\d{1,12})"), "crop"),
        ("GET", re.compile(r"/static/review\.(css|js)"), "static"),
        ("POST", re.compile(r"/correct/(\d{1,12})"), "correct"),
        ("POST", re.compile(r"/handle/(\d{1,12})/(\d{1,6})"), "handle"),
        ("POST", re.compile(r"/name"), "name"),
    )

    def handle(self, req: Request) -> Response:
        if not self._host_ok(req):
            return _html(_error_page("このアドレスからは開けません。", "http://127.0.0.1 で開いてください。"), 421)
        for method, pattern, name in self.ROUTES:
            m = pattern.fullmatch(req.path)
            if m is None:
                continue
            if req.method != method:
                return _html(_error_page("この操作はできません。"), 405)
            if method == "POST" and not self._same_origin(req):
                log.warning("review: POST %s refused (no or wrong check token)", req.path)
                if req.wants_json:
                    return _json_response({"ok": False, "error": "不正な要求です。ページを開き直してください。"}, 403)
                return _html(_error_page("不正な要求です。", "ページを開き直してから、もう一度操作してください。"), 403)
            try:
                return getattr(self, "do_" + name)(req, *m.groups())
            except FaxflowError as exc:
                log.warning("review: %s %s: %s", req.method, req.path, exc)
                if req.wants_json:
                    return _json_response({"ok": False, "error": exc.ja}, 503)
                return _html(_error_page("今は処理できません。", exc.ja, "少し待ってから、もう一度お試しください。"), 503)
        return _html(_error_page("ページが見つかりません。", '<a href="/">一覧へ戻る</a>', raw_last=True), 404)

    def _host_ok(self, req: Request) -> bool:
        if not self.loopback_only:
            return True
        host = (req.headers.get("Host") or "").strip().lower()
        allowed = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]")}
        return host in allowed

    def _same_origin(self, req: Request) -> bool:
        token = req.form.get("token", "")
        if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
            return False
        origin = req.headers.get("Origin")
        if origin and origin != "null":
            return urllib.parse.urlsplit(origin).netloc.lower() == (req.headers.get("Host") or "").lower()
        return True

    def _store(self):
        from faxflow.export.store import Store

        return Store.open(self.db_path)

    # -- pages ----------------------------------------------------------------------------------
    def do_index(self, req: Request) -> Response:
        with self._store() as store:
            counts = dict(store.db.execute("SELECT status, count(*) FROM documents GROUP BY status").fetchall())
            # documents whose every unknown page a clerk has dealt with: not waiting for anyone
            handled_docs = store.db.execute(
                "SELECT count(*) FROM documents d WHERE d.status = 'unknown_form' AND NOT EXISTS (SELECT 1"
                " FROM pages p WHERE p.document_id = d.id AND p.status = 'unknown_form' AND p.handled_at IS NULL)"
            ).fetchone()[0]
            pages = list(store.db.query(
                _PAGES_SQL + " WHERE p.status = 'review' OR (p.status = 'unknown_form' AND p.handled_at IS NULL)"
                + _PAGES_ORDER))
            handled = list(store.db.query(
                _PAGES_SQL + " WHERE p.status = 'unknown_form' AND p.handled_at IS NOT NULL"
                " ORDER BY p.handled_at DESC, d.id DESC, p.page_index LIMIT 100"))
        counts["unknown_form"] = counts.get("unknown_form", 0) - handled_docs
        review = [p for p in pages if p["status"] == "review"]
        unknown = [p for p in pages if p["status"] == "unknown_form"]
        parts = [_name_bar(req, self.token, "/")]
        parts.append('<h1>確認が必要な書類</h1><p class="counts">書類の数: ')
        for status in ("review", "unknown_form", "ok", "failed"):
            if status == "failed" and not counts.get(status):
                continue
            parts.append(f'<span class="count {status}">{STATUS_JA[status]} <b>{counts.get(status, 0)}</b> 件</span>')
        if handled_docs:
            parts.append(f'<span class="count handled">用紙不明（対応済み） <b>{handled_docs}</b> 件</span>')
        parts.append("</p>")
        if review:
            parts.append('<table class="list"><thead><tr><th>受信日時</th><th>ファイル名</th><th>ページ</th>'
                         "<th>用紙</th><th>未確認の項目</th><th></th></tr></thead><tbody>")
            for p in review:
                href = f"/page/{p['document_id']}/{p['page_index']}"
                # nothing open on the page itself: its rows wait for a header value of an earlier page
                open_ = (p["open"] if p["open"] else
                         '<span class="waiting">他のページの確認待ち</span>')
                parts.append(
                    f"<tr><td>{_e(_when(p['received_at']))}</td><td>{_e(p['source_name'])}</td>"
                    f"<td>{p['page_index'] + 1} / {p['page_count']}</td><td>{_e(self._title(p['template']))}</td>"
                    f'<td class="num">{open_}</td><td><a class="button" href="{href}">確認する</a></td></tr>')
            parts.append("</tbody></table>")
        else:
            parts.append('<p class="empty">確認が必要なページはありません。</p>')
        if unknown:
            parts.append('<h2>用紙不明のページ</h2><p class="note">どのテンプレートにも一致しなかったページです。'
                         "値は読み取っていません。新しい取引先の用紙なら、テンプレートを作成してください。</p>")
            parts.append('<table class="list"><thead><tr><th>受信日時</th><th>ファイル名</th><th>ページ</th>'
                         "<th>理由</th><th></th></tr></thead><tbody>")
            for p in unknown:
                href = f"/page/{p['document_id']}/{p['page_index']}"
                reasons = "、".join(describe(r) for r in json.loads(p["reasons"] or "[]")) or describe("unknown_form")
                parts.append(
                    f"<tr><td>{_e(_when(p['received_at']))}</td><td>{_e(p['source_name'])}</td>"
                    f"<td>{p['page_index'] + 1} / {p['page_count']}</td><td>{_e(reasons)}</td>"
                    f'<td><a class="button secondary" href="{href}">見て対応する</a></td></tr>')
            parts.append("</tbody></table>")
        if handled:
            parts.append(f'<details class="handled"><summary>対応済みの用紙不明ページ（{len(handled)}）</summary>'
                         '<table class="list"><thead><tr><th>受信日時</th><th>ファイル名</th><th>ページ</th>'
                         "<th>対応</th><th>確認者</th><th>日時</th></tr></thead><tbody>")
            for p in handled:
                href = f"/page/{p['document_id']}/{p['page_index']}"
                parts.append(
                    f"<tr><td>{_e(_when(p['received_at']))}</td><td>{_e(p['source_name'])}</td>"
                    f'<td><a href="{href}">{p["page_index"] + 1} / {p["page_count"]}</a></td>'
                    f"<td>{_e(_handled_text(p))}</td><td>{_e(p['handled_by'])}</td>"
                    f"<td>{_e(_when(p['handled_at']))}</td></tr>")
            parts.append("</tbody></table></details>")
        return _html(_layout("レビュー画面", "".join(parts)))

    def do_page(self, req: Request, doc_id: str, page_index: str, *, errors: Mapping[int, str] | None = None,
                typed: Mapping[int, str] | None = None, status: int = 200) -> Response:
        doc_id_i, pi = int(doc_id), int(page_index)
        with self._store() as store:
            rows = list(store.db.query(_PAGES_SQL + " WHERE p.document_id = ? AND p.page_index = ?",
                                       [doc_id_i, pi]))
            if not rows:
                return _html(_error_page("このページは見つかりません。", '<a href="/">一覧へ戻る</a>', raw_last=True), 404)
            page = rows[0]
            fields = _open_fields(store, doc_id_i, pi)
            following = _next_page(store, page, unknown=page["status"] == "unknown_form")
            waiting = _waiting_for(store, page) if page["status"] == "review" and not fields else []
        image = _image_file(self.db_path, page["image_path"])
        size = _png_size(image) if image else None
        named = bool(req.reviewer)
        title = f"{page['source_name']} {pi + 1}/{page['page_count']}ページ"
        parts = [_name_bar(req, self.token, f"/page/{doc_id_i}/{pi}")]
        parts.append(
            f'<p class="crumbs"><a href="/">← 一覧へ</a></p><h1>{_e(page["source_name"])} '
            f'<small>{pi + 1} / {page["page_count"]} ページ</small></h1>'
            f'<p class="meta">用紙: {_e(self._title(page["template"]) if page["template"] else "不明")}'
            f'　受信: {_e(_when(page["received_at"]))}</p>')
        next_link = (f'<a id="next" class="button" href="/page/{following[0]}/{following[1]}">次のページへ →</a>'
                     if following else '<a id="next" class="button" href="/">一覧へ戻る</a>')
        side: list[str] = []
        if page["status"] == "unknown_form":
            side.append(self._unknown_notice(page, next_link, named=named, error=(errors or {}).get(-1),
                                             typed=typed or {}))
        elif page["status"] == "review" and not fields:
            # Nothing to check on this page itself: its rows take their header (注文番号 …)
            # from an earlier page whose box is still open. Never "完了" while in review.
            links = "".join(f'<li><a class="button" href="/page/{doc_id_i}/{w}">{w + 1}ページ目を確認する</a>'
                            f"（{n} 項目）</li>" for w, n in waiting)
            if waiting:
                side.append('<div class="notice waiting" id="waiting"><h2>他のページの確認待ち</h2>'
                            "<p>このページの行は、前のページの見出し（注文番号など）の値を使っています。"
                            "そのページの確認が終わると、このページも完了になります。</p>"
                            f'<ul class="links">{links}</ul></div>')
            else:
                log.warning("review: page %d of document %d is in review with nothing open", pi + 1, doc_id_i)
                side.append('<div class="notice" id="waiting"><h2>要確認</h2>'
                            "<p>このページは「要確認」ですが、確認する項目が見つかりません。"
                            "担当者に連絡してください（faxflow で読み直すと直ります）。</p>"
                            f"<p>{next_link}</p></div>")
        elif not fields:
            side.append(f'<div class="done" id="done"><h2>完了</h2><p>このページの確認はすべて終わりました。</p>'
                        f"<p>{next_link}</p></div>")
        else:
            if not named:
                side.append('<p class="warn">確認を始める前に、上の欄にお名前を入力してください。</p>')
            side.append(f'<h2>確認が必要な項目 <span id="remaining">{len(fields)}</span> 件</h2>')
            if any(f["value_type"] != "check" for f in fields):
                side.append('<p class="note">用紙の画像と見比べて正しい値を入力し、Enter（または「この値で確定」）で'
                            "保存すると次の項目へ進みます。空欄が正しいときは、入力欄を空にして確定してください。</p>")
            else:
                side.append('<p class="note">用紙の画像を見て確認し、「確認」を押してください。</p>')
            for n, f in enumerate(fields, 1):
                side.append(_field_card(f, n, self.token, named=named, error=(errors or {}).get(f["id"]),
                                        typed=(typed or {}).get(f["id"])))
            side.append(f'<div class="done" id="done" hidden><h2>完了</h2>'
                        f"<p>このページの確認はすべて終わりました。</p><p>{next_link}</p></div>")
        if page["status"] != "unknown_form" and (errors or {}).get(-1):  # e.g. re-read meanwhile
            side.insert(0, f'<p class="error" role="alert">{_e(errors[-1])}</p>')
        if image and size:
            w, h = size
            boxes = []
            for n, f in enumerate(fields, 1):
                if not f["box_list"]:
                    continue
                x0, y0, x1, y1 = f["box_list"]
                boxes.append(
                    f'<g class="box" data-box="{f["id"]}"><rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}"/>'
                    f'<text x="{x0 + 4}" y="{max(y0 - 6, 36)}">{n}</text></g>')
            # ＋/－ (or a click on the page) zooms; shown by the script, which does the zooming
            zoom = ('<div class="zoombar" role="toolbar" aria-label="画像の拡大" hidden>'
                    '<button type="button" data-zoom="out" tabindex="-1" title="縮小">－</button>'
                    '<span id="zoomlevel">100%</span>'
                    '<button type="button" data-zoom="in" tabindex="-1" title="拡大">＋</button>'
                    '<button type="button" data-zoom="fit" tabindex="-1" class="secondary" title="全体を表示">全体</button>'
                    '<small>画像をクリックしても拡大・縮小できます</small></div>')
            pane = (f'{zoom}<svg class="pageimg" viewBox="0 0 {w} {h}" role="img" aria-label="ページの画像"'
                    f' data-levels="{",".join(str(z) for z in ZOOM_LEVELS)}">'
                    f'<image href="/image/{doc_id_i}/{pi}" x="0" y="0" width="{w}" height="{h}"/>'
                    f'{"".join(boxes)}</svg>')
        else:
            pane = '<p class="noimage">このページの画像はありません（画像を保存する前に読み取った書類です）。</p>'
        shape = " landscape" if size and size[0] > size[1] else ""
        parts.append(f'<div class="layout{shape}"><div class="pane">{pane}</div>'
                     f'<div class="side">{"".join(side)}</div></div>')
        return _html(_layout(title, "".join(parts), script=True), status)

    def _unknown_notice(self, page: Mapping[str, Any], next_link: str, *, named: bool, error: str | None,
                        typed: Mapping[int, str]) -> str:
        reasons = "、".join(describe(r) for r in json.loads(page["reasons"] or "[]")) or describe("unknown_form")
        head = (f'<div class="notice" id="unknown"><h2>用紙不明</h2><p>{_e(reasons)}。'
                "このページの値は読み取っていません。</p>")
        if page["handled_at"]:
            return (head + f'<p class="handled" id="handled">対応済み: <b>{_e(_handled_text(page))}</b><br>'
                    f'{_e(page["handled_by"])}（{_e(_when(page["handled_at"]))}）</p><p>{next_link}</p></div>')
        disabled = "" if named else " disabled"
        chosen = typed.get(-1, "")
        choices = "".join(
            f'<label class="choice"><input type="radio" name="reason" value="{code}"'
            f'{" checked" if code == chosen else ""}{disabled} required> {_e(label)}</label>'
            for code, label in HANDLED_JA.items())
        err = f'<p class="error" role="alert">{_e(error)}</p>' if error else '<p class="error" role="alert"></p>'
        return (head + "<p>用紙を見て、どう対応したかを選んでください。対応済みにすると一覧から外れます"
                "（データベースには残ります）。</p>"
                f'<form class="handle" method="post" action="/handle/{page["document_id"]}/{page["page_index"]}">'
                f'<input type="hidden" name="token" value="{_e(self.token)}">{choices}'
                f'<label class="memo">メモ（任意。「その他」のときは必須）<input type="text" name="note" maxlength="200"'
                f' value="{_e(typed.get(-2, ""))}" autocomplete="off"{disabled}></label>'
                f'<button type="submit"{disabled}>対応済みにする</button>{err}</form>'
                f"<p>{next_link}</p></div>")

    # -- images -----------------------------------------------------------------------------------
    def do_image(self, req: Request, doc_id: str, page_index: str) -> Response:
        with self._store() as store:
            row = store.db.execute("SELECT image_path FROM pages WHERE document_id = ? AND page_index = ?",
                                   [int(doc_id), int(page_index)]).fetchone()
        image = _image_file(self.db_path, row[0] if row else None)
        if image is None:
            return Response(404, "画像がありません".encode(), "text/plain; charset=utf-8")
        return Response(200, image.read_bytes(), "image/png", [("Cache-Control", "no-cache")])

    def do_crop(self, req: Request, field_id: str) -> Response:
        with self._store() as store:
            row = store.db.execute(
                "SELECT f.box, p.image_path FROM fields f JOIN pages p"
                " ON p.document_id = f.document_id AND p.page_index = f.page_index WHERE f.id = ?",
                [int(field_id)]).fetchone()
        image = _image_file(self.db_path, row[1] if row else None)
        box = json.loads(row[0]) if row and row[0] else None
        if image is None or not box:
            return Response(404, "画像がありません".encode(), "text/plain; charset=utf-8")
        im = self._decoded(image)
        x0, y0, x1, y1 = (int(v) for v in box)
        m = max(CROP_MARGIN, (y1 - y0) // 4)
        area = (max(0, x0 - m), max(0, y0 - m), min(im.width, x1 + m), min(im.height, y1 + m))
        if area[2] <= area[0] or area[3] <= area[1]:
            return Response(404, "画像がありません".encode(), "text/plain; charset=utf-8")
        out = io.BytesIO()
        im.crop(area).save(out, "PNG", compress_level=3)
        return Response(200, out.getvalue(), "image/png", [("Cache-Control", "no-cache")])

    def _decoded(self, path: Path):
        """The page image decoded, kept for the few pages last looked at: a page view asks
        for a crop of every open field at once (dozens), each would decode the page again.
        Keyed by modification time, so a re-run's new image is picked up."""
        from PIL import Image

        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._cache_lock:
            im = self._images.get(key)
        if im is None:
            with Image.open(path) as f:
                im = f.copy()  # decoded, file closed
            with self._cache_lock:
                self._images[key] = im
                while len(self._images) > IMAGE_CACHE:
                    self._images.pop(next(iter(self._images)))
        return im

    def do_static(self, req: Request, ext: str) -> Response:
        if ext == "css":
            return Response(200, _CSS.encode(), "text/css; charset=utf-8")
        return Response(200, _JS.encode(), "text/javascript; charset=utf-8")

    # -- writing -----------------------------------------------------------------------------------
    def do_name(self, req: Request) -> Response:
        name = _clean_name(req.form.get("name", ""))
        back = req.form.get("back", "/")
        if not re.fullmatch(r"/(page/\d{1,12}/\d{1,6})?", back):
            back = "/"
        cookie = (f"{NAME_COOKIE}={urllib.parse.quote(name)}; Path=/; SameSite=Strict; HttpOnly; "
                  f"Max-Age={0 if not name else 400 * 24 * 3600}")
        return _redirect(back, [("Set-Cookie", cookie)])

    def do_correct(self, req: Request, field_id: str) -> Response:
        from faxflow.export.store import CorrectionError

        fid = int(field_id)
        value = req.form.get("value", "")
        by = req.reviewer
        with self._store() as store:
            row = store.db.execute("SELECT document_id, page_index FROM fields WHERE id = ?", [fid]).fetchone()
            if row is None:
                msg = "この項目は見つかりません（書類が読み直された可能性があります）。ページを開き直してください。"
                if req.wants_json:
                    return _json_response({"ok": False, "error": msg}, 404)
                return _html(_error_page(msg, '<a href="/">一覧へ戻る</a>', raw_last=True), 404)
            doc_id, pi = row
            error = None
            if not by:
                error = "先に画面上の欄にお名前を入力してください。"
            else:
                try:
                    stored = store.correct_field(fid, value, by)
                except CorrectionError as exc:
                    error = exc.ja
            if error is None:
                log.info("review: field %d corrected by %s", fid, by)
                remaining = len(_open_fields(store, doc_id, pi))
                following = _next_page(store, {"document_id": doc_id, "page_index": pi}) if not remaining else None
                # nothing left here, but still in review: waits for an earlier page (the page says so)
                page_done = store.db.execute("SELECT status FROM pages WHERE document_id = ? AND page_index = ?",
                                             [doc_id, pi]).fetchone()[0] != "review"
        if error is not None:
            if req.wants_json:
                return _json_response({"ok": False, "error": error}, 422)
            return self.do_page(req, str(doc_id), str(pi), errors={fid: error}, typed={fid: value}, status=422)
        if req.wants_json:
            return _json_response({"ok": True, "value": stored, "remaining": remaining, "page_done": page_done,
                                   "next": f"/page/{following[0]}/{following[1]}" if following else None})
        return _redirect(f"/page/{doc_id}/{pi}")

    def do_handle(self, req: Request, doc_id: str, page_index: str) -> Response:
        from faxflow.export.store import CorrectionError

        doc_id_i, pi = int(doc_id), int(page_index)
        reason, note, by = req.form.get("reason", ""), req.form.get("note", ""), req.reviewer
        error = None
        if not by:
            error = "先に画面上の欄にお名前を入力してください。"
        else:
            with self._store() as store:
                try:
                    store.mark_unknown_handled(doc_id_i, pi, reason, by, note)
                except CorrectionError as exc:
                    error = exc.ja
        if error is not None:
            return self.do_page(req, doc_id, page_index, errors={-1: error}, typed={-1: reason, -2: note},
                                status=422)
        log.info("review: unknown page %d of document %d handled by %s (%s)", pi + 1, doc_id_i, by, reason)
        return _redirect(f"/page/{doc_id_i}/{pi}")

    def _title(self, template: str | None) -> str:
        if not template:
            return "不明な用紙"
        return self.titles.get(template, template)


# ------------------------------------------------------------------------------ queries --

_PAGES_SQL = (
    "SELECT p.document_id, p.page_index, p.status, p.template, p.kind, p.reasons, p.image_path,"
    " p.handled_reason, p.handled_note, p.handled_by, p.handled_at,"
    " d.source_name, d.received_at, d.page_count,"
    " (SELECT count(*) FROM fields f WHERE f.document_id = p.document_id AND f.page_index = p.page_index"
    "  AND f.corrected_value IS NULL AND f.status = 'review') AS open"
    " FROM pages p JOIN documents d ON d.id = p.document_id")
_PAGES_ORDER = " ORDER BY d.received_at DESC, d.id DESC, p.page_index"


def _open_fields(store, doc_id: int, page_index: int) -> list[dict]:
    """The page's fields still to check, in reading order: header boxes top to bottom,
    then the table cells row by row, then page-level checks."""
    rows = list(store.db.query(
        "SELECT * FROM fields WHERE document_id = ? AND page_index = ? AND corrected_value IS NULL"
        " AND status = 'review'", [doc_id, page_index]))
    for f in rows:
        f["box_list"] = json.loads(f["box"]) if f["box"] else None
        f["reason_list"] = json.loads(f["reasons"] or "[]")

    def order(f: dict) -> tuple:
        box = f["box_list"] or (0, 0, 0, 0)
        if f["value_type"] == "check":
            return (2, "", 0, 0, 0)
        if f["row_index"] is None:
            return (0, "", 0, box[1], box[0])
        return (1, f["table_name"] or "", f["row_index"], box[0], box[1])

    return sorted(rows, key=order)


def _next_page(store, current: Mapping[str, Any], *, unknown: bool = False) -> tuple[int, int] | None:
    """The page in review after ``current`` in the list's order (wrapping), or None.
    ``unknown``: the next unknown-form page nobody has dealt with yet, else a page in review."""
    if unknown:
        return _next_in_list(store, current, unknown_only=True) or _next_in_list(store, current)
    return _next_in_list(store, current)


def _next_in_list(store, current: Mapping[str, Any], *, unknown_only: bool = False) -> tuple[int, int] | None:
    wanted = "p.status = 'unknown_form' AND p.handled_at IS NULL" if unknown_only else "p.status = 'review'"
    rows = list(store.db.query(
        "SELECT p.document_id, p.page_index, d.received_at FROM pages p JOIN documents d ON d.id = p.document_id"
        f" WHERE ({wanted}) OR (p.document_id = ? AND p.page_index = ?)" + _PAGES_ORDER,
        [current["document_id"], current["page_index"]]))
    keys = [(r["document_id"], r["page_index"]) for r in rows]
    me = (current["document_id"], current["page_index"])
    if me not in keys:
        return keys[0] if keys else None
    i = keys.index(me)
    others = keys[i + 1:] + keys[:i]
    return others[0] if others else None


def _waiting_for(store, page: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(page index, open header fields) of the earlier pages of the same kind in the
    document with header boxes still open: a page takes a blank header box (注文番号 …)
    from the nearest earlier page that has it filled, so those hold its rows in review."""
    return [tuple(r) for r in store.db.execute(
        "SELECT f.page_index, count(*) FROM fields f JOIN pages p"
        " ON p.document_id = f.document_id AND p.page_index = f.page_index"
        " WHERE f.document_id = ? AND f.page_index < ? AND p.kind IS ? AND f.row_index IS NULL"
        " AND f.corrected_value IS NULL AND f.status = 'review' AND f.value_type != 'check'"
        " GROUP BY f.page_index ORDER BY f.page_index",
        [page["document_id"], page["page_index"], page["kind"]]).fetchall()]


def _handled_text(page: Mapping[str, Any]) -> str:
    text = HANDLED_JA.get(page["handled_reason"] or "", page["handled_reason"] or "")
    return f"{text}（{page['handled_note']}）" if page["handled_note"] else text


def _image_file(db_path: Path, stored: str | None) -> Path | None:
    """The page image named in the database (relative to the database's folder), if it
    is a PNG file that exists."""
    if not stored:
        return None
    path = Path(stored)
    if not path.is_absolute():
        path = Path(db_path).parent / path
    if path.suffix.lower() != ".png" or not path.is_file():
        return None
    return path


def _png_size(path: Path) -> tuple[int, int] | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


# ------------------------------------------------------------------------------- HTML --

def _clean_name(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]", "", urllib.parse.unquote(name or "")).strip()
    return name[:MAX_NAME]


def _when(ts: str | None) -> str:
    return (ts or "")[:16].replace("T", " ")


def field_label(f: Mapping[str, Any]) -> str:
    """The Japanese label of a field: 注文番号, 3行目 数量, ページ全体の確認."""
    if f["value_type"] == "check":
        return "ページ全体の確認"
    if f["row_index"] is not None:
        column = f["column_name"] or f["name"]
        return f"{f['row_index'] + 1}行目 {LABELS_JA.get(column, column)}"
    return LABELS_JA.get(f["name"], f["name"])


def _field_card(f: dict, n: int, token: str, *, named: bool, error: str | None, typed: str | None) -> str:
    fid = f["id"]
    reasons = "".join(f"<li>{_e(describe(r))}</li>" for r in f["reason_list"])
    disabled = "" if named else " disabled"
    err = f'<p class="error" role="alert">{_e(error)}</p>' if error else '<p class="error" role="alert"></p>'
    common = (f'<input type="hidden" name="token" value="{_e(token)}">')
    if f["value_type"] == "check":
        return (f'<section class="field check" id="f{fid}" data-field="{fid}"><div class="num">{n}</div>'
                f"<h3>{_e(field_label(f))}</h3>"
                f'<p class="question">このページには次の点があります。用紙を見て確認しましたか？</p>'
                f'<ul class="reasons">{reasons}</ul>'
                f'<form class="correct" method="post" action="/correct/{fid}">{common}'
                f'<input type="hidden" name="value" value="確認済み">'
                f'<button type="submit" class="confirm"{disabled}>確認</button>{err}</form></section>')
    conf = "—" if f["confidence"] is None else f"{f['confidence'] * 100:.0f}%"
    not_read = f["engine"] is None and "cell_not_read" in f["reason_list"]
    shown = f["value"] if f["value"] else ("（読み取りなし）" if not_read else "（空欄）")
    raw = f["raw_text"] if f["raw_text"] else "（なし）"
    value = f["value"] if typed is None else typed
    hint = TYPE_HINT_JA.get(f["value_type"], "")
    crop = (f'<img class="crop" src="/crop/{fid}" alt="{_e(field_label(f))} の読み取り範囲">'
            if f["box_list"] else "")
    return (f'<section class="field" id="f{fid}" data-field="{fid}"><div class="num">{n}</div>'
            f'<h3>{_e(field_label(f))} <small>{_e(f["name"])}</small></h3>{crop}'
            f'<dl><dt>読み取った値</dt><dd class="value">{_e(shown)}</dd>'
            f'<dt>OCRの文字</dt><dd class="raw">{_e(raw)}</dd>'
            f"<dt>確信度</dt><dd>{_e(conf)}</dd>"
            f'<dt>確認の理由</dt><dd><ul class="reasons">{reasons}</ul></dd></dl>'
            f'<form class="correct" method="post" action="/correct/{fid}">{common}'
            f'<label>正しい値 <small>（{_e(hint)}）</small>'
            f'<input type="text" name="value" value="{_e(value)}" autocomplete="off" spellcheck="false"{disabled}>'
            f'</label><button type="submit"{disabled}>この値で確定</button>{err}</form></section>')


def _name_bar(req: Request, token: str, back: str) -> str:
    name = req.reviewer
    form = (f'<form class="name" method="post" action="/name"><input type="hidden" name="token" value="{_e(token)}">'
            f'<input type="hidden" name="back" value="{_e(back)}">'
            f'<label>お名前 <input type="text" name="name" id="reviewer" value="{_e(name)}" maxlength="{MAX_NAME}"'
            f' autocomplete="name" required{"" if name else " autofocus"}></label>'
            f'<button type="submit">{"変更" if name else "保存"}</button></form>')
    who = f'<span class="who">確認者: <b>{_e(name)}</b></span>' if name else '<span class="who warn">確認者のお名前が未入力です</span>'
    return f'<header><a class="home" href="/">faxflow レビュー画面</a>{who}{form}</header>'


def _layout(title: str, body: str, *, script: bool = False) -> str:
    js = '<script src="/static/review.js" defer></script>' if script else ""
    return ('<!doctype html><html lang="ja"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{_e(title)} - faxflow</title><link rel="stylesheet" href="/static/review.css">{js}</head>'
            f"<body>{body}</body></html>")


def _error_page(*lines: str, raw_last: bool = False) -> str:
    items = [f"<p>{_e(x)}</p>" for x in (lines[:-1] if raw_last else lines)]
    if raw_last and lines:
        items.append(f"<p>{lines[-1]}</p>")  # a fixed link of ours, not user text
    return _layout("エラー", f'<header><a class="home" href="/">faxflow レビュー画面</a></header>'
                              f'<div class="errorpage">{"".join(items)}</div>')


_CSS = """
:root { --accent: #0b57d0; --warn: #b3261e; --line: #c8c8c8; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "Noto Sans CJK JP", "IPAGothic", "IPAexGothic", "Hiragino Sans", "Meiryo", "Yu Gothic",
       sans-serif; font-size: 17px; line-height: 1.5; color: #1d1d1d; background: #f6f6f3; }
header { display: flex; gap: 1.2em; align-items: center; flex-wrap: wrap; padding: .5em 1em;
         background: #1f3a5f; color: #fff; }
header a.home { color: #fff; font-weight: bold; text-decoration: none; font-size: 1.1em; }
header .who { margin-left: auto; }
header .who.warn { color: #ffd8d4; font-weight: bold; }
header form.name { display: flex; gap: .4em; align-items: center; }
header input { font-size: 1em; padding: .2em .4em; width: 9em; }
h1 { font-size: 1.4em; margin: .6em 1rem .2em; } h1 small { font-weight: normal; color: #555; }
h2 { font-size: 1.2em; margin: .4em 0; }
p.crumbs, p.meta, p.counts, p.empty, p.note { margin: .3em 1rem; }
.side p.note { margin: .3em 0 .8em; color: #444; font-size: .92em; }
.count { display: inline-block; margin-right: 1.2em; padding: .15em .6em; border-radius: 4px; background: #e8e8e4; }
.count.review { background: #fde7c6; } .count.unknown_form { background: #f3d9f7; } .count.ok { background: #d5f0d8; }
table.list { border-collapse: collapse; margin: .5em 1rem 1.5em; background: #fff; min-width: 60%; }
table.list th, table.list td { border: 1px solid var(--line); padding: .35em .7em; text-align: left; }
table.list th { background: #eceae4; } td.num { text-align: right; font-weight: bold; }
h2 + p.note, body > h2 { margin-left: 1rem; }
a.button, button { display: inline-block; font-size: 1em; padding: .35em 1em; border-radius: 5px; border: 1px solid var(--accent);
                   background: var(--accent); color: #fff; text-decoration: none; cursor: pointer; }
a.button.secondary { background: #fff; color: var(--accent); }
button:disabled, input:disabled { opacity: .45; cursor: not-allowed; }
.layout { display: grid; grid-template-columns: minmax(0, 11fr) minmax(0, 9fr); gap: 1em; padding: 0 1rem 2em; }
.pane { position: sticky; top: .5em; align-self: start; max-height: calc(100vh - 1em); overflow: auto;
        background: #fff; border: 1px solid var(--line); }
svg.pageimg { display: block; width: 100%; height: auto; }
svg.pageimg rect { fill: rgba(255, 170, 0, .18); stroke: #e8710a; stroke-width: 4; }
svg.pageimg text { fill: #c5221f; font-size: 38px; font-weight: bold; font-family: sans-serif; }
svg.pageimg g.current rect { fill: rgba(11, 87, 208, .18); stroke: var(--accent); stroke-width: 7; }
svg.pageimg g.current text { fill: var(--accent); }
section.field { position: relative; background: #fff; border: 1px solid var(--line); border-left: 6px solid #e8710a;
                border-radius: 4px; padding: .6em .9em .7em 3em; margin-bottom: .8em; }
section.field.current { border-left-color: var(--accent); box-shadow: 0 0 0 2px rgba(11, 87, 208, .25); }
section.field .num { position: absolute; left: .6em; top: .55em; font-weight: bold; font-size: 1.2em; color: #c5221f; }
section.field h3 { margin: 0 0 .3em; font-size: 1.1em; } section.field h3 small { color: #888; font-weight: normal; font-size: .75em; }
img.crop { display: block; max-width: 100%; min-height: 40px; border: 1px solid #999; margin: .2em 0 .4em; background: #fff; }
dl { display: grid; grid-template-columns: 7em 1fr; margin: .2em 0; gap: .1em .6em; }
dt { color: #555; } dd { margin: 0; } dd.value { font-weight: bold; font-size: 1.1em; } dd.raw { font-family: monospace; }
ul.reasons { margin: 0; padding-left: 1.2em; color: #8a1c14; }
form.correct label { display: block; margin-top: .4em; }
form.correct input[type=text] { display: block; width: 100%; font-size: 1.25em; padding: .25em .4em; margin: .2em 0 .4em;
                                border: 2px solid #888; border-radius: 4px; }
form.correct input[type=text]:focus { border-color: var(--accent); outline: none; }
p.error { color: var(--warn); font-weight: bold; margin: .3em 0 0; } p.error:empty { display: none; }
p.warn, .warn { color: var(--warn); font-weight: bold; }
p.question { margin: .2em 0; font-weight: bold; }
.done { background: #d5f0d8; border: 1px solid #7cc084; border-radius: 6px; padding: 1em 1.2em; }
.done h2 { color: #146c2e; font-size: 1.6em; margin: 0 0 .3em; }
.notice { background: #f3d9f7; border: 1px solid #b07cc0; border-radius: 6px; padding: 1em 1.2em; }
.noimage, .errorpage { margin: 1em; } .errorpage p { font-size: 1.1em; }
.layout.landscape { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
.zoombar { position: sticky; top: 0; left: 0; z-index: 1; display: flex; gap: .4em; align-items: center;
           padding: .3em .5em; background: rgba(246, 246, 243, .95); border-bottom: 1px solid var(--line); }
.zoombar button { padding: .1em .7em; font-size: 1.1em; } .zoombar button.secondary { background: #fff; color: var(--accent); }
.zoombar[hidden] { display: none; }
.zoombar small { color: #666; } #zoomlevel { min-width: 3.5em; text-align: center; font-weight: bold; }
svg.pageimg { cursor: zoom-in; max-width: none; } .pane.zoomed svg.pageimg { cursor: zoom-out; }
svg.pageimg g.box { cursor: pointer; }
.notice.waiting { background: #fde7c6; border-color: #d9a55b; } ul.links { list-style: none; padding: 0; }
ul.links li { margin: .4em 0; }
form.handle label.choice { display: block; margin: .35em 0; } form.handle label.memo { display: block; margin: .6em 0; }
form.handle input[type=text] { display: block; width: 100%; font-size: 1.05em; padding: .2em .4em; }
p.handled { background: #fff; border-radius: 4px; padding: .5em .8em; }
.count.handled { background: #ece4ef; } span.waiting { font-weight: normal; color: #8a5a00; }
details.handled { margin: 0 1rem 1.5em; } details.handled summary { cursor: pointer; color: #444; }
details.handled table.list { margin-left: 0; }
@media (max-width: 900px) { .layout { grid-template-columns: 1fr; } .pane { position: static; max-height: none; } }
"""

_JS = r"""
"use strict";
(function () {
  const cards = () => Array.from(document.querySelectorAll("section.field"));
  function mark(card) {
    document.querySelectorAll(".current").forEach(e => e.classList.remove("current"));
    if (!card) return;
    card.classList.add("current");
    const box = document.querySelector('g.box[data-box="' + card.dataset.field + '"]');
    if (box) {
      box.classList.add("current");
      const b = box.getBBox();
      show(b.x + b.width / 2, b.y, true);
    }
  }
  // The page image: zoom 1 = the width of its pane; the pane scrolls to the current box.
  const pane = document.querySelector(".pane"), svg = pane && pane.querySelector("svg.pageimg");
  const bar = document.querySelector(".zoombar");
  const levels = svg ? svg.dataset.levels.split(",").map(Number) : [1];
  const landscape = svg && svg.viewBox.baseVal.width > svg.viewBox.baseVal.height;
  const key = "faxflow.zoom." + (landscape ? "landscape" : "portrait");
  let level = 1;
  function show(x, y, smooth) {  // a point of the page (template pixels) into view
    if (!pane || !svg || !svg.viewBox.baseVal.width) return;
    const k = svg.clientWidth / svg.viewBox.baseVal.width;
    pane.scrollTo({ left: Math.max(0, x * k - pane.clientWidth / 2), top: Math.max(0, y * k - pane.clientHeight / 3),
                    behavior: smooth ? "smooth" : "auto" });
  }
  function zoom(z, x, y) {
    if (!svg) return;
    level = Math.min(levels[levels.length - 1], Math.max(levels[0], z));
    svg.style.width = (level * 100) + "%";
    pane.classList.toggle("zoomed", level > levels[0]);
    document.getElementById("zoomlevel").textContent = Math.round(level * 100) + "%";
    bar.querySelector('[data-zoom="out"]').disabled = level <= levels[0];
    bar.querySelector('[data-zoom="in"]').disabled = level >= levels[levels.length - 1];
    try { localStorage.setItem(key, String(level)); } catch (e) { /* private mode: not kept */ }
    if (x !== undefined) { show(x, y, false); return; }
    const current = document.querySelector("g.box.current");
    if (current) { const b = current.getBBox(); show(b.x + b.width / 2, b.y, false); }
  }
  function step(d) {
    const i = levels.findIndex(v => v >= level);
    zoom(levels[Math.min(levels.length - 1, Math.max(0, (i < 0 ? levels.length - 1 : i) + d))]);
  }
  if (svg && bar) {
    bar.hidden = false;
    // the zoom buttons and the image never take the focus from the value being typed
    bar.addEventListener("mousedown", ev => ev.preventDefault());
    svg.addEventListener("mousedown", ev => ev.preventDefault());
    bar.querySelectorAll("button").forEach(b => b.addEventListener("click", () => {
      const what = b.dataset.zoom;
      if (what === "fit") zoom(levels[0]); else step(what === "in" ? 1 : -1);
    }));
    svg.addEventListener("click", ev => {
      if (ev.target.closest("g.box")) return;  // a box: its field (below)
      const r = svg.getBoundingClientRect(), vb = svg.viewBox.baseVal;
      const x = (ev.clientX - r.left) / r.width * vb.width, y = (ev.clientY - r.top) / r.height * vb.height;
      zoom(level > levels[0] ? levels[0] : 2, x, y);
    });
    let saved = 1;
    try { saved = Number(localStorage.getItem(key)) || 1; } catch (e) { /* not kept */ }
    zoom(saved);
  }
  function focusCard(card) {
    if (!card) return;
    const el = card.querySelector("input[type=text], button");
    if (el && !el.disabled) { el.focus(); if (el.select) el.select(); }
    mark(card);
    card.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("focusin", ev => {
    const card = ev.target.closest && ev.target.closest("section.field");
    if (card) mark(card);
  });
  document.querySelectorAll("g.box").forEach(g => g.addEventListener("click", () => {
    focusCard(document.getElementById("f" + g.dataset.box));
  }));
  document.querySelectorAll("form.correct").forEach(form => form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const card = form.closest("section.field"), err = form.querySelector(".error");
    const buttons = form.querySelectorAll("button");
    buttons.forEach(b => b.disabled = true);
    err.textContent = "";
    let data;
    try {
      const r = await fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)),
                                           headers: { "Accept": "application/json" }, credentials: "same-origin" });
      data = await r.json();
    } catch (e) {
      data = { ok: false, error: "保存できませんでした。サーバー（faxflow review）が動いているか確認してください。" };
    }
    buttons.forEach(b => b.disabled = false);
    if (!data.ok) {
      err.textContent = data.error;
      const input = form.querySelector("input[type=text]");
      if (input) { input.focus(); input.select(); }
      return;
    }
    const all = cards(), i = all.indexOf(card);
    const next = all.slice(i + 1).concat(all.slice(0, i))[0];
    card.remove();
    document.querySelectorAll('g.box[data-box="' + card.dataset.field + '"]').forEach(g => g.remove());
    const left = document.getElementById("remaining");
    if (left) left.textContent = String(data.remaining);
    if (!data.remaining && !data.page_done) { window.location.reload(); return; }  // waits for another page
    if (!data.remaining || !next) {
      const done = document.getElementById("done");
      document.querySelectorAll(".side > h2, .side > p.note").forEach(e => e.hidden = true);
      if (done) { done.hidden = false; const link = document.getElementById("next"); if (link) link.focus(); }
      return;
    }
    focusCard(next);
  }));
  const name = document.getElementById("reviewer");
  if (name && !name.value) { name.focus(); return; }
  focusCard(cards()[0]);
})();
"""


# ---------------------------------------------------------------------------- handler --

class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "faxflow-review"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._run("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._run("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._run("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._run("DELETE")

    def _run(self, method: str) -> None:
        try:
            split = urllib.parse.urlsplit(self.path)
            form: dict[str, str] = {}
            if method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(Response(413, "送信された内容が大きすぎます".encode(), "text/plain; charset=utf-8"))
                    return
                raw = self.rfile.read(length).decode("utf-8", "replace") if length > 0 else ""
                form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
            cookies = {}
            for part in (self.headers.get("Cookie") or "").split(";"):
                k, _, v = part.strip().partition("=")
                if k:
                    cookies[k] = v
            req = Request(method, split.path, self.headers, form, cookies)
            response = self.server.app.handle(req)
        except Exception:  # one bad request must not stop the server
            log.exception("review: %s %s failed", method, self.path)
            response = _html(_error_page("予期しないエラーが起きました。", "担当者に連絡してください（ログに記録しました）。"), 500)
        self._send(response)

    def _send(self, r: Response) -> None:
        self.send_response(r.status)
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                         "frame-ancestors 'none'; form-action 'self'")
        if r.content_type.startswith(("text/html", "application/json")):
            self.send_header("Cache-Control", "no-store")
        for k, v in r.headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(r.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        log.debug("review: %s - %s", self.address_string(), format % args)


__all__ = ["LABELS_JA", "ReviewApp", "ReviewServer", "field_label", "open_review_server", "template_titles"]
