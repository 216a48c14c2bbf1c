"""Parsing and checking one field: raw OCR text -> canonical value + reason codes.

``normalize`` cleans text for a field type, ``parse_text`` turns it into a typed value
and its canonical text (docs/DEVELOPING.md, "Canonical text of values") and lists the
problems found, ``make_value`` wraps that into a ``Value`` with its provenance and a
status.

The rule this module serves: never a silent wrong value. Anything that is a *guess*
rather than a certain normalisation makes the value ``review``:

* Certain (no flag): NFKC (全角 digits/letters, ￥, ㋿ ...), dashes ー－―‐−– in part
  numbers/numbers/dates, thousands separators, units, ¥/円/``-`` money marks, spaces
  OCR put inside numbers (``12, 345``), 和暦, kanji numerals in dates (十二月五日).
* Guesses (flag ``lookalike_corrected``, confidence lowered): a letter read where a
  digit belongs. In numeric fields O o 〇 ○ -> 0, l I | -> 1, S s -> 5, B -> 8,
  Z z -> 2, and a leading Y/y taken for ¥ -- only inside a run that holds at least one
  real digit (``1O0`` -> 100; a lone ``O`` stays not_a_number). In dates only
  O o 〇 ○ / l I | next to a digit (S is Showa there). In part numbers only when the
  template has a ``pattern`` that the text as read fails and exactly one O/0, I/1/L,
  S/5, B/8, Z/2, G/6, T/7 swap (or $ -> S/5, ( -> C, ¥ -> Y) makes it match. In free text only a lone 0 before katakana
  -> O (Oリング). A written year far from the reference that one look-alike digit
  brings within a year of it (2626 -> 2026).
* The year of an M/D date: from the ledger's year field (certain), else the order date
  (the next such date on or after it), else a ``YearHint`` -- the FAX sending date read
  from the header line, or a full date elsewhere on the page (flagged
  ``year_from_fax_date`` / ``year_from_page_date``) --, else today (``year_inferred``).
* Guesses flagged ``separator_guessed``: an M/D whose slash was lost or read as 7/1
  (``814`` -> 8/14); a part number's lost hyphen put back where its pattern says; a gap
  inside a part number with no pattern to settle it.
* Flagged ``date_repaired``: a full date that did not parse as read, read back by
  ``templates/daterepair.py`` (lost separators, 日 read as H, a mangled 令和, one
  look-alike digit) when exactly one such date lies near the order/FAX date or today.
* Flagged ``kana_voicing``: in free text, a katakana word whose voicing mark a FAX
  wiped out or changed, put back when one change of one mark makes it a dictionary word
  (``サンブル`` -> サンプル; see ``templates/kana.py``). ``kana_doubtful``: a katakana
  run no dictionary words spell (ミルンート), or a small ゃゅょ where spelling allows none.
* Flagged ``gap_in_number``: free text with a gap between two digits (``t 1 6``) or
  between a lone letter and digits (``A 42``): a point or hyphen may have been lost.
* Flagged ``bracket_unpaired``: free text with a bracket and no partner (``株)光洋電機``:
  a character cut off or lost).
* Flagged ``marks_removed``: a lone mark after free text, apart from it (``ウエス .``: a
  speck read as a period), taken off; marks a pattern says cannot belong (dots, commas, comb-box
  dividers read as 1) taken out of a code or number written as text (``5,0,1,07,2`` ->
  501072), only when exactly one way of doing so fits.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from faxflow.templates.daterepair import repair_date
from faxflow.templates.eras import ERAS, date_or_none
from faxflow.templates.kana import fix_text
from faxflow.templates.model import FieldSpec
from faxflow.templates.reasons import REASONS, code_of
from faxflow.templates.types import FieldCrop, Reading, Value

__all__ = [
    "Parsed",
    "YearHint",
    "normalize",
    "parse_text",
    "make_value",
    "reading_day_hint",
    "canonical_money",
    "ERAS",
    "YEAR_WINDOW_DAYS",
    "FAR_DAYS",
    "LOOKALIKE_PENALTY",
]

# An M/D date whose inferred year puts it more than this many days after the order date
# is flagged ``year_inferred`` (the "next such date" rule is then probably wrong: a
# misread digit, or a due date before the order date).
YEAR_WINDOW_DAYS = 183
# A date with a written year further than this from ref_date (or today) is flagged.
FAR_DAYS = 366
# Confidence is multiplied by this once per look-alike character replaced.
LOOKALIKE_PENALTY = 0.8
NUMBER_TYPES = ("integer", "quantity", "money")

DASHES = "ー－―‐‑‒–—−﹣ｰ"
_DASH_RE = re.compile(f"[{DASHES}]")
_ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_CJK = (
    "\u3000-\u303f"  # CJK symbols and punctuation (、。〃々〆)
    "\u3040-\u309f"  # hiragana
    "\u30a0-\u30ff"  # katakana (incl. ー)
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kanji
    "\uff01-\uff0f\uff1a-\uff20"  # full-width punctuation that survives NFKC (rare)
)
_CJK_SPACE_RE = re.compile(f"(?<=[{_CJK}]) +(?=[{_CJK}])")

NUMERIC_LOOKALIKES = {"O": "0", "o": "0", "〇": "0", "○": "0",
                      "l": "1", "I": "1", "|": "1",
                      "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2"}
DATE_LOOKALIKES = {"O": "0", "o": "0", "〇": "0", "○": "0", "l": "1", "I": "1", "|": "1"}
# Part numbers: each character that may have been read as its twin (after upper-casing).
PART_TWINS = {"O": "O0", "0": "0O", "I": "I1", "1": "1I", "L": "L1", "S": "S5", "5": "5S",
              "B": "B8", "8": "8B", "Z": "Z2", "2": "2Z", "G": "G6", "6": "6G",
              # marks a FAX makes of letters and digits: $ for S/5, ( for C, ¥ for Y, T/7
              "$": "S5", "(": "C", "¥": "Y", "T": "T7", "7": "7T"}
_PART_MAX_AMBIGUOUS = 12  # 2**12 candidates at most

# Units accepted after a quantity. No single ASCII letters but "m": g, t, l/L look too much
# like 9, 7/+, 1 (a misread digit must not disappear as a "unit").
UNITS = ("セット", "ケース", "ロット", "個", "本", "枚", "箱", "台", "式", "組", "袋", "巻", "缶",
         "冊", "足", "丁", "束", "部", "点", "箇", "ケ", "ヶ", "ヵ", "カ", "コ", "件", "回", "人",
         "対", "脚", "双", "連", "包", "玉", "反", "瓶", "膳", "錠", "m")
ASCII_UNITS = ("set", "pcs", "pc", "kg", "mm", "cm")  # any case
_UNIT_RE = re.compile("(?:(?i:" + "|".join(ASCII_UNITS) + ")|"
                      + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
                      + r")\.?$")
_LOOKALIKE_CHARS = "".join(NUMERIC_LOOKALIKES)
_NUM_CHARS = "0-9,." + re.escape(_LOOKALIKE_CHARS)
_NUM_CORE_RE = re.compile(f"^[{_NUM_CHARS}]+$")


@dataclass(frozen=True)
class YearHint:
    """A weak anchor for the year of an M/D date, used when there is no order date to
    trust: the FAX sending date, or a full date written elsewhere on the page.

    The M/D date is taken as the first such date on or after ``date - back_days`` (an
    order's due dates follow the FAX date, give or take a month: ``back_days=31``; a
    ledger's entries precede it: ``back_days=335``; another row's date is as likely
    before as after: ``back_days=182``). A value whose year comes from a hint is always
    ``review``, with ``reason`` (a code of templates/reasons.py, e.g.
    ``year_from_fax_date``) and the year as detail."""

    date: dt.date
    reason: str
    back_days: int = 31


def reading_day_hint(kind: str | None, today: dt.date) -> YearHint | None:
    """The anchor of last resort for M/D dates (no order date, written year, FAX date
    or full date on the page): a ledger records what happened, so its dates are taken in
    the 335 days up to the day it is read (on 7 December a ledger's 2/7 is last
    February, not the February to come); None for an order, whose dates are then taken
    nearest the day it is read (``year_inferred`` either way, always for review)."""
    if kind == "ledger":
        return YearHint(today, "year_inferred", back_days=335)
    return None


@dataclass(frozen=True)
class Parsed:
    """The result of parsing one field's text.

    ``value``: str (text, part_number), int (integer, quantity), Decimal (money),
    datetime.date (date), or None when empty or unparseable. ``text``: canonical text
    (the normalised reading when unparseable, "" when empty). ``problems``: review
    reason codes (``code`` or ``code:detail``). ``notes``: what was done, for the log
    (``lookalike:O->0``, ``unit:個``, ``year_inferred:2027``, ...).
    """

    value: object
    text: str
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def lookalikes(self) -> int:
        """How many characters were replaced by a look-alike guess."""
        return sum(1 for n in self.notes if n.startswith("lookalike:"))

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------
# normalisation


def _nfkc(text: str) -> str:
    text = text.replace("ℓ", "L")  # NFKC would make the litre sign a lower-case l (a 1 look-alike)
    return _ZERO_WIDTH_RE.sub("", unicodedata.normalize("NFKC", text))


def _norm_text(s: str) -> str:
    s = " ".join(s.split())
    # A multiplication sign between two numbers (M8×30, 200×300) is read as x or X as
    # often as ×; in free text between digits it can only be ×.
    s = re.sub(r"(?<=\d) ?[xX×] ?(?=\d)", "×", s)
    # A dash between ASCII letters/digits (A-42, P-20) is read as the katakana long
    # vowel mark ー or the kanji 一 as often as -; there it can only be a dash.
    s = re.sub(r"(?<=[A-Za-z0-9])[ー一－―‐−](?=[A-Za-z0-9])", "-", s)
    return _CJK_SPACE_RE.sub("", s).strip()


def text_key(s: str) -> str:
    """What two free-text readings must share to be the same text: the normalised
    text without any white space (OCR spacing in Japanese text is not content)."""
    return "".join(_norm_text(_nfkc(s or "")).split())


def _norm_part(s: str) -> str:
    s = "".join(s.split())
    s = _DASH_RE.sub("-", s)
    # a FAXed hyphen in a code comes out as a tilde as often as as a hyphen
    s = re.sub(r"(?<=[A-Za-z0-9])[~〜～](?=[A-Za-z0-9])", "-", s)
    # Japanese OCR reads a hyphen as the kanji 一 (one); between ASCII letters/digits of a
    # product code it can be nothing else.
    s = re.sub(r"(?<=[A-Za-z0-9])一(?=[A-Za-z0-9])", "-", s)
    return s.upper()


def _substitute(core: str, table: dict[str, str], notes: list[str]) -> str:
    out = []
    for ch in core:
        if ch in table:
            notes.append(f"lookalike:{ch}->{table[ch]}")
            out.append(table[ch])
        else:
            out.append(ch)
    return "".join(out)


def _split_number(s: str, type_: str) -> tuple[str, str, str]:
    """Split a compact numeric string into (prefix, core, suffix): currency, sign and
    multiplication marks before; unit, 円, 也, ``-`` and ``.-`` after."""
    prefix = ""
    m = re.match(r"^(?:[¥\\]|[▲△]|[-+]|[×xX*])*", s)
    if m:
        prefix = m.group(0)
    rest = s[len(prefix):]
    suffix = ""
    while True:
        m = re.search(r"(?:円也|円|也|\.-|-|=)$", rest) if type_ == "money" else None
        if m is None and type_ == "quantity":
            m = _UNIT_RE.search(rest)
            # a unit needs a number in front of it ("S" alone is no unit, "5S" is not "5s")
            if m is not None and not re.search(f"[{_NUM_CHARS}]$", rest[: m.start()]):
                m = None
        if m is None or m.start() == 0:
            break
        suffix = m.group(0) + suffix
        rest = rest[: m.start()]
        if type_ == "quantity":
            break  # one unit at most
    return prefix, rest, suffix


def _join_digit_groups(m: re.Match) -> str:
    """Digits split by spaces: joined only when that is surely one number -- thousands
    groups ("12 345") or one digit per group (wide handwriting, "1 2 0"). Anything else
    ("12 3": two numbers? a stray mark?) stays split and fails as not_a_number."""
    groups = m.group(0).split()
    if all(len(g) == 1 for g in groups) or all(len(g) == 3 for g in groups[1:]):
        return "".join(groups)
    return m.group(0)


def _norm_number(s: str, type_: str, notes: list[str]) -> str:
    s = _DASH_RE.sub("-", s).replace("、", ",")
    s = re.sub(r"\s*([,.])\s*", r"\1", s)  # "12, 345" -> "12,345"
    s = re.sub(r"\d+(?:\s+\d+)+", _join_digit_groups, s)
    s = re.sub(r"\s+(?!\d)|(?<!\d)\s+", "", s.strip())  # keep only spaces between digits
    prefix, core, suffix = _split_number(s, type_)
    # "Y1,200": ¥ read as Y. A guess (it could be a 4), so it counts as a look-alike.
    if type_ == "money" and not prefix and re.match(r"^[Yy]\d", core):
        notes.append("lookalike:Y->¥")
        prefix, core = "¥", core[1:]
    if (_NUM_CORE_RE.match(core) and re.search(r"\d", core)
            and any(ch in NUMERIC_LOOKALIKES for ch in core)):
        core = _substitute(core, NUMERIC_LOOKALIKES, notes)
    return prefix + core + suffix


_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
                 "八": 8, "九": 9}


def _kanji_number(run: str) -> str:
    if "十" in run:
        tens, _, ones = run.partition("十")
        t = _KANJI_DIGITS.get(tens, 1) if tens else 1
        o = _KANJI_DIGITS.get(ones, 0) if ones else 0
        return str(t * 10 + o)
    return "".join(str(_KANJI_DIGITS[c]) for c in run)


def _norm_date(s: str, notes: list[str]) -> str:
    s = "".join(s.split())
    if re.search("[年月日]", s):
        s = re.sub("元(?=年)", "1", s)
        s = re.sub("[〇零一二三四五六七八九十]+(?=[年月日])",
                   lambda m: _kanji_number(m.group(0)) if re.fullmatch(
                       "[〇零一二三四五六七八九]+|[一二三四五六七八九]?十[一二三四五六七八九]?",
                       m.group(0)) else m.group(0), s)
    else:
        s = re.sub(r"(?<=\d)一(?=\d)", "-", s)
    s = re.sub(r"(?<=\d)\.$", "", s)  # "R8.12.5." - a trailing dot adds nothing
    s = _DASH_RE.sub("-", s)
    s = re.sub(r"(?<=[A-Za-z])元(?=[./-])", "1", s)  # R元.5.1
    # look-alikes inside a run of digits (never S: that is Showa here)
    look = "".join(DATE_LOOKALIKES)

    def fix(m: re.Match) -> str:
        run = m.group(0)
        return _substitute(run, DATE_LOOKALIKES, notes) if re.search(r"\d", run) else run

    return re.sub(f"[0-9{re.escape(look)}]+", fix, s)


def _normalize(text: str, type_: str) -> tuple[str, list[str]]:
    notes: list[str] = []
    s = _nfkc(text or "")
    if type_ == "part_number":
        return _norm_part(s), notes
    if type_ in ("integer", "quantity", "money"):
        return _norm_number(s.strip(), type_, notes), notes
    if type_ == "date":
        return _norm_date(s, notes), notes
    s = _norm_text(s)
    # A lone 0 before katakana is the letter O (Oリング: O-ring); in many fonts the two are
    # one glyph. A look-alike guess: always reviewed.
    o = re.sub(r"(?<![0-9.,\-])0 ?(?=[\u30a1-\u30fa])", "O", s)
    if o != s:
        notes.append("lookalike:0->O")
    return o, notes


def normalize(text: str, type: str) -> str:  # noqa: A002 - the template key is called "type"
    """Clean ``text`` for a field ``type`` (see the module docstring for what is certain
    and what is a look-alike guess). Numbers keep their separators, currency and unit
    (``"１２， ３４５個"`` -> ``"12,345個"``); ``parse_text`` makes the canonical text."""
    return _normalize(text, type)[0]


# ---------------------------------------------------------------------------------------------
# numbers


def canonical_money(d: Decimal) -> str:
    """Plain decimal, no exponent, no trailing zeros after the point: 12000, 3.5, -1200."""
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


_GROUPED = re.compile(r"^\d{1,3}(?:,\d{3})+$")


def _parse_number(s: str, type_: str, notes: list[str]) -> tuple[object, str, list[str]]:
    """-> (value, canonical text, problems). ``s`` is normalised."""
    prefix, core, suffix = _split_number(s, type_)
    problems: list[str] = []
    negative = bool(re.search(r"[-▲△]", prefix))
    if re.search(r"[×xX*]", prefix):
        notes.append("times_prefix")
    if re.search(r"[¥\\]", prefix) and type_ != "money":
        return None, s, ["not_a_number"]
    unit = ""
    if suffix and type_ == "quantity":
        unit = suffix
        notes.append(f"unit:{unit}")
    if prefix.count("-") + prefix.count("▲") + prefix.count("△") > 1:
        return None, s, ["not_a_number"]
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", core):
        # "11.718": at 200 dpi a FAXed comma prints as a dot. Yen amounts never carry three
        # decimals and quantities none, so strict 3-digit grouping is a thousands separator.
        core = core.replace(".", ",")
        notes.append("dot_as_thousands")
    int_part, dot, frac = core.partition(".")
    if not int_part.isascii() or not (int_part.isdigit() or _GROUPED.match(int_part)):
        return None, s, ["not_a_number"]
    digits = int_part.replace(",", "")
    if dot and frac:
        if not (frac.isascii() and frac.isdigit()):
            return None, s, ["not_a_number"]
        if type_ != "money":
            return None, s, ["not_a_number:fraction"]
        if len(frac) > 2:
            # "1.200" in yen is almost surely a misread comma; don't guess which
            return None, s, ["not_a_number:separator"]
    elif dot:
        notes.append("trailing_dot")  # "1,200." - a speck, or the dot of ".-"
    if type_ == "money":
        d = Decimal(digits + ("." + frac if frac else ""))
        if negative:
            d = -d
        text = canonical_money(d)
        return Decimal(text), text, problems
    n = int(digits)
    if negative:
        n = -n
    return n, str(n), problems


# ---------------------------------------------------------------------------------------------
# dates

# Only the letters in everyday use; a lone T or M is more likely a misread digit.
_ERA_LETTERS = {"R": "令和", "H": "平成", "S": "昭和"}
_WEEKDAYS = "月火水木金土日"

_YMD_RE = re.compile(
    r"^(?:(?P<era>令和|平成|昭和|大正|明治)|(?P<letter>[RHSrhs])\.?)?(?P<y>\d{1,4})(?:年|[/.-])"
    r"(?P<m>\d{1,2})(?:月|[/.-])(?P<d>\d{1,2})日?$")
_MD_RE = re.compile(r"^(?P<m>\d{1,2})(?:月|[/.-])(?P<d>\d{1,2})日?$")
_COMPACT_RE = re.compile(r"^(?P<y>(?:19|20)\d\d)(?P<m>\d\d)(?P<d>\d\d)$")
_WEEKDAY_RE = re.compile(rf"\(([{_WEEKDAYS}])(?:曜日?)?\)$|([{_WEEKDAYS}])曜日?$")


def _infer_year(m: int, d: int, *, ref_date: dt.date | None, today: dt.date | None,
                year: int | None, notes: list[str],
                hint: YearHint | None = None) -> tuple[dt.date | None, list[str]]:
    if not (1 <= m <= 12 and 1 <= d <= 31) or date_or_none(2000, m, d) is None:
        return None, ["not_a_date"]  # 2/30, 13/1 (2000 is a leap year: 2/29 passes here)
    if year is not None:
        date = date_or_none(year, m, d)
        if date is None:
            return None, ["not_a_date"]
        notes.append(f"year_from_header:{year}")
        return date, []
    if ref_date is not None:
        for y in range(ref_date.year, ref_date.year + 9):
            date = date_or_none(y, m, d)
            if date is not None and date >= ref_date:
                break
        notes.append(f"year_inferred:{date.year}")
        if (date - ref_date).days > YEAR_WINDOW_DAYS:
            return date, [f"year_inferred:{date.year}"]
        return date, []
    if hint is not None:
        start = hint.date - dt.timedelta(days=hint.back_days)
        date = next(c for c in (date_or_none(y, m, d) for y in range(start.year, start.year + 9))
                    if c is not None and c >= start)
        notes.append(f"{hint.reason}:{date.year}")
        return date, [f"{hint.reason}:{date.year}"]  # weak evidence: always for review
    if today is not None:
        candidates = [c for c in (date_or_none(y, m, d) for y in range(today.year - 4, today.year + 5)) if c]
        date = min(candidates, key=lambda c: (abs((c - today).days), c))
        notes.append(f"year_inferred:{date.year}")
        return date, [f"year_inferred:{date.year}"]  # a guess from the day it was read
    return None, ["year_unknown"]


def _guess_month_day(s: str, *, ref_date, today, year, hint=None) -> tuple[dt.date, list[str]] | None:
    """An M/D date whose slash was lost ('814' for 8/14) or read as a 7 or 1 ('3719' for
    3/19): the valid month/day splits of the digits, the slash dropped or, failing that,
    one 7 or 1 in the middle taken for it; the first date on or after the reference date
    wins. Always a guess: the caller flags it (``separator_guessed``)."""
    if not (s.isdigit() and s.isascii() and 2 <= len(s) <= 5):
        return None
    direct = [(s[:i], s[i:]) for i in range(1, len(s)) if len(s[:i]) <= 2 and len(s) - i <= 2]
    dropped = [(s[:i], s[i + 1:]) for i in range(1, len(s) - 1)
               if s[i] in "71" and len(s[:i]) <= 2 and len(s) - i - 1 <= 2]
    found = []
    for splits in (direct, dropped):
        for ms, ds in splits:
            if ms.startswith("0") or ds.startswith("0"):
                continue
            date, problems = _infer_year(int(ms), int(ds), ref_date=ref_date, today=today, year=year, notes=[],
                                         hint=hint)
            if date is not None:
                found.append((date, problems))
        if found:
            break
    if not found:
        return None
    anchor = ref_date or (hint.date if hint is not None else None) or today
    if anchor is None:
        return found[0]
    return min(found, key=lambda f: (f[0] < anchor, abs((f[0] - anchor).days)))


# digits a FAX or Tesseract takes for one another (the 0 of 2026 read as 6, 8 or 9)
_DIGIT_TWINS = {"0": "689", "6": "05", "8": "03", "9": "04", "5": "6", "3": "8"}


def _year_twin(ystr: str, to_year, mo: int, d: int, anchor: dt.date | None) -> dt.date | None:
    """A written year far from the reference (2626 on an order of 2026, R97 for R07):
    the one date whose year, one look-alike digit changed, lies within a year of the
    reference. None when the year is plausible, or no single such fix exists."""
    if anchor is None:
        return None
    year = to_year(int(ystr))
    if abs(year - anchor.year) <= 1 and date_or_none(year, mo, d) is not None:
        return None
    found = set()
    for i, ch in enumerate(ystr):
        for twin in _DIGIT_TWINS.get(ch, ""):
            y = to_year(int(ystr[:i] + twin + ystr[i + 1:]))
            if abs(y - anchor.year) <= 1 and date_or_none(y, mo, d) is not None:
                found.add(y)
    return date_or_none(found.pop(), mo, d) if len(found) == 1 else None


def _parse_date(s: str, *, ref_date, today, year, notes: list[str],
                hint: YearHint | None = None) -> tuple[object, str, list[str]]:
    problems: list[str] = []
    # what a written year is checked against: the order date, else the hint, else today
    anchor = ref_date or (hint.date if hint is not None else None) or today
    inferred = False
    weekday = None
    m = _WEEKDAY_RE.search(s)
    if m and len(s) > len(m.group(0)):
        weekday = _WEEKDAYS.index(m.group(1) or m.group(2))
        s = s[: m.start()]
    date: dt.date | None = None
    if (m := _YMD_RE.match(s)) is not None:
        era = m.group("era") or m.group("letter")
        y, mo, d = int(m.group("y")), int(m.group("m")), int(m.group("d"))
        if era:
            era = _ERA_LETTERS.get(era.upper(), era)
            if not 1 <= y <= 99 or len(m.group("y")) > 2:
                return None, s, ["not_a_date"]
            first, last = ERAS[era]
            date = date_or_none(first.year + y - 1, mo, d)
            fixed = _year_twin(m.group("y"), lambda v, f=first.year: f + v - 1, mo, d, anchor)
            if fixed is not None:
                notes.append(f"lookalike:year {y}->{fixed.year - first.year + 1}")
                problems.append("lookalike_corrected")
                date = fixed
            if date is None:
                return None, s, ["not_a_date"]
            notes.append(f"era:{era}{y}")
            if date < first or (last is not None and date > last):
                # e.g. 平成31年5月1日 on a pre-printed form: the date is clear, the era is not
                problems.append("not_a_date:era")
        elif len(m.group("y")) == 4:
            date = date_or_none(y, mo, d)
            fixed = _year_twin(m.group("y"), lambda v: v, mo, d, anchor)
            if fixed is not None:
                notes.append(f"lookalike:year {y}->{fixed.year}")
                problems.append("lookalike_corrected")
                date = fixed
        elif len(m.group("y")) == 2:
            date = date_or_none(2000 + y, mo, d)
            if date is not None:
                notes.append(f"year_inferred:{date.year}")
                problems.append(f"year_inferred:{date.year}")  # 26/12/5: 2026? 平成26?
        if date is None:
            return None, s, ["not_a_date"]
    elif (m := _COMPACT_RE.match(s)) is not None:
        date = date_or_none(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        if date is None:
            return None, s, ["not_a_date"]
    elif (m := _MD_RE.match(s)) is not None:
        inferred = True
        date, more = _infer_year(int(m.group("m")), int(m.group("d")), ref_date=ref_date, today=today,
                                 year=year, notes=notes, hint=hint)
        if date is None:
            return None, s, more
        problems += more
    elif (guess := _guess_month_day(s, ref_date=ref_date, today=today, year=year, hint=hint)) is not None:
        inferred = True
        date, more = guess
        notes.append("separator_guessed")
        problems += more + ["separator_guessed"]
    else:
        return None, s, ["not_a_date"]
    if not 1900 <= date.year <= 2099:
        return None, s, ["not_a_date:year"]
    if anchor is not None and not inferred and abs((date - anchor).days) > FAR_DAYS:
        # a written year far from the order date (or the day of reading): a misread digit?
        problems.append("out_of_range:far_from_reference")
    if weekday is not None and date.weekday() != weekday:
        problems.append("weekday_mismatch")
    return date, date.isoformat(), problems


# ---------------------------------------------------------------------------------------------
# parse_text


def _candidates_part(text: str, pattern: re.Pattern) -> list[str]:
    positions = [i for i, ch in enumerate(text) if ch in PART_TWINS]
    if not positions or len(positions) > _PART_MAX_AMBIGUOUS:
        return []
    options = [PART_TWINS[text[i]] for i in positions]
    found = []
    for combo in itertools.product(*options):
        chars = list(text)
        for i, ch in zip(positions, combo):
            chars[i] = ch
        cand = "".join(chars)
        if cand != text and pattern.fullmatch(cand):
            found.append(cand)
    return found


def _dash_restored(text: str, pattern: re.Pattern) -> list[str]:
    """The code with one hyphen put back where it fits the pattern ('HB4207' ->
    'HB-4207'): a thin printed hyphen is the first thing a FAX loses."""
    if "-" in text:
        return []
    return [c for c in (text[:i] + "-" + text[i:] for i in range(1, len(text))) if pattern.fullmatch(c)]


_STRAY_MARKS = re.compile(r"[\s.,'`:;|_、。・]")
_DIVIDER_LIKE = "1Il|"


def _marks_removed(text: str, pattern: re.Pattern) -> list[str]:
    """The code with what look like comb-box dividers or dirt taken out, when that and
    only that makes it fit the pattern: '5,0,1,07,2' -> '501072'; '912121346' ->
    '922346' when the pattern wants six digits (the dividers of a comb box read as 1s).
    Several different results -> none (no guess)."""
    bare = _STRAY_MARKS.sub("", text)
    if bare != text and pattern.fullmatch(bare):
        return [bare]
    spots = [i for i, ch in enumerate(bare) if ch in _DIVIDER_LIKE]
    if not spots or len(spots) > 6:
        return []
    found = set()
    for k in range(1, len(spots) + 1):
        for drop in itertools.combinations(spots, k):
            cand = "".join(ch for i, ch in enumerate(bare) if i not in drop)
            if pattern.fullmatch(cand):
                found.add(cand)
    return sorted(found)


def _allowed_match(text: str, spec: FieldSpec) -> str | None:
    """The allowed value ``text`` stands for (exact, or the same letters in another case)."""
    allowed = []
    for a in spec.allowed:
        if spec.type in ("text", "part_number"):
            allowed.append(_normalize(str(a), spec.type)[0])
        else:
            allowed.append(parse_text(str(a), FieldSpec(name="", type=spec.type), year=2000).text)
    if text in allowed:
        return text
    folded = {a for a in allowed if a.casefold() == text.casefold()}
    return folded.pop() if len(folded) == 1 else None


def parse_text(raw: str, spec: FieldSpec, *, ref_date: dt.date | None = None,
               today: dt.date | None = None, year: int | None = None,
               hint: YearHint | None = None) -> Parsed:
    """Parse ``raw`` as a value of ``spec.type`` and check it against ``spec``.

    Dates written without a year (12/5, 12月5日) take it, in this order, from ``year``
    (a ledger's year field: no review), ``ref_date`` (the order date: the next such date
    on or after it, so 1/10 on an order of 2026-12-20 is 2027-01-10; flagged
    ``year_inferred`` only when that lands more than YEAR_WINDOW_DAYS later), ``today``
    (the nearest such date; always ``year_inferred``); with none of them: ``year_unknown``.
    ``hint`` (see ``YearHint``: the FAX sending date, a full date elsewhere on the page)
    comes after ``ref_date`` and before ``today``; its values are flagged with the hint's
    reason (``year_from_fax_date``, ``year_from_page_date``) instead of ``year_inferred``,
    and a written year is checked against it when there is no ``ref_date``.

    Problems (reason codes): ``empty_required``, ``not_a_number`` / ``not_a_date``
    (value None, text = the normalised reading), ``pattern:<re>``, ``not_allowed``,
    ``out_of_range:<why>`` (also a written year more than FAR_DAYS from ``ref_date`` or
    ``today``), ``lookalike_corrected``, ``year_inferred``, ``year_unknown``,
    ``weekday_mismatch``. A negative number is ``out_of_range:negative`` unless the spec's
    ``min`` allows it (a stray dash in front of a number must not flip its sign silently).
    """
    type_ = spec.type if spec.type in ("text", "part_number", "integer", "quantity", "money", "date") else "text"
    s, notes = _normalize(raw, type_)
    problems: list[str] = []
    if s == "" or (type_ != "text" and s.strip("-.,") == ""):
        if s:
            notes.append(f"ignored:{s}")
        return Parsed(None, "", ("empty_required",) if spec.required else (), tuple(notes))

    value: object
    if type_ in ("integer", "quantity", "money"):
        value, text, problems = _parse_number(s, type_, notes)
    elif type_ == "date":
        value, text, problems = _parse_date(s, ref_date=ref_date, today=today, year=year, notes=notes,
                                            hint=hint)
    else:
        value, text = s, s
        if type_ == "text":
            bare = _stray_marks_removed(s)
            if bare != s:
                notes.append(f"marks:{s}->{bare}")
                s = bare
                value, text = s, s
                problems.append("marks_removed")
        if type_ == "text":
            fixed, kana_notes = fix_text(s)
            notes += kana_notes
            if fixed != s:
                value, text = fixed, fixed
                problems.append("kana_voicing")
            if any(n.startswith("kana?:") for n in kana_notes):
                problems.append("kana_doubtful")
            if _lone_character(text) and not spec.allowed:
                problems.append("lone_character")
            if _unbalanced(text):
                problems.append("bracket_unpaired")
    if type_ == "date" and value is None and "not_a_date" in problems:
        repaired = repair_date(s, ref_date or (hint.date if hint is not None else None) or today)
        if repaired is not None:
            value, more = repaired
            text = value.isoformat()
            notes += more
            problems = ["date_repaired"]
    if any(n.startswith("lookalike:") for n in notes):
        problems.append("lookalike_corrected")

    if value is not None:
        if spec.pattern:
            try:
                pat = re.compile(spec.pattern)
            except re.error:
                problems.append("pattern:invalid")
                pat = None
            if pat is not None and not pat.fullmatch(text):
                fixes = _candidates_part(text, pat) if type_ == "part_number" else []
                dashed = _dash_restored(text, pat) if type_ == "part_number" and not fixes else []
                bare = _marks_removed(text, pat) if type_ in ("text", "part_number") and not fixes \
                    and not dashed else []
                if len(bare) == 1:
                    notes.append(f"marks:{text}->{bare[0]}")
                    value = text = bare[0]
                    problems.append("marks_removed")
                elif len(dashed) == 1:
                    notes.append(f"dash:{text}->{dashed[0]}")
                    value = text = dashed[0]
                    problems.append("separator_guessed")
                elif len(fixes) == 1:
                    for a, b in zip(text, fixes[0]):
                        if a != b:
                            notes.append(f"lookalike:{a}->{b}")
                    value = text = fixes[0]
                    problems.append("lookalike_corrected")
                else:
                    problems.append(f"pattern:{spec.pattern}")
        if type_ == "part_number" and not spec.pattern and not spec.allowed and \
                re.search(r"[A-Za-z0-9]\s+[A-Za-z0-9]", _nfkc(raw).strip()):
            # 'COT 962 69': a gap inside a code is where a hyphen was lost as often as a
            # printed space; with no pattern to tell, joining the parts is only a guess
            problems.append("separator_guessed")
        if type_ == "text" and not spec.allowed and re.search(r"\d\s+\d|(?<![A-Za-z])[A-Za-z]\s+\d",
                                                                  _nfkc(raw)):
            # 't 1 6' for t1.6, '6 20' for 6-20, 'A 42' for A-42: a gap between digits
            # (or a lone letter and digits) of free text is where a FAX lost a decimal
            # point or a hyphen as often as a printed space
            problems.append("gap_in_number")
        if spec.allowed:
            hit = _allowed_match(text, spec)
            if hit is None:
                problems.append("not_allowed")
            elif hit != text:
                notes.append(f"allowed:{text}->{hit}")
                value = text = hit
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            if spec.min is not None and value < Decimal(str(spec.min)):
                problems.append(f"out_of_range:min={spec.min:g}")
            elif spec.min is None and value < 0:
                problems.append("out_of_range:negative")
            if spec.max is not None and value > Decimal(str(spec.max)):
                problems.append(f"out_of_range:max={spec.max:g}")
    return Parsed(value, text, tuple(dict.fromkeys(problems)), tuple(notes))


# ---------------------------------------------------------------------------------------------
# make_value


_TRAILING_MARK = re.compile(r"\s+[.,'`・。、]+$")  # 'ウエス .': a speck after the text
_LONE_MARK = re.compile(r"(?<=\S)\s+[.,'`]+(?=\s+\S)")  # '山田製作所 . 本社': one between words
_JP = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_END_MARK = re.compile(r"(?<=[0-9A-Za-z])[.,'`]$")  # 'ナット M12.': a speck right after
_LEADING_MARK = re.compile(r"^[.,'`・。、]+\s*(?=\S)")  # '・治具製作': a speck before the text
# 'ベアリング・6305DDU': a speck where a space was, between a katakana word and a code
_KATAKANA_CODE_DOT = re.compile(r"(?<=[\u30a1-\u30fa\u30fc])\s*・\s*(?=[0-9A-Za-z])")


def _lone_character(s: str) -> bool:
    """One kana or symbol and nothing else: no name, word or code is that. A seal whose
    ring a FAX broke (so ``ocr.stamp`` does not see it) reads so, sure of itself ('る',
    '®'); a single kanji (済, 有) or letter is a value and is left alone."""
    s = s.strip()
    if len(s) != 1:
        return False
    cat = unicodedata.category(s)
    return bool(re.match(r"[\u3041-\u30fa]", s)) or cat[0] in "SP"


_PAIRS = {"(": ")", "[": "]", "{": "}", "「": "」", "『": "』", "【": "】", "〔": "〕", "<": ">", "《": "》"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}


def _unbalanced(text: str) -> bool:
    """A bracket without its partner: ``株)光洋電機`` (the box cut off the ``(``, or the
    OCR lost it). Printed free text pairs its brackets; a lone one means a character is
    missing or was misread."""
    stack: list[str] = []
    for ch in unicodedata.normalize("NFKC", text):
        if ch in _PAIRS:
            stack.append(ch)
        elif ch in _CLOSERS:
            if not stack or stack.pop() != _CLOSERS[ch]:
                return True
    return bool(stack)


def _stray_marks_removed(s: str) -> str:
    """Free text without the specks a FAX adds that Tesseract reads as marks: one apart
    at the end or between two words, one before the text, a ・ between a katakana word
    and a code (where the space was: 'ベアリング・6305DDU'), and (in Japanese text, which
    ends without a Latin full stop) one right after a last letter or digit. The caller flags the value
    (``marks_removed``): shown for review, never dropped silently. Both silent errors of
    a never-seen-forms eval (seed 771207) were such a '.', those of seeds 20261207 and
    20261208 such a ・."""
    out = _KATAKANA_CODE_DOT.sub(" ", _LEADING_MARK.sub("", s))
    m = _TRAILING_MARK.search(out)
    if m is not None and m.start() > 0:
        out = out[:m.start()]
    out = _CJK_SPACE_RE.sub("", _LONE_MARK.sub("", out))
    if _JP.search(out) and _END_MARK.search(out):
        out = out[:-1]
    return out if out.strip() else s


def make_value(crop: FieldCrop, reading: Reading, *, ref_date: dt.date | None = None,
               threshold: float, today: dt.date | None = None, year: int | None = None,
               hint: YearHint | None = None,
               ink_empty: float = 0.0) -> Value:
    """Parse ``reading`` for ``crop`` into a ``Value`` with full provenance.

    Status is ``review`` with reasons when any of these hold, else ``ok``:

    * parsing/checking problems (see ``parse_text``);
    * ``low_confidence``: ``reading.confidence < threshold``, or, for every type but free
      text, any single character's confidence below it (one wrong digit is a wrong value);
    * the engine noted a reason code (a note such as ``engines_disagree``);
    * ``unreadable``: ink in the cell but no text read (unless the engine is ``blank`` or
      ``crop.ink <= ink_empty``);
    * ``lookalike_corrected``: a character was replaced by a look-alike guess (O->0 ...).
      Such a value is always ``review`` -- the replacement is shown to the clerk, never
      stored silently -- and its confidence is multiplied by LOOKALIKE_PENALTY per
      replaced character, so it also ranks as doubtful wherever confidence is used.

    An empty cell (no text, no ink or the ``blank`` engine) is ``ok`` and empty unless
    the field is required (``empty_required``).
    """
    spec = crop.spec
    raw = reading.text or ""
    reasons: list[str] = []
    if not raw.strip() and reading.engine != "blank" and crop.ink > ink_empty:
        parsed = Parsed(None, "", ())
        reasons.append("unreadable")
        confidence = 0.0
    else:
        parsed = parse_text(raw, spec, ref_date=ref_date, today=today, year=year, hint=hint)
        reasons += parsed.problems
        confidence = float(reading.confidence)
        if raw.strip():
            low = confidence < threshold
            if not low and spec.type != "text" and reading.char_confidences:
                low = min(reading.char_confidences) < threshold
            if low:
                reasons.append("low_confidence")
            if not parsed.text and not parsed.problems:
                # ink was read as something (",", "ー") that parses to nothing: a value was
                # there, we just could not read it
                reasons.append("unreadable")
        confidence *= LOOKALIKE_PENALTY ** parsed.lookalikes
    reasons += [n for n in reading.notes if code_of(n) in REASONS]
    reasons = list(dict.fromkeys(reasons))
    alternatives: tuple = ()
    if spec.type in NUMBER_TYPES and reading.alternatives:
        alts = []
        for t in reading.alternatives:
            p = parse_text(t, spec, ref_date=ref_date, today=today, year=year, hint=hint)
            if p.value is not None and not p.problems and p.value != parsed.value and p.value not in alts:
                alts.append(p.value)
        alternatives = tuple(alts)
    return Value(
        sha256=crop.sha256,
        page_index=crop.page_index,
        name=crop.name,
        box=tuple(crop.box),
        raw_text=raw,
        value=parsed.value,
        text=parsed.text,
        value_type=spec.type,
        confidence=round(confidence, 4),
        engine=reading.engine,
        status="review" if reasons else "ok",
        reasons=tuple(reasons),
        table=crop.table,
        row=crop.row,
        column=crop.column,
        alternatives=alternatives,
    )
