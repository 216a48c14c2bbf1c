"""Cross-field rules: the values of one page -> a ``Record`` with status ok / review.

A rule that fails flags *every* value that could be the wrong one (we cannot know
which) and leaves a hint in ``Record.notes`` for the clerk (``lines[3].amount: quantity
x unit_price = 1200``). Values change in one case only, and stay flagged: of quantity,
unit price and amount, when exactly one is a doubtful reading (or could not be read at
all) and the other two are not, it is shown as what the other two give
(``from_other_columns``); the reading stays in ``raw_text``.

What flags what:

* always: a required header field that is empty or missing -> ``empty_required``;
  ``align_ok=False`` -> every value ``alignment_doubtful``; ``form_confirmed=False`` (the
  page fits the form but its keywords could not be read) -> every value and the record
  ``form_unconfirmed``; a template with tables but no
  filled row on the page -> record reason ``no_rows`` and every header value flagged.
* order, ``partial_row``: a row with something written but a key column (the table's
  ``key`` column, ``part_no``, ``quantity``) empty -> every value of the row.
* order, check ``amount``: quantity x unit_price != amount (all three read) ->
  ``amount_mismatch`` on the three; one of the three empty while the other two are
  filled -> ``partial_row`` on it. The value shown for one of them changes (flagged
  ``from_other_columns``) when it alone is a doubtful reading, or else when it alone is
  one digit away from what the other two give. Before that: when the cells' other reads
  (the engines disagreed) hold exactly one combination that fits, it is shown, the changed
  values flagged ``from_other_readings``. A fractional product may be rounded either way.
* ``faint=True`` (alignment found under 60% of the form's own print): every empty
  value ``faint_print``, and the record too (rows may have vanished whole).
* half or more of the values read on the page are doubtful readings (at least
  ``UNRELIABLE_MIN`` of them): the page is too damaged to trust its blanks (print washed
  out while dark handwriting kept alignment going) or the readings that happen to agree
  -> every value ``mostly_unreadable``, and the record too.
* M/D dates in the rows whose year came from a header value (order date, ledger year)
  that is itself for review -> ``year_from_doubtful_header``.
* order, check ``due_date``: due_date < order_date -> ``due_before_order`` on both.
* order, check ``total``: the header's ``total`` != the sum of the lines' amounts (every
  filled line priced) -> ``total_mismatch`` on the total and every amount; the total or
  one amount alone a digit off what the rest give is shown as that (``from_other_columns``).
* ledger, ``partial_row``: the key column empty, or none of in_qty/out_qty/balance written.
* ledger, check ``balance``: balance != previous balance + in_qty - out_qty ->
  ``balance_mismatch`` on the row's balance, in_qty and out_qty and on the previous
  row's balance. The chain runs over the filled rows in order; the first row has no
  known previous balance (a carry-forward row, 繰越, simply opens the chain); after a
  row without a usable balance the chain continues with the computed one, after an
  unreadable in/out value it restarts.
* a part-number column without a ``pattern``: a code with a digit where most of the
  column's codes (two or more) have a letter, or the reverse, same length and
  punctuation -> ``shape_differs`` (120515 among T20515, T31022, K40017).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from decimal import Decimal

from faxflow.templates.model import Template
from faxflow.templates.reasons import code_of
from faxflow.templates.types import Record, Value

__all__ = ["build_record", "flag", "is_carry_forward", "CARRY_FORWARD_RE"]

CARRY_FORWARD_RE = re.compile("繰越|繰り越|繰込|前月残|前頁より|前ページより|前期より")
ORDER_KEYS = ("part_no", "quantity")
LEDGER_QTY = ("in_qty", "out_qty", "balance")
DOUBTFUL_READING = {"low_confidence", "lookalike_corrected", "engines_disagree"}
# M/D dates whose year the pipeline took from the FAX date or another date on the page,
# not from the order date: year_from_doubtful_header does not apply to them.
YEAR_FROM_ELSEWHERE = {"year_from_fax_date", "year_from_page_date"}
#: The "mostly unreadable page" rule needs this many values read and half of them flagged.
UNRELIABLE_MIN = 8
UNRELIABLE_SHARE = 0.5


def flag(value: Value, reason: str) -> Value:
    """``value`` with ``reason`` added (once) and status ``review``."""
    if reason in value.reasons and value.status == "review":
        return value
    reasons = value.reasons if reason in value.reasons else value.reasons + (reason,)
    return replace(value, status="review", reasons=reasons)


def _filled(v: Value | None) -> bool:
    return v is not None and not v.empty


def _num(v: Value | None):
    """The numeric value of a filled, parsed value, else None."""
    if v is None or isinstance(v.value, bool) or not isinstance(v.value, (int, Decimal)):
        return None
    return Decimal(v.value)


def is_carry_forward(row: dict[str, Value]) -> bool:
    """A 繰越 (carried-forward balance) row: some text in the row says so."""
    return any(isinstance(v.value, str) and CARRY_FORWARD_RE.search(v.value) for v in row.values())


class _Flagger:
    """Collects flags on header and row values by (place, name), applied at the end."""

    def __init__(self, header: dict[str, Value], rows: list[dict[str, Value]]):
        self.header = dict(header)
        self.rows = [dict(r) for r in rows]

    def row(self, i: int, name: str, reason: str) -> None:
        if name in self.rows[i]:
            self.rows[i][name] = flag(self.rows[i][name], reason)

    def head(self, name: str, reason: str) -> None:
        if name in self.header:
            self.header[name] = flag(self.header[name], reason)

    def all(self, reason: str) -> None:
        self.header = {k: flag(v, reason) for k, v in self.header.items()}
        self.rows = [{k: flag(v, reason) for k, v in r.items()} for r in self.rows]


def _placeholder(sha256: str, page_index: int, spec) -> Value:
    return Value(sha256=sha256, page_index=page_index, name=spec.name, box=tuple(spec.box), raw_text="",
                 value=None, text="", value_type=spec.type, confidence=0.0, engine="none",
                 status="review", reasons=("empty_required",))


def _label(row: dict[str, Value], name: str) -> str:
    v = row.get(name) or next(iter(row.values()))
    if v.table is not None and v.row is not None:
        return f"{v.table}[{v.row}].{name}"
    return name


def _key_columns(template: Template, row: dict[str, Value], extra: tuple[str, ...]) -> list[str]:
    table_name = next((v.table for v in row.values() if v.table), None)
    table = next((t for t in template.tables if t.name == table_name), None)
    columns = [c.name for c in table.columns] if table else list(row)
    keys = [k for k in extra if k in columns]
    if table is not None and table.key_column and table.key_column not in keys:
        keys.insert(0, table.key_column)
    return keys


def _check_amount(f: _Flagger, i: int, notes: list[str]) -> None:
    row = f.rows[i]
    q, p, a = (row.get(k) for k in ("quantity", "unit_price", "amount"))
    if q is None or p is None or a is None:
        return
    nq, np_, na = _num(q), _num(p), _num(a)
    if [nq, np_, na].count(None) == 1:
        _fill_from_others(f, i, {"quantity": nq, "unit_price": np_, "amount": na}, notes)
        return
    if nq is None or np_ is None or na is None:
        return
    product = nq * np_
    if _amount_ok(na, product):
        return
    for name in ("quantity", "unit_price", "amount"):
        f.row(i, name, "amount_mismatch")
    notes.append(f"{_label(row, 'amount')}: quantity x unit_price = {_fmt(product)}, amount read {_fmt(na)}")
    if _pick_readings(f, i, notes):
        return
    # When exactly one of the three is a doubtful reading, the other two decide what it
    # should be: that value is shown (still for review), the reading stays in raw_text.
    doubtful = [k for k, v in (("quantity", q), ("unit_price", p), ("amount", a))
                if any(code_of(r) in DOUBTFUL_READING for r in v.reasons)]
    n = {"quantity": nq, "unit_price": np_, "amount": na}
    if len(doubtful) == 1:
        _apply_guess(f, i, doubtful[0], n, notes)
        return
    # Otherwise: when exactly one of the three is a single digit away from what the other
    # two give (4890 read, 4840 = amount / price), that digit is the likely misread - a
    # random misreading seldom lands one digit off a consistent value. Shown, for review.
    near = [k for k in ("quantity", "unit_price", "amount")
            if (g := _guess(k, n)) is not None and _one_digit_off(n[k], g)]
    if len(near) == 1:
        _apply_guess(f, i, near[0], n, notes)


def _pick_readings(f: _Flagger, i: int, notes: list[str]) -> bool:
    """Quantity x unit price != amount as shown, but the cells' other reads (the
    engines disagreed: ``Value.alternatives``) hold exactly one combination that fits:
    that one is shown, each changed value flagged ``from_other_readings`` (all three
    stay flagged ``amount_mismatch``: nothing leaves review this way). Misreads seldom
    conspire to multiply out; the reading shown first often loses to a rival here."""
    row = f.rows[i]
    names = ("quantity", "unit_price", "amount")
    vals = [row[k] for k in names]
    if not any(v.alternatives for v in vals):
        return False
    options = [[_num(v)] + [Decimal(str(a)) for a in v.alternatives] for v in vals]
    fits = {(q, p, a) for q in options[0] for p in options[1] for a in options[2]
            if q is not None and p is not None and a is not None and _amount_ok(a, q * p)}
    if len(fits) != 1:
        return False
    chosen = next(iter(fits))
    for k, v, g in zip(names, vals, chosen):
        if g == _num(v):
            continue
        shown = int(g) if k == "quantity" and g == g.to_integral_value() else g
        f.rows[i][k] = replace(v, value=shown, text=_fmt(Decimal(g)), status="review",
                               reasons=tuple(dict.fromkeys(v.reasons + ("from_other_readings",))))
        notes.append(f"{_label(row, k)}: shown as {_fmt(g)}, another reading that fits "
                     f"quantity x unit_price = amount (read {v.raw_text!r})")
    return True


def _one_digit_off(read: Decimal, other: Decimal) -> bool:
    a, b = _fmt(read), _fmt(other)
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == 1


def _code_shape(text: str) -> str:
    """A code as the kinds of its characters: T20515 -> A99999, 7M-221 -> 9A-999."""
    return "".join("9" if c.isdigit() else "A" if c.isascii() and c.isalpha() else c for c in text)


def _check_code_shapes(f: _Flagger, template: Template, notes: list[str]) -> None:
    """A part-number column without a ``pattern``: when two or more of the page's codes
    (and most of them) share one shape, a code of the same length and punctuation that
    has a digit where they have a letter, or a letter where they have a digit, is flagged
    ``shape_differs``. Every engine reads T20515 as 120515 alike (seed 20261208, a drafted
    template without a pattern, the page's other codes C86216 and S24930): nothing else on
    the page disagrees."""
    from collections import Counter

    for table in template.tables:
        for col in table.columns:
            if col.type != "part_number" or col.pattern:
                continue
            values = [(i, row[col.name]) for i, row in enumerate(f.rows)
                      if row.get(col.name) is not None and _filled(row[col.name])]
            shapes = Counter(_code_shape(v.text) for _, v in values)
            if not shapes:
                continue
            shape, n = shapes.most_common(1)[0]
            if n < 2 or n < 0.6 * len(values):
                continue
            for i, v in values:
                s = _code_shape(v.text)
                if s == shape or len(s) != len(shape):
                    continue
                if all(a == b or {a, b} == {"9", "A"} for a, b in zip(s, shape)):
                    f.row(i, col.name, "shape_differs")
                    notes.append(f"{_label(f.rows[i], col.name)}: {v.text} unlike the column's {shape}")


def _check_total(f: _Flagger, notes: list[str]) -> None:
    """The page's total (合計) against the sum of its lines' amounts, when every line that
    has something written has an amount read. A mismatch flags the total and every
    amount (``total_mismatch``); when the total alone, or one amount alone, is a single
    digit away from what the rest give (of several such, the one doubtful reading), that
    value is shown (``from_other_columns``)."""
    t = f.header.get("total")
    nt = _num(t)
    if nt is None or not f.rows:
        return
    amounts = [_num(r.get("amount")) for r in f.rows]
    if any(a is None for a in amounts):
        return  # an unpriced or unreadable line: nothing to add up
    s = sum(amounts, Decimal(0))
    if s == nt:
        return
    f.head("total", "total_mismatch")
    for i in range(len(f.rows)):
        f.row(i, "amount", "total_mismatch")
    notes.append(f"total: lines add up to {_fmt(s)}, total read {_fmt(nt)}")
    near: list[tuple[int | None, Decimal]] = []
    if _one_digit_off(nt, s):
        near.append((None, s))
    for i, a in enumerate(amounts):
        g = nt - (s - a)
        if g > 0 and _one_digit_off(a, g):
            near.append((i, g))
    def doubtful(i: int | None) -> bool:
        v = t if i is None else f.rows[i]["amount"]
        return any(code_of(r) in DOUBTFUL_READING for r in v.reasons)

    sure = [n for n in near if doubtful(n[0])]
    pick = sure if len(sure) == 1 else near
    if len(pick) != 1:
        return
    i, g = pick[0]
    v = f.header["total"] if i is None else f.rows[i]["amount"]  # with its flags
    fixed = _shown_as(v, g)
    if i is None:
        f.header["total"] = fixed
        notes.append(f"total: shown as {_fmt(g)}, what the lines add up to (read {v.raw_text!r})")
    else:
        f.rows[i]["amount"] = fixed
        notes.append(f"{_label(f.rows[i], 'amount')}: shown as {_fmt(g)}, what the total gives (read {v.raw_text!r})")


def _has_year(raw: str) -> bool:
    raw = unicodedata.normalize("NFKC", raw or "")
    return len(re.findall(r"\d+", raw)) >= 3 or bool(re.search(r"令和|平成|昭和|[RHS]\s*\.?\s*\d", raw))


def _doubtful_year_source(template: Template, f: _Flagger) -> None:
    """An M/D date in the rows takes its year from the page (the ledger's written year, or
    the order date): when that value is itself for review, so is the year of each."""
    source = None
    if template.year_hint and template.year_hint in f.header and not f.header[template.year_hint].empty:
        source = f.header[template.year_hint]
    elif "order_date" in f.header and not f.header["order_date"].empty:
        source = f.header["order_date"]
    if source is None or source.status == "ok":
        return
    for i, row in enumerate(f.rows):
        for name, v in row.items():
            if v.value_type == "date" and v.value is not None and not _has_year(v.raw_text) \
                    and not any(code_of(r) in YEAR_FROM_ELSEWHERE for r in v.reasons):
                f.row(i, name, "year_from_doubtful_header")


def _amount_ok(na: Decimal, product: Decimal) -> bool:
    if product == product.to_integral_value():
        return na == product
    # 3.5 x 3 = 10.5: a written 10 or 11 is a rounding, not a misread
    return na in (product.to_integral_value(rounding="ROUND_FLOOR"),
                  product.to_integral_value(rounding="ROUND_CEILING"))


def _guess(k: str, n: dict) -> Decimal | None:
    nq, np_, na = n["quantity"], n["unit_price"], n["amount"]
    if k == "amount":
        g = nq * np_
        return g if g == g.to_integral_value() else None
    if k == "quantity":
        g = na / np_ if np_ else None
        return g if g is not None and g > 0 and g == g.to_integral_value() else None
    g = na / nq if nq else None
    return g if g is not None and g > 0 and g == g.quantize(Decimal("0.01")) else None


def _apply_guess(f: _Flagger, i: int, k: str, n: dict, notes: list[str]) -> None:
    g = _guess(k, n)
    if g is None:
        return
    v = f.rows[i][k]
    f.rows[i][k] = _shown_as(v, int(g) if k == "quantity" else g)
    notes.append(f"{_label(f.rows[i], k)}: shown as {_fmt(g)}, what the other two say (read {v.raw_text!r})")


def _shown_as(v: Value, g) -> Value:
    """``v`` showing ``g``, what the other values give, for review; its reading stays in
    raw_text (``from_other_columns``)."""
    return replace(v, value=g, text=_fmt(Decimal(g)), status="review",
                   reasons=tuple(dict.fromkeys(v.reasons + ("from_other_columns",))))


def _fill_from_others(f: _Flagger, i: int, n: dict, notes: list[str]) -> None:
    """One of quantity / unit price / amount has no value while the other two have. Empty
    on the page (faint print lost, or really left blank): flagged ``partial_row``, not
    filled. Ink that could not be read (``unreadable``, ``not_a_number``): when the other
    two read cleanly, shown as what they give, for review."""
    k = next(name for name, x in n.items() if x is None)
    v = f.rows[i][k]
    if v.empty and not v.reasons:
        f.row(i, k, "partial_row")
        return
    if not {code_of(r) for r in v.reasons} & {"unreadable", "not_a_number"}:
        return
    others = [f.rows[i][o] for o in n if o != k]
    if any(o.status != "ok" for o in others):
        return
    _apply_guess(f, i, k, n, notes)


def _fmt(d: Decimal) -> str:
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def _check_balance(f: _Flagger, notes: list[str]) -> None:
    prev: Decimal | None = None  # the previous balance, None = unknown
    prev_index: int | None = None  # the row whose written balance ``prev`` is (None: computed)
    for i, row in enumerate(f.rows):
        bal_v, in_v, out_v = row.get("balance"), row.get("in_qty"), row.get("out_qty")
        if any(_filled(v) and _num(v) is None for v in (in_v, out_v)):
            # an in/out we could not read (already flagged): restart from this row's balance
            bal = _num(bal_v)
            prev, prev_index = bal, (i if bal is not None else None)
            continue
        inq = _num(in_v) if _filled(in_v) else Decimal(0)
        outq = _num(out_v) if _filled(out_v) else Decimal(0)
        bal = _num(bal_v) if _filled(bal_v) else None
        if prev is None:
            # The first row (or the first after a break): nothing to compare with. A 繰越 row
            # with only the carried amount in the in/out column opens the chain with it.
            if bal is None and is_carry_forward(row) and (_filled(in_v) or _filled(out_v)):
                prev, prev_index = inq - outq, None
            else:
                prev, prev_index = bal, (i if bal is not None else None)
            continue
        expected = prev + inq - outq
        if bal is None:
            prev, prev_index = expected, None  # balance not written: carry the computed one
            continue
        if bal != expected:
            for name in ("balance", "in_qty", "out_qty"):
                f.row(i, name, "balance_mismatch")
            if prev_index is not None:
                f.row(prev_index, "balance", "balance_mismatch")  # it may be the wrong one
            notes.append(f"{_label(row, 'balance')}: previous {_fmt(prev)} + {_fmt(inq)} - {_fmt(outq)}"
                         f" = {_fmt(expected)}, balance read {_fmt(bal)}")
        prev, prev_index = bal, i


def build_record(*, sha256: str, page_index: int, template: Template, header: dict[str, Value],
                 rows: list[dict[str, Value]], align_ok: bool = True,
                 align_score: float | None = None, faint: bool = False,
                 form_confirmed: bool = True) -> Record:
    """Apply the template's cross-field rules to one page's values (see the module
    docstring for what flags what) and decide the record's status: ``ok`` only when every
    value is ``ok`` and no page-level reason exists; else ``review`` with the union of the
    reason codes (first-seen order) in ``Record.reasons``."""
    checks = set(template.checks)
    record_reasons: list[str] = []
    notes: list[str] = []

    # Row filtering: a row with nothing written in any cell is no row.
    rows = [r for r in rows if any(_filled(v) for v in r.values())]
    # judged on the readings alone, before any rule below adds its flags
    read = [v for v in list(header.values()) + [v for r in rows for v in r.values()] if not v.empty]
    mostly_doubtful = (len(read) >= UNRELIABLE_MIN
                       and sum(v.status != "ok" for v in read) >= UNRELIABLE_SHARE * len(read))
    f = _Flagger(header, rows)

    for spec in template.fields:
        if spec.required:
            if spec.name not in f.header:
                f.header[spec.name] = _placeholder(sha256, page_index, spec)
            elif f.header[spec.name].empty:
                f.head(spec.name, "empty_required")

    if template.tables and not f.rows:
        # A form with no line at all was most likely washed out (faint FAX, wrong
        # clean-up): nothing read on it, not even a blank header field, is certain.
        record_reasons.append("no_rows")
        f.all("no_rows")

    kind = template.kind
    specs = {c.name: c for t in template.tables for c in t.columns}
    for i, row in enumerate(f.rows):
        for name, v in row.items():
            spec = specs.get(v.column or name)
            if spec is not None and spec.required and v.empty:
                f.row(i, name, "empty_required")
        if kind == "ledger":
            keys = _key_columns(template, row, ())
            partial = any(not _filled(row.get(k)) for k in keys) or (
                any(k in row for k in LEDGER_QTY) and not any(_filled(row.get(k)) for k in LEDGER_QTY))
        else:
            keys = _key_columns(template, row, ORDER_KEYS)
            partial = any(not _filled(row.get(k)) for k in keys)
        if partial:
            for name in list(row):
                f.row(i, name, "partial_row")
            notes.append(f"{_label(row, keys[0] if keys else next(iter(row)))}: row only partly filled")

    # A cell left empty in a row while most filled rows of the page have that column
    # filled is more likely lost (faint ink, misplaced crop) than really blank: flag it,
    # so a value that was on the paper never disappears without a clerk being asked.
    # (Ledgers often leave a balance or 担当 unwritten on purpose; orders do not.)
    if kind == "order" and len(f.rows) >= 2:
        columns = {name for row in f.rows for name in row}
        usual = {c for c in columns
                 if sum(_filled(r.get(c)) for r in f.rows) >= max(2, 0.6 * len(f.rows))}
        for i, row in enumerate(f.rows):
            for name in usual:
                v = row.get(name)
                if v is not None and not _filled(v):
                    f.row(i, name, "partial_row")

    if kind == "order":
        if "amount" in checks:
            for i in range(len(f.rows)):
                _check_amount(f, i, notes)
        if "due_date" in checks:
            order_date = f.header.get("order_date")
            od = order_date.value if order_date is not None else None
            if od is not None and hasattr(od, "isoformat"):
                due_places = [(None, "due_date")] + [(i, "due_date") for i in range(len(f.rows))]
                for i, name in due_places:
                    v = f.header.get(name) if i is None else f.rows[i].get(name)
                    if v is not None and hasattr(v.value, "isoformat") and v.value < od:
                        f.head("order_date", "due_before_order")
                        if i is None:
                            f.head(name, "due_before_order")
                        else:
                            f.row(i, name, "due_before_order")
        if "total" in checks:
            _check_total(f, notes)
    elif kind == "ledger" and "balance" in checks:
        _check_balance(f, notes)

    _check_code_shapes(f, template, notes)
    _doubtful_year_source(template, f)

    if faint:
        # much of the form's own print is missing (a washed-out FAX): an empty field may
        # have lost its value, and whole rows may be gone - the page is asked about
        record_reasons.append("faint_print")
        for name, v in list(f.header.items()):
            if v.empty:
                f.head(name, "faint_print")
        for i, row in enumerate(f.rows):
            for name, v in list(row.items()):
                if v.empty:
                    f.row(i, name, "faint_print")

    if mostly_doubtful:
        # When most of what could be read is doubtful, nothing on the page is evidence:
        # a blank may be print that washed out, and two reads agreeing on a speck ('4'
        # for 219 on a shrunk FAX) is chance, not confirmation. The clerk sees it all.
        record_reasons.append("mostly_unreadable")
        f.all("mostly_unreadable")

    if not align_ok:
        f.all("alignment_doubtful")
        record_reasons.append("alignment_doubtful")

    if not form_confirmed:
        f.all("form_unconfirmed")
        record_reasons.append("form_unconfirmed")

    values = list(f.header.values()) + [v for r in f.rows for v in r.values()]
    codes = [code_of(r) for v in values for r in v.reasons] + [code_of(r) for r in record_reasons]
    codes = list(dict.fromkeys(codes))
    status = "ok" if not codes and all(v.status == "ok" for v in values) else "review"
    return Record(sha256=sha256, page_index=page_index, template_name=template.name, kind=kind,
                  header=f.header, rows=f.rows, status=status, reasons=tuple(codes),
                  align_score=align_score, notes=tuple(notes))


def document_status(records: list[Record]) -> str:
    """A document's status from its pages: failed (no pages), unknown_form (no page
    matched a template), review (any page not ok), else ok."""
    if not records:
        return "failed"
    if all(r.status == "unknown_form" for r in records):
        return "unknown_form"
    if any(r.status != "ok" for r in records):
        return "review"
    return "ok"
