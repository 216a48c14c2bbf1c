"""``faxflow templates check``, the part that needs OCR: can each template's keywords be
read on its own reference image?

A keyword that is not printed on the form (a typo, 注文書 for a sheet titled 発注書) or
that Tesseract cannot read there (a logo, outlined letters) never confirms a page; when
none of a template's keywords can be read, every page of that form is stored as an
unknown form. The loader cannot see that (it reads no images); this check reads the
reference the way form recognition reads pages (``templates.match.unreadable_keywords``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from faxflow.templates.model import Template, TemplateProblem


def _keywords_line(path: Path) -> int:
    """The line of ``keywords:`` in the YAML file (else of ``match:``, else 1)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return 1
    for pattern in (r"^\s*keywords\s*:", r"^\s*match\s*:"):
        for i, line in enumerate(lines, 1):
            if re.match(pattern, line):
                return i
    return 1


def keyword_problems(templates: Iterable[Template], *, tessdata: Path | None = None,
                     read_text=None) -> list[TemplateProblem]:
    """One problem per template with keywords the OCR cannot find on its reference image:
    an error when none of them can be found (every page would be an unknown form), a
    warning when some can. Without Tesseract: one warning saying nothing was checked.
    ``read_text``: the caller's Tesseract read (``templates new`` has one open), else one
    is started here."""
    from faxflow.ocr.engines.tesseract import TesseractEngine, read_keywords
    from faxflow.templates.errors import FaxflowError
    from faxflow.templates.match import unreadable_keywords

    templates = [t for t in templates if t.match_words]
    if not templates:
        return []
    if read_text is None:
        try:
            engine = TesseractEngine(tessdata=tessdata)
        except FaxflowError as exc:
            return [TemplateProblem(templates[0].path, 1,
                                    f"keywords not checked against the reference images: {exc}", "warning")]

        def read_text(img) -> str:  # as form recognition reads (ingest.pipeline.Pipeline._read_text)
            return read_keywords(engine, img)

    out = []
    for t in templates:
        try:
            missing = unreadable_keywords(t, read_text)
        except FaxflowError as exc:  # the reference image is missing or broken
            out.append(TemplateProblem(t.path, 1, f"keywords not checked: {exc}", "warning"))
            continue
        if not missing:
            continue
        every = len(missing) == len(t.match_words)
        msg = (f"match keyword(s) {', '.join(missing)} cannot be read on the reference image "
               f"{Path(t.reference_image).name}"
               + ("; no keyword can, so every page of this form would be stored as an unknown form"
                  if every else "; pages are confirmed by the others only")
               + ". Use words printed plainly on the form (its title, the company name), "
                 "spelt as printed.")
        out.append(TemplateProblem(t.path, _keywords_line(t.path), msg,
                                   "error" if every else "warning"))
    return out
