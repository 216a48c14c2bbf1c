"""Generate sample scans of filled forms, each with its ground truth.

``generate(out_dir, count, seed)`` writes ``s0000.tif``, ``s0001.pdf``, ... and
beside each ``NAME.truth.json`` in the format of docs/DEVELOPING.md ("Ground truth
of generated samples"), values in canonical text.

The samples are varied on purpose, never tuned to what our pipeline reads well:

* content: order numbers, dates printed as 2026年11月20日 / 令和8年11月20日 /
  2026/11/20 / R8.11.20, Japanese company names, part numbers per form, a vocabulary
  of real parts (full-width or half-width digits, ``×`` or ``x``), quantities 1..5000
  with or without commas, unit prices with decimals, amounts = quantity x unit price
  rounded to yen (down or half-up, per document), M/D due dates after the order date
  (also into the next year), 3..all rows filled, ledgers with a running balance;
* print: one font per document (IPA gothic/mincho, VL gothic, Noto sans/serif,
  9-12 pt), left/centre/right alignment, baseline jitter, stamps and seals;
* handwriting (``handwriting`` > 0): that fraction of documents has quantity and
  due date (ledgers: every number) written by ``samples.handwriting.HandwritingSource``;
* the road to our inbox (``samples.degrade``), per file, see ``CHANNELS``: FAX fine
  (204x196, G4 TIFF) and standard (204x98, G3 TIFF, rarely without resolution tags),
  FAX-server PDFs, 200/300/400 dpi greyscale office scans (JPEG, PDF, PNG), phone
  photos of ledgers; threshold or dithered binarisation, skew, shift, scale, specks,
  FAX streaks, header lines, pages turned 90/180/270, multi-page files mixing forms,
  and pages of forms faxflow has no template for (``template: null``).

Deterministic: the same ``seed`` gives the same files and truth, and document ``i``
does not depend on ``count``.

CLI: ``python -m faxflow.samples.generate OUT --count N --seed S``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from faxflow.samples import degrade
from faxflow.samples.forms import (
    DPI,
    LAYOUTS,
    SHIPPED,
    UNKNOWN,
    Box,
    Layout,
    draw_form,
    get_font,
    random_order_layout,
    write_template,
)

log = logging.getLogger("faxflow.samples")

# --- canonical text (docs/DEVELOPING.md) ------------------------------------------------
# An independent implementation on purpose: the truth must not share a bug with
# templates/parse.py.

_CJK = (r"[\u2E80-\u2FDF\u3000-\u303F\u3040-\u30FF\u31F0-\u31FF\u3400-\u4DBF"
        r"\u4E00-\u9FFF\uF900-\uFAFF\uFF66-\uFF9F]")
_DASHES = "ー－―‐−–—‑"


def canon_text(s: str) -> str:
    s = unicodedata.normalize("NFKC", s)
    s = re.sub(r"\s+", " ", s).strip()
    return re.sub(f"(?<={_CJK}) (?={_CJK})", "", s)


def canon_part(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).upper()
    s = re.sub(f"[{_DASHES}]", "-", s)
    return re.sub(r"\s+", "", s)


def canon_money(d: Decimal) -> str:
    d = Decimal(d)
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def fullwidth(s: str) -> str:
    """ASCII letters/digits/symbols -> 全角 (what some Excel sheets print)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c)
                   for c in s)


# --- small random helpers --------------------------------------------------------------


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def weighted(rng: np.random.Generator, table: list[tuple[str, float]]) -> str:
    names = [n for n, _ in table]
    w = np.array([p for _, p in table], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


# --- vocabulary -------------------------------------------------------------------------

# description, unit, unit price range, decimals possible, quantity range, part prefix
PARTS: list[tuple[str, str, tuple[float, float], bool, tuple[int, int], str]] = [
    ("六角ボルト M8×30", "本", (3.0, 15.0), True, (100, 5000), "HB"),
    ("六角ボルト M10×40", "本", (6.0, 25.0), True, (100, 3000), "HB"),
    ("六角ボルト M12×50", "本", (12.0, 40.0), True, (50, 2000), "HB"),
    ("六角穴付ボルト M6×20", "本", (4.0, 18.0), True, (100, 5000), "CB"),
    ("キャップボルト M5×12", "本", (3.0, 10.0), True, (200, 5000), "CB"),
    ("ナット M6", "個", (1.5, 5.0), True, (200, 5000), "NT"),
    ("六角ナット M12", "個", (5.0, 20.0), True, (100, 3000), "NT"),
    ("平座金 10", "個", (0.8, 4.0), True, (500, 5000), "WS"),
    ("ばね座金 M8", "個", (1.2, 5.0), True, (500, 5000), "SW"),
    ("ベアリング 6202ZZ", "個", (180, 600), False, (10, 500), "BR"),
    ("ベアリング 6305DDU", "個", (450, 1500), False, (5, 200), "BR"),
    ("Oリング P-20", "個", (8.0, 40.0), True, (50, 2000), "OR"),
    ("Oリング G-45", "個", (15.0, 60.0), True, (50, 1000), "OR"),
    ("板金カバー", "台", (1800, 25000), False, (1, 50), "CV"),
    ("板金カバー SPCC t1.6", "個", (2500, 18000), False, (1, 40), "CV"),
    ("配管継手 エルボ 20A", "個", (120, 600), False, (10, 500), "PJ"),
    ("配管継手 チーズ 25A", "個", (200, 900), False, (10, 300), "PJ"),
    ("ソケット 15A", "個", (60, 300), False, (10, 500), "PJ"),
    ("止め輪 C形 軸用 20", "個", (2.0, 12.0), True, (100, 3000), "RR"),
    ("平行ピン 6×20", "本", (5.0, 30.0), True, (100, 2000), "PN"),
    ("アンカーボルト M12×150", "本", (60, 250), False, (10, 500), "AB"),
    ("タッピンねじ 4×16", "本", (0.8, 4.0), True, (500, 5000), "TS"),
    ("スペーサー φ10×15", "個", (20, 120), False, (50, 1000), "SP"),
    ("ブラケット A型", "個", (300, 2500), False, (5, 200), "BK"),
    ("銅パイプ φ8", "m", (350, 900), False, (5, 100), "CP"),
    ("ホースバンド 25", "個", (40, 150), False, (20, 500), "HS"),
    ("Vベルト A-42", "本", (600, 1500), False, (2, 50), "VB"),
    ("防振ゴム 40×30 M8", "個", (250, 900), False, (10, 200), "RB"),
    ("樹脂プレート t5 200×300", "枚", (800, 3500), False, (2, 100), "PL"),
    ("ステンレス丸棒 SUS304 φ12", "本", (1200, 4800), False, (1, 50), "SR"),
    ("溶接ナット M8", "個", (6.0, 25.0), True, (100, 3000), "WN"),
    ("ケーブルグランド PG9", "個", (90, 320), False, (20, 500), "CG"),
    ("リミットスイッチ", "個", (2500, 9800), False, (1, 30), "LS"),
    ("電磁弁 24V", "台", (5800, 24000), False, (1, 20), "SV"),
    ("切削油 20L", "缶", (6800, 15000), False, (1, 20), "CO"),
    ("ウエス", "kg", (250, 600), False, (5, 100), "WE"),
    ("結束バンド 200mm", "袋", (150, 600), False, (1, 100), "TB"),
    ("シールテープ 13mm", "巻", (40, 150), False, (10, 200), "ST"),
    ("ボルトセット M6", "組", (120, 450), False, (10, 300), "BS"),
    ("治具製作", "式", (30000, 180000), False, (1, 3), "JG"),
    ("六角ボルト M8×20 (100本入)", "箱", (450, 1200), False, (1, 50), "HB"),
]

SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
            "吉田", "山口", "松本", "井上", "木村", "林", "清水", "斎藤", "森", "池田"]
NAME_STEMS = ["東邦", "中部", "大和", "三協", "丸善", "北陸", "新栄", "協和", "日進", "昭和",
              "東海", "富士", "平和", "明和", "旭", "光洋", "太平", "三和", "岡崎", "美濃"]
NAME_KINDS = ["製作所", "工業", "精機", "電機", "産業", "金属", "鉄工所", "機工", "化成", "技研"]
DEPTS = ["購買部", "資材課", "第二工場", "生産管理課", "本社工場", "購買課 " + "{s}", "製造部"]
SUPPLIERS = ["中京ボルト株式会社", "株式会社丸一螺子", "東海ファスナー株式会社",
             "株式会社大成ベアリング", "三栄商会株式会社", "有限会社岐阜パッキン"]
REMARKS = ["納品時は検査成績書を添付のこと。", "分納可。", "梱包は従来通りでお願いします。",
           "至急対応願います。", "図面 No. Y-2231 Rev.B 参照", "ミルシート要。",
           "納入先：本社工場 第2倉庫", "前回注文分の残りと合わせて納品してください。"]
NOTES = ["至急", "分納可", "要ミルシート", "図面参照", "前回同様", "直送", "サンプル", "特採品"]
DELIVERY = ["本社工場 第2倉庫", "刈谷工場 受入口", "安城工場 資材置場", "東浦倉庫",
            "本社 組立ライン", "知立工場"]
LOCATIONS = ["第1倉庫 A-3", "第2倉庫 棚B-12", "資材庫 2F", "工具室", "部品棚 C-04"]

ENTRY_FONTS = ["gothic", "pgothic", "mincho", "pmincho", "vlgothic", "vlpgothic", "sans",
               "sans_bold", "serif", "sans_mono"]


def company(rng: np.random.Generator) -> str:
    name = pick(rng, NAME_STEMS) + pick(rng, NAME_KINDS)
    form = int(rng.integers(0, 6))
    return [f"株式会社{name}", f"{name}株式会社", f"㈱{name}", f"(株){name}",
            f"有限会社{name}", f"株式会社 {name}"][form]


def dept(rng: np.random.Generator) -> str:
    return pick(rng, DEPTS).format(s=pick(rng, SURNAMES))


def wareki(y: int) -> int:
    return y - 2018  # 令和 (2019 = 令和元年; our dates are 2025..2027)


# --- what goes where on a page ------------------------------------------------------------


@dataclass
class Entry:
    """One thing to write into a box of the form (200-dpi pixels)."""

    box: Box
    text: str
    how: str = "print"  # print | hand | stamp | seal | multiline | comb | comb-hand | correct
    align: str = "l"
    cells: tuple[Box, ...] = ()  # comb cells
    old: str = ""  # correct: the printed value struck through (text = the new one, by hand)


@dataclass
class Filled:
    """A filled-in page before it is rendered, with its truth."""

    layout: Layout
    entries: list[Entry]
    truth: dict
    date: dt.date | None = None
    tokens: list[str] = field(default_factory=list)  # e.g. "correction", for the truth's degradations


@dataclass
class Style:
    """How one document is written: printer font, size, alignment habits, ink."""

    font: str
    size: float  # px at 200 dpi
    jitter: float
    ink: tuple[int, int, int]
    pen: tuple[int, int, int]
    align: dict[str, str] = field(default_factory=dict)
    fullwidth_p: float = 0.0
    comma_p: float = 0.6
    yen_amount: bool = False
    yen_price: bool = False
    rounding: str = "floor"


def _style(rng: np.random.Generator) -> Style:
    pt = rng.uniform(9.0, 12.0)
    g = int(rng.integers(0, 70))
    num = pick(rng, ["r", "r", "r", "r", "c", "l"])
    return Style(
        font=pick(rng, ENTRY_FONTS),
        size=pt * DPI / 72.0,
        jitter=rng.uniform(0.3, 2.5),
        ink=(g, g, g),
        pen=pick(rng, [(20, 20, 25), (25, 35, 110), (10, 10, 10), (60, 60, 70)]),
        align={"num": num, "text": pick(rng, ["l", "l", "l", "c"]),
               "date": pick(rng, ["c", "c", "l", "r"])},
        fullwidth_p=pick(rng, [0.0, 0.0, 0.0, 0.3, 1.0]),
        comma_p=pick(rng, [0.0, 1.0, 1.0, 1.0, 0.5]),  # thousands separators: usually all or none
        yen_amount=chance(rng, 0.15),
        yen_price=chance(rng, 0.06),
        rounding=pick(rng, ["floor", "floor", "half_up"]),
    )


def _align(style: Style, spec_align: str, group: str) -> str:
    return style.align.get(group, spec_align)


def fmt_int(n: int, rng, style: Style) -> str:
    s = f"{n:,}" if (n >= 1000 and chance(rng, style.comma_p)) else str(n)
    return fullwidth(s) if chance(rng, style.fullwidth_p * 0.5) else s


def fmt_money(d: Decimal, rng, style: Style, *, yen: bool = False) -> str:
    if d != d.to_integral_value():
        s = format(d.normalize(), "f")
        if len(s.split(".")[1]) == 1 and chance(rng, 0.3):
            s += "0"  # 3.50
    else:
        n = int(d)
        s = f"{n:,}" if (n >= 1000 and chance(rng, style.comma_p)) else str(n)
    if yen:
        s = ("￥" if style.fullwidth_p >= 1.0 else "¥") + s
    return s


def fmt_md(d: dt.date, rng) -> str:
    return f"{d.month}/{d.day:02d}" if chance(rng, 0.1) else f"{d.month}/{d.day}"


def _random_date(rng, near: dt.date | None = None) -> dt.date:
    """A date in 2025-2027; with ``near``, up to two weeks before it (another order in the
    same FAX: one transmission carries orders written around the same time)."""
    if near is not None:
        return near - dt.timedelta(days=int(rng.integers(0, 15)))
    start = dt.date(2025, 1, 6)
    return start + dt.timedelta(days=int(rng.integers(0, 3 * 365 - 10)))


def _order_date_text(style: str, d: dt.date, rng, st: Style) -> str:
    if style == "slash":
        opts = [f"{d.year}/{d.month}/{d.day}", f"{d.year}/{d.month:02d}/{d.day:02d}",
                f"R{wareki(d.year)}.{d.month}.{d.day}",
                f"R{wareki(d.year):02d}.{d.month:02d}.{d.day:02d}"]
        return pick(rng, opts)
    opts = [f"{d.year}年{d.month}月{d.day}日", f"令和{wareki(d.year)}年{d.month}月{d.day}日",
            f"{d.year}年{d.month:02d}月{d.day:02d}日", f"{d.year}年 {d.month}月 {d.day}日",
            f"令和 {wareki(d.year)}年 {d.month}月 {d.day}日"]
    s = pick(rng, opts)
    return fullwidth(s) if chance(rng, st.fullwidth_p * 0.5) else s


_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def _part_no(fmt: str, prefix: str, rng) -> str:
    """A part number in one of ``forms.PART_FORMATS``."""
    if fmt == "0A-000|000-0000":
        if chance(rng, 0.5):
            return f"{rng.integers(1, 10)}{pick(rng, _LETTERS)}-{rng.integers(0, 1000):03d}"
        return f"{rng.integers(100, 1000)}-{rng.integers(0, 10000):04d}"
    if fmt == "A-000":
        return f"{prefix[:int(rng.integers(1, 3))]}-{rng.integers(100, 10000)}"
    if fmt == "T00000":
        return f"T{rng.integers(10000, 100000)}"
    if fmt == "A0000":
        return f"{prefix[0]}{rng.integers(1000, 100000)}"
    if fmt == "AAA-000-00":
        return f"{prefix}{pick(rng, _LETTERS)}-{rng.integers(0, 1000):03d}-{rng.integers(0, 100):02d}"
    if fmt == "00000-00":
        return f"{rng.integers(10000, 100000)}-{rng.integers(0, 100):02d}"
    return f"{prefix}-{rng.integers(0, 10000):04d}"  # AA-0000


def _order_no(fmt: str, order_date: dt.date, rng) -> str:
    """An order number in one of ``forms.ORDER_NO_FORMATS``."""
    if fmt == "6":
        return f"{rng.integers(0, 1000000):06d}"
    if fmt == "D-5":
        return f"D-{rng.integers(10000, 100000)}"
    if fmt == "A-5":
        return f"{pick(rng, _LETTERS)}-{rng.integers(0, 100000):05d}"
    if fmt == "2-4":
        return f"{order_date:%y}-{rng.integers(0, 10000):04d}"
    return (f"PO-{order_date:%y%m}{rng.integers(1, 100):02d}" if chance(rng, 0.5)
            else f"{rng.integers(100000, 1000000)}")


def _description_text(desc: str, rng, style: Style) -> str:
    r = rng.random()
    if r < style.fullwidth_p * 0.6:
        return re.sub(r"[A-Za-z0-9.()\-]+", lambda m: fullwidth(m.group(0)), desc)
    if r < 0.15 and "×" in desc:
        return desc.replace("×", "x")
    if r < 0.25 and " " in desc:
        return desc.replace(" ", "\u3000")
    return desc


def _qty(rng, lo: int, hi: int) -> int:
    if hi >= 500:
        step = pick(rng, [10, 50, 100, 100, 1])
        return int(max(lo, min(hi, step * round(int(rng.integers(lo, hi + 1)) / step))))
    return int(rng.integers(lo, hi + 1))


def _price(rng, lo: float, hi: float, decimals: bool) -> Decimal:
    v = rng.uniform(lo, hi)
    if decimals and chance(rng, 0.5):
        return Decimal(str(round(v, 1)))
    if v >= 1000:
        return Decimal(int(round(v / 10) * 10))
    return Decimal(max(1, int(round(v))))


@dataclass
class Ctx:
    """Per-document switches."""

    hand: bool  # handwritten numbers on this document
    hw: object | None  # HandwritingSource
    style: Style


# --- filling an order form -----------------------------------------------------------------


def fill_order(layout: Layout, rng: np.random.Generator, ctx: Ctx, near: dt.date | None = None) -> Filled:
    st = ctx.style
    name = layout.name
    table = layout.tables[0]
    entries: list[Entry] = []
    header: dict[str, str] = {}
    header_hw: list[str] = []
    order_date = _random_date(rng, near)

    # header -------------------------------------------------------------------------
    order_no = _order_no(layout.order_no_format, order_date, rng)
    if layout.has_template and layout.buyer_names:
        buyer = (pick(rng, layout.buyer_names) + " " + dept(rng)) if chance(rng, 0.6) else company(rng)
        if buyer.startswith("株式会社") and chance(rng, 0.2):
            buyer = buyer.replace("株式会社", "㈱")
    else:
        buyer = company(rng) + " 御中"
    for f in layout.fields:
        if f.name == "order_no":
            hand = ctx.hand and f.comb and chance(rng, 0.5)
            if f.comb:
                entries.append(Entry(f.box, order_no, "comb-hand" if hand else "comb", cells=tuple(f.comb_cells())))
            else:
                entries.append(Entry(f.box, order_no, "print", _align(st, f.align, "x")))
            header["order_no"] = canon_part(order_no)
            if hand:
                header_hw.append("order_no")
        elif f.name == "order_date":
            entries.append(Entry(f.box, _order_date_text(layout.date_style, order_date, rng, st), "print",
                                 _align(st, f.align, "date")))
            header["order_date"] = order_date.isoformat()
        elif f.name == "buyer":
            entries.append(Entry(f.box, buyer, "print", "l"))
            header["buyer"] = canon_text(buyer)

    # rows ---------------------------------------------------------------------------
    n = int(rng.integers(3, table.count + 1))
    row_ids = list(range(n))
    if chance(rng, 0.06) and n < table.count:  # a row left blank in between
        gap = int(rng.integers(1, n))
        row_ids = [i if i < gap else i + 1 for i in row_ids]
    same_due = chance(rng, 0.5)
    due0 = order_date + dt.timedelta(days=int(rng.integers(3, 75)))
    hand_rows = set(row_ids) if chance(rng, 0.7) else {i for i in row_ids if chance(rng, 0.5)}
    cols = {c.name: c for c in table.read_columns}
    rows = []
    total = Decimal(0)
    for i in row_ids:
        desc, unit, (plo, phi), decimals, (qlo, qhi), prefix = pick(rng, PARTS)
        part = _part_no(layout.part_format, prefix, rng)
        qty = _qty(rng, qlo, qhi)
        price = _price(rng, plo, phi, decimals)
        mode = ROUND_FLOOR if st.rounding == "floor" else ROUND_HALF_UP
        amount = (Decimal(qty) * price).quantize(Decimal(1), rounding=mode)
        total += amount
        due = due0 if same_due else order_date + dt.timedelta(days=int(rng.integers(3, 90)))
        note = pick(rng, NOTES) if chance(rng, 0.12) else ""
        hand_here = ctx.hand and i in hand_rows
        # a printed quantity corrected by hand (二重線で訂正), the amount with it
        corrected = ctx.hand and not hand_here and chance(rng, 0.15)
        old_qty = qty
        if corrected:
            qty = max(1, int(qty * pick(rng, [0.5, 0.8, 1.2, 1.5, 2.0])) // 10 * 10 or qty + 1)
            total -= amount
            amount = (Decimal(qty) * price).quantize(Decimal(1), rounding=mode)
            total += amount
            old_amount = (Decimal(old_qty) * price).quantize(Decimal(1), rounding=mode)
        values = {
            "part_no": (part, canon_part(part), "x"),
            "description": (_description_text(desc, rng, st), None, "text"),
            "quantity": (str(qty) if hand_here else fmt_int(qty, rng, st), str(qty), "num"),
            "unit": (unit, unit, "x"),
            "unit_price": (fmt_money(price, rng, st, yen=st.yen_price), canon_money(price), "num"),
            "amount": (fmt_money(amount, rng, st, yen=st.yen_amount), canon_money(amount), "num"),
            "due_date": (f"{due.month}月{due.day}日" if layout.due_style == "月日" else fmt_md(due, rng),
                         due.isoformat(), "date"),
            "note": (note, canon_text(note), "text"),
        }
        fields_truth, hw_cols = {}, []
        for cname, col in cols.items():
            printed, truth, group = values[cname]
            if truth is None:
                truth = canon_text(printed)
            fields_truth[cname] = truth
            if not printed:
                continue
            how = "print"
            if hand_here and cname in ("quantity", "due_date"):
                how = "hand"
                hw_cols.append(cname)
            if corrected and cname in ("quantity", "amount"):
                old = fmt_int(old_qty, rng, st) if cname == "quantity" else fmt_money(old_amount, rng, st)
                entries.append(Entry(table.cell(col, i), str(qty if cname == "quantity" else int(amount)),
                                     "correct", _align(st, col.align, group), old=old))
                hw_cols.append(cname)
                continue
            entries.append(Entry(table.cell(col, i), printed, how, _align(st, col.align, group)))
        rows.append({"row": i, "fields": fields_truth, "handwritten": hw_cols})

    for f in layout.fields:
        if f.name == "total":
            entries.append(Entry(f.box, _total_text(total, rng, st), "print", _align(st, f.align, "num")))
            header["total"] = canon_money(total)

    _decorate_order(layout, rng, entries, order_date)
    truth = {"template": name, "kind": layout.kind, "header": header,
             "header_handwritten": header_hw, "rows": rows}
    tokens = ["correction"] if any(e.how == "correct" for e in entries) else []
    return Filled(layout, entries, truth, order_date, tokens)


def _total_text(total: Decimal, rng, st: Style) -> str:
    s = f"{int(total):,}"
    r = rng.random()
    if r < 0.25:
        return "¥" + s
    if r < 0.35:
        return "¥" + s + "-"  # ¥123,456- : "no more digits follow"
    if r < 0.45:
        return str(int(total))
    return s


def _decorate_order(layout: Layout, rng, entries: list[Entry], when: dt.date) -> None:
    """Things written on the form that faxflow does not read."""
    for sl in layout.slots:
        if sl.name == "supplier":
            entries.append(Entry(sl.box, pick(rng, SUPPLIERS), "print", "l"))
        elif sl.name == "delivery" and chance(rng, 0.7):
            entries.append(Entry(sl.box, pick(rng, DELIVERY), "print", "l"))
        elif sl.name == "remarks" and chance(rng, 0.6):
            k = int(rng.integers(1, 3))
            entries.append(Entry(sl.box, "\n".join(rng.choice(REMARKS, k, replace=False)), "multiline"))
        elif sl.name == "seal" and chance(rng, 0.7):
            entries.append(Entry(sl.box, "山田製作所之印", "seal"))
        elif sl.kind == "stamp" and chance(rng, 0.55):
            entries.append(Entry(sl.box, pick(rng, SURNAMES), "stamp"))


# --- filling a ledger -------------------------------------------------------------------------


def fill_ledger(layout: Layout, rng: np.random.Generator, ctx: Ctx) -> Filled:
    st = ctx.style
    table = layout.tables[0]
    desc, unit, _, _, (qlo, qhi), prefix = pick(rng, PARTS)
    part = _part_no(layout.part_format, prefix, rng)
    year = int(rng.integers(2025, 2028))
    entries: list[Entry] = []
    header_hw: list[str] = []
    hand = ctx.hand
    desc_printed = _description_text(desc, rng, st)
    for f in layout.fields:
        if f.name == "part_no":
            entries.append(Entry(f.box, part, "print", "l"))
        elif f.name == "description":
            entries.append(Entry(f.box, desc_printed, "print", "l"))
        elif f.name == "year":
            entries.append(Entry(f.box, str(year), "hand" if hand else "print", "c"))
            if hand:
                header_hw.append("year")
    header = {"part_no": canon_part(part), "description": canon_text(desc_printed), "year": str(year)}

    staff = [pick(rng, SURNAMES) for _ in range(int(rng.integers(1, 4)))]
    staff_how = "stamp" if chance(rng, 0.4) else "print"
    rows_part = chance(rng, 0.5)
    n = int(rng.integers(3, table.count + 1))
    day = dt.date(year, int(rng.integers(1, 10)), int(rng.integers(1, 28)))
    big = qhi >= 500
    unit_q = 10 if big else 1
    balance = 0  # a new page starts from a carried-over balance (row 0) or from nothing
    rows = []
    cols = {c.name: c for c in table.read_columns}
    for i in range(n):
        if i > 0:
            day = day + dt.timedelta(days=int(rng.integers(0, 7)))
            if day.year != year:
                break
        carry = i == 0 and chance(rng, 0.35)
        in_q = out_q = None
        if carry:
            balance = int(rng.integers(1, 60)) * unit_q * (5 if big else 1)
            text_desc = pick(rng, ["前月繰越", "前頁より繰越", "繰越"])
        else:
            text_desc = ""
            if balance < unit_q * 3 or chance(rng, 0.35):
                in_q = int(rng.integers(1, 30)) * unit_q * (5 if big else 1)
                balance += in_q
            else:
                out_q = int(rng.integers(1, max(2, balance // unit_q // 2 + 1))) * unit_q
                out_q = min(out_q, balance)
                balance -= out_q
        who = pick(rng, staff)
        values = {
            "date": (fmt_md(day, rng), day.isoformat(), "date", True),
            "part_no": (part if rows_part and not carry else "", None, "x", False),
            "description": (text_desc, None, "text", False),
            "in_qty": ("" if in_q is None else str(in_q), None, "num", True),
            "out_qty": ("" if out_q is None else str(out_q), None, "num", True),
            "balance": (str(balance), str(balance), "num", True),
            # A red name stamp (はんこ) vanishes when a FAX or scanner binarizes the page, so
            # nobody could read it back: the truth of a stamped staff cell is empty.
            "staff": (who, "" if staff_how == "stamp" else who, "x", False),
        }
        ftruth, hw_cols = {}, []
        for cname, col in cols.items():
            printed, truth, group, number = values[cname]
            if truth is None:
                truth = canon_part(printed) if cname == "part_no" else canon_text(printed)
            ftruth[cname] = truth
            if not printed:
                continue
            if number and not hand and cname != "date":
                printed = fmt_int(int(printed), rng, st)
            how = "print"
            if hand and number:
                how = "hand"
                hw_cols.append(cname)
            elif cname == "staff":
                how = staff_how
            entries.append(Entry(table.cell(col, i), printed, how, _align(st, col.align, group)))
        rows.append({"row": i, "fields": ftruth, "handwritten": hw_cols})

    for sl in layout.slots:
        if sl.name == "location" and chance(rng, 0.6):
            entries.append(Entry(sl.box, pick(rng, LOCATIONS), "print", "l"))
        elif sl.name == "unit" and chance(rng, 0.7):
            entries.append(Entry(sl.box, unit, "print", "c"))
        elif sl.name == "page_no" and chance(rng, 0.5):
            entries.append(Entry(sl.box, str(int(rng.integers(1, 40))), "print", "c"))
    truth = {"template": layout.name, "kind": layout.kind, "header": header,
             "header_handwritten": header_hw, "rows": rows}
    return Filled(layout, entries, truth, day)


# --- filling forms faxflow does not know -----------------------------------------------------


def fill_unknown(layout: Layout, rng: np.random.Generator, ctx: Ctx, near: dt.date | None = None) -> Filled:
    if layout.tables:  # a delivery note: filled like an order (printed), truth says "no template"
        f = fill_order(layout, rng, Ctx(hand=False, hw=None, style=ctx.style), near)
        entries, when = f.entries, f.date
    else:
        when = _random_date(rng, near)
        sender = company(rng)
        texts = {
            "cover_宛先": pick(rng, SUPPLIERS) + " 御中",
            "cover_発信元": f"{sender} {pick(rng, SURNAMES)}",
            "cover_日付": f"{when.year}年{when.month}月{when.day}日",
            "cover_枚数": f"本状を含め {int(rng.integers(2, 4))} 枚",
            "cover_件名": pick(rng, ["注文書送付の件", "発注のご案内", "納期のご確認", "見積依頼"]),
        }
        entries = [Entry(sl.box, texts[sl.name], "print", "l") for sl in layout.slots if sl.name in texts]
        msg = ["いつも大変お世話になっております。",
               "下記の通り注文書をお送りいたします。" if chance(rng, 0.6) else "標記の件、よろしくお願いいたします。",
               "ご確認の程よろしくお願い申し上げます。"]
        entries.append(Entry(layout.slot("message").box, "\n".join(msg), "multiline"))
    truth = {"template": None, "kind": None, "header": {}, "header_handwritten": [], "rows": []}
    return Filled(layout, entries, truth, when)


def fill(layout: Layout, rng: np.random.Generator, ctx: Ctx, near: dt.date | None = None) -> Filled:
    """``near``: the date of an earlier page of the same FAX, if any."""
    if not layout.has_template:
        return fill_unknown(layout, rng, ctx, near)
    if layout.kind == "ledger":
        return fill_ledger(layout, rng, ctx)
    return fill_order(layout, rng, ctx, near)


# --- rendering --------------------------------------------------------------------------


def render(filled: Filled, scale: float, rng: np.random.Generator, ctx: Ctx) -> np.ndarray:
    """The filled page as an RGB array at ``scale`` x 200 dpi."""
    img = draw_form(filled.layout, scale)
    draw = ImageDraw.Draw(img)
    st = ctx.style
    arr = None
    for e in filled.entries:
        if e.how == "correct":  # print, strike through twice, write the new value above
            if arr is not None:
                img = Image.fromarray(arr)
                arr = None
            draw = ImageDraw.Draw(img)
            ta, tb = _draw_print(draw, e.box, e.old, scale, rng, st, e.align)
            x0, y0, x1, y1 = e.box
            cy = (y0 + y1) / 2 + rng.uniform(-3, 3)
            a, b = max(x0, ta - rng.uniform(2, 12)), min(x1, tb + rng.uniform(2, 12))
            for dy in (-4, 4):
                draw.line([(a * scale, (cy + dy) * scale), (b * scale, (cy + dy + rng.uniform(-2, 2)) * scale)],
                          fill=ctx.style.pen, width=max(1, round(2 * scale)))
            arr = np.asarray(img).copy()
            h = y1 - y0
            up = (x0, int(y0 - 0.25 * h), x1, int(y0 + 0.5 * h))
            _draw_hand(arr, up, e.text, scale, rng, ctx, "c")
            continue
        if e.how in ("hand", "comb-hand"):
            if arr is None:
                arr = np.asarray(img).copy()
            boxes = e.cells if e.how == "comb-hand" else (e.box,)
            texts = list(e.text) if e.how == "comb-hand" else [e.text]
            for b, t in zip(boxes, texts):
                _draw_hand(arr, b, t, scale, rng, ctx, "c" if e.how == "comb-hand" else e.align)
            continue
        if arr is not None:  # switch back to PIL drawing
            img = Image.fromarray(arr)
            draw = ImageDraw.Draw(img)
            arr = None
        if e.how == "print":
            _draw_print(draw, e.box, e.text, scale, rng, st, e.align)
        elif e.how == "comb":
            for b, ch in zip(e.cells, e.text):
                _draw_print(draw, b, ch, scale, rng, st, "c", pad=2)
        elif e.how == "multiline":
            _draw_lines(draw, e.box, e.text, scale, rng, st)
        elif e.how in ("stamp", "seal"):
            img = _draw_stamp(img, e.box, e.text, scale, rng, square=e.how == "seal")
            draw = ImageDraw.Draw(img)
    return arr if arr is not None else np.asarray(img)


def _draw_print(draw, box: Box, text: str, s: float, rng, st: Style, align: str,
                pad: float | None = None) -> tuple[float, float]:
    """Print ``text`` in ``box``; returns the x extent of the ink (200-dpi pixels)."""
    x0, y0, x1, y1 = box
    pad = rng.uniform(6, 14) if pad is None else pad
    size = st.size
    avail = (x1 - x0 - 2 * pad) * s
    font = get_font(st.font, round(size * s))
    while font.getlength(text) > avail and size > 16:  # "shrink to fit", as Excel does
        size *= 0.93
        font = get_font(st.font, round(size * s))
    room = max(0.0, (y1 - y0 - size) / 2 - 2)
    cy = (y0 + y1) / 2 + float(np.clip(rng.normal(0, st.jitter), -room, room))
    dx = float(np.clip(rng.normal(0, st.jitter), -pad + 1, pad - 1))
    if align == "r":
        xy, anchor = (x1 - pad + dx, cy), "rm"
    elif align == "c":
        xy, anchor = ((x0 + x1) / 2 + dx, cy), "mm"
    else:
        xy, anchor = (x0 + pad + dx, cy), "lm"
    draw.text((xy[0] * s, xy[1] * s), text, font=font, fill=st.ink, anchor=anchor)
    bx0, _, bx1, _ = draw.textbbox((xy[0] * s, xy[1] * s), text, font=font, anchor=anchor)
    return bx0 / s, bx1 / s


def _draw_lines(draw, box: Box, text: str, s: float, rng, st: Style):
    x0, y0, x1, y1 = box
    size = min(st.size, 30)
    font = get_font(st.font, round(size * s))
    y = y0 + size * 0.8
    for line in text.split("\n"):
        draw.text(((x0 + 4) * s, y * s), line, font=font, fill=st.ink, anchor="lm")
        y += size * 1.5


def _draw_stamp(img: Image.Image, box: Box, text: str, s: float, rng, *, square: bool) -> Image.Image:
    """A red seal: a personal name stamp (circle, vertical name) or a company seal
    (square, characters in columns right to left). Ink is uneven."""
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0) * rng.uniform(0.62, 0.9) * s
    S = max(16, int(side))
    mask = Image.new("L", (S, S), 0)
    d = ImageDraw.Draw(mask)
    lw = max(2, int(S * 0.05))
    if square:
        d.rectangle([lw, lw, S - lw, S - lw], outline=255, width=lw)
        cols = [text[k:k + 2] for k in range(0, len(text), 2)][::-1]
        cw = (S - 4 * lw) / max(1, len(cols))
        f = get_font("serif_bold", int(min(cw * 0.95, (S - 4 * lw) / 2 * 0.95)))
        for ci, col in enumerate(cols):
            for ri, ch in enumerate(col):
                d.text((2 * lw + cw * (ci + 0.5), 2 * lw + (S - 4 * lw) * (ri + 0.5) / 2), ch,
                       font=f, fill=255, anchor="mm")
    else:
        d.ellipse([lw, lw, S - lw, S - lw], outline=255, width=lw)
        n = len(text)
        f = get_font("serif_bold", int(S * (0.36 if n <= 2 else 0.26)))
        for k, ch in enumerate(text):
            d.text((S / 2, S / 2 + (k - (n - 1) / 2) * S * (0.34 if n <= 2 else 0.25)), ch,
                   font=f, fill=255, anchor="mm")
    mask = mask.rotate(float(rng.uniform(-18, 18)), resample=Image.Resampling.BILINEAR)
    m = np.asarray(mask, np.float32) / 255.0
    m *= np.clip(rng.normal(0.85, 0.2, m.shape), 0.2, 1.0) * rng.uniform(0.6, 0.95)
    red = np.array([rng.uniform(170, 220), rng.uniform(20, 60), rng.uniform(30, 70)], np.float32)
    arr = np.asarray(img).astype(np.float32)
    cx = (x0 + x1) / 2 * s + rng.normal(0, 3 * s)
    cy = (y0 + y1) / 2 * s + rng.normal(0, 3 * s)
    px, py = int(cx - S / 2), int(cy - S / 2)
    h, w = arr.shape[:2]
    ax0, ay0, ax1, ay1 = max(0, px), max(0, py), min(w, px + S), min(h, py + S)
    if ax1 <= ax0 or ay1 <= ay0:
        return img
    mm = m[ay0 - py:ay1 - py, ax0 - px:ax1 - px, None]
    region = arr[ay0:ay1, ax0:ax1]
    # multiply: red ink over black print stays black
    arr[ay0:ay1, ax0:ax1] = region * (1 - mm) + np.minimum(region, red) * mm
    return Image.fromarray(arr.astype(np.uint8))


# --- handwriting ----------------------------------------------------------------------------


def _load_handwriting(digits_npz: Path | None):
    """``samples.handwriting.HandwritingSource`` if that module exists, else None."""
    try:
        mod = importlib.import_module("faxflow.samples.handwriting")
        cls = getattr(mod, "HandwritingSource")
    except (ImportError, AttributeError) as exc:
        log.warning("handwriting requested but faxflow.samples.handwriting is not available (%s); "
                    "all entries are printed", exc)
        return None
    try:
        hw = cls(digits_npz) if digits_npz else cls()
    except Exception as exc:  # a broken data file etc.: samples stay printed
        log.warning("HandwritingSource(%s) failed: %s; all entries are printed", digits_npz or "", exc)
        return None
    if not getattr(hw, "real_digits", True):
        log.warning("handwritten digit data not found; handwritten digits are drawn from fonts")
    return hw


def _hw_image(hw, text: str, height: int, rng) -> np.ndarray:
    """Handwriting as uint8, 0 = ink (whatever the source's conventions)."""
    a = np.asarray(hw.render(text, height, rng))
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.size and a.mean() < 128:  # white ink on black: flip
        a = 255 - a
    return a


def _draw_hand(arr: np.ndarray, box: Box, text: str, s: float, rng, ctx: Ctx, align: str) -> None:
    x0, y0, x1, y1 = box
    bw, bh = (x1 - x0) * s, (y1 - y0) * s
    height = max(8, int(bh * rng.uniform(0.55, 0.8)))
    g = _hw_image(ctx.hw, text, height, rng)
    gh, gw = g.shape
    fit = min(1.0, (bw * 0.94) / max(1, gw), (bh * 0.95) / max(1, gh))
    if fit < 1.0:
        g = cv2.resize(g, (max(1, int(gw * fit)), max(1, int(gh * fit))), interpolation=cv2.INTER_AREA)
        gh, gw = g.shape
    slack_x = bw - gw
    if align == "r":
        ox = slack_x * rng.uniform(0.6, 0.95)
    elif align == "l":
        ox = slack_x * rng.uniform(0.05, 0.4)
    else:
        ox = slack_x * rng.uniform(0.3, 0.7)
    oy = (bh - gh) * rng.uniform(0.2, 0.8)
    px, py = int(x0 * s + ox), int(y0 * s + oy)
    H, W = arr.shape[:2]
    px, py = max(0, min(W - gw, px)), max(0, min(H - gh, py))
    alpha = (1.0 - g.astype(np.float32) / 255.0)[..., None]
    region = arr[py:py + gh, px:px + gw].astype(np.float32)
    pen = np.array(ctx.style.pen, np.float32)
    arr[py:py + gh, px:px + gw] = (region * (1 - alpha) + pen * alpha).astype(np.uint8)


# --- channels: how a document reaches us -------------------------------------------------

CHANNELS_ORDER = [("fax-fine", 0.30), ("fax-standard", 0.20), ("pdf-fax", 0.12), ("scan-jpeg", 0.16),
                  ("pdf-scan", 0.10), ("png", 0.06), ("photo", 0.06)]
CHANNELS_LEDGER = [("photo", 0.45), ("scan-jpeg", 0.20), ("fax-fine", 0.13), ("fax-standard", 0.08),
                   ("pdf-scan", 0.08), ("png", 0.06)]
MULTI_PAGE = {"fax-fine", "fax-standard", "pdf-fax", "pdf-scan"}
MULTIPAGE_P = 0.22  # of documents on a multi-page channel: 2-3 pages
ALL_CHANNELS = sorted({n for table in (CHANNELS_ORDER, CHANNELS_LEDGER) for n, _ in table})
CHANNELS = {"order": CHANNELS_ORDER, "ledger": CHANNELS_LEDGER}


def _fax_pages(filled: list[Filled], rng, ctx_for, mode: str, sender: tuple[str, str],
               when: dt.date) -> tuple[list[np.ndarray], list[list[str]]]:
    header = chance(rng, 0.75)
    pages, tokens = [], []
    for k, f in enumerate(filled):
        tk = []
        rgb = render(f, 204 / DPI, rng, ctx_for(f))
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if f.layout.landscape:
            if chance(rng, 0.85):
                q = pick(rng, [1, 3])
                g = degrade.rotate90(g, q)
                tk.append(f"rotate={90 * q}")
            else:
                factor = round(g.shape[0] / g.shape[1], 3)
                g = degrade.fax_reduce(g, factor)
                tk.append(f"fax-reduced={factor:.2f}")
        elif chance(rng, 0.05):
            g = degrade.rotate90(g, 2)
            tk.append("rotate=180")
        geo = degrade.random_geometry(rng, skew_sigma=1.0, shift_sigma=0.015, scale_sigma=0.015)
        g = degrade.affine(g, geo)
        tk += degrade.geometry_tokens(geo)
        g, t2 = degrade.toner(g, rng)
        tk += t2
        text = degrade.fax_header_text(rng, when, sender[0], sender[1], k + 1, len(filled)) if header else None
        b, t3 = degrade.to_fax(g, rng, mode, header=text)
        tk += t3
        pages.append(b)
        tokens.append(tk)
    return pages, tokens


def _scan_page(f: Filled, rng, ctx: Ctx, dpi: int) -> tuple[np.ndarray, list[str]]:
    tk = [f"scan-{dpi}"]
    rgb = render(f, dpi / DPI, rng, ctx)
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    r = rng.random()
    if f.layout.landscape and r < 0.4:
        q = pick(rng, [1, 3])
        g = degrade.rotate90(g, q)
        tk.append(f"rotate={90 * q}")
    elif not f.layout.landscape and r < 0.04:
        q = pick(rng, [1, 3])
        g = degrade.rotate90(g, q)
        tk.append(f"rotate={90 * q}")
    elif r > 0.96:
        g = degrade.rotate90(g, 2)
        tk.append("rotate=180")
    geo = degrade.random_geometry(rng, skew_sigma=0.8, shift_sigma=0.012, scale_sigma=0.012)
    g = degrade.affine(g, geo)
    tk += degrade.geometry_tokens(geo)
    g, t2 = degrade.toner(g, rng)
    tk += t2
    if chance(rng, 0.12):  # a FAX printed on paper, then scanned
        h, w = g.shape
        lines = pick(rng, [196, 98])
        small = cv2.resize(g, (round(w * 204 / dpi), round(h * lines / dpi)), interpolation=cv2.INTER_AREA)
        small, _ = degrade.binarize(small, rng)
        g = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        tk.append("fax-then-scan")
    g, t3 = degrade.office_scan(g, rng)
    return g, tk + t3


def _photo_page(f: Filled, rng, ctx: Ctx) -> tuple[np.ndarray, list[str], int | None]:
    # (w, h) of the photo: a messenger-app copy, phone sizes, a full 12 MP original
    frame = [(1108, 1478), (1512, 2016), (2268, 3024), (3024, 4032)][
        int(rng.choice(4, p=[0.15, 0.35, 0.35, 0.15]))]
    if f.layout.landscape:
        frame = (frame[1], frame[0])
    scale = max(frame[0] / f.layout.size[0], frame[1] / f.layout.size[1]) * 0.95
    rgb = render(f, scale, rng, ctx)
    geo = {"skew": round(float(rng.normal(0, 1.5)), 2), "shift": (0.0, 0.0), "scale": 1.0}
    rgb = degrade.affine(rgb, geo)
    tk = degrade.geometry_tokens(geo)
    img, t2 = degrade.phone_photo(rgb, rng, frame)
    tk += t2
    exif = None
    if chance(rng, 0.06):  # pixels stored sideways, EXIF says how to turn them
        exif = pick(rng, [6, 8])
        img = degrade.rotate90(img, 1 if exif == 6 else 3)
        tk.append(f"exif-orientation={exif}")
    return img, tk, exif


def _save_document(out: Path, stem: str, filled: list[Filled], rng, channel: str, ctx_for,
                   sender: tuple[str, str], when: dt.date) -> tuple[Path, list[str], list[list[str]]]:
    """Render, degrade and save; returns the path, file-level tokens, per-page tokens."""
    tokens: list[str] = []
    per_page: list[list[str]] = [[] for _ in filled]
    multi = len(filled) > 1
    if channel in ("fax-fine", "fax-standard", "pdf-fax"):
        mode = "fine" if channel == "fax-fine" else "standard" if channel == "fax-standard" else \
            pick(rng, ["fine", "fine", "standard"])
        pages, per_page = _fax_pages(filled, rng, ctx_for, mode, sender, when)
        tokens += [f"fax-{mode}"]
        lines = 196 if mode == "fine" else 98
        if channel == "pdf-fax":
            path = out / f"{stem}.pdf"
            degrade.save_pdf([Image.fromarray(p > 127) for p in pages], path, dpi=(204, lines), when=when)
            tokens.append("pdf")
        else:
            path = out / f"{stem}.tif"
            tags = not (mode == "standard" and chance(rng, 0.1))
            degrade.save_tiff(pages, path, compression="group4" if mode == "fine" else "group3",
                              dpi=(204, lines) if tags else None, min_is_white=chance(rng, 0.8))
            tokens.append("g4" if mode == "fine" else "g3")
            if not tags:
                tokens.append("no-dpi-tags")
    elif channel in ("scan-jpeg", "pdf-scan", "png"):
        if channel == "scan-jpeg":
            dpi = weighted(rng, [("300", 0.78), ("200", 0.15), ("400", 0.07)])
        elif channel == "pdf-scan":
            dpi = weighted(rng, [("300", 0.6), ("200", 0.4)])
        else:
            dpi = weighted(rng, [("300", 0.6), ("200", 0.4)])
        dpi = int(dpi)
        pages = []
        for k, f in enumerate(filled):
            g, per_page[k] = _scan_page(f, rng, ctx_for(f), dpi)
            pages.append(g)
        q = int(rng.integers(55, 93))
        if channel == "scan-jpeg":
            path = out / f"{stem}.jpg"
            degrade.save_jpeg(pages[0], path, quality=q, dpi=dpi)
            tokens.append(f"jpeg-q={q}")
        elif channel == "pdf-scan":
            path = out / f"{stem}.pdf"
            degrade.save_pdf([Image.fromarray(p) for p in pages], path, dpi=(dpi, dpi), when=when, quality=q)
            tokens += ["pdf", f"jpeg-q={q}"]
        else:
            path = out / f"{stem}.png"
            im = Image.fromarray(pages[0])
            if chance(rng, 0.5):  # the scanner's black-and-white mode
                t = int(rng.integers(120, 170))
                im = Image.fromarray(pages[0] >= t)
                tokens.append(f"threshold={t}")
            im.save(path, dpi=(dpi, dpi))
            tokens.append("png")
    elif channel == "photo":
        img, tk, _ = _photo_page(filled[0], rng, ctx_for(filled[0]))
        grey = chance(rng, 0.4)
        if grey:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        q = int(rng.integers(70, 93))
        path = out / f"{stem}.jpg"
        exif = next((int(t.split("=")[1]) for t in tk if t.startswith("exif-orientation=")), None)
        degrade.save_jpeg(img, path, quality=q, dpi=72 if chance(rng, 0.5) else None, exif_orientation=exif)
        per_page[0] = tk
        tokens += [f"jpeg-q={q}"] + (["photo-grey"] if grey else [])
    else:  # pragma: no cover
        raise ValueError(channel)
    if multi:
        tokens.insert(0, f"multipage={len(filled)}")
    for tk in per_page:  # the file's list: every page's tokens once, in page order
        tokens += [t for t in tk if t not in tokens]
    return path, tokens, per_page


# --- documents --------------------------------------------------------------------------


@dataclass
class _Plan:
    order_pool: list[str]
    ledger_pool: list[str]
    handwriting: float
    ledgers: float
    unknown: float
    hw: object | None
    channels: list[str] | None = None
    multipage: float = MULTIPAGE_P
    layouts: dict[str, Layout] = field(default_factory=lambda: dict(LAYOUTS))


def _pools(templates: list[str] | None, novel: list[Layout] = ()) -> tuple[list[str], list[str]]:
    known = {**SHIPPED, **{lay.name: lay for lay in novel}}
    names = (list(SHIPPED) if not templates else list(templates)) + [lay.name for lay in novel]
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown template(s) {bad}; the generator knows {sorted(SHIPPED)}")
    return ([n for n in names if known[n].kind == "order"],
            [n for n in names if known[n].kind == "ledger"])


def _document(out: Path, stem: str, rng: np.random.Generator, plan: _Plan) -> Path:
    if plan.ledger_pool and (not plan.order_pool or chance(rng, plan.ledgers)):
        kind, pool = "ledger", plan.ledger_pool
    else:
        kind, pool = "order", plan.order_pool
    table = CHANNELS[kind]
    if plan.channels:
        table = [(n, p) for n, p in table if n in plan.channels] or [(n, 1.0) for n in plan.channels]
    channel = weighted(rng, table)
    hand = plan.hw is not None and chance(rng, plan.handwriting)
    style = _style(rng)
    ctx = Ctx(hand=hand, hw=plan.hw, style=style)
    plain = Ctx(hand=False, hw=plan.hw, style=style)

    layouts = [plan.layouts[pick(rng, pool)]]
    if channel in MULTI_PAGE and chance(rng, plan.multipage):
        for _ in range(int(rng.integers(1, 3))):
            same = chance(rng, 0.5)
            layouts.append(layouts[0] if same else plan.layouts[pick(rng, pool)])
    if plan.unknown > 0 and chance(rng, plan.unknown):
        if channel in MULTI_PAGE and chance(rng, 0.6):
            layouts = [UNKNOWN["fax_cover"]] + layouts[:2]  # a cover sheet first; 3 pages at most
        else:
            layouts = [UNKNOWN[pick(rng, list(UNKNOWN))]]
    filled: list[Filled] = []
    for lay in layouts:  # the orders of one FAX are dated around the same time
        filled.append(fill(lay, rng, ctx, next((f.date for f in filled if f.date), None)))
    main = next((f for f in filled if f.layout.has_template), filled[0])
    sender = (main.layout.issuer or company(rng), main.layout.issuer_fax or
              f"0{rng.integers(52, 59)}-{rng.integers(200, 999)}-{rng.integers(1000, 9999)}")
    # the machine's header line: the day it was sent, on or a few days after the order date
    when = (max(f.date for f in filled if f.date) + dt.timedelta(days=int(rng.integers(0, 4)))
            if any(f.date for f in filled) else _random_date(rng))

    def ctx_for(f: Filled) -> Ctx:
        return ctx if f.layout.has_template else plain

    path, tokens, per_page = _save_document(out, stem, filled, rng, channel, ctx_for, sender, when)
    if any(f.truth["header_handwritten"] or any(r["handwritten"] for r in f.truth["rows"]) for f in filled):
        tokens.append("handwriting")
    tokens += [t for t in dict.fromkeys(t for f in filled for t in f.tokens) if t not in tokens]
    # "degradations" per page too (additive to the documented format): which page was turned
    pages = [{"index": k, **f.truth, "degradations": per_page[k]} for k, f in enumerate(filled)]
    truth = {"file": path.name, "degradations": tokens, "pages": pages}
    tpath = out / f"{stem}.truth.json"
    tpath.write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def generate(out_dir: Path, count: int, seed: int, *, templates: list[str] | None = None,
             handwriting: float = 0.0, ledgers: float = 0.0, digits_npz: Path | None = None,
             unknown: float = 0.06, channels: list[str] | None = None,
             multipage: float | None = None, novel: int = 0) -> list[Path]:
    """Write ``count`` sample files (+ ``NAME.truth.json`` each) into ``out_dir``.

    ``templates``: shipped template names to use (default: all). ``handwriting``: the
    fraction of documents with handwritten numbers (needs ``samples.handwriting``;
    skipped with a warning when it is missing). ``ledgers``: the fraction of documents
    that are ledgers (when both kinds are in ``templates``). ``unknown``: the fraction
    of documents with a page of a form that has no template. ``channels``: only these
    ways of arriving (``ALL_CHANNELS``: fax-fine, fax-standard, pdf-fax, scan-jpeg,
    pdf-scan, png, photo), e.g. to measure one of them. Returns the sample paths (not
    the truth files). ``multipage``: the fraction of documents on a multi-page channel
    (TIFF, PDF) with 2-3 pages (default ``MULTIPAGE_P``). ``novel``: make that many
    order forms nobody has seen (``forms.random_order_layout``), write their templates
    (boxes measured "by hand", a scanned-looking reference) to ``out_dir/templates/``
    and use them beside the shipped order forms; run the pipeline with that folder
    as an extra template folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    novel_layouts = [random_order_layout(np.random.default_rng([int(seed), 1_000_000 + k]), f"novel{k + 1:02d}")
                     for k in range(novel)]
    for k, lay in enumerate(novel_layouts):
        write_template(lay, out / "templates", np.random.default_rng([int(seed), 2_000_000 + k]))
    order_pool, ledger_pool = _pools(templates, novel_layouts)
    bad = [c for c in channels or [] if c not in ALL_CHANNELS]
    if bad:
        raise ValueError(f"unknown channel(s) {bad}; known: {ALL_CHANNELS}")
    hw = _load_handwriting(Path(digits_npz) if digits_npz else None) if handwriting > 0 else None
    plan = _Plan(order_pool, ledger_pool, handwriting, ledgers, unknown, hw, list(channels or []),
                 MULTIPAGE_P if multipage is None else multipage,
                 {**LAYOUTS, **{lay.name: lay for lay in novel_layouts}})
    paths = []
    for i in range(count):
        rng = np.random.default_rng([int(seed), i])
        paths.append(_document(out, f"s{i:04d}", rng, plan))
        log.info("wrote %s", paths[-1])
    return paths


# The small sample scans committed under samples/scans (``make demo`` works without
# generating): name, seed and the switches that give one of each kind.
COMMITTED = [
    ("fax_fine_yamada", 15, dict(templates=["yamada_order"], channels=["fax-fine"], handwriting=1.0,
                                unknown=0.0, multipage=0.0)),
    ("fax_standard_kawada", 3, dict(templates=["kawada_order"], channels=["fax-standard"], unknown=0.0,
                                    multipage=0.0)),
    ("fax_cover_and_order", 1, dict(templates=["yamada_order", "kawada_order"], channels=["pdf-fax"],
                                    unknown=1.0, multipage=1.0)),
    ("scan_kawada", 9, dict(templates=["kawada_order"], channels=["scan-jpeg"], unknown=0.0)),
    ("ledger_photo", 8, dict(templates=["ledger_nyushukko"], channels=["photo"], handwriting=1.0,
                             unknown=0.0)),
]


def write_committed(out_dir: Path) -> list[Path]:
    """(Re)write the committed sample scans: ``NAME.ext`` + ``NAME.truth.json`` each."""
    import shutil
    import tempfile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seed, kw in COMMITTED:
        with tempfile.TemporaryDirectory() as tmp:
            [p] = generate(Path(tmp), 1, seed, **kw)
            truth = json.loads((Path(tmp) / "s0000.truth.json").read_text("utf-8"))
            dest = out / (name + p.suffix)
            shutil.move(str(p), dest)
            truth["file"] = dest.name
            (out / f"{name}.truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n",
                                                   encoding="utf-8")
            paths.append(dest)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m faxflow.samples.generate",
                                 description="Generate sample scans with ground truth.")
    ap.add_argument("out", type=Path)
    ap.add_argument("--committed", action="store_true",
                    help="write the small committed sample set (samples/scans) into OUT instead")
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--templates", default=None, help="comma-separated template names")
    ap.add_argument("--handwriting", type=float, default=0.0)
    ap.add_argument("--ledgers", type=float, default=0.0)
    ap.add_argument("--unknown", type=float, default=0.06)
    ap.add_argument("--novel", type=int, default=0,
                    help="also make N never-seen order forms (templates in OUT/templates)")
    ap.add_argument("--digits", type=Path, default=None, help="handwritten digits .npz")
    ap.add_argument("--channels", default=None, help="comma-separated: " + ",".join(ALL_CHANNELS))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.committed:
        paths = write_committed(args.out)
        print(f"{len(paths)} samples in {args.out}")
        return 0
    tpl = [t.strip() for t in args.templates.split(",")] if args.templates else None
    paths = generate(args.out, args.count, args.seed, templates=tpl, handwriting=args.handwriting,
                     ledgers=args.ledgers, digits_npz=args.digits, unknown=args.unknown,
                     channels=args.channels.split(",") if args.channels else None, novel=args.novel)
    print(f"{len(paths)} samples in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
