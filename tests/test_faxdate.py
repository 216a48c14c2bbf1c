"""The FAX sending date (TTI header line) and the years it gives M/D dates.

* ``templates.faxdate.fax_date``: each header style machines write, parsed; ambiguous,
  implausible or contradictory lines give no date.
* ``templates.parse``: a ``YearHint`` sets the year of an M/D date, always for review
  with its own reason; the order date (when there is one) still wins.
* end to end: a FAXed order whose order date cannot be read takes the year of its due
  dates from the header line (real Tesseract).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from faxflow.templates.faxdate import fax_date, header_dates
from faxflow.templates.model import FieldSpec
from faxflow.templates.parse import YearHint, parse_text
from faxflow.templates.reasons import REASONS, code_of

TODAY = dt.date(2026, 11, 23)
GOTHIC = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
D = dt.date(2026, 11, 20)

STYLES = [
    ("slash", "2026/11/20 14:05  0561-23-4567  川田精機  P.1/2", D),
    ("month-name", "NOV-20-2026 14:05 FROM:0561234567 P.001/002", D),
    ("kanji", "2026年11月20日 14時05分  川田精機株式会社  0566-21-4471  1/2", D),
    ("kanji-padded", "2026年11月 1日 08時35分  川田精機", dt.date(2026, 11, 1)),
    ("ocr-spaced-kanji", "2026 年 10 月 1 日 15 時 17 分 川田 精機", dt.date(2026, 10, 1)),
    ("two-digit-year", "26/11/20 14:05 0561-23-4567", D),
    ("day-month-name-yy", "20-NOV-26 23:05 FROM 0561234567", D),
    ("day-month-name-yyyy", "20 NOV 2026 14:05", D),
    ("month-name-comma", "Nov 20, 2026 14:05 P.1", D),
    ("reiwa-letter", "R8.11.20 14:05 TEL 0561-23-4567", D),
    ("reiwa-kanji", "令和8年11月20日 14:05", D),
    ("time-first", "14:05 2026/11/20 0561-23-4567", D),
    ("day-first", "20.11.2026 14:05", D),
    ("dashes", "2026-11-20 14:05 P.1/1", D),
    ("ocr-lookalikes", "2O26/ll/2O 14:05 058-279-0412", D),
]


@pytest.mark.parametrize("text,want", [(t, w) for _, t, w in STYLES], ids=[s for s, _, _ in STYLES])
def test_header_styles(text, want):
    assert fax_date(text, today=TODAY) == want


@pytest.mark.parametrize("text", [
    "2000/01/01 00:00 0561-23-4567",  # a machine whose clock was reset
    "2026/11/20 14:05 2026/11/21",  # two different dates
    "P.1/2 0566-21-4471 FROM:0561234567",  # no date at all
    "2026/13/20 14:05",  # no such month
    "2026/11/ 14:05",  # a date cut short
    "",
], ids=["clock-reset", "two-dates", "no-date", "bad-month", "cut-short", "empty"])
def test_no_date_accepted(text):
    assert fax_date(text, today=TODAY) is None


def test_phone_numbers_are_no_dates():
    assert header_dates("058-279-0412  0566-21-4471  03-12-34") == []


MD = FieldSpec(name="due_date", type="date")


@pytest.mark.parametrize("raw,hint,want", [
    ("12/5", YearHint(dt.date(2025, 11, 20), "year_from_fax_date"), "2025-12-05"),
    ("1/10", YearHint(dt.date(2025, 11, 20), "year_from_fax_date"), "2026-01-10"),
    # a due date a little before the FAX was sent (the order was faxed late)
    ("11/10", YearHint(dt.date(2025, 11, 20), "year_from_fax_date"), "2025-11-10"),
    # a ledger's entries come before the FAX date
    ("3/4", YearHint(dt.date(2025, 11, 20), "year_from_fax_date", back_days=335), "2025-03-04"),
    ("12/24", YearHint(dt.date(2025, 11, 20), "year_from_fax_date", back_days=335), "2024-12-24"),
    # another row's full date: the nearest such date
    ("1/5", YearHint(dt.date(2025, 12, 20), "year_from_page_date", back_days=182), "2026-01-05"),
    ("11/30", YearHint(dt.date(2026, 1, 5), "year_from_page_date", back_days=182), "2025-11-30"),
    ("6月14日", YearHint(dt.date(2025, 6, 1), "year_from_fax_date"), "2025-06-14"),
], ids=["same-year", "next-year", "just-before", "ledger", "ledger-prev-year", "page-next-year",
        "page-prev-year", "kanji-md"])
def test_year_from_hint(raw, hint, want):
    p = parse_text(raw, MD, today=TODAY, hint=hint)
    assert p.text == want
    assert p.problems == (f"{hint.reason}:{want[:4]}",)  # always for review, with its own reason
    assert code_of(p.problems[0]) in REASONS


def test_order_date_wins_over_hint():
    p = parse_text("12/5", MD, ref_date=dt.date(2026, 11, 20), today=TODAY,
                   hint=YearHint(dt.date(2025, 11, 20), "year_from_fax_date"))
    assert p.text == "2026-12-05" and p.ok


def test_written_year_is_checked_against_the_hint():
    hint = YearHint(dt.date(2025, 3, 1), "year_from_fax_date")
    assert parse_text("2025/6/14", MD, today=TODAY, hint=hint).ok
    far = parse_text("2027/6/14", MD, today=TODAY, hint=hint)
    assert "out_of_range:far_from_reference" in far.problems  # today (2026-11) would not say so
    twin = parse_text("2625/6/14", MD, today=TODAY, hint=hint)  # one look-alike digit off the FAX year
    assert twin.text == "2025-06-14" and "lookalike_corrected" in twin.problems


def test_without_hint_today_still_decides():
    p = parse_text("12/5", MD, today=TODAY)
    assert p.text == "2026-12-05" and p.problems == ("year_inferred:2026",)


@pytest.mark.parametrize("kind, raw, want", [
    ("ledger", "2/7", "2026-02-07"),    # a ledger's entries happened: last February
    ("ledger", "12/10", "2026-12-10"),  # (a few days ahead: this year still)
    ("order", "2/7", "2027-02-07"),     # an order's due date: the one nearest the reading day
])
def test_last_resort_year_of_a_ledger_is_the_past_year(kind, raw, want):
    from faxflow.templates.parse import reading_day_hint

    today = dt.date(2026, 12, 7)
    p = parse_text(raw, MD, today=today, hint=reading_day_hint(kind, today))
    assert p.text == want and p.problems == (f"year_inferred:{want[:4]}",)


# ---------------------------------------------------------------------------------------
# end to end

SCANS = Path(__file__).resolve().parent.parent / "samples" / "scans"


@pytest.mark.tesseract
@pytest.mark.slow
def test_unreadable_order_date_takes_year_from_fax_header(tmp_path):
    import json

    from faxflow.ingest.pipeline import Pipeline
    from faxflow.ingest.settings import Settings
    from faxflow.templates.types import Reading

    scan = SCANS / "fax_standard_kawada.tif"
    truth = json.loads(scan.with_name("fax_standard_kawada.truth.json").read_text())["pages"][0]
    sent = dt.date.fromisoformat(truth["header"]["order_date"])  # the generator dates the FAX so
    pipeline = Pipeline(Settings.for_home(tmp_path))
    read = pipeline.reader.read

    def order_date_unreadable(crop, **kw):
        if crop.name == "order_date":  # ink in the cell, nothing read
            return Reading(text="", confidence=0.0, engine="tesseract", notes=("no_text",))
        return read(crop, **kw)

    pipeline.reader.read = order_date_unreadable
    rec = pipeline.read_document(scan).records[0]
    assert f"fax-sent={sent.isoformat()}" in rec.notes
    assert rec.header["order_date"].value is None
    # the M/D readings (a misread such as '73-1-4' has a year of its own)
    due = [row["due_date"] for row in rec.rows
           if row["due_date"].value is not None and len(re.findall(r"\d+", row["due_date"].raw_text)) == 2]
    assert due
    want = {r["fields"]["due_date"] for r in truth["rows"]}
    for v in due:
        assert v.status == "review"
        assert any(r.startswith("year_from_fax_date:") for r in v.reasons)
        assert not any(code_of(r) in ("year_inferred", "year_from_doubtful_header") for r in v.reasons)
    # the sample's due dates are in 2025 (today-based inference would make them 2026)
    assert sum(v.text in want for v in due) >= len(due) - 1


def test_header_strip_kept_on_the_cleaned_page():
    from faxflow.ocr.clean import clean_page
    from faxflow.templates.types import Page

    from PIL import Image, ImageDraw, ImageFont

    w, h = 1600, 2200
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    d.text((60, 12), "2026/11/20 14:05   0561-23-4567   川田精機   P.1/2", font=ImageFont.truetype(GOTHIC, 22),
            fill=0)
    d.rectangle([120, 200, w - 120, h - 200], outline=0, width=3)
    d.text((600, 240), "注文書", font=ImageFont.truetype(GOTHIC, 60), fill=0)
    page = Page(sha256="0" * 64, source_name="x.png", index=0, image=np.asarray(img).copy(), dpi=200.0)
    out = clean_page(page, detect_orientation=False)
    assert "fax-header-removed" in out.notes
    strip = out.header_strip
    assert strip is not None and strip.shape[0] < 60 and strip.shape[1] > 500
    assert (strip < 128).any()  # the ink of the line, 0 = ink
    assert replace(page).header_strip is None
