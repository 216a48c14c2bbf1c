"""Recognise the form on a page: which template, and roughly where it lies.

``match_page(image, dpi, templates, read_text=...)`` compares the page with every
template's reference image and returns a ``MatchResult``: the template (or None with
a reason: an unknown form is a normal outcome, never an exception), a coarse 3x3
transform page -> reference pixels, and the evidence.

How:
1. Both images are brought to a common working resolution (``WORK_DPI``, ~1170 px on
   the long side of A4) using their dpi (a page whose dpi is implausible is scaled by
   its long side instead). ORB features - rotation invariant, so a page left at
   90/180/270 degrees is found too - are matched with Lowe's ratio test (one match per
   reference feature) and RANSAC fits a similarity; affine and homography fits (phone
   photos) are kept as alternatives. Reference features come only from the *printed*
   form: ink outside the template's field boxes and table bodies, plus ruling, so a
   filled-in reference image does not teach the matcher its handwriting. A quick pass
   uses the page's ``QUICK_FEATURES`` strongest features; every feature is used for the
   templates that pass (a better coarse fit) or for all when none does.
2. A plausible fit (``MIN_INLIERS``, scale in ``SCALE_RANGE`` - FAX machines reduce
   B4/A3 to A4 -, angle near a multiple of 90) is verified by overlay
   (``overlay_score``): the page warped onto the reference must cover its printed
   pixels (recall) and its ink outside the fill-in zones must lie on them (precision).
   A doubtful overlay (< ``GUIDED_BELOW``) is improved by guided matching (features
   matched only near where the fit puts them) and a patch refit (``_tile_models``,
   dense correlation of printed-form patches; a curved photo). Pass: ``MIN_SCORE``.
3. Nothing found: the form is slid over the upright page at ``CORR_DPI``
   (``_correlate``; a FAX that lost its fine print), needing ``CORR_MIN_SCORE``; then
   the page is retried turned by 90/270/180 degrees.
4. Keywords and anchors: a passing template that declares ``keywords`` or ``anchors``
   is confirmed with the ``read_text`` OCR callback. Where each keyword is printed is
   found once on the reference (``_keyword_boxes``: the header band's runs of print,
   tallest first); a page then reads just those runs (ruling painted out), a fifth of
   the time of reading its whole header band. When one of them does not show there (a
   page too degraded, a keyword the reference does not print), the header band (top
   30% of the page warped into the reference frame), the anchor boxes, and if need be
   the whole page are read as before; each region is tried at a few scales
   (``_ocr_variants``), text is compared
   NFKC, without spaces, OCR look-alikes equal, one error per three characters allowed
   (``fuzzy_contains``). None found: rejected (the same stationery from another
   customer) - unless the page fits that one form alone (overlay >= ``UNREAD_MIN_SCORE``)
   and its print where the keywords are looks like the reference's, square by
   character-sized square (``_keyword_look`` >= ``KEYWORD_LOOK_MIN``): a FAX too faint
   or broken for the OCR, returned with ``confirmed=False`` (every value to review).
   Several passing: most hits, then the higher score. Without ``read_text``
   the geometric winner is returned with ``keywords-unchecked`` in the notes.

Calibration (tests/test_match.py and generated samples, 160 pages of 12 forms): right
form 0.59-1.0, wrong form <= 0.55 after refits (typically < 0.2), 0 false matches.

Reference models (features, masks, patches) are computed once per template and
reference file (``reference_for``, cached in memory); ``ocr.align`` reuses them and the
patch machinery here (``Patches``, ``select_patches``, ``find_patches``). This module
uses NumPy and OpenCV and, of ours, only the template model and errors (dependency
rule: ``templates/`` is the bottom of the graph).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from faxflow.templates.errors import TemplateError
from faxflow.templates.model import Template

WORK_DPI = 100.0  # common resolution for features and the coarse check
FINE_DPI = 200.0  # resolution (at most) of the masks ocr.align refines and scores with
N_FEATURES = 2000
QUICK_FEATURES = 600  # strongest page features tried first
ORB_PAD = 48  # work pixels of white around the page before its features are found
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 3.0  # work pixels (0.76 mm)
MIN_INLIERS = 20  # random matches between unrelated forms give ~10-20 inliers, degenerate scale
MAX_SKEW_DEG = 12.0  # the transform's angle must be this close to 0/90/180/270
# page->reference scale (after both are brought to WORK_DPI) that can be real: FAX
# machines reduce B4/A3 originals to A4 (x0.82, x0.71: the form then looks 1.2-1.4x too
# small), copiers enlarge; a photo's dpi is a guess. The overlay check is the real test.
SCALE_RANGE = (0.6, 1.6)
SCALE_RANGE_UNTRUSTED = (0.3, 3.0)  # page dpi implausible: scaled by its long side instead
MIN_SCORE = 0.55  # overlay score a geometric match must reach (good >= 0.8, wrong forms <= 0.35)
OVERLAY_TOL = 2  # work pixels of tolerance in the overlay check
RECALL_ENOUGH = 0.4  # overlay: recall above this no longer lowers the score (see overlay_score)
WORK_INK_LEVEL = 195  # a work pixel is ink when >= ~24% of it was ink at full resolution
GUIDED_BELOW = 0.8  # overlay score below which a guided second matching round is tried
GUIDED_FLOOR = 0.3  # ... and above which the page may still be this form
GUIDED_RADIUS = 12.0  # work pixels (3 mm) around the first fit's prediction
TILE_SEARCH = (24, 8)  # work pixels searched by the patch refit of a doubtful coarse fit
CORR_DPI = 25.0  # fallback search by correlation at this resolution ...
CORR_SCALES = (1.0,)  # ... at these page->reference scales (others correlate falsely well; ORB handles them)
CORR_MIN = 0.35  # ... and its peak must reach this
CORR_MIN_SCORE = 0.7  # a form found by correlation alone needs this overlay score (features: MIN_SCORE)
# keywords the OCR cannot read on a page that fits one form exactly: taken as that form,
# unconfirmed (every value to review), when the fit is this good ...
UNREAD_MIN_SCORE = 0.9
# ... and each keyword's run of print looks like the reference's (``_keyword_look``, the
# worst character-sized square: a FAX of the same print 0.78-0.91, another customer's
# name on the same stationery 0.33)
KEYWORD_LOOK_MIN = 0.55
HEADER_BAND = 0.30  # top fraction of the reference read for keywords
KEYWORDS_NOT_FOUND = "keywords not found: "  # a candidate's reason when only its keywords failed

ReadText = Callable[[np.ndarray], str]


@dataclass(frozen=True, eq=False)
class MatchResult:
    """The outcome of form recognition for one page.

    ``transform`` maps page pixels to reference pixels (3x3, coarse: ~1-3 px at
    200 dpi; ``ocr.align`` refines it). ``rotation`` is the quarter turn found
    (0, 90, 180, 270: degrees the page content is turned counter-clockwise against
    the reference). ``candidates`` lists every template tried with its overlay score,
    best first. ``reason`` says why ``template`` is None.
    """

    template: Template | None
    transform: np.ndarray | None = None
    score: float = 0.0
    inliers: int = 0
    candidates: tuple[tuple[str, float], ...] = ()
    rotation: int = 0
    reason: str | None = None
    notes: tuple[str, ...] = ()
    # False: the keywords could not be read, but the page fits this form alone and its
    # keywords' print looks like the reference's (``_keyword_look``); every value is
    # then sent to review (``form_unconfirmed``)
    confirmed: bool = True

    @property
    def matched(self) -> bool:
        return self.template is not None


# --------------------------------------------------------------------------------------
# images


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Dark pixels (bool). Binary pages split at 128; grey ones by Otsu."""
    gray = to_gray(gray)
    small = gray[::4, ::4]
    mid = np.count_nonzero((small > 40) & (small < 215))
    if mid < 0.02 * small.size:
        return gray < 128
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return gray < max(t, 1)


def line_masks(ink: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical ruling (bool masks): ink runs at least ``min_len`` long.

    A 3-pixel closing across the line direction first bridges the 1-px steps of a line
    that is a little skewed or curved.
    """
    u8 = ink.astype(np.uint8)
    min_len = max(int(min_len), 5)
    hb = cv2.morphologyEx(u8, cv2.MORPH_CLOSE, np.ones((3, 1), np.uint8))
    h = cv2.morphologyEx(hb, cv2.MORPH_OPEN, np.ones((1, min_len), np.uint8))
    vb = cv2.morphologyEx(u8, cv2.MORPH_CLOSE, np.ones((1, 3), np.uint8))
    v = cv2.morphologyEx(vb, cv2.MORPH_OPEN, np.ones((min_len, 1), np.uint8))
    return (h > 0) & ink, (v > 0) & ink


def unruled(img: np.ndarray, dpi: float) -> np.ndarray:
    """A binary image (0 = ink) with its ruling (``line_masks``: runs >= 10 mm) painted
    out: a title's underline read with it often turns the title into nothing."""
    ink = img < 128
    hl, vl = line_masks(ink, int(round(dpi * 0.4)))
    if not (hl.any() or vl.any()):
        return img
    out = img.copy()
    out[hl | vl] = 255
    return out


def zone_mask(template: Template, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Where values get written: header field boxes and table bodies (bool)."""
    m = np.zeros(shape, bool)
    for box in [f.box for f in template.fields] + [t.box for t in template.tables]:
        x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
        m[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return m


def read_image(path: Path) -> np.ndarray | None:
    """Grey uint8 image from any path (also non-ASCII paths on Windows)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:  # transparent background -> white
        alpha = img[:, :, 3:4].astype(np.float32) / 255
        img = (img[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return to_gray(img)


# --------------------------------------------------------------------------------------
# the reference model, cached per template


@dataclass(frozen=True, eq=False)
class Reference:
    """What is computed once per template from its reference image (the full-resolution
    image itself is not kept: a few 300-dpi references would hold hundreds of MB).

    ``shape``/``dpi``: the reference image's. Fine resolution (``fine_scale`` x the
    reference, at most ``FINE_DPI``; used by ``ocr.align``): ``fine_static`` (printed
    form: ink outside the fill-in zones, plus ruling everywhere), ``fine_ink``,
    ``fine_zones`` (field boxes and table bodies), ``fine_lines`` (ruling). Working
    resolution (``WORK_DPI``): ``work_static``, ``work_ink``, ``work_zones`` and the ORB
    features ``keypoints`` (N x 2 float32) / ``descriptors``.
    """

    template_name: str
    shape: tuple[int, int]
    dpi: float
    fine_scale: float
    fine_static: np.ndarray
    fine_ink: np.ndarray
    fine_zones: np.ndarray
    fine_lines: np.ndarray
    work_scale: float
    work_shape: tuple[int, int]
    work_static: np.ndarray
    work_ink: np.ndarray
    work_zones: np.ndarray
    keypoints: np.ndarray
    descriptors: np.ndarray | None
    extra: dict  # per-consumer caches (ocr.align keeps its patches here)


_cache: dict[tuple, Reference] = {}
_lock = threading.Lock()


def _orb(n: int = N_FEATURES) -> cv2.ORB:
    return cv2.ORB_create(nfeatures=n, scaleFactor=1.2, nlevels=6, fastThreshold=10)


def _resize(gray: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1) < 1e-3:
        return gray
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _work(gray: np.ndarray, scale: float) -> np.ndarray:
    return cv2.GaussianBlur(_resize(gray, scale), (3, 3), 0)


def reference_for(template: Template) -> Reference:
    """The template's reference model (cached by template and file mtime).

    Raises ``TemplateError`` when the image cannot be read; ``match_page`` turns that
    into a skipped candidate.
    """
    path = Path(template.reference_image)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise TemplateError(f"reference image {path} not found",
                            f"見本画像 {path} が見つかりません", template=template.name) from exc
    key = (template.name, str(path), mtime, float(template.dpi or 0), repr((template.fields, template.tables)))
    with _lock:
        ref = _cache.get(key)
    if ref is not None:
        return ref
    gray = read_image(path)
    if gray is None:
        raise TemplateError(f"reference image {path} cannot be read as an image",
                            f"見本画像 {path} を画像として読み込めません", template=template.name)
    ref = build_reference(template, gray)
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = ref
    return ref


def _shrink(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask resized to ``shape`` (a pixel is set when >= ~24% of it was)."""
    if mask.shape[:2] == tuple(shape):
        return mask.copy()
    u8 = cv2.resize(mask.astype(np.uint8) * 255, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return u8 > 255 - WORK_INK_LEVEL


def build_reference(template: Template, gray: np.ndarray) -> Reference:
    dpi = float(template.dpi or 200)
    ink = ink_mask(gray)
    hl, vl = line_masks(ink, int(round(dpi * 0.4)))  # ruling: runs >= 10 mm
    lines = hl | vl
    zones = zone_mask(template, ink.shape)
    static = (ink & ~zones) | lines
    h, w = gray.shape[:2]
    fs = min(1.0, FINE_DPI / dpi)
    fshape = (max(1, int(round(h * fs))), max(1, int(round(w * fs))))
    s = WORK_DPI / dpi
    wshape = (max(1, int(round(h * s))), max(1, int(round(w * s))))
    # features only on the printed form (ink outside the fill-in zones, ruling anywhere):
    # a filled-in reference's handwriting would match nothing on other pages
    ref_img = np.where(static, 0, 255).astype(np.uint8)
    kps, desc = _orb().detectAndCompute(_work(ref_img, s), None)
    pts = np.float32([k.pt for k in kps]).reshape(-1, 2)
    extra: dict = {}
    if template.match_words:
        # the header band's text lines, read once for where the keywords are printed
        band = max(1, int(h * HEADER_BAND))
        extra["header_band"] = np.where(ink[:band], 0, 255).astype(np.uint8)
        extra["header_phrases"] = _text_phrases(ink[:band] & ~lines[:band], dpi)
    return Reference(template_name=template.name, shape=(h, w), dpi=dpi,
                     fine_scale=fs, fine_static=_shrink(static, fshape), fine_ink=_shrink(ink, fshape),
                     fine_zones=_shrink(zones, fshape), fine_lines=_shrink(lines, fshape),
                     work_scale=s, work_shape=wshape, work_static=_shrink(static, wshape),
                     work_ink=_shrink(ink, wshape), work_zones=zone_mask(template, wshape, s),
                     keypoints=pts, descriptors=desc, extra=extra)


def _text_phrases(text: np.ndarray, dpi: float) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of the runs of print in ``text`` (ink without the ruling),
    the tallest first: characters (their strokes smeared together by ~1.3 mm across and
    ~0.8 mm down: 三 stays one, lines 1 mm apart stay two) that sit on one line less than
    1.2 character heights apart (a letter-spaced title too)."""
    mm = dpi / 25.4
    k, kv = max(3, int(round(1.3 * mm))), max(3, int(round(0.8 * mm)))
    kernel = np.ones((kv, k), np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(text.astype(np.uint8), kernel), 8)
    boxes = [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h, _a in stats[1:]
             if h >= 1.2 * mm + kv - 1 or w >= 1.2 * mm + k - 1]
    boxes.sort()
    merged = True
    while merged:  # join neighbours on a line until nothing changes (a band has ~100 blobs)
        merged = False
        out: list[list[int]] = []
        for b in boxes:
            for o in out:
                hb, ho = b[3] - b[1], o[3] - o[1]
                overlap = min(b[3], o[3]) - max(b[1], o[1])
                gap = max(b[0], o[0]) - min(b[2], o[2])
                if overlap >= 0.5 * min(hb, ho) and gap <= 1.2 * max(hb, ho):
                    o[:] = [min(o[0], b[0]), min(o[1], b[1]), max(o[2], b[2]), max(o[3], b[3])]
                    merged = True
                    break
            else:
                out.append(list(b))
        boxes = out
    dx, dy = (k - 1) // 2, (kv - 1) // 2  # undo the smear
    res = [(b[0] + dx, b[1] + dy, b[2] - dx, b[3] - dy) for b in boxes]
    return sorted(res, key=lambda b: (-(b[3] - b[1]), b[1], b[0]))


# --------------------------------------------------------------------------------------
# geometry helpers


def scale_matrix(s: float) -> np.ndarray:
    """Pixel (x, y) of an image -> pixel of the same image resized by ``s`` (pixel centres kept)."""
    o = 0.5 * s - 0.5
    return np.array([[s, 0, o], [0, s, o], [0, 0, 1.0]])


def rot90_matrix(k: int, shape: tuple[int, int]) -> np.ndarray:
    """3x3 matrix of np.rot90(img, k): pixel (x, y) of img -> pixel of the rotated image."""
    m = np.eye(3)
    h, w = shape
    for _ in range(k % 4):
        m = np.array([[0, 1, 0], [-1, 0, w - 1], [0, 0, 1]], float) @ m
        h, w = w, h
    return m


def similarity_params(m: np.ndarray) -> tuple[float, float]:
    """(scale, angle in degrees) of the linear part of a 2x3/3x3 matrix."""
    a, b = m[0, 0], m[1, 0]
    c, d = m[0, 1], m[1, 1]
    sx, sy = math.hypot(a, b), math.hypot(c, d)
    return math.sqrt(max(sx * sy, 0.0)), math.degrees(math.atan2(b, a))


def quarter_turn(angle_deg: float) -> tuple[int, float]:
    """Nearest multiple of 90 and the residual angle."""
    q = int(round(angle_deg / 90.0)) % 4
    resid = (angle_deg - q * 90 + 180) % 360 - 180
    return q * 90, resid


def warp_mask(mask: np.ndarray, m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Warp a bool mask with a 3x3 matrix (source -> destination) into ``shape``."""
    u8 = mask.astype(np.uint8) * 255
    out = cv2.warpPerspective(u8, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out > 96


def valid_mask(src_shape: tuple[int, int], m: np.ndarray, shape: tuple[int, int], erode: int = 3) -> np.ndarray:
    """Where the warped source has pixels (bool), shrunk a little."""
    ones = np.full(src_shape, 255, np.uint8)
    out = cv2.warpPerspective(ones, m, (shape[1], shape[0]), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if erode:
        out = cv2.erode(out, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return out > 0


def overlay_score(static: np.ndarray, ref_ink: np.ndarray, zones: np.ndarray, page_ink: np.ndarray,
                  valid: np.ndarray, tol: int) -> tuple[float, float, float]:
    """(score, recall, precision) of a page's ink (already in the reference frame).

    recall: printed reference pixels with page ink within ``tol``;
    precision: page ink outside the fill-in zones lying within ``tol`` of reference ink.
    score: the larger of their harmonic mean and precision x min(1, recall / 0.4). Light
    print, a FAX reduced from B4/A3 or a dropout-prone FAX lose much of the form's ink
    (recall 0.3-0.5) while what is left still lies on it (precision ~1); a wrong form or a
    wrong placement puts ink where the reference has none (precision < 0.5). Recall must
    still be there: a nearly blank page is not a match.
    """
    k = np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)
    page_d = cv2.dilate(page_ink.astype(np.uint8), k) > 0
    ref_d = cv2.dilate(ref_ink.astype(np.uint8), k) > 0
    st = static & valid
    n_st = int(np.count_nonzero(st))
    recall = np.count_nonzero(st & page_d) / n_st if n_st else 0.0
    # only where the form is printed: a photo's background or a scanner lid's shadow
    # around the sheet is not the page's print
    rows, cols = np.flatnonzero(static.any(axis=1)), np.flatnonzero(static.any(axis=0))
    region = np.zeros_like(valid)
    if rows.size and cols.size:
        m = max(2, int(0.01 * max(static.shape)))
        region[max(0, rows[0] - m):rows[-1] + m + 1, max(0, cols[0] - m):cols[-1] + m + 1] = True
    pg = page_ink & valid & region & ~zones
    n_pg = int(np.count_nonzero(pg))
    precision = np.count_nonzero(pg & ref_d) / n_pg if n_pg else 0.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0
    score = max(f1, precision * min(1.0, recall / RECALL_ENOUGH))
    cover = np.count_nonzero(valid) / valid.size
    if cover < 0.5:  # the page shows less than half of the form
        score *= cover / 0.5
    return float(score), float(recall), float(precision)


# --------------------------------------------------------------------------------------
# page features


def _drop_specks(mask: np.ndarray, max_area: int) -> np.ndarray:
    """``mask`` without isolated dots (at most ``max_area`` ink pixels in a 3x3 neighbourhood)."""
    n = cv2.boxFilter(mask.astype(np.uint8), cv2.CV_16U, (3, 3), normalize=False)
    return mask & (n > max_area)


@dataclass
class _PageWork:
    scale: float  # work = page * scale
    trusted: bool  # scale from the page dpi (True) or from the long side (False)
    gray: np.ndarray  # work image (rot applied)
    ink: np.ndarray
    rot_k: int
    to_work: np.ndarray  # 3x3: page pixel -> work pixel (incl. rotation)
    kps: np.ndarray | None = None
    desc: np.ndarray | None = None

    def strongest(self, n: int) -> "_PageWork":
        """The same page with only its ``n`` strongest features (a quick first pass)."""
        if self.kps is None or self.desc is None or len(self.kps) <= n:
            return self
        order = np.argsort(-self.responses)[:n]
        return replace(self, kps=self.kps[order], desc=self.desc[order], responses=self.responses[order])

    responses: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _page_scale(shape: tuple[int, int], dpi: float) -> tuple[float, bool]:
    long_px = max(shape)
    if dpi and dpi > 0:
        inches = long_px / dpi
        if 3.0 <= inches <= 20.0:
            return WORK_DPI / dpi, True
    return (11.69 * WORK_DPI) / long_px, False  # assume A4


def _page_work(gray: np.ndarray, dpi: float, rot_k: int, base: _PageWork | None = None) -> _PageWork:
    if base is None:
        s, trusted = _page_scale(gray.shape[:2], dpi)
        small = _resize(gray, s)
        w = cv2.GaussianBlur(small, (3, 3), 0)
        ink = _drop_specks(small < WORK_INK_LEVEL, 2)
        to_work = scale_matrix(s)
    else:
        s, trusted = base.scale, base.trusted
        w, ink = base.gray, base.ink
        to_work = base.to_work
    if rot_k:
        to_work = rot90_matrix(rot_k, w.shape[:2]) @ to_work
        w = np.ascontiguousarray(np.rot90(w, rot_k))
        ink = np.ascontiguousarray(np.rot90(ink, rot_k))
    pw = _PageWork(scale=s, trusted=trusted, gray=w, ink=ink, rot_k=rot_k, to_work=to_work)
    # ORB finds nothing within ~31 px of an image's border; a form that runs off the
    # page (a FAX shifted up, a tight scan) then loses its title and header, the most
    # telling features. On white padding the page's edge is an ordinary place.
    pad = ORB_PAD
    kps, desc = _orb().detectAndCompute(cv2.copyMakeBorder(w, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255), None)
    pw.kps = np.float32([k.pt for k in kps]).reshape(-1, 2) - pad
    pw.desc = desc
    pw.responses = np.float32([k.response for k in kps])
    return pw


@dataclass
class _Candidate:
    template: Template
    ref: Reference | None
    transform: np.ndarray | None = None  # page -> reference (full resolution)
    work_m: np.ndarray | None = None  # page work -> reference work
    inliers: int = 0
    score: float = 0.0
    recall: float = 0.0
    precision: float = 0.0
    rotation: int = 0
    reason: str = ""
    keyword_hits: int = 0
    keywords_checked: bool = False

    @property
    def passed(self) -> bool:
        return self.transform is not None and not self.reason


_matcher = cv2.BFMatcher(cv2.NORM_HAMMING)


def _guided_models(pw: _PageWork, ref: Reference, work_m: np.ndarray) -> list[np.ndarray]:
    """Affine and homography refitted on matches restricted to ``GUIDED_RADIUS`` around the
    positions predicted by ``work_m``."""
    pred = cv2.perspectiveTransform(pw.kps.reshape(-1, 1, 2).astype(np.float64), work_m).reshape(-1, 2)
    d2 = ((pred[:, None, :] - ref.keypoints[None, :, :].astype(np.float64)) ** 2).sum(-1)
    allowed = (d2 <= GUIDED_RADIUS ** 2).astype(np.uint8)
    if allowed.sum() < MIN_INLIERS:
        return []
    pairs = _matcher.knnMatch(pw.desc, ref.descriptors, k=2, mask=allowed)
    good = []
    for p in pairs:
        if not p or p[0].distance > 80:
            continue
        if len(p) == 2 and p[1].distance < 1.0 / 0.9 * p[0].distance and allowed[p[1].queryIdx, p[1].trainIdx]:
            continue
        good.append(p[0])
    if len(good) < MIN_INLIERS:
        return []
    src = pw.kps[[m.queryIdx for m in good]]
    dst = ref.keypoints[[m.trainIdx for m in good]]
    out = []
    am, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=2000)
    if am is not None:
        a3 = np.vstack([am, [0, 0, 1]])
        if _plausible_homography(a3, pw.ink.shape):
            out.append(a3)
    hm, _ = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_PX, maxIters=2000)
    if hm is not None and _plausible_homography(hm, pw.ink.shape):
        out.append(hm / hm[2, 2])
    return out


def _plausible_homography(hm: np.ndarray, shape: tuple[int, int]) -> bool:
    """A mild perspective: corners of the page map to a convex quad whose sides change
    length by less than a third."""
    h, w = shape
    c = np.float32([[0, 0], [w, 0], [w, h], [0, h]]).reshape(-1, 1, 2)
    try:
        q = cv2.perspectiveTransform(c, hm).reshape(-1, 2)
    except cv2.error:
        return False
    if not np.all(np.isfinite(q)) or not cv2.isContourConvex(q.astype(np.float32)):
        return False
    sides = np.linalg.norm(q - np.roll(q, -1, axis=0), axis=1)
    return bool(sides[0] / sides[2] < 1.33 and sides[2] / sides[0] < 1.33
                and sides[1] / sides[3] < 1.33 and sides[3] / sides[1] < 1.33)


def _geometric(cand: _Candidate, pw: _PageWork, page_shape: tuple[int, int]) -> None:
    ref = cand.ref
    assert ref is not None
    if ref.descriptors is None or pw.desc is None or len(ref.keypoints) < 8 or len(pw.kps) < 8:
        cand.reason = "too few features"
        return
    pairs = _matcher.knnMatch(pw.desc, ref.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    # one match per reference feature: many page points on one reference point would let
    # RANSAC "explain" them all with a degenerate (scale ~0) transform
    best_for: dict[int, cv2.DMatch] = {}
    for m in good:
        if m.trainIdx not in best_for or m.distance < best_for[m.trainIdx].distance:
            best_for[m.trainIdx] = m
    good = list(best_for.values())
    if len(good) < MIN_INLIERS:
        cand.reason = f"{len(good)} feature matches"
        cand.inliers = max(cand.inliers, 0)
        return
    src = pw.kps[[m.queryIdx for m in good]]
    dst = ref.keypoints[[m.trainIdx for m in good]]
    m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                         maxIters=4000, confidence=0.995, refineIters=10)
    n_in = int(inl.sum()) if inl is not None else 0
    cand.inliers = n_in
    if m is None or n_in < MIN_INLIERS:
        cand.reason = f"{n_in} inliers"
        return
    # least-squares similarity on the inliers
    sel = inl.ravel().astype(bool)
    m2, _ = cv2.estimateAffinePartial2D(src[sel], dst[sel], method=cv2.LMEDS)
    if m2 is not None:
        m = m2
    scale, angle = similarity_params(m)
    quarter, resid = quarter_turn(angle)
    lo, hi = SCALE_RANGE if pw.trusted else SCALE_RANGE_UNTRUSTED
    if not (lo <= scale <= hi):
        cand.reason = f"implausible scale {scale:.2f}"
        return
    if abs(resid) > MAX_SKEW_DEG:
        cand.reason = f"implausible angle {angle:.1f}"
        return
    models = [np.vstack([m, [0, 0, 1]])]
    # a phone photo is a perspective view: a homography may explain many more matches
    am, ain = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=2000,
                                   confidence=0.995)
    if am is not None and ain is not None and ain.sum() >= n_in and _plausible_homography(np.vstack([am, [0, 0, 1]]),
                                                                                          pw.ink.shape):
        models.append(np.vstack([am, [0, 0, 1]]))
    hm, hin = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_PX, maxIters=2000, confidence=0.995)
    if hm is not None and hin is not None and hin.sum() >= n_in and _plausible_homography(hm, pw.ink.shape):
        models.append(hm / hm[2, 2])
    _settle(cand, pw, models, guided=True)


def _overlay_best(pw: _PageWork, ref: Reference, models: list[np.ndarray], best=None):
    """((score, recall, precision), model) of the model that overlays the reference best."""
    wshape = ref.work_shape
    for work_m in models:
        page_ink = warp_mask(pw.ink, work_m, wshape)
        valid = valid_mask(pw.ink.shape, work_m, wshape)
        sc = overlay_score(ref.work_static, ref.work_ink, ref.work_zones, page_ink, valid, OVERLAY_TOL)
        if best is None or sc[0] > best[0][0]:
            best = (sc, work_m)
    return best


def _settle(cand: _Candidate, pw: _PageWork, models: list[np.ndarray], *, guided: bool,
            refit: bool = False) -> None:
    """Choose among candidate work-scale models by overlay, improve a doubtful one
    (guided feature matching, then a patch refit), and record the result."""
    ref = cand.ref
    assert ref is not None
    best = _overlay_best(pw, ref, models)
    if best is None:
        cand.reason = "no model"
        return
    if guided and GUIDED_FLOOR <= best[0][0] < GUIDED_BELOW:
        # a curved or perspective photo: features far from the first fit's inliers were
        # rejected as ambiguous (ruled grids repeat). Match again, each page feature only
        # against reference features near where the first fit puts it. (Not for a fit
        # that overlays nothing: that is another form, and these rounds cost.)
        for _ in range(2):
            before = best[0][0]
            best = _overlay_best(pw, ref, _guided_models(pw, ref, best[1]), best)
            if best[0][0] >= GUIDED_BELOW or best[0][0] < before + 0.02:
                break
    if refit and best[0][0] >= GUIDED_FLOOR:
        # a coarse placement: the patch refit is the better geometry unless it overlays worse
        tiles = _tile_models(pw, ref, best[1])
        fine = _overlay_best(pw, ref, tiles[-1:]) if tiles else None
        if fine is not None and fine[0][0] >= best[0][0] - 0.02:
            best = fine
    elif GUIDED_FLOOR <= best[0][0] < GUIDED_BELOW:
        best = _overlay_best(pw, ref, _tile_models(pw, ref, best[1]), best)
    (score, rec, prec), work_m = best
    cand.score, cand.recall, cand.precision = score, rec, prec
    cand.work_m = work_m
    cand.transform = np.linalg.inv(scale_matrix(ref.work_scale)) @ work_m @ pw.to_work
    cand.transform /= cand.transform[2, 2]
    # quarter turn of the page content relative to the reference
    _, page_angle = similarity_params(np.linalg.inv(cand.transform))
    cand.rotation = quarter_turn(-page_angle)[0]  # y points down: visual CCW is a negative angle
    cand.reason = "" if score >= MIN_SCORE else f"overlay score {score:.2f} < {MIN_SCORE}"


def _correlate(cand: _Candidate, pw: _PageWork) -> None:
    """Fallback when features find nothing (a FAX that lost most of the form's fine print,
    leaving ruling and big text): slide the reference's printed form over the upright
    page at ~25 dpi (normalised correlation, a few FAX reduction scales), then refit
    with patches and check the overlay as usual."""
    ref = cand.ref
    assert ref is not None
    f = CORR_DPI / WORK_DPI
    rs = cv2.resize(ref.work_static.astype(np.float32), None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    rs = cv2.GaussianBlur(rs, (0, 0), 1.0)
    if rs.std() < 1e-3:
        return
    best = None
    for sc in CORR_SCALES:
        ps = cv2.resize(pw.ink.astype(np.float32), None, fx=f * sc, fy=f * sc, interpolation=cv2.INTER_AREA)
        ps = cv2.GaussianBlur(ps, (0, 0), 1.0)
        ph, pww = rs.shape[0] // 2 + 1, rs.shape[1] // 2 + 1
        big = cv2.copyMakeBorder(ps, ph, ph, pww, pww, cv2.BORDER_CONSTANT, value=0)
        if big.shape[0] < rs.shape[0] or big.shape[1] < rs.shape[1]:
            continue
        r = cv2.matchTemplate(big, rs, cv2.TM_CCOEFF_NORMED)
        _, mx, _, (bx, by) = cv2.minMaxLoc(r)
        if best is None or mx > best[0]:
            # reference (at CORR_DPI) pixel (0,0) sits at big (bx, by) = page_small (bx - pww, by - ph)
            best = (mx, sc, bx - pww, by - ph)
    if best is None or best[0] < CORR_MIN:
        cand.reason = cand.reason or "no correlation"
        return
    _, sc, ox, oy = best
    # page work -> reference work: scale by sc, shift by the offset found (at CORR_DPI)
    work_m = np.array([[sc, 0, -ox / f], [0, sc, -oy / f], [0, 0, 1.0]])
    before = cand.reason
    _settle(cand, pw, [work_m], guided=False, refit=True)  # the shift is only good to ~1 mm
    if not cand.reason and cand.score < CORR_MIN_SCORE:  # no feature evidence: ask for more overlay
        cand.reason = f"correlation overlay {cand.score:.2f} < {CORR_MIN_SCORE}"
    if cand.reason:
        cand.reason = before or cand.reason
    else:
        cand.inliers = 0


# --------------------------------------------------------------------------------------
# patches: small distinctive windows of the printed form, found again by correlation
# (used here to refine a coarse fit on photos, and by ocr.align at full resolution)


@dataclass(frozen=True)
class Patches:
    """Patches of a blurred printed-form image: ``centers`` (N x 2, pixels of that
    image), ``images`` (float32, ``size`` x ``size``)."""

    size: int
    centers: np.ndarray
    images: tuple[np.ndarray, ...]
    zone_frac: np.ndarray = field(default_factory=lambda: np.zeros(0))  # share of each patch in fill-in zones

    def __len__(self) -> int:
        return len(self.images)

    @property
    def distinct(self) -> np.ndarray:
        """Patches of printed text and box corners outside the fill-in zones: unlike the
        line crossings of a ruled table they do not repeat a row or a column further on,
        so they alone can tell that a fit is not one period off."""
        if self.zone_frac.size != len(self.images):
            return np.ones(len(self.images), bool)
        return self.zone_frac < 0.3


def blur(img: np.ndarray) -> np.ndarray:
    """Gaussian blur (sigma 1.2) as float32: correlation of binary images wants soft edges."""
    if img.dtype == np.uint8:
        return cv2.GaussianBlur(img, (7, 7), 1.2).astype(np.float32)
    return cv2.GaussianBlur(img.astype(np.float32), (7, 7), 1.2)


def select_patches(static: np.ndarray, zones: np.ndarray | None, size: int, search: int, grid: int,
                   max_n: int, max_zone: float = 0.6) -> Patches:
    """Up to ``max_n`` patches of the printed form ``static`` (bool), at most one per
    ``grid`` cell: corner-like, less than ``max_zone`` inside fill-in ``zones`` (where the
    page has writing the reference lacks), and distinctive within ``search`` pixels (no
    second correlation peak above 0.8)."""
    img = blur(np.where(static, 0, 255).astype(np.uint8))
    size = int(size) | 1
    half = size // 2
    margin = half + search + 2
    shape = static.shape
    eig = cv2.cornerMinEigenVal(img, blockSize=7, ksize=3)
    ink_density = cv2.boxFilter(static.astype(np.float32), -1, (size, size))
    ok = (ink_density > 0.03) & (ink_density < 0.6)
    zone_density = cv2.boxFilter(zones.astype(np.float32), -1, (size, size)) if zones is not None else None
    if zone_density is not None and max_zone < 1.0:
        ok &= zone_density < max_zone
    ok[:margin, :] = False
    ok[-margin:, :] = False
    ok[:, :margin] = False
    ok[:, -margin:] = False
    eig = np.where(ok, eig, 0)
    grid = max(size, int(grid))
    cands = []
    for gy in range(0, shape[0], grid):
        for gx in range(0, shape[1], grid):
            cell = eig[gy:gy + grid, gx:gx + grid]
            if cell.size == 0:
                continue
            iy, ix = np.unravel_index(int(np.argmax(cell)), cell.shape)
            v = float(cell[iy, ix])
            if v > 0:
                cands.append((v, gx + ix, gy + iy))
    cands.sort(reverse=True)
    centers, images = [], []
    for _, cx, cy in cands:
        patch = img[cy - half:cy + half + 1, cx - half:cx + half + 1]
        if patch.std() < 5:
            continue
        win = img[cy - half - search:cy + half + search + 1, cx - half - search:cx + half + search + 1]
        r = cv2.matchTemplate(win, patch, cv2.TM_CCOEFF_NORMED)
        c = search
        r[max(0, c - 3):c + 4, max(0, c - 3):c + 4] = -1
        if r.max() > 0.8:  # a repeated pattern (grid, repeated word): ambiguous
            continue
        centers.append((cx, cy))
        images.append(patch.copy())
        if len(centers) >= max_n:
            break
    zf = np.array([float(zone_density[cy, cx]) if zone_density is not None else 0.0 for cx, cy in centers])
    return Patches(size, np.array(centers, float).reshape(-1, 2), tuple(images), zf)


def _subpixel(r: np.ndarray, y: int, x: int) -> tuple[float, float]:
    def off(a: float, b: float, c: float) -> float:
        d = a - 2 * b + c
        return 0.0 if abs(d) < 1e-9 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))

    dx = off(r[y, x - 1], r[y, x], r[y, x + 1]) if 0 < x < r.shape[1] - 1 else 0.0
    dy = off(r[y - 1, x], r[y, x], r[y + 1, x]) if 0 < y < r.shape[0] - 1 else 0.0
    return x + dx, y + dy


def find_patches(warped: np.ndarray, pt: Patches, search: int, min_ncc: float = 0.45
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(found mask, displacement (N x 2), peak correlation) of each patch on ``warped``
    (a blurred page already in the patches' frame), searched within +-``search`` px."""
    n = len(pt)
    found = np.zeros(n, bool)
    disp = np.zeros((n, 2))
    peak = np.zeros(n)
    half = pt.size // 2
    H, W = warped.shape[:2]
    for i, ((cx, cy), patch) in enumerate(zip(pt.centers.astype(int), pt.images)):
        y0, y1 = cy - half - search, cy + half + search + 1
        x0, x1 = cx - half - search, cx + half + search + 1
        if y0 < 0 or x0 < 0 or y1 > H or x1 > W:
            continue
        win = warped[y0:y1, x0:x1]
        if win.std() < 3:
            continue
        r = cv2.matchTemplate(win, patch, cv2.TM_CCOEFF_NORMED)
        _, mx, _, (bx, by) = cv2.minMaxLoc(r)
        peak[i] = mx
        if mx < min_ncc or bx in (0, r.shape[1] - 1) or by in (0, r.shape[0] - 1):
            continue
        sx, sy = _subpixel(r, by, bx)
        found[i] = True
        disp[i] = (sx - search, sy - search)
    return found, disp, peak


def match_patches(ref: Reference) -> Patches:
    """The patches the coarse refit uses (working resolution; cached in the Reference)."""
    pt = ref.extra.get("match_patches")
    if pt is None:
        pt = select_patches(ref.work_static, ref.work_zones, size=33, search=TILE_SEARCH[0], grid=64, max_n=80)
        ref.extra["match_patches"] = pt
    return pt


def _tile_models(pw: "_PageWork", ref: Reference, work_m: np.ndarray) -> list[np.ndarray]:
    """Refit a coarse model from patches of the printed form found on the warped page
    (dense correlation, so it works where ORB features are few or repetitive: ruled
    tables, phone photos). Homographies, +-6 mm then +-2 mm."""
    pt = match_patches(ref)
    if len(pt) < 8:
        return []
    out = []
    cur = work_m
    shape = ref.work_shape
    for search, thr in zip(TILE_SEARCH, (4.0, 2.0)):
        warped = blur(cv2.warpPerspective(pw.gray, cur, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                                          borderValue=255))
        found, disp, _ = find_patches(warped, pt, search, 0.4)
        if found.sum() < 8:
            break
        seen = (pt.centers[found] + disp[found]).astype(np.float32)
        fix, inl = cv2.findHomography(seen, pt.centers[found].astype(np.float32), cv2.RANSAC, thr, maxIters=2000)
        if fix is None or inl is None or inl.sum() < 8:
            break
        cur = fix @ cur
        cur = cur / cur[2, 2]
        if _plausible_homography(cur, pw.ink.shape):
            out.append(cur)
    return out


# --------------------------------------------------------------------------------------
# keywords


# characters OCR confuses with each other (and people type either way): compared as one
_CONFUSABLE = str.maketrans({
    "入": "人", "八": "ハ", "工": "エ", "力": "カ", "口": "ロ", "夕": "タ", "二": "ニ", "卜": "ト",
    "一": "ー", "－": "ー", "-": "ー", "―": "ー", "‐": "ー", "O": "0", "I": "1", "L": "1", "|": "1",
})


def _norm_text(s: str) -> str:
    s = unicodedata.normalize("NFKC", s or "")
    return re.sub(r"\s+", "", s).upper().translate(_CONFUSABLE)


def fuzzy_contains(text: str, word: str) -> bool:
    """``word`` occurs in ``text`` (NFKC, spaces ignored, OCR look-alikes equal) with at
    most one character error per three characters (none for words of one or two)."""
    t, w = _norm_text(text), _norm_text(word)
    if not w:
        return True
    if w in t:
        return True
    k = 0 if len(w) <= 2 else max(1, round(len(w) * 0.34))
    if k == 0 or not t:
        return False
    # approximate substring matching (Sellers): min edit distance of w against any substring of t
    prev = [0] * (len(t) + 1)
    for i, cw in enumerate(w, 1):
        cur = [i] + [0] * len(t)
        for j, ct in enumerate(t, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (cw != ct))
        prev = cur
    return min(prev) <= k


def _warp_region(page: np.ndarray, transform: np.ndarray, ref_shape: tuple[int, int], box: tuple[int, int, int, int],
                 min_dpi_scale: float = 1.0) -> np.ndarray:
    """The part ``box`` (reference pixels) of the page, warped into the reference frame."""
    x0, y0, x1, y1 = box
    s = min_dpi_scale
    t = np.array([[s, 0, -x0 * s], [0, s, -y0 * s], [0, 0, 1]], float) @ transform
    w, h = max(1, int(round((x1 - x0) * s))), max(1, int(round((y1 - y0) * s)))
    return cv2.warpPerspective(page, t, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)


def _ocr_variants(img: np.ndarray, line: bool) -> list[np.ndarray]:
    """The same region prepared a few ways for the OCR callback. Tesseract misses large or
    letter-spaced titles at some sizes and reads them at others (seen: a 45-px 入出庫台帳
    read as nothing, at 30 px right), so a region is tried at several scales."""
    out = [img]
    ink = img < 128
    if not ink.any():
        return out
    ys, xs = np.nonzero(ink)
    crop = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h = crop.shape[0]
    if line:  # one line of text: scale its height to 30 and to 60 px
        targets = [30.0 / h, 60.0 / h]
    else:  # a band of several lines: smaller and larger
        targets = [0.6, 1.5]
    for sc in targets:
        if abs(sc - 1) < 0.15 or min(crop.shape) * sc < 8:
            continue
        r = cv2.resize(crop, None, fx=sc, fy=sc, interpolation=cv2.INTER_AREA if sc < 1 else cv2.INTER_CUBIC)
        r = np.where(r < 128, 0, 255).astype(np.uint8)
        pad = max(8, int(0.5 * min(r.shape[0], 60)))
        out.append(cv2.copyMakeBorder(r, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255))
    return out


def _read_scale(ref: Reference) -> float:
    """How much a region of this reference is enlarged before it is read: 2 below 150
    dpi (Tesseract needs the pixels), else 1."""
    return 1.0 if ref.dpi >= 150 else 2.0


def _keyword_boxes_key(words) -> tuple:
    return ("keyword_boxes", tuple(words))


def _keyword_boxes(ref: Reference, words: list[str],
                   ocr: Callable[[np.ndarray], str]) -> dict[str, tuple[tuple[int, int, int, int], int]] | None:
    """Where on the reference each of ``words`` is printed: the header band's run of
    print (padded by half its height and 2% of the width: the page's fit is coarse) in
    which the OCR finds it, with the index of the ``_ocr_variants`` that read it; None
    when one of them is in none (then the whole band is read). Worked out with the first
    page that passes this reference, tallest print first, and kept with it."""
    key = _keyword_boxes_key(words)
    if key in ref.extra:
        return ref.extra[key]
    band, phrases = ref.extra.get("header_band"), ref.extra.get("header_phrases")
    if band is None or not phrases:
        return None
    scale = _read_scale(ref)
    todo, out = list(words), {}
    H, W = ref.shape
    for x0, y0, x1, y1 in phrases:
        if not todo:
            break
        py, px = max(4, (y1 - y0) // 2), int(0.02 * W)
        box = (max(0, x0 - px), max(0, y0 - py), min(W, x1 + px), min(H, y1 + py))
        img = band[box[1]:box[3], box[0]:box[2]]
        if scale != 1.0:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            img = np.where(img < 128, 0, 255).astype(np.uint8)
        img = unruled(img, ref.dpi * scale)
        for i, v in enumerate(_ocr_variants(img, True)):
            text = ocr(v)
            hits = [t for t in todo if fuzzy_contains(text, t)]
            for word in hits:
                out[word] = (box, i)
                todo.remove(word)
            if hits:
                break
    result = None if todo else out
    ref.extra[key] = result
    return result


def unreadable_keywords(template: Template, read_text: ReadText) -> list[str]:
    """The template's keywords (and anchors without a box) that the OCR cannot find on its
    own reference image -- not in a run of print of the header band, nor in the band, nor
    anywhere on the form. Pages are then never confirmed by them: with all of them
    missing every page of the form is an unknown form (``faxflow templates check``)."""
    words = template.match_words
    if not words:
        return []
    ref = reference_for(template)
    gray = read_image(Path(template.reference_image))
    if gray is None:
        return words

    def ocr(img: np.ndarray) -> str:
        try:
            return read_text(img) or ""
        except Exception:  # noqa: BLE001 - an OCR failure reads nothing
            return ""

    located = _keyword_boxes(ref, words, ocr)
    if located is not None:
        return []
    ink = np.where(ink_mask(gray), 0, 255).astype(np.uint8)
    h = ink.shape[0]
    missing = list(words)
    for region, line in ((ink[:max(1, int(h * HEADER_BAND))], False), (ink, False)):
        for v in _ocr_variants(region, line):
            text = ocr(v)
            missing = [w for w in missing if not fuzzy_contains(text, w)]
            if not missing:
                return []
    return missing


def _check_text(cands: list[_Candidate], page: np.ndarray, read_text: ReadText) -> list[str]:
    """Fill keyword_hits for candidates with keywords/anchors; reject those that show none."""
    notes: list[str] = []
    texts: dict[tuple, list[str]] = {}

    def ocr(img: np.ndarray) -> str:
        try:
            return read_text(img) or ""
        except Exception as exc:  # noqa: BLE001 - an OCR failure must not turn into a crash here
            notes.append(f"read_text failed: {type(exc).__name__}")
            return ""

    def region(c: _Candidate, box: tuple[int, int, int, int]) -> np.ndarray:
        assert c.ref is not None and c.transform is not None
        s = _read_scale(c.ref)
        img = _warp_region(page, c.transform, c.ref.shape, box, s)
        return np.where(img < 128, 0, 255).astype(np.uint8)

    def found(c: _Candidate, box: tuple[int, int, int, int], words: list[str], line: bool,
              first: int | None = None) -> int:
        """How many of ``words`` the OCR finds in ``box``, trying the region's variants in
        turn until one shows any (results shared by candidates that see the page alike).
        ``first``: a keyword's run of print (``_keyword_boxes``): the ruling is painted out
        as it was on the reference, and that variant is tried first."""
        key = (box, c.ref.shape if c.ref is not None else None, tuple(np.round(c.transform.ravel()[:6], 0)),
               first)
        if key not in texts:
            texts[key] = []
        done = texts[key]
        img = region(c, box)
        if first is not None:
            img = unruled(img, c.ref.dpi * _read_scale(c.ref))
        variants = _ocr_variants(img, line)
        if first is not None and 0 < first < len(variants):
            variants.insert(0, variants.pop(first))
        for i, v in enumerate(variants):
            if i >= len(done):
                done.append(ocr(v))
            n = sum(fuzzy_contains(done[i], w) for w in words)
            if n:
                return n
        return 0

    for c in cands:
        tpl = c.template
        assert c.ref is not None
        h, w = c.ref.shape
        words = tpl.match_words
        boxed = [a for a in tpl.anchors if a.box is not None]
        if not words and not boxed:
            continue
        c.keywords_checked = True
        hits = 0
        located = _keyword_boxes(c.ref, words, ocr) if words else None
        if located is not None:
            # where each keyword is printed on the reference, read as it was read there
            # (a fraction of the band's reading time); all must be there, else the band
            # is read as before
            got = sum(found(c, located[word][0], [word], True, first=located[word][1]) for word in words)
            hits = got if got == len(words) else 0
        if words and not hits:
            hits = found(c, (0, 0, w, max(1, int(h * HEADER_BAND))), words, False)
        for a in boxed:
            if hits:
                break
            x0, y0, x1, y1 = a.box  # type: ignore[misc]
            px, py = max(4, (x1 - x0) // 5), max(4, (y1 - y0) // 2)
            box = (max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py))
            hits += found(c, box, [a.text], True)
        if words and not hits:  # not in the header band: read the whole page once
            hits = found(c, (0, 0, w, h), words, False)
        c.keyword_hits = hits
        if hits == 0:  # none of the printed words this form must show
            c.reason = KEYWORDS_NOT_FOUND + ", ".join(dict.fromkeys(words + [a.text for a in boxed]))
    return notes


def _ink_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur((img < 128).astype(np.float32), (0, 0), sigma)


def _keyword_look(c: _Candidate, page: np.ndarray) -> float | None:
    """How much the print where each keyword is (its run of print on the reference,
    ``_keyword_boxes``) looks the same on the page warped by the candidate's fit: the run
    is cut into squares a character high, each slid a few px over the page (normalised
    correlation of the lightly blurred ink, ruling painted out), and the worst square of
    any keyword counts - another customer's name differs in a few characters, and a
    "株式会社 御中" both print must not outvote them. None when where the keywords are
    printed is not known."""
    ref = c.ref
    if ref is None or c.transform is None:
        return None
    words = c.template.match_words
    located = ref.extra.get(_keyword_boxes_key(words)) if words else None
    band = ref.extra.get("header_band")
    if not located or band is None:
        return None
    sigma = max(0.8, ref.dpi / 200)
    pad = max(3, int(round(ref.dpi * 0.04)))  # ~1 mm: what the coarse fit is off by
    worst = 1.0
    for box, _variant in located.values():
        x0, y0, x1, y1 = box
        want = unruled(band[y0:y1, x0:x1], ref.dpi)
        want_ink = want < 128
        ys, xs = np.nonzero(want_ink)
        if not len(ys):
            return None
        got = unruled(_warp_region(page, c.transform, ref.shape, (x0 - pad, y0 - pad, x1 + pad, y1 + pad)),
                      ref.dpi)
        a, b = _ink_blur(want, sigma), _ink_blur(got, sigma)
        ty0, ty1 = int(ys.min()), int(ys.max()) + 1
        side = max(8, ty1 - ty0)
        for tx in range(int(xs.min()), int(xs.max()) + 1, side):
            tile = a[ty0:ty1, tx:tx + side]
            if float(want_ink[ty0:ty1, tx:tx + side].mean()) < 0.03 or float(tile.std()) < 1e-6:
                continue  # the space between words
            area = b[ty0:ty1 + 2 * pad, tx:tx + tile.shape[1] + 2 * pad]
            if area.shape[0] < tile.shape[0] or area.shape[1] < tile.shape[1] or float(area.std()) < 1e-6:
                return 0.0
            worst = min(worst, float(cv2.matchTemplate(area, tile, cv2.TM_CCOEFF_NORMED).max()))
    return worst


def _unread_but_certain(live: list[_Candidate], page: np.ndarray) -> tuple[_Candidate, float] | None:
    """The one form a page with no passing candidate fits (overlay >= ``UNREAD_MIN_SCORE``;
    only its keywords failed), when their print on the page looks like the reference's (``KEYWORD_LOOK_MIN``):
    a FAX too faint or broken for the OCR, not the same stationery from another customer
    (another name printed there does not look alike). None otherwise."""
    fits = [c for c in live if c.transform is not None and c.reason.startswith(KEYWORDS_NOT_FOUND)]
    if len(fits) != 1 or fits[0].score < UNREAD_MIN_SCORE:
        return None
    look = _keyword_look(fits[0], page)
    if look is None or look < KEYWORD_LOOK_MIN:
        return None
    return fits[0], look


# --------------------------------------------------------------------------------------
# the entry point


def match_page(image: np.ndarray, dpi: float, templates: Sequence[Template], *,
               read_text: ReadText | None = None) -> MatchResult:
    """Which template is this page, and where does it lie? Never raises for a bad page."""
    notes: list[str] = []
    if not templates:
        return MatchResult(None, reason="no templates loaded")
    try:
        gray = to_gray(np.asarray(image))
    except Exception as exc:  # noqa: BLE001 - a broken page is an unknown form, not a crash
        return MatchResult(None, reason=f"unusable image: {exc}")
    if gray.ndim != 2 or min(gray.shape) < 32:
        return MatchResult(None, reason="image too small")

    cands: list[_Candidate] = []
    for t in templates:
        try:
            cands.append(_Candidate(t, reference_for(t)))
        except Exception as exc:  # noqa: BLE001 - one broken template must not stop the others
            cands.append(_Candidate(t, None, reason=f"reference unusable: {exc}"))
    live = [c for c in cands if c.ref is not None]

    base = _page_work(gray, dpi, 0)
    if not base.trusted:
        notes.append("page-dpi-untrusted")
    # quick pass with the strongest features (a quarter of the matching cost per
    # template); only if no template passes that way is every feature used
    quick = base.strongest(QUICK_FEATURES)
    for c in live:
        _geometric(c, quick, gray.shape[:2])
    any_quick = any(c.passed for c in live)
    if quick is not base:
        # every feature for the templates that passed (a better coarse fit for align),
        # or for all of them when none did
        for i, c in enumerate(list(live)):
            if any_quick and not c.passed:
                continue
            full = _Candidate(c.template, c.ref)
            _geometric(full, base, gray.shape[:2])
            if not c.passed or (full.passed and full.score >= c.score - 0.02):
                cands[cands.index(c)] = live[i] = full
    if not any(c.passed for c in live):
        # too few features (a FAX that lost the fine print): slide the form over the page
        for c in live:
            _correlate(c, base)
        if any(c.passed for c in live):
            notes.append("matched-by-correlation")
    if not any(c.passed for c in live):
        # ORB is rotation invariant, but a quarter-turned page can still lose features;
        # retry the ones that failed with the page turned
        for k in (1, 3, 2):
            pw = _page_work(gray, dpi, k, base)
            quick_k = pw.strongest(QUICK_FEATURES)
            for c in list(live):
                trial = _Candidate(c.template, c.ref)
                _geometric(trial, quick_k, gray.shape[:2])
                if trial.passed and quick_k is not pw:
                    full = _Candidate(c.template, c.ref)
                    _geometric(full, pw, gray.shape[:2])
                    if full.passed and full.score >= trial.score - 0.02:
                        trial = full
                if trial.passed or trial.score > c.score:
                    cands[cands.index(c)] = trial
                    live[live.index(c)] = trial
            if any(c.passed for c in live):
                notes.append(f"matched-after-rot90x{k}")
                break

    passing = [c for c in live if c.passed]
    if passing and read_text is not None:
        notes += _check_text(passing, gray, read_text)
        passing = [c for c in passing if c.passed]
    elif passing and any(c.template.keywords or c.template.anchors for c in passing):
        notes.append("keywords-unchecked")

    ranked = sorted(cands, key=lambda c: (c.passed, c.keyword_hits, c.score, c.inliers), reverse=True)
    cand_list = tuple((c.template.name, round(c.score, 3)) for c in ranked)
    confirmed = True
    if not passing and read_text is not None:
        unread = _unread_but_certain(live, gray)
        if unread is not None:
            c, look = unread
            notes.append(f"keywords-unread:{c.template.name}:{look:.2f}")
            passing, confirmed = [c], False
    if not passing:
        best = ranked[0]
        why = best.reason or "no match"
        return MatchResult(None, None, best.score, best.inliers, cand_list, best.rotation,
                           reason=f"no template matched (best {best.template.name}: {why}, "
                                  f"score {best.score:.2f}, {best.inliers} inliers)",
                           notes=tuple(notes))
    best = max(passing, key=lambda c: (c.keyword_hits, c.score, c.inliers))
    others = [c for c in passing if c is not best]
    if others and not best.keywords_checked:
        runner = max(others, key=lambda c: c.score)
        if runner.keyword_hits == best.keyword_hits and best.score - runner.score < 0.05:
            notes.append(f"ambiguous-with:{runner.template.name}")
    if best.rotation:
        notes.append(f"rotated-{best.rotation}")
    return MatchResult(best.template, best.transform, best.score, best.inliers, cand_list, best.rotation,
                       notes=tuple(notes), confirmed=confirmed)
