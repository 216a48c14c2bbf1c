"""Japanese eras and a date constructor that says None instead of raising: shared by
the field parser (``parse.py``), the FAX header's date (``faxdate.py``) and the repair
of mangled dates (``daterepair.py``)."""

from __future__ import annotations

import datetime as dt

__all__ = ["ERAS", "date_or_none", "era_year"]

ERAS: dict[str, tuple[dt.date, dt.date | None]] = {
    # era: (first day, last day)
    "明治": (dt.date(1868, 1, 1), dt.date(1912, 7, 29)),  # the 1868 edict counted from Jan 1
    "大正": (dt.date(1912, 7, 30), dt.date(1926, 12, 24)),
    "昭和": (dt.date(1926, 12, 25), dt.date(1989, 1, 7)),
    "平成": (dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
    "令和": (dt.date(2019, 5, 1), None),
}


def date_or_none(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def era_year(era: str, n: int) -> int:
    """The Western year of year ``n`` of ``era`` (令和8 -> 2026)."""
    return ERAS[era][0].year + n - 1
