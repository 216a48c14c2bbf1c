"""The handwriting engine on real field crops from generated sheets (after clean,
align and crop), each of which the engine once misread. File names:
``<case>__<text, '/' as 's'>__<field type>.png`` in ``tests/data/handwriting``."""

from __future__ import annotations

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
    image, text, ftype = _case(next(DATA.glob("bold1__*.png")))
    ink = binarize(image)
    assert stroke_width(ink) > 0.22 * 37  # the writing really is bold (text height ~37 px)
    # the same crop with the glyphs at their bold width is misread
    plain = HandwritingEngine(engine.model, thin_bold=False)
    assert plain.read_image(image, ftype).text != text
    assert engine.read_image(image, ftype).text == text


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
