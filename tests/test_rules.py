"""templates/rules.py: cross-field checks and the record's status."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from faxflow.templates.model import FieldSpec, TableSpec, Template
from faxflow.templates.rules import build_record, flag
from faxflow.templates.types import Value

SHA = "cd" * 32
D = dt.date

ORDER_COLUMNS = (
    FieldSpec("part_no", "part_number"), FieldSpec("description", "text"), FieldSpec("quantity", "quantity"),
    FieldSpec("unit", "text"), FieldSpec("unit_price", "money"), FieldSpec("amount", "money"),
    FieldSpec("due_date", "date"),
)
LEDGER_COLUMNS = (
    FieldSpec("date", "date"), FieldSpec("description", "text"), FieldSpec("in_qty", "quantity"),
    FieldSpec("out_qty", "quantity"), FieldSpec("balance", "integer"),
)


def order_template(**kw) -> Template:
    base = dict(name="yamada_order", path=Path("yamada_order.yaml"), reference_image=Path("y.png"), dpi=200,
                kind="order",
                fields=(FieldSpec("order_no", "text", required=True), FieldSpec("order_date", "date", required=True),
                        FieldSpec("buyer", "text")),
                tables=(TableSpec("lines", (0, 0, 100, 100), ORDER_COLUMNS, key_column="part_no"),))
    base.update(kw)
    return Template(**base)


def ledger_template(**kw) -> Template:
    base = dict(name="zaiko", path=Path("zaiko.yaml"), reference_image=Path("z.png"), dpi=200, kind="ledger",
                fields=(FieldSpec("year", "integer"),),
                tables=(TableSpec("entries", (0, 0, 100, 100), LEDGER_COLUMNS, key_column="date"),))
    base.update(kw)
    return Template(**base)


def _typed(type_: str, text: str):
    if text == "":
        return None
    return {"quantity": int, "integer": int, "money": Decimal,
            "date": dt.date.fromisoformat}.get(type_, str)(text)


def val(name: str, text: str, type_: str = "text", *, row: int | None = None, table: str = "lines",
        status: str = "ok", reasons: tuple[str, ...] = (), conf: float = 0.95) -> Value:
    return Value(sha256=SHA, page_index=0, name=f"{table}[{row}].{name}" if row is not None else name,
                 box=(0, 0, 1, 1), raw_text=text, value=_typed(type_, text), text=text, value_type=type_,
                 confidence=conf, engine="tesseract", status=status, reasons=reasons,
                 table=table if row is not None else None, row=row, column=name if row is not None else None)


TYPES = {c.name: c.type for c in ORDER_COLUMNS + LEDGER_COLUMNS}


def order_row(i: int, part_no="AB-1234", quantity="10", unit_price="120", amount="1200", due_date="",
              description="六角ボルト", low: str | None = None) -> dict[str, Value]:
    cells = dict(part_no=part_no, description=description, quantity=quantity, unit="個" if quantity else "",
                 unit_price=unit_price, amount=amount, due_date=due_date)
    row = {k: val(k, t, TYPES[k], row=i) for k, t in cells.items()}
    if low:
        row[low] = replace(row[low], status="review", reasons=("low_confidence",), confidence=0.4)
    return row


def order_header(order_date="2026-11-20", order_no="240117") -> dict[str, Value]:
    return {"order_no": val("order_no", order_no), "order_date": val("order_date", order_date, "date"),
            "buyer": val("buyer", "山田製作所")}


def ledger_row(i: int, date="2026-04-01", description="", in_qty="", out_qty="", balance="") -> dict[str, Value]:
    cells = dict(date=date, description=description, in_qty=in_qty, out_qty=out_qty, balance=balance)
    return {k: val(k, t, TYPES[k], row=i, table="entries") for k, t in cells.items()}


def order_record(rows, header=None, **kw):
    template = kw.pop("template", None) or order_template()
    return build_record(sha256=SHA, page_index=0, template=template,
                        header=order_header() if header is None else header, rows=rows, **kw)


def ledger_record(rows, **kw):
    template = kw.pop("template", None) or ledger_template()
    return build_record(sha256=SHA, page_index=0, template=template, header={"year": val("year", "2026", "integer")},
                        rows=rows, **kw)


def flagged(record, reason: str) -> set[str]:
    """Names of the values carrying ``reason`` (header names, or 'row.column')."""
    out = {n for n, v in record.header.items() if reason in [r.split(":")[0] for r in v.reasons]}
    for r in record.rows:
        out |= {f"{v.row}.{n}" for n, v in r.items() if reason in [x.split(":")[0] for x in v.reasons]}
    return out


# --- order rules ---------------------------------------------------------------------------------

ORDER_CASES = [
    # id, rows, header kwargs, template kwargs, reason, expected flagged values
    ("amount-ok", [order_row(0)], {}, {}, "amount_mismatch", set()),
    ("amount-mismatch-flags-three", [order_row(0, amount="1300")], {}, {}, "amount_mismatch",
     {"0.quantity", "0.unit_price", "0.amount"}),
    ("amount-mismatch-one-low-conf", [order_row(0, quantity="11", low="quantity")], {}, {}, "amount_mismatch",
     {"0.quantity", "0.unit_price", "0.amount"}),
    ("amount-rounding-down", [order_row(0, quantity="3", unit_price="3.5", amount="10")], {}, {},
     "amount_mismatch", set()),
    ("amount-rounding-up", [order_row(0, quantity="3", unit_price="3.5", amount="11")], {}, {},
     "amount_mismatch", set()),
    ("amount-rounding-too-far", [order_row(0, quantity="3", unit_price="3.5", amount="12")], {}, {},
     "amount_mismatch", {"0.quantity", "0.unit_price", "0.amount"}),
    ("amount-missing-no-check", [order_row(0, amount="")], {}, {}, "amount_mismatch", set()),
    # ... but a priced line without its amount (faint print lost?) is asked about
    ("amount-missing-is-asked", [order_row(0, amount="")], {}, {}, "partial_row", {"0.amount"}),
    ("price-missing-is-asked", [order_row(0, unit_price="")], {}, {}, "partial_row", {"0.unit_price"}),
    ("amount-check-off", [order_row(0, amount="1300")], {}, {"checks": ("due_date",)}, "amount_mismatch", set()),
    ("amount-second-row-only", [order_row(0), order_row(1, amount="999")], {}, {}, "amount_mismatch",
     {"1.quantity", "1.unit_price", "1.amount"}),
    ("due-after-order", [order_row(0, due_date="2026-12-05")], {}, {}, "due_before_order", set()),
    ("due-same-day", [order_row(0, due_date="2026-11-20")], {}, {}, "due_before_order", set()),
    ("due-before-order", [order_row(0, due_date="2026-11-19")], {}, {}, "due_before_order",
     {"order_date", "0.due_date"}),
    ("due-check-off", [order_row(0, due_date="2026-11-19")], {}, {"checks": ("amount",)}, "due_before_order",
     set()),
    ("due-no-order-date", [order_row(0, due_date="2026-11-19")], {"order_date": ""}, {}, "due_before_order",
     set()),  # (the empty required order date is flagged on its own)
    ("partial-no-part-no", [order_row(0, part_no="")], {}, {}, "partial_row",
     {"0.part_no", "0.description", "0.quantity", "0.unit", "0.unit_price", "0.amount", "0.due_date"}),
    ("partial-no-quantity", [order_row(0, quantity="", amount="")], {}, {}, "partial_row",
     {"0.part_no", "0.description", "0.quantity", "0.unit", "0.unit_price", "0.amount", "0.due_date"}),
    ("full-row-not-partial", [order_row(0, description="")], {}, {}, "partial_row", set()),
    ("header-required-empty", [order_row(0)], {"order_no": ""}, {}, "empty_required", {"order_no"}),
]


@pytest.mark.parametrize("rows, header_kw, template_kw, reason, expected", [c[1:] for c in ORDER_CASES],
                         ids=[c[0] for c in ORDER_CASES])
def test_order_rules(rows, header_kw, template_kw, reason, expected):
    rec = order_record(rows, header=order_header(**header_kw), template=order_template(**template_kw))
    assert flagged(rec, reason) == expected
    assert (reason in rec.reasons) == bool(expected)
    others = [c for c in rec.reasons if c != reason]
    assert rec.status == ("review" if expected or others else "ok")
    # from the header / the row built, or the doubtful value shown as the other two say
    assert set(others) <= {"empty_required", "low_confidence", "from_other_columns", "partial_row"}


def test_one_doubtful_of_three_shows_what_the_other_two_say():
    row = order_row(0, quantity="11", low="quantity")
    rec = order_record([row])
    q = rec.rows[0]["quantity"]
    assert q.value == 10 and q.text == "10" and q.raw_text == "11"  # the reading is kept as raw text
    assert q.status == "review" and {"low_confidence", "amount_mismatch", "from_other_columns"} <= set(q.reasons)
    assert any("quantity" in n and "10" in n and "'11'" in n for n in rec.notes)


def test_two_doubtful_of_three_are_left_as_read():
    row = order_row(0, quantity="25", low="quantity")
    row["amount"] = replace(row["amount"], status="review", reasons=("engines_disagree",))
    rec = order_record([row])
    assert rec.rows[0]["quantity"].value == 25 and "from_other_columns" not in rec.rows[0]["quantity"].reasons
    assert rec.rows[0]["amount"].value == 1200 and rec.rows[0]["quantity"].status == "review"


@pytest.mark.parametrize("quantity, amount, fixed, shown", [
    ("4890", "2420000", "quantity", 4840),     # 4840 x 500: the quantity alone is one digit off
    ("4840", "2428000", "amount", 2420000),    # the amount alone is one digit off
    ("4890", "2428000", None, None),           # two misreads: nothing to go by
    ("12", "13", None, None),                  # at a price of 1 either could be the misread
])
def test_the_one_value_a_digit_away_from_the_other_two_is_shown_for_review(quantity, amount, fixed, shown):
    row = order_row(0, quantity=quantity, unit_price="1" if quantity == "12" else "500", amount=amount)
    for k in ("quantity", "amount"):  # both doubtful readings: the one-doubtful rule cannot decide
        row[k] = replace(row[k], status="review", reasons=("engines_disagree",))
    rec = order_record([row])
    got = {k: rec.rows[0][k] for k in ("quantity", "unit_price", "amount")}
    assert all(v.status == "review" and "amount_mismatch" in v.reasons for v in got.values())
    changed = [k for k, v in got.items() if "from_other_columns" in v.reasons]
    assert changed == ([fixed] if fixed else [])
    if fixed:
        assert got[fixed].value == shown and got[fixed].raw_text == (quantity if fixed == "quantity" else amount)


@pytest.mark.parametrize("alts, shown, changed", [
    # quantity 35 (read) or 25, amount 1200 or 1250: only 25 x 50 = 1250 fits
    ({"quantity": (Decimal(25),), "amount": (Decimal(1250),)}, (25, 50, 1250), {"quantity", "amount"}),
    # two combinations fit (24 x 50 = 1200, 25 x 50 = 1250): nothing to go by
    ({"quantity": (Decimal(24), Decimal(25)), "amount": (Decimal(1200), Decimal(1250))}, (35, 50, 1280), set()),
    ({}, (35, 50, 1280), set()),  # no other readings
])
def test_the_one_combination_of_other_readings_that_fits_is_shown_for_review(alts, shown, changed):
    row = order_row(0, quantity="35", unit_price="50", amount="1280")
    for k in ("quantity", "amount"):  # two doubtful readings: neither older rule decides
        row[k] = replace(row[k], status="review", reasons=("engines_disagree",), alternatives=alts.get(k, ()))
    rec = order_record([row])
    got = {k: rec.rows[0][k] for k in ("quantity", "unit_price", "amount")}
    assert tuple(v.value for v in got.values()) == shown
    assert {k for k, v in got.items() if "from_other_readings" in v.reasons} == changed
    # nothing leaves review: the three stay flagged as a mismatch, readings kept as raw text
    assert all(v.status == "review" and "amount_mismatch" in v.reasons for v in got.values())
    assert got["quantity"].raw_text == "35" and got["amount"].raw_text == "1280"


def test_an_unreadable_amount_is_filled_from_quantity_and_price_for_review():
    row = order_row(0, amount="")
    row["amount"] = replace(row["amount"], status="review", reasons=("unreadable",), confidence=0.0)
    rec = order_record([row])
    a = rec.rows[0]["amount"]
    assert a.text == "1200" and a.status == "review" and "from_other_columns" in a.reasons


def test_a_blank_price_between_quantity_and_amount_is_flagged_not_filled():
    # lost print or left blank on purpose: a clerk decides, nothing is made up
    rec = order_record([order_row(0, unit_price="")])
    p = rec.rows[0]["unit_price"]
    assert p.status == "review" and p.text == "" and "partial_row" in p.reasons


def test_year_of_row_dates_is_doubtful_when_the_order_date_is():
    header = order_header()
    header["order_date"] = replace(header["order_date"], status="review", reasons=("low_confidence",))
    row = order_row(0, due_date="2026-12-05")
    row["due_date"] = replace(row["due_date"], raw_text="12/5")
    with_year = order_row(1, due_date="2026-12-05")
    with_year["due_date"] = replace(with_year["due_date"], raw_text="2026/12/5")
    rec = order_record([row, with_year], header=header)
    assert "year_from_doubtful_header" in rec.rows[0]["due_date"].reasons
    assert "year_from_doubtful_header" not in rec.rows[1]["due_date"].reasons
    assert order_record([row]).rows[0]["due_date"].status == "ok"  # a sure order date: a sure year


def test_missing_required_header_field_gets_a_placeholder():
    header = order_header()
    del header["order_date"]
    rec = order_record([order_row(0)], header=header)
    assert rec.header["order_date"].reasons == ("empty_required",)
    assert rec.status == "review" and "empty_required" in rec.reasons


def test_clean_order_is_ok():
    rec = order_record([order_row(0, due_date="2026-12-05"), order_row(1, part_no="CD-5678", quantity="2",
                                                                        unit_price="3,000".replace(",", ""),
                                                                        amount="6000")])
    assert (rec.status, rec.reasons, rec.kind, rec.template_name) == ("ok", (), "order", "yamada_order")
    assert len(rec.rows) == 2


def test_empty_rows_are_dropped():
    empty = order_row(1, part_no="", quantity="", unit_price="", amount="", description="")
    rec = order_record([order_row(0), empty, order_row(2)])
    assert [r["part_no"].row for r in rec.rows] == [0, 2] and rec.status == "ok"


def test_no_rows_is_review():
    rec = order_record([order_row(0, part_no="", quantity="", unit_price="", amount="", description="")])
    assert rec.rows == [] and rec.status == "review" and rec.reasons == ("no_rows",)
    # a washed-out page: even a blank header field is not taken as certain
    assert rec.header and all(v.status == "review" and "no_rows" in v.reasons for v in rec.header.values())


def test_alignment_doubtful_flags_every_value():
    rec = order_record([order_row(0)], align_ok=False, align_score=0.31)
    values = list(rec.header.values()) + [v for r in rec.rows for v in r.values()]
    assert all(v.status == "review" and "alignment_doubtful" in v.reasons for v in values)
    assert rec.status == "review" and rec.reasons == ("alignment_doubtful",) and rec.align_score == 0.31


def test_a_form_not_confirmed_by_its_keywords_flags_every_value():
    assert order_record([order_row(0)]).status == "ok"
    rec = order_record([order_row(0)], form_confirmed=False)
    values = list(rec.header.values()) + [v for r in rec.rows for v in r.values()]
    assert values and all(v.status == "review" and "form_unconfirmed" in v.reasons for v in values)
    assert rec.status == "review" and rec.reasons == ("form_unconfirmed",)


def test_record_reasons_are_the_union_of_codes():
    header = order_header()
    header["buyer"] = replace(header["buyer"], status="review", reasons=("low_confidence",))
    rec = order_record([order_row(0, amount="1300"), order_row(1, due_date="2026-11-01")], header=header)
    assert set(rec.reasons) == {"low_confidence", "amount_mismatch", "due_before_order"}


def test_a_review_value_alone_makes_the_record_review():
    row = order_row(0)
    row["description"] = replace(row["description"], status="review", reasons=("pattern:^x$",))
    rec = order_record([row])
    assert rec.status == "review" and rec.reasons == ("pattern",)


# --- flag --------------------------------------------------------------------------------------

def test_flag_adds_once_and_sets_review():
    v = val("buyer", "山田")
    f = flag(flag(v, "partial_row"), "partial_row")
    assert (f.status, f.reasons, v.status) == ("review", ("partial_row",), "ok")


# --- ledger rules --------------------------------------------------------------------------------

L = ledger_row
LEDGER_CASES = [
    # id, rows, expected values flagged balance_mismatch
    ("chain-ok", [L(0, balance="100"), L(1, in_qty="20", balance="120"), L(2, out_qty="50", balance="70")], set()),
    ("first-row-unchecked", [L(0, in_qty="20", balance="999")], set()),
    ("carry-forward-opens", [L(0, description="前月繰越", balance="100"), L(1, out_qty="30", balance="70")], set()),
    ("carry-forward-in-column", [L(0, description="繰越", in_qty="100"), L(1, out_qty="30", balance="70")], set()),
    ("carry-forward-wrong-next", [L(0, description="繰越", in_qty="100"), L(1, out_qty="30", balance="60")],
     {"1.balance", "1.in_qty", "1.out_qty"}),
    ("wrong-in-qty", [L(0, balance="100"), L(1, in_qty="25", balance="120"), L(2, out_qty="50", balance="70")],
     {"0.balance", "1.balance", "1.in_qty", "1.out_qty"}),
    ("broken-chain-wrong-balance",
     [L(0, balance="100"), L(1, in_qty="20", balance="130"), L(2, out_qty="50", balance="70")],
     {"0.balance", "1.balance", "1.in_qty", "1.out_qty", "2.balance", "2.in_qty", "2.out_qty"}),
    ("balance-not-written-carries", [L(0, balance="100"), L(1, in_qty="20"), L(2, out_qty="50", balance="70")],
     set()),
    ("balance-not-written-then-wrong", [L(0, balance="100"), L(1, in_qty="20"), L(2, out_qty="50", balance="80")],
     {"2.balance", "2.in_qty", "2.out_qty"}),
    ("both-in-and-out", [L(0, balance="100"), L(1, in_qty="20", out_qty="5", balance="115")], set()),
]


@pytest.mark.parametrize("rows, expected", [c[1:] for c in LEDGER_CASES], ids=[c[0] for c in LEDGER_CASES])
def test_ledger_balance(rows, expected):
    rec = ledger_record(rows)
    assert flagged(rec, "balance_mismatch") == expected
    assert rec.status == ("review" if expected else "ok")


def test_ledger_unreadable_in_qty_restarts_the_chain():
    rows = [L(0, balance="100"), L(1, in_qty="", balance="120"), L(2, out_qty="50", balance="70")]
    rows[1]["in_qty"] = replace(rows[1]["in_qty"], text="2?", raw_text="2?", status="review",
                                reasons=("not_a_number",))
    rec = ledger_record(rows)
    assert flagged(rec, "balance_mismatch") == set()


def test_ledger_balance_check_off():
    rows = [L(0, balance="100"), L(1, in_qty="20", balance="999")]
    rec = ledger_record(rows, template=ledger_template(checks=()))
    assert flagged(rec, "balance_mismatch") == set() and rec.status == "ok"


LEDGER_PARTIAL = [
    # id, row, partial?
    ("full", L(0, in_qty="5", balance="5"), False),
    ("no-date", L(0, date="", in_qty="5", balance="5"), True),
    ("no-quantities", L(0, description="棚卸"), True),
    ("balance-only", L(0, balance="5"), False),
]


@pytest.mark.parametrize("row, partial", [c[1:] for c in LEDGER_PARTIAL], ids=[c[0] for c in LEDGER_PARTIAL])
def test_ledger_partial_row(row, partial):
    rec = ledger_record([row])
    assert bool(flagged(rec, "partial_row")) == partial


def test_order_cell_empty_where_other_rows_have_it_is_flagged():
    """A unit price lost from one row of three (faint ink, misplaced crop) is asked about;
    a column empty in every row (due dates not given) is not."""
    from faxflow.templates.rules import build_record

    rows = [order_row(i, part_no=f"AB-000{i}", quantity="2", unit_price="" if i == 1 else "5",
                      amount="10") for i in range(3)]
    rec = build_record(sha256=SHA, page_index=0, template=order_template(), header=order_header(), rows=rows)
    assert "partial_row" in rec.rows[1]["unit_price"].reasons
    assert rec.rows[0]["unit_price"].status == "ok"
    assert all("partial_row" not in r["due_date"].reasons for r in rec.rows)


def test_faint_page_flags_every_empty_value_and_the_page():
    rec = order_record([order_row(0, description="")], faint=True)
    assert rec.status == "review" and "faint_print" in rec.reasons
    assert "faint_print" in rec.rows[0]["description"].reasons  # empty: maybe washed out
    assert rec.rows[0]["part_no"].status == "ok"  # read values keep their own status
    assert order_record([order_row(0, description="")]).status == "ok"


def test_mostly_unreadable_page_flags_everything():
    """Print washed out while the handwriting stayed dark: the few values read are
    doubtful, and the blanks where printed prices vanished must not pass as 'nothing
    written', nor a reading two reads happened to agree on. A page where only some
    reads are doubtful keeps its blanks and sure values ok."""
    def rows(doubtful: int):
        out = []
        for i in range(4):
            r = order_row(i, unit_price="", amount="", description="", low="part_no" if i < doubtful else None)
            if i < doubtful:
                r["quantity"] = replace(r["quantity"], status="review", reasons=("low_confidence",))
            out.append(r)
        return out

    bad = order_record(rows(4), header=order_header() | {"buyer": val("buyer", "")}, template=order_template(checks=()))
    assert "mostly_unreadable" in bad.reasons
    assert {"buyer", "0.unit_price", "3.amount", "2.description"} <= flagged(bad, "mostly_unreadable")
    assert "mostly_unreadable" in bad.rows[0]["unit"].reasons  # an 'ok' reading there is chance too
    assert all(v.status == "review" for r in bad.rows for v in r.values())

    fine = order_record(rows(1), template=order_template(checks=()))
    assert "mostly_unreadable" not in fine.reasons and not flagged(fine, "mostly_unreadable")


def _with_total(total: str, amounts: list[str], doubtful: tuple[int, ...] = ()):
    rows = []
    for i, a in enumerate(amounts):
        r = order_row(i, quantity="1", unit_price=a, amount=a)
        rows.append(r)
    header = order_header() | {"total": val("total", total, "money")}
    return order_record(rows, header=header, template=order_template(checks=("total",)))


@pytest.mark.parametrize("total, amounts, flagged_total, shown", [
    ("1801", ["1234", "567"], False, None),               # adds up
    ("1891", ["1234", "567"], True, ("total", "1801")),   # the total alone is one digit off: shown as the sum
    ("1600", ["1000", "500"], True, None),                # 1500? or is the 1000 a misread 1100? no guess
    ("9999", ["1234", "567"], True, None),                # nothing one digit off: flagged only
])
def test_total_is_checked_against_the_lines(total, amounts, flagged_total, shown):
    rec = _with_total(total, amounts)
    t = rec.header["total"]
    assert ("total_mismatch" in t.reasons) is flagged_total
    if flagged_total:
        assert all("total_mismatch" in r["amount"].reasons for r in rec.rows)
        assert t.status == "review"
    else:
        assert t.status == "ok"
    if shown:
        assert t.text == shown[1] and "from_other_columns" in t.reasons and t.raw_text == total


def test_an_amount_alone_one_digit_off_the_total_is_shown_as_the_total_gives():
    rows = [order_row(0, quantity="1", unit_price="1000", amount="1000"),
            order_row(1, quantity="2", unit_price="250", amount="580")]  # 500 misread as 580
    rows[1]["amount"] = replace(rows[1]["amount"], status="review", reasons=("engines_disagree",))
    header = order_header() | {"total": val("total", "1500", "money")}
    rec = order_record(rows, header=header, template=order_template(checks=("amount", "total")))
    assert rec.rows[1]["amount"].text == "500" and rec.rows[1]["amount"].status == "review"


def test_a_line_without_an_amount_leaves_the_total_unchecked():
    rows = [order_row(0, amount="1000", unit_price="1000", quantity="1"), order_row(1, amount="", unit_price="")]
    header = order_header() | {"total": val("total", "1234", "money")}
    rec = order_record(rows, header=header, template=order_template(checks=("total",)))
    assert "total_mismatch" not in rec.header["total"].reasons


# --- part numbers without a pattern: a code unlike the others of its column -----------------------

@pytest.mark.parametrize("codes, pattern, expected", [
    (["T20515", "T31022", "K40017", "120515"], None, {"3.part_no"}),  # T read as 1: every engine alike
    (["T20515", "T31022", "K40017", "T2O515"], None, {"3.part_no"}),  # and 0 read as O
    (["T20515", "T31022", "K40017", "7M-221"], None, set()),  # another kind of code: left alone
    (["C86216", "S24930", "120515"], None, {"2.part_no"}),  # the page of seed 20261208 s0016
    (["T20515", "120515"], None, set()),  # one alike is no rule
    (["T20515", "T31022", "K40017", "120515"], r"^[A-Z0-9]{6}$", set()),  # the pattern decides
])
def test_a_code_unlike_the_others_of_its_column_is_flagged(codes, pattern, expected):
    columns = tuple(replace(c, pattern=pattern) if c.name == "part_no" else c for c in ORDER_COLUMNS)
    template = order_template(tables=(TableSpec("lines", (0, 0, 100, 100), columns, key_column="part_no"),))
    record = order_record([order_row(i, part_no=c) for i, c in enumerate(codes)], template=template)
    assert flagged(record, "shape_differs") == expected
    if expected:
        assert record.status == "review"
