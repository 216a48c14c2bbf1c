"""process_file(): the chain of stages for one file. It reads like the list.

    identify -> load_pages -> clean -> match -> align -> crop -> read -> parse -> rules -> store

``Pipeline`` holds what is expensive to set up (templates, reference features, the
Tesseract API, the digit model) and is created once per worker process.
It does not move files: the batch/watcher layer claims, archives and sets aside.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from faxflow.ingest.settings import Settings
from faxflow.templates.errors import FaxflowError
from faxflow.templates.rules import document_status
from faxflow.templates.types import Record, SourceFile


@dataclass
class DocumentResult:
    """Outcome of one file. ``status``: ok | review | unknown_form | failed | duplicate."""

    path: Path
    status: str
    source: SourceFile | None = None
    records: list[Record] = field(default_factory=list)
    error: FaxflowError | None = None
    duration_s: float = 0.0
    document_id: int | None = None
    # page_index -> the page image the review page shows (path as stored in the database)
    page_images: dict[int, str] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return len(self.records)

    @property
    def fields(self) -> int:
        return sum(len(r.header) + sum(len(row) for row in r.rows) for r in self.records)

    @property
    def flagged(self) -> int:
        n = 0
        for r in self.records:
            values = list(r.header.values()) + [v for row in r.rows for v in row.values()]
            n += sum(1 for v in values if v.status != "ok")
        return n


class Pipeline:
    """The expensive parts, set up once per worker process, and the chain per file."""

    def __init__(self, settings: Settings, *, printed=None, handwriting=None, other=None, templates=None):
        from faxflow.ocr.read import FieldReader
        from faxflow.templates.loader import load_templates

        import cv2

        # One worker process per core: OpenCV's own threads would fight the other workers
        # (as Tesseract's OpenMP threads do; see OMP_THREAD_LIMIT in the Makefile).
        cv2.setNumThreads(1)
        self.settings = settings
        tset = templates if templates is not None else load_templates([settings.templates_dir])
        self.templates = tuple(tset.templates)
        self.template_problems = tuple(tset.problems)
        if other is None:  # a second printed engine goes with the real Tesseract, not a fake
            other = _load_ppocr() if printed is None and settings.ocr.second_engine else None
        if printed is None:
            from faxflow.ocr.engines.tesseract import TesseractEngine

            printed = TesseractEngine(settings.ocr.tessdata, text_lang=_text_lang(settings.ocr.languages))
        if handwriting is None:
            handwriting = _load_handwriting()
        self.printed = printed
        self.handwriting = handwriting
        self.other = other
        self.reader = FieldReader(printed, handwriting, other,
                                  hand_sure=settings.ocr.handwriting_threshold)
        self._store = None

    # -- the store is opened lazily so read_document() works without one ------------------
    @property
    def store(self):
        if self._store is None:
            from faxflow.export.store import Store

            self._store = Store.open(self.settings.db_path)
        return self._store

    def warm_up(self) -> None:
        """Do the one-off work now (reference features of every template, renderings of
        their allowed values, Tesseract models), so the first scan a worker takes is as
        fast as the rest."""
        import numpy as np

        from faxflow.ocr.engines import glyphs
        from faxflow.templates.match import reference_for

        for template in self.templates:
            reference_for(template)
            # the glyph matcher renders each list of allowed values once (~1.5 s)
            specs = list(template.fields) + [c for t in template.tables for c in t.columns]
            for spec in specs:
                if spec.allowed and not spec.multiline:
                    glyphs.candidates(tuple(str(a) for a in spec.allowed))
        if self.handwriting is not None:  # 月 / 日 in handwritten dates (_kanji_date)
            from faxflow.ocr.engines.handwriting import KANJI_MATCH_VALUES

            glyphs.candidates(KANJI_MATCH_VALUES)
        recognize = getattr(self.printed, "recognize", None)
        if recognize is not None:
            dot = np.full((40, 40), 255, np.uint8)
            dot[15:25, 15:25] = 0
            for lang in ("jpn", "eng"):
                recognize(dot, lang=lang, psm=7)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- one file -----------------------------------------------------------------------------
    def process(self, path: Path, *, archived_path: str | None = None) -> DocumentResult:
        """identify -> (duplicate?) -> read every page -> store in one transaction."""
        from faxflow.ingest.source import identify

        t0 = time.perf_counter()
        src = identify(Path(path))
        if self.store.has_document(src.sha256):
            return DocumentResult(path=Path(path), status="duplicate", source=src,
                                  duration_s=time.perf_counter() - t0)
        result = self.read_source(src, keep_images=True)
        result.duration_s = time.perf_counter() - t0
        result.document_id = self.store.save_document(
            src, result.records, status=result.status, archived_path=archived_path,
            duration_s=result.duration_s, page_images=result.page_images or None)
        return result

    def read_document(self, path: Path) -> DocumentResult:
        """Read a file without storing it (eval, debugging)."""
        from faxflow.ingest.source import identify

        t0 = time.perf_counter()
        result = self.read_source(identify(Path(path)))
        result.duration_s = time.perf_counter() - t0
        return result

    def read_source(self, src: SourceFile, *, keep_images: bool = False) -> DocumentResult:
        """``keep_images``: write each page's image for the review page (see
        :meth:`_page_image_sink`); off for eval and debugging reads."""
        from faxflow.ingest.pages import iter_pages

        # one page in memory at a time (a 200-page PDF at 300 dpi would be ~1.7 GB at once)
        pages = iter_pages(src, pdf_dpi=self.settings.ocr.pdf_dpi, max_pixels=self.settings.ocr.max_pixels)
        records, sent, images = [], None, {}
        sink = self._page_image_sink(src, images) if keep_images else None
        for p in pages:
            # the pages of one FAX went in one transmission: a date read on one page
            # (the cover sheet, say) stands for those whose header line is unreadable
            records.append(self.read_page(p, fax_sent=sent, image_sink=sink))
            sent = sent or _fax_sent(records[-1].notes)
        return DocumentResult(path=src.path, status=document_status(records), source=src, records=records,
                              page_images=images)

    def _page_image_sink(self, src: SourceFile, images: dict[int, str]):
        """A callback ``(page_index, image)`` writing the page image the field boxes refer
        to as ``<pages dir>/<sha256 first 16>/p001.png`` and noting its path in ``images``
        (relative to the database's folder when inside it). A page image that cannot be
        written is logged and left out: the values matter more than the picture."""
        folder = self.settings.page_images_dir / src.sha256[:16]
        base = Path(self.settings.db_path).parent

        def sink(page_index: int, image) -> None:
            import logging

            path = folder / f"p{page_index + 1:03d}.png"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                _write_png_atomic(path, image)
            except (OSError, ValueError) as exc:
                logging.getLogger("faxflow").warning("%s: page %d: page image not written (%s)",
                                                     src.name, page_index + 1, exc)
                return
            images[page_index] = _stored_path(path, base)

        return sink

    # -- one page -------------------------------------------------------------------------------
    def read_page(self, page, *, fax_sent=None, image_sink=None) -> Record:
        """``fax_sent``: the FAX sending date read on an earlier page of the same file,
        used when this page's own header line gives none. ``image_sink(page_index, image)``
        receives the image the field boxes refer to: the aligned page (template reference
        pixels), or the cleaned page when no template matches."""
        from faxflow.ocr.align import align_page
        from faxflow.ocr.clean import clean_page
        from faxflow.ocr.crop import crop_fields
        from faxflow.ocr.faxheader import read_fax_date
        from faxflow.templates.match import match_page

        work = self._work_dir(page)
        page = clean_page(page, debug_dir=work, tessdata=self.settings.ocr.tessdata)
        if page.header_strip is not None:
            if work is not None:
                _write_png(work / f"p{page.number:03d}_fax_header.png", page.header_strip)
            sent, _text = read_fax_date(page.header_strip, self.printed, today=_today())
            fax_sent = sent or fax_sent
        if fax_sent is not None:
            from dataclasses import replace

            page = replace(page, notes=tuple(page.notes) + (f"fax-sent={fax_sent.isoformat()}",))
        match = match_page(page.image, page.dpi, self.templates, read_text=self._read_text)
        if match.template is None:
            if image_sink is not None:
                image_sink(page.index, page.image)
            return Record(sha256=page.sha256, page_index=page.index, template_name=None, kind=None,
                          status="unknown_form", reasons=("unknown_form",), notes=page.notes)
        template = match.template
        aligned = align_page(page, template, match)
        if work is not None:
            _write_png(work / f"p{page.number:03d}_aligned.png", aligned.image)
        if image_sink is not None:
            image_sink(page.index, aligned.image)
        crops = crop_fields(aligned, template)
        header, rows = self._read_crops(crops, template, work, page.number, fax_sent=fax_sent)
        from faxflow.templates.rules import build_record

        record = build_record(sha256=page.sha256, page_index=page.index, template=template,
                              header=header, rows=rows, align_ok=aligned.ok, align_score=aligned.score,
                              faint=any(str(n).startswith("faint-print") for n in aligned.notes),
                              form_confirmed=match.confirmed)
        from dataclasses import replace

        return replace(record, notes=tuple(page.notes) + tuple(n for n in match.notes if n.startswith("keywords-unread"))
                       + tuple(aligned.notes) + tuple(record.notes))

    def _read_crops(self, crops, template, work, page_number, *, fax_sent=None):
        import datetime as dt

        from faxflow.templates.daterepair import year_month
        from faxflow.templates.parse import YearHint, make_value, reading_day_hint

        ocr = self.settings.ocr
        threshold = template.confidence_threshold or ocr.review_threshold
        hw_threshold = max(threshold, ocr.handwriting_threshold)
        text_threshold = max(threshold, ocr.text_threshold)

        def thr_for(crop, reading):
            if reading.engine == "handwriting":
                return hw_threshold
            return text_threshold if crop.spec.type == "text" else threshold

        header_crops = [c for c in crops if c.table is None]
        cell_crops = [c for c in crops if c.table is not None]
        header = {}
        today = _today()
        # The FAX sending date: what a written year is checked against when no order date
        # is read, and the year of M/D dates when the order date is missing or in doubt.
        # An order's due dates follow it; a ledger's entries come before it.
        fax_hint = None if fax_sent is None else YearHint(
            fax_sent, "year_from_fax_date", back_days=335 if template.kind == "ledger" else 31)
        # Header first: the order date (or the ledger's year) anchors M/D dates in the rows.
        for crop in sorted(header_crops, key=lambda c: c.spec.type == "date", reverse=True):
            reading = self.reader.read(crop)
            header[crop.name] = make_value(crop, reading, ref_date=None, today=today, hint=fax_hint,
                                           threshold=thr_for(crop, reading))
            if work is not None:
                _write_png(work / f"p{page_number:03d}_{_safe(crop.name)}.png", crop.image)
        ref_date, year = _reference_date(header, template)
        hint = None
        if year is None and fax_hint is not None:
            if ref_date is None:
                hint = fax_hint  # no order date read
            elif abs((ref_date - fax_sent).days) > FAX_DATE_DAYS:
                # the order date and the sending date disagree: the order date is flagged;
                # if it was in doubt already, the rows' years follow the FAX date instead
                od = header["order_date"]
                if od.status != "ok":
                    ref_date, hint = None, fax_hint
                header["order_date"] = _flagged(od, f"fax_date_mismatch:{fax_sent.isoformat()}")
        if ref_date is None and year is None and hint is None and "order_date" in header:
            # an order date too mangled to read whole often still starts with its year
            # and month ('R09.07.39'): the rows' M/D dates follow that month (for review)
            ym = year_month(header["order_date"].raw_text, today)
            if ym is not None:
                hint = YearHint(dt.date(ym[0], ym[1], 1), "year_inferred", back_days=0)
        by_row: dict[tuple[str, int], dict] = {}
        for crop in cell_crops:
            by_row.setdefault((crop.table, crop.row), {})[crop.column] = crop
        from faxflow.ocr.read import EMPTY_INK

        read_rows = []
        for (table, row_index), cells in sorted(by_row.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if all(c.ink < EMPTY_INK for c in cells.values()):
                continue  # an empty row
            read_rows.append((row_index, {column: (crop, self.reader.read(crop, ref_date=ref_date))
                                          for column, crop in cells.items()}))
        # Nothing else to go by: a date written with its year elsewhere on the page
        # (another row's due date, printed 2026/06/14) anchors the M/D dates near it.
        page_dates = [] if (ref_date or year or hint) else _full_dates(header, read_rows)
        last_resort = None if (ref_date or year or hint) else reading_day_hint(template.kind, today)
        rows = []
        for row_index, cells in read_rows:
            row_hint = hint or last_resort
            if page_dates:
                near = min(page_dates, key=lambda rd: (abs(rd[0] - row_index), rd[0]))[1]
                row_hint = YearHint(near, "year_from_page_date", back_days=182)
            values = {}
            for column, (crop, reading) in cells.items():
                values[column] = make_value(crop, reading, ref_date=ref_date, year=year, today=today,
                                            hint=row_hint, threshold=thr_for(crop, reading))
                if work is not None:
                    _write_png(work / f"p{page_number:03d}_{_safe(crop.name)}.png", crop.image)
            rows.append(values)
        return header, rows

    def _read_text(self, image) -> str:
        """OCR callback for form recognition (keywords in the header band)."""
        if getattr(self.printed, "recognize", None) is None:
            return ""
        from faxflow.ocr.engines.tesseract import read_keywords

        return read_keywords(self.printed, image)

    def _work_dir(self, page) -> Path | None:
        if self.settings.keep_work is None:
            return None
        d = Path(self.settings.keep_work) / _safe(Path(page.source_name).stem)
        d.mkdir(parents=True, exist_ok=True)
        return d


def _today():
    import datetime as dt

    return dt.date.today()


# An order date further than this from the FAX sending date is flagged (fax_date_mismatch).
FAX_DATE_DAYS = 60


def _fax_sent(notes):
    """The date of a ``fax-sent=YYYY-MM-DD`` note, or None."""
    import datetime as dt

    for n in notes:
        if str(n).startswith("fax-sent="):
            return dt.date.fromisoformat(str(n).split("=", 1)[1])
    return None


def _flagged(value, reason: str):
    from dataclasses import replace

    return replace(value, status="review", reasons=tuple(dict.fromkeys(value.reasons + (reason,))))


def _full_dates(header: dict, read_rows: list) -> list:
    """(row index, date) of every date on the page written with its year and read
    cleanly (parses with no problem and no reference); header dates count as row -1."""
    import datetime as dt

    from faxflow.templates.parse import parse_text

    found = [(-1, v.value) for v in header.values()
             if v.value_type == "date" and isinstance(v.value, dt.date) and v.status == "ok"]
    for row_index, cells in read_rows:
        for crop, reading in cells.values():
            if crop.spec.type != "date" or not (reading.text or "").strip():
                continue
            p = parse_text(reading.text, crop.spec)  # no reference: an M/D date fails (year_unknown)
            if isinstance(p.value, dt.date) and not p.problems:
                found.append((row_index, p.value))
    return found


def _reference_date(header: dict, template) -> tuple:
    """What anchors M/D dates in the rows: (the order date, a ledger's written year)."""
    import datetime as dt

    od = header.get("order_date")
    ref = od.value if od is not None and isinstance(od.value, dt.date) else None
    year = None
    if template.year_hint and template.year_hint in header:
        y = header[template.year_hint].value
        if isinstance(y, int) and 1900 < y < 2200:
            year = y
    return ref, year


def _text_lang(languages: str) -> str:
    return languages or "jpn"


def _optional_engine(load, missing: str):
    """An engine that faxflow can run without, or None with a warning saying what that
    costs (then more values are flagged or fewer read right; never a crash)."""
    import logging

    try:
        return load()
    except (ImportError, OSError, ValueError, FaxflowError) as exc:
        logging.getLogger("faxflow").warning("%s (%s)", missing, exc)
        return None


def _load_handwriting():
    def load():
        from faxflow.ocr.engines.handwriting import HandwritingEngine

        return HandwritingEngine()

    return _optional_engine(load, "handwriting model not available; handwritten fields will be "
                                  "read by Tesseract and flagged")


def _load_ppocr():
    def load():
        from faxflow.ocr.engines.ppocr import PPOCREngine

        return PPOCREngine()

    return _optional_engine(load, "PP-OCR models not available; printed fields are read by "
                                  "Tesseract alone (run make setup)")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _write_png(path: Path, image) -> None:
    import cv2

    cv2.imwrite(str(path), image)


# PNG compression of the page images. Cleaned pages are black and white, written as
# 1-bit PNG: measured on an aligned 2339x1654 order page, 54 kB in 33 ms at level 3
# (level 9: 44 kB, 258 ms; 8-bit grey at level 3: 103 kB, 150 ms).
PAGE_PNG_LEVEL = 3


def _write_png_atomic(path: Path, image) -> None:
    """Write ``image`` as PNG via a temporary file and a rename, so the review page never
    reads half a file (a re-run replaces the image while a clerk looks at it)."""
    import os
    import tempfile

    import cv2
    import numpy as np

    params = [cv2.IMWRITE_PNG_COMPRESSION, PAGE_PNG_LEVEL]
    if image.ndim == 2 and not np.count_nonzero((image != 0) & (image != 255)):
        params += [cv2.IMWRITE_PNG_BILEVEL, 1]  # only 0 and 255: 1 bit per pixel, same picture
    ok, data = cv2.imencode(".png", image, params)
    if not ok:
        raise ValueError("PNG encoding failed")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.tobytes())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the page is no more secret than the database
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stored_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (the database's folder) when inside it, so a workspace
    can be moved; absolute otherwise."""
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def process_file(path: Path, settings: Settings) -> DocumentResult:
    """Convenience for one-off use: set up a Pipeline, process one file, close."""
    pipeline = Pipeline(settings)
    try:
        return pipeline.process(path)
    finally:
        pipeline.close()


def read_and_describe(path: Path, settings: Settings) -> list[str]:
    """Read one file (nothing stored) and describe every value, for `faxflow read`."""
    from faxflow.templates.reasons import describe

    pipeline = Pipeline(settings)
    result = pipeline.read_document(Path(path))
    lines = [f"{Path(path).name}: {result.status}, {result.pages} page(s), {result.fields} field(s), "
             f"{result.flagged} flagged, {result.duration_s:.2f} s"]
    for rec in result.records:
        lines.append(f"page {rec.page_index + 1}: template={rec.template_name} status={rec.status} "
                     f"align={rec.align_score if rec.align_score is None else round(rec.align_score, 3)} "
                     f"notes={','.join(rec.notes)}")
        values = list(rec.header.values()) + [v for row in rec.rows for v in row.values()]
        for v in values:
            why = "; ".join(describe(r, "en") for r in v.reasons)
            lines.append(f"  {v.name:28} {v.text!r:32} raw={v.raw_text!r} conf={v.confidence:.2f} "
                         f"{v.engine:11} {v.status}{' (' + why + ')' if why else ''}")
    return lines
