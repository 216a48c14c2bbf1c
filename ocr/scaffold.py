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

UNITS = ("個", "本", "枚", "箱", "式", "台", "組", "袋", "巻", "缶", "kg", "m")
UNIT_ALLOWED = ", allowed: [" + ", ".join(UNITS) + "]"
# (name, type, extra YAML keys, label words); the first entry whose word is in the label wins
COLUMN_WORDS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("part_no", "part_number", "", ("品番", "部品番号", "品目番号", "品目コード", "部品コード", "型番", "品番号",
                                   "コード", "図番", "型式", "商品番号", "partno", "itemno")),
    ("description", "text", "", ("品名", "品目", "名称", "規格", "仕様", "摘要", "内容", "件名", "description",
                                 "item")),
    ("unit_price", "money", "", ("単価", "unitprice", "price")),
    ("amount", "money", "", ("金額", "小計", "合計", "amount")),
    ("quantity", "quantity", ", hint: auto, min: 1", ("数量", "個数", "発注数", "注文数", "入数", "qty", "quantity")),
    ("unit", "text", UNIT_ALLOWED, ("単位", "unit")),
    ("due_date", "date", ", hint: auto", ("納期", "納入日", "納品日", "納入期日", "希望日", "納入期限", "お届け日",
                                         "duedate", "delivery")),
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
                                                     "発注書no", "注文書番号", "伝票番号", "伝票no", "受注番号",
                                                     "オーダーno", "orderno", "pono")),
    ("order_date", "date", ", required: true", ("注文日", "発注日", "発行日", "注文年月日", "発注年月日", "日付",
                                                "orderdate")),
    ("buyer", "text", "", ("御社名", "発注者", "注文者", "発注元", "会社名", "貴社名", "得意先", "お客様名", "依頼主",
                           "customer")),
    ("total", "money", "", ("合計", "総額", "総合計", "総計", "total")),
    ("due_date", "date", ", hint: auto", ("納期", "納入日", "希望納期", "納品日", "納入期限", "お届け日")),
    ("delivery_place", "text", "", ("納入場所", "納品場所", "納入先", "送り先")),
    ("year", "integer", ", hint: auto, min: 2000, max: 2099", ("年度", "年")),
    ("part_no", "part_number", "", ("品番", "部品番号", "型番")),  # a ledger page kept per part
    ("description", "text", "", ("品名", "名称")),
]
TITLE_WORDS = ("注文書", "発注書", "注文票", "発注票", "注文伝票", "発注伝票", "注文明細書", "発注明細書",
               "入出庫台帳", "受払台帳", "在庫台帳", "台帳", "納品書", "見積依頼書")
LEDGER_COLUMNS = {"in_qty", "out_qty", "balance"}
COMPANY = r"株式会社|有限会社|\(株\)|\(有\)"


def _column(name: str) -> tuple[str, str, str]:
    """(name, type, extra YAML keys) of the column ``name`` as COLUMN_WORDS drafts it."""
    return next(e[:3] for e in COLUMN_WORDS if e[0] == name)


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
    runs: list[list[Cell]] = field(default_factory=list)  # each column's body cells
    notes: list[str] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)  # header field -> the value read in its box


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", s or "").lower()
    s = re.sub(r"[\s.．・:：()（）\[\]「」]", "", s)
    return s


def _lookup(label: str, table, *, near: bool = False, pairs: bool = False) -> tuple[str, str, str] | None:
    """The entry whose word is in the label; with ``near``, when none is, the entry whose
    word shares most of its characters, in order, with a label of about its length: OCR
    misreads one character of a printed title (希望納其 for 希望納期, 納和人日 for 納入日);
    with ``pairs`` also a two-character word one character off, when it is the only one."""
    n = _norm(label)
    if not n or sum(ch.isdigit() for ch in n) >= 3:
        return None  # nothing, or a value (2025年5月28日 is no label for a year)
    for name, type_, extra, words in table:
        if any(_norm(w) in n for w in words):
            return name, type_, extra
    if not near:
        return None
    best, best_score = None, 0.0
    for name, type_, extra, words in table:
        for w in map(_norm, words):
            if len(w) < 3 or len(n) > len(w) + 2:
                continue
            common = _common(n, w)
            score = common / len(w)
            if common >= 2 and score >= 0.66 and score > best_score:
                best, best_score = (name, type_, extra), score
    if best is None and pairs and len(n) == 2:  # a two-character title one character off (最位):
        # taken only when no other word of two shares that character (単休: 単価 or 単位?)
        hits = {(name, type_, extra) for name, type_, extra, words in table for w in map(_norm, words)
                if len(w) == 2 and (n[0] == w[0]) != (n[1] == w[1])}
        if len(hits) == 1:
            best = hits.pop()
    return best


def _common(a: str, b: str) -> int:
    """Length of the longest common subsequence of a and b."""
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if ca == cb else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def find_cells(gray: np.ndarray, dpi: float) -> list[Cell]:
    """White regions enclosed by ruling, nearly rectangular, bigger than a few mm."""
    ink = ink_mask(to_gray(gray))
    min_len = max(20, int(round(dpi * 0.15)))  # 3.8 mm
    h, v = line_masks(ink, min_len)
    h, v = _ruled(h, v, dpi), _ruled(v, h, dpi)
    bh, bv = _broken_ruling(ink, dpi)
    # joined pieces that are no border (strokes of a bold title at one height) meet no
    # ruling; 20 mm and longer they are kept anyway
    h, v = h | _ruled(bh, v | bv, dpi, 0.8), v | _ruled(bv, h | bh, dpi, 0.8)
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
        if area < 0.85 * w * hh and _outline_area(labels[y:y + hh, x:x + w] == k) < 0.85 * w * hh:
            continue  # not a rectangle (text between lines, a ragged region)
        cells.append(Cell((int(x), int(y), int(x + w), int(y + hh))))
    return cells


def _ruled(lines: np.ndarray, across: np.ndarray, dpi: float, long_in: float = 0.4) -> np.ndarray:
    """The pieces of ``lines`` that are ruling: ``long_in`` inches (10 mm) or longer, or
    meeting a line of ``across`` at an end (a short cell border; a FAX may have lost its
    other corner). A bold value's strokes (旭産業, dithered) make short runs of ink as long
    as a border, but they meet no ruling."""
    long_ = int(round(dpi * long_in))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(lines.astype(np.uint8), connectivity=8)
    if n <= 1:
        return lines
    near = cv2.dilate(across.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    keep = np.zeros(n, bool)
    for k in range(1, n):
        x, y, w, hh, _a = stats[k]
        if max(w, hh) >= long_:
            keep[k] = True
            continue
        part = labels[y:y + hh, x:x + w] == k
        ys, xs = np.nonzero(part)
        if w >= hh:  # a horizontal piece: its leftmost and rightmost pixels
            ends = [(ys[xs.argmin()], xs.min()), (ys[xs.argmax()], xs.max())]
        else:
            ends = [(ys.min(), xs[ys.argmin()]), (ys.max(), xs[ys.argmax()])]
        keep[k] = any(near[y + ey, x + ex] for ey, ex in ends)
    return keep[labels] & lines


def _outline_area(mask: np.ndarray) -> float:
    """Area inside a region's outer outline: a cell's white region with the print of a
    filled-in value (holes in it) counted whole."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return max((cv2.contourArea(c) for c in contours), default=0.0)


def _broken_ruling(ink: np.ndarray, dpi: float) -> tuple[np.ndarray, np.ndarray]:
    """Ruling a FAX broke into dashes (a thresholded or dithered light line), horizontal
    and vertical: pieces of line at least 1.5 mm long joined across gaps of up to 7.5 mm
    (4 mm down: a column's numbers, right-aligned row under row, are ~4 mm apart),
    kept where the joined line is at least 10 mm long, no thicker than a line and mostly
    ink (60%: strokes of a line of text at one height, joined, are mostly gaps)."""
    piece, gap = max(5, int(round(dpi * 0.06))), max(3, int(round(dpi * 0.3)))
    vgap = max(3, int(round(dpi * 0.15)))  # numbers right-aligned row under row stack their strokes
    long_, thick = int(round(dpi * 0.4)), max(3, int(round(dpi * 0.03)))
    h, v = line_masks(ink, piece)
    out = []
    for mask, kernel, along in ((h, (1, gap), 2), (v, (vgap, 1), 3)):
        joined = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones(kernel, np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        across = 3 if along == 2 else 2
        keep = np.zeros(n, bool)
        keep[1:] = (stats[1:, along] >= long_) & (stats[1:, across] <= thick + 0.02 * stats[1:, along])
        if keep.any():  # how much of each joined line is ink along its length
            axis = 0 if along == 2 else 1
            for k in np.flatnonzero(keep):
                x, y, w, hh, _a = stats[k]
                covered = (mask[y:y + hh, x:x + w] & (labels[y:y + hh, x:x + w] == k)).any(axis=axis)
                keep[k] = covered.mean() >= 0.6
        out.append(keep[labels])
    return out[0], out[1]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> float:
    return max(0, min(a[1], b[1]) - max(a[0], b[0])) / max(1, min(a[1] - a[0], b[1] - b[0]))


def build_draft(gray: np.ndarray, dpi: float, read_text: Callable[[np.ndarray], str],
                read_more: tuple[Callable[[np.ndarray], str], ...] = (),
                read_code: Callable[[np.ndarray], str] | None = None) -> Draft:
    """``read_text`` reads printed Japanese (Tesseract); ``read_more`` are other readers
    tried on a label ``read_text`` misreads (PP-OCR's line reader); ``read_code`` reads a
    code (part numbers on a filled form, for their pattern)."""
    gray = to_gray(gray)
    draft = Draft()
    cells = find_cells(gray, dpi)
    ink = ink_mask(gray)
    pad = max(2, int(dpi * 0.015))
    for c in cells:
        x0, y0, x1, y1 = c.box
        c.label = _read_label(ink, (x0 + pad, y0 + pad, x1 - pad, y1 - pad), read_text, read_more)
    if not cells:
        draft.notes.append("no ruled cells found: draw the boxes by hand (see docs/templates.md)")
    reread = None
    if read_code is not None:
        codes: dict[Box, str] = {}

        def reread(c: Cell) -> str:  # a cell read as a code, once
            if c.box not in codes:
                x0, y0, x1, y1 = c.box
                codes[c.box] = _read_box(ink, (x0 + pad, y0 + pad, x1 - pad, y1 - pad), read_code, 24)
            return codes[c.box]
    _find_table(cells, draft, dpi, reread)
    _part_patterns(draft, reread)
    _find_header(cells, draft, ink, read_text, read_more)
    _header_from_values(cells, draft, gray.shape[0])
    _find_keywords(gray, cells, draft, read_text, dpi)
    if {c[0] for c in draft.columns} & LEDGER_COLUMNS:
        draft.kind = "ledger"
    return draft


def _cells_under(head: Cell, cells: list[Cell], top: int, tol: int = 6) -> list[Cell]:
    """The cells below ``top`` in the column of ``head``, those of one row that split the
    column (a quantity column ruled into a narrow and a wide part, comb boxes) joined
    into one cell."""
    x0, x1 = head.box[0] - tol, head.box[2] + tol
    inside = sorted((d for d in cells if d.box[1] >= top - 2 and d.box[0] >= x0 and d.box[2] <= x1),
                    key=lambda d: (d.box[1], d.box[0]))
    rows: list[list[Cell]] = []
    for d in inside:
        for r in rows:
            if _overlap((r[0].box[1], r[0].box[3]), (d.box[1], d.box[3])) > 0.8:
                r.append(d)
                break
        else:
            rows.append([d])
    out = []
    for r in rows:
        if len(r) == 1:
            out.append(r[0])
            continue
        box = (min(d.box[0] for d in r), min(d.box[1] for d in r), max(d.box[2] for d in r), max(d.box[3] for d in r))
        out.append(Cell(box, " ".join(d.label for d in sorted(r, key=lambda d: d.box[0]) if d.label)))
    # cells overlapping the column only in part (a neighbour's) are not its cells
    return out + [d for d in cells if d.box[1] >= top - 2 and d not in inside
                  and _overlap((head.box[0], head.box[2]), (d.box[0], d.box[2])) > 0.8]


def _find_table(cells: list[Cell], draft: Draft, dpi: float, reread=None) -> None:
    """``reread(cell)``: the cell's value read as a code or number (filled forms)."""
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
    cols, col_runs = [], []
    for i, hcell in enumerate(heads):
        label_n = _norm(hcell.label)
        below = sorted((d for d in _cells_under(hcell, cells, top)
                        if abs((d.box[2] - d.box[0]) - (hcell.box[2] - hcell.box[0])) < 0.25 * (hcell.box[2] - hcell.box[0])),
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
        near = None if hit else _lookup(hcell.label, COLUMN_WORDS, near=True, pairs=True)
        if near is not None and near[0] not in used:
            hit = near
            draft.notes.append(f"column title {hcell.label!r} read as no known word; taken for {near[0]}: check")
        if hit is None or hit[0] in used:
            name, type_, extra = f"col{i + 1}", "text", ""
        else:
            name, type_, extra = hit
        used.add(name)
        cols.append((name, type_, extra, (hcell.box[0], hcell.box[2]), hcell.label))
        col_runs.append(run)
    _columns_from_values(cols, col_runs, draft, reread)
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
    draft.pitch, draft.rows, draft.columns, draft.runs = pitch, n_rows, cols, col_runs



def _value_kind(text: str) -> str | None:
    """What a value read in a cell of a filled form looks like: 'date' (12/5, 2026年5月28日),
    'unit' (個, kg), 'number' (1,250), 'code' (J-42236, 7M-221), 'company', 'text' or None."""
    t = unicodedata.normalize("NFKC", text or "").replace(" ", "").strip()
    if not t:
        return None
    if re.fullmatch(r"\d{1,2}/\d{1,2}|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}|(\d{4}|[RH令平]\D{0,2}\d{1,2})年\d{1,2}月\d{1,2}日", t) \
            or re.fullmatch(r"[RHS]\d{1,2}[./]\d{1,2}[./]\d{1,2}", t):  # R7.5.9
        return "date"
    if t in UNITS:
        return "unit"
    if _number(t) is not None:
        return "number"
    if re.fullmatch(r"[A-Z0-9][A-Z0-9\-/.]{2,}", t) and re.search(r"\d", t):
        return "code"
    if re.search(COMPANY, t):
        return "company"
    return "text"


def _number(text: str) -> float | None:
    """A number as printed on a filled form: 1,250, ¥1,250, 17.8; a FAX turns commas into
    points, so a point before exactly three digits (1.250) separates thousands."""
    t = re.sub(r"[¥\\\s]", "", unicodedata.normalize("NFKC", text or ""))
    t = re.sub(r"[.,](?=\d{3}(?!\d))", "", t)
    return float(t) if re.fullmatch(r"\d+(\.\d+)?", t) else None


def _shape(text: str) -> str:
    """A code as a pattern of its runs: J-42236 -> [A-Z]-\\d{5}."""
    out = []
    for m in re.finditer(r"[A-Z]+|\d+|.", unicodedata.normalize("NFKC", text).replace(" ", "")):
        g = m.group(0)
        if g[0].isdigit():
            out.append(r"\d" if len(g) == 1 else r"\d{%d}" % len(g))
        elif g[0].isalpha() and g[0].isascii():
            out.append("[A-Z]" if len(g) == 1 else "[A-Z]{%d}" % len(g))
        else:
            out.append("\\" + g if g in r".^$*+?{}[]\|()" else g)
    return "".join(out)


def code_pattern(values: list[str], min_values: int = 3) -> str | None:
    """The pattern the codes read in a column share: one shape (or two) covering at least
    80% of them, each seen at least twice; None with fewer than ``min_values`` codes or no
    common shape (misreads on a FAX vary; real codes repeat a shape)."""
    from collections import Counter

    codes = [v for v in values if _value_kind(v) == "code"]
    if len(codes) < min_values:
        return None
    counts = Counter(_shape(v) for v in codes).most_common()
    chosen, covered = [], 0
    for shape, n in counts[:2]:
        if n < 2:
            break
        chosen.append(shape)
        covered += n
        if covered >= 0.8 * len(codes):
            break
    if not chosen or covered < 0.8 * len(codes):
        return None
    return "^" + (chosen[0] if len(chosen) == 1 else "(" + "|".join(chosen) + ")") + "$"


def _columns_from_values(cols: list, runs: list[list[Cell]], draft: Draft, reread=None) -> None:
    """On a filled form (no blank at hand), name columns whose titles did not read from
    the values in their cells: dates are the due date, units the unit, codes the part
    number, 1, 2, 3... in the first column the printed row number (dropped, as a titled
    'No.' column is); of
    the number columns, those for which quantity x unit price = amount holds on the most
    rows (at least two; the quantity printed left of the unit price) are those three."""
    import itertools
    from collections import Counter

    roles = ("quantity", "unit_price", "amount")

    def kind_of(values: list[str]) -> str | None:
        ks = [k for k in map(_value_kind, values) if k]
        top = Counter(ks).most_common(1)
        return top[0][0] if top and top[0][1] >= max(2, 0.6 * len(ks)) else None

    values = [[c.label for c in run] for run in runs]
    kinds = [kind_of(v) for v in values]
    for i, c in enumerate(cols):
        # the Japanese read garbles digits on a FAX: unnamed and number columns are read
        # again as codes / numbers (``reread``: letters, digits and - / . , only)
        if reread is not None and (c[0].startswith("col") or c[0] in roles):
            again = [reread(d) if d.label else "" for d in runs[i]]
            k = kind_of(again)
            if k in ("number", "code", "date") or c[0] in roles or sum(_number(v) is not None for v in again) >= 3:
                values[i], kinds[i] = again, k
    for i in reversed(range(len(cols))):
        numbers = [(r, n) for r, n in enumerate(map(_number, values[i])) if n is not None]
        hits = sum(n == r + 1 for r, n in numbers)
        if i == 0 and cols[i][0].startswith("col") and hits >= 3 and hits >= 0.5 * len(numbers):
            draft.notes.append(f"column {cols[i][4]!r} holds the row numbers: not read")
            del cols[i], runs[i], kinds[i], values[i]
    used = {c[0] for c in cols}
    by_kind = {"date": _column("due_date"), "unit": _column("unit"), "code": _column("part_no")}
    for i, (name, type_, extra, xr, label) in enumerate(cols):
        if name.startswith("col") and kinds[i] in by_kind and by_kind[kinds[i]][0] not in used:
            new = by_kind[kinds[i]]
            used.add(new[0])
            cols[i] = (new[0], new[1], new[2], xr, label)
            draft.notes.append(f"column {label!r}: taken for {new[0]} from the values in it: check")
    if all(r in used for r in roles):
        return
    numeric = [i for i, c in enumerate(cols) if c[0] in roles or (c[0].startswith("col") and kinds[i] == "number")]

    def fits(q: int, p: int, a: int) -> int:
        n = 0
        for tq, tp, ta in zip(values[q], values[p], values[a]):
            vq, vp, va = _number(tq), _number(tp), _number(ta)
            n += None not in (vq, vp, va) and va > 0 and abs(vq * vp - va) < 0.01 * va
        return n

    scored = []
    for trio in itertools.permutations(numeric, 3):
        if any(cols[x][0] in roles and cols[x][0] != role for x, role in zip(trio, roles)):
            continue  # a column named by its title keeps its name
        if cols[trio[0]][3][0] > cols[trio[1]][3][0]:
            continue  # q x p = p x q: the quantity is the one printed first
        scored.append((fits(*trio), trio))
    scored.sort(reverse=True)
    if scored and scored[0][0] >= 2 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        for x, role in zip(scored[0][1], roles):
            if cols[x][0] != role:
                label = cols[x][4]
                cols[x] = (*_column(role), cols[x][3], label)
                draft.notes.append(f"column {label!r}: taken for {role} (quantity x unit price = amount "
                                   f"on {scored[0][0]} rows): check")
    else:
        _by_position(cols, kinds, values, draft)


def _by_position(cols: list, kinds: list, values: list[list[str]], draft: Draft) -> None:
    """The order Japanese order sheets print their columns in, 数量 [単位] 単価 金額, names
    what the values could not (a handwritten quantity spoils the products), reading
    leftwards from the amount: an unnamed number column just left of it is the unit
    price; an unnamed narrow column of one- or two-character values left of that is the
    unit; the unnamed column left of those is the quantity. Each guess is a NOTE."""
    names = [c[0] for c in cols]
    if "amount" not in names:
        return
    widths = sorted(c[3][1] - c[3][0] for c in cols)
    median = widths[len(widths) // 2]
    keyed = [j for j, n in enumerate(names) if n in ("part_no", "description")]
    filled = {r for j in keyed for r, v in enumerate(values[j]) if v.strip()}  # rows with an order line

    def take(i: int, name: str, why: str) -> None:
        cols[i] = (*_column(name), cols[i][3], cols[i][4])
        names[i] = name
        draft.notes.append(f"column {cols[i][4]!r}: taken for {name} ({why}): check")

    def unnamed(i: int) -> bool:
        return 0 <= i < len(cols) and names[i].startswith("col")

    p = names.index("amount") - 1
    if "unit_price" not in names and unnamed(p) and kinds[p] == "number":
        take(p, "unit_price", "numbers left of the amount")
    if "unit_price" not in names:
        return
    u = names.index("unit_price") - 1
    short = [v for r, v in enumerate(values[u]) if v.strip() and (not filled or r in filled)] if u >= 0 else []
    if "unit" not in names and unnamed(u) and cols[u][3][1] - cols[u][3][0] < 0.7 * median and short \
            and all(len(v.replace(" ", "")) <= 2 for v in short):
        take(u, "unit", "narrow, left of the unit price")
    q = u - 1 if 0 <= u < len(names) and names[u] == "unit" else u
    if "quantity" not in names and unnamed(q):
        take(q, "quantity", "left of the unit price")


def _part_patterns(draft: Draft, reread=None) -> None:
    """Part-number columns of a filled form get the pattern their codes share, read again
    as codes (``reread``: letters, digits and - / . only)."""
    for i, c in enumerate(draft.columns):
        if c[0] != "part_no" or "pattern" in c[2] or i >= len(draft.runs):
            continue
        values = [d.label for d in draft.runs[i]]
        if reread is not None:
            values = [reread(d) for d in draft.runs[i] if d.label]
        pat = code_pattern(values)
        if pat:
            draft.columns[i] = (c[0], c[1], c[2] + ", pattern: '" + pat + "'", c[3], c[4])
            draft.notes.append(f"part_no pattern {pat} from the codes read on this page: check")


def _box_ink(ink: np.ndarray, box: Box) -> np.ndarray | None:
    """The ink inside ``box``, or None when there is next to none (an empty cell)."""
    x0, y0, x1, y1 = box
    sub = ink[max(0, y0):y1, max(0, x0):x1]
    return None if sub.size == 0 or np.count_nonzero(sub) < 0.002 * sub.size else sub


def _read_box(ink: np.ndarray, box: Box, read_text, height: int = 32) -> str:
    """The printed text inside ``box`` (trimmed to its ink, scaled to ``height``-px text)."""
    sub = _box_ink(ink, box)
    if sub is None:
        return ""
    ys, xs = np.nonzero(sub)
    img = np.where(sub[ys.min():ys.max() + 1, xs.min():xs.max() + 1], 0, 255).astype(np.uint8)
    return read_text(at_height(cv2.copyMakeBorder(img, 8, 8, 8, 8, cv2.BORDER_CONSTANT, value=255), height,
                               blur=3)).strip()


LABEL_HEIGHTS = (32, 24, 44)  # a label that reads as no known word is read again at these


def _known(text: str, near: bool = False, pairs: bool = False) -> bool:
    return bool(_lookup(text, COLUMN_WORDS, near=near, pairs=pairs)
                or _lookup(text, HEADER_WORDS, near=near, pairs=pairs))


def _read_label(ink: np.ndarray, box: Box, read_text, read_more=()) -> str:
    """A cell's printed label: read at 32-px text and, when that is no word of the
    dictionaries, again (Tesseract misreads a character at one size and not at another;
    a FAX's thin strokes read better thickened or by the ``read_more`` readers, PP-OCR).
    The first reading that is a known word, else the first one near a known word (one
    character off), else the first reading."""
    if _box_ink(ink, box) is None:
        return ""  # an empty cell
    first = _read_box(ink, box, read_text)
    if _known(first):
        return first
    readings = [first]
    # the box thickened (with a pixel around it: what a 2x2 dilation of the page gives)
    x0, y0 = max(0, box[0] - 1), max(0, box[1] - 1)
    thick = cv2.dilate(ink[y0:box[3] + 1, x0:box[2] + 1].astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
    inner = (max(0, box[0]) - x0, max(0, box[1]) - y0, box[2] - x0, box[3] - y0)
    readers = [(ink, box, read_text, h) for h in LABEL_HEIGHTS[1:]]
    readers += [(ink, box, r, 32) for r in read_more]
    readers += [(thick, inner, read_text, h) for h in LABEL_HEIGHTS] + [(thick, inner, r, 32) for r in read_more]
    for im, b, reader, h in readers:
        text = _read_box(im, b, reader, h)
        if text and _known(text):
            return text
        readings.append(text)
    return next((t for t in readings if t and _known(t, near=True, pairs=True)), first)


def _find_header(cells: list[Cell], draft: Draft, ink: np.ndarray, read_text, read_more=()) -> None:
    tb = draft.table_box
    used_boxes: set[Box] = set()
    # the year box is a ledger's ([ 2026 ] 年度); on an order form a label with 年 in it
    # is a misread date label (the order date says its year)
    order = bool(draft.columns) and not ({c[0] for c in draft.columns} & LEDGER_COLUMNS)
    for c in sorted(cells, key=lambda c: (c.box[1], c.box[0])):
        if tb is not None and c.box[3] >= tb[1] - 0.5 * draft.pitch and c.box[3] <= tb[3] + 2 \
                and c.box[0] >= tb[0] - 2 and c.box[2] <= tb[2] + 2:
            continue  # inside the table or its row of titles
        hit = _lookup(c.label, HEADER_WORDS) or _lookup(c.label, HEADER_WORDS, near=True)
        if hit is None or hit[0] in {h[0] for h in draft.header} or (hit[0] == "year" and order):
            continue
        # the box is the cell to the right: empty on a blank form, holding the value
        # (no label word) on a filled one
        right = [d for d in cells if d.box[0] >= c.box[2] - 4 and d.box[0] - c.box[2] < 0.5 * (c.box[2] - c.box[0]) + 20
                 and _overlap((c.box[1], c.box[3]), (d.box[1], d.box[3])) > 0.6 and not _known(d.label)]
        if not right:
            continue
        value = min(right, key=lambda d: (bool(d.label), d.box[0]))
        draft.header.append((*hit, value.box, c.label))
        used_boxes.add(value.box)
    # boxes with their label printed just above them (注文番号 over an empty box)
    for c in sorted(cells, key=lambda c: (c.box[1], c.box[0])):
        if _known(c.label) or c.box in used_boxes or (tb is not None and c.box[3] >= tb[1] - 0.5 * draft.pitch):
            continue
        h = c.box[3] - c.box[1]
        label = _read_label(ink, (c.box[0], c.box[1] - int(0.9 * h), c.box[2], c.box[1] - 3), read_text, read_more)
        hit = _lookup(label, HEADER_WORDS) or _lookup(label, HEADER_WORDS, near=True)
        if hit is None:  # a unit printed after the box: [    ] 年度
            right = (c.box[2] + 3, c.box[1], c.box[2] + int(1.3 * h), c.box[3])
            if not any(_overlap((right[0], right[2]), (d.box[0], d.box[2])) > 0.3
                       and _overlap((right[1], right[3]), (d.box[1], d.box[3])) > 0.5 for d in cells):
                label = _read_box(ink, right, read_text)
                hit = _lookup(label, [w for w in HEADER_WORDS if w[0] == "year"])  # only a year reads so
        if hit is None or hit[0] in {x[0] for x in draft.header} or (hit[0] == "year" and order):
            continue
        draft.header.append((*hit, c.box, label))


def _header_from_values(cells: list[Cell], draft: Draft, page_h: int) -> None:
    """On a filled form, header boxes whose label did not read, found from their values:
    above the table, the first box holding a whole date is the order date, one holding a
    company name the buyer, one holding a code the order number."""
    tb = draft.table_box
    limit = tb[1] - 1.5 * draft.pitch if tb is not None else 0.4 * page_h
    have = {h[0] for h in draft.header}
    boxes = {h[3] for h in draft.header}
    wanted = {"date": "order_date", "company": "buyer", "code": "order_no"}
    entries = {e[0]: e for e in HEADER_WORDS}
    for c in sorted(cells, key=lambda c: (c.box[1], c.box[0])):
        if c.box[3] > limit or c.box in boxes or _known(c.label):
            continue
        kind = _value_kind(c.label)
        if kind == "date" and not re.search(r"年|\d{4}|^[RHS]\d", unicodedata.normalize("NFKC", c.label).strip()):
            continue  # an order date has its year
        name = wanted.get(kind or "")
        if name is None or name in have:
            continue
        _n, type_, extra, _words = entries[name]
        draft.header.append((name, type_, extra, c.box, f"(no label read; holds {c.label!r})"))
        draft.examples[name] = c.label
        have.add(name)
        boxes.add(c.box)
        draft.notes.append(f"{name}: the box holding {c.label!r} (its label did not read): check")


def _find_keywords(gray: np.ndarray, cells: list[Cell], draft: Draft, read_text, dpi: float,
                   band: float = 0.15) -> None:
    H, W = gray.shape[:2]
    band_h = int(band * H)
    top = gray[:band_h].copy()
    for c in cells:  # the header band without its cells
        x0, y0, x1, y1 = c.box
        if y0 < band_h:
            top[max(0, y0 - 4):min(band_h, y1 + 4), max(0, x0 - 4):x1 + 4] = 255
    ink = ink_mask(top)
    page = np.where(ink, 0, 255).astype(np.uint8)
    # Each run of print on its own, as form recognition reads keywords (templates.match):
    # a title and a company name on one line read as one ran together ('注文寺金城電機').
    phrases = _phrase_texts(page, ink, dpi, read_text)
    title = _title_word(phrases)
    company = _company(t for _h, texts in phrases for t in texts)
    if title is None or company is None:  # the band as it is and at half size
        text = read_text(page) + "\n" + read_text(cv2.resize(page, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        title = title or next((w for w in TITLE_WORDS if w in _norm(text)), None)
        company = company or _company([text])
    if title:
        draft.title, draft.keywords = title, [title]
    if company:
        full, short = company
        draft.keywords.append(short)
        draft.title = (full + " " + draft.title).strip()
    if len(draft.keywords) == 1 and draft.keywords[0] in TITLE_WORDS and band >= 0.3:
        draft.notes.append("only the title was read as a keyword: add the company name to match.keywords")
    if not draft.keywords and band < 0.3:
        _find_keywords(gray, cells, draft, read_text, dpi, band=0.3)
    elif not draft.keywords:
        draft.notes.append("no title or company name read: write match.keywords by hand")


def _phrase_texts(page: np.ndarray, ink: np.ndarray, dpi: float, read_text, most: int = 10
                  ) -> list[tuple[int, list[str]]]:
    """(height, readings) of the band's tallest runs of print, each read at a few sizes."""
    from faxflow.templates.match import _ocr_variants, _text_phrases

    h, v = line_masks(ink, max(20, int(round(dpi * 0.4))))
    out = []
    for x0, y0, x1, y1 in _text_phrases(ink & ~(h | v), dpi)[:most]:
        pad = max(4, (y1 - y0) // 2)
        img = page[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]
        texts = [read_text(im) for im in _ocr_variants(img, True)]
        out.append((y1 - y0, [t for t in texts if t and t.strip()]))
    return out


def _title_word(phrases: list[tuple[int, list[str]]]) -> str | None:
    """The form's title word (注文書, 発注伝票...) as printed: one read exactly in a run of
    print, tallest first; else the title word one character off (注文寺) in a run
    clearly taller than the rest (a title, not the 注文日 label)."""
    for _h, texts in phrases:
        for t in texts:
            hit = next((w for w in TITLE_WORDS if w in _norm(t)), None)
            if hit:
                return hit
    from faxflow.templates.match import fuzzy_contains

    heights = sorted(h for h, _ in phrases)
    median = heights[len(heights) // 2] if heights else 0
    for h, texts in phrases[:3]:
        if h < 1.3 * median:
            break
        for t in texts:
            n = _norm(t)
            hit = next((w for w in sorted(TITLE_WORDS, key=len, reverse=True)  # 発注伝栗: 発注伝票, not 発注書
                        if len(w) >= 3 and len(n) <= len(w) + 2 and fuzzy_contains(n, w)), None)
            if hit:
                return hit
    return None


def _company(texts) -> tuple[str, str] | None:
    """(the company name as read, its distinctive part: the keyword) from the first
    reading with 株式会社 / 有限会社 / (株) / (有) in it, or None."""
    for text in texts:
        plain = unicodedata.normalize("NFKC", text).replace(" ", "")
        for w in TITLE_WORDS:
            plain = plain.replace(w, "\n")
        m = (re.search(f"(?:{COMPANY})([^\\s株有()]{{2,8}})", plain)
             or re.search(f"([^\\s()]{{2,8}})(?:{COMPANY})", plain))
        if m:
            core = re.split(r"製作所|工業|精機|精工|電機|産業|商事|化成|金属|鉄工|機械", m.group(1))[0] or m.group(1)
            return m.group(0), core[:4]
    return None


def to_yaml(draft: Draft, name: str, image_name: str, dpi: float, source: str) -> str:
    """The draft as a commented template file."""
    q = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731 - YAML single-quoted scalar
    out = [f"# {name}.yaml: a DRAFT made by `faxflow templates new` from {source}.",
           "# Check every box: faxflow templates preview " + name + " (and --scan a_real_fax.tif);",
           "# then set patterns (part numbers), hints (handwritten columns: auto) and required fields.",
           f"name: {name}",
           f"title: {q(' '.join((draft.title or name).split()))}",
           f"kind: {draft.kind}",
           "reference:",
           f"  image: {image_name}",
           f"  dpi: {int(round(dpi))}",
           "match:",
           "  keywords: [" + ", ".join(draft.keywords) + "]" + ("" if draft.keywords else "   # TODO: printed words")]
    if draft.header:
        out.append("fields:")
        for hname, type_, extra, (x0, y0, x1, y1), label in draft.header:
            label = " ".join(label.split())  # one comment line
            example = draft.examples.get(hname)  # the shape of the value read, else a sample
            todo = ("; TODO pattern, e.g. " + (f"'^{_shape(example)}$'" if example else "'^\\d{6}$'")
                    if type_ == "part_number" else "")
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
            label = " ".join(label.split())
            todo = ("; TODO pattern: what a code looks like, e.g. '^[A-Z]{2}-\\d{4}$'"
                    if type_ == "part_number" and "pattern:" not in extra else "")
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
        out.append("# NOTE: " + " ".join(note.split()))
    return "\n".join(out) + "\n"
