"""Warp a page onto its template's reference image, and know when that failed.

``align_page(page, template, match=None) -> AlignedPage``

1. Coarse: the transform found by ``templates.match`` (features at ~100 dpi, good to
   ~1-3 px at 200 dpi). Without a match it is computed here; if even that fails, a
   dpi-only guess (upright, top-left) is tried - and will most likely be flagged.
2. Refine by patches: small windows of the reference's *printed* form (label text,
   box corners, table line crossings - never the fill-in content of a filled-in
   reference image), chosen once per template for being distinctive within the search
   radius, are found on the warped page by normalised cross-correlation with a
   sub-pixel peak. Stages: +-``WIDE_MM`` at ~100 dpi, then ``PASSES`` (+-16, +-6 px at
   200 dpi). Each stage fits an affine transform (RANSAC), or a homography when that
   explains clearly more patches (phone photos); when no global model explains 85% of
   the patches (a curved sheet) a loose compromise plus a smooth polynomial field of
   the residuals is used (``_Field``: cubic, held constant outside the patches).
3. Verify: ``score`` = overlay of the warped page on the reference's printed pixels
   (``templates.match.overlay_score`` at refine resolution, 2-px tolerance at 200 dpi),
   capped by the score on the printed text alone when that is below ``TEXT_MIN_SCORE``
   (a ruled table one row or one column off still overlays its lines, not its title and
   headings; writing outside the template's boxes lowers the text score only a little). ``ok`` needs ``score >= OK_SCORE``
   and patch agreement (``trusted``): at least ``OK_AGREE_MIN`` patches found within
   ``TRUST_PX`` of where the fit puts them, ``OK_AGREEMENT`` of those found, and enough
   of the *distinct* ones (outside the fill-in zones), because line crossings alone
   agree with a fit one row off. Calibration (tests/test_align.py, generated samples):
   good alignments score 0.76-1.0 (FAX standard mode, thin/bold print, speckle, curved
   photos), 4 px off 0.4-0.74, 6 px off <= 0.38, one row off <= 0.12, 0.5 degree off
   <= 0.36, another form <= 0.1; OK_SCORE = 0.6.

The aligned image has the reference's size and dpi (binary pages stay 0/255).
``transform`` maps page pixels to reference pixels (3x3; the global model - a curved
sheet's residual field is applied to ``image`` but is not part of it; notes say so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from faxflow.templates.match import (
    MatchResult,
    WORK_DPI,
    Reference,
    blur,
    find_patches,
    match_patches,
    select_patches,
    ink_mask,
    match_page,
    overlay_score,
    reference_for,
    scale_matrix,
    to_gray,
)
from faxflow.templates.model import Template
from faxflow.templates.types import AlignedPage, Page

PATCH_MM = 8.0  # patch side
GRID_MM = 22.0  # at most one patch per grid cell of this size
MAX_PATCHES = 80
# (search radius, RANSAC threshold) in pixels at 200 dpi. The first pass is loose so that a
# curved sheet gets a compromise fit rather than an exact fit of one corner extrapolated.
PASSES = ((16.0, 6.0), (6.0, 1.0))
MAX_ZONE = 1.0  # patches may lie in fill-in zones: there they hold only ruling (line crossings)
MIN_NCC = 0.45  # a patch counts as found above this correlation
MIN_FIT = 8  # correspondences needed for an affine fit
OK_SCORE = 0.60  # overlay score for ok (good pages >= ~0.8; 4+ px off or wrong form <= ~0.5)
OK_AGREEMENT = 0.60  # share of the patches found on the page that agree with the fit
OK_AGREE_MIN = 12  # ... and at least this many, and at least OK_COVERAGE of all patches
OK_COVERAGE = 0.2
OK_DISTINCT_MIN = 4  # distinct patches (outside the fill-in zones) that must agree ...
OK_DISTINCT_SHARE = 0.2  # ... and this share of them
TRUST_PX = 2.5  # a patch agrees with the fit when found within this many pixels (200 dpi) of its place
FIELD_LOOSE_PX = 6.0  # RANSAC threshold (200 dpi, plus the search radius) of the compromise under a curved sheet
WIDE_MM = 6.0  # first search radius, at the working resolution
FAINT_RECALL = 0.6  # less of the reference's print found on the page: note "faint-print"
TEXT_MIN_SCORE = 0.35  # overlay on printed text alone below this caps the score (misplaced grid)
SCORE_TOL_200 = 2  # overlay tolerance in pixels at 200 dpi (print weight and FAX loss vary)


@dataclass(frozen=True)
class _Patches:
    scale: float  # refine image = reference * scale
    patches: Patches  # centers in refine pixels
    static: np.ndarray  # bool printed-form mask at refine scale
    ink: np.ndarray  # bool reference ink at refine scale
    zones: np.ndarray  # bool fill-in zones at refine scale
    text_static: np.ndarray | None = None  # printed form without the ruling (None: too little of it)
    near_lines: np.ndarray | None = None  # within the score tolerance of the ruling

    @property
    def size(self) -> int:
        return self.patches.size

    @property
    def centers(self) -> np.ndarray:
        return self.patches.centers

    @property
    def images(self) -> tuple[np.ndarray, ...]:
        return self.patches.images

    def __len__(self) -> int:
        return len(self.patches)


def _patches(ref: Reference) -> _Patches:
    """Distinctive patches of the printed form at refine resolution (cached in the Reference)."""
    cached = ref.extra.get("align_patches")
    if cached is not None:
        return cached
    s = ref.fine_scale
    static, zones = ref.fine_static, ref.fine_zones
    px200 = ref.dpi * s / 200.0  # refine pixels per 200-dpi pixel
    mm = ref.dpi * s / 25.4
    pts = select_patches(static, zones, size=int(round(PATCH_MM * mm)), search=int(math.ceil(PASSES[0][0] * px200)),
                         grid=int(round(GRID_MM * mm)), max_n=MAX_PATCHES, max_zone=MAX_ZONE)
    tol = max(1, int(round(SCORE_TOL_200 * px200)))
    near_lines = cv2.dilate(ref.fine_lines.astype(np.uint8), np.ones((2 * tol + 3, 2 * tol + 3), np.uint8)) > 0
    text_static = static & ~near_lines
    enough = np.count_nonzero(text_static) >= 400 * px200 * px200
    p = _Patches(scale=s, patches=pts, static=static, ink=ref.fine_ink, zones=zones,
                 text_static=text_static if enough else None, near_lines=near_lines)
    ref.extra["align_patches"] = p
    return p


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    ph = np.c_[pts, np.ones(len(pts))] @ m.T
    return ph[:, :2] / ph[:, 2:3]


def _spread(pts: np.ndarray, shape: tuple[int, int]) -> int:
    """How many quadrants of the image hold at least one point."""
    h, w = shape
    q = set(zip((pts[:, 0] > w / 2).tolist(), (pts[:, 1] > h / 2).tolist()))
    return len(q)


def _fit(src: np.ndarray, dst: np.ndarray, thr: float, shape: tuple[int, int],
         allow_h: bool) -> tuple[np.ndarray | None, np.ndarray, str]:
    """Page->reference model from correspondences: affine, or homography when it clearly helps."""
    if len(src) < MIN_FIT:
        return None, np.zeros(len(src), bool), "too-few-patches"
    a, inl = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thr, maxIters=4000,
                                  confidence=0.999, refineIters=20)
    if a is None:
        return None, np.zeros(len(src), bool), "fit-failed"
    inl = inl.ravel().astype(bool)
    A = np.vstack([a, [0, 0, 1]])
    model, kind = A, "affine"
    if allow_h and len(src) >= 12 and _spread(dst, shape) >= 3:
        res_a = np.linalg.norm(_apply(A, src[inl]) - dst[inl], axis=1)
        Hm, hin = cv2.findHomography(src, dst, cv2.RANSAC, thr, maxIters=4000, confidence=0.999)
        if Hm is not None:
            hin = hin.ravel().astype(bool)
            common = inl & hin
            res_h = np.linalg.norm(_apply(Hm, src[common]) - dst[common], axis=1) if common.any() else res_a
            rms_a = float(np.sqrt(np.mean(res_a ** 2)))
            rms_h = float(np.sqrt(np.mean(res_h ** 2)))
            if hin.sum() >= 8 and ((hin.sum() > inl.sum() * 1.1)
                                   or (rms_a > 0.35 * thr and rms_h < 0.7 * rms_a and hin.sum() >= inl.sum())):
                model, inl, kind = Hm / Hm[2, 2], hin, "homography"
    return model, inl, kind


def _fallback_transform(page_shape: tuple[int, int], page_dpi: float, ref: Reference) -> np.ndarray:
    s = ref.dpi / page_dpi if page_dpi and 40 <= page_dpi <= 1200 else ref.shape[1] / page_shape[1]
    return scale_matrix(s)


# --------------------------------------------------------------------------------------
# the warp: a global model plus, for curved sheets, a smooth residual field


def _poly_terms(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    cols = [np.ones_like(x)]
    for d in range(1, degree + 1):
        for i in range(d + 1):
            cols.append(x ** (d - i) * y ** i)
    return np.stack(cols, axis=-1)


@dataclass(frozen=True)
class _Field:
    """Smooth displacement R(x) (reference pixels) fitted to patch residuals:
    reference point x shows page point model^-1(x - R(x)). Outside the box of the
    patches it is held constant (no polynomial extrapolation)."""

    degree: int
    coef: np.ndarray  # (terms, 2)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the patches (reference pixels)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        x = (np.clip(pts[..., 0], x0, x1) - x0) / max(x1 - x0, 1) * 2 - 1
        y = (np.clip(pts[..., 1], y0, y1) - y0) / max(y1 - y0, 1) * 2 - 1
        return _poly_terms(x, y, self.degree) @ self.coef


def _fit_field(pts: np.ndarray, resid: np.ndarray, tol: float) -> tuple[_Field | None, np.ndarray]:
    """Robust polynomial fit of residuals; (field, inlier mask) or (None, ...) if too few points."""
    n = len(pts)
    degree = 3 if n >= 30 else 2 if n >= 15 else 0
    if degree == 0:
        return None, np.zeros(n, bool)
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    box = (float(x0), float(y0), float(x1), float(y1))
    keep = np.ones(n, bool)
    field = None
    for _ in range(4):
        if keep.sum() < (10 if degree == 3 else 6) + 3:
            return None, keep
        f = _Field(degree, np.zeros((1, 2)), box)
        a = _poly_terms(*(((np.clip(pts[keep, i], box[i], box[i + 2]) - box[i]) / max(box[i + 2] - box[i], 1) * 2 - 1)
                          for i in (0, 1)), degree)
        coef, *_ = np.linalg.lstsq(a, resid[keep], rcond=None)
        field = _Field(degree, coef, box)
        err = np.linalg.norm(field(pts) - resid, axis=1)
        new = err <= max(tol, 2.5 * float(np.median(err[keep])))
        if np.array_equal(new, keep):
            break
        keep = new
        del f
    if field is None:
        return None, keep
    err = np.linalg.norm(field(pts) - resid, axis=1)
    return field, err <= tol


@dataclass(frozen=True)
class _Warp:
    model: np.ndarray  # page -> reference (3x3, full resolution)
    field: _Field | None = None

    def ref_to_page(self, pts: np.ndarray) -> np.ndarray:
        """Reference pixels (full resolution) -> page pixels."""
        q = pts - self.field(pts) if self.field is not None else pts
        return _apply(np.linalg.inv(self.model), q)

    def render(self, gray: np.ndarray, shape: tuple[int, int], scale: float = 1.0,
               border: int = 255) -> np.ndarray:
        """The page in the reference frame, at ``scale`` of the reference resolution."""
        S = scale_matrix(scale)
        interp = cv2.INTER_AREA if scale < 1 and self.field is None else cv2.INTER_LINEAR
        if self.field is None:
            return cv2.warpPerspective(gray, S @ self.model, (shape[1], shape[0]), flags=interp,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=border)
        step = 8
        gh, gw = (shape[0] + step - 1) // step + 1, (shape[1] + step - 1) // step + 1
        gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float64) * step
        ref = np.stack([(gx + 0.5) / scale - 0.5, (gy + 0.5) / scale - 0.5], axis=-1)  # output px -> reference px
        page = self.ref_to_page(ref.reshape(-1, 2)).reshape(gh, gw, 2).astype(np.float32)
        # upsample the coarse map (the mapping is smooth) to every output pixel
        mx = cv2.resize(page[..., 0], (gw * step, gh * step), interpolation=cv2.INTER_LINEAR)
        my = cv2.resize(page[..., 1], (gw * step, gh * step), interpolation=cv2.INTER_LINEAR)
        off = step / 2 - 0.5  # resize aligns pixel centres: shift back to the grid nodes
        tx = np.float32([[1, 0, -off], [0, 1, -off]])
        mx = cv2.warpAffine(mx, tx, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        my = cv2.warpAffine(my, tx, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.remap(gray, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def _correspondences(gray: np.ndarray, pt: _Patches, warp: _Warp, search: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference points, page points, distinct flags) of the patches found on the page
    within +-``search`` pixels (of the patches' scale) of where ``warp`` puts them;
    points in full-resolution pixels."""
    warped = blur(warp.render(gray, pt.static.shape, pt.scale))
    found, disp, _ = find_patches(warped, pt.patches, search, MIN_NCC)
    Sinv = np.linalg.inv(scale_matrix(pt.scale))
    ref_pts = _apply(Sinv, pt.centers[found])  # full-resolution reference pixels
    seen = _apply(Sinv, pt.centers[found] + disp[found])
    return ref_pts, warp.ref_to_page(seen), pt.patches.distinct[found]


def _work_patches(ref: Reference) -> _Patches:
    """Patches at the working resolution (~100 dpi) for the wide first search (cached)."""
    cached = ref.extra.get("align_work_patches")
    if cached is not None:
        return cached
    mm = WORK_DPI / 25.4
    pts = select_patches(ref.work_static, ref.work_zones, size=int(round(PATCH_MM * mm)) + 2,
                         search=int(math.ceil(WIDE_MM * mm)), grid=int(round(GRID_MM * mm)), max_n=MAX_PATCHES,
                         max_zone=MAX_ZONE)
    p = _Patches(scale=ref.work_scale, patches=pts, static=ref.work_static, ink=ref.work_ink, zones=ref.work_zones)
    ref.extra["align_work_patches"] = p
    return p


def _stage(gray: np.ndarray, ref: Reference, pt: _Patches, warp: _Warp, search: int, strict: float, loose: float,
           allow_homography: bool, allow_field: bool, trust: float) -> tuple[_Warp | None, dict]:
    """One refinement step: find the patches around where ``warp`` puts them, fit a global
    model (strict RANSAC threshold); if that leaves many patches unexplained (a curved
    sheet), fit a loose compromise plus a smooth residual field instead."""
    ref_pts, page_pts, dist = _correspondences(gray, pt, warp, search)
    n = len(pt)
    info = {"found": len(ref_pts), "agree": 0, "model": "coarse-patches-not-found", "agreement": 0.0, "rms": 0.0,
            "found_d": int(dist.sum()), "agree_d": 0}
    if len(ref_pts) < MIN_FIT:
        return None, info
    src, dst = page_pts.astype(np.float32), ref_pts.astype(np.float32)
    model, inl, kind = _fit(src, dst, strict, ref.shape, allow_homography)
    if model is None:
        info["model"] = f"coarse-{kind}"
        return None, info
    rigid = _Warp(model / model[2, 2])
    err = np.linalg.norm(ref_pts - _apply(rigid.model, page_pts), axis=1)
    near = err <= trust  # patches found where the fit puts them (what trust is counted on)
    info.update(agree=int(near.sum()), model=kind, agreement=float(near.sum()) / n, agree_d=int((near & dist).sum()),
                rms=float(np.sqrt(np.mean(err[inl] ** 2))) if inl.any() else 0.0)
    if not (allow_field and len(ref_pts) >= 15 and inl.sum() < 0.85 * len(ref_pts)):
        return rigid, info
    lmodel, linl, lkind = _fit(src, dst, loose, ref.shape, allow_homography)
    if lmodel is None:
        return rigid, info
    lw = _Warp(lmodel / lmodel[2, 2])
    resid = ref_pts - _apply(lw.model, page_pts)
    near = np.linalg.norm(resid, axis=1) <= 2.5 * loose
    field, fin_near = _fit_field(ref_pts[near], resid[near], strict)
    if field is None:
        return rigid, info
    fin = np.zeros(len(ref_pts), bool)
    fin[np.flatnonzero(near)] = fin_near
    if fin.sum() < max(1.2 * inl.sum(), 15):
        return rigid, info
    e = np.linalg.norm(field(ref_pts[fin]) - resid[fin], axis=1)
    near = np.linalg.norm(field(ref_pts) - resid, axis=1) <= trust
    info.update(agree=int(near.sum()), model=f"{lkind}+field{field.degree}", agreement=float(near.sum()) / n,
                agree_d=int((near & dist).sum()), rms=float(np.sqrt(np.mean(e ** 2))))
    return _Warp(lw.model, field), info


def refine(gray: np.ndarray, ref: Reference, transform: np.ndarray, *, allow_homography: bool = True,
           allow_field: bool = True) -> tuple[_Warp, dict]:
    """Refine a page->reference transform with the template's patches. Returns (warp, info).

    Stages: +-``WIDE_MM`` at ~100 dpi (catches a coarse fit that is millimetres off in
    places, e.g. a curved photo), then ``PASSES`` at up to 200 dpi; the last one decides
    ``agreement`` (patches found where the final warp says, over all patches).
    """
    pt = _patches(ref)
    px200 = ref.dpi / 200.0  # full-resolution reference pixels per 200-dpi pixel
    info = {"patches": len(pt), "agree": 0, "model": "coarse", "agreement": 0.0, "rms": 0.0,
            "distinct": int(pt.patches.distinct.sum()), "agree_d": 0, "found_d": 0}
    warp = _Warp(np.asarray(transform, float))
    if len(pt) < MIN_FIT:
        info["model"] = "coarse-few-patches"
        return warp, info
    wpt = _work_patches(ref)
    if len(wpt) >= MIN_FIT:
        w2, _ = _stage(gray, ref, wpt, warp, int(math.ceil(WIDE_MM * WORK_DPI / 25.4)), 4.0 * px200,
                       16.0 * px200, allow_homography, allow_field, 4.0 * px200)
        if w2 is not None:
            warp = w2
    for radius, thr in PASSES:
        search = max(2, int(math.ceil(radius * px200 * pt.scale)))
        w2, st = _stage(gray, ref, pt, warp, search, thr * px200, FIELD_LOOSE_PX * px200 + radius * px200,
                        allow_homography, allow_field, TRUST_PX * px200)
        info.update(agree=st["agree"], found=st["found"], model=st["model"], agreement=st["agreement"],
                    rms=st["rms"] / px200, agree_d=st["agree_d"], found_d=st["found_d"])
        if w2 is None:
            return warp, info
        warp = w2
    if warp.field is not None:
        # verify on the re-rendered page: patches must now sit where the field says
        ref2, page2, dist2 = _correspondences(gray, pt, warp, max(2, int(math.ceil(3.0 * px200 * pt.scale))))
        if len(ref2) >= 15:
            resid2 = ref2 - _apply(warp.model, page2)
            field2, fin2 = _fit_field(ref2, resid2, PASSES[-1][1] * px200)
            if field2 is not None:
                e2 = np.linalg.norm(field2(ref2[fin2]) - resid2[fin2], axis=1)
                near2 = np.linalg.norm(field2(ref2) - resid2, axis=1) <= TRUST_PX * px200
                warp = _Warp(warp.model, field2)
                info.update(agree=int(near2.sum()), found=len(ref2), agree_d=int((near2 & dist2).sum()),
                            found_d=int(dist2.sum()),
                            model=f"{info['model'].split('+')[0]}+field{field2.degree}",
                            agreement=float(near2.sum()) / len(pt),
                            rms=float(np.sqrt(np.mean(e2 ** 2))) / px200 if fin2.any() else 0.0)
    return warp, info


def _drop_specks(mask: np.ndarray, max_area: int) -> np.ndarray:
    """``mask`` without isolated dots: ink pixels with at most ``max_area`` ink pixels in
    their 5x5 neighbourhood (cheaper than connected components on a whole page)."""
    u8 = mask.astype(np.uint8)
    n = cv2.boxFilter(u8, cv2.CV_16U, (5, 5), normalize=False)
    return mask & (n > max_area)


def _valid_region(page_shape: tuple[int, int], warp: "_Warp", shape: tuple[int, int], scale: float,
                  erode: int = 3) -> np.ndarray:
    """Where the page lands in the (scaled) reference frame: the page outline under the
    global model, shrunk by ``erode`` pixels."""
    h, w = page_shape
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
    # densify the outline so a homography's curved image of it stays close
    pts = np.concatenate([corners[i] + (corners[(i + 1) % 4] - corners[i]) * t[:, None]
                          for i in range(4) for t in [np.linspace(0, 1, 8, endpoint=False)]])
    q = _apply(scale_matrix(scale) @ warp.model, pts)
    out = np.zeros(shape, np.uint8)
    if np.all(np.isfinite(q)):
        cv2.fillPoly(out, [np.round(q).astype(np.int32)], 1)
    if erode:
        out = cv2.erode(out, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return out > 0


def alignment_score(gray: np.ndarray, ref: Reference, transform: np.ndarray | _Warp,
                    aligned: np.ndarray | None = None) -> tuple[float, float, float]:
    """(score, recall, precision): how well the page, warped by ``transform``, overlays the
    reference's printed form, at refine resolution with a 2-px (200 dpi) tolerance.
    ``aligned`` (the full-resolution warp) is reused when the reference is at refine scale."""
    pt = _patches(ref)
    warp = transform if isinstance(transform, _Warp) else _Warp(np.asarray(transform, float))
    shape = pt.static.shape
    if aligned is not None and pt.scale == 1.0:
        page = aligned
    else:
        page = warp.render(gray, shape, pt.scale)
    page_ink = ink_mask(page)
    px200 = ref.dpi * pt.scale / 200.0
    page_ink = _drop_specks(page_ink, int(round(3 * px200 * px200)))
    valid = _valid_region(gray.shape[:2], warp, shape, pt.scale)
    tol = max(1, int(round(SCORE_TOL_200 * px200)))
    score, recall, precision = overlay_score(pt.static, pt.ink, pt.zones, page_ink, valid, tol)
    # the same on the printed text alone (ruling left out): a ruled table one row or one
    # column off still overlays its lines, never its title and column headings
    if pt.text_static is not None:
        near_lines = pt.near_lines
        t_score, _, _ = overlay_score(pt.text_static, pt.ink, pt.zones | near_lines, page_ink & ~near_lines, valid, tol)
        if t_score < TEXT_MIN_SCORE:  # (moderately low is normal: writing outside the template's boxes)
            score = min(score, t_score)
    return score, recall, precision


def prepare(template: Template) -> None:
    """Do a template's one-off work now (reference features and masks, the patches of
    matching and alignment, ~0.1-0.3 s each), e.g. when a worker starts, so that its
    first page is as fast as the rest. Raises ``TemplateError`` for an unreadable image."""
    ref = reference_for(template)
    match_patches(ref)
    _patches(ref)
    _work_patches(ref)


def _trusted(info: dict) -> bool:
    """Enough patches agree with the fit - and enough of the distinct ones (text, box
    corners): line crossings alone also agree with a fit one row or one column off."""
    agree, found = info.get("agree", 0), max(1, info.get("found", 0))
    agree_d, found_d, n_d = info.get("agree_d", 0), max(1, info.get("found_d", 0)), info.get("distinct", 0)
    return (agree >= OK_AGREE_MIN and agree / found >= OK_AGREEMENT and info.get("agreement", 0.0) >= OK_COVERAGE
            and agree_d >= max(OK_DISTINCT_MIN, OK_DISTINCT_SHARE * n_d) and agree_d / found_d >= OK_AGREEMENT
            and not str(info["model"]).startswith(("coarse", "error")))


def align_page(page: Page, template: Template, match: MatchResult | None = None) -> AlignedPage:
    """The page warped onto the template's reference (its size, its dpi), with a trust score.

    Never raises for a bad page: a failed alignment comes back with ``ok=False``, the
    best transform found, and the reason in ``notes``.
    """
    notes: list[str] = []
    gray = to_gray(np.asarray(page.image))
    ref = reference_for(template)
    h, w = ref.shape
    transform = None
    if match is not None and match.transform is not None and (match.template is None
                                                              or match.template.name == template.name):
        transform = np.asarray(match.transform, float)
    else:
        m2 = match_page(gray, page.dpi, [template])
        if m2.transform is not None:
            transform = m2.transform
            match = m2
        else:
            notes.append("align:no-feature-match")
    if transform is None:
        transform = _fallback_transform(gray.shape[:2], page.dpi, ref)
        notes.append("align:dpi-guess")
    if match is not None and match.rotation:
        notes.append(f"rotated-{match.rotation}")

    sub = gray[::3, ::3]
    binary = bool(np.count_nonzero((sub > 40) & (sub < 215)) < 0.02 * sub.size)
    try:
        warp, info = refine(gray, ref, transform)
    except Exception as exc:  # noqa: BLE001 - a degenerate page/transform: keep the coarse fit, flagged
        warp = _Warp(np.asarray(transform, float))
        info = {"patches": 0, "agree": 0, "model": f"error:{type(exc).__name__}", "agreement": 0.0, "rms": 0.0}
    if not _trusted(info) and not np.allclose(warp.model, transform):
        # refinement found too little to trust: keep whichever of it and the coarse
        # transform overlays the reference better (both will be flagged)
        if alignment_score(gray, ref, _Warp(np.asarray(transform, float)))[0] > alignment_score(gray, ref, warp)[0]:
            warp = _Warp(np.asarray(transform, float))
            info["model"] = f"coarse({info['model']})"
    image = warp.render(gray, (h, w))
    if binary:
        image = np.where(image < 170, 0, 255).astype(np.uint8)  # 170 keeps a 1-px line split over 2 pixels
    score, recall, precision = alignment_score(gray, ref, warp, image)
    ok = score >= OK_SCORE and _trusted(info)
    notes.append(f"align:{info['model']} patches={info['agree']}/{info.get('found', 0)}/{info['patches']} "
                 f"distinct={info.get('agree_d', 0)}/{info.get('found_d', 0)}/{info.get('distinct', 0)} "
                 f"rms={info['rms']:.2f}px "
                 f"score={score:.2f} recall={recall:.2f} precision={precision:.2f}")
    if recall < FAINT_RECALL:
        # much of the form's own print did not come through (light toner, a FAX at a
        # light threshold): an empty-looking cell on this page may have lost its writing
        notes.append(f"faint-print:recall={recall:.2f}")
    if not ok:
        notes.append("alignment_doubtful")
    return AlignedPage(page=page, template_name=template.name, image=image, transform=warp.model,
                       score=float(score), ok=bool(ok), notes=tuple(notes))
