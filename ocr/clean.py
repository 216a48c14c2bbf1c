"""clean_page(): Page -> Page with a binarized (0/255), upright, straight image.

The steps, in this order (each reads what the one before left):

1. **binarize** - a grey page below 180 dpi (phone photo, 150-dpi scan) is first
   scaled up to 200 dpi (note ``upsampled-from=130dpi``); then divide by a background estimate (uneven light in phone photos, grey
   paper, edge shadows); then one threshold for black-and-white input (FAX), raised
   locally for faint strokes in grey scans and photos. Black-and-white input is
   otherwise taken as it came, unless it is a halftone: a page sent in photo
   mode (dots *with holes between them* in at least 2 % of its ~4 mm tiles; FAX
   standard mode judged at its own line height) is blurred and thresholded as a
   whole, so dithered text turns into solid strokes instead of dust. Thin or broken
   strokes of light print are not a halftone (they were blurred into blobs before).
   The desk around a photographed sheet is cut away.
2. **remove FAX streaks** - thin lines along a scan axis that run into the edge of the
   scan over at least a tenth of the page, usually all of it (dirt on the scanner
   glass, transmission errors). Done in scan coordinates, before deskewing, because
   that is where they are straight. Form ruling never reaches the edge of the scan,
   and a frame line ending in a corner is kept.
3. **thin print** - black-and-white print whose strokes are one or two pixels wide
   (light toner, a low threshold, a sheet FAXed shrunk; not FAX standard mode, whose
   scan lines are doubled; nor heavy print that is thin but whole) is made one pixel
   bolder (2x2 dilation): it reads much better so, and survives deskewing. Note
   ``thin-print-thickened``.
4. **despeckle** - small components far from characters and from other small blobs
   (sizes scale with dpi). Light print broken into speck-sized pieces keeps its
   pieces: they have more ink around them than random specks ever have.
5. **FAX header** - a thin line of small text at the very top of the received image
   (sender, number, date, page), with nothing of the form touching it, is whitened.
   It is looked for before turning the page (the header is at the top of what was
   *received*), and again after a half turn. Conservative: tall text (a title) or a
   line sitting on the form is never erased. The line as it was is kept on the page
   (``Page.header_strip``, upright: cut before any turn, or after the half turn that
   found it) for reading the sending date.
6. **orientation** - 0/90/180/270: the direction text lines run (90/270 vs 0/180)
   from where characters line up into longer lines; up or down by reading a few
   lines both ways with Tesseract (jpn, one API per process) and where the biggest
   characters (the title) are. The alternatives, best first, go into the notes for
   the alignment stage.
7. **deskew** - projection-profile search over +-5 degrees on all ink (ruling and
   text lines), coarse at ~100 dpi, then fine at full resolution (error < 0.1 degree
   on the samples).

The page keeps its dpi (except a low-resolution grey page, see 1.): alignment warps to
the template's resolution.

Notes (conventions): ``rotated-90`` = the image was turned 90 degrees clockwise;
``deskew=-1.40`` = the image was turned by -1.40 degrees (counter-clockwise
positive, OpenCV's convention); ``orientation-candidates=0,180,90,270`` = clockwise
turns of the *cleaned* image, most likely first (see :func:`orientation_candidates`).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from faxflow.templates.types import Page

MAX_SKEW = 5.0  # degrees searched either side of the axis
_TESSDATA_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)


# ====================================================================================
# public API
# ====================================================================================
def clean_page(page: Page, *, debug_dir: Path | None = None, tessdata: Path | None = None,
               detect_orientation: bool = True, use_tesseract: bool = True) -> Page:
    """Binarize, remove streaks, thicken thin print, remove specks/FAX header, turn upright, deskew.

    ``tessdata``: folder with ``jpn.traineddata`` (None: the usual system folders),
    used to read a few lines both ways up. ``use_tesseract=False`` decides up/down from
    the layout alone. ``detect_orientation=False`` leaves 0/90/180/270 alone.
    If ``debug_dir`` is given, ``p001_clean.png`` (1-based page number) is written there.
    """
    dpi = float(page.dpi) if page.dpi and page.dpi > 0 else 200.0
    notes: list[str] = []
    grey_in, dpi, up = upsample_low_res(page.image, dpi)
    if up:
        notes.append(f"upsampled-from={up:.0f}dpi")
    ink, bnotes = binarize(grey_in, dpi)
    notes += bnotes

    ink, n_streaks = remove_streaks(ink, dpi)
    if n_streaks:
        notes.append(f"streaks-removed={n_streaks}")
    grey = grey_in if grey_in.ndim == 2 else cv2.cvtColor(grey_in, cv2.COLOR_BGR2GRAY)
    if "dithered" not in bnotes and _mostly_bilevel(grey):
        ink, thickened = thicken_thin_print(ink, dpi)
        if thickened:
            notes.append("thin-print-thickened")
    # One labelling serves despeckle, the header check's aftermath and orientation.
    labels, stats = _components(ink)
    remove = _speckles(labels, stats, dpi, blurred="dithered" in bnotes, grown="thin-print-thickened" in notes)
    if remove.any():
        notes.append(f"specks-removed={int(np.count_nonzero(remove))}")
        ink = _keep_lut(remove)[labels]
    header = fax_header_box(ink, dpi)
    strip = None
    if header is not None:
        hx0, hy0, hx1, hy1 = header
        strip = cv2.bitwise_not(ink[hy0:hy1, hx0:hx1])  # kept: the sending date is read from it
        ink[hy0:hy1, hx0:hx1] = 0
        notes.append("fax-header-removed")
        inside = ((stats[:, cv2.CC_STAT_LEFT] >= hx0) & (stats[:, cv2.CC_STAT_TOP] >= hy0)
                  & (stats[:, cv2.CC_STAT_LEFT] + stats[:, cv2.CC_STAT_WIDTH] <= hx1)
                  & (stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT] <= hy1))
        remove |= inside
    stats = stats.copy()
    stats[remove] = 0  # gone: neither characters nor a title any more

    if detect_orientation:
        est = estimate_orientation(ink, dpi, tessdata=tessdata, use_tesseract=use_tesseract,
                                   components=(labels, stats))
        if est.turn:
            ink = rotate_quarter(ink, est.turn)
            notes.append(f"rotated-{est.turn}")
            if est.turn == 180 and header is None:
                # turned by whoever received it (FAX server, scanner software): the
                # sender's header was at the bottom and is at the top now
                header = fax_header_box(ink, dpi)
                if header is not None:
                    hx0, hy0, hx1, hy1 = header
                    strip = cv2.bitwise_not(ink[hy0:hy1, hx0:hx1])
                    ink[hy0:hy1, hx0:hx1] = 0
                    notes.append("fax-header-removed")
        notes += est.notes
        rel = [(c - est.turn) % 360 for c in est.candidates]
        notes.append("orientation-candidates=" + ",".join(str(c) for c in rel))
    del labels

    skew, _strength = estimate_skew(ink, dpi)
    if abs(skew) >= 0.05:
        ink = rotate_small(ink, -skew)
        notes.append(f"deskew={-skew:+.2f}")

    image = cv2.bitwise_not(ink)
    out = replace(page, image=image, dpi=dpi, notes=tuple(page.notes) + tuple(notes), header_strip=strip)
    if debug_dir is not None:
        debug_dir = Path(debug_dir)
        debug_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(debug_dir / f"p{page.number:03d}_clean.png"), image)
    return out


def orientation_candidates(page: Page, *, tessdata: Path | None = None, use_tesseract: bool = True) -> list[int]:
    """Clockwise quarter turns (0, 90, 180, 270) that may make ``page`` upright, best first.

    For a page that came out of :func:`clean_page` this is read from its notes (no work:
    ``[0, ...]``, the alternatives after the turn clean_page made); otherwise the page is
    binarized and estimated.
    """
    for note in reversed(page.notes):
        if note.startswith("orientation-candidates="):
            return [int(v) for v in note.split("=", 1)[1].split(",") if v]
    dpi = float(page.dpi) if page.dpi and page.dpi > 0 else 200.0
    ink = _as_ink(page.image, dpi)
    return list(estimate_orientation(ink, dpi, tessdata=tessdata, use_tesseract=use_tesseract).candidates)


def rotate_quarter(image: np.ndarray, turn: int) -> np.ndarray:
    """Turn ``image`` clockwise by ``turn`` degrees (a multiple of 90)."""
    k = (turn // 90) % 4
    if k == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, -k))


# ====================================================================================
# 1. binarization
# ====================================================================================
LOW_RES_DPI = 180.0  # grey pages below this are scaled up before binarizing ...
UPSAMPLE_TO = 200.0  # ... to this resolution


def upsample_low_res(image: np.ndarray, dpi: float) -> tuple[np.ndarray, float, float]:
    """A grey page below ``LOW_RES_DPI`` scaled up (bicubic) to ``UPSAMPLE_TO`` dpi.

    Returns (image, dpi, original dpi, 0 when left alone). A phone photo of a whole
    sheet or a 150-dpi office scan has its small print a few pixels high; the grey
    levels still hold where a stroke's edge lies, which binarizing at that
    resolution throws away (alignment then blows the blocky result up to the
    template's dpi). Measured on the headline eval's two 130-dpi photos: 27.5 ->
    44.9 % of fields right (300 dpi instead: 45.7 %, for 2.25x the pixels); eight
    300-dpi scans shrunk to 150 dpi: 93.5 -> 94.1 %. Black-and-white input (FAX) has
    no grey to recover and is left alone.
    """
    if dpi >= LOW_RES_DPI:
        return image, dpi, 0.0
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if _is_bilevel(grey):
        return image, dpi, 0.0
    f = UPSAMPLE_TO / dpi
    h, w = grey.shape
    big = cv2.resize(grey, (int(round(w * f)), int(round(h * f))), interpolation=cv2.INTER_CUBIC)
    return big, UPSAMPLE_TO, dpi


def binarize(grey: np.ndarray, dpi: float) -> tuple[np.ndarray, list[str]]:
    """Grey page -> ink mask (uint8, 255 = ink). Notes: ``dithered``."""
    if grey.ndim != 2:
        grey = cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY)
    notes: list[str] = []
    norm = normalize_background(grey, dpi)
    if _mostly_bilevel(grey):
        ink = _below(norm, _threshold(norm))
    else:
        ink = _local_threshold(norm, dpi)
    # Halftone dots come from FAX machines (photo mode) and bilevel scanners; in a grey
    # image, noise at stroke edges would only look like them.
    mask = dither_mask(ink, dpi) if _mostly_bilevel(grey) else None
    if mask is not None:
        ink = _rebinarize_dithered(norm, ink, mask, dpi)
        notes.append("dithered")
    paper = paper_region(grey, dpi)
    if paper is not None:
        ink = cv2.bitwise_and(ink, paper)
        notes.append("background-removed")
    return ink, notes


def paper_region(grey: np.ndarray, dpi: float) -> np.ndarray | None:
    """The sheet in a photo taken on a darker desk: mask (255 = paper), or None.

    Dividing by the background evens out the light on the sheet but turns the desk
    into blotches and a black band around the sheet. The sheet is the largest bright
    region at ~25 dpi (text removed by a median); its convex hull is the paper. Only
    used when the outside is clearly darker (FAX, scans and PDFs are all paper).
    """
    if _is_bilevel(grey):
        return None
    h, w = grey.shape
    f = max(1, int(round(dpi / 25.0)))
    small = cv2.resize(grey, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    if min(small.shape) < 16:
        return None
    small = cv2.medianBlur(small, 5)
    t, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if n <= 1:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = stats[k, cv2.CC_STAT_AREA]
    if not (0.3 * small.size <= area <= 0.97 * small.size):
        return None
    hull = _hull(labels == k)
    # Light falling across the sheet leaves part of it as dark as Otsu's split (seen: the
    # top third of a photographed ledger, its title with it, cut off): the sheet is grown
    # from that region into whatever is brighter than half-way down to the desk. Kept
    # only when that adds a real part of the sheet (>= 3% more paper): otherwise it just
    # takes in the sheet's shadow, whose edge then reads as ink.
    dark = small[bright == 0]
    if dark.size:
        low = float(np.median(dark)) + 0.5 * (float(t) - float(np.median(dark)))
        n2, labels2, stats2, _ = cv2.connectedComponentsWithStats(
            np.where(small > low, 255, 0).astype(np.uint8), connectivity=4)
        k2 = int(np.bincount(labels2[labels == k], minlength=n2)[1:].argmax()) + 1 if n2 > 1 else 0
        if k2 and stats2[k2, cv2.CC_STAT_AREA] <= 0.97 * small.size:
            grown = _hull(labels2 == k2)
            if cv2.contourArea(grown) >= PAPER_GROWN * cv2.contourArea(hull):
                hull = grown
    inside = np.zeros_like(small)
    cv2.fillPoly(inside, [hull], 255)
    paper_level = float(np.median(small[inside > 0]))
    ring = cv2.subtract(cv2.dilate(inside, np.ones((5, 5), np.uint8)), inside)
    outside = inside == 0
    if not outside.any() or not ring.any():
        return None
    # the desk must be clearly darker, right at the edge of the sheet and all around
    if (float(small[ring > 0].mean()) > 0.75 * paper_level
            or float(small[outside].mean()) > 0.7 * paper_level):
        return None
    # the sheet's own edge and its shadow: not content
    edge = max(1, int(round(2.0 * (dpi / f) / 25.4)))
    inside = cv2.erode(inside, np.ones((2 * edge + 1, 2 * edge + 1), np.uint8))
    return cv2.resize(inside, (w, h), interpolation=cv2.INTER_NEAREST)


PAPER_GROWN = 1.03  # the sheet grown into its darker parts must be this much bigger to count


def _hull(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8) * 255, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.convexHull(max(contours, key=cv2.contourArea))


def normalize_background(grey: np.ndarray, dpi: float) -> np.ndarray:
    """Divide by the paper's brightness (estimated at ~25 dpi): paper -> 255 everywhere.

    Removes gradients, vignetting and shadows of phone photos and grey/yellow paper.
    The estimate is a max filter over ~15 mm, so text, ruling and logos up to that
    size are not taken for paper.
    """
    h, w = grey.shape
    if grey.min() == grey.max():
        return np.full_like(grey, 255)
    if _is_bilevel(grey):
        return grey  # FAX / bilevel scan: nothing to even out
    f = max(1, int(round(dpi / 25.0)))
    small = cv2.resize(grey, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    k = max(3, int(round(15.0 * (dpi / f) / 25.4)) | 1)
    bg = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.blur(bg, (k, k))
    bg = np.maximum(bg, 1)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(grey, bg, scale=255)


def _local_threshold(norm: np.ndarray, dpi: float) -> np.ndarray:
    """Threshold for grey scans and photos: the global one, raised where strokes are faint.

    Blur and defocus leave thin strokes lighter than the page's threshold; where the
    local range (max - min over ~2.5 mm) shows a stroke, the threshold is at least
    half-way between its darkest pixel and the paper, so the stroke stays whole
    at about its true width. Never above 225 (paper noise).
    """
    t_page = _threshold(norm)
    win = max(5, int(round(2.5 * dpi / 25.4)) | 1)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (win, win))
    smooth = cv2.GaussianBlur(norm, (3, 3), 0)  # sensor noise must not look like strokes
    lmin, lmax = cv2.erode(smooth, k), cv2.dilate(smooth, k)
    half = cv2.addWeighted(lmin, 0.5, lmax, 0.5, 0)
    stroke = cv2.subtract(lmax, lmin) >= 60
    t = np.where(stroke, np.maximum(half, np.uint8(min(255, t_page))), np.uint8(min(255, t_page)))
    t = np.minimum(t, 225)
    return np.where(norm < t, 255, 0).astype(np.uint8)


def _mostly_bilevel(grey: np.ndarray) -> bool:
    """Black and white with some grey at edges (a FAX resampled to square pixels)."""
    sample = grey[::5, ::5]
    return np.count_nonzero((sample > 40) & (sample < 215)) <= 0.10 * sample.size


def _is_bilevel(grey: np.ndarray) -> bool:
    sample = grey[::7, ::7]
    return np.count_nonzero((sample > 20) & (sample < 235)) < 0.002 * sample.size


def _threshold(norm: np.ndarray) -> float:
    """Otsu on the normalized page, held within sane bounds (paper is 255 now)."""
    sample = norm[::2, ::2]
    t, _ = cv2.threshold(sample, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # An almost empty page makes Otsu split paper noise; a dark page splits ink levels.
    return float(np.clip(t, 110, 200))


def dither_mask(ink: np.ndarray, dpi: float) -> np.ndarray | None:
    """Where the ink is a halftone (dots, not strokes): uint8 mask at full size, or None.

    Measured per ~4 mm tile. A halftone mixes ink and paper at the pixel scale in
    both directions: many ink pixels with at most one 4-neighbour (dots) *and* many
    paper pixels enclosed by ink on three or four sides (the holes between dots), or,
    in a light tone, ink that is almost all single dots. Thin or broken strokes of
    light print have the lonely ink pixels (a 1-px diagonal stroke has no
    4-neighbours) but hardly any holes: they are not a halftone. FAX standard mode
    stretched to square pixels repeats each scan line, which hides the holes: such a
    page (no ink one pixel tall anywhere) is judged on a copy squeezed back to half
    the height.
    A page with halftone in at least 2 % of its inked tiles was sent in photo mode:
    all of it is treated alike (rules and text there are dithered too, if less
    visibly; what a tile test misses reads much worse). Fewer such tiles are left as
    they are: a few tiles of thin print can look like that, a small picture is no
    field to read.
    """
    h, w = ink.shape
    tile = max(12, int(round(dpi * 0.16)))
    th, tw = max(1, h // tile), max(1, w // tile)
    work = ink
    if _rows_stretched(ink):
        # ink where both lines of a pair are (a line half-way between two scan lines,
        # interpolated, would fill the holes again)
        work = cv2.resize(ink, (w, max(1, h // 2)), interpolation=cv2.INTER_AREA)
        work = cv2.threshold(work, 191, 255, cv2.THRESH_BINARY)[1]
    dith, inked = _halftone_tiles(work, (tw, th))
    if np.count_nonzero(dith) < max(3.0, _PHOTO_MODE * np.count_nonzero(inked)):
        return None
    return np.full((h, w), 255, np.uint8)


def _rows_stretched(ink: np.ndarray) -> bool:
    """Every scan line at least twice (FAX standard mode stretched to square pixels):
    (almost) no ink is one pixel tall. Measured: 0 on all stretched pages, >= 0.0004
    of the ink on pages scanned at square pixels."""
    b = ink > 0
    n = np.count_nonzero(b)
    if n < 1000:
        return False
    single = b[1:-1] & ~b[:-2] & ~b[2:]  # (the first and last row cannot tell)
    return bool(np.count_nonzero(single) <= 1e-4 * n)


def _halftone_tiles(ink: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(halftone, inked): bool per tile of ``size`` (tiles across, down)."""
    b = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY)[1]
    nb = cv2.filter2D(b, -1, _CROSS, borderType=cv2.BORDER_CONSTANT)
    nb8 = cv2.filter2D(b, -1, _RING, borderType=cv2.BORDER_CONSTANT)
    iso = (b > 0) & (nb <= 1)  # ink with at most one 4-neighbour
    holes = (b == 0) & (nb >= 3)  # paper with ink on three or four sides
    dots = (b > 0) & (nb8 == 0)  # ink with no neighbour at all

    ink_d, iso_d, holes_d, dots_d = (_tile_means(m, size) for m in (b > 0, iso, holes, dots))
    inked = ink_d > 0.015
    dith = inked & (((iso_d >= _ISO_SHARE * ink_d) & (holes_d >= _HOLE_SHARE * ink_d))
                    | (dots_d >= _DOT_SHARE * ink_d))
    return dith, inked


def _tile_means(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Share of True per tile of a grid ``size`` (across, down) laid over ``mask``, tile
    edges at whole pixels. (Summed-area table: ~7x faster than an INTER_AREA resize of
    the float mask, the same shares to within a pixel row at each tile edge.)"""
    tw, th = size
    h, w = mask.shape
    ii = cv2.integral((mask if mask.dtype == bool else mask > 0).view(np.uint8))
    ys = np.linspace(0, h, th + 1).round().astype(np.intp)
    xs = np.linspace(0, w, tw + 1).round().astype(np.intp)
    s = ii[ys[1:, None], xs[None, 1:]] - ii[ys[:-1, None], xs[None, 1:]] \
        - ii[ys[1:, None], xs[None, :-1]] + ii[ys[:-1, None], xs[None, :-1]]
    area = np.diff(ys)[:, None] * np.diff(xs)[None, :]
    return s / np.maximum(area, 1)


# Shares of a tile's ink that make it a halftone. Measured on generated FAXes (per
# ~4 mm tile, 120 pages): thresholded pages had at most 1 % of their inked tiles so
# (most none), dithered pages 6-95 %.
_ISO_SHARE, _HOLE_SHARE, _DOT_SHARE = 0.3, 0.2, 0.5
_PHOTO_MODE = 0.02  # share of the inked tiles that makes a page dithered


_CROSS = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.float32)


def _rebinarize_dithered(norm: np.ndarray, ink: np.ndarray, mask: np.ndarray, dpi: float) -> np.ndarray:
    """Blur dithered areas into grey levels and threshold them on their own."""
    sigma = max(1.0, 1.4 * dpi / 200.0)
    blurred = cv2.GaussianBlur(norm, (0, 0), sigma)
    inside = mask > 0
    vals = blurred[inside]
    t, _ = cv2.threshold(vals.reshape(1, -1), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    t = float(np.clip(t, 90, 215))
    if inside.all():
        return _below(blurred, t)
    out = ink.copy()
    out[inside] = _below(blurred, t)[inside]
    return out


def _as_ink(image: np.ndarray, dpi: float) -> np.ndarray:
    if _is_bilevel(image):
        return _below(image, 128)
    return binarize(image, dpi)[0]


def _below(img: np.ndarray, t: float) -> np.ndarray:
    """255 where ``img < t`` (uint8 input), else 0."""
    return cv2.threshold(img, math.ceil(t) - 1, 255, cv2.THRESH_BINARY_INV)[1]


# ====================================================================================
# 2. FAX streaks
# ====================================================================================
def remove_streaks(ink: np.ndarray, dpi: float) -> tuple[np.ndarray, int]:
    """Remove thin lines along the scan axes that run into the scan's edge over >= 1/10 of the page.

    Vertical ones come from dirt on the scanner glass (along the paper feed), horizontal
    ones from transmission errors. Strokes that cross a streak are kept.
    """
    out = ink
    n = 0
    for axis in (0, 1):
        view = out if axis == 0 else out.T  # lines along axis 0 of ``view`` (vertical)
        bands = _streak_bands(view, dpi)
        if bands and out is ink:
            out = ink.copy()
            view = out if axis == 0 else out.T
        for c0, c1, _r0, _r1 in bands:
            # the whole length: a streak may be cut by a dropped scan line or two
            _erase_band(view, c0, c1, 0, view.shape[0])
        n += len(bands)
    return out, n


_STREAK_MIN = 0.1  # a streak covers at least this share of the page's length


def _streak_bands(view: np.ndarray, dpi: float) -> list[tuple[int, int, int, int]]:
    """(c0, c1, r0, r1): column bands of ``view`` holding a streak over rows r0..r1."""
    length, width = view.shape
    mm = dpi / 25.4
    counts = np.count_nonzero(view, axis=0)
    cand = counts >= _STREAK_MIN * length
    if not cand.any():
        return []
    max_w = max(2, int(round(1.0 * mm)))
    # Streaks run to the very edge of the scan (the whole scan line, or from where the
    # dirt sits to the end of the sheet); printed lines stop at the paper's margin.
    edge = max(3, int(round(0.5 * mm)))
    bands = []
    idx = np.flatnonzero(cand)
    # Adjacent columns form a group; a group splits where the count jumps (a streak
    # running along a table's rule is a separate, much longer line).
    c = counts[idx].astype(np.float64)
    jump = np.abs(np.diff(c)) > 0.25 * np.maximum(c[1:], c[:-1])
    groups = np.split(idx, np.flatnonzero((np.diff(idx) > 1) | jump) + 1)
    for g in groups:
        c0, c1 = int(g[0]), int(g[-1]) + 1
        if c1 - c0 > max_w:
            continue  # a thick bar or a black border, not a streak
        band = np.any(view[:, c0:c1] > 0, axis=1)
        r0, r1 = _longest_run(band, max_gap=max(1, int(0.5 * mm)))
        if r1 - r0 < _STREAK_MIN * length:
            continue
        if not (r0 <= edge or r1 >= length - edge):
            continue  # stops short of both edges: form ruling
        # An end inside the page that meets a perpendicular line is a corner: a frame.
        ends = [r for r, inside in ((r0, r0 > edge), (r1 - 1, r1 < length - edge)) if inside]
        if any(_joins_perpendicular(view, c0, c1, r, mm) for r in ends):
            continue
        bands.append((c0, c1, r0, r1))
    return bands


def _longest_run(on: np.ndarray, max_gap: int) -> tuple[int, int]:
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return 0, 0
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]])) + 1
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])


def _joins_perpendicular(view: np.ndarray, c0: int, c1: int, r: int, mm: float) -> bool:
    """Does a perpendicular line (>= 5 mm) meet the band at row r (+-2 px)?"""
    length, width = view.shape
    reach = int(5 * mm)
    rows = view[max(0, r - 2): r + 3]
    left = rows[:, max(0, c0 - reach): c0]
    right = rows[:, c1: c1 + reach]
    full_l = left.shape[1] >= reach * 0.9 and np.any(np.all(left > 0, axis=1))
    full_r = right.shape[1] >= reach * 0.9 and np.any(np.all(right > 0, axis=1))
    return bool(full_l or full_r)


def _erase_band(view: np.ndarray, c0: int, c1: int, r0: int, r1: int) -> None:
    length, width = view.shape
    pad = 1
    a0, a1 = max(0, c0 - pad), min(width, c1 + pad)
    left = view[r0:r1, a0 - 1] > 0 if a0 >= 1 else np.zeros(r1 - r0, bool)
    right = view[r0:r1, a1] > 0 if a1 < width else np.zeros(r1 - r0, bool)
    crossing = left & right  # a stroke passes through the streak here: keep it
    seg = view[r0:r1, a0:a1]
    seg[~crossing, :] = 0


# ====================================================================================
# 3. thin print
# ====================================================================================
THIN_INTERIOR = 0.35  # interior share of character ink below which print is thin
THIN_INTERIOR_HEAVY = 0.25  # ... from which on it must also be broken into pieces
_PIECE_PX = 6  # median component size (px at 200 dpi) of print broken into pieces


def thicken_thin_print(ink: np.ndarray, dpi: float, *, components=None) -> tuple[np.ndarray, bool]:
    """Thin black-and-white print made one pixel bolder (2x2 dilation). Returns (ink, done).

    Light print, a low threshold in the sending machine or a sheet FAXed shrunk leaves
    strokes one or two pixels wide, often broken; Tesseract (and our crops' upscaling)
    read such print far worse than the same text a pixel bolder, and turning the page
    by a fraction of a degree breaks it further. Print counts as thin when fewer than
    ``THIN_INTERIOR`` of the ink pixels of character-sized components have all four
    neighbours inked (a 2-px stroke has none, a 4-px one half). Measured on generated
    FAXes and black-and-white scans (2 x 40 documents): 64.5 -> 66.6 % and 66.2 ->
    66.4 % of printed fields right, silent errors 266 -> 222 and 110 -> 107; a 3x3
    cross (one pixel all round) read worse (64.4 % on the first set), so did blurring
    and re-thresholding (60.1 %). Not for FAX standard mode stretched to square pixels
    (every scan line is doubled, the print is bold enough: it read worse), nor where
    strokes are wide enough anyway (300-dpi scans: 0.45-0.6 of the ink is inside).
    """
    if _rows_stretched(ink):
        return ink, False
    labels, stats = components if components is not None else _components(ink)
    if len(stats) <= 1:
        return ink, False
    mm = dpi / 25.4
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    lut = np.where(np.maximum(w, h) <= 15 * mm, 255, 0).astype(np.uint8)
    lut[0] = 0
    text = cv2.bitwise_and(lut[labels], ink)
    n = np.count_nonzero(text)
    if n < 500:
        return ink, False
    inner = np.count_nonzero(cv2.erode(text, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))) / n
    if inner >= THIN_INTERIOR:
        return ink, False
    if inner >= THIN_INTERIOR_HEAVY:
        # thin, but is it broken? Heavy print at FAX resolution is as thin but whole
        # (made bolder it read worse); light print falls apart into tiny pieces.
        area = stats[1:, cv2.CC_STAT_AREA][lut[1:] > 0]
        if area.size == 0 or np.median(area) > _PIECE_PX * (dpi / 200.0) ** 2:
            return ink, False
    return cv2.dilate(ink, np.ones((2, 2), np.uint8)), True


# ====================================================================================
# 4. despeckle
# ====================================================================================
def despeckle(ink: np.ndarray, dpi: float) -> tuple[np.ndarray, int]:
    """Remove small components that are far from other ink. Returns (ink, count).

    At 200 dpi: blobs up to 6 px with no character-sized ink within 1 mm, and up to
    20 px with none within 2 mm. A decimal point, a colon or a dakuten sits closer
    than that to its characters, even in small print; what goes is dust in margins
    and empty cells (where it would make an empty field look written), also next to
    the cell's ruling. Small blobs keep each other when there are three within that
    distance, or 10 px of other ink (not ruling) within 2 mm: the pieces of light
    print broken into fragments. Sizes scale with dpi.
    """
    labels, stats = _components(ink)
    remove = _speckles(labels, stats, dpi)
    count = int(np.count_nonzero(remove))
    return (_keep_lut(remove)[labels], count) if count else (ink, 0)


def _speckles(labels: np.ndarray, stats: np.ndarray, dpi: float, *, blurred: bool = False,
              grown: bool = False) -> np.ndarray:
    """Bool per label: a speck to remove (see :func:`despeckle`). ``blurred``: the page went
    through the halftone blur, ``grown``: it was made a pixel bolder; either spreads a
    2-3 px speck into a blob twice the area."""
    n = len(stats)
    remove = np.zeros(n, bool)
    if n <= 1:
        return remove
    s2 = (dpi / 200.0) ** 2 * (2.0 if blurred or grown else 1.0)
    tiny, small = max(2, int(round(6 * s2))), max(3, int(round(20 * s2)))
    area = stats[:, cv2.CC_STAT_AREA]
    is_small = area <= small
    is_small[0] = False
    if not is_small.any():
        return remove
    mm = dpi / 25.4
    # Only character-sized ink protects a speck (a decimal point sits by its digits);
    # ruling and frames do not, or every speck in a table cell would stay.
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    protects = ~is_small & (np.maximum(w, h) <= 15 * mm)
    protects[0] = False
    big_lut = np.where(protects, 255, 0).astype(np.uint8)
    big = big_lut[labels]
    r1, r2 = max(1, int(round(1.0 * mm))), max(2, int(round(2.0 * mm)))
    near1 = cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r1 + 1, 2 * r1 + 1)))
    near2 = cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r2 + 1, 2 * r2 + 1)))
    touch1 = np.bincount(labels[near1 > 0], minlength=n) > 0
    touch2 = np.bincount(labels[near2 > 0], minlength=n) > 0
    # Small blobs keep each other when there are several: the digits of very small
    # print, a dotted line. A speck is alone, or has one other speck by chance.
    idx = np.flatnonzero(is_small)
    cx = np.clip(stats[idx, cv2.CC_STAT_LEFT] + stats[idx, cv2.CC_STAT_WIDTH] // 2, 0, labels.shape[1] - 1)
    cy = np.clip(stats[idx, cv2.CC_STAT_TOP] + stats[idx, cv2.CC_STAT_HEIGHT] // 2, 0, labels.shape[0] - 1)
    centres = np.zeros(labels.shape, np.uint8)
    centres[cy, cx] = 1
    for r, touch in ((r1, touch1), (r2, touch2)):
        k = 2 * r + 1
        around = cv2.boxFilter(centres, cv2.CV_32F, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
        touch[idx[around[cy, cx] >= 3]] = True  # itself and at least two others
    # Light print broken into fragments: each piece is small, but together they are
    # much more ink than specks scattered at random ever put within 2 mm of each other.
    # Anything but ruling and frames counts.
    elig = np.where(np.maximum(w, h) <= 15 * mm, 1, 0).astype(np.uint8)
    elig[0] = 0
    k = 2 * r2 + 1
    mass = cv2.boxFilter(elig[labels], cv2.CV_32F, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
    others = mass[cy, cx] - area[idx]
    crowd = others >= _CROWD_INK * (dpi / 200.0) ** 2 * (2.0 if grown else 1.0)
    touch1[idx[crowd]] = True
    touch2[idx[crowd]] = True
    return is_small & (((area <= tiny) & ~touch1) | ((area > tiny) & ~touch2))


_CROWD_INK = 10  # px of other ink within 2 mm (at 200 dpi) that keep a small blob


def _keep_lut(remove: np.ndarray) -> np.ndarray:
    lut = np.where(remove, 0, 255).astype(np.uint8)
    lut[0] = 0
    return lut


# ====================================================================================
# 5. FAX header line
# ====================================================================================
def remove_fax_header(ink: np.ndarray, dpi: float) -> tuple[np.ndarray, bool]:
    """Whiten the sending machine's header line at the top edge, if there surely is one.

    See :func:`fax_header_box` for what counts as a header.
    """
    box = fax_header_box(ink, dpi)
    if box is None:
        return ink, False
    out = ink.copy()
    x0, y0, x1, y1 = box
    out[y0:y1, x0:x1] = 0
    return out, True


def fax_header_box(ink: np.ndarray, dpi: float) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1) of the FAX header line at the top, or None.

    A header: a line of small characters (0.7-4.5 mm tall) whose top is within 6 mm
    of the edge, at least 4 of them, spread over 40 % of the width or starting at the
    left edge (it may be cut off there). Nothing else may touch the line, and below it
    there must be 1.2 mm of white (over the line's width). A form title is taller;
    small print sitting on the form's ruling has no white under it; both stay.
    Dust and specks are ignored (blobs under ~0.15 mm^2).
    """
    h, w = ink.shape
    mm = dpi / 25.4
    look = min(h, int(20 * mm))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink[:look], connectivity=8)
    if n <= 1:
        return None
    stats = stats[1:]
    solid = stats[:, cv2.CC_STAT_AREA] > max(3, int(10 * (dpi / 200.0) ** 2))
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    glyph = solid & (bh <= 4.5 * mm) & (bw <= 10 * mm) & (y <= 6 * mm)
    if np.count_nonzero(glyph) < 4:
        return None
    # the first line: the topmost glyph with at least 3 others whose tops are near its own
    line = None
    gy = np.sort(y[glyph])
    for top in gy:
        members = glyph & (y >= top) & (y <= top + 1.5 * mm)
        if np.count_nonzero(members) >= 4:
            line = members
            break
    if line is None:
        return None
    top = int(top)
    # plus what sits inside the line's height (periods, commas, dashes)
    y1 = int((y + bh)[line].max())
    line |= glyph & (y >= top - 1) & (y + bh <= y1 + 1)
    x0, x1 = int(x[line].min()), int((x + bw)[line].max())
    y0 = top
    if not (0.7 * mm <= y1 - y0 <= 4.5 * mm):
        return None
    # Spread over the width, or starting at the left edge (the line may be cut off
    # on the left when the sheet sat off-centre in the sender's machine).
    if not ((x1 - x0) >= 0.4 * w or (x0 <= 0.12 * w and (x1 - x0) >= 0.1 * w)):
        return None
    # Nothing else in or touching the line, and white under it.
    pad = max(1, int(round(0.5 * mm)))
    gap = int(round(1.2 * mm))
    # Dust (up to ~0.3 mm^2) near the line and thin vertical lines through it (a FAX
    # streak too short to be removed as one) do not count against it.
    area = stats[:, cv2.CC_STAT_AREA]
    others = solid & ~line & (area > 20 * (dpi / 200.0) ** 2)
    zx0, zy0, zx1, zy1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(look, y1 + gap)
    lut = np.zeros(n, np.uint8)
    lut[1:][others] = 1
    intruders = lut[labels[zy0:zy1, zx0:zx1]]
    if intruders.any():
        cols = np.count_nonzero(intruders.any(axis=0))
        if cols > 2 * max(2, int(round(0.4 * mm))):
            return None
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + max(1, gap // 2))


# ====================================================================================
# 6. orientation
# ====================================================================================
class OrientationEstimate:
    """``turn``: the clockwise turn to apply; ``candidates``: clockwise turns of the
    input, most likely first (``turn`` first); ``confidence`` in [0, 1]."""

    def __init__(self, turn: int, candidates: list[int], notes: list[str], confidence: float):
        self.turn = turn
        self.candidates = candidates
        self.notes = notes
        self.confidence = confidence

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"OrientationEstimate(turn={self.turn}, candidates={self.candidates}, conf={self.confidence:.2f})"


AXIS_SURE = 0.5  # |axis evidence| above which the text direction is taken as known
_MAX_LINES = 4  # text lines read each way
_LINE_CHARS = 12  # at most this many character widths of each line
_STOP_MARGIN = 50.0  # summed confidence difference that ends the reading early
_TITLE_WEIGHT = 50.0  # the title cue counts like this many confidence points per unit
_AXIS_WEIGHT = 60.0  # a weak layout axis counts up to this much
_AS_RECEIVED = 10.0  # bonus for leaving the page as it came
_MIN_CHARS = 8


def estimate_orientation(ink: np.ndarray, dpi: float, *, tessdata: Path | None = None,
                         use_tesseract: bool = True, components=None) -> OrientationEstimate:
    """Which clockwise quarter turn makes the page upright.

    1. Text direction (90/270 vs 0/180) from the layout: along which axis do the
       characters line up into longer text lines (:func:`_axis_evidence`). Text lines
       and table rows of a form run horizontally.
    2. Up or down: a few text lines are read with Tesseract (jpn) as they are and
       turned 180 degrees; upside-down Japanese reads with much lower confidence.
       Measured on the 5 sample forms + 3 filled order sheets, each clean, FAX
       standard, FAX fine and 150-dpi scan, turned 0/90/180/270: 128 of 128 right
       with the title cue; Tesseract OSD got 0 vs 180 right 56-59 of 64 times at
       similar cost, with confidences mostly below 2 on binarized Japanese forms.
    3. The title cue breaks near-ties: the biggest characters (the form's title) sit
       in the upper part of a form.
    When the direction is unclear (vertical writing, little text), all four turns
    are read.
    """
    notes: list[str] = []
    comps = components if components is not None else _components(ink)
    text, char_h = _text_only(ink, dpi, comps)
    small = _small_text(text, char_h) if char_h > 0 else (text, 1.0)
    axis = _axis_evidence(small[0], char_h * small[1])
    if axis is None:
        notes.append("orientation=unknown(no-text)")
        return OrientationEstimate(0, [0, 180, 90, 270], notes, 0.0)
    base = 0 if axis >= 0 else 90  # lines run vertically: a quarter turn (or three)
    axis_sure = abs(axis) >= AXIS_SURE
    notes.append(f"text-axis={'h' if axis >= 0 else 'v'}:{abs(axis):.2f}")
    turns = [base, (base + 180) % 360] if axis_sure else [base, (base + 180) % 360,
                                                         (base + 90) % 360, (base + 270) % 360]
    title = {t: _title_cue(comps, ink.shape, dpi, t) for t in turns}
    scores = {t: _TITLE_WEIGHT * title[t] for t in turns}
    if not axis_sure:
        # Weak layout evidence still counts: readings of different crops along the
        # two axes are not strictly comparable.
        for t in (base, (base + 180) % 360):
            scores[t] += _AXIS_WEIGHT * abs(axis) / AXIS_SURE
    if 0 in scores:
        scores[0] += _AS_RECEIVED  # most pages arrive upright: ties and no evidence keep them
    big_h = _title_size(comps[1], dpi, char_h)
    read = _read_scores(text, char_h, turns, tessdata, big_h=big_h, small=small) if use_tesseract else None
    if read is not None:
        for t in turns:
            scores[t] += read[t]
        notes.append("orientation-ocr=" + ",".join(f"{t}:{read[t]:.0f}" for t in turns))
    elif use_tesseract:
        notes.append("orientation-ocr-unavailable")
    if not axis_sure:
        # without reading, the layout's guess stands; reading decides among all four
        scores[base] += 0.0 if read is not None else 1.0
    ranked = sorted(turns, key=lambda t: -scores[t])
    best = ranked[0]
    margin = scores[best] - (scores[ranked[1]] if len(ranked) > 1 else 0.0)
    if read is None:
        confidence = (0.5 if axis_sure else 0.3) * (0.5 + min(1.0, abs(margin) / (_TITLE_WEIGHT * 0.6)))
    else:
        confidence = 1.0 - math.exp(-max(margin, 0.0) / 25.0)
    notes.append(f"title-cue={title[best]:+.2f}")
    notes.append(f"orientation-confidence={confidence:.2f}")
    candidates = ranked + [t for t in _candidates(best, base) if t not in ranked]
    return OrientationEstimate(best, candidates, notes, confidence)


def _candidates(best: int, base: int) -> list[int]:
    order = [best, (best + 180) % 360]
    for c in ((base + 90) % 360, (base + 270) % 360, base, (base + 180) % 360):
        if c not in order:
            order.append(c)
    return order


def _components(ink: np.ndarray):
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return labels, stats


def _char_like(stats: np.ndarray, dpi: float) -> np.ndarray:
    mm = dpi / 25.4
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    # Both sides count: the dashes of a dotted or broken rule are as long as a
    # character but one or two pixels thin.
    keep = ((np.maximum(w, h) >= 0.8 * mm) & (np.minimum(w, h) >= 0.6 * mm)
            & (w <= 12 * mm) & (h <= 12 * mm) & (stats[:, cv2.CC_STAT_AREA] >= 4))
    keep[0] = False
    return keep


def _text_only(ink: np.ndarray, dpi: float, comps=None) -> tuple[np.ndarray, float]:
    """Character-sized components only (ruling, frames, specks dropped), and the char size."""
    labels, stats = comps if comps is not None else _components(ink)
    if len(stats) <= 1:
        return np.zeros_like(ink), 0.0
    keep = _char_like(stats, dpi)
    if np.count_nonzero(keep) < _MIN_CHARS:
        return np.zeros_like(ink), 0.0
    lut = np.where(keep, 255, 0).astype(np.uint8)
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    # Character size: the upper part of the size distribution (kanji come in pieces).
    char_h = float(np.percentile(np.maximum(w[keep], h[keep]), 75))
    text = lut[labels]
    text &= ink  # components removed since labelling (header, specks) stay removed
    return text, char_h


def _title_size(stats: np.ndarray, dpi: float, char_h: float) -> float:
    """Size of the biggest characters (a title) when clearly bigger than the text; else 0."""
    keep = _char_like(stats, dpi)
    if np.count_nonzero(keep) < _MIN_CHARS:
        return 0.0
    sizes = np.maximum(stats[keep, cv2.CC_STAT_WIDTH], stats[keep, cv2.CC_STAT_HEIGHT])
    big = float(np.percentile(sizes, 98))
    return big if big >= 1.6 * char_h else 0.0


def _small_text(text: np.ndarray, char_h: float) -> tuple[np.ndarray, float]:
    """The text mask at ~10 px per character (grey, INTER_AREA) and its scale."""
    scale = min(1.0, 10.0 / char_h)
    if scale >= 1.0:
        return text, 1.0
    return cv2.resize(text, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def _axis_evidence(small: np.ndarray, ch: float) -> float | None:
    """> 0 when text lines run horizontally, < 0 vertically (a log ratio), None: no text.

    Text lines (runs of at least 3 characters) are found along both axes; the axis
    with the greater total length wins. On the sample forms (clean, FAX standard and
    fine, 150 dpi scans) the right axis won by a factor of at least 2.5 (log 0.94).
    Pages without such lines fall back on smearing characters along x and along y:
    along the lines they merge into fewer blobs.
    ``small``: the text mask at ~10 px per character (``ch`` px).
    """
    if ch <= 0:
        return None
    along = [sum(b[2] for b in _text_lines(rotate_quarter(small, t), ch)) for t in (0, 90)]
    if along[0] + along[1] >= 6 * ch:
        return math.log((along[0] + ch) / (along[1] + ch))
    small = cv2.threshold(small, 40, 255, cv2.THRESH_BINARY)[1]
    k = max(2, int(round(0.7 * ch)))
    nh = cv2.connectedComponents(cv2.dilate(small, np.ones((1, k), np.uint8)), connectivity=8)[0] - 1
    nv = cv2.connectedComponents(cv2.dilate(small, np.ones((k, 1), np.uint8)), connectivity=8)[0] - 1
    if nh + nv < 6:
        return None
    return math.log((nv + 1) / (nh + 1))


def _title_cue(comps, shape: tuple[int, int], dpi: float, turn: int) -> float:
    """> 0 when the biggest characters are in the upper half after turning clockwise by ``turn``.

    In [-0.5, 0.5]: 0.5 - the median relative height of glyphs at least 1.8x the usual size.
    """
    labels, stats = comps
    if len(stats) <= 1:
        return 0.0
    mm = dpi / 25.4
    H, W = shape
    x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    w, h = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    keep = (np.maximum(w, h) >= 0.8 * mm) & (w <= 25 * mm) & (h <= 25 * mm)
    if np.count_nonzero(keep) < _MIN_CHARS:
        return 0.0
    cx, cy = x + w / 2.0, y + h / 2.0
    k = (turn // 90) % 4  # clockwise turns: new y (from the top) and glyph height
    ny = (cy, cx, H - cy, W - cx)[k]
    nh = (h, w, h, w)[k]
    ny, nh = ny[keep], nh[keep]
    big = nh >= 1.8 * np.median(nh)
    if np.count_nonzero(big) < 2:
        return 0.0
    top, bottom = float(ny.min()), float(ny.max())
    rel = (ny[big] - top) / max(1.0, bottom - top)
    return float(0.5 - np.median(rel))


# -- reading lines both ways ----------------------------------------------------------
_ocr_state: dict = {}
_ocr_lock = threading.Lock()


def find_tessdata(explicit: Path | None = None, lang: str = "jpn") -> Path | None:
    candidates = [Path(explicit)] if explicit else [Path(c) for c in _TESSDATA_CANDIDATES]
    for c in candidates:
        if (c / f"{lang}.traineddata").is_file():
            return c
    return None


def _line_api(tessdata: Path | None):
    """One single-line jpn Tesseract API per process, for orientation only (lazy; per pid
    so a forked worker makes its own)."""
    key = (os.getpid(), str(tessdata))
    if key not in _ocr_state:
        api = None
        path = find_tessdata(tessdata, "jpn")
        if path is not None:
            try:
                import tesserocr

                api = tesserocr.PyTessBaseAPI(path=str(path) + "/", lang="jpn", psm=tesserocr.PSM.SINGLE_LINE,
                                              oem=tesserocr.OEM.LSTM_ONLY)
            except Exception:  # no tesserocr, unreadable data: layout cues only
                api = None
        _ocr_state[key] = api
    return _ocr_state[key]


def _text_lines(small: np.ndarray, ch: float, min_chars: float = 3.0) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) of horizontal text lines in ``small``, biggest first; ``ch`` is
    the character size there."""
    k = max(3, int(round(ch)))
    smear = cv2.dilate(small, np.ones((max(1, int(ch * 0.3)), k), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(smear, connectivity=8)
    boxes = [tuple(int(v) for v in s[:4]) for s in stats[1:]
             if s[2] > min_chars * ch and 0.5 * ch < s[3] < 2.5 * ch]
    boxes.sort(key=lambda b: -b[2] * b[3])
    return boxes


def _unturn_box(box: tuple[int, int, int, int], turn: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box (x, y, w, h) in an image turned clockwise by ``turn`` -> the same box in
    the unturned image of ``shape`` (H, W)."""
    x, y, w, h = box
    H, W = shape
    k = (turn // 90) % 4
    if k == 0:
        return x, y, w, h
    if k == 1:
        return y, H - x - w, h, w
    if k == 2:
        return W - x - w, H - y - h, w, h
    return W - y - h, x, h, w


def _read_scores(text: np.ndarray, char_h: float, turns: list[int], tessdata: Path | None, *,
                 big_h: float = 0.0, small: tuple[np.ndarray, float] | None = None) -> dict[int, float] | None:
    """Tesseract confidence of a few lines read at each turn, summed; None without Tesseract.

    The title line (``big_h``) comes first when there is one: big print reads best.
    A crop that yields fewer than 4 characters counts for less (a stray label or a
    piece of ruling read as a dash). Lines are found on the small copy of the text
    (``small``: image, scale) and read from the full-resolution mask.
    """
    with _ocr_lock:
        api = _line_api(tessdata)
        if api is None:
            return None
        small_img, scale = small if small is not None else _small_text(text, char_h)
        H, W = text.shape
        scores = {t: 0.0 for t in turns}
        for axis_turn in sorted({t % 180 for t in turns}):
            pair = [t for t in turns if t % 180 == axis_turn]
            s_img = rotate_quarter(small_img, axis_turn)
            lines = [(b, big_h) for b in _text_lines(s_img, big_h * scale, 2.5)[:1]] if big_h else []
            lines += [(b, char_h) for b in _text_lines(s_img, char_h * scale)[:_MAX_LINES - len(lines)]]
            tH, tW = (H, W) if axis_turn % 180 == 0 else (W, H)  # the turned full-size image
            margin = 0.0
            for i, ((x, y, w, h), size) in enumerate(lines):
                m = max(2, int(size * 0.3))
                x0, y0 = max(0, int(x / scale) - m), max(0, int(y / scale) - m)
                x1 = min(tW, int((x + w) / scale) + m, x0 + int(_LINE_CHARS * size) + 2 * m)
                y1 = min(tH, int((y + h) / scale) + m)
                ux, uy, uw, uh = _unturn_box((x0, y0, x1 - x0, y1 - y0), axis_turn, (H, W))
                crop = 255 - rotate_quarter(text[uy:uy + uh, ux:ux + uw], axis_turn)
                got = {}
                for t in pair:
                    c = np.ascontiguousarray(crop if t == axis_turn else crop[::-1, ::-1])
                    if c.size == 0:
                        got[t] = 0.0
                        continue
                    api.SetImageBytes(c.tobytes(), c.shape[1], c.shape[0], 1, c.shape[1])
                    api.Recognize()
                    confs = api.AllWordConfidences()
                    n_chars = len("".join((api.GetUTF8Text() or "").split()))
                    got[t] = float(np.mean(confs)) * min(1.0, n_chars / 4.0) if confs else 0.0
                    scores[t] += got[t]
                if len(pair) == 2:
                    margin += got[pair[0]] - got[pair[1]]
                    if abs(margin) >= _STOP_MARGIN * (1.0 if i >= 1 else 1.4):
                        break  # clear enough (one line must be clearer than two)
        return scores


# ====================================================================================
# 7. deskew
# ====================================================================================
def estimate_skew(ink: np.ndarray, dpi: float, max_angle: float = MAX_SKEW) -> tuple[float, float]:
    """(skew in degrees, strength): how far the content is turned, counter-clockwise
    positive (OpenCV's convention; lines rising to the right).

    Rotating the image by ``-skew`` straightens it. Projection profiles of all ink (rows of text, ruling) are sheared
    by tan(angle) and the sharpest is kept: coarse at ~100 dpi over +-max_angle, then
    fine at full resolution, then a parabola through the best three.
    """
    h, w = ink.shape
    f = max(1, int(round(dpi / 100.0)))
    small = ink if f == 1 else cv2.resize(ink, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(small > 64)
    if ys.size < 50:
        return 0.0, 0.0
    ys, xs = _subsample(ys, xs, 120_000)
    xs_c = xs.astype(np.float32) - small.shape[1] / 2.0
    ys_f = ys.astype(np.float32)
    coarse = np.arange(-max_angle, max_angle + 1e-6, 0.2)
    scores = np.array([_profile_score(ys_f, xs_c, a, small.shape[0]) for a in coarse])
    a0 = float(coarse[int(np.argmax(scores))])
    strength = float(scores.max() / max(np.median(scores), 1e-9))

    ys, xs = np.nonzero(ink)
    ys, xs = _subsample(ys, xs, 250_000)
    xs_c = xs.astype(np.float32) - w / 2.0
    ys_f = ys.astype(np.float32)
    step = 0.04
    fine = np.arange(a0 - 0.24, a0 + 0.24 + 1e-6, step)
    fs = np.array([_profile_score(ys_f, xs_c, a, h) for a in fine])
    i = int(np.argmax(fs))
    best = float(fine[i])
    if 0 < i < len(fine) - 1:
        y_l, y_c, y_r = fs[i - 1], fs[i], fs[i + 1]
        denom = y_l - 2 * y_c + y_r
        if denom < 0:
            best += step * 0.5 * (y_l - y_r) / denom
    # ``best`` is the slope of the lines in image coordinates (y down): descending to
    # the right is a clockwise turn, i.e. a negative skew.
    return float(np.clip(-best, -max_angle, max_angle)), strength


def _subsample(ys: np.ndarray, xs: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if ys.size <= limit:
        return ys, xs
    step = int(math.ceil(ys.size / limit))
    return ys[::step], xs[::step]


def _profile_score(ys: np.ndarray, xs_c: np.ndarray, angle: float, length: int) -> float:
    t = math.tan(math.radians(angle))
    proj = ys - xs_c * t
    idx = np.round(proj).astype(np.int64)
    lo = int(idx.min())
    prof = np.bincount(idx - lo).astype(np.float64)
    return float(np.dot(prof, prof))


def rotate_small(ink: np.ndarray, angle: float) -> np.ndarray:
    """Rotate an ink mask by ``angle`` degrees (counter-clockwise positive) about its centre,
    keeping its size; re-thresholded so the result stays 0/255."""
    h, w = ink.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    out = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.threshold(out, 127, 255, cv2.THRESH_BINARY)[1]
