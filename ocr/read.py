"""Choose the engine for each field and cross-check readings.

* ``printed``: Tesseract reads the cell; numeric, date and part-number fields are read
  a second time with only the characters their type allows, free text a second time
  from a rescaled copy. If the two (parsed) values differ the reading carries
  ``engines_disagree`` (-> review).
* ``handwritten``: our digit model (numbers, dates, part numbers); free text falls
  back to Tesseract, whose confidence on handwriting is low (-> review).
* ``auto``: decided per cell from the ink (``looks_handwritten``); when the ink is
  ambiguous both engines read and must agree.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from faxflow.ocr.engines.base import BLANK, Engine
from faxflow.templates.parse import parse_text, text_key
from faxflow.templates.types import FieldCrop, Reading

# Below this fraction of dark pixels (after ruling removal) a cell is empty.
EMPTY_INK = 0.002
CHECKED_TYPES = ("integer", "quantity", "money", "date", "part_number")
HANDWRITING_TYPES = ("integer", "quantity", "money", "date", "part_number")


def _same(a: Reading, b: Reading, crop: FieldCrop, ref_date: date | None) -> bool:
    if crop.spec.type == "text":  # spacing is not content in Japanese text
        return text_key(a.text) == text_key(b.text)
    pa = parse_text(a.text, crop.spec, ref_date=ref_date)
    pb = parse_text(b.text, crop.spec, ref_date=ref_date)
    if pa.problems or pb.problems:
        return pa.text == pb.text
    return pa.value == pb.value


def _flag(r: Reading, code: str, conf: float | None = None) -> Reading:
    return replace(r, notes=r.notes + (code,), confidence=r.confidence if conf is None else conf)


class FieldReader:
    """Reads FieldCrops with the right engine(s). One per worker process."""

    def __init__(self, printed: Engine, handwriting: Engine | None = None):
        self.printed = printed
        self.handwriting = handwriting

    def read(self, crop: FieldCrop, *, ref_date: date | None = None) -> Reading:
        if crop.ink < EMPTY_INK:
            return BLANK
        spec = crop.spec
        hw_ok = self.handwriting is not None and spec.type in HANDWRITING_TYPES
        if spec.hint == "handwritten" and hw_ok:
            return self.handwriting.read(crop)  # type: ignore[union-attr]
        if spec.hint == "auto" and hw_ok:
            p = self._handwritten_probability(crop)
            if p >= 0.7:
                return self.handwriting.read(crop)  # type: ignore[union-attr]
            if p > 0.3:
                return self._both(crop, ref_date)
        return self._printed(crop, ref_date)

    def _handwritten_probability(self, crop: FieldCrop) -> float:
        fn = getattr(self.handwriting, "looks_handwritten", None)
        return float(fn(crop.image)) if fn is not None else 0.5

    def _printed(self, crop: FieldCrop, ref_date: date | None) -> Reading:
        primary = self.printed.read(crop)
        if crop.spec.type not in CHECKED_TYPES:
            variant = getattr(self.printed, "read_variant", None)
            if variant is None or not primary.text:
                return primary
            if not _same(primary, variant(crop), crop, ref_date):
                return _flag(primary, "engines_disagree")
            return primary
        restricted = getattr(self.printed, "read_restricted", None)
        if restricted is None:
            return primary
        second = restricted(crop)
        if second is None:
            return primary
        if not _same(primary, second, crop, ref_date):
            return _flag(primary, "engines_disagree")
        return replace(primary, confidence=max(primary.confidence, second.confidence))

    def _both(self, crop: FieldCrop, ref_date: date | None) -> Reading:
        printed = self._printed(crop, ref_date)
        hand = self.handwriting.read(crop)  # type: ignore[union-attr]
        if _same(printed, hand, crop, ref_date):
            best = printed if printed.confidence >= hand.confidence else hand
            return replace(best, confidence=max(printed.confidence, hand.confidence))
        best = hand if hand.confidence > printed.confidence else printed
        return _flag(best, "engines_disagree")
