"""The real Tesseract engine on rendered cells (marked: needs tesseract + jpn data)."""

import numpy as np
import pytest

from conftest import GOTHIC, MINCHO, make_crop, render_text

pytestmark = pytest.mark.tesseract

CASES = [
    ("japanese_text", "六角ボルト", "text", "六角ボルト"),
    ("company", "株式会社山田製作所", "text", "株式会社山田製作所"),
    ("wareki", "令和8年12月5日", "date", "令和8年12月5日"),
    ("digits", "12345", "quantity", "12345"),
    ("part_number", "AB-1234", "part_number", "AB-1234"),
]


@pytest.mark.parametrize("text,ftype,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reads_printed_cells(tesseract, text, ftype, expected):
    reading = tesseract.read(make_crop(render_text(text), type=ftype))
    assert reading.text.replace(" ", "") == expected
    assert 0.6 <= reading.confidence <= 1.0
    assert reading.engine == "tesseract"


def test_restricted_read_only_uses_allowed_characters(tesseract):
    crop = make_crop(render_text("1,200", font=MINCHO), type="money")
    second = tesseract.read_restricted(crop)
    assert second is not None and set(second.text) <= set("0123456789,.")
    assert second.text.replace(",", "") == "1200"
    assert tesseract.read_restricted(make_crop(render_text("ボルト"), type="text")) is None


def test_blank_crop_is_not_sent_to_tesseract(tesseract):
    # Tesseract's LSTM invents characters on an empty image; the engine must not ask it.
    reading = tesseract.read(make_crop(np.full((60, 200), 255, np.uint8)))
    assert reading.text == "" and "blank" in reading.notes


def test_missing_language_data_is_a_clear_error(tmp_path):
    from faxflow.ocr.engines.tesseract import TesseractEngine
    from faxflow.templates.errors import EngineError

    with pytest.raises(EngineError) as exc:
        TesseractEngine(tessdata=tmp_path)
    assert "tesseract-ocr-jpn" in str(exc.value) and "Tesseract" in exc.value.ja


def test_free_text_is_checked_by_the_japanese_script_model(tesseract):
    # installed by scripts/install-system-deps.sh (tesseract-ocr-script-jpan)
    assert tesseract.second_text_lang == "Japanese"
    crop = make_crop(render_text("六角ボルト"), type="text")
    second = tesseract.read_variant(crop)
    assert second.text.replace(" ", "") == "六角ボルト"
    # an English-only field keeps to eng for its second read
    eng_crop = make_crop(render_text("BOLT"), type="text", lang="eng")
    assert tesseract._second_lang(eng_crop) is None


def test_allowed_values_restrict_the_second_read(tesseract):
    crop = make_crop(render_text("箱"), type="text", allowed=("個", "本", "箱", "kg"))
    second = tesseract.read_restricted(crop)
    assert second is not None and set(second.text) <= set("個本箱kg") and second.text == "箱"


def _binary(image: np.ndarray) -> np.ndarray:
    return np.where(image < 128, 0, 255).astype(np.uint8)  # like a crop


@pytest.mark.parametrize("text,ftype,expected", [
    ("20,952", "money", "20,952"),
    ("299-7060", "part_number", "299-7060"),
    ("10800", "quantity", "10800"),
])
def test_slashed_zeros_are_read_as_zeros(tesseract, text, ftype, expected):
    # IPA Gothic, a common Japanese font, slashes its zero; Tesseract reads it 8/9/6
    from faxflow.ocr.read import FieldReader

    reading = FieldReader(tesseract).read(make_crop(_binary(render_text(text, font=GOTHIC)), type=ftype))
    assert reading.text.replace(" ", "") == expected and "engines_disagree" not in reading.notes


@pytest.mark.parametrize("text", ["8", "φ", "日", "0", "B", "6", "9", "θ"])
def test_only_slashed_zeros_are_redrawn(text):
    from faxflow.ocr.engines.tesseract import unslash_zeros

    fonts = [MINCHO] + ([GOTHIC] if text != "0" else [])  # (IPA Gothic's 0 is the slashed one)
    for font in fonts:
        image = _binary(render_text(text, size=40, font=font))
        assert np.array_equal(unslash_zeros(image), image), (text, font)
    slashed = _binary(render_text("0", size=40, font=GOTHIC))
    assert not np.array_equal(unslash_zeros(slashed), slashed)


@pytest.mark.parametrize("name,ftype,expected", [
    ("slashed_zero_299-7060.png", "part_number", "299-7060"),  # read 299-7068 before
])
def test_slashed_zeros_of_a_real_scan(tesseract, name, ftype, expected):
    import cv2
    from pathlib import Path

    from faxflow.ocr.read import FieldReader

    image = cv2.imread(str(Path(__file__).parent / "data" / "ocr" / name), cv2.IMREAD_GRAYSCALE)
    reading = FieldReader(tesseract).read(make_crop(image, type=ftype))
    assert reading.text == expected and "engines_disagree" not in reading.notes
