"""Template files: good ones load; each kind of mistake names the file and the line."""

from pathlib import Path

import pytest
from PIL import Image

from faxflow.templates.loader import load_templates, parse_template
from faxflow.templates.errors import TemplateError

GOOD = """\
name: tanaka_order
title: 田中工業 注文書
kind: order
reference:
  image: ref.png
  dpi: 200
match:
  keywords: [注文書, 田中工業]
fields:
  order_no:   {box: [100, 20, 300, 60], type: text, pattern: '^\\d{6}$', required: true}
  order_date: {box: [100, 70, 300, 110], type: date}
tables:
  lines:
    box: [10, 200, 390, 500]
    rows: {pitch: 30, count: 10}
    key: part_no
    columns:
      part_no:  {x: [10, 120], type: part_number}
      quantity: {x: [120, 200], type: quantity, hint: auto}
      due_date: {x: [200, 390], type: date, hint: handwritten}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    Image.new("L", (400, 520), 255).save(tmp_path / "ref.png")
    return tmp_path


def write(folder: Path, text: str, name: str = "t.yaml") -> Path:
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_template_loads(folder):
    tpl, problems = parse_template(write(folder, GOOD))
    assert problems == []
    assert tpl is not None and tpl.name == "tanaka_order" and tpl.kind == "order"
    assert tpl.keywords == ("注文書", "田中工業")
    assert tpl.field("order_no").required and tpl.field("order_no").box == (100, 20, 300, 60)
    table = tpl.tables[0]
    assert [c.name for c in table.columns] == ["part_no", "quantity", "due_date"]
    assert table.columns[1].hint == "auto" and table.columns[1].box == (120, 200, 200, 500)
    rows = table.row_boxes()
    assert len(rows) == 10 and rows[0] == (10, 200, 390, 230) and rows[-1][3] == 500


BAD = [
    ("yaml_syntax", GOOD.replace("  dpi: 200", "  dpi: 200\n bad_indent: 1"), 7, "YAML syntax"),
    ("unknown_type", GOOD.replace("type: quantity", "type: qty"), 19, "type 'qty'"),
    ("box_upside_down", GOOD.replace("[100, 70, 300, 110]", "[100, 110, 300, 70]"), 11, "y1 <= y0"),
    ("box_three_numbers", GOOD.replace("[100, 70, 300, 110]", "[100, 70, 300]"), 11, "expected 4 numbers"),
    ("outside_image", GOOD.replace("[100, 70, 300, 110]", "[100, 70, 900, 110]"), 11, "outside the reference"),
    ("bad_pattern", GOOD.replace("'^\\d{6}$'", "'^(\\d{6}$'"), 10, "not a valid regular expression"),
    ("unknown_key", GOOD.replace("title:", "titel:"), 2, "unknown key 'titel'"),
    ("missing_image", GOOD.replace("ref.png", "nothere.png"), 5, "reference image not found"),
    ("rows_overflow", GOOD.replace("count: 10", "count: 12"), 15, "below the table box"),
    ("columns_overlap", GOOD.replace("x: [120, 200]", "x: [100, 200]"), 19, "overlaps"),
    ("bad_key_column", GOOD.replace("key: part_no", "key: partno"), 16, "key column"),
    ("bad_hint", GOOD.replace("hint: auto", "hint: maybe"), 19, "hint 'maybe'"),
    ("bad_name", GOOD.replace("name: tanaka_order", "name: Tanaka Order"), 1, "'name' must be"),
]


@pytest.mark.parametrize("text,line,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_template_names_file_and_line(folder, text, line, message):
    path = write(folder, text)
    tpl, problems = parse_template(path)
    assert tpl is None
    errors = [p for p in problems if p.severity == "error"]
    assert errors, "expected at least one error"
    hit = [p for p in errors if message in p.message]
    assert hit, [str(p) for p in errors]
    assert all(p.path == path for p in errors)
    if line is not None:
        assert hit[0].line == line, str(hit[0])
    assert str(path) in str(hit[0]) and f":{hit[0].line}:" in str(hit[0])


SLOPPY = [
    # a column 6 px into its neighbour (a newcomer's measuring): the edge is shared
    ("column_overlap_small", GOOD.replace("x: [120, 200]", "x: [114, 200]"), "share the edge at x=117",
     lambda t: (t.tables[0].columns[0].box[2], t.tables[0].columns[1].box[0]) == (117, 117)),
    # a column poking 8 px out of the table box: the box is widened
    ("column_outside_small", GOOD.replace("x: [200, 390]", "x: [200, 398]"), "widened to [10, 200, 398, 500]",
     lambda t: t.tables[0].box == (10, 200, 398, 500) and t.tables[0].columns[2].box[2] == 398),
    # a pitch 1 px too large over 10 rows: the box is taken down to the rows' end
    ("pitch_a_little_large", GOOD.replace("pitch: 30", "pitch: 31"), "taken down to y=510",
     lambda t: t.tables[0].box[3] == 510 and len(t.tables[0].row_boxes()) == 10),
]


@pytest.mark.parametrize("text,message,check", [s[1:] for s in SLOPPY], ids=[s[0] for s in SLOPPY])
def test_edges_a_little_off_are_warnings_and_put_right(folder, text, message, check):
    tpl, problems = parse_template(write(folder, text))
    assert tpl is not None, [str(p) for p in problems]
    assert [p.severity for p in problems] == ["warning"], [str(p) for p in problems]
    assert message in problems[0].message
    assert check(tpl)


@pytest.mark.parametrize("text,message", [
    (GOOD.replace("quantity: {x", "qty: {x"), "column 'qty' is read and stored but not exported"),
    (GOOD.replace("quantity: {x", "数量: {x"), "did you mean 'quantity'?"),
    (GOOD.replace("due_date: {x", "due_dte: {x"), "did you mean 'due_date'?"),
    (GOOD.replace("order_date: {box: [100, 70, 300, 110], type: date}",
                  "order_date: {box: [100, 70, 300, 110], type: text}"), "give it 'type: date'"),
], ids=["qty", "japanese_title", "typo", "date_as_text"])
def test_names_that_miss_the_csv_or_their_checks_are_warned_about(folder, text, message):
    """``qty`` would be read and stored, but the CSV's quantity stays empty and
    quantity x unit price = amount is never checked: say so, with the name meant."""
    tpl, problems = parse_template(write(folder, text))
    assert tpl is not None
    assert any(p.severity == "warning" and message in p.message for p in problems), [str(p) for p in problems]


def test_broken_file_skipped_when_watching_but_fatal_when_strict(folder):
    write(folder, GOOD, "good.yaml")
    write(folder, GOOD.replace("name: tanaka_order", "name: other").replace("type: quantity", "type: qty"),
          "bad.yaml")
    tset = load_templates([folder], include_shipped=False)
    assert [t.name for t in tset.templates] == ["tanaka_order"]
    assert any("bad.yaml" in str(p.path) for p in tset.problems)
    with pytest.raises(TemplateError):
        load_templates([folder], include_shipped=False, strict=True)


def test_user_template_overrides_shipped_of_same_name(folder):
    shipped = load_templates()
    if not shipped.templates:
        pytest.skip("no shipped templates yet")
    name = shipped.templates[0].name
    write(folder, GOOD.replace("name: tanaka_order", f"name: {name}"))
    tset = load_templates([folder])
    assert tset.get(name).path.parent == folder
