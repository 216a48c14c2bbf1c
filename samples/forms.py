"""Blank forms as data: each layout draws the form AND writes its template YAML.

A ``Layout`` lists what is printed on a sheet of stationery (texts, rules, label
cells), where values go (``Field`` = a header box, ``Table`` = ruled rows and
columns) and where other things get written that faxflow does not read (``Slot``:
the supplier's name, remarks, stamps). From the same object we

* draw the blank form at any resolution (``draw_form``),
* write the template YAML and its reference PNG (``write_templates``), so every box
  in the YAML matches the drawing by construction,
* let ``samples.generate`` fill the form (``Field.inner``, ``Table.cell``, ...).

All coordinates are pixels at 200 dpi (A4 portrait 1654 x 2339, landscape
2339 x 1654); ``scale`` draws the same form at another resolution.

Regenerate the shipped templates after changing a layout::

    python -m faxflow.samples.forms --write templates/forms
"""

from __future__ import annotations

import argparse
import functools
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

Box = tuple[int, int, int, int]
RGB = tuple[int, int, int]

DPI = 200
A4_PORTRAIT = (1654, 2339)
A4_LANDSCAPE = (2339, 1654)

# --- fonts ---------------------------------------------------------------------------

_FONT_DIR = Path("/usr/share/fonts")
FONT_FILES: dict[str, tuple[str, int]] = {
    "gothic": ("opentype/ipafont-gothic/ipag.ttf", 0),
    "pgothic": ("opentype/ipafont-gothic/ipagp.ttf", 0),
    "mincho": ("opentype/ipafont-mincho/ipam.ttf", 0),
    "pmincho": ("opentype/ipafont-mincho/ipamp.ttf", 0),
    "vlgothic": ("truetype/vlgothic/VL-Gothic-Regular.ttf", 0),
    "vlpgothic": ("truetype/vlgothic/VL-PGothic-Regular.ttf", 0),
    "sans": ("opentype/noto/NotoSansCJK-Regular.ttc", 0),  # index 0 = JP
    "sans_bold": ("opentype/noto/NotoSansCJK-Bold.ttc", 0),
    "sans_mono": ("opentype/noto/NotoSansCJK-Regular.ttc", 5),  # Noto Sans Mono CJK JP
    "serif": ("opentype/noto/NotoSerifCJK-Regular.ttc", 0),
    "serif_bold": ("opentype/noto/NotoSerifCJK-Bold.ttc", 0),
}
# Used when a face is not installed (e.g. a minimal system): the first one present.
_FALLBACK_ORDER = ("gothic", "sans", "vlgothic", "mincho", "serif")


def font_path(key: str) -> tuple[Path, int]:
    rel, index = FONT_FILES[key]
    path = _FONT_DIR / rel
    if path.exists():
        return path, index
    for other in _FALLBACK_ORDER:
        rel, index = FONT_FILES[other]
        if (_FONT_DIR / rel).exists():
            return _FONT_DIR / rel, index
    raise FileNotFoundError(
        f"no Japanese font found under {_FONT_DIR} (wanted {key}); run 'make setup' "
        "(installs fonts-ipafont-gothic, fonts-ipafont-mincho, fonts-vlgothic, fonts-noto-cjk)"
    )


@functools.lru_cache(maxsize=512)
def get_font(key: str, px: int) -> ImageFont.FreeTypeFont:
    path, index = font_path(key)
    return ImageFont.truetype(str(path), max(6, int(px)), index=index)


# --- the layout objects ----------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Pre-printed text. ``size`` is the font size in pixels at 200 dpi."""

    text: str
    x: float
    y: float
    size: float = 28
    font: str = ""  # "" = the layout's stationery font
    anchor: str = "lm"


@dataclass(frozen=True)
class Rule:
    """A straight pre-printed line (horizontal or vertical), ``width`` in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float
    width: float = 2


@dataclass(frozen=True)
class Cell:
    """A ruled rectangle, optionally shaded (``fill`` = RGB), with a centred label."""

    box: Box
    label: str = ""
    size: float = 26
    width: float = 2
    fill: RGB | None = None


@dataclass(frozen=True)
class Field:
    """A header value box (read by faxflow). ``box`` is the ruled outline;
    ``comb`` > 0 draws that many comb cells (one character each)."""

    name: str
    box: Box
    type: str = "text"
    pattern: str | None = None
    hint: str = "printed"
    required: bool = False
    allowed: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    comb: int = 0
    align: str = "l"  # usual alignment of printed content: l | c | r
    width: float = 2

    @property
    def inner(self) -> Box:
        """The box written to the template: inside the ruling."""
        return inset(self.box, int(self.width // 2) + 3)

    def comb_cells(self) -> list[Box]:
        x0, y0, x1, y1 = self.box
        step = (x1 - x0) / self.comb
        return [(round(x0 + i * step), y0, round(x0 + (i + 1) * step), y1) for i in range(self.comb)]


@dataclass(frozen=True)
class Column:
    """A table column between the ruling lines ``x0`` and ``x1``. ``read=False``
    for pre-printed columns (line numbers) that are not in the template."""

    name: str
    title: str
    x0: int
    x1: int
    type: str = "text"
    pattern: str | None = None
    hint: str = "printed"
    allowed: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    align: str = "l"
    read: bool = True
    numbered: bool = False  # pre-printed 1, 2, 3 ... (read=False columns)

    @property
    def inner_x(self) -> tuple[int, int]:
        return self.x0 + 3, self.x1 - 3


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    head_y0: int  # top of the column-title row
    head_h: int  # height of the column-title row
    pitch: int  # row pitch in pixels
    count: int  # number of rows
    key: str  # a row whose key column is empty counts as empty
    rows_from: str = "pitch"  # pitch | ruling (what the template says)
    head_fill: RGB | None = None
    head_size: float = 26
    thick_every: int = 0  # a thicker rule every N rows (ledgers)
    outer_width: float = 4
    inner_width: float = 2

    @property
    def x0(self) -> int:
        return self.columns[0].x0

    @property
    def x1(self) -> int:
        return self.columns[-1].x1

    @property
    def body_y0(self) -> int:
        return self.head_y0 + self.head_h

    @property
    def body_y1(self) -> int:
        return self.body_y0 + self.pitch * self.count

    @property
    def box(self) -> Box:
        """The table body (below the column titles, all rows)."""
        return (self.x0, self.body_y0, self.x1, self.body_y1)

    @property
    def read_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.read)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def row_band(self, i: int) -> tuple[int, int]:
        return self.body_y0 + i * self.pitch, self.body_y0 + (i + 1) * self.pitch

    def cell(self, col: Column | str, i: int) -> Box:
        """Inside of the cell of column ``col`` in row ``i`` (ruling excluded)."""
        if isinstance(col, str):
            col = self.column(col)
        y0, y1 = self.row_band(i)
        x0, x1 = col.inner_x
        return (x0, y0 + 2, x1, y1 - 2)


@dataclass(frozen=True)
class Slot:
    """A place that gets filled in but is not read: ``kind`` text | multiline | stamp."""

    name: str
    box: Box
    kind: str = "text"
    ruled: bool = False  # draw the outline


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    kind: str | None  # order | ledger | None (a form faxflow has no template for)
    size: tuple[int, int]
    font: str = "gothic"  # stationery font
    ink: RGB = (20, 20, 20)  # stationery printing colour
    texts: tuple[Text, ...] = ()
    rules: tuple[Rule, ...] = ()
    cells: tuple[Cell, ...] = ()
    fields: tuple[Field, ...] = ()
    tables: tuple[Table, ...] = ()
    slots: tuple[Slot, ...] = ()
    keywords: tuple[str, ...] = ()
    anchors: tuple[tuple[str, int], ...] = ()  # (anchor text, index into texts)
    checks: tuple[str, ...] = ()
    year_from: str | None = None
    has_template: bool = True  # False: a form faxflow has no template for (unknown pages)
    issuer: str = ""  # the company that sends this form (FAX header line)
    issuer_fax: str = ""
    # how this customer's values look (see PART_FORMATS / ORDER_NO_FORMATS / DATE_STYLES)
    part_format: str = "AA-0000"
    order_no_format: str = "PO6|6"
    date_style: str = "kanji"
    due_style: str = "m/d"  # m/d (12/5) | 月日 (12月5日)
    buyer_names: tuple[str, ...] = ()  # the buyer box mostly holds one of these
    reference_noise: bool = False  # reference PNG looks like a scan (user-made templates)

    @property
    def landscape(self) -> bool:
        return self.size[0] > self.size[1]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)


def inset(box: Box, d: int) -> Box:
    x0, y0, x1, y1 = box
    return (x0 + d, y0 + d, x1 - d, y1 - d)


def text_box(t: Text, font_key: str, pad: int = 8) -> Box:
    """Bounding box of a pre-printed text at 200 dpi (for template anchors)."""
    f = get_font(font_key, round(t.size))
    x0, y0, x1, y1 = f.getbbox(t.text, anchor=t.anchor)
    return (int(t.x + x0) - pad, int(t.y + y0) - pad, int(t.x + x1) + pad + 1, int(t.y + y1) + pad + 1)


# --- drawing -------------------------------------------------------------------------


def _rect(draw: ImageDraw.ImageDraw, s: float, x0, y0, x1, y1, fill) -> None:
    draw.rectangle([round(x0 * s), round(y0 * s), max(round(x0 * s), round(x1 * s) - 1),
                    max(round(y0 * s), round(y1 * s) - 1)], fill=fill)


def _hline(draw, s, x0, x1, y, w, fill) -> None:
    w = max(w, 1 / s)  # never thinner than one pixel
    _rect(draw, s, x0 - w / 2, y - w / 2, x1 + w / 2, y + w / 2, fill)


def _vline(draw, s, x, y0, y1, w, fill) -> None:
    w = max(w, 1 / s)
    _rect(draw, s, x - w / 2, y0 - w / 2, x + w / 2, y1 + w / 2, fill)


def _outline(draw, s, box, w, fill) -> None:
    x0, y0, x1, y1 = box
    _hline(draw, s, x0, x1, y0, w, fill)
    _hline(draw, s, x0, x1, y1, w, fill)
    _vline(draw, s, x0, y0, y1, w, fill)
    _vline(draw, s, x1, y0, y1, w, fill)


def draw_text(draw: ImageDraw.ImageDraw, s: float, x: float, y: float, text: str,
              font_key: str, size: float, fill, anchor: str = "lm") -> None:
    f = get_font(font_key, round(size * s))
    draw.text((x * s, y * s), text, font=f, fill=fill, anchor=anchor)


def draw_form(layout: Layout, scale: float = 1.0, *, ink: RGB | None = None,
              paper: RGB = (255, 255, 255)) -> Image.Image:
    """The blank form at ``scale`` x 200 dpi, as an RGB image."""
    s = scale
    w, h = round(layout.size[0] * s), round(layout.size[1] * s)
    img = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(img)
    ink = ink or layout.ink

    for c in layout.cells:
        if c.fill:
            _rect(d, s, *c.box, c.fill)
    for t in layout.tables:
        if t.head_fill:
            _rect(d, s, t.x0, t.head_y0, t.x1, t.body_y0, t.head_fill)

    for r in layout.rules:
        if r.y0 == r.y1:
            _hline(d, s, r.x0, r.x1, r.y0, r.width, ink)
        else:
            _vline(d, s, r.x0, r.y0, r.y1, r.width, ink)
    for c in layout.cells:
        _outline(d, s, c.box, c.width, ink)
        if c.label:
            x0, y0, x1, y1 = c.box
            draw_text(d, s, (x0 + x1) / 2, (y0 + y1) / 2, c.label, layout.font, c.size, ink, "mm")
    for f in layout.fields:
        if f.width:
            _outline(d, s, f.box, f.width, ink)
        if f.comb:
            x0, y0, x1, y1 = f.box
            for cb in f.comb_cells()[1:]:
                _vline(d, s, cb[0], y1 - (y1 - y0) * 0.4, y1, 1.5, ink)
    for sl in layout.slots:
        if sl.ruled:
            _outline(d, s, sl.box, 2, ink)
    for t in layout.tables:
        _draw_table(d, s, t, layout, ink)
    for t in layout.texts:
        draw_text(d, s, t.x, t.y, t.text, t.font or layout.font, t.size, ink, t.anchor)
    return img


def _draw_table(d, s, t: Table, layout: Layout, ink) -> None:
    ow, iw = t.outer_width, t.inner_width
    # horizontal rules
    _hline(d, s, t.x0, t.x1, t.head_y0, ow, ink)
    _hline(d, s, t.x0, t.x1, t.body_y0, iw + 1, ink)
    for i in range(1, t.count):
        y = t.body_y0 + i * t.pitch
        w = iw + 1 if t.thick_every and i % t.thick_every == 0 else iw
        _hline(d, s, t.x0, t.x1, y, w, ink)
    _hline(d, s, t.x0, t.x1, t.body_y1, ow, ink)
    # vertical rules
    for k, c in enumerate(t.columns):
        _vline(d, s, c.x0, t.head_y0, t.body_y1, ow if k == 0 else iw, ink)
    _vline(d, s, t.x1, t.head_y0, t.body_y1, ow, ink)
    # column titles and pre-printed numbers
    for c in t.columns:
        draw_text(d, s, (c.x0 + c.x1) / 2, t.head_y0 + t.head_h / 2, c.title, layout.font,
                  t.head_size, ink, "mm")
        if c.numbered:
            for i in range(t.count):
                y0, y1 = t.row_band(i)
                draw_text(d, s, (c.x0 + c.x1) / 2, (y0 + y1) / 2, str(i + 1), layout.font,
                          t.head_size * 0.9, ink, "mm")


def reference_image(layout: Layout) -> Image.Image:
    """The reference PNG of a template: the blank form at 200 dpi, greyscale. For
    ``reference_noise`` layouts it looks like a scan of the blank sheet (paper tone,
    slight blur and noise), as a user-made reference would."""
    img = draw_form(layout).convert("L")
    if not layout.reference_noise:
        return img
    rng = np.random.default_rng(zlib.crc32(layout.name.encode()))
    a = np.asarray(img, np.float32)
    paper, ink = rng.uniform(235, 250), rng.uniform(15, 50)
    a = ink + (paper - ink) * a / 255.0
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.5, 0.9))
    a += rng.normal(0, rng.uniform(1.0, 3.0), a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


# --- template YAML -------------------------------------------------------------------

_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _y(value) -> str:
    """A YAML scalar: bare when safe, else single-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    s = str(value)
    safe = s and all(ch in _PLAIN or ord(ch) > 0x2E80 for ch in s) and not s[0].isdigit()
    if safe and s.lower() not in {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}:
        return s
    return "'" + s.replace("'", "''") + "'"


def _ybox(b) -> str:
    return "[" + ", ".join(str(int(v)) for v in b) + "]"


def _opts(spec, box_key: str, box_val: str) -> str:
    parts = [f"{box_key}: {box_val}", f"type: {spec.type}"]
    if spec.hint != "printed":
        parts.append(f"hint: {spec.hint}")
    if spec.pattern:
        parts.append(f"pattern: {_y(spec.pattern)}")
    if spec.allowed:
        parts.append("allowed: [" + ", ".join(_y(a) for a in spec.allowed) + "]")
    if getattr(spec, "required", False):
        parts.append("required: true")
    if spec.min is not None:
        parts.append(f"min: {_y(spec.min)}")
    if spec.max is not None:
        parts.append(f"max: {_y(spec.max)}")
    return "{" + ", ".join(parts) + "}"


def _human(rng, box: Box, d: int) -> Box:
    """A box as a person reads it off an image viewer: each edge a few pixels off,
    never outside the ruled cell by more than the ruling itself."""
    x0, y0, x1, y1 = box
    j = lambda: int(rng.integers(-d, d + 1))  # noqa: E731
    return (x0 + j(), y0 + j(), x1 + j(), y1 + j())


def _human_columns(rng, cols, d: int, tbox: Box) -> list[tuple[int, int]]:
    xs = []
    for c in cols:
        x0, x1 = c.inner_x
        xs.append([max(tbox[0], x0 + int(rng.integers(-d, d + 1))),
                   min(tbox[2], x1 + int(rng.integers(-d, d + 1)))])
    for a, b in zip(xs, xs[1:]):  # people share the edge rather than overlap
        if a[1] > b[0]:
            a[1] = b[0] = (a[1] + b[0]) // 2
    return [tuple(x) for x in xs]


def template_yaml(layout: Layout, human: np.random.Generator | None = None) -> str:
    """The template YAML of a layout. With ``human`` (a Generator) the boxes are a few
    pixels off, as in a template someone wrote by hand, and anchors may be left out."""
    if not layout.has_template or layout.kind is None:
        raise ValueError(f"{layout.name} is not a template layout")
    head = ([
        f"# {layout.name}.yaml: {layout.title}",
        "# Written by `python -m faxflow.samples.forms --write templates/forms` from the layout",
        "# in samples/forms.py, together with the reference image: edit the layout, not this file.",
    ] if human is None else [
        f"# {layout.name}.yaml: {layout.title} (a generated form; boxes measured by hand)",
    ])
    out = head + [
        f"name: {layout.name}",
        f"title: {_y(layout.title)}",
        f"kind: {layout.kind}",
        "reference:",
        f"  image: {layout.name}.png",
        f"  dpi: {DPI}",
        "match:",
        "  keywords: [" + ", ".join(_y(k) for k in layout.keywords) + "]",
    ]
    if layout.anchors and (human is None or human.random() < 0.5):
        out.append("  anchors:")
        for text, idx in layout.anchors:
            t = layout.texts[idx]
            out.append(f"    - {{text: {_y(text)}, box: {_ybox(text_box(t, t.font or layout.font))}}}")
    if layout.fields:
        out.append("fields:")
        width = max(len(f.name) for f in layout.fields) + 1
        for f in layout.fields:
            box = f.inner if human is None else _human(human, f.inner, 5)
            out.append(f"  {(f.name + ':').ljust(width)} {_opts(f, 'box', _ybox(box))}")
    if layout.tables:
        out.append("tables:")
        for t in layout.tables:
            out.append(f"  {t.name}:")
            tbox = t.box if human is None else _human(human, t.box, 3)
            out.append(f"    box: {_ybox(tbox)}")
            if t.rows_from == "ruling" and human is None:
                out.append(f"    rows: {{from: ruling, pitch: {t.pitch}, count: {t.count}}}")
            elif t.rows_from == "ruling":  # a newcomer writes the short form
                out.append("    rows: {from: ruling}")
            else:
                out.append(f"    rows: {{pitch: {t.pitch}, count: {t.count}}}")
            out.append(f"    key: {t.key}")
            out.append("    columns:")
            cols = t.read_columns
            width = max(len(c.name) for c in cols) + 1
            xs = [c.inner_x for c in cols] if human is None else _human_columns(human, cols, 4, tbox)
            for c, x in zip(cols, xs):
                out.append(f"      {(c.name + ':').ljust(width)} {_opts(c, 'x', _ybox(x))}")
    if layout.checks:
        out.append("checks: [" + ", ".join(layout.checks) + "]")
    if layout.year_from:
        out.append(f"year_from: {layout.year_from}")
    return "\n".join(out) + "\n"


def write_template(layout: Layout, out_dir: Path, human: np.random.Generator | None = None) -> list[Path]:
    """Write ``NAME.yaml`` and its reference ``NAME.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    yml = out_dir / f"{layout.name}.yaml"
    png = out_dir / f"{layout.name}.png"
    yml.write_text(template_yaml(layout, human), encoding="utf-8")
    # 1-bit would be smaller but a grey reference keeps the anti-aliased print.
    reference_image(layout).save(png, dpi=(DPI, DPI), optimize=True)
    return [yml, png]


def write_templates(out_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Write ``NAME.yaml`` and ``NAME.png`` for every shipped layout (or ``names``)."""
    written = []
    for layout in SHIPPED.values():
        if not names or layout.name in names:
            written += write_template(layout, out_dir)
    return written


# --- the layouts ---------------------------------------------------------------------

UNITS = ("個", "本", "枚", "箱", "式", "台", "組", "袋", "巻", "缶", "kg", "m")

# Part numbers and order numbers as customers write them: format key -> template pattern.
PART_FORMATS: dict[str, str | None] = {
    "AA-0000": r"^[A-Z]{2}-\d{4}$",  # BT-0830
    "0A-000|000-0000": r"^(\d[A-Z]-\d{3}|\d{3}-\d{4})$",  # 7M-221, 221-0457
    "A-000": r"^[A-Z]{1,3}-\d{3,4}$",  # in-house stock codes: C-4921, BR-620
    "A0000": r"^[A-Z]\d{4,5}$",  # H30512
    "AAA-000-00": r"^[A-Z]{3}-\d{3}-\d{2}$",  # HBT-030-08
    "00000-00": r"^\d{5}-\d{2}$",  # 10452-03
    "T00000": None,
}
ORDER_NO_FORMATS: dict[str, str | None] = {
    "PO6|6": r"^(PO-)?\d{6}$",
    "6": r"^\d{6}$",
    "A-5": r"^[A-Z]-\d{5}$",
    "2-4": r"^\d{2}-\d{4}$",
    "D-5": None,
}
DATE_STYLES = ("kanji", "slash")  # 2026年11月20日 / 令和8年11月20日  or  2026/11/20 / R8.11.20
SHADE = (232, 232, 232)


def _label(box: Box, text: str, size: float = 26, fill: RGB | None = SHADE) -> Cell:
    return Cell(box, text, size=size, fill=fill)


def yamada_order() -> Layout:
    """Portrait PO of a machining company: title centred, number/date top right,
    10 rows of 70 px, mincho stationery."""
    cols = (
        Column("part_no", "品番", 110, 300, "part_number", pattern=PART_FORMATS["AA-0000"]),
        Column("description", "品名", 300, 760, "text"),
        Column("quantity", "数量", 760, 900, "quantity", hint="auto", align="r", min=1),
        Column("unit", "単位", 900, 980, "text", allowed=UNITS, align="c"),
        Column("unit_price", "単価", 980, 1140, "money", align="r"),
        Column("amount", "金額", 1140, 1340, "money", align="r"),
        Column("due_date", "納期", 1340, 1544, "date", hint="auto", align="c"),
    )
    texts = (
        Text("注　文　書", 827, 150, 64, "serif_bold", "mm"),
        Text("御中", 830, 300, 34),
        Text("下記の通り注文いたします。", 110, 380, 30),
        Text("株式会社山田製作所", 1000, 450, 40, "serif_bold"),
        Text("〒501-6123 岐阜県岐阜市柳津町本郷4-12", 1000, 500, 22),
        Text("TEL 058-279-0411　FAX 058-279-0412", 1000, 532, 22),
        Text("※ 納期に変更が生じる場合は、必ず事前にご連絡ください。", 110, 1700, 24),
        Text("※ 納品書・請求書には注文番号を必ずご記入ください。", 110, 1740, 24),
        Text("山田製作所 様式P-01", 1544, 2240, 20, anchor="rm"),
    )
    return Layout(
        name="yamada_order",
        title="株式会社山田製作所 注文書",
        kind="order",
        size=A4_PORTRAIT,
        font="mincho",
        texts=texts,
        rules=(Rule(577, 198, 1077, 198, 3), Rule(577, 206, 1077, 206, 1.5),
               Rule(110, 324, 880, 324, 2)),
        cells=(
            _label((1000, 240, 1180, 310), "注文番号"),
            _label((1000, 310, 1180, 380), "注文日"),
            _label((110, 430, 270, 500), "発注者"),
            _label((110, 1420, 250, 1640), "備考"),
            Cell((250, 1420, 1000, 1640)),
            _label((1100, 1420, 1248, 1460), "承認", 22),
            _label((1248, 1420, 1396, 1460), "検印", 22),
            _label((1396, 1420, 1544, 1460), "担当", 22),
            Cell((1100, 1460, 1248, 1600)),
            Cell((1248, 1460, 1396, 1600)),
            Cell((1396, 1460, 1544, 1600)),
        ),
        fields=(
            Field("order_no", (1180, 240, 1544, 310), "part_number",
                  pattern=r"^(PO-)?\d{6}$", required=True),
            Field("order_date", (1180, 310, 1544, 380), "date", required=True),
            Field("buyer", (270, 430, 900, 500), "text"),
        ),
        tables=(Table("lines", cols, head_y0=610, head_h=70, pitch=70, count=10, key="part_no",
                      head_fill=SHADE),),
        slots=(
            Slot("supplier", (110, 262, 820, 322)),
            Slot("remarks", (262, 1430, 990, 1630), "multiline"),
            Slot("seal", (1390, 405, 1530, 545), "stamp"),
            Slot("stamp1", (1104, 1464, 1244, 1596), "stamp"),
            Slot("stamp2", (1252, 1464, 1392, 1596), "stamp"),
            Slot("stamp3", (1400, 1464, 1540, 1596), "stamp"),
        ),
        keywords=("注文書", "山田製作所"),
        anchors=(("注文書", 0), ("株式会社山田製作所", 3)),
        checks=("amount", "due_date"),
        issuer="株式会社山田製作所",
        issuer_fax="058-279-0412",
        part_format="AA-0000",
        order_no_format="PO6|6",
        date_style="kanji",
        buyer_names=("株式会社山田製作所",),
    )


KAWADA_NAVY = (28, 44, 96)


def kawada_order() -> Layout:
    """Landscape PO: title top left, comb boxes for the order number, due date in the
    second column, 14 rows of 64 px, a total box, Noto Sans stationery in navy."""
    head = (214, 224, 240)
    cols = (
        Column("no", "No.", 110, 180, read=False, numbered=True),
        Column("due_date", "納期", 180, 350, "date", hint="auto", align="c"),
        Column("part_no", "品番", 350, 610, "part_number", pattern=PART_FORMATS["0A-000|000-0000"]),
        Column("description", "品名・規格", 610, 1240, "text"),
        Column("quantity", "数量", 1240, 1410, "quantity", hint="auto", align="r", min=1),
        Column("unit", "単位", 1410, 1500, "text", allowed=UNITS, align="c"),
        Column("unit_price", "単価", 1500, 1710, "money", align="r"),
        Column("amount", "金額", 1710, 1960, "money", align="r"),
        Column("note", "備考", 1960, 2230, "text"),
    )
    texts = (
        Text("注文書", 110, 118, 76, "sans_bold"),
        Text("ORDER SHEET", 114, 182, 22),
        Text("川田精機株式会社", 2230, 96, 44, "sans_bold", "rm"),
        Text("〒448-0857 愛知県刈谷市大手町3-18-7", 2230, 146, 22, anchor="rm"),
        Text("TEL 0566-21-4470 / FAX 0566-21-4471", 2230, 176, 22, anchor="rm"),
        Text("資材部 購買グループ", 2230, 206, 22, anchor="rm"),
        Text("御中", 2160, 295, 32),
        Text("※ 本注文書受領後、3日以内に注文請書をFAXにてご返送ください。", 110, 1450, 24),
        Text("※ 納期回答のない場合は上記納期にて承諾されたものとみなします。", 110, 1488, 24),
        Text("KS-F03 (2024.4)", 110, 1600, 18),
    )
    return Layout(
        name="kawada_order",
        title="川田精機株式会社 注文書",
        kind="order",
        size=A4_LANDSCAPE,
        font="sans",
        ink=KAWADA_NAVY,
        texts=texts,
        rules=(Rule(1280, 330, 2150, 330, 2),),
        cells=(
            _label((110, 260, 290, 330), "注文No.", fill=head),
            _label((700, 260, 860, 330), "注文日", fill=head),
            _label((110, 350, 290, 420), "発注者", fill=head),
            _label((1280, 350, 1440, 420), "納入場所", fill=head),
            Cell((1440, 350, 2230, 420)),
            _label((1500, 1412, 1710, 1480), "合計", fill=head),
            _label((2000, 1500, 2115, 1535), "担当", 20, fill=head),
            _label((2115, 1500, 2230, 1535), "承認", 20, fill=head),
            Cell((2000, 1535, 2115, 1625)),
            Cell((2115, 1535, 2230, 1625)),
        ),
        fields=(
            Field("order_no", (290, 260, 626, 330), "part_number", pattern=r"^\d{6}$",
                  hint="auto", required=True, comb=6, align="c"),
            Field("order_date", (860, 260, 1200, 330), "date", required=True, align="c"),
            Field("buyer", (290, 350, 1200, 420), "text"),
            Field("total", (1710, 1412, 1960, 1480), "money", align="r"),
        ),
        tables=(Table("lines", cols, head_y0=450, head_h=66, pitch=64, count=14, key="part_no",
                      head_fill=head, head_size=26),),
        slots=(
            Slot("supplier", (1280, 262, 2140, 326)),
            Slot("delivery", (1450, 356, 2220, 414)),
            Slot("stamp1", (2004, 1539, 2111, 1621), "stamp"),
            Slot("stamp2", (2119, 1539, 2226, 1621), "stamp"),
        ),
        keywords=("注文書", "川田精機"),
        anchors=(("注文書", 0), ("川田精機株式会社", 2)),
        checks=("amount", "due_date", "total"),
        issuer="川田精機株式会社",
        issuer_fax="0566-21-4471",
        part_format="0A-000|000-0000",
        order_no_format="6",
        date_style="slash",
        buyer_names=("川田精機株式会社",),
    )


LEDGER_GREEN = (22, 104, 66)


def ledger_nyushukko() -> Layout:
    """Portrait stock ledger (入出庫台帳) printed in green: 20 rows of 78 px,
    a thicker rule every 5 rows; rows are found from the ruling."""
    head = (222, 238, 226)
    cols = (
        Column("date", "日付", 130, 270, "date", hint="auto", align="c"),
        Column("part_no", "品番", 270, 480, "part_number", pattern=r"^[A-Z]{1,3}-\d{3,4}$"),
        Column("description", "品名", 480, 860, "text"),
        Column("in_qty", "入庫", 860, 1040, "quantity", hint="auto", align="r"),
        Column("out_qty", "出庫", 1040, 1220, "quantity", hint="auto", align="r"),
        Column("balance", "残高", 1220, 1400, "quantity", hint="auto", align="r"),
        Column("staff", "担当", 1400, 1524, "text", align="c"),
    )
    texts = (
        Text("入 出 庫 台 帳", 827, 130, 62, "serif_bold", "mm"),
        Text("年", 1482, 255, 34),
        Text("No.", 1330, 150, 26),
        Text("入出庫台帳（様式第3号）", 1524, 2120, 20, anchor="rm"),
    )
    return Layout(
        name="ledger_nyushukko",
        title="入出庫台帳",
        kind="ledger",
        size=A4_PORTRAIT,
        font="mincho",
        ink=LEDGER_GREEN,
        texts=texts,
        rules=(Rule(1390, 170, 1524, 170, 2),),
        cells=(
            _label((130, 220, 260, 290), "品番", 28, fill=head),
            _label((680, 220, 810, 290), "品名", 28, fill=head),
            _label((130, 290, 260, 360), "保管場所", 24, fill=head),
            Cell((260, 290, 640, 360)),
            _label((680, 290, 810, 360), "単位", 28, fill=head),
            Cell((810, 290, 1000, 360)),
            _label((1040, 290, 1170, 360), "発注点", 24, fill=head),
            Cell((1170, 290, 1300, 360)),
        ),
        fields=(
            Field("part_no", (260, 220, 640, 290), "part_number", pattern=r"^[A-Z]{1,3}-\d{3,4}$"),
            Field("description", (810, 220, 1300, 290), "text"),
            Field("year", (1340, 220, 1470, 290), "integer", hint="auto", min=2000, max=2099,
                  align="c"),
        ),
        tables=(Table("entries", cols, head_y0=420, head_h=72, pitch=78, count=20, key="date",
                      rows_from="ruling", head_fill=head, head_size=28, thick_every=5),),
        slots=(
            Slot("page_no", (1395, 125, 1520, 168)),
            Slot("location", (268, 296, 632, 354)),
            Slot("unit", (818, 296, 992, 354)),
            Slot("reorder", (1178, 296, 1292, 354)),
        ),
        keywords=("入出庫台帳",),
        anchors=(("入出庫台帳", 0),),
        checks=("balance",),
        year_from="year",
        issuer="",
        part_format="A-000",
    )


# Forms faxflow has NO template for: they appear in samples as unknown pages.


def fax_cover() -> Layout:
    """FAX送信票: the cover sheet many senders put before the order."""
    rows = [("宛先", 300), ("発信元", 380), ("日付", 460), ("枚数", 540), ("件名", 620)]
    cells = []
    slots = []
    for label, y in rows:
        cells.append(_label((130, y, 330, y + 80), label, 30))
        cells.append(Cell((330, y, 1524, y + 80)))
        slots.append(Slot("cover_" + label, (345, y + 8, 1510, y + 72)))
    cells.append(Cell((130, 760, 1524, 1600)))
    slots.append(Slot("message", (160, 790, 1500, 1570), "multiline"))
    return Layout(
        name="fax_cover",
        title="FAX送信票",
        kind=None,
        size=A4_PORTRAIT,
        font="sans",
        texts=(Text("FAX送信票", 827, 170, 70, "sans_bold", "mm"),
               Text("通信欄", 130, 735, 28),
               Text("※ 送信枚数が不足している場合はお手数ですがご連絡ください。", 130, 1660, 24)),
        rules=(Rule(480, 225, 1174, 225, 4),),
        cells=tuple(cells),
        slots=tuple(slots),
        has_template=False,
    )


def tokai_delivery() -> Layout:
    """納品書 of another company: a table much like an order's, but not a template
    (a matcher that only looks for 品番/数量 columns would take it for an order)."""
    cols = (
        Column("part_no", "品番", 100, 330, "part_number"),
        Column("description", "品名", 330, 850, "text"),
        Column("quantity", "数量", 850, 1010, "quantity", align="r"),
        Column("unit_price", "単価", 1010, 1200, "money", align="r"),
        Column("amount", "金額", 1200, 1420, "money", align="r"),
        Column("note", "摘要", 1420, 1554, "text"),
    )
    return Layout(
        name="tokai_delivery",
        title="東海金属工業 納品書",
        kind=None,
        size=A4_PORTRAIT,
        font="gothic",
        texts=(Text("納 品 書", 100, 140, 60, "gothic", "lm"),
               Text("東海金属工業株式会社", 1554, 130, 36, "gothic", "rm"),
               Text("〒455-0011 名古屋市港区港北町2-41", 1554, 175, 20, anchor="rm"),
               Text("TEL 052-381-2270 FAX 052-381-2271", 1554, 203, 20, anchor="rm"),
               Text("毎度ありがとうございます。下記の通り納品いたします。", 100, 430, 26),
               Text("様", 880, 320, 32)),
        rules=(Rule(100, 345, 870, 345, 2),),
        cells=(_label((1000, 260, 1170, 330), "納品日"), Cell((1170, 260, 1554, 330)),
               _label((1000, 330, 1170, 400), "伝票No."), Cell((1170, 330, 1554, 400))),
        fields=(Field("order_date", (1170, 260, 1554, 330), "date", align="c"),
                Field("order_no", (1170, 330, 1554, 400), "part_number", align="c"),
                Field("buyer", (100, 280, 860, 342), "text", width=0)),  # on the underline
        tables=(Table("lines", cols, head_y0=480, head_h=60, pitch=62, count=15, key="part_no",
                      head_fill=(235, 235, 235), head_size=24),),
        has_template=False,
        issuer="東海金属工業株式会社",
        issuer_fax="052-381-2271",
        part_format="T00000",
        order_no_format="D-5",
    )


# --- forms nobody has seen: random order-sheet layouts -------------------------------
# For measuring faxflow on forms it was not developed against: ``random_order_layout``
# makes a plausible order sheet of another customer (orientation, title, header boxes,
# column set/order/titles/widths, row pitch, fonts, ink), and ``template_yaml(layout,
# human=rng)`` writes its template as a person would, boxes a few pixels off.

_TITLES = ("注文書", "注 文 書", "発注書", "御注文書", "発注伝票", "注文書（納品指示書）")
_COL_TITLES = {
    "no": ("No.", "No", "行"),
    "part_no": ("品番", "部品番号", "品目コード", "商品コード", "型番"),
    "description": ("品名", "品名・規格", "商品名", "品名／仕様", "品目名称"),
    "quantity": ("数量", "注文数", "数 量"),
    "unit": ("単位",),
    "unit_price": ("単価", "単 価", "単価(円)"),
    "amount": ("金額", "金 額", "金額(円)"),
    "due_date": ("納期", "希望納期", "納入日", "納期日"),
    "note": ("備考", "摘要", "メモ"),
}
_COL_WIDTH = {"no": (56, 80), "part_no": (180, 270), "quantity": (120, 180), "unit": (72, 100),
              "unit_price": (140, 220), "amount": (180, 260), "due_date": (140, 210), "note": (170, 300)}
_COL_SPEC = {
    "part_no": dict(type="part_number"),
    "description": dict(type="text"),
    "quantity": dict(type="quantity", hint="auto", align="r", min=1),
    "unit": dict(type="text", allowed=UNITS, align="c"),
    "unit_price": dict(type="money", align="r"),
    "amount": dict(type="money", align="r"),
    "due_date": dict(type="date", hint="auto", align="c"),
    "note": dict(type="text"),
}
_STEMS = ("北斗", "青葉", "丸茂", "東洋", "岡田", "浜松", "金城", "若葉", "高砂", "大洋", "千代田", "北陸")
_KINDS = ("精工", "工業", "機械", "製作所", "技研", "産業", "電機")
_INKS = ((20, 20, 20), (28, 44, 96), (22, 104, 66), (96, 44, 32), (60, 60, 60))
_FORM_FONTS = ("gothic", "mincho", "sans", "serif", "vlgothic", "pgothic")


def random_order_layout(rng: np.random.Generator, name: str) -> Layout:
    """A plausible order sheet of a customer nobody has seen (a template layout)."""
    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    landscape = rng.random() < 0.3
    W, H = A4_LANDSCAPE if landscape else A4_PORTRAIT
    ml, mr = int(rng.integers(90, 141)), W - int(rng.integers(90, 141))
    top = int(rng.integers(80, 131))
    font, ink = pick(_FORM_FONTS), pick(_INKS)
    shade = pick((None, (232, 232, 232), tuple(int(255 - (255 - c) * 0.12) for c in ink)))
    stem = pick(_STEMS)
    company = stem + pick(_KINDS)
    company = f"株式会社{company}" if rng.random() < 0.5 else f"{company}株式会社"
    title = pick(_TITLES)
    tsize = float(rng.uniform(56, 76))
    lsize = float(rng.uniform(22, 28))
    bold = {"gothic": "sans_bold", "pgothic": "sans_bold", "sans": "sans_bold", "vlgothic": "sans_bold",
            "mincho": "serif_bold", "serif": "serif_bold"}[font]
    texts: list[Text] = []
    cells: list[Cell] = []
    fields: list[Field] = []
    rules: list[Rule] = []
    slots: list[Slot] = []
    if rng.random() < 0.5:
        texts.append(Text(title, W / 2, top + tsize / 2, tsize, bold, "mm"))
        texts.append(Text(company, mr, top + tsize + 50, 36, bold, "rm"))
    else:
        texts.append(Text(title, ml, top + tsize / 2, tsize, bold, "lm"))
        texts.append(Text(company, mr, top + 20, 36, bold, "rm"))
    cy = texts[1].y
    fax = f"0{rng.integers(52, 59)}-{rng.integers(200, 999)}-{rng.integers(1000, 9999)}"
    texts.append(Text(f"TEL {fax[:-1]}0 FAX {fax}", mr, cy + 40, 21, anchor="rm"))
    y = int(max(top + tsize, cy + 40) + rng.integers(50, 90))
    hh = int(rng.integers(60, 76))
    lw = int(rng.integers(130, 190))
    vw = int(rng.integers(300, 420))
    order_no_format = pick(("PO6|6", "6", "A-5", "2-4"))
    comb = 6 if order_no_format == "6" and rng.random() < 0.35 else 0
    if comb:
        vw = 6 * int(rng.integers(50, 60))
    date_style = pick(DATE_STYLES)
    part_format = pick(("AA-0000", "0A-000|000-0000", "A0000", "AAA-000-00", "00000-00"))
    no_label = pick(("注文番号", "注文No.", "発注番号", "注文書No."))
    date_label = pick(("注文日", "発注日", "日付"))
    buyer_label = pick(("発注者", "発注元", "御社名", "会社名"))
    bw = int(rng.integers(520, 760))
    spec_no = dict(type="part_number", pattern=ORDER_NO_FORMATS[order_no_format], required=True,
                   comb=comb, align="c" if comb else pick(("l", "c")))
    layout_kind = int(rng.integers(0, 3))
    if layout_kind == 0:  # number and date stacked at the right, buyer at the left
        x0 = mr - lw - vw
        cells += [Cell((x0, y, x0 + lw, y + hh), no_label, lsize, fill=shade),
                  Cell((x0, y + hh, x0 + lw, y + 2 * hh), date_label, lsize, fill=shade)]
        fields += [Field("order_no", (x0 + lw, y, mr, y + hh), **spec_no),
                   Field("order_date", (x0 + lw, y + hh, mr, y + 2 * hh), "date", required=True)]
        by = y + 2 * hh + int(rng.integers(20, 50))
        cells.append(Cell((ml, by, ml + lw, by + hh), buyer_label, lsize, fill=shade))
        fields.append(Field("buyer", (ml + lw, by, ml + lw + bw, by + hh), "text"))
        y = by + hh
    elif layout_kind == 1:  # one row of label|value pairs, the buyer below
        x = ml
        cells.append(Cell((x, y, x + lw, y + hh), no_label, lsize, fill=shade))
        fields.append(Field("order_no", (x + lw, y, x + lw + vw, y + hh), **spec_no))
        x = x + lw + vw + int(rng.integers(30, 80))
        dw = min(vw, mr - x - lw)
        cells.append(Cell((x, y, x + lw, y + hh), date_label, lsize, fill=shade))
        fields.append(Field("order_date", (x + lw, y, x + lw + dw, y + hh), "date", required=True))
        y += hh + int(rng.integers(15, 40))
        cells.append(Cell((ml, y, ml + lw, y + hh), buyer_label, lsize, fill=shade))
        fields.append(Field("buyer", (ml + lw, y, min(mr, ml + lw + bw), y + hh), "text"))
        y += hh
    else:  # small labels above open boxes
        gap = int(rng.integers(40, 80))
        widths = [vw, int(rng.integers(300, 400)), min(bw, mr - ml - vw - 340 - 2 * gap)]
        x = ml
        for (fname, label, ftype), fw in zip((("order_no", no_label, None), ("order_date", date_label, "date"),
                                              ("buyer", buyer_label, "text")), widths):
            texts.append(Text(label, x + 4, y + lsize / 2, lsize * 0.9))
            box = (x, y + int(lsize) + 8, x + fw, y + int(lsize) + 8 + hh)
            fields.append(Field(fname, box, **spec_no) if fname == "order_no"
                          else Field(fname, box, ftype, required=fname == "order_date"))
            x += fw + gap
        y += int(lsize) + 8 + hh
    # the table
    names = ["part_no", "description", "quantity", "unit", "unit_price", "amount", "due_date"]
    if rng.random() < 0.2:
        names.remove("unit")
    if rng.random() < 0.15:
        names.remove("due_date")
    if rng.random() < 0.3 and "due_date" in names:
        names.remove("due_date")
        names.insert(0, "due_date")
    if rng.random() < 0.2:
        names[names.index("part_no")], names[names.index("description")] = "description", "part_no"
    if rng.random() < 0.4:
        names.append("note")
    if rng.random() < 0.4:
        names.insert(0, "no")
    widths = {n: int(rng.integers(*_COL_WIDTH[n])) for n in names if n != "description"}
    rest = (mr - ml) - sum(widths.values())
    if rest < 320 and "note" in widths:
        rest += widths.pop("note")
        names.remove("note")
    while rest < 320:  # shrink the others until the description has room
        for n in widths:
            widths[n] -= 6
            rest += 6
    widths["description"] = rest
    cols, x = [], ml
    for n in names:
        w = widths[n]
        title_ = pick(_COL_TITLES[n])
        if n == "no":
            cols.append(Column("no", title_, x, x + w, read=False, numbered=True))
        else:
            spec = dict(_COL_SPEC[n])
            if n == "part_no":
                spec["pattern"] = PART_FORMATS[part_format]
            cols.append(Column(n, title_, x, x + w, **spec))
        x += w
    cols[-1] = Column(**{**cols[-1].__dict__, "x1": mr})
    head_y0 = y + int(rng.integers(40, 90))
    head_h = int(rng.integers(56, 76))
    pitch = int(rng.integers(60, 81))
    has_total = rng.random() < 0.5
    reserve = 100 + (pitch if has_total else 0) + 60
    avail = H - reserve - (head_y0 + head_h)
    count = int(max(5, min(avail // pitch, rng.integers(8, 23))))
    table = Table("lines", tuple(cols), head_y0=head_y0, head_h=head_h, pitch=pitch, count=count,
                  key="part_no", head_fill=shade, head_size=lsize)
    if has_total:
        amount = table.column("amount")
        k = names.index("amount")
        left = cols[k - 1] if k > 0 else None
        yb = table.body_y1
        if left is not None:
            cells.append(Cell((left.x0, yb, left.x1, yb + pitch), "合計", lsize, fill=shade))
        fields.append(Field("total", (amount.x0, yb, amount.x1, yb + pitch), "money", align="r"))
    fy = table.body_y1 + (pitch if has_total else 0) + 40
    if fy < H - 60:
        texts.append(Text(pick(("※ 納期に変更がある場合はご連絡ください。", "※ 注文請書をFAXにてご返送ください。",
                                "※ 納品書に注文番号をご記入ください。")), ml, fy, 22))
    return Layout(
        name=name,
        title=f"{company} {title.replace(' ', '')}",
        kind="order",
        size=(W, H),
        font=font,
        ink=ink,
        texts=tuple(texts),
        rules=tuple(rules),
        cells=tuple(cells),
        fields=tuple(fields),
        tables=(table,),
        slots=tuple(slots),
        keywords=(title.replace(" ", "").split("（")[0], stem),
        anchors=((title.replace(" ", ""), 0), (company, 1)),
        checks=("amount", "due_date") if "due_date" in names else ("amount",),
        issuer=company,
        issuer_fax=fax,
        part_format=part_format,
        order_no_format=order_no_format,
        date_style=date_style,
        due_style="月日" if date_style == "kanji" and rng.random() < 0.3 else "m/d",
        buyer_names=(company,),
        reference_noise=True,
    )


def _build() -> dict[str, Layout]:
    return {f.name: f for f in (yamada_order(), kawada_order(), ledger_nyushukko(),
                                fax_cover(), tokai_delivery())}


LAYOUTS: dict[str, Layout] = _build()
SHIPPED: dict[str, Layout] = {k: v for k, v in LAYOUTS.items() if v.has_template}
UNKNOWN: dict[str, Layout] = {k: v for k, v in LAYOUTS.items() if not v.has_template}


# --- CLI -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m faxflow.samples.forms",
                                 description="Write the shipped template YAML + reference PNG files.")
    ap.add_argument("--write", type=Path, metavar="DIR", help="write NAME.yaml and NAME.png here")
    ap.add_argument("--blank", type=Path, metavar="DIR",
                    help="also draw every layout (incl. non-template forms) as PNG here")
    ap.add_argument("names", nargs="*", help="only these layouts")
    args = ap.parse_args(argv)
    if not args.write and not args.blank:
        ap.print_help()
        return 2
    if args.write:
        for p in write_templates(args.write, args.names or None):
            print(p)
    if args.blank:
        args.blank.mkdir(parents=True, exist_ok=True)
        for name, layout in LAYOUTS.items():
            if args.names and name not in args.names:
                continue
            p = args.blank / f"{name}_blank.png"
            reference_image(layout).save(p, dpi=(DPI, DPI))
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
