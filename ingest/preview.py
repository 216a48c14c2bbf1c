"""`faxflow templates preview`: draw a template's zones over its reference image, or
over a real scan after clean-up and alignment, so a newcomer can see that it fits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from faxflow.templates.errors import TemplateError


@dataclass
class PreviewResult:
    path: Path
    messages: list[str] = field(default_factory=list)


def preview_template(name: str, *, scan: Path | None = None, page: int = 1, out: Path | None = None,
                     template_dirs: Iterable[Path | None] = ()) -> PreviewResult:
    import cv2

    from faxflow.ocr.crop import draw_zones
    from faxflow.templates.loader import load_templates

    tset = load_templates(template_dirs)
    template = tset.get(name)
    if template is None:
        problems = [str(p) for p in tset.problems if name in str(p.path)]
        known = ", ".join(t.name for t in tset.templates)
        raise TemplateError(
            f"no usable template named {name!r} (known: {known})" + ("; " + "; ".join(problems) if problems else ""),
            f"テンプレート {name} が見つからないか、エラーがあります")
    out = Path(out) if out else Path(f"{name}_preview.png")
    messages: list[str] = []
    if scan is None:
        image = cv2.imread(str(template.reference_image), cv2.IMREAD_GRAYSCALE)
        drawn = draw_zones(image, template)
        messages.append(f"zones of {name} over its reference image {template.reference_image.name}")
    else:
        from faxflow.ingest.pages import load_pages
        from faxflow.ingest.source import identify
        from faxflow.ocr.align import align_page
        from faxflow.ocr.clean import clean_page
        from faxflow.templates.match import match_page

        pages = load_pages(identify(Path(scan)))
        if not 1 <= page <= len(pages):
            raise TemplateError(f"{scan} has {len(pages)} page(s), not page {page}",
                                f"{scan} には {page} ページ目がありません")
        pg = clean_page(pages[page - 1])
        match = match_page(pg.image, pg.dpi, [template])
        if match.template is None:
            messages.append(f"WARNING: the scan does not look like {name} ({match.reason}); "
                            "aligning anyway, check the result carefully")
        aligned = align_page(pg, template, match if match.template is not None else None)
        drawn = draw_zones(aligned.image, template, aligned)
        messages.append(f"alignment score {aligned.score:.3f} ({'ok' if aligned.ok else 'DOUBTFUL'}); "
                        f"candidates: {match.candidates}")
    cv2.imwrite(str(out), drawn)
    return PreviewResult(out, messages)
