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
SECOND_TEXT_LANG = "Japanese"
PRIMARY_LANG = {"integer": "eng", "quantity": "eng", "money": "eng", "part_number": "eng"}


def soften(image: np.ndarray, ksize: int = 5) -> np.ndarray:
    """Tesseract's LSTM models were trained on anti-aliased text; a binarized FAX crop
    reads better after a small blur (measured on generated FAX crops: 73 -> 84 of 116
    fields right with a 5x5 Gaussian)."""
    import cv2

    return cv2.GaussianBlur(image, (ksize, ksize), 0) if ksize > 1 else image


def text_height(image: np.ndarray, multiline: bool = False) -> int:
    """Height in pixels of the text line(s) in a crop (rows with ink; for several lines
    the median line)."""
    rows = (image < 128).any(axis=1)
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return image.shape[0]
    if not multiline:
        return int(idx[-1] - idx[0] + 1)
    runs, start, prev = [], idx[0], idx[0]
    gap = max(1, image.shape[0] // 40)
    for i in idx[1:]:
        if i - prev > gap + 1:
            runs.append(prev - start + 1)
            start = i
        prev = i
    runs.append(prev - start + 1)
    runs = [r for r in runs if r >= 3] or runs
    return int(np.median(runs))


def at_height(image: np.ndarray, height: float, multiline: bool = False, blur: int = 5) -> np.ndarray:
    """The crop rescaled so its text is ``height`` px high, then softened.

    Measured on 1,943 printed crops of generated FAXes/scans (bench notes in
    docs/DEVELOPING.md): numbers, dates and codes read best at ~24 px (69% right
    against 64% at the crop stage's 40 px), free text at ~28 px with a 3x3 blur (55%
    against 49%). Shrinking with INTER_AREA also anti-aliases the binary crop."""
    import cv2

    h = text_height(image, multiline)
    scale = float(np.clip(height / max(h, 1), 0.25, 2.0))
    if abs(scale - 1.0) > 0.03:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interp)
    return soften(image, blur)


def close_gaps(image: np.ndarray, max_gap: float = 0.6) -> np.ndarray:
    """Shrink wide empty gaps between characters of one line to ``max_gap`` x the text
    height. Digits written or printed in comb boxes (one box per digit) stand a box
    apart; Tesseract then takes each for a word and guesses letters (``80O2244``)."""
    ink_cols = (image < 128).any(axis=0)
    idx = np.flatnonzero(ink_cols)
    if idx.size < 2:
        return image
    h = text_height(image)
    limit = max(2, int(round(max_gap * h)))
    keep = np.ones(image.shape[1], bool)
    gaps = np.flatnonzero(np.diff(idx) > limit + 1)
    if gaps.size == 0:
        return image
    for g in gaps:
        a, b = idx[g] + 1, idx[g + 1]  # empty columns a..b-1
        keep[a + limit // 2: b - (limit - limit // 2)] = False
    return image[:, keep]


def unslash_zeros(image: np.ndarray) -> np.ndarray:
    """Slashed zeros (0 with a diagonal stroke, common in monospaced and dot-matrix print)
    redrawn as plain rings: Tesseract's models never saw one and read 8, 9 or 6 - the
    same wrong digit in both reads, i.e. a silent error (seen: 20952 -> 29952).

    A slashed zero is a digit-shaped component (taller than wide) with exactly two holes
    that overlap vertically and sit one higher than the other: an 8's holes are one
    above the other without overlap, a φ's side by side at the same height."""
    import cv2

    from faxflow.ocr.shapes import outlines

    ink = (image < 128).astype(np.uint8)
    out = None
    for c, (x, y, w, h), inner_outlines in outlines(ink, cv2.CHAIN_APPROX_NONE):
        if h < 10 or not 1.1 <= h / max(w, 1) <= 2.8:
            continue
        holes = [cv2.boundingRect(k) for k in inner_outlines if cv2.contourArea(k) >= 0.03 * w * h]
        if len(holes) != 2:
            continue
        (_, a0, _, ah), (_, b0, _, bh) = holes
        overlap = min(a0 + ah, b0 + bh) - max(a0, b0)
        shift = abs((a0 + ah / 2) - (b0 + bh / 2))
        if overlap < 0.25 * min(ah, bh) or shift < 0.15 * h:
            continue  # an 8 (one hole above the other) or a φ (side by side)
        filled = np.zeros_like(ink)
        cv2.drawContours(filled, [c], -1, 1, thickness=-1)
        area = int(np.count_nonzero(ink[y:y + h, x:x + w] & filled[y:y + h, x:x + w]))
        sw = max(1, int(round(area / max(cv2.arcLength(c, True), 1.0))))  # stroke width
        inner = cv2.erode(filled, np.ones((2 * sw + 1, 2 * sw + 1), np.uint8))
        if out is None:
            out = image.copy()
        out[filled > 0] = 255
        out[(filled > 0) & (inner == 0)] = 0
    return image if out is None else out


# (text height px, blur) of each read. Typed fields: the first read (primary language)
# and the restricted read at TYPED; when they disagree, both again at TYPED_MORE and a
# vote. Free text: 'jpn' and the Japanese script model at TEXT must agree; else
# TEXT_MORE ('jpn') and the script model at TEXT_VARIANT join the vote.
TYPED = (24, 5)
TYPED_MORE = ((32, 5),)
TEXT = (28, 3)
TEXT_VARIANT = (24, 1)
TEXT_MORE = ((24, 1), (32, 5))


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


def read_keywords(engine, image: np.ndarray) -> str:
    """How form recognition reads a region for its keywords (``templates.match``'s
    ``read_text``; also ``templates check`` and ``templates new``, so that a keyword they
    pass is one a page can confirm): ``jpn`` PSM 6, and when layout analysis finds
    nothing there, the region as one raw line (PSM 13) - Tesseract drops some large bold
    titles whole (a 67-px Mincho 御注文書: nothing at PSM 6 or 7, right at PSM 13)."""
    text = engine.recognize(image, lang="jpn", psm=6).text
    if not text.strip():
        text = engine.recognize(image, lang="jpn", psm=13).text
    return text


class TesseractEngine:
    name = "tesseract"

    def __init__(self, tessdata: Path | None = None, text_lang: str = "jpn"):
        if tesserocr is None:
            raise EngineError("the tesserocr package is not installed (pip install tesserocr)",
                              "tesserocr がインストールされていません")
        langs = tuple(sorted(set(text_lang.split("+")) | {"eng"}))
        self.tessdata = find_tessdata(tessdata, langs)
        self.text_lang = text_lang
        # Tesseract's Japanese *script* model (apt: tesseract-ocr-script-jpan) was trained
        # apart from 'jpn' and errs elsewhere: its agreement is the check on free text.
        self.second_text_lang = SECOND_TEXT_LANG if (self.tessdata / f"{SECOND_TEXT_LANG}.traineddata").is_file() \
            else None
        self._apis: dict[tuple[str, int, str], "tesserocr.PyTessBaseAPI"] = {}
        self._lock = threading.Lock()
        self._last_prepared: tuple[np.ndarray, bool, np.ndarray] | None = None

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
            image = np.ascontiguousarray(image, dtype=np.uint8)
            h, w = image.shape[:2]
            # raw bytes: no PIL image and no PNG/BMP encoding per cell
            api.SetImageBytes(image.tobytes(), w, h, 1, w)
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

    def _whitelist(self, crop: FieldCrop) -> tuple[str, str] | None:
        """(language, characters) of the restricted read, or None (free text)."""
        entry = WHITELISTS.get(crop.spec.type)
        if entry:
            return entry
        if crop.spec.allowed:  # a closed list (units, yes/no...): only its characters
            chars = "".join(sorted(set("".join(crop.spec.allowed)) - {" "}))
            return ("jpn", chars) if chars else None
        return None

    def _prepared(self, crop: FieldCrop) -> np.ndarray:
        """The crop with slashed zeros redrawn (and comb gaps closed), done once per crop:
        a field is read two to six times."""
        gaps = crop.spec.type != "text" and not crop.spec.multiline
        last = self._last_prepared
        if last is not None and last[0] is crop.image and last[1] == gaps:
            return last[2]
        image = unslash_zeros(crop.image)
        if gaps:
            image = close_gaps(image)
        self._last_prepared = (crop.image, gaps, image)
        return image

    def _at(self, crop: FieldCrop, look: tuple[int, int]) -> np.ndarray:
        return at_height(self._prepared(crop), look[0], crop.spec.multiline, look[1])

    def _look(self, crop: FieldCrop) -> tuple[int, int]:
        return TYPED if crop.spec.type in WHITELISTS else TEXT  # a list of words reads like text

    def read(self, crop: FieldCrop) -> Reading:
        """Unrestricted read: Japanese for text and dates, English for numbers and codes."""
        return self.recognize(self._at(crop, self._look(crop)), lang=self._lang(crop), psm=self._psm(crop))

    def _second_lang(self, crop: FieldCrop) -> str | None:
        return self.second_text_lang if self._lang(crop) == "jpn" else None

    def read_variant(self, crop: FieldCrop) -> Reading:
        """Free text, which has no pattern to check, must agree with a second read to be
        ``ok``: by the Japanese script model when installed (on 330 generated text crops
        the two models agreed on a wrong text 25 times, against 41 for 'jpn' read at two
        scales), else by 'jpn' at another text height without blur."""
        second = self._second_lang(crop)
        if second is not None:
            return self.recognize(self._at(crop, TEXT), lang=second, psm=self._psm(crop))
        return self.recognize(self._at(crop, TEXT_VARIANT), lang=self._lang(crop), psm=self._psm(crop))

    def read_confirm(self, crop: FieldCrop) -> Reading | None:
        """Free text that two models agree on is read once more, by 'jpn' at another
        text height without blur, and must agree again (on 1,012 generated text crops:
        17 -> 13 wrong-but-unflagged for 24 more flags). None for other fields: their
        pattern and type checks do that job."""
        if self._whitelist(crop) is not None or self._second_lang(crop) is None:
            return None
        return self.recognize(self._at(crop, TEXT_VARIANT), lang=self._lang(crop), psm=self._psm(crop))

    def read_restricted(self, crop: FieldCrop) -> Reading | None:
        """A second, independent read with only the characters the field may hold (its
        type's, or those of its ``allowed`` values); None for free text. The reading
        stage requires both reads to agree."""
        entry = self._whitelist(crop)
        if not entry:
            return None
        lang, chars = entry
        return self.recognize(self._at(crop, self._look(crop)), lang=lang, psm=self._restricted_psm(crop),
                              whitelist=chars)

    def match_allowed(self, crop: FieldCrop) -> Reading | None:
        """The field's ``allowed`` value whose renderings look most like the crop's ink
        (``ocr.engines.glyphs``), confidence = the margin over the runner-up; None for
        other fields, multi-line ones, or when the matcher has no answer (no ink, no
        font for the values, nothing close). ``ocr.read`` combines it with the reads."""
        if not crop.spec.allowed or crop.spec.multiline:
            return None
        from faxflow.ocr.engines import glyphs

        m = glyphs.match_image(crop.image, tuple(str(a) for a in crop.spec.allowed))
        if m is None or not m.value:
            return None
        return Reading(text=m.value, confidence=m.confidence, engine="glyphs")

    def _restricted_psm(self, crop: FieldCrop) -> int:
        if crop.spec.type not in WHITELISTS and not any(" " in a for a in crop.spec.allowed):
            # one word from a list (個, kg): restricted single-line reads of one kanji
            # often come back empty; as a single word they do not
            return tesserocr.PSM.SINGLE_WORD
        return self._psm(crop)

    def read_more(self, crop: FieldCrop) -> list[Reading]:
        """More readings for a vote, asked for only when the first two disagree: the
        same reads at other text heights (on 1,943 generated crops a vote of four lifted
        numbers/codes from 69% to 73% right, free text from 55% to 58%)."""
        entry = self._whitelist(crop)
        psm, lang = self._psm(crop), self._lang(crop)
        if entry is None:
            second = self._second_lang(crop)
            looks = [k for k in TEXT_MORE if second is not None or k != TEXT_VARIANT]  # (read already)
            out = [self.recognize(self._at(crop, look), lang=lang, psm=psm) for look in looks]
            if second is not None:
                out.append(self.recognize(self._at(crop, TEXT_VARIANT), lang=second, psm=psm))
            return out
        out = []
        for look in (TYPED_MORE if crop.spec.type in WHITELISTS else TEXT_MORE):
            image = self._at(crop, look)
            out.append(self.recognize(image, lang=lang, psm=psm))
            out.append(self.recognize(image, lang=entry[0], psm=self._restricted_psm(crop), whitelist=entry[1]))
        return out
