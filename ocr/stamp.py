"""Seal impressions (印影, はんこ): a cell whose only ink is a stamp.

A staff or approval cell is often stamped with a red name seal rather than written in.
A colour scan or photo keeps the seal as mid-grey ink; Tesseract then reads its ring as
④, ⑧, ® or の. What a seal says (a surname in seal script, often rotated) is not text we
transcribe, so such a cell is read as nothing and asked about (``stamp``), instead of
showing the clerk a made-up character.

``is_seal_only(image)`` is True when the cell's ink is, almost all of it, one closed
ring (circle, or square for a company seal) of at least half the cell's height that
holds ink inside it, and nothing else of note lies outside that ring. A FAX that broke
the ring leaves it to the normal readers (their doubt flags the value anyway). A lone
circled or boxed glyph (①, 回) alone in a free-text cell looks the same and is asked
about too: the value is never guessed, only flagged.
"""

from __future__ import annotations

import cv2
import numpy as np

from faxflow.ocr.shapes import outlines

__all__ = ["is_seal_only"]

MIN_HEIGHT = 0.5      # ring height / cell height
ASPECT = (0.7, 1.45)  # ring width / height (a circle or a square, slightly squashed)
MIN_HOLE = 0.2        # area of the ring's hole / area of its bounding box
MIN_SOLIDITY = 0.9    # outline area / its convex hull's: round or square, not a glyph
THIN_FILL = 0.35      # ... with this little ink in its box, it is a ring with a name in it
MAX_FILL = 0.55       # ink inside the ring's box / its area: a ring, not a blob
MIN_INSIDE = 0.05     # ink inside the hole / ink of the ring: a seal has a name in it
MIN_SHARE = 0.9       # share of all the cell's ink within the ring's box


def is_seal_only(image: np.ndarray) -> bool:
    """``image``: a cell crop, uint8, 0 = ink, 255 = paper."""
    ink = (image < 128).astype(np.uint8)
    total = int(ink.sum())
    h = image.shape[0]
    if total == 0 or h < 12:
        return False
    # uneven seal ink leaves gaps in the ring: bridge a few pixels before tracing it
    k = max(3, (h // 40) * 2 + 1)
    closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    best = None
    for c, (x, y, w, bh), holes in outlines(closed):
        if bh < MIN_HEIGHT * h or not ASPECT[0] <= w / bh <= ASPECT[1]:
            continue
        hole = max((cv2.contourArea(k) for k in holes), default=0.0)
        area = cv2.contourArea(c)
        hull = cv2.contourArea(cv2.convexHull(c))
        # a ring: a large hole, or (the name touching the ring splits the hole) an
        # outline as full as its hull around little ink
        ringed = hole >= MIN_HOLE * w * bh or (hull > 0 and area >= MIN_SOLIDITY * hull
                                                and int(ink[y:y + bh, x:x + w].sum()) <= THIN_FILL * w * bh)
        if ringed and (best is None or w * bh > best[2] * best[3]):
            best = (x, y, w, bh)
    if best is None:
        return False
    x, y, w, bh = best
    box = ink[y:y + bh, x:x + w]
    in_box = int(box.sum())
    if in_box < MIN_SHARE * total or in_box > MAX_FILL * w * bh:
        return False
    # ink strictly inside the ring (its inner 60%): the name cut in the seal
    iy, ix = int(bh * 0.2), int(w * 0.2)
    inner = int(box[iy:bh - iy, ix:w - ix].sum())
    return inner >= MIN_INSIDE * in_box
