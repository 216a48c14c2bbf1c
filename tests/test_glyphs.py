"""The closed-set glyph matcher (ocr/engines/glyphs.py) and how the reading stage
combines it with Tesseract's reads of a field with ``allowed`` values."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import GOTHIC, MINCHO, FakeEngine, make_crop, render_text
from faxflow.ocr.engines import glyphs
from faxflow.ocr.read import FieldReader
from faxflow.templates.types import Reading

UNITS = ("個", "本", "枚", "箱", "式", "台", "組", "袋", "巻", "缶", "kg", "m")
NOTO_BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"


def faxed(text: str, font: str, *, height: int = 18, standard: bool = False, heavy: bool = False) -> np.ndarray:
    """``text`` as a FAXed cell comes out of the crop stage: printed small, sent at
    200 dpi (standard mode: every other row, doubled back), thresholded (heavy toner:
    strokes a pixel thicker), then upscaled so the text is ~40 px high (cubic + threshold)."""
    big = render_text(text, size=96, font=font, pad=24)
    small = cv2.resize(big, None, fx=height / 96, fy=height / 96, interpolation=cv2.INTER_AREA)
    ink = (small < (170 if heavy else 128)).astype(np.uint8)
    if standard:
        ink = np.repeat(ink[::2], 2, axis=0)
    img = np.where(ink > 0, 0, 255).astype(np.uint8)
    up = cv2.resize(img, None, fx=40 / height, fy=40 / height, interpolation=cv2.INTER_CUBIC)
    return np.where(up < 128, 0, 255).astype(np.uint8)


def _fonts():
    return [f for f in (GOTHIC, MINCHO, NOTO_BOLD) if Path(f).is_file()]


@pytest.mark.parametrize("value", ["個", "台", "巻", "缶", "箱", "kg", "m"])
@pytest.mark.parametrize("kind", ["fine", "standard", "heavy"])
def test_faxed_allowed_values_are_matched(value, kind):
    """Each value, printed in the installed Japanese fonts and FAXed three ways, is
    recognised in at least all but one of the fonts."""
    fonts = _fonts()
    if not fonts:
        pytest.skip("no Japanese font installed")
    right = 0
    for font in fonts:
        img = faxed(value, font, standard=kind == "standard", heavy=kind == "heavy")
        m = glyphs.match_image(img, UNITS)
        assert m is not None
        right += m.value == value
    assert right >= len(fonts) - 1


def test_blank_cell_gives_no_match():
    assert glyphs.match_image(np.full((40, 60), 255, np.uint8), UNITS) is None


def test_no_font_for_the_values_gives_no_match():
    # a private-use character no font draws: the matcher has no renderings, no answer
    assert glyphs.candidates(("\ue000",)) is None


class FakeTesseract(FakeEngine):
    """Fake Tesseract reads, the real glyph matcher."""

    def read_more(self, crop):
        return []

    def match_allowed(self, crop):
        m = glyphs.match_image(crop.image, tuple(crop.spec.allowed))
        if m is None or not m.value:
            return None
        return Reading(text=m.value, confidence=m.confidence, engine="glyphs")


def _read(img, primary, restricted, allowed=UNITS):
    engine = FakeTesseract({"unit": primary}, {"unit": restricted})
    crop = make_crop(img, name="unit", allowed=allowed)
    return FieldReader(engine).read(crop)


def test_tesseract_misread_is_replaced_by_the_match_for_review():
    # Tesseract: 優 (not in the list) and 組; the cell shows 個
    r = _read(faxed("個", GOTHIC), ("優", 0.9), ("組", 0.9))
    assert r.text == "個" and "engines_disagree" in r.notes


def test_match_and_one_read_agreeing_is_ok():
    r = _read(faxed("台", GOTHIC), ("人", 0.9), ("台", 0.9))
    assert r.text == "台" and not r.notes and r.confidence >= 0.98


def test_three_agreeing_raise_the_confidence():
    r = _read(faxed("巻", GOTHIC), ("巻", 0.7), ("巻", 0.8))
    assert r.text == "巻" and not r.notes and r.confidence >= 0.98


def test_value_not_in_the_list_is_not_forced_in_as_ok():
    """The cell holds セット, the list does not: whatever the matcher picks, the
    field is flagged (the restricted read can only give list characters)."""
    img = faxed("セット", GOTHIC)
    r = _read(img, ("セット", 0.95), ("本", 0.6))
    assert "engines_disagree" in r.notes


def test_empty_cell_stays_empty():
    img = np.full((40, 60), 255, np.uint8)
    r = _read(img, ("", 0.0), ("", 0.0))
    assert r.text == ""


def test_renderings_are_kept_on_disk_and_reloaded_the_same(tmp_path, monkeypatch):
    """A later process (here: a cleared in-memory cache) loads the renderings from the
    disk cache instead of drawing them again, and matches exactly as before."""
    monkeypatch.setenv("FAXFLOW_CACHE", str(tmp_path / "cache"))
    values = ("個", "本", "kg")
    glyphs.candidates.cache_clear()
    first = glyphs.candidates(values)
    files = list((tmp_path / "cache").glob("glyphs-*.npz"))
    assert first is not None and len(files) == 1
    glyphs.candidates.cache_clear()
    monkeypatch.setattr(glyphs, "_render_candidates", lambda v: pytest.fail("rendered again"))
    again = glyphs.candidates(values)
    assert np.array_equal(again.labels, first.labels) and np.allclose(again.feats, first.feats)
    # another list is another file
    monkeypatch.undo()
    monkeypatch.setenv("FAXFLOW_CACHE", str(tmp_path / "cache"))
    glyphs.candidates.cache_clear()
    glyphs.candidates(("本", "台"))
    assert len(list((tmp_path / "cache").glob("glyphs-*.npz"))) == 2
    glyphs.candidates.cache_clear()


def test_a_broken_or_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    values = ("箱", "m")
    monkeypatch.setenv("FAXFLOW_CACHE", str(tmp_path / "c"))
    path = glyphs._cache_path(values)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")  # e.g. a disk that filled up mid-write elsewhere
    glyphs.candidates.cache_clear()
    made = glyphs.candidates(values)
    assert made is not None and made.feats.shape[0] > 0
    with np.load(path) as z:  # rewritten whole
        assert z["feats"].shape == made.feats.shape
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("FAXFLOW_CACHE", str(blocker / "sub"))  # cannot be a folder
    glyphs.candidates.cache_clear()
    assert glyphs.candidates(values).feats.shape == made.feats.shape
    glyphs.candidates.cache_clear()
