"""The small interface every recognition engine implements.

An engine turns one ``FieldCrop`` into a ``Reading``. Engines are created once per
process (model loading is the expensive part) and are not thread-safe.
Tests use fakes with the same shape (see tests/conftest.py).
"""

from __future__ import annotations

from typing import Protocol

from faxflow.templates.types import FieldCrop, Reading


class Engine(Protocol):
    name: str

    def read(self, crop: FieldCrop) -> Reading: ...


BLANK = Reading(text="", confidence=1.0, engine="blank")
