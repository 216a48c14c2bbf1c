"""``faxflow templates new``: a draft template from a scan of the blank form.

Loads the first page of the image (PDF, TIFF incl. FAX standard mode, PNG, JPEG, the
same loader as the pipeline), cleans it as pages are cleaned (a received FAX of a filled
form is often the only copy of a new customer's form), stores it as the template's
reference PNG beside the YAML, and writes the draft found by :mod:`faxflow.ocr.scaffold`. The result is checked
with the template loader at once, so what the IT helper gets either loads or says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faxflow.templates.errors import InputError


MAX_PAGES = 5  # pages of the scan looked at for the form


@dataclass
class NewTemplate:
    yaml_path: Path
    image_path: Path
    header: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    keywords: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    errors: int = 0


def new_template(name: str, image: Path, folder: Path, *, force: bool = False, tessdata: Path | None = None,
                 page: int | None = None) -> NewTemplate:
    """``page``: the 1-based page showing the form; None: the first pages' best."""
    import re
    from itertools import islice

    import cv2

    from faxflow.ingest.pages import iter_pages
    from faxflow.ingest.source import identify
    from faxflow.ocr.clean import clean_page
    from faxflow.ocr.engines.tesseract import TesseractEngine, read_keywords
    from faxflow.ocr.scaffold import build_draft, find_cells, to_yaml
    from faxflow.templates.loader import parse_template

    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise InputError(f"template name {name!r}: use lower case letters, digits and _ (e.g. tanaka_order)",
                         f"テンプレート名「{name}」: 半角英小文字・数字・_ を使ってください（例: tanaka_order）")
    if not Path(image).is_file():
        raise InputError(f"{image}: no such file (give the scan of the blank form)",
                         f"{image}: ファイルが見つかりません（白紙の用紙のスキャンを指定してください）")
    folder.mkdir(parents=True, exist_ok=True)
    yaml_path, png_path = folder / f"{name}.yaml", folder / f"{name}.png"
    if not force and (yaml_path.exists() or png_path.exists()):
        raise InputError(f"{yaml_path} or {png_path} already exists (use --force to replace them)",
                         f"{yaml_path.name} がすでにあります（置き換えるには --force）")
    # The reference is the page as form recognition sees pages: a received FAX (often the
    # only copy of a new customer's form) loses its header line and specks, is squared
    # up from standard mode, turned upright and deskewed. Of a FAX with a cover sheet,
    # the page with the most ruled cells is the form (the first few pages are looked at).
    source = iter_pages(identify(Path(image)))
    picked = islice(source, MAX_PAGES) if page is None else islice(source, page - 1, page)
    pages = [clean_page(p, tessdata=tessdata) for p in picked]
    if not pages:
        raise InputError(f"{image}: no page {page}" if page else f"{image}: no page found",
                         f"{Path(image).name}: {page} ページ目がありません" if page
                         else f"{Path(image).name}: ページがありません")
    form = pages[0] if len(pages) == 1 else max(pages, key=lambda p: len(find_cells(p.image, float(p.dpi))))
    engine = TesseractEngine(tessdata)

    def read_text(im) -> str:  # as form recognition reads (ingest.pipeline.Pipeline._read_text)
        return read_keywords(engine, im)

    more = []
    try:  # PP-OCR reads the thin print of a FAXed form's labels where Tesseract fails
        from faxflow.ocr.engines.ppocr import PPOCREngine

        more.append(PPOCREngine().read_line)
    except (ImportError, OSError):
        pass
    code_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/.,"
    draft = build_draft(form.image, float(form.dpi), read_text, tuple(more),
                        lambda im: engine.recognize(im, lang="eng", psm=7, whitelist=code_chars).text)
    turned = [n for n in form.notes if str(n).startswith("rotated-")]
    if turned:
        draft.notes.append("the scan was turned for the reference (" + ", ".join(map(str, turned))
                           + "): check the reference image is upright")
    if not cv2.imwrite(str(png_path), form.image):
        raise InputError(f"could not write {png_path}", f"{png_path} に書き込めません")
    yaml_path.write_text(to_yaml(draft, name, png_path.name, float(form.dpi), Path(image).name), encoding="utf-8")
    template, problems = parse_template(yaml_path)
    if template is not None:  # the keywords drafted must read where pages are read
        from faxflow.ingest.template_check import keyword_problems

        problems = list(problems) + keyword_problems([template], read_text=read_text)
    return NewTemplate(yaml_path=yaml_path, image_path=png_path,
                       header=[h[0] for h in draft.header], columns=[c[0] for c in draft.columns],
                       rows=draft.rows, keywords=list(draft.keywords), notes=list(draft.notes),
                       problems=[str(p) for p in problems],
                       errors=sum(1 for p in problems if p.severity == "error"))
