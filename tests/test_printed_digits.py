"""The digit model as a second reader of printed numbers (HandwritingEngine.recheck_digits
and its use in FieldReader): rendered print, FAX-degraded, with Tesseract's answers faked
so that each case is the confusion it stands for."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import FakeEngine, make_crop
from faxflow.ocr.engines.handwriting import HandwritingEngine
from faxflow.ocr.read import FieldReader
from faxflow.templates.types import Reading

# not one of the sample generator's fonts (samples/forms.py FONT_FILES)
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
pytestmark = pytest.mark.skipif(not FONT.exists(), reason="DejaVu Sans not installed")


def fax_print(text: str, px: int = 22) -> np.ndarray:
    """``text`` printed at ``px`` and sent in FAX standard mode (half the lines, two
    levels), then back to square pixels as the clean-up stage does."""
    f = ImageFont.truetype(str(FONT), px)
    im = Image.new("L", (int(px * 0.75 * len(text)) + 30, px * 2), 255)
    ImageDraw.Draw(im).text((12, px // 3), text, fill=0, font=f)
    g = np.asarray(im)
    h, w = g.shape
    g = cv2.resize(g, (w, h // 2), interpolation=cv2.INTER_AREA)
    g = np.where(g < 140, 0, 255).astype(np.uint8)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_NEAREST)


@pytest.fixture(scope="module")
def digits():
    return HandwritingEngine()


@pytest.mark.parametrize("printed,misread", [("HB-4207", "HB-4807"), ("¥3,556", "¥3,356"), ("7M-221", "7M-227"),
                                             ("10,900", "10,988"), ("12/5", "12/6")],
                         ids=["part_no", "money", "letter_inside", "two_digits", "date"])
def test_recheck_replaces_digits_and_keeps_letters_and_separators(digits, printed, misread):
    checked = digits.recheck_digits(Reading(misread, 0.9, "tesseract"), fax_print(printed))
    assert checked is not None
    reading, changed = checked
    assert reading.text == printed and changed >= 1
    assert reading.engine == "tesseract" and "digits-rechecked" in reading.notes


def test_recheck_confirms_a_right_reading(digits):
    reading, changed = digits.recheck_digits(Reading("HB-4207", 0.9, "tesseract"), fax_print("HB-4207"))
    assert changed == 0 and reading.text == "HB-4207"


def test_recheck_abstains_when_glyphs_and_characters_do_not_match(digits):
    # Tesseract lost a digit: five glyphs for three characters -> no opinion
    assert digits.recheck_digits(Reading("120", 0.9, "tesseract"), fax_print("12045")) is None
    assert digits.recheck_digits(Reading("AB-", 0.9, "tesseract"), fax_print("AB-")) is None  # no digit


def test_two_tesseract_reads_agreeing_on_a_wrong_digit_go_to_review(digits):
    # both Tesseract reads say 3,850 (a 6 read as 8); the digit model reads 3,650
    engine = FakeEngine({"f": ("3,850", 0.95)}, {"f": ("3850", 0.93)})
    reading = FieldReader(engine, digits).read(make_crop(fax_print("3,650"), type="money"))
    assert "engines_disagree" in reading.notes
    assert reading.text == "3,850"  # Tesseract's value shown; the clerk decides


def test_tesseract_and_digit_model_agreeing_stay_ok(digits):
    engine = FakeEngine({"f": ("3,650", 0.95)}, {"f": ("3650", 0.93)})
    reading = FieldReader(engine, digits).read(make_crop(fax_print("3,650"), type="money"))
    assert reading.text == "3,650" and "engines_disagree" not in reading.notes


class MoreReads(FakeEngine):
    def __init__(self, answers, restricted, more):
        super().__init__(answers, restricted)
        self.more = more

    def read_more(self, crop):
        return [Reading(text=t, confidence=c, engine=self.name) for t, c in self.more]


def test_disagreeing_reads_vote_with_the_digit_models_versions(digits):
    # Tesseract: 18,480 twice, 18,400 once, 18.460 once -> its own vote says 18,480;
    # the digit model reads the 8 at the end as 0 in each: 18,400 wins, still review
    engine = MoreReads({"f": ("18,480", 0.9)}, {"f": ("18,460", 0.8)}, [("18,480", 0.9), ("18,400", 0.7)])
    crop = make_crop(fax_print("18,400"), type="money")
    assert FieldReader(engine).read(crop).text == "18,480"  # without the digit model
    reading = FieldReader(engine, digits).read(crop)
    assert reading.text == "18,400" and "engines_disagree" in reading.notes


def test_in_a_number_field_a_letter_is_a_misread_digit(digits):
    image = fax_print("8,100")
    reading, changed = digits.recheck_digits(Reading("B,100", 0.9, "tesseract"), image, numeric=True)
    assert reading.text == "8,100" and changed == 1
    # in a part number a letter is a letter: kept
    reading, changed = digits.recheck_digits(Reading("B,100", 0.9, "tesseract"), image)
    assert reading.text == "B,100" and changed == 0
