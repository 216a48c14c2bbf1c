"""Full dates a FAX mangled (templates/daterepair.py): read back only when exactly one
date near the anchor fits, and always flagged date_repaired."""

from __future__ import annotations

import datetime as dt

import pytest

from faxflow.templates.daterepair import repair_date

ANCHOR = dt.date(2026, 11, 23)

CASES = [
    # reading, what it is (None: no guess)
    ("2025.12 12", "2025-12-12"),     # the last separator lost, a gap left
    ("2026 2 16", "2026-02-16"),
    ("2026216", "2026-02-16"),        # 21/6 is no date: one split fits
    ("20255.31", "2025-05-31"),       # the month glued to the year
    ("2026/10718", "2026-10-18"),     # the second slash read as 7
    ("32027/4/18", "2027-04-18"),     # a speck before the year
    ("2037年02月06H", "2027-02-06"),  # 日 read as H, one look-alike digit in the year
    ("合軸8年9月11日", "2026-09-11"),  # 令和 mangled
    ("和7年7月12日", "2025-07-12"),
    ("R7712", "2025-07-12"),
    ("R82.4", "2026-02-04"),          # R8.2.4 with its first dot lost
    ("R8 2.4", "2026-02-04"),
    ("R8.24", "2026-02-04"),          # the second dot lost: 24 is no month, 2/4 is the one fit
    ("R8 112", None),                 # 1/12 or 11/2: no guess
    ("2926/12/97", None),             # two look-alike digits: too much guessing
    ("R07.68.63", None),
    ("2027年1月101", None),           # 1/101? 11/01? 11/10? no guess
    ("1117/11/11", None),             # no year near the anchor
    ("12/5", None),                   # no year written: not this module's business
    ("", None),
]


@pytest.mark.parametrize("reading, expected", CASES, ids=[c[0] or "empty" for c in CASES])
def test_repair_date(reading, expected):
    got = repair_date(reading, ANCHOR)
    assert (got[0].isoformat() if got else None) == expected


def test_no_anchor_no_guess():
    assert repair_date("2025.12 12", None) is None


def test_a_repaired_order_date_is_shown_and_flagged():
    from faxflow.templates.model import FieldSpec
    from faxflow.templates.parse import parse_text

    p = parse_text("2037年02月06H", FieldSpec(name="order_date", type="date"), today=ANCHOR)
    assert p.value == dt.date(2027, 2, 6) and p.problems == ("date_repaired",)
    assert any(n.startswith("digits:") for n in p.notes)
    clean = parse_text("2026/12/05", FieldSpec(name="order_date", type="date"), today=ANCHOR)
    assert clean.value == dt.date(2026, 12, 5) and not clean.problems


@pytest.mark.parametrize("raw, want", [
    ("R09.07.39", (2027, 7)),         # day 39: no date, but year and month are there
    ("202S年06衣25日", (2025, 6)),     # a look-alike digit in the year
    ("合和8年11月3|", (2026, 11)),     # a mangled era name
    ("令和7年月25日", None),           # the month lost: nothing to anchor the rows on
    ("2075條91月6", None),             # a year far from today
    ("", None),
])
def test_year_and_month_from_the_start_of_a_mangled_date(raw, want):
    import datetime as dt

    from faxflow.templates.daterepair import year_month

    assert year_month(raw, dt.date(2026, 12, 7)) == want
