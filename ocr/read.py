"""Choose the engine for each field and cross-check readings.

* ``printed``: Tesseract reads the cell; numeric, date and part-number fields (and
  fields with a list of ``allowed`` values) are read a second time with only the
  characters they may hold, free text a second time by another model and, when the two
  agree, a third time at another scale (all three must agree: free text has no pattern
  to check it). If the first two (parsed) values differ, the engine reads again
  (``read_more``), the value most reads agree on is shown (``vote``) and the reading
  carries ``engines_disagree`` (-> review).
* printed numbers, dates and part numbers also get a second opinion from our digit
  model (``HandwritingEngine.recheck_digits``: the printed glyphs matched with the
  characters Tesseract read, each digit classified again; letters and separators stay
  Tesseract's). Two Tesseract reads that agree but whose digits the model reads
  otherwise -> ``engines_disagree`` (Tesseract's value shown); when the Tesseract reads
  disagree, each read's digit-model version votes too.
* ``handwritten``: our digit model (numbers, dates, part numbers); free text falls
  back to Tesseract, whose confidence on handwriting is low (-> review).
* a free-text cell whose only ink is a seal impression (はんこ, ``ocr/stamp.py``) reads
  as nothing, flagged ``stamp`` (and ``unreadable``): a seal is not text to transcribe.
* ``auto``: decided per cell from the ink (``looks_handwritten``, AUTO_PRINTED and
  AUTO_HANDWRITTEN); when the ink is ambiguous both engines read and must agree.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from faxflow.ocr.engines.base import BLANK, Engine
from faxflow.ocr.stamp import is_seal_only
from faxflow.templates.parse import parse_text, text_key
from faxflow.templates.types import FieldCrop, Reading

# Below this fraction of dark pixels (after ruling removal) a cell is empty.
EMPTY_INK = 0.002
# What a cell holding only a seal impression (ocr/stamp.py) reads as: nothing, and why.
SEAL = Reading("", 0.0, "seal", notes=("stamp",))
# ``auto`` cells: looks_handwritten() at or above AUTO_HANDWRITTEN -> digit model; at or
# below AUTO_PRINTED -> Tesseract; between -> both, and they must agree.
AUTO_HANDWRITTEN = 0.7
AUTO_PRINTED = 0.15  # (0.3 sent 6 of 272 handwritten cells to Tesseract alone: silent misreads)
CHECKED_TYPES = ("integer", "quantity", "money", "date", "part_number")
HANDWRITING_TYPES = ("integer", "quantity", "money", "date", "part_number")
# ``auto`` cells read by both engines that disagree: the handwriting reading is shown
# when its confidence is above this
HAND_WINS = 0.5
# Printed digits rechecked by the digit model (docs/DEVELOPING.md, "Working on the
# readers"): a digit the model reads otherwise at least this sure makes two agreeing
# Tesseract reads ``engines_disagree`` ...
DIGIT_FLAG = 0.8
# ... and at least this sure replaces Tesseract's digit in the versions that vote
DIGIT_VOTE = 0.5
# Closed-set fields (``_closed_set``): the glyph matcher's confidence (its margin over
# the runner-up value / 0.25) needed to confirm the two Tesseract reads, to make one read
# plus the matcher ``ok``, and to put two agreeing reads in doubt; and the confidence
# then given (above the text threshold).
GLYPH_AGREE = 0.2
GLYPH_ONE = 0.4
GLYPH_DOUBT = 0.4
GLYPH_SURE = 0.99
# The engine trained apart from Tesseract (``FieldReader.other``, PP-OCR): when the two
# Tesseract reads disagree and it agrees with neither, its own reading is shown if it is
# valid and its least sure character is at least this sure (0.8 / 0.5 / 0.3 measured on
# seed 424242's printed crops: 75.2 / 76.4 / 75.7% right, for numbers and text alike)
OTHER_SHOW = 0.5


def _same(a: Reading, b: Reading, crop: FieldCrop, ref_date: date | None) -> bool:
    if crop.spec.type == "text":  # spacing is not content in Japanese text
        return text_key(a.text) == text_key(b.text)
    pa = parse_text(a.text, crop.spec, ref_date=ref_date)
    pb = parse_text(b.text, crop.spec, ref_date=ref_date)
    if pa.problems or pb.problems:
        return pa.text == pb.text
    return pa.value == pb.value


def _key(r: Reading, crop: FieldCrop, ref_date: date | None) -> tuple[str, bool]:
    """(what the reading means, whether it is a valid value of the field)."""
    if crop.spec.type == "text" and not crop.spec.allowed:
        return text_key(r.text), bool(r.text.strip())
    p = parse_text(r.text, crop.spec, ref_date=ref_date)
    problems = [q for q in p.problems if not q.startswith("year_inferred")]
    return (str(p.value) if not problems and p.value is not None else p.text), not problems and bool(p.text)


def vote(readings: list[Reading], crop: FieldCrop, ref_date: date | None) -> Reading:
    """The reading most of ``readings`` agree on (by meaning, not spelling); a valid
    value of the field (parses, fits its pattern or list) breaks ties, then confidence.
    Returned with its own confidence; the caller flags the field: the reads disagreed."""
    scores: dict[str, float] = {}
    best: dict[str, Reading] = {}
    for r in readings:
        key, valid = _key(r, crop, ref_date)
        if not key:
            continue
        scores[key] = scores.get(key, 0.0) + 1.0 + (0.5 if valid else 0.0) + 0.1 * r.confidence
        if key not in best or r.confidence > best[key].confidence:
            best[key] = r
    if not scores:
        return readings[0]
    return best[max(scores, key=scores.get)]


def _flag(r: Reading, code: str, conf: float | None = None, others=()) -> Reading:
    """``r`` with reason ``code``; ``others``: the readings it was chosen from, whose
    texts are kept as ``alternatives``."""
    alts = r.alternatives + tuple(o.text for o in others if o.text)
    alts = tuple(t for t in dict.fromkeys(alts) if t != r.text)
    return replace(r, notes=r.notes + (code,), confidence=r.confidence if conf is None else conf,
                   alternatives=alts)


class FieldReader:
    """Reads FieldCrops with the right engine(s). One per worker process.

    ``other``: a second printed-text engine trained apart from Tesseract
    (``ocr.engines.ppocr``), or None; its ``read`` may return None (no opinion)."""

    def __init__(self, printed: Engine, handwriting: Engine | None = None, other=None, *,
                 hand_sure: float = 0.9):
        self.printed = printed
        self.handwriting = handwriting
        self.other = other
        self.hand_sure = hand_sure  # the review threshold of handwritten readings

    def read(self, crop: FieldCrop, *, ref_date: date | None = None) -> Reading:
        if crop.ink < EMPTY_INK:
            return BLANK
        spec = crop.spec
        if spec.type == "text" and not spec.allowed and is_seal_only(crop.image):
            return SEAL  # a name seal: nothing to transcribe, the clerk is asked
        hw_ok = self.handwriting is not None and spec.type in HANDWRITING_TYPES
        if spec.hint == "handwritten" and hw_ok:
            return self.handwriting.read(crop)  # type: ignore[union-attr]
        if spec.hint == "auto" and hw_ok:
            p = self._handwritten_probability(crop)
            if p >= AUTO_HANDWRITTEN:
                hand = self.handwriting.read(crop)  # type: ignore[union-attr]
                if hand.confidence >= self.hand_sure:
                    return hand
                return self._unsure_hand(crop, hand, ref_date)
            if p > AUTO_PRINTED:
                return self._both(crop, ref_date)
        return self._printed(crop, ref_date)

    def _handwritten_probability(self, crop: FieldCrop) -> float:
        fn = getattr(self.handwriting, "looks_handwritten", None)
        return float(fn(crop.image)) if fn is not None else 0.5

    def _printed(self, crop: FieldCrop, ref_date: date | None) -> Reading:
        primary = self.printed.read(crop)
        restricted = getattr(self.printed, "read_restricted", None)
        second = restricted(crop) if restricted is not None else None
        if second is None:  # free text: a second read at another scale
            variant = getattr(self.printed, "read_variant", None)
            if variant is None or not primary.text:
                return primary
            second = variant(crop)
        closed = self._closed_set(crop, primary, second, ref_date) if crop.spec.allowed else None
        if closed is not None:
            return closed
        other = self.other.read(crop) if self.other is not None else None
        if other is not None and not other.text:
            other = None  # no ink it could read: no opinion
        if _same(primary, second, crop, ref_date):
            confirm = getattr(self.printed, "read_confirm", None)
            third = confirm(crop) if confirm is not None else None
            if third is not None and not _same(primary, third, crop, ref_date):
                return _flag(primary, "engines_disagree", others=[third])
            agreed = replace(primary, confidence=max(primary.confidence, second.confidence))
            if other is not None and not _same(agreed, other, crop, ref_date):
                # the two Tesseract reads agree, the engine trained apart does not: review,
                # and more reads vote on the value shown (seed 424242: 12 more of 2,441
                # printed crops right than showing the agreement)
                readings = [primary, second, other] + self._more_reads(crop)
                return _flag(vote(readings, crop, ref_date), "engines_disagree", others=readings)
            checked = self._recheck(crop, agreed, DIGIT_FLAG)
            if checked is not None and checked[1]:
                # both Tesseract reads agree, the digit model does not: review. Tesseract's
                # value is shown (right more often than the model's: measured, docs)
                return _flag(agreed, "engines_disagree", others=[checked[0]])
            return agreed
        if other is not None:
            decided = self._other_decides(crop, primary, second, other, ref_date)
            if decided is not None:
                return _flag(decided, "engines_disagree", others=[primary, second, other])
        readings = [primary, second] + ([other] if other is not None else []) + self._more_reads(crop)
        # each read's digit-model version votes too (it repeats a read whose digits the
        # model confirms, and outvotes Tesseract's 0/8/9/6, 5/3, 1/7 confusions)
        rechecked = [self._recheck(crop, r, DIGIT_VOTE) for r in readings]
        readings += [c[0] for c in rechecked if c is not None]
        return _flag(vote(readings, crop, ref_date), "engines_disagree", others=readings)

    def _other_decides(self, crop: FieldCrop, primary: Reading, second: Reading, other: Reading,
                       ref_date: date | None) -> Reading | None:
        """When Tesseract's two reads disagree: the read the other engine agrees with, or
        the other engine's own reading when it is valid and sure; None: vote as before.
        (The field is flagged either way.)"""
        key, valid = _key(other, crop, ref_date)
        for r in (primary, second):
            if key and _key(r, crop, ref_date)[0] == key:
                return r
        return other if valid and other.confidence >= OTHER_SHOW else None

    def _more_reads(self, crop: FieldCrop) -> list[Reading]:
        """Tesseract's extra reads for a vote (other text heights), asked for only when
        the reads so far disagree."""
        more = getattr(self.printed, "read_more", None)
        return list(more(crop)) if more is not None else []

    def _recheck(self, crop: FieldCrop, reading: Reading, sure: float) -> tuple[Reading, int] | None:
        """The digit model's version of a printed reading of a number, date or part
        number (``HandwritingEngine.recheck_digits``), or None."""
        fn = getattr(self.handwriting, "recheck_digits", None)
        if fn is None or crop.spec.type not in CHECKED_TYPES or not reading.text:
            return None
        # in a number a letter is a misread digit: the model may replace it too
        return fn(reading, crop.image, sure, crop.spec.type in ("integer", "quantity", "money"))

    # -- fields with a list of ``allowed`` values: Tesseract's two reads + glyph matcher --
    def _closed_set(self, crop: FieldCrop, primary: Reading, second: Reading,
                    ref_date: date | None) -> Reading | None:
        """The engine's closed-set glyph match (``match_allowed``) combined with the two
        Tesseract reads; None: decide the usual way. Measured on 730 generated printed
        unit cells (docs/DEVELOPING.md): the two reads agreed on a listed value 466 times,
        never wrongly; of the other 264 the matcher was right 211 times, the usual vote
        of six Tesseract reads 95."""
        match_fn = getattr(self.printed, "match_allowed", None)
        m = match_fn(crop) if match_fn is not None else None
        if m is None:
            return None
        mk = _key(m, crop, ref_date)[0]
        pk, p_valid = _key(primary, crop, ref_date)
        if p_valid and _same(primary, second, crop, ref_date):
            if mk == pk and m.confidence >= GLYPH_AGREE:  # all three agree: 458 of 458 right
                return replace(primary, confidence=max(primary.confidence, second.confidence, GLYPH_SURE))
            if mk != pk and m.confidence >= GLYPH_DOUBT:  # a sure matcher says otherwise
                return _flag(primary, "engines_disagree")
            return None
        for r in (primary, second):  # the matcher (sure) and one read agree: 59 of 59 right
            k, valid = _key(r, crop, ref_date)
            if valid and k == mk and m.confidence >= GLYPH_ONE:
                return replace(m, confidence=max(r.confidence, GLYPH_SURE))
        return _flag(m, "engines_disagree", others=[primary, second])

    def _unsure_hand(self, crop: FieldCrop, hand: Reading, ref_date: date | None) -> Reading:
        """An ``auto`` cell that looks handwritten, read unsure by the digit model: print
        that looks rough (FAXed, bold) is taken for handwriting too, so the printed
        engines read it as well. Their clean agreement (Tesseract's reads and PP-OCR) is
        shown instead of a differing unsure handwriting reading; the value stays in
        review either way (measured on seed 424242: of 115 printed cells judged
        handwritten, 53 -> 63 right; handwritten cells unchanged, none newly ok)."""
        printed = self._printed(crop, ref_date)
        if _same(printed, hand, crop, ref_date):
            return hand  # the same value, still only as sure as the digit model
        clean = "engines_disagree" not in printed.notes and _key(printed, crop, ref_date)[1]
        return _flag(printed if clean else hand, "engines_disagree",
                     min(printed.confidence, hand.confidence) if clean else None,
                     others=[printed, hand] + [replace(printed, text=t) for t in printed.alternatives])

    def _both(self, crop: FieldCrop, ref_date: date | None) -> Reading:
        printed = self._printed(crop, ref_date)
        hand = self.handwriting.read(crop)  # type: ignore[union-attr]
        if _same(printed, hand, crop, ref_date):
            best = printed if printed.confidence >= hand.confidence else hand
            return replace(best, confidence=max(printed.confidence, hand.confidence))
        # the digit model reads print as well; Tesseract's confidence on handwriting is
        # no guide (often high on a wrong reading), so the digit model's reading is shown
        # unless it is itself unsure (measured on 393 ambiguous generated cells: 75% vs
        # 55% right for handwriting, the same for print; docs/handwriting.md)
        best = hand if hand.confidence > HAND_WINS else printed
        return _flag(best, "engines_disagree",
                     others=[printed, hand] + [replace(printed, text=t) for t in printed.alternatives])
