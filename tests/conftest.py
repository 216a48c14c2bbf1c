"""Shared test helpers: fonts, a text renderer, crops, and a fake OCR engine."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

GOTHIC = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
MINCHO = "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf"


def render_text(text: str, *, size: int = 40, font: str = GOTHIC, pad: int = 12) -> np.ndarray:
    """Black text on white, uint8, like a cleaned and upscaled crop."""
    f = ImageFont.truetype(font, size)
    x0, y0, x1, y1 = f.getbbox(text)
    im = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 255)
    ImageDraw.Draw(im).text((pad - x0, pad - y0), text, font=f, fill=0)
    return np.asarray(im).copy()


def make_crop(image: np.ndarray, *, type: str = "text", hint: str = "printed", name: str = "f",
              ink: float | None = None, **spec_kw):
    from faxflow.templates.model import FieldSpec
    from faxflow.templates.types import FieldCrop

    spec = FieldSpec(name=name, type=type, hint=hint, **spec_kw)
    if ink is None:
        ink = float((image < 128).mean())
    return FieldCrop(sha256="0" * 64, page_index=0, name=name, box=(0, 0, image.shape[1], image.shape[0]),
                     image=image, spec=spec, ink=ink)


class FakeEngine:
    """An engine that returns prepared readings by field name (tests of the reading stage)."""

    name = "fake"

    def __init__(self, answers: dict[str, tuple[str, float]], restricted: dict[str, tuple[str, float]] | None = None):
        self.answers = answers
        self.restricted = restricted or {}
        self.calls: list[str] = []

    def read(self, crop):
        from faxflow.templates.types import Reading

        self.calls.append(crop.name)
        text, conf = self.answers.get(crop.name, ("", 0.0))
        return Reading(text=text, confidence=conf, engine=self.name)

    def read_restricted(self, crop):
        from faxflow.templates.types import Reading

        if crop.name not in self.restricted:
            return None
        text, conf = self.restricted[crop.name]
        return Reading(text=text, confidence=conf, engine=self.name)


@pytest.fixture(scope="session")
def tesseract():
    from faxflow.ocr.engines.tesseract import TesseractEngine

    return TesseractEngine()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
