"""The typed objects passed between stages.

They live in ``templates/`` because that package is the bottom of the dependency
graph (templates <- ocr, export <- ingest <- cli): every stage may import them.
Each object carries the source file's sha256 and the page index, so every value
keeps its provenance (file, page, box, raw text, confidence, engine).

Images are NumPy arrays: uint8, single channel (grey), 0 = black ink, 255 = paper,
square pixels. Boxes are ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import numpy as np

from faxflow.templates.model import FieldSpec

Box = tuple[int, int, int, int]
Status = Literal["ok", "review"]
ValueType = str | int | Decimal | dt.date | None


@dataclass(frozen=True)
class SourceFile:
    """A file taken from the inbox. ``kind`` is one of pdf, tiff, png, jpeg."""

    path: Path
    sha256: str
    kind: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, eq=False)
class Page:
    """One page of a source file, as an image with square pixels.

    ``dpi`` is the horizontal resolution after the aspect fix (FAX standard mode
    204x98 dpi is resampled to 204x204), or an estimate when the file has none.
    ``notes`` records what loading and cleaning did (e.g. ``fax-standard-mode``,
    ``rotated-180``, ``deskew=-1.4``) for the log and the review page.
    ``header_strip``: set by cleaning when a FAX transmission header line (TTI) was
    found and whitened: that line as it was (same ink convention, upright), so its
    sending date can still be read.
    """

    sha256: str
    source_name: str
    index: int  # 0-based page number within the file
    image: np.ndarray
    dpi: float
    notes: tuple[str, ...] = ()
    header_strip: np.ndarray | None = None

    @property
    def number(self) -> int:
        return self.index + 1


@dataclass(frozen=True, eq=False)
class AlignedPage:
    """A page warped onto its template's reference image (same size, same dpi).

    ``transform`` is the 3x3 matrix mapping page pixels to reference pixels.
    ``score`` in [0, 1] says how well the page's ruling/print overlays the reference;
    ``ok`` is False when alignment is doubtful (every field is then flagged).
    """

    page: Page
    template_name: str
    image: np.ndarray
    transform: np.ndarray
    score: float
    ok: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class FieldCrop:
    """The pixels of one field (header field or table cell), ruling lines removed.

    ``box`` is in reference-image pixels. ``table``/``row``/``column`` are None for
    header fields; for table cells ``name`` is ``"<table>[<row>].<column>"``.
    ``ink`` is the fraction of dark pixels after line removal (0 = empty cell).
    """

    sha256: str
    page_index: int
    name: str
    box: Box
    image: np.ndarray
    spec: FieldSpec
    ink: float
    table: str | None = None
    row: int | None = None
    column: str | None = None


@dataclass(frozen=True)
class Reading:
    """What an engine read in a crop. ``confidence`` in [0, 1].

    ``char_confidences`` holds one value per character of ``text`` when the engine
    gives them (used to point the clerk at the doubtful character).
    """

    text: str
    confidence: float
    engine: str  # "tesseract", "handwriting", "blank"
    char_confidences: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()
    # what the other reads of the same cell said, when they disagreed (texts, first the
    # shown one's rivals); cross-field rules may pick one of them (rules.py)
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Value:
    """A parsed, validated field value with its full provenance."""

    sha256: str
    page_index: int
    name: str
    box: Box
    raw_text: str
    value: ValueType
    text: str  # canonical text form of value ("" when empty): what goes to SQLite/CSV
    value_type: str
    confidence: float
    engine: str
    status: Status
    reasons: tuple[str, ...] = ()
    table: str | None = None
    row: int | None = None
    column: str | None = None
    # numbers: the values the cell's other reads gave (parsed, distinct, not the shown
    # one), for the amount check to choose from; not stored
    alternatives: tuple = ()

    @property
    def empty(self) -> bool:
        return self.value is None and self.text == ""


@dataclass(frozen=True)
class Record:
    """Everything read from one page: header values and table rows, with a status.

    ``status`` is ``ok`` only when every value is ``ok`` and the cross-field rules
    hold; ``unknown_form`` when no template matched (no values then).
    """

    sha256: str
    page_index: int
    template_name: str | None
    kind: str | None  # "order", "ledger", ... from the template
    header: dict[str, Value] = field(default_factory=dict)
    rows: list[dict[str, Value]] = field(default_factory=list)
    status: str = "ok"  # ok | review | unknown_form
    reasons: tuple[str, ...] = ()
    align_score: float | None = None
    notes: tuple[str, ...] = ()
