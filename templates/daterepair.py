"""Full dates (order dates, dates written with their year) that did not parse as read.

A FAX turns a printed ``2026/12/07`` into ``2926/12/97``, ``2025.12 12``, ``2026 2 16``,
``2077/10718``, ``令科9等4月20日`` or ``2037年02月06H``: the digits and their order are
mostly there, a separator or a glyph is not. Such a reading used to be ``not_a_date``
with no value for the clerk, and - for an order date - no anchor for the year of every
M/D due date on the page.

``repair_date(text, anchor)`` tries the few ways such a reading can be read back, in
order of how much they assume:

1. glyphs that stand for a date's kanji or an era (日 read as H/目/曰, 年 as 等/生/午,
   月 as 日 between two numbers, a mangled 令和 such as 合和/合軸/令科/和);
2. the digit groups split into year, month and day where the separators were lost
   (``20255.31`` -> 2025 5 31; ``2026216`` -> 2026 2 16; ``1212`` -> 12 12; ``R82.4``
   -> R8 2 4), a stray digit glued to the year dropped (``32027`` -> 2027);
3. a slash read as 7 or 1 (``10718`` -> 10/18);
4. one look-alike digit in the year, month or day (9/6/8 for 0, 7 for 1, 3 for 2 ...).

A candidate counts only if it is a real date within ``WINDOW_DAYS`` of ``anchor`` (the
FAX date, or the day it is read). It is returned only when all candidates that need the
least guessing agree on one date; the caller shows it flagged ``date_repaired``, never
as certain.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata

from faxflow.templates.eras import date_or_none, era_year

__all__ = ["repair_date", "year_month", "WINDOW_DAYS"]

#: How far from the anchor a repaired date may lie (orders are read within days of being
#: sent; a ledger page may be a year old).
WINDOW_DAYS = 550

_KANJI_FIXES = [
    (re.compile(r"(?<=\d)\s*[H目曰]\s*$"), "日"),
    (re.compile(r"(?<=\d)\s*[等生午牛]\s*(?=\d)"), "年"),
    (re.compile(r"(?<=\d)\s*\)?\s*[日]\s*(?=\d{1,2}\s*日)"), "月"),
]
_ERA_MANGLED = re.compile(r"^[^\d]{0,3}?(?:[令合今][^\d]?|[^\d]?[和軸科])\s*(?=\d{1,2}\s*年)")
_LOOKALIKE = {"0": "689", "9": "0", "6": "0", "8": "03", "3": "28", "2": "3", "1": "7", "7": "1", "5": "3"}


def _md_splits(md: str, slash_read: bool) -> list[tuple[str, str]]:
    """Month and day from digits whose separator was lost (``1212``), or with
    ``slash_read`` read as a 7 or 1 (``10718``)."""
    if not slash_read:
        return [(md[:k], md[k:]) for k in (1, 2) if 1 <= len(md) - k <= 2]
    return [(md[:k], md[k + 1:]) for k in (1, 2)
            if len(md) > k and md[k] in "71" and 1 <= len(md) - k - 1 <= 2]


def _splits(groups: list[str], slash_read: bool = False) -> list[tuple[str, str, str]]:
    """Year, month, day strings from the digit groups of a reading. Three groups are
    taken as they are (a stray digit glued to a 5-digit year dropped); fewer groups had
    a separator lost, and are split anew (a 4-digit year first)."""
    out = set()
    if len(groups) == 3 and not slash_read:
        out.add(tuple(groups))
        if len(groups[0]) == 5:
            out.add((groups[0][1:], groups[1], groups[2]))
            out.add((groups[0][:4], groups[1], groups[2]))
    elif len(groups) == 2 and len(groups[0]) >= 4:
        year, rest = groups[0][:4], groups[0][4:]
        if rest and not slash_read:  # 20255.31: the month glued to the year
            out.add((year, rest, groups[1]))
        elif not rest:
            out |= {(year, m, d) for m, d in _md_splits(groups[1], slash_read)}
    elif len(groups) == 1 and len(groups[0]) >= 6:
        out |= {(groups[0][:4], m, d) for m, d in _md_splits(groups[0][4:], slash_read)}
    return [t for t in out if all(t)]


def _variants(s: str, budget: int) -> list[tuple[str, int]]:
    """``s`` and its versions with up to ``budget`` look-alike digits replaced, with the
    number replaced."""
    out = [(s, 0)]
    if budget >= 1:
        for i, ch in enumerate(s):
            for alt in _LOOKALIKE.get(ch, ""):
                out.append((s[:i] + alt + s[i + 1:], 1))
    return out


_DIGIT_LOOKS = str.maketrans({"O": "0", "o": "0", "S": "5", "s": "5", "l": "1", "I": "1", "|": "1"})
_ERA_YM = re.compile(r"^(?:令和|R)\s*\.?\s*(\d{1,2})\s*[年.\-/]\s*(\d{1,2})(?!\d)")
_WESTERN_YM = re.compile(r"^(20\d\d)\s*[年.\-/]\s*(\d{1,2})(?!\d)")


def year_month(text: str, today: dt.date) -> tuple[int, int] | None:
    """(year, month) from the start of a date too mangled to read whole ('R09.07.39',
    '令和7年06月2S1', '202S年06衣25日'): the era or 4-digit year and the month after it,
    look-alike digits read as digits, the year within 3 years of ``today``. None when
    the start does not say. For the year of the rows' M/D dates only: the date itself
    stays unread and flagged."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", text).strip()
    m = _ERA_MANGLED.match(s)
    if m and "年" in s and not s.startswith(("令和", "平成", "昭和")):
        s = "令和" + s[m.end():]
    s = s.translate(_DIGIT_LOOKS)
    if (m := _ERA_YM.match(s)) is not None:
        year, month = era_year("令和", int(m.group(1))), int(m.group(2))
    elif (m := _WESTERN_YM.match(s)) is not None:
        year, month = int(m.group(1)), int(m.group(2))
    else:
        return None
    if not 1 <= month <= 12 or abs(year - today.year) > 3:
        return None
    return year, month


def repair_date(text: str, anchor: dt.date | None) -> tuple[dt.date, list[str]] | None:
    """The one date ``text`` most plausibly is, with notes of what was assumed; None
    when no repair, or more than one, fits near ``anchor``."""
    if anchor is None or not text:
        return None
    s = unicodedata.normalize("NFKC", text).strip()
    notes: list[str] = []
    for pat, rep in _KANJI_FIXES:
        s2 = pat.sub(rep, s)
        if s2 != s:
            notes.append(f"kanji:{rep}")
            s = s2
    era = False
    m = _ERA_MANGLED.match(s)
    if m and "年" in s and not s.startswith(("令和", "平成", "昭和")):
        s = "令和" + s[m.end():]
        notes.append("era:令和")
    if s.startswith("令和"):
        era = True
        s = s[2:]
    elif re.match(r"^R\s*\.?\s*\d", s):
        era = True
        s = s[1:]
    groups = re.findall(r"\d+", s)
    if not groups or len("".join(groups)) < (3 if era else 6):
        return None

    def near(d: dt.date | None) -> bool:
        return d is not None and abs((d - anchor).days) <= WINDOW_DAYS

    # least assumed first: separators lost; a slash read as 7 or 1; one look-alike digit
    for slash_read, budget in ((False, 0), (True, 0), (False, 1)):
        found: dict[dt.date, list[str]] = {}
        if era:
            splits = [tuple(groups)] if len(groups) == 3 and not slash_read else []
            if len(groups) == 1:  # R7712: era year, month, day run together
                splits += [(groups[0][:k], m, d) for k in (1, 2)
                           for m, d in _md_splits(groups[0][k:], slash_read)]
            if len(groups) == 2 and not slash_read:  # one of the two dots lost
                a, b = groups
                splits += [(a[:k], a[k:], b) for k in (1, 2) if len(a) > k]  # R82.4
                splits += [(a, m, d) for m, d in _md_splits(b, False)]  # R8.24
        else:
            splits = _splits(groups, slash_read)
        for ys, ms, ds in splits:
            if not (ys and ms and ds) or len(ms) > 2 or len(ds) > 2:
                continue
            parts = [_variants(p, budget) for p in (ys, ms, ds)]
            for (yv, yc), (mv, mc), (dv, dc) in itertools.product(*parts):
                if yc + mc + dc > budget:
                    continue
                year = era_year("令和", int(yv)) if era else int(yv)
                if not era and len(yv) != 4:
                    continue
                d = date_or_none(year, int(mv), int(dv))
                if near(d):
                    found.setdefault(d, [f"digits:{ys}/{ms}/{ds}->{yv}/{mv}/{dv}"] if yc + mc + dc else [])
        if len(found) == 1:
            d, more = next(iter(found.items()))
            return d, notes + more
        if len(found) > 1:
            return None  # several readings fit as well: no guess
    return None
