"""The sending date in a FAX transmission header line (TTI).

A received FAX carries, at the very top, a line the *sending machine* wrote: date,
time, its number and name, the page. Machines write the date in many ways::

    2026/11/20 14:05  0561-23-4567  川田精機  P.1/2
    NOV-20-2026 14:05 FROM:0561234567 P.001/002
    2026年11月20日 14時05分 ...
    26/11/20 14:05 ...        20-NOV-26 14:05 ...        R8.11.20 14:05 ...
    14:05 2026/11/20 ...      20.11.2026 14:05 ...

``fax_date(text, today=...)`` is generous in what it recognises and strict in what it
accepts: every date-like group in the line is parsed, and a date is returned only when
all of them agree on one date (an ambiguous order such as 03/04/05 counts as two), and
it lies within ``PLAUSIBLE_YEARS`` of ``today`` (a machine whose clock was reset to
2000-01-01 says nothing about the year). OCR look-alikes (O/o/Ø -> 0, l/I/| -> 1) are
replaced only inside a group that already has the shape of a date.

The date is *evidence*, not a value read from the form: the pipeline records it as a
page note (``fax-sent=2026-11-20``) and uses it as the reference year for M/D dates when
the order date is missing or doubtful (always flagged ``year_from_fax_date``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from faxflow.templates.eras import ERAS, date_or_none, era_year

__all__ = ["fax_date", "header_dates", "PLAUSIBLE_YEARS"]

#: A FAX date further than this many years from ``today`` is a wrong machine clock.
PLAUSIBLE_YEARS = 3

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
# letters OCR puts where a digit of a date belongs (only inside a date-shaped group)
_LOOK = {"O": "0", "o": "0", "Ø": "0", "ø": "0", "D": "0", "Q": "0", "〇": "0",
         "l": "1", "L": "1", "I": "1", "|": "1", "i": "1", "!": "1", "]": "1", "[": "1"}
_D = r"[0-9OoØøDQ〇lLI|i!\]\[]"  # a digit or one of its look-alikes
_S = r"\s?"  # OCR puts a space here and there
_MON = "(?P<mon>" + "|".join(_MONTHS) + r")[A-Z]*\.?"

# (pattern, field order) -- y: 4-digit year, yy: 2-digit year, era: R/H + era year
_PATTERNS: list[tuple[re.Pattern, str]] = [
    # 2026/11/20, 2026-11-20, 2026.11.20
    (re.compile(rf"(?<![0-9:])(?P<y>{_D}{{4}}){_S}(?P<s>[/.\-]){_S}(?P<m>{_D}{{1,2}}){_S}(?P=s){_S}"
                rf"(?P<d>{_D}{{1,2}})(?![0-9:])"), "ymd"),
    # 2026年11月20日, 26年11月20日, 令和8年11月20日
    (re.compile(rf"(?:(?P<era>令和|平成|R|H){_S}(?P<ey>{_D}{{1,2}}|元)|(?P<y>{_D}{{4}})|(?P<yy>{_D}{{2}}))"
                rf"{_S}年{_S}(?P<m>{_D}{{1,2}}){_S}月{_S}(?P<d>{_D}{{1,2}}){_S}日"), "ymd"),
    # R8.11.20, H31/04/30
    (re.compile(rf"(?<![A-Za-z0-9])(?P<era>[RH]){_S}\.?{_S}(?P<ey>{_D}{{1,2}}){_S}(?P<s>[/.\-]){_S}"
                rf"(?P<m>{_D}{{1,2}}){_S}(?P=s){_S}(?P<d>{_D}{{1,2}})(?![0-9:])"), "ymd"),
    # 26/11/20, 26.11.20 (never with '-': that is how phone numbers are written)
    (re.compile(rf"(?<![0-9/.:])(?P<yy>{_D}{{2}}){_S}(?P<s>[/.]){_S}(?P<m>{_D}{{1,2}}){_S}(?P=s){_S}"
                rf"(?P<d>{_D}{{1,2}})(?![0-9/.:])"), "ymd"),
    # 20/11/2026, 20.11.2026 (day first, as European machines write)
    (re.compile(rf"(?<![0-9/.:])(?P<d>{_D}{{1,2}}){_S}(?P<s>[/.\-]){_S}(?P<m>{_D}{{1,2}}){_S}(?P=s){_S}"
                rf"(?P<y>{_D}{{4}})(?![0-9:])"), "dmy"),
    # NOV-20-2026, NOV 20, 2026, NOV.20.26
    (re.compile(rf"(?<![A-Z]){_MON}{_S}[-/. ]?{_S}(?P<d>{_D}{{1,2}}){_S}[-/., ]{{1,2}}{_S}"
                rf"(?P<yfull>{_D}{{4}}|{_D}{{2}})(?![0-9:])"), "mdy"),
    # 20-NOV-26, 20 NOV 2026
    (re.compile(rf"(?<![0-9:])(?P<d>{_D}{{1,2}}){_S}[-/. ]?{_S}{_MON}{_S}[-/. ]?{_S}"
                rf"(?P<yfull>{_D}{{4}}|{_D}{{2}})(?![0-9:])"), "dmy"),
    # 2026-NOV-20
    (re.compile(rf"(?<![0-9:])(?P<y>{_D}{{4}}){_S}[-/. ]{_S}{_MON}{_S}[-/. ]{_S}(?P<d>{_D}{{1,2}})(?![0-9:])"),
     "ymd"),
]
_ERA_NAME = {"令和": "令和", "R": "令和", "平成": "平成", "H": "平成"}
# an era year past its era's end is no date (H31 was the last Heisei year)
_ERA_LAST = {"令和": 99, "平成": ERAS["平成"][1].year - ERAS["平成"][0].year + 1}


def _digits(s: str) -> str | None:
    out = "".join(_LOOK.get(ch, ch) for ch in s)
    return out if out.isascii() and out.isdigit() else None


def _from_match(m: re.Match) -> dt.date | None:
    g = m.groupdict()
    month = _MONTHS[g["mon"]] if g.get("mon") else None
    if month is None:
        ms = _digits(g["m"])
        if ms is None:
            return None
        month = int(ms)
    ds = _digits(g["d"])
    if ds is None:
        return None
    day = int(ds)
    if g.get("era"):
        ey = g["ey"]
        n = 1 if ey == "元" else int(_digits(ey) or 0)
        era = _ERA_NAME[g["era"]]
        if not 1 <= n <= _ERA_LAST[era]:
            return None
        year = era_year(era, n)
    else:
        ys = g.get("y") or g.get("yy") or g.get("yfull")
        ys = _digits(ys) if ys else None
        if ys is None:
            return None
        year = int(ys) if len(ys) == 4 else 2000 + int(ys)
    return date_or_none(year, month, day)


def header_dates(text: str) -> list[dt.date]:
    """Every date the header line can be read to contain (duplicates kept once, in
    order of appearance). No plausibility check: see :func:`fax_date`."""
    s = unicodedata.normalize("NFKC", text or "").upper()  # upper(): month names; kanji stay
    s = re.sub(r"[‐‑‒–—―−ー一~〜]", "-", s)
    found: list[tuple[int, dt.date]] = []
    for pat, _order in _PATTERNS:
        for m in pat.finditer(s):
            d = _from_match(m)
            if d is not None:
                found.append((m.start(), d))
    found.sort(key=lambda t: t[0])
    return list(dict.fromkeys(d for _, d in found))


def fax_date(text: str, *, today: dt.date) -> dt.date | None:
    """The sending date in a FAX header line, or None when there is none, more than one
    candidate (``03/04/05``), or it is implausible (more than PLAUSIBLE_YEARS from
    ``today``)."""
    dates = [d for d in header_dates(text) if abs((d - today).days) <= PLAUSIBLE_YEARS * 366]
    return dates[0] if len(dates) == 1 else None
