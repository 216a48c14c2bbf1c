"""Synthetic forms for the match / align / crop tests (not collected by pytest).

``order_form()`` draws an A4 order sheet at 200 dpi (title, labelled header boxes, a
10-row ruled table, footer), ``ledger_form()`` a different form, and ``distort()``
moves a page the way scanners and FAX machines do and returns the exact
reference->page matrix, so tests can measure where zones land.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from faxflow.templates.model import FieldSpec, TableSpec, Template

GOTHIC = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
MINCHO = "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf"
W, H = 1654, 2339  # A4 at 200 dpi

_fonts: dict = {}


def font(size: int, path: str = GOTHIC) -> ImageFont.FreeTypeFont:
    key = (path if Path(path).exists() else GOTHIC, size)
    if key not in _fonts:
        _fonts[key] = ImageFont.truetype(key[0], size)
    return _fonts[key]


@dataclass
class Form:
    name: str
    image: np.ndarray  # the blank form, uint8 0/255
    template: Template
    layout: Template | None = None  # the pitch-based twin used to place filled-in text


    def fill(self, values: dict[str, str], *, font_path: str = GOTHIC, size: int = 30) -> np.ndarray:
        """The form with text written into fields ("order_no") and cells ("lines[2].quantity")."""
        im = Image.fromarray(self.image.copy())
        d = ImageDraw.Draw(im)
        for key, text in values.items():
            x0, y0, x1, y1 = box_of(self.layout or self.template, key)
            f = font(size, font_path)
            d.text((x0 + 12, (y0 + y1) // 2), text, fill=0, font=f, anchor="lm")
        return np.asarray(im)


def box_of(t: Template, key: str) -> tuple[int, int, int, int]:
    if "[" in key:
        table, rest = key.split("[", 1)
        row, col = rest.split("].")
        spec = next(s for s in t.tables if s.name == table)
        column = next(c for c in spec.columns if c.name == col)
        return TableSpec.cell_box(column, spec.row_boxes()[int(row)])
    f = t.field(key)
    assert f is not None, key
    return f.box


def _grid(d: ImageDraw.ImageDraw, xs: list[int], ys: list[int], width: int = 2) -> None:
    for y in ys:
        d.line([(xs[0], y), (xs[-1], y)], fill=0, width=width)
    for x in xs:
        d.line([(x, ys[0]), (x, ys[-1])], fill=0, width=width)


def order_form(path: Path, *, company: str = "田中工業株式会社", name: str = "tanaka_order",
               keywords: tuple[str, ...] = ("田中工業",)) -> Form:
    """An order sheet: header boxes at the top right, a 7-column x 10-row table."""
    im = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(im)
    d.text((W // 2, 110), "注　文　書", fill=0, font=font(80), anchor="mm")
    d.text((120, 200), f"{company}　御中", fill=0, font=font(40), anchor="lm")
    d.text((120, 260), "下記のとおり注文いたします。", fill=0, font=font(28), anchor="lm")
    labels = [("注文番号", (1100, 170, 1540, 230)), ("注文日", (1100, 240, 1540, 300))]
    for label, (x0, y0, x1, y1) in labels:
        d.rectangle((x0 - 200, y0, x1, y1), outline=0, width=2)
        d.line([(x0, y0), (x0, y1)], fill=0, width=2)
        d.text((x0 - 190, (y0 + y1) // 2), label, fill=0, font=font(30), anchor="lm")
    d.text((120, 355), "ご担当", fill=0, font=font(30), anchor="lm")
    d.line([(260, 390), (900, 390)], fill=0, width=2)  # an underlined field
    d.text((1100, 360), "株式会社サンプル商会　〒100-0001 東京都千代田区", fill=0, font=font(22), anchor="lm")
    d.text((1100, 395), "TEL 03-1234-5678　FAX 03-1234-5679", fill=0, font=font(22), anchor="lm")
    xs = [100, 380, 860, 1000, 1080, 1260, 1440, 1560]
    heads = ["品番", "品名", "数量", "単位", "単価", "金額", "納期"]
    ys = [560, 630] + [630 + 70 * (i + 1) for i in range(10)]
    _grid(d, xs, ys)
    d.rectangle((xs[0], ys[0], xs[-1], ys[-1]), outline=0, width=4)
    for h, a, b in zip(heads, xs, xs[1:]):
        d.text(((a + b) // 2, 595), h, fill=0, font=font(30), anchor="mm")
    d.rectangle((100, 1400, 1560, 1600), outline=0, width=2)
    d.text((120, 1430), "備考", fill=0, font=font(28), anchor="lm")
    d.text((100, 1680), "※ 納期に変更がある場合はご連絡ください。", fill=0, font=font(26), anchor="lm")
    for i, lab in enumerate(["承認", "検印", "担当"]):
        x = 1120 + i * 145
        d.rectangle((x, 1760, x + 140, 1900), outline=0, width=2)
        d.line([(x, 1800), (x + 140, 1800)], fill=0, width=2)
        d.text((x + 70, 1780), lab, fill=0, font=font(24), anchor="mm")
    img = np.asarray(im).copy()
    ref = path / f"{name}.png"
    cv2.imwrite(str(ref), img)
    cols = tuple(
        FieldSpec(name=n, type=t, box=(a, 630, b, 1330))
        for n, t, a, b in zip(["part_no", "description", "quantity", "unit", "unit_price", "amount", "due_date"],
                              ["part_number", "text", "quantity", "text", "money", "money", "date"], xs, xs[1:]))
    table = TableSpec(name="lines", box=(100, 630, 1560, 1330), columns=cols, row_pitch=70, row_count=10,
                      key_column="part_no")
    tpl = Template(
        name=name, path=path / f"{name}.yaml", reference_image=ref, dpi=200, title=company,
        keywords=keywords,
        fields=(FieldSpec("order_no", box=(1100, 170, 1540, 230)),
                FieldSpec("order_date", type="date", box=(1100, 240, 1540, 300)),
                FieldSpec("buyer", box=(260, 325, 900, 395))),
        tables=(table,))
    return Form(name, img, tpl)


def ledger_form(path: Path, *, name: str = "ledger", rows_from: str = "pitch") -> Form:
    """A different form: a stock ledger with a 6-column x 20-row table."""
    im = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(im)
    d.text((150, 140), "入出庫台帳", fill=0, font=font(64, MINCHO), anchor="lm")
    d.text((1000, 140), "品名：", fill=0, font=font(34, MINCHO), anchor="lm")
    d.line([(1100, 170), (1520, 170)], fill=0, width=2)
    d.text((1000, 230), "保管場所：", fill=0, font=font(30, MINCHO), anchor="lm")
    d.line([(1150, 255), (1520, 255)], fill=0, width=2)
    xs = [130, 300, 560, 900, 1080, 1260, 1520]
    heads = ["月日", "品番", "摘要", "入庫", "出庫", "残高"]
    ys = [330, 400] + [400 + 85 * (i + 1) for i in range(20)]
    _grid(d, xs, ys, width=3)
    for h, a, b in zip(heads, xs, xs[1:]):
        d.text(((a + b) // 2, 365), h, fill=0, font=font(32, MINCHO), anchor="mm")
    d.text((130, 2200), "No.", fill=0, font=font(30, MINCHO), anchor="lm")
    img = np.asarray(im).copy()
    ref = path / f"{name}.png"
    cv2.imwrite(str(ref), img)
    cols = tuple(FieldSpec(name=n, box=(a, 400, b, 2100))
                 for n, a, b in zip(["date", "part_no", "description", "in_qty", "out_qty", "balance"], xs, xs[1:]))
    table = TableSpec(name="entries", box=(130, 400, 1520, 2100), columns=cols,
                      row_pitch=None if rows_from == "ruling" else 85, row_count=None if rows_from == "ruling" else 20,
                      rows_from=rows_from, key_column="date")
    tpl = Template(name=name, path=path / f"{name}.yaml", reference_image=ref, dpi=200, kind="ledger",
                   fields=(FieldSpec("item", box=(1100, 110, 1520, 170)),), tables=(table,))
    layout = replace(tpl, tables=(replace(table, row_pitch=85, row_count=20, rows_from="pitch"),))
    return Form(name, img, tpl, layout)


def distort(img: np.ndarray, *, angle: float = 0.0, scale: float = 1.0, shift: tuple[float, float] = (0, 0),
            rot90: int = 0, fax_standard: bool = False, speckle: float = 0.0, header: bool = False,
            perspective: float = 0.0, bend: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A binarized page made from ``img`` and the 3x3 matrix mapping img pixels to page pixels.

    ``shift`` is a fraction of the page size; ``rot90`` counts quarter turns
    (counter-clockwise, like np.rot90); ``fax_standard`` halves the vertical
    resolution and stretches it back (what FAX standard mode plus the aspect fix do);
    ``perspective`` moves the top corners inwards by that fraction of the width (a
    phone photo taken from below); ``bend`` pushes the middle of the page down by that
    many pixels (a curved sheet) - not part of the returned matrix.
    """
    h, w = img.shape
    c = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]], float)
    a = np.deg2rad(angle)
    rs = np.array([[scale * np.cos(a), scale * np.sin(a), 0], [-scale * np.sin(a), scale * np.cos(a), 0], [0, 0, 1]])
    t = np.array([[1, 0, shift[0] * w], [0, 1, shift[1] * h], [0, 0, 1]], float)
    m = t @ c @ rs @ np.linalg.inv(c)
    if perspective:
        d = perspective * w
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = np.float32([[d, 0], [w - d, 0], [w, h], [0, h]])
        m = cv2.getPerspectiveTransform(src, dst).astype(float) @ m
    out = cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    if bend:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dy = (bend * np.sin(np.pi * xx / w)).astype(np.float32)
        out = cv2.remap(out, xx, yy - dy, cv2.INTER_LINEAR, borderValue=255)
    if header:
        im = Image.fromarray(out)
        ImageDraw.Draw(im).text((40, 8), "2026/11/20 10:32  FROM:03-1234-5679  株式会社サンプル商会  P.001",
                                fill=0, font=font(22), anchor="la")
        out = np.asarray(im).copy()
    if fax_standard:
        small = cv2.resize(out, (w, h // 2), interpolation=cv2.INTER_AREA)
        small = np.where(small < 128, 0, 255).astype(np.uint8)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    out = np.where(out < 128, 0, 255).astype(np.uint8)
    if speckle:
        rng = np.random.default_rng(seed)
        n = int(speckle * w * h)
        ys, xs = rng.integers(0, h - 2, n), rng.integers(0, w - 2, n)
        out[ys, xs] = 0
        big = rng.random(n) < 0.3
        out[ys[big] + 1, xs[big]] = 0
        out[ys[big], xs[big] + 1] = 0
    for _ in range(rot90 % 4):
        hh, ww = out.shape
        out = np.ascontiguousarray(np.rot90(out))
        # np.rot90 (counter-clockwise): new (x, y) = (y, ww - 1 - x)
        m = np.array([[0, 1, 0], [-1, 0, ww - 1], [0, 0, 1]], float) @ m
    return out, m


def corners(t: Template) -> np.ndarray:
    """Every zone corner of the template (header fields, table box), as (N, 2) reference pixels."""
    pts = []
    for b in [f.box for f in t.fields] + [tb.box for tb in t.tables]:
        x0, y0, x1, y1 = b
        pts += [(x0, y0), (x1, y0), (x0, y1), (x1, y1)]
    return np.array(pts, float)


def corner_error(t: Template, ref_to_page: np.ndarray, page_to_ref: np.ndarray) -> float:
    """Largest distance (reference pixels) between a zone corner and where alignment puts it."""
    p = corners(t)
    ph = np.c_[p, np.ones(len(p))]
    q = (page_to_ref @ ref_to_page @ ph.T).T
    q = q[:, :2] / q[:, 2:]
    return float(np.abs(q - p).max())
