"""Printed text with Tesseract, through tesserocr's in-process API.

One ``PyTessBaseAPI`` per language is created lazily and kept for the life of the
process: starting the tesseract program per field costs ~0.3 s in model loading,
while a loaded API reads a cell in a few milliseconds.

Settings depend on the field type: a single text line (PSM 7) for cells, a block
(PSM 6) for multi-line text; numeric, date and part-number fields get a second,
character-restricted read (``read_restricted``); ``ocr.read`` requires the two to agree.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from faxflow.templates.errors import EngineError
from faxflow.templates.types import FieldCrop, Reading

try:  # pragma: no cover - import failure is reported when the engine is created
    import tesserocr
except ImportError:  # pragma: no cover
    tesserocr = None

TESSDATA_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
    "C:/Program Files/Tesseract-OCR/tessdata",
)

# The restricted second read, per field type: (language, characters it may produce).
# Dates need jpn for 年月日 and era names; the others read best with eng.
# The primary read uses eng for numbers and part numbers (measured: better on FAXed
# digits than jpn), so the restricted read uses jpn: two different models must agree.
WHITELISTS = {
    "integer": ("jpn", "0123456789,"),
    "quantity": ("jpn", "0123456789,"),
    "money": ("jpn", "0123456789,.¥\\"),
    "date": ("jpn", "0123456789/.-年月日令和平成昭元RHS"),
    "part_number": ("jpn", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/."),
}
PRIMARY_LANG = {"integer": "eng", "quantity": "eng", "money": "eng", "part_number": "eng"}


def soften(image: np.ndarray) -> np.ndarray:
    """Tesseract's LSTM models were trained on anti-aliased text; a binarized FAX crop
    reads better after a small blur (measured on generated FAX crops: 73 -> 84 of 116
    fields right with a 5x5 Gaussian)."""
    import cv2

    return cv2.GaussianBlur(image, (5, 5), 0)


def find_tessdata(explicit: Path | None = None, languages: tuple[str, ...] = ("jpn", "eng")) -> Path:
    """The tessdata folder holding every language needed, or EngineError with the fix."""
    candidates = [Path(explicit)] if explicit else [Path(c) for c in TESSDATA_CANDIDATES]
    for c in candidates:
        if all((c / f"{lang}.traineddata").is_file() for lang in languages):
            return c
    langs = ", ".join(languages)
    raise EngineError(
        f"Tesseract language data ({langs}) not found in {', '.join(map(str, candidates))}. "
        "Install it: sudo apt-get install tesseract-ocr tesseract-ocr-jpn (or run 'make setup').",
        f"Tesseract の言語データ ({langs}) が見つかりません。IT担当者に "
        "'sudo apt-get install tesseract-ocr tesseract-ocr-jpn' の実行を依頼してください。",
    )


class TesseractEngine:
    name = "tesseract"

    def __init__(self, tessdata: Path | None = None, text_lang: str = "jpn"):
        if tesserocr is None:
            raise EngineError("the tesserocr package is not installed (pip install tesserocr)",
                              "tesserocr がインストールされていません")
        langs = tuple(sorted(set(text_lang.split("+")) | {"eng"}))
        self.tessdata = find_tessdata(tessdata, langs)
        self.text_lang = text_lang
        self._apis: dict[tuple[str, int, str], "tesserocr.PyTessBaseAPI"] = {}
        self._lock = threading.Lock()

    # -- api management ---------------------------------------------------------------
    def _api(self, lang: str, psm: int, whitelist: str = "") -> "tesserocr.PyTessBaseAPI":
        key = (lang, psm, whitelist)
        api = self._apis.get(key)
        if api is None:
            try:
                api = tesserocr.PyTessBaseAPI(path=str(self.tessdata) + "/", lang=lang, psm=psm,
                                              oem=tesserocr.OEM.LSTM_ONLY)
            except RuntimeError as exc:
                raise EngineError(f"Tesseract could not load language {lang!r} from {self.tessdata}: {exc}",
                                  f"Tesseract の言語 {lang} を読み込めません") from exc
            # Cells are small and isolated: no dictionary, keep spaces as printed.
            api.SetVariable("load_system_dawg", "0")
            api.SetVariable("load_freq_dawg", "0")
            api.SetVariable("preserve_interword_spaces", "1")
            if whitelist:
                api.SetVariable("tessedit_char_whitelist", whitelist)
            self._apis[key] = api
        return api

    def close(self) -> None:
        for api in self._apis.values():
            api.End()
        self._apis.clear()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- reading ----------------------------------------------------------------------
    def recognize(self, image: np.ndarray, *, lang: str, psm: int, whitelist: str = "") -> Reading:
        """Read an image with the given settings; confidence is the weakest character's.

        An image without a single dark pixel is blank: Tesseract's LSTM invents text on
        empty input (seen: '間 胃' on a white cell), so it is never asked.
        """
        if image.size == 0 or int(image.min()) >= 128:
            return Reading(text="", confidence=1.0, engine=self.name, notes=("blank",))
        with self._lock:
            api = self._api(lang, psm, whitelist)
            api.SetImage(Image.fromarray(image))
            api.SetSourceResolution(300)
            api.Recognize()
            chars: list[str] = []
            confs: list[float] = []
            it = api.GetIterator()
            level = tesserocr.RIL.SYMBOL
            if it is not None:
                for sym in tesserocr.iterate_level(it, level):
                    try:
                        s = sym.GetUTF8Text(level)
                    except RuntimeError:  # tesserocr raises for an empty symbol
                        continue
                    if not s:
                        continue
                    if sym.IsAtBeginningOf(tesserocr.RIL.WORD) and chars and not sym.IsAtBeginningOf(
                            tesserocr.RIL.TEXTLINE):
                        chars.append(" ")
                        confs.append(100.0)
                    elif sym.IsAtBeginningOf(tesserocr.RIL.TEXTLINE) and chars:
                        chars.append("\n")
                        confs.append(100.0)
                    chars.append(s)
                    confs.extend([sym.Confidence(level)] * len(s))
            text = "".join(chars).strip()
        if not text:
            return Reading(text="", confidence=0.0, engine=self.name, notes=("no_text",))
        real = [c for ch, c in zip(chars, confs) if not ch.isspace()]
        conf = max(0.0, min(real) / 100.0) if real else 0.0
        return Reading(text=text, confidence=conf, engine=self.name,
                       char_confidences=tuple(c / 100.0 for c in confs[: len(text)]))

    def _psm(self, crop: FieldCrop) -> int:
        return tesserocr.PSM.SINGLE_BLOCK if crop.spec.multiline else tesserocr.PSM.SINGLE_LINE

    def _lang(self, crop: FieldCrop) -> str:
        return crop.spec.lang or PRIMARY_LANG.get(crop.spec.type, self.text_lang)

    def read(self, crop: FieldCrop) -> Reading:
        """Unrestricted read: Japanese for text and dates, English for numbers and codes."""
        return self.recognize(soften(crop.image), lang=self._lang(crop), psm=self._psm(crop))

    def read_variant(self, crop: FieldCrop) -> Reading:
        """The same field read from a 1.3x rescaled copy. A sound reading survives the
        change of scale; Tesseract's confident garbage on damaged or misplaced crops
        usually does not (measured on generated FAX crops), so free text, which has no
        pattern to check, must agree with this variant to be ``ok``."""
        import cv2

        big = cv2.resize(crop.image, None, fx=1.3, fy=1.3, interpolation=cv2.INTER_CUBIC)
        return self.recognize(soften(big), lang=self._lang(crop), psm=self._psm(crop))

    def read_restricted(self, crop: FieldCrop) -> Reading | None:
        """A second, independent read with only the characters the field type may hold
        (None for free text). The reading stage requires both reads to agree."""
        entry = WHITELISTS.get(crop.spec.type)
        if not entry:
            return None
        lang, chars = entry
        return self.recognize(soften(crop.image), lang=lang, psm=self._psm(crop), whitelist=chars)
