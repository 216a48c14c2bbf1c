"""A first draft of a template from the blank form: ``faxflow templates new``.

Measuring every box of a new customer's order sheet by hand is where templates go
wrong. This finds what the ruling of the blank form says and writes it as a YAML draft
for the IT helper to check (``faxflow templates preview``) and complete:

1. The ruling (``templates.match.line_masks``) cuts the page into *cells*: white
   regions enclosed by lines, nearly rectangular.
2. Each cell's printed label is read (Tesseract, jpn) and looked up in a small
   dictionary of the words Japanese order sheets and ledgers use (品番, 数量, 単価,
   納期, 注文日...).
3. The table: the row of cells whose labels name columns, and the cells below them in
   the same columns (their count and pitch give ``rows``). A column whose title is not
   in the dictionary becomes ``colN`` with the label it read in a comment.
4. Header fields: a label cell (注文番号, 注文日, 御社名, 合計...) and the empty cell to
   its right, which is the box.
5. Match keywords: the form's title (注文書, 発注書...) and the company name printed on it.

Nothing here is trusted blindly: the draft says what it found and what it guessed, and
``faxflow templates check`` / ``preview`` are the next steps.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from faxflow.ocr.engines.tesseract import at_height
from faxflow.templates.match import ink_mask, line_masks, to_gray

Box = tuple[int, int, int, int]

# (name, type, extra YAML keys, label words); the first entry whose word is in the label wins
COLUMN_WORDS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("part_no", "part_number", "", ("品番", "部品番号", "品目番号", "品目コード", "部品コード", "型番", "品番号",
                                   "コード", "図番")),
    ("description", "text", "", ("品名", "品目", "名称", "規格", "仕様", "摘要", "内容")),
    ("unit_price", "money", "", ("単価",)),
    ("amount", "money", "", ("金額", "小計")),
    ("quantity", "quantity", ", hint: auto, min: 1", ("数量", "個数", "発注数", "注文数", "入数")),
    ("unit", "text", ", allowed: [個, 本, 枚, 箱, 式, 台, 組, 袋, 巻, 缶, kg, m]", ("単位",)),
    ("due_date", "date", ", hint: auto", ("納期", "納入日", "納品日", "納入期日", "希望日")),
    ("in_qty", "quantity", ", hint: auto", ("入庫", "受入")),
    ("out_qty", "quantity", ", hint: auto", ("出庫", "払出")),
    ("balance", "quantity", ", hint: auto", ("残高", "在庫", "残数")),
    ("staff", "text", "", ("担当", "確認")),
    ("date", "date", ", hint: auto", ("日付", "月日", "年月日")),
    ("note", "text", "", ("備考", "メモ", "摘要")),
]
ROW_NUMBER_WORDS = ("no", "番号", "#", "行")  # the printed row number column: not read
HEADER_WORDS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("order_no", "part_number", ", required: true", ("注文番号", "注文no", "注文書no", "発注番号", "発注no",
                                                     "発注書no", "注文書番号", "伝票番号", "伝票no")),
    ("order_date", "date", ", required: true", ("注文日", "発注日", "発行日", "注文年月日", "発注年月日", "日付")),
    ("buyer", "text", "", ("御社名", "発注者", "注文者", "発注元", "会社名", "貴社名")),
    ("total", "money", "", ("合計", "総額", "総合計")),
    ("due_date", "date", ", hint: auto", ("納期", "納入日", "希望納期")),
    ("delivery_place", "text", "", ("納入場所", "納品場所", "納入先", "送り先")),
    ("year", "integer", ", hint: auto, min: 2000, max: 2099", ("年度", "年")),
    ("part_no", "part_number", "", ("品番", "部品番号", "型番")),  # a ledger page kept per part
    ("description", "text", "", ("品名", "名称")),
]
TITLE_WORDS = ("注文書", "発注書", "注文票", "発注票", "注文伝票", "入出庫台帳", "受払台帳", "在庫台帳", "台帳",
               "納品書", "見積依頼書")
LEDGER_COLUMNS = {"in_qty", "out_qty", "balance"}


@dataclass
class Cell:
    box: Box
    label: str = ""


@dataclass
class Draft:
    """What was found on the blank form (pixel boxes in the reference image)."""

    kind: str = "order"
    title: str = ""
    keywords: list[str] = field(default_factory=list)
    header: list[tuple[str, str, str, Box, str]] = field(default_factory=list)  # name, type, extra, box, label
    table_box: Box | None = None
    pitch: int = 0
    rows: int = 0
    columns: list[tuple[str, str, str, tuple[int, int], str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", s or "").lower()
    s = re.sub(r"[\s.．・:：()（）\[\]「」]", "", s)
    return s


def _lookup(label: str, table) -> tuple[str, str, str] | None:
    n = _norm(label)
    if not n:
        return None
    for name, type_, extra, words in table:
        if any(_norm(w) in n for w in words):
            return name, type_, extra
    return None


def find_cells(gray: np.ndarray, dpi: float) -> list[Cell]:
    """White regions enclosed by ruling, nearly rectangular, bigger than a few mm."""
    ink = ink_mask(to_gray(gray))
    min_len = max(20, int(round(dpi * 0.15)))  # 3.8 mm
    h, v = line_masks(ink, min_len)
    lines = cv2.dilate((h | v).astype(np.uint8), np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats((lines == 0).astype(np.uint8), connectivity=4)
    H, W = gray.shape[:2]
    min_w, min_h = int(dpi * 0.12), int(dpi * 0.1)
    cells = []
    for k in range(1, n):
        x, y, w, hh, area = stats[k]
        if x == 0 or y == 0 or x + w >= W or y + hh >= H:
            continue  # the paper around the form
        if w < min_w or hh < min_h or w > 0.95 * W or hh > 0.5 * H:
            continue
        if area < 0.85 * w * hh:
            continue  # not a rectangle (text between lines, a ragged region)
        cells.append(Cell((int(x), int(y), int(x + w), int(y + hh))))
    return cells


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> float:
    return max(0, min(a[1], b[1]) - max(a[0], b[0])) / max(1, min(a[1] - a[0], b[1] - b[0]))


def build_draft(gray: np.ndarray, dpi: float, read_text: Callable[[np.ndarray], str]) -> Draft:
    gray = to_gray(gray)
    draft = Draft()
    cells = find_cells(gray, dpi)
    ink = ink_mask(gray)
    pad = max(2, int(dpi * 0.015))
    for c in cells:
        x0, y0, x1, y1 = c.box
        c.label = _read_box(ink, (x0 + pad, y0 + pad, x1 - pad, y1 - pad), read_text)
    if not cells:
        draft.notes.append("no ruled cells found: draw the boxes by hand (see docs/templates.md)")
    _find_table(cells, draft, dpi)
    _find_header(cells, draft, ink, read_text)
    _find_keywords(gray, cells, draft, read_text)
    if {c[0] for c in draft.columns} & LEDGER_COLUMNS:
        draft.kind = "ledger"
    return draft


def _find_table(cells: list[Cell], draft: Draft, dpi: float) -> None:
    # rows of cells: cells whose vertical extents overlap strongly
    best = None
    for c in cells:
        if _lookup(c.label, COLUMN_WORDS) is None:
            continue
        row = [d for d in cells if _overlap((c.box[1], c.box[3]), (d.box[1], d.box[3])) > 0.8
               and abs((d.box[3] - d.box[1]) - (c.box[3] - c.box[1])) < 0.3 * (c.box[3] - c.box[1])]
        named = [d for d in row if _lookup(d.label, COLUMN_WORDS) is not None]
        if best is None or len(named) > best[0]:
            best = (len(named), sorted(row, key=lambda d: d.box[0]))
    if best is None or best[0] < 2:
        draft.notes.append("no table found (no row of column titles such as 品番 / 数量 / 単価)")
        return
    heads = best[1]
    top = max(d.box[3] for d in heads)
    used: set[str] = set()
    body_rows: list[list[Cell]] = []
    cols = []
    for i, hcell in enumerate(heads):
        label_n = _norm(hcell.label)
        below = sorted((d for d in cells if d.box[1] >= top - 2 and _overlap((hcell.box[0], hcell.box[2]),
                                                                              (d.box[0], d.box[2])) > 0.8
                        and abs((d.box[2] - d.box[0]) - (hcell.box[2] - hcell.box[0])) < 0.25 * (hcell.box[2] - hcell.box[0])),
                       key=lambda d: d.box[1])
        # stop at the first gap: the cells of the table are stacked without one
        run = []
        for d in below:
            if run and d.box[1] - run[-1].box[3] > 0.5 * (d.box[3] - d.box[1]):
                break
            run.append(d)
        body_rows.append(run)
        if label_n and any(label_n.startswith(_norm(w)) for w in ROW_NUMBER_WORDS) and len(label_n) <= 3:
            continue
        hit = _lookup(hcell.label, COLUMN_WORDS)
        if hit is None or hit[0] in used:
            name, type_, extra = f"col{i + 1}", "text", ""
        else:
            name, type_, extra = hit
        used.add(name)
        cols.append((name, type_, extra, (hcell.box[0], hcell.box[2]), hcell.label))
    counts = [len(r) for r in body_rows if r]
    if not counts or max(counts) < 1:
        draft.notes.append("column titles found but no rows below them")
        return
    n_rows = int(np.median(counts))
    ref = max(body_rows, key=len)[:n_rows]
    heights = [d.box[3] - d.box[1] for d in ref]
    pitch = int(round(float(np.median(np.diff([d.box[1] for d in ref]))))) if len(ref) > 1 else heights[0]
    x0 = min(c[3][0] for c in cols) if cols else heads[0].box[0]
    x1 = max(c[3][1] for c in cols) if cols else heads[-1].box[2]
    y0 = min(d.box[1] for d in ref)
    draft.table_box = (int(x0), int(y0), int(x1), int(y0 + pitch * n_rows))
    draft.pitch, draft.rows, draft.columns = pitch, n_rows, cols


def _read_box(ink: np.ndarray, box: Box, read_text) -> str:
    """The printed text inside ``box`` (trimmed to its ink, scaled to 32-px text)."""
    x0, y0, x1, y1 = box
    sub = ink[max(0, y0):y1, max(0, x0):x1]
    if sub.size == 0 or np.count_nonzero(sub) < 0.002 * sub.size:
        return ""
    ys, xs = np.nonzero(sub)
    img = np.where(sub[ys.min():ys.max() + 1, xs.min():xs.max() + 1], 0, 255).astype(np.uint8)
    return read_text(at_height(cv2.copyMakeBorder(img, 8, 8, 8, 8, cv2.BORDER_CONSTANT, value=255), 32,
                               blur=3)).strip()


def _find_header(cells: list[Cell], draft: Draft, ink: np.ndarray, read_text) -> None:
    tb = draft.table_box
    used_boxes: set[Box] = set()
    for c in sorted(cells, key=lambda c: (c.box[1], c.box[0])):
        if tb is not None and c.box[1] >= tb[1] - 2 and c.box[3] <= tb[3] + 2 and c.box[0] >= tb[0] - 2 \
                and c.box[2] <= tb[2] + 2:
            continue  # inside the table
        hit = _lookup(c.label, HEADER_WORDS)
        if hit is None or hit[0] in {h[0] for h in draft.header}:
            continue
        right = [d for d in cells if d.box[0] >= c.box[2] - 4 and d.box[0] - c.box[2] < 0.5 * (c.box[2] - c.box[0]) + 20
                 and _overlap((c.box[1], c.box[3]), (d.box[1], d.box[3])) > 0.6 and not d.label]
        if not right:
            continue
        value = min(right, key=lambda d: d.box[0])
        draft.header.append((*hit, value.box, c.label))
        used_boxes.add(value.box)
    # boxes with their label printed just above them (注文番号 over an empty box)
    for c in sorted(cells, key=lambda c: (c.box[1], c.box[0])):
        if c.label or c.box in used_boxes or (tb is not None and c.box[1] >= tb[1] - 2):
            continue
        h = c.box[3] - c.box[1]
        label = _read_box(ink, (c.box[0], c.box[1] - int(0.9 * h), c.box[2], c.box[1] - 3), read_text)
        hit = _lookup(label, HEADER_WORDS)
        if hit is None:  # a unit printed after the box: [    ] 年度
            right = (c.box[2] + 3, c.box[1], c.box[2] + int(1.3 * h), c.box[3])
            if not any(_overlap((right[0], right[2]), (d.box[0], d.box[2])) > 0.3
                       and _overlap((right[1], right[3]), (d.box[1], d.box[3])) > 0.5 for d in cells):
                label = _read_box(ink, right, read_text)
                hit = _lookup(label, [w for w in HEADER_WORDS if w[0] == "year"])  # only a year reads so
        if hit is None or hit[0] in {x[0] for x in draft.header}:
            continue
        draft.header.append((*hit, c.box, label))


def _find_keywords(gray: np.ndarray, cells: list[Cell], draft: Draft, read_text, band: float = 0.15) -> None:
    H, W = gray.shape[:2]
    band_h = int(band * H)
    top = gray[:band_h].copy()
    for c in cells:  # the header band without its cells
        x0, y0, x1, y1 = c.box
        if y0 < band_h:
            top[max(0, y0 - 4):min(band_h, y1 + 4), max(0, x0 - 4):x1 + 4] = 255
    page = np.where(ink_mask(top), 0, 255).astype(np.uint8)
    # titles are big: read the band as it is and at half size
    text = read_text(page) + "\n" + read_text(cv2.resize(page, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    flat = _norm(text)
    for w in TITLE_WORDS:
        if w in flat:
            draft.title, draft.keywords = w, [w]
            break
    plain = unicodedata.normalize("NFKC", text).replace(" ", "")
    for w in TITLE_WORDS:
        plain = plain.replace(w, "\n")
    m = (re.search(r"(?:株式会社|有限会社|\(株\)|\(有\))([^\s株有()]{2,8})", plain)
         or re.search(r"([^\s()]{2,8})(?:株式会社|有限会社|\(株\)|\(有\))", plain))
    if m:
        company = re.split(r"製作所|工業|精機|電機|産業|商事|化成|金属|鉄工", m.group(1))[0] or m.group(1)
        draft.keywords.append(company[:4])
        draft.title = (m.group(0) + " " + draft.title).strip()
    if len(draft.keywords) == 1 and draft.keywords[0] in TITLE_WORDS and band >= 0.3:
        draft.notes.append("only the title was read as a keyword: add the company name to match.keywords")
    if not draft.keywords and band < 0.3:
        _find_keywords(gray, cells, draft, read_text, band=0.3)
    elif not draft.keywords:
        draft.notes.append("no title or company name read: write match.keywords by hand")


def to_yaml(draft: Draft, name: str, image_name: str, dpi: float, source: str) -> str:
    """The draft as a commented template file."""
    q = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731 - YAML single-quoted scalar
    out = [f"# {name}.yaml: a DRAFT made by `faxflow templates new` from {source}.",
           "# Check every box: faxflow templates preview " + name + " (and --scan a_real_fax.tif);",
           "# then set patterns (part numbers), hints (handwritten columns: auto) and required fields.",
           f"name: {name}",
           f"title: {q(draft.title or name)}",
           f"kind: {draft.kind}",
           "reference:",
           f"  image: {image_name}",
           f"  dpi: {int(round(dpi))}",
           "match:",
           "  keywords: [" + ", ".join(draft.keywords) + "]" + ("" if draft.keywords else "   # TODO: printed words")]
    if draft.header:
        out.append("fields:")
        for hname, type_, extra, (x0, y0, x1, y1), label in draft.header:
            todo = "; TODO pattern, e.g. '^\\d{6}$'" if type_ == "part_number" else ""
            out.append(f"  {hname + ':':11s} {{box: [{x0}, {y0}, {x1}, {y1}], type: {type_}{extra}}}"
                       f"   # label: {label}{todo}")
    if draft.table_box is not None:
        x0, y0, x1, y1 = draft.table_box
        name_key = "entries" if draft.kind == "ledger" else "lines"
        out += ["tables:", f"  {name_key}:", f"    box: [{x0}, {y0}, {x1}, {y1}]"]
        if draft.kind == "ledger":  # photographed, often curved pages: rows follow the lines
            out.append(f"    rows: {{from: ruling, pitch: {draft.pitch}, count: {draft.rows}}}   # as on the blank form")
        else:
            out.append(f"    rows: {{pitch: {draft.pitch}, count: {draft.rows}}}")
        key = next((c[0] for c in draft.columns if c[0] in ("part_no", "date", "description")), None)
        if key:
            out.append(f"    key: {key}")
        out.append("    columns:")
        for cname, type_, extra, (cx0, cx1), label in draft.columns:
            todo = "; TODO pattern: what a code looks like, e.g. '^[A-Z]{2}-\\d{4}$'" if type_ == "part_number" else ""
            out.append(f"      {cname + ':':12s} {{x: [{cx0}, {cx1}], type: {type_}{extra}}}   # title: {label}{todo}")
    checks = []
    names = {c[0] for c in draft.columns}
    if {"quantity", "unit_price", "amount"} <= names:
        checks.append("amount")
    if "due_date" in names and "order_date" in {h[0] for h in draft.header}:
        checks.append("due_date")
    if "amount" in names and "total" in {h[0] for h in draft.header}:
        checks.append("total")
    if {"in_qty", "out_qty", "balance"} <= names:
        checks.append("balance")
    if checks:
        out.append("checks: [" + ", ".join(checks) + "]")
    if draft.kind == "ledger" and "year" in {h[0] for h in draft.header}:
        out.append("year_from: year")
    for note in draft.notes:
        out.append(f"# NOTE: {note}")
    return "\n".join(out) + "\n"
