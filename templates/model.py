"""Template model: what a form looks like and where its fields are.

A template is a YAML file (see README "Writing a template") loaded by
``templates.loader`` into these frozen objects. Coordinates are pixels of the
template's reference image, ``(x0, y0, x1, y1)`` with x1/y1 exclusive.

Field types (``FieldSpec.type``):
  text         free text, kept as read (NFKC only)
  part_number  product code; normalised (全角->半角, ー/－/― -> -); ``pattern`` checks it
  integer      whole number (line numbers, counts)
  quantity     whole number with optional unit suffix (個, 本, pcs, 枚, ...)
  money        amount in yen (¥, 円, commas)
  date         2026/12/05, 2026-12-05, 12/5, 12月5日, 令和8年12月5日, R8.12.5 ...

Hints (``FieldSpec.hint``): ``printed`` (Tesseract), ``handwritten`` (our digit
model), ``auto`` (decide from the ink / both engines' confidences).

Canonical names give values their meaning for the database and CSV:
  order header:  order_no, order_date, buyer
  order table:   part_no, description, quantity, unit, unit_price, amount, due_date
  ledger header: year (optional, for M/D dates), item or description / part_no (optional:
                 the card's item, for rows that leave it blank)
  ledger table:  date, part_no, description, in_qty, out_qty, balance, staff
Other names are allowed; they are stored in the ``fields`` table but not exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

Box = tuple[int, int, int, int]

FIELD_TYPES = ("text", "part_number", "integer", "quantity", "money", "date")
HINTS = ("printed", "handwritten", "auto")
KINDS = ("order", "ledger")
NUMERIC_TYPES = ("integer", "quantity", "money")
# The names that give a value its meaning (module doc), per kind: (header, table); and
# the type each is read as. ``total`` and ``note`` are checked / stored, not exported.
CANONICAL = {
    "order": (("order_no", "order_date", "buyer", "total"),
              ("part_no", "description", "quantity", "unit", "unit_price", "amount", "due_date", "note")),
    "ledger": (("year", "item", "part_no", "description"),
               ("date", "part_no", "description", "in_qty", "out_qty", "balance", "staff")),
}
CANONICAL_TYPES = {
    "order_date": ("date",), "due_date": ("date",), "date": ("date",), "total": ("money",),
    "quantity": ("quantity", "integer"), "unit_price": ("money",), "amount": ("money",),
    "in_qty": ("quantity", "integer"), "out_qty": ("quantity", "integer"),
    "balance": ("quantity", "integer"), "year": ("integer",),
}
# Names people write for them (lower case, Japanese titles too): the loader suggests
# the canonical name in its warning.
NAME_SYNONYMS = {
    "qty": "quantity", "quantities": "quantity", "count": "quantity", "数量": "quantity", "個数": "quantity",
    "price": "unit_price", "unitprice": "unit_price", "単価": "unit_price",
    "sum": "amount", "subtotal": "amount", "line_total": "amount", "金額": "amount",
    "partno": "part_no", "part_number": "part_no", "part": "part_no", "item_no": "part_no",
    "code": "part_no", "品番": "part_no", "品名": "description", "name": "description",
    "item_name": "description", "product": "description", "desc": "description",
    "due": "due_date", "delivery_date": "due_date", "deadline": "due_date", "納期": "due_date",
    "order_number": "order_no", "po": "order_no", "po_no": "order_no", "注文番号": "order_no",
    "date_ordered": "order_date", "orderdate": "order_date", "注文日": "order_date",
    "customer": "buyer", "company": "buyer", "orderer": "buyer", "発注者": "buyer",
    "grand_total": "total", "合計": "total", "units": "unit", "単位": "unit",
    "remarks": "note", "notes": "note", "memo": "note", "備考": "note",
    "in": "in_qty", "入庫": "in_qty", "out": "out_qty", "出庫": "out_qty", "stock": "balance",
    "残高": "balance", "person": "staff", "担当": "staff", "日付": "date",
}


@dataclass(frozen=True)
class FieldSpec:
    """One header field, or one table column (then ``box`` is the column's x-range
    over the table body and is filled in per row by ``TableSpec.cell_box``)."""

    name: str
    type: str = "text"
    box: Box = (0, 0, 0, 0)
    hint: str = "printed"  # printed | handwritten | auto
    pattern: str | None = None  # regular expression the canonical text must fully match
    allowed: tuple[str, ...] = ()  # closed list of values (after normalisation)
    required: bool = False
    lang: str | None = None  # Tesseract language override, e.g. "eng" or "jpn"
    min: float | None = None  # numeric range checks (quantity/money/integer)
    max: float | None = None
    multiline: bool = False  # free text box over several lines
    line: int = 0  # line number in the YAML file (for error messages)


@dataclass(frozen=True)
class TableSpec:
    """A table: the body area (without the header row), its columns by x-range,
    and its rows, either by a fixed pitch and count or found from the ruling."""

    name: str
    box: Box
    columns: tuple[FieldSpec, ...]
    row_pitch: float | None = None  # pixels from one row's top to the next
    row_count: int | None = None
    rows_from: str = "pitch"  # "pitch" | "ruling"
    key_column: str | None = None  # a row whose key column is empty counts as an empty row
    line: int = 0

    def row_boxes(self) -> list[Box]:
        """Row bands by pitch (the ruling-based variant is computed on the image)."""
        x0, y0, x1, y1 = self.box
        if not self.row_pitch:
            return []
        n = self.row_count or int((y1 - y0) // self.row_pitch)
        return [
            (x0, round(y0 + i * self.row_pitch), x1, min(y1, round(y0 + (i + 1) * self.row_pitch)))
            for i in range(n)
        ]

    @staticmethod
    def cell_box(column: FieldSpec, row: Box) -> Box:
        return (column.box[0], row[1], column.box[2], row[3])


@dataclass(frozen=True)
class Anchor:
    """Printed text expected in a box of the reference (verified after alignment)."""

    text: str
    box: Box | None = None


@dataclass(frozen=True)
class Template:
    name: str
    path: Path  # the YAML file
    reference_image: Path
    dpi: float
    title: str = ""
    kind: str = "order"
    keywords: tuple[str, ...] = ()  # text found on the form (OCR of the page), any order
    anchors: tuple[Anchor, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    checks: tuple[str, ...] = ("amount", "due_date", "total", "balance")  # built-in cross-field checks
    year_hint: str | None = None  # header field holding the year for M/D dates (ledgers)
    confidence_threshold: float | None = None  # per-template override of the review threshold
    shipped: bool = False  # True for templates bundled with faxflow

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def all_specs(self) -> list[FieldSpec]:
        return list(self.fields) + [c for t in self.tables for c in t.columns]

    @property
    def match_words(self) -> list[str]:
        """Words a page of this form must show somewhere: the keywords and the anchors
        without a box (those with a box are looked for in it)."""
        return list(self.keywords) + [a.text for a in self.anchors if a.box is None]


@dataclass(frozen=True)
class TemplateProblem:
    """A problem found while loading or checking a template file."""

    path: Path
    line: int
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class TemplateSet:
    templates: tuple[Template, ...] = ()
    problems: tuple[TemplateProblem, ...] = field(default_factory=tuple)

    def get(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)
