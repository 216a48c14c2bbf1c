"""The reading stage: engine choice by hint, and two readings that must agree."""

import numpy as np
import pytest

from conftest import FakeEngine, make_crop
from faxflow.ocr.read import FieldReader

INK = np.zeros((40, 120), np.uint8)


class FakeHand(FakeEngine):
    name = "handwriting"

    def __init__(self, answers, p_hand: float):
        super().__init__(answers)
        self.p_hand = p_hand

    def looks_handwritten(self, image):
        return self.p_hand


CASES = [
    # id, hint, type, printed answer, restricted answer, hand answer, p_hand, expect text, expect disagree, engine
    ("printed_agree", "printed", "quantity", ("120", 0.9), ("120", 0.95), None, 0.0, "120", False, "fake"),
    # two reads that disagree: the surer one is shown, flagged
    ("printed_disagree", "printed", "quantity", ("120", 0.9), ("128", 0.95), None, 0.0, "128", True, "fake"),
    ("printed_text_single_read", "printed", "text", ("ボルト", 0.9), None, None, 0.0, "ボルト", False, "fake"),
    ("hand_hint", "handwritten", "quantity", ("999", 0.9), ("999", 0.9), ("37", 0.97), 0.0, "37", False,
     "handwriting"),
    ("auto_looks_hand", "auto", "date", ("1215", 0.5), ("1215", 0.5), ("12/5", 0.96), 0.9, "12/5", False,
     "handwriting"),
    ("auto_looks_printed", "auto", "quantity", ("40", 0.93), ("40", 0.93), ("46", 0.99), 0.1, "40", False, "fake"),
    # looks handwritten but the digit model is unsure: rough print, read by the printed
    # engines too; their clean agreement is shown, still in review
    ("auto_looks_hand_unsure", "auto", "quantity", ("2,700", 0.95), ("2700", 0.95), ("2,71111", 0.4), 0.9,
     "2,700", True, "fake"),
    ("auto_looks_hand_unsure_same", "auto", "quantity", ("37", 0.95), ("37", 0.95), ("37", 0.6), 0.9,
     "37", False, "handwriting"),
    # a little handwritten (0.15-0.3): both engines read, and must agree
    ("auto_slightly_hand", "auto", "quantity", ("40", 0.93), ("40", 0.93), ("46", 0.99), 0.2, None, True, None),
    ("auto_ambiguous_agree", "auto", "quantity", ("40", 0.93), ("40", 0.93), ("40", 0.99), 0.5, "40", False,
     None),
    ("auto_ambiguous_disagree", "auto", "quantity", ("40", 0.93), ("40", 0.93), ("46", 0.99), 0.5, None, True,
     None),
    # disagreeing on an ambiguous cell: the digit model's reading unless it is unsure
    ("auto_ambiguous_hand_shown", "auto", "quantity", ("40", 0.99), ("40", 0.99), ("46", 0.8), 0.5, "46", True,
     "handwriting"),
    ("auto_ambiguous_hand_unsure", "auto", "quantity", ("40", 0.6), ("40", 0.6), ("46", 0.4), 0.5, "40", True,
     "fake"),
]


@pytest.mark.parametrize("hint,ftype,printed,restricted,hand,p_hand,text,disagree,engine",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_engine_choice_and_agreement(hint, ftype, printed, restricted, hand, p_hand, text, disagree, engine):
    printed_engine = FakeEngine({"f": printed}, {"f": restricted} if restricted else {})
    hand_engine = FakeHand({"f": hand}, p_hand) if hand else None
    reading = FieldReader(printed_engine, hand_engine).read(make_crop(INK, type=ftype, hint=hint))
    if text is not None:
        assert reading.text == text
    assert ("engines_disagree" in reading.notes) is disagree
    if engine is not None:
        assert reading.engine == engine


def test_empty_cell_is_not_read():
    engine = FakeEngine({"f": ("7", 0.99)})
    reading = FieldReader(engine).read(make_crop(np.full((40, 120), 255, np.uint8), type="quantity"))
    assert reading.text == "" and reading.engine == "blank" and engine.calls == []


def test_disagreement_becomes_review_value():
    from faxflow.templates.parse import make_value

    crop = make_crop(INK, type="quantity")
    reading = FieldReader(FakeEngine({"f": ("120", 0.99)}, {"f": ("128", 0.99)})).read(crop)
    value = make_value(crop, reading, threshold=0.8)
    assert value.status == "review" and "engines_disagree" in value.reasons
    assert value.raw_text == "120" and value.confidence > 0


def test_free_text_must_survive_a_rescaled_second_read():
    class Variant(FakeEngine):
        def read_variant(self, crop):
            from faxflow.templates.types import Reading

            return Reading(text=self.variant, confidence=0.9, engine=self.name)

    crop = make_crop(INK, type="text")
    stable = Variant({"f": ("六角 ボルト", 0.95)})
    stable.variant = "六角ボルト"
    assert "engines_disagree" not in FieldReader(stable).read(crop).notes
    garbage = Variant({"f": ("エス", 0.95)})
    garbage.variant = "ゴロエズ"
    assert "engines_disagree" in FieldReader(garbage).read(crop).notes


class MoreReads(FakeEngine):
    """An engine that reads again when asked (``read_more``) with prepared answers."""

    def __init__(self, answers, restricted, more):
        super().__init__(answers, restricted)
        self.more = more
        self.more_calls = 0

    def read_more(self, crop):
        from faxflow.templates.types import Reading

        self.more_calls += 1
        return [Reading(text=t, confidence=c, engine=self.name) for t, c in self.more]


def test_disagreeing_reads_are_settled_by_a_vote_and_still_flagged():
    # eng read '51,1,8)84' (not a number), restricted '511884', more reads mostly 511884
    engine = MoreReads({"f": ("51,1,8)84", 0.97)}, {"f": ("511884", 0.90)},
                       [("511884", 0.93), ("511864", 0.95)])
    reading = FieldReader(engine).read(make_crop(INK, type="integer"))
    assert reading.text == "511884" and "engines_disagree" in reading.notes
    assert engine.more_calls == 1


def test_the_rival_readings_travel_with_the_value():
    """What the outvoted reads said stays with a number (for the amount check, rules.py)."""
    from faxflow.templates.parse import make_value

    engine = MoreReads({"f": ("1,280", 0.97)}, {"f": ("1250", 0.90)}, [("1280", 0.93), ("12S0", 0.5)])
    crop = make_crop(INK, type="money")
    reading = FieldReader(engine).read(crop)
    assert reading.text in ("1,280", "1280") and {"1250", "12S0"} <= set(reading.alternatives)
    value = make_value(crop, reading, threshold=0.8)
    # parsed, distinct, and never the shown value itself (12S0 -> 1250 with a look-alike: not clean)
    assert value.value == 1280 and list(value.alternatives) == [1250]


def test_agreeing_reads_ask_for_no_more():
    engine = MoreReads({"f": ("1,200", 0.97)}, {"f": ("1200", 0.95)}, [("999", 0.99)])
    reading = FieldReader(engine).read(make_crop(INK, type="quantity"))
    assert reading.text == "1,200" and "engines_disagree" not in reading.notes
    assert engine.more_calls == 0


def test_a_valid_value_wins_a_tie():
    # one read fits the field's pattern, the other does not: the valid one is shown
    engine = MoreReads({"f": ("AB-12B4", 0.99)}, {"f": ("AB-1234", 0.90)}, [])
    crop = make_crop(INK, type="part_number", pattern=r"^[A-Z]{2}-\d{4}$")
    reading = FieldReader(engine).read(crop)
    assert reading.text == "AB-1234" and "engines_disagree" in reading.notes


def test_free_text_two_models_agree_but_a_third_read_does_not():
    from faxflow.templates.types import Reading

    class Three(FakeEngine):
        def read_variant(self, crop):
            return Reading(text="ボルトセット", confidence=0.99, engine=self.name)

        def read_confirm(self, crop):
            return Reading(text=self.third, confidence=0.99, engine=self.name)

    crop = make_crop(INK, type="text")
    engine = Three({"f": ("ボルトセット", 0.99)})
    engine.third = "ボルトセット"
    assert "engines_disagree" not in FieldReader(engine).read(crop).notes
    engine.third = "ホルトセット"  # the dakuten seen at one scale only: a clerk looks
    assert "engines_disagree" in FieldReader(engine).read(crop).notes


class FakeOther(FakeEngine):
    """A second printed engine (PP-OCR's place in FieldReader): its answer or no opinion."""

    name = "ppocr"


OTHER_CASES = [
    # id, type, printed, restricted, other answer, expect text, expect flagged, engine
    # the two Tesseract reads agree and so does the other engine: ok
    ("all_agree", "quantity", ("120", 0.9), ("120", 0.95), ("120", 0.99), "120", False, "fake"),
    # they agree, the other engine does not: review, Tesseract's value shown
    ("other_doubts_agreement", "quantity", ("120", 0.9), ("120", 0.95), ("128", 0.99), "120", True, "fake"),
    # they disagree: the read the other engine agrees with is shown (flagged)
    ("other_picks_a_read", "money", ("1,280", 0.97), ("1,200", 0.6), ("1200", 0.7), "1,200", True, "fake"),
    # agrees with neither but sure and valid: its own reading is shown (flagged)
    ("other_shown", "quantity", ("128", 0.9), ("126", 0.9), ("120", 0.9), "120", True, "ppocr"),
    # agrees with neither and unsure: the usual vote, flagged
    ("other_unsure", "quantity", ("12O", 0.9), ("120", 0.5), ("128", 0.2), None, True, None),
    # no opinion (nothing read): as without the engine
    ("other_blank", "quantity", ("120", 0.9), ("120", 0.95), ("", 0.0), "120", False, "fake"),
    # free text: two Tesseract models agree, the other engine reads another word
    ("text_doubted", "text", ("ホルト", 0.99), None, ("ボルト", 0.99), "ホルト", True, "fake"),
]


@pytest.mark.parametrize("ftype,printed,restricted,other,text,flagged,engine",
                         [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_second_printed_engine(ftype, printed, restricted, other, text, flagged, engine):
    class Variant(FakeEngine):  # free text: a second Tesseract model reads the same
        def read_variant(self, crop):
            return self.read(crop)

    printed_engine = Variant({"f": printed}, {"f": restricted} if restricted else {})
    reading = FieldReader(printed_engine, None, FakeOther({"f": other})).read(make_crop(INK, type=ftype))
    if text is not None:
        assert reading.text == text
    assert ("engines_disagree" in reading.notes) is flagged
    if engine is not None:
        assert reading.engine == engine


def test_other_engine_without_opinion_changes_nothing():
    class NoOpinion:
        name = "ppocr"

        def read(self, crop):
            return None

    engine = FakeEngine({"f": ("120", 0.9)}, {"f": ("128", 0.95)})
    crop = make_crop(INK, type="quantity")
    assert FieldReader(engine, None, NoOpinion()).read(crop) == FieldReader(engine).read(crop)


def test_more_reads_vote_when_the_other_engine_doubts_an_agreement():
    class WithMore(FakeEngine):
        def read_more(self, crop):
            from faxflow.templates.types import Reading

            return [Reading("564", 0.9, self.name)] * 3

    engine = WithMore({"f": ("6", 0.95)}, {"f": ("6", 0.95)})
    reading = FieldReader(engine, None, FakeOther({"f": ("564", 0.99)})).read(make_crop(INK, type="money"))
    assert reading.text == "564" and "engines_disagree" in reading.notes
