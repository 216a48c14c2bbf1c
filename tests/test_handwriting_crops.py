"""The handwriting engine on real field crops from generated sheets (after clean,
align and crop), each of which the engine once misread. File names:
``<case>__<text, '/' as 's'>__<field type>.png`` in ``tests/data/handwriting``."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from faxflow.ocr.engines.handwriting import HandwritingEngine, binarize, stroke_width

DATA = Path(__file__).parent / "data" / "handwriting"
CASES = sorted(DATA.glob("*.png"))


@pytest.fixture(scope="module")
def engine():
    return HandwritingEngine()


def _case(path: Path) -> tuple[np.ndarray, str, str]:
    _, text, ftype = path.stem.split("__")
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), text.replace("s", "/"), ftype


@pytest.mark.parametrize("path", CASES, ids=[p.stem.split("__")[0] for p in CASES])
def test_real_crop_is_read(engine, path):
    image, text, ftype = _case(path)
    assert engine.read_image(image, ftype).text == text


def test_bold_strokes_are_thinned_before_reading(engine):
    """Bold writing (heavy toner) is thinned to the stroke width the model was trained
    on: the same crops read at their bold width come out far less sure (or wrong)."""
    plain = HandwritingEngine(engine.model, thin_bold=False)
    for path in DATA.glob("bold*.png"):
        image, text, ftype = _case(path)
        assert stroke_width(binarize(image)) > 0.22 * 30  # the writing really is bold
        thinned, bold = engine.read_image(image, ftype), plain.read_image(image, ftype)
        assert thinned.text == text
        assert bold.text != text or bold.confidence < thinned.confidence - 0.1


def test_comb_teeth_left_by_the_crop_stage_divide_the_boxes(engine):
    """Comb boxes whose bottom line the crop stage removed leave short dividers
    rising from below the baseline; they are boxes, not '1's."""
    paths = list(DATA.glob("comb_teeth*.png"))
    assert paths
    for path in paths:
        image, text, ftype = _case(path)
        r = engine.read_image(image, ftype)
        assert r.text == text and "comb" in r.notes


def test_no_comb_without_teeth(engine):
    for path in CASES:
        if not path.name.startswith("comb"):
            image, _, ftype = _case(path)
            assert "comb" not in engine.read_image(image, ftype).notes, path.name


def test_a_crossed_out_value_is_not_read(engine):
    """訂正: the printed old value struck through twice, the new one written above.
    Only the new value is read, and the note sends the field to review."""
    from faxflow.templates.reasons import REASONS

    image, text, ftype = _case(next(DATA.glob("correction1__*.png")))
    r = engine.read_image(image, ftype)
    assert r.text == text and "correction" in r.notes and "correction" in REASONS
    assert all("correction" not in engine.read_image(*_case(p)[::2]).notes
               for p in CASES if not p.name.startswith("correction"))


def test_one_loop_tells_a_wide_zero_from_touching_digits():
    from faxflow.ocr.engines.handwriting import _Atom, _one_loop

    def atom(mask):
        ys, xs = np.nonzero(mask)
        return _Atom(mask, int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, area=int(mask.sum()))

    wide0 = np.zeros((40, 80), np.uint8)
    cv2.ellipse(wide0, (40, 20), (34, 14), 0, 0, 360, 1, 4)
    assert _one_loop(atom(wide0 > 0))
    two = np.zeros((40, 80), np.uint8)  # "00" touching
    cv2.ellipse(two, (21, 20), (17, 14), 0, 0, 360, 1, 4)
    cv2.ellipse(two, (57, 20), (17, 14), 0, 0, 360, 1, 4)
    assert not _one_loop(atom(two > 0))
    ten = np.zeros((40, 80), np.uint8)  # "10" touching: a stroke beside the loop
    cv2.line(ten, (6, 4), (6, 36), 1, 4)
    cv2.ellipse(ten, (44, 20), (30, 14), 0, 0, 360, 1, 4)
    cv2.line(ten, (6, 20), (14, 20), 1, 4)
    assert not _one_loop(atom(ten > 0))


def test_a_rejected_glyph_inside_a_number_shows_its_best_digit_but_stays_doubtful(engine):
    from faxflow.ocr.engines.handwriting import DEFAULT_THRESHOLD

    image, text, ftype = _case(next(DATA.glob("guess1__*.png")))
    r = engine.read_image(image, ftype)
    assert r.text == text and "guessed" in r.notes
    assert min(r.char_confidences) < 0.5 and r.confidence < DEFAULT_THRESHOLD


def test_an_implausible_date_is_reread_as_the_likeliest_plausible_one(engine, monkeypatch):
    """'7/025'-like readings (a 2 cut in two) are no date: the same segmentation
    candidates are searched for the likeliest M/D, which stays doubtful. (The cost of
    a cut through a loop now keeps that 2 whole; without it the beam is needed.)"""
    from faxflow.ocr.engines import handwriting
    from faxflow.ocr.engines.handwriting import DEFAULT_THRESHOLD, _date_prefix, _plausible_date

    for path in DATA.glob("date_beam*.png"):
        image, text, ftype = _case(path)
        assert engine.read_image(image, ftype).text == text
        monkeypatch.setattr(handwriting, "LOOP_CUT", 0.0)
        r = engine.read_image(image, ftype)
        monkeypatch.undo()
        assert r.text == text and "date-constrained" in r.notes
        assert r.confidence < DEFAULT_THRESHOLD
    assert _date_prefix("12/") and _date_prefix("2026/1") and not _date_prefix("7/615")
    assert not _date_prefix("1/2-3") and not _plausible_date("13/2") and _plausible_date("12/31")


def test_a_small_mark_high_up_beyond_the_number_is_no_digit(engine):
    """An apostrophe-like tick up and to the right of '48' was read as a '1'; a 5's
    detached hat (as wide as a digit) must still join its 5."""
    image, text, ftype = _case(next(DATA.glob("high_mark1__*.png")))
    assert engine.read_image(image, ftype).text == text


def test_one_glyph_broken_or_hatted_is_not_read_as_several():
    """A thin 0 a FAX broke into an upper and a lower arc is joined before anything is
    cut; a flat end (a 5's hat) is never cut off its body; a cut through a loop is
    told from a cut through the one point where two digits touch."""
    from faxflow.ocr.engines.handwriting import _components, _cut_strokes, _join_stacked, _tall_cuts

    zero = np.zeros((60, 60), np.uint8)
    cv2.ellipse(zero, (30, 30), (14, 20), 0, 190, 350, 1, 3)  # upper arc
    cv2.ellipse(zero, (30, 30), (14, 20), 0, 10, 170, 1, 3)  # lower arc
    arcs = _components(zero > 0)
    assert len(arcs) == 2 and len(_join_stacked(arcs, 40.0)) == 1
    side = np.zeros((60, 80), np.uint8)  # two short digits side by side stay two
    cv2.line(side, (10, 20), (10, 45), 1, 3)
    cv2.line(side, (40, 20), (40, 45), 1, 3)
    assert len(_join_stacked(_components(side > 0), 40.0)) == 2

    five = np.zeros((60, 90), np.uint8)  # a 5 whose hat runs far to the right
    cv2.ellipse(five, (24, 36), (12, 12), 0, -90, 180, 1, 3)
    cv2.line(five, (14, 12), (14, 30), 1, 3)
    cv2.line(five, (14, 12), (80, 10), 1, 3)
    a = _components(five > 0)[0]
    assert _tall_cuts(a.mask, [40, 55, 70], a.x0, a.x1, 40.0) == []

    loop = np.zeros((60, 60), np.uint8)
    cv2.ellipse(loop, (30, 30), (20, 14), 0, 0, 360, 1, 3)
    assert _cut_strokes(loop > 0, 30, 40.0) == 2
    pair = np.zeros((60, 60), np.uint8)  # two strokes meeting at one point
    cv2.line(pair, (10, 50), (30, 30), 1, 3)
    cv2.line(pair, (30, 30), (50, 50), 1, 3)
    assert _cut_strokes(pair > 0, 30, 40.0) == 1


def test_a_component_wider_than_a_digit_is_also_read_whole(engine, monkeypatch):
    """A 5 whose hat runs far to the right and a 0 with a lead-in stroke are one
    component wider than 1.35 H: cut, their parts read '19'/'22' or '71'/'82' and could
    not be put back together ('8/195', '182/26'). The whole is now always a candidate,
    at a cost (WIDE_WHOLE), so a touching pair that happens to read as one wide digit
    ('21' as a '4') stays two."""
    from faxflow.ocr.engines import handwriting

    for stem in ("long_hat2", "long_hat3", "lead_in0", "lead_in0b", "touch21"):
        image, text, ftype = _case(next(DATA.glob(stem + "__*.png")))
        assert engine.read_image(image, ftype).text == text, stem
    image, text, ftype = _case(next(DATA.glob("long_hat2__*.png")))
    r = engine.read_image(image, ftype)
    assert r.confidence >= handwriting.DEFAULT_THRESHOLD and "date-constrained" not in r.notes
    monkeypatch.setattr(handwriting, "WIDE_WHOLE", 0.0)  # without its cost the pair is one glyph
    image, text, ftype = _case(next(DATA.glob("touch21__*.png")))
    assert engine.read_image(image, ftype).text == "2/4"


def test_a_speck_among_the_digits_is_left_out(engine, monkeypatch):
    """A speck or tick between two digits (FAX noise) is no character: the segmentation
    may leave a speck-sized piece out (SPECK_SKIP), instead of reading it as a '1' or
    a '?' inside the number. A dot under a digit (cut apart with it) is left out too."""
    from faxflow.ocr.engines import handwriting

    image, text, ftype = _case(next(DATA.glob("speck1__*.png")))
    assert text == "254" and engine.read_image(image, ftype).text == "254"  # dot under the 2
    ticked = image.copy()
    ticked[35:43, 108:111] = 0  # a short upright tick between the 5 and the 4
    r = engine.read_image(ticked, ftype)
    assert r.text == "254" and "speck-skipped" in r.notes
    monkeypatch.setattr(handwriting, "SPECK_SKIP", -math.inf)
    assert engine.read_image(ticked, ftype).text != "254"


def test_overlapping_digits_are_cut_along_a_bent_path(engine, monkeypatch):
    """A 1 leaning into an 8, a 5 overlapping a 7, two 0s overlapping: every straight
    cut goes through two strokes. A cut that bends around the overlap (``_cut_path``,
    used where it crosses fewer strokes than the straight one) separates them; cut
    straight, '81' was read '8' at 0.90 -- a silent error."""
    from faxflow.ocr.engines import handwriting

    stems = ("overlap81", "overlap57", "overlap00")
    for stem in stems:
        image, text, ftype = _case(next(DATA.glob(stem + "__*.png")))
        assert engine.read_image(image, ftype).text == text, stem
    monkeypatch.setattr(handwriting, "CUT_BEND", 0.0)
    for stem in stems:
        image, text, ftype = _case(next(DATA.glob(stem + "__*.png")))
        assert engine.read_image(image, ftype).text != text, stem
    monkeypatch.undo()

    # the bent path itself: two slanted strokes side by side, joined at the bottom --
    # a straight cut between them goes through both, the bent one only through the join
    from faxflow.ocr.engines.handwriting import _components, _cut_path, _cut_strokes, _path_strokes

    img = np.zeros((60, 80), np.uint8)
    cv2.line(img, (24, 52), (40, 8), 1, 3)
    cv2.line(img, (36, 52), (52, 8), 1, 3)
    cv2.line(img, (24, 52), (36, 52), 1, 3)
    a = _components(img > 0)[0]
    path = _cut_path(a, 38, 40.0)
    assert _cut_strokes(a.mask, 38, 40.0) == 2 and _path_strokes(a.mask, path, 40.0) == 1


def test_a_part_number_is_reread_to_match_its_pattern(engine):
    """An order number (pattern ^\\d{6}$) whose 1 reads as '/' ('2/8656') is searched
    again over the same segmentation for the likeliest reading that matches: the '1'
    forced away from its best class keeps its low probability, so it stays reviewed."""
    from faxflow.ocr.engines.handwriting import DEFAULT_THRESHOLD

    image, text, ftype = _case(next((DATA / "pattern").glob("pattern1__*.png")))
    assert engine.read_image(image, ftype).text == "2/8656"
    r = engine.read_image(image, ftype, r"^\d{6}$")
    assert r.text == text and "pattern-constrained" in r.notes and r.confidence < DEFAULT_THRESHOLD
