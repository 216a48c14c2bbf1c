"""Cropping: the right cells, ruling removed, neighbours' ink left out, OCR-sized text."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw
from _synthform import GOTHIC, box_of, distort, font, ledger_form, order_form

from faxflow.ocr.align import align_page
from faxflow.ocr.crop import TEXT_TARGET_PX, crop_fields, draw_zones, table_cells
from faxflow.templates.match import match_page
from faxflow.templates.types import AlignedPage, Page

EMPTY_INK = 0.002  # ocr/read.py's threshold: below it a cell is empty

FILL = {"order_no": "PO-240117", "order_date": "2026/11/20", "buyer": "山田 太郎",
        "lines[0].part_no": "AB-1234", "lines[0].quantity": "120", "lines[0].unit": "個",
        "lines[3].description": "六角ボルト M8×30", "lines[9].amount": "3.5", "lines[9].due_date": "12/5"}


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    d = tmp_path_factory.mktemp("crop")
    return {"order": order_form(d), "ledger": ledger_form(d, rows_from="ruling")}


def page_of(img: np.ndarray) -> Page:
    return Page(sha256="ab" * 32, source_name="t.tif", index=2, image=img, dpi=200.0)


def aligned_as_is(img: np.ndarray, name: str) -> AlignedPage:
    """An 'already aligned' page: crop tests that need no alignment."""
    return AlignedPage(page=page_of(img), template_name=name, image=img, transform=np.eye(3), score=1.0, ok=True)


def text_ink(form, values: dict[str, str], key: str) -> int:
    """Dark pixels the text of ``key`` adds to the blank form (in its cell)."""
    x0, y0, x1, y1 = box_of(form.layout or form.template, key)
    filled = form.fill(values)[y0:y1, x0:x1] < 128
    blank = form.image[y0:y1, x0:x1] < 128
    return int(np.count_nonzero(filled & ~blank))


def longest_run(mask: np.ndarray) -> int:
    best = 0
    for row in mask:
        d = np.diff(np.r_[0, row.astype(np.int8), 0])
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        if len(starts):
            best = max(best, int((ends - starts).max()))
    return best


@pytest.fixture(scope="module")
def fax_crops(forms):
    f = forms["order"]
    img, _ = distort(f.fill(FILL), angle=1.5, scale=0.97, shift=(0.02, -0.03), fax_standard=True, speckle=0.001,
                     header=True)
    r = match_page(img, 200, [f.template])
    a = align_page(page_of(img), f.template, r)
    assert a.ok
    return {c.name: c for c in crop_fields(a, f.template)}


def test_one_crop_per_field_and_cell(forms, fax_crops):
    t = forms["order"].template
    assert len(fax_crops) == len(t.fields) + 10 * len(t.tables[0].columns)
    c = fax_crops["lines[3].description"]
    assert (c.table, c.row, c.column) == ("lines", 3, "description")
    assert c.spec.name == "description" and c.sha256 == "ab" * 32 and c.page_index == 2
    h = fax_crops["order_no"]
    assert h.table is None and h.row is None and h.spec is t.field("order_no")


def test_filled_cells_have_ink_and_empty_cells_none(fax_crops):
    for name, c in fax_crops.items():
        if name in FILL:
            assert c.ink > 0.01, name
        else:
            assert c.ink < EMPTY_INK, (name, c.ink)


@pytest.mark.parametrize("key", ["order_no", "buyer", "lines[0].part_no", "lines[0].unit",
                                 "lines[3].description", "lines[9].amount"])
def test_crop_holds_the_text_and_no_ruling(forms, fax_crops, key):
    c = fax_crops[key]
    x0, y0, x1, y1 = c.box
    expected = text_ink(forms["order"], FILL, key)
    got = c.ink * (x1 - x0) * (y1 - y0)
    assert 0.6 * expected <= got <= 1.4 * expected, (got, expected)  # no line pixels, no lost strokes
    ink = c.image < 128
    assert longest_run(ink) < 0.5 * c.image.shape[1]  # no horizontal line left
    assert longest_run(ink.T) < 0.9 * c.image.shape[0]  # no vertical line left
    assert not ink[0].any() and not ink[-1].any() and not ink[:, 0].any() and not ink[:, -1].any()


def test_text_is_upscaled_for_ocr(fax_crops):
    for key in ("order_no", "lines[0].quantity", "lines[9].amount"):
        ink = fax_crops[key].image < 128
        rows = np.flatnonzero(ink.any(axis=1))
        assert rows[-1] - rows[0] + 1 >= 0.75 * TEXT_TARGET_PX, key  # 30-px text read from a FAX


def test_decimal_point_survives_speck_removal(fax_crops):
    img = fax_crops["lines[9].amount"].image < 128
    n, _, stats, _ = cv2.connectedComponentsWithStats(img.astype(np.uint8))
    assert n - 1 >= 3  # "3", ".", "5"


def test_neighbour_ink_crossing_the_border_stays_with_its_cell(forms):
    """Big writing in row 2 spills over the line into row 3; a stroke from row 5 crosses
    into row 6. Row 3 and row 6 stay empty; rows 2 and 5 keep all of their ink, including
    the pixels where the stroke crosses the ruling."""
    f = forms["order"]
    im = Image.fromarray(f.fill({}))
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = box_of(f.template, "lines[2].description")
    d.text((x0 + 20, y1 + 14), "特大ボルト", fill=0, font=font(48, GOTHIC), anchor="ls")  # ~12 px below the line
    qx0, qy0, qx1, qy1 = box_of(f.template, "lines[5].quantity")
    d.line([(qx0 + 60, qy0 + 15), (qx0 + 60, qy1 + 14)], fill=0, width=4)  # a "1" whose tail crosses down
    img = np.asarray(im).copy()
    crops = {c.name: c for c in crop_fields(aligned_as_is(img, f.template.name), f.template)}
    assert crops["lines[2].description"].ink > 0.02
    assert crops["lines[3].description"].ink < EMPTY_INK
    assert crops["lines[6].quantity"].ink < EMPTY_INK
    one = crops["lines[5].quantity"].image < 128
    cols = np.flatnonzero(one.any(axis=0))
    run = longest_run(one[:, cols[0]:cols[-1] + 1].T)
    assert run >= 0.9 * one[:, cols[0]:cols[-1] + 1].any(axis=1).sum()  # unbroken where it crosses the line


def test_a_box_drawn_inside_unruled_writing_keeps_what_it_cut_off(forms):
    """The buyer's line has no side borders; a newcomer's box starts 20 px into the
    writing and cuts off the ``(`` of ``(株)``. The run of writing the box holds most of
    is kept whole (a side without ruling is no border); a column's ruled side still is."""
    from dataclasses import replace

    f = forms["order"]
    img = f.fill({"buyer": "(株)光洋電機"})
    x0, y0, x1, y1 = f.template.field("buyer").box
    tight = replace(f.template, fields=tuple(
        replace(s, box=(x0 + 20, y0, x1, y1)) if s.name == "buyer" else s for s in f.template.fields))

    def width(tpl):
        crop = next(c for c in crop_fields(aligned_as_is(img, tpl.name), tpl) if c.name == "buyer")
        cols = np.flatnonzero((crop.image < 128).any(axis=0))
        return cols[-1] - cols[0]

    assert abs(width(tight) - width(f.template)) <= 2


def test_rows_from_ruling_on_a_curved_table_with_broken_lines(forms):
    f = forms["ledger"]
    t = f.template.tables[0]
    assert t.rows_from == "ruling" and t.row_pitch is None
    bend = 5.0
    img, _ = distort(f.image, bend=bend)
    img = img.copy()
    img[400 + 85 * 5 - 4:400 + 85 * 5 + 5, 300:900] = 255  # line 5 missing in three columns
    img[400 + 85 * 12 - 4:400 + 85 * 12 + 5, :] = 255  # line 12 missing everywhere
    img[400 + 85 * 16 - 4:400 + 85 * 16 + 5, ::40] = 255  # line 16 broken into dashes
    rows = table_cells(img, t, 200)
    assert len(rows) == 20
    worst = 0.0
    for i, cells in enumerate(rows):
        for c in t.columns:
            cx0, cy0, cx1, cy1 = cells[c.name]
            xm = (cx0 + cx1) / 2
            true_top = 400 + 85 * i + bend * np.sin(np.pi * xm / img.shape[1])
            true_bot = true_top + 85
            worst = max(worst, abs(cy0 - true_top), abs(cy1 - true_bot))
    assert worst <= 3.0 + bend / 2  # per-column positions follow the curve (one value per column)


def test_rows_from_faint_ruling_with_the_blank_forms_pitch(forms):
    """A FAX kept only every fifth line of a ledger's thin ruling: on its own the ruling
    says rows five times too tall (five entries in one cell, read as one long number);
    with the blank form's pitch in the template (rows: {from: ruling, pitch, count})
    the rows in between are put back."""
    from dataclasses import replace

    f = forms["ledger"]
    t = f.template.tables[0]
    img = f.image.copy()
    for i in range(1, 20):
        if i % 5:
            y = 400 + 85 * i
            img[y - 4:y + 5, 131:1519] = 255  # thin line lost
    alone = table_cells(img, t, 200)
    assert len(alone) < 10
    hinted = replace(t, row_pitch=85, row_count=20)
    rows = table_cells(img, hinted, 200)
    assert len(rows) == 20
    for i, cells in enumerate(rows):
        _, y0, _, y1 = cells["date"]
        assert abs(y0 - (400 + 85 * i)) <= 4 and abs(y1 - (485 + 85 * i)) <= 4


def test_ledger_photo_end_to_end(forms):
    """A curved, slanted phone photo of a ruled ledger: rows from the ruling, values in
    the right cells, nothing elsewhere."""
    f = forms["ledger"]
    values = {"entries[3].date": "11/20", "entries[3].in_qty": "50", "entries[12].balance": "1200",
              "entries[19].description": "棚卸"}
    img, _ = distort(f.fill(values), bend=10, angle=1, perspective=0.02)
    r = match_page(img, 200, [f.template, forms["order"].template])
    assert r.template is f.template
    a = align_page(page_of(img), f.template, r)
    assert a.ok, a.notes
    crops = crop_fields(a, f.template)
    inked = {c.name for c in crops if c.ink >= EMPTY_INK}
    assert inked == set(values)


def test_pitch_rows_snap_to_the_ruling(forms):
    """The newcomer measured the pitch 1.5 px short: by row 10 that is 14 px off; the
    boundaries snap back onto the printed lines."""
    from dataclasses import replace

    f = forms["order"]
    t = f.template
    table = replace(t.tables[0], row_pitch=68.5)
    rows = table_cells(f.image, table, 200)
    assert len(rows) == 10
    for i, cells in enumerate(rows):
        for box in cells.values():
            assert abs(box[1] - (630 + 70 * i)) <= 2 and abs(box[3] - (700 + 70 * i)) <= 2


def test_pitch_rows_follow_the_ruling_down_a_long_table(forms):
    """20 rows of 85 px measured as 81: the last boundary is 80 px (nearly a row) from
    where the pitch puts it. Each boundary is looked for where the one above it found
    the ruling, so none jumps to the wrong line."""
    from dataclasses import replace

    f = forms["ledger"]
    table = replace(f.template.tables[0], rows_from="pitch", row_pitch=81, row_count=20)
    rows = table_cells(f.image, table, 200)
    assert len(rows) == 20
    for i, cells in enumerate(rows):
        for box in cells.values():
            assert abs(box[1] - (400 + 85 * i)) <= 3 and abs(box[3] - (485 + 85 * i)) <= 3, (i, box)


def test_draw_zones(forms, fax_crops):
    f = forms["order"]
    out = draw_zones(f.image, f.template)
    assert out.shape == f.image.shape + (3,) and out.dtype == np.uint8
    colored = (out.max(axis=2).astype(int) - out.min(axis=2)) > 60
    x0, y0, x1, y1 = f.template.field("order_no").box
    assert colored[y0 - 2:y0 + 3, x0:x1].any()  # the field box is drawn
    img, _ = distort(f.fill(FILL), angle=2)
    a = align_page(page_of(img), f.template)
    out2 = draw_zones(img, f.template, a)
    assert out2.shape == f.image.shape + (3,)


def test_high_dpi_reference(forms):
    """A template drawn on a 600-dpi scan: the same cells found, the same ink measured."""
    from dataclasses import replace

    f = forms["order"]
    k = 3
    img = cv2.resize(f.fill(FILL), None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST)

    def s(b):
        return tuple(v * k for v in b)

    t = f.template
    tab = t.tables[0]
    t600 = replace(t, dpi=600, fields=tuple(replace(x, box=s(x.box)) for x in t.fields),
                   tables=(replace(tab, box=s(tab.box), row_pitch=70 * k,
                                   columns=tuple(replace(c, box=s(c.box)) for c in tab.columns)),))
    crops = {c.name: c for c in crop_fields(aligned_as_is(img, t.name), t600)}
    assert {n for n, c in crops.items() if c.ink >= EMPTY_INK} == set(FILL)


def test_comb_box_dividers_are_removed(forms, tesseract):
    """Digits in comb boxes (|_|_|_|): the short dividers standing on the bottom border go,
    the digits stay, and the field reads as one number."""
    f = forms["order"]
    im = Image.fromarray(f.fill({}))
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = box_of(f.template, "order_no")
    n = 6
    step = (x1 - x0 - 20) / n
    for k in range(1, n):  # dividers: a third of the box high, on the bottom line
        x = int(x0 + 10 + k * step)
        d.line([(x, y1 - 4 - (y1 - y0) // 3), (x, y1 - 4)], fill=0, width=2)
    d.line([(x0 + 10, y1 - 4), (x1 - 10, y1 - 4)], fill=0, width=2)
    for k, ch in enumerate("382532"):
        d.text((int(x0 + 10 + (k + 0.5) * step), y1 - 10), ch, fill=0, font=font(30, GOTHIC), anchor="ms")
    img = np.array(im)
    crop = next(c for c in crop_fields(aligned_as_is(img, f.template.name), f.template) if c.name == "order_no")
    ink = (crop.image < 128).astype(np.uint8)
    n_comp, _, stats, _ = cv2.connectedComponentsWithStats(ink)
    heights = sorted(stats[1:, cv2.CC_STAT_HEIGHT])
    assert n_comp - 1 == 6 and heights[0] > 0.6 * heights[-1]  # six digits, no short ticks
    from faxflow.ocr.read import FieldReader

    from dataclasses import replace

    as_number = replace(crop, spec=replace(crop.spec, type="integer"))  # boxes a digit apart, read as one
    assert FieldReader(tesseract).read(as_number).text == "382532"


def test_speck_sized_decimal_point_on_the_baseline_is_kept(forms):
    """A 2x2 point between two digits (200 dpi, FAX standard mode) is no bigger than a
    speck: it stays when it sits on their baseline (4.6, not 46); the same dot above
    the baseline is still dropped."""
    f = forms["order"]
    img = f.fill({"lines[8].amount": "46", "lines[9].amount": "46"}).copy()
    for key, on_baseline in (("lines[9].amount", True), ("lines[8].amount", False)):
        x0, y0, x1, y1 = box_of(f.layout or f.template, key)
        blank = f.image[y0:y1, x0:x1] < 128
        ink = ((img[y0:y1, x0:x1] < 128) & ~blank).astype(np.uint8)
        n, _, st, _ = cv2.connectedComponentsWithStats(ink)
        (ax, ay, aw, ah), (bx, _, _, _) = sorted((tuple(s[:4]) for s in st[1:] if s[4] > 20), key=lambda s: s[0])[:2]
        cx = x0 + (ax + aw + bx) // 2 - 1
        cy = y0 + (ay + ah - 2 if on_baseline else ay + ah // 3)
        img[cy:cy + 2, cx:cx + 2] = 0
    crops = {c.name: c for c in crop_fields(aligned_as_is(img, f.template.name), f.template)}
    for key, parts in (("lines[9].amount", 3), ("lines[8].amount", 2)):
        n, *_ = cv2.connectedComponentsWithStats((crops[key].image < 128).astype(np.uint8))
        assert n - 1 == parts, key
