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
