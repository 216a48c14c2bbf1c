"""Seal impressions (ocr/stamp.py): a cell holding only a name seal reads as nothing and
is asked about; names, numbers and blob-like kanji are not taken for seals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from faxflow.ocr.stamp import is_seal_only
from faxflow.samples import generate
from faxflow.samples.forms import get_font


def _cell(w=260, h=80) -> Image.Image:
    return Image.new("RGB", (w, h), (255, 255, 255))


def _ink(img: Image.Image, threshold: int = 225) -> np.ndarray:
    """As the clean-up leaves it: 0 = ink, 255 = paper (a red seal is mid-grey in a scan)."""
    grey = np.asarray(img.convert("L"))
    return np.where(grey < threshold, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("square", [False, True])
def test_seals_alone_in_a_cell_are_seals(square):
    """Round name seals and square company seals as the generator draws them (uneven
    red ink, rotated up to 18 degrees). A seal whose ring the ink broke into pieces is
    left to the readers (flagged by their doubt), so the bar is most, not all."""
    found = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        img = generate._draw_stamp(_cell(), (90, 4, 176, 76), ["高橋", "田中", "木村"][seed % 3], 1.0, rng,
                                   square=square)
        found += is_seal_only(_ink(img))
    assert found >= 9  # measured: 12 of 12 round, 9 of 12 square


@pytest.mark.parametrize("text", ["高橋", "田中", "0", "8", "山田 印", "A-12"])
def test_written_names_and_marks_are_not_seals(text):
    img = _cell()
    ImageDraw.Draw(img).text((20, 10), text, font=get_font("gothic", 56), fill=(0, 0, 0))
    assert not is_seal_only(_ink(img))


def test_a_seal_over_a_written_name_is_not_a_seal_only_cell():
    rng = np.random.default_rng(3)
    img = _cell(360)
    ImageDraw.Draw(img).text((10, 14), "担当 山田", font=get_font("gothic", 48), fill=(0, 0, 0))
    img = generate._draw_stamp(img, (250, 4, 336, 76), "山田", 1.0, rng, square=False)
    assert not is_seal_only(_ink(img))


def test_an_empty_cell_is_not_a_seal():
    assert not is_seal_only(np.full((80, 200), 255, np.uint8))


def test_the_reader_returns_nothing_for_a_seal_and_make_value_flags_it():
    from faxflow.ocr.read import FieldReader
    from faxflow.templates.model import FieldSpec
    from faxflow.templates.parse import make_value
    from faxflow.templates.types import FieldCrop

    img = _ink(generate._draw_stamp(_cell(), (90, 4, 176, 76), "高橋", 1.0, np.random.default_rng(1), square=False))
    crop = FieldCrop(sha256="ab" * 32, page_index=0, name="staff", box=(0, 0, 260, 80), image=img,
                     spec=FieldSpec("staff", "text"), ink=float((img == 0).mean()))

    class Never:  # the seal is settled before any engine is asked
        name = "never"

        def read(self, crop):
            raise AssertionError("an engine was asked to read a seal")

    reading = FieldReader(Never(), None).read(crop)
    value = make_value(crop, reading, threshold=0.9)
    assert value.text == "" and value.status == "review" and "stamp" in value.reasons
