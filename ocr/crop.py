"""Cut every field out of an aligned page, ruling removed, ready for OCR.

``crop_fields(aligned, template) -> list[FieldCrop]`` gives one crop per header field
and one per table cell (``"<table>[<row>].<column>"``), in template order.

Per page (``PageInk``): the ink mask and the cores of the ruling (ink runs >=
``RULING_MM``, after a 3x3 closing so slightly skewed/curved or FAX-broken lines count).

Table rows (``table_cells``): by pitch, each row boundary snapped, per column, to a
ruling line found within ``SNAP_FRACTION`` of the pitch of where the boundary above it
put the ruling (a pitch measured a little off does not add up down a long table; a
residual curve or a slanted photo still lands on the lines; unsnapped boundaries follow
their snapped neighbours); or ``rows_from == "ruling"``: the horizontal lines inside
the table box found per column (solid, or dashed - a light line a FAX dithered - when
the dashes line up across the table), merged across columns, the pitch estimated from
the gaps, lines missing in every column filled in (a gap of k pitches gets k-1 lines),
a line missing in one column interpolated from that column's lines above and below (so
a curve is followed). Column edges snap to vertical ruling within ``SNAP_MM``. Header
field boxes snap to a line within ``BOX_SNAP_MM`` of each edge.

Per cell: a window around the cell (found borders plus context). Ruling is removed
(``_strip_lines``): the line body is its core +-1 px plus the thin ink hugging it;
where writing reaches the body from both sides the body pixels stay, so a stroke
crossing a line - a diagonal one too - is not cut. The cell's own border is also found
locally (short, broken or dashed borders the page-wide pass misses). Components are
then judged by *group* (pieces of one run of writing, joined sideways across 3 mm): a
group belongs to the cell holding most of it, so a neighbour's character spilling over
the line stays with the neighbour, this cell's spilling out stays here. Dropped: specks
(isolated; small pieces crowded together are broken writing and stay), slivers and
leftovers within 1 mm of a border (dotted/dithered lines), FAX streaks (hair-thin
vertical lines through the whole cell). ``ink`` = kept dark pixels / cell area; a cell
with (almost) no ink away from the ruling is skipped fast. The image is trimmed to the
kept ink plus padding and upscaled so that a line of text is ``TEXT_TARGET_PX`` high
(Tesseract wants an x-height >= ~20 px; a 200-dpi FAX gives 10-pt text ~20 px, standard
mode less). An empty cell gives a white image of the cell's size and ink 0.

``draw_zones(image, template, aligned=None)`` draws every box, row and column for
``faxflow templates preview``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faxflow.templates.errors import TemplateError
from faxflow.templates.match import ink_mask, read_image, to_gray
from faxflow.templates.model import FieldSpec, TableSpec, Template
from faxflow.templates.types import AlignedPage, Box, FieldCrop

RULING_MM = 12.0  # an ink run this long (straight) is ruling; shorter borders are found per cell
THICK_MM = 1.2  # a horizontal stroke thicker than this is writing, not a (dashed) line
SNAP_FRACTION = 0.3  # pitch rows snap to a line within this fraction of the pitch
SNAP_MM = 3.0  # ... and never farther than this
RESIDUE_MM = 1.0  # ink lying this close to a cell border (and no further in) is left of the line
BORDER_MM = 1.5  # a cell's own border is looked for this far around its edge
EDGE_INKED = 0.7  # a header box side with no ruling but ink along this much of it is a border
BOX_SNAP_MM = 2.5  # a header field's box edge moves onto ruling this close (boxes drawn by hand)
CONTEXT_FRACTION = 0.35  # context around a cell (fraction of its height) to judge components
GROUP_MM = 3.0  # components closer than this side by side count as one run of writing
FAST_EMPTY = 0.0005  # a cell with less ink than this (away from lines, specks ignored) is empty
SPECK_PX = 4  # components up to this many pixels (at 200 dpi) are specks
SMALL_PX = 14  # ... and up to this many are dropped when isolated
CLUSTER_MM = 2.0  # small pieces with CLUSTER_N others this close are broken writing, not noise
CLUSTER_N = 3
TEXT_TARGET_PX = 40  # height of a text line in the OCR image (x-height ~22-25 px)
MAX_UPSCALE = 4.0
PAD_FRACTION = 0.3  # white border around the trimmed ink, fraction of the line height


# --------------------------------------------------------------------------------------
# page-level ink and ruling


@dataclass(frozen=True, eq=False)
class PageInk:
    ink: np.ndarray  # bool, dark pixels
    hlines: np.ndarray  # bool, horizontal ruling (the straight cores)
    vlines: np.ndarray  # bool, vertical ruling
    rough: np.ndarray  # bool, ink away from the ruling, without specks (to skip empty cells fast)
    dpi: float

    @property
    def px(self) -> float:
        """Pixels per 200-dpi pixel."""
        return self.dpi / 200.0


def _ruling(ink: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cores of the ruling: ink runs at least ``min_len`` long, after a 3x3 closing so a
    slightly skewed or curved line (1-px steps) or one with FAX dropouts still counts."""
    u8 = ink.astype(np.uint8)
    hb = cv2.morphologyEx(u8, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))  # also bridges 1-2 px dropouts
    h = cv2.morphologyEx(hb, cv2.MORPH_OPEN, np.ones((1, min_len), np.uint8))
    v = cv2.morphologyEx(hb, cv2.MORPH_OPEN, np.ones((min_len, 1), np.uint8))
    return (h > 0) & ink, (v > 0) & ink


def _row_evidence(pi: "PageInk", box: Box, margin: int) -> np.ndarray:
    """Where horizontal ruling may be, for finding row positions (not for removing
    lines): the solid ruling, plus thin horizontal dashes - a light line that a FAX has
    dithered into dashes, or a line printed dashed. Thick strokes are left out, so a line
    of text gives little evidence; the row profiles then ask for 25% coverage."""
    H, W = pi.ink.shape
    x0, y0, x1, y1 = box
    a, b = max(0, y0 - margin), min(H, y1 + margin)
    c, d = max(0, x0 - margin), min(W, x1 + margin)
    out = pi.hlines.copy()
    sub = pi.ink[a:b, c:d].astype(np.uint8)
    if sub.size == 0:
        return out
    seg = max(5, int(round(1.0 / 25.4 * pi.dpi)))  # dashes at least 1 mm long
    thick = max(6, int(round(THICK_MM / 25.4 * pi.dpi)))
    flat = cv2.morphologyEx(sub, cv2.MORPH_OPEN, np.ones((1, seg), np.uint8))
    wide = cv2.dilate(cv2.morphologyEx(flat, cv2.MORPH_OPEN, np.ones((thick, 1), np.uint8)),
                      np.ones((3, 3), np.uint8))
    dashes = (flat & (1 - wide)) > 0
    # a dashed table line runs across the whole table; strokes of writing do not line up
    # over a third of its width
    prof = cv2.dilate(dashes[:, x0 - c:x1 - c].astype(np.uint8), np.ones((3, 1), np.uint8)).mean(axis=1)
    rows = prof >= 0.35
    if rows.any():
        rows = cv2.dilate(rows.astype(np.uint8)[:, None], np.ones((3, 1), np.uint8))[:, 0] > 0
        out[a:b, c:d] |= dashes & rows[:, None]
    return out


def _strip_lines(ink: np.ndarray, core_h: np.ndarray, core_v: np.ndarray, px: float) -> np.ndarray:
    """``ink`` without the ruling whose cores are given, keeping what crosses it.

    The line body is its core plus 1 px either side; thin ink hugging the body (the
    ragged edge of a FAXed line) goes with it. Ink leaving the body across the line for
    at least 2 px is writing: where writing reaches the body from both sides (a stroke
    crossing the line, also a diagonal one), the body pixels between are kept, so the
    stroke is not cut in two.
    """
    u8 = ink.astype(np.uint8)
    zero = np.zeros_like(u8)
    body_h = cv2.dilate(core_h.astype(np.uint8), np.ones((3, 1), np.uint8)) & u8 if core_h.any() else zero
    body_v = cv2.dilate(core_v.astype(np.uint8), np.ones((1, 3), np.uint8)) & u8 if core_v.any() else zero
    out = u8 & (1 - body_h) & (1 - body_v)
    s = max(2, int(round(2 * px)))
    k = max(9, int(round(1.3 / 25.4 * 200 * px))) | 1  # bridges a line body up to ~1.2 mm thick
    remove = np.zeros(ink.shape, bool)
    if core_h.any():
        strokes = cv2.morphologyEx(out, cv2.MORPH_OPEN, np.ones((s + 1, 1), np.uint8))
        hug = (out & (1 - strokes) & cv2.dilate(body_h, np.ones((5, 1), np.uint8))) > 0
        cross = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, np.ones((k, 1), np.uint8)) > 0
        remove |= ((body_h > 0) & ~cross) | hug
    if core_v.any():
        strokes = cv2.morphologyEx(out, cv2.MORPH_OPEN, np.ones((1, s + 1), np.uint8))
        hug = (out & (1 - strokes) & cv2.dilate(body_v, np.ones((1, 5), np.uint8))) > 0
        cross = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, np.ones((1, k), np.uint8)) > 0
        remove |= ((body_v > 0) & ~cross) | hug
    # where a horizontal and a vertical line meet, neither counts as the other's stroke
    remove |= (body_h > 0) & (body_v > 0)
    return ink & ~remove


def page_ink(image: np.ndarray, dpi: float) -> PageInk:
    gray = to_gray(np.asarray(image))
    ink = ink_mask(gray)
    hl, vl = _ruling(ink, max(15, int(round(RULING_MM / 25.4 * dpi))))
    px = dpi / 200.0
    k = max(5, int(round(5 * px))) | 1
    rough = (ink & ~(cv2.dilate((hl | vl).astype(np.uint8), np.ones((k, k), np.uint8)) > 0)).astype(np.uint8)
    b = 2 * max(2, int(round(2 * px))) + 1  # a speck's neighbourhood, ~1.3 mm
    rough = (cv2.boxFilter(rough, cv2.CV_16U, (b, b), normalize=False) > min(SPECK_PX * px * px, 0.5 * b * b)) & \
        (rough > 0)
    return PageInk(ink=ink, hlines=hl, vlines=vl, rough=rough, dpi=dpi)


# --------------------------------------------------------------------------------------
# lines near a position


def _line_groups(profile: np.ndarray, thresh: float, max_gap: int = 1) -> list[tuple[int, int, float]]:
    """Runs of profile >= thresh as (first, last, weighted centre), small gaps bridged."""
    idx = np.flatnonzero(profile >= thresh)
    if idx.size == 0:
        return []
    groups = []
    start = prev = int(idx[0])
    for i in idx[1:]:
        i = int(i)
        if i - prev > max_gap + 1:
            groups.append((start, prev))
            start = i
        prev = i
    groups.append((start, prev))
    out = []
    for a, b in groups:
        w = profile[a:b + 1]
        c = float((np.arange(a, b + 1) * w).sum() / max(w.sum(), 1e-9))
        out.append((a, b, c))
    return out


def _hline_positions(mask: np.ndarray, x0: int, x1: int, y0: int, y1: int, frac: float = 0.3
                     ) -> list[tuple[int, int, float]]:
    """Horizontal lines (first row, last row, centre) crossing columns x0..x1 between y0..y1."""
    H, W = mask.shape
    x0, x1 = max(0, x0), min(W, x1)
    y0, y1 = max(0, y0), min(H, y1)
    if x1 - x0 < 3 or y1 - y0 < 1:
        return []
    prof = mask[y0:y1, x0:x1].mean(axis=1)
    return [(a + y0, b + y0, c + y0) for a, b, c in _line_groups(prof, frac)]


def _vline_positions(mask: np.ndarray, x0: int, x1: int, y0: int, y1: int, frac: float = 0.3
                     ) -> list[tuple[int, int, float]]:
    return _hline_positions(mask.T, y0, y1, x0, x1, frac)


def _nearest(groups: list[tuple[int, int, float]], pos: float, tol: float) -> tuple[int, int, float] | None:
    best = None
    for g in groups:
        d = abs(g[2] - pos)
        if d <= tol and (best is None or d < abs(best[2] - pos)):
            best = g
    return best


# --------------------------------------------------------------------------------------
# tables


def _column_ranges(pi: PageInk, table: TableSpec) -> list[tuple[float, float]]:
    """Column x-ranges snapped to the vertical ruling inside the table (if any)."""
    x0, y0, x1, y1 = table.box
    tol = SNAP_MM / 25.4 * pi.dpi
    vs = _vline_positions(pi.vlines, int(x0 - tol), int(x1 + tol + 1), y0, y1, 0.3)
    out = []
    for c in table.columns:
        a, b = float(c.box[0]), float(c.box[2])
        ga, gb = _nearest(vs, a, tol), _nearest(vs, b, tol)
        out.append((ga[2] if ga else a, gb[2] if gb else b))
    return out


def _fill_missing(rows: np.ndarray) -> np.ndarray:
    """rows: (n_boundaries, n_columns) with NaN where no line was found in that column.
    NaNs become the neighbouring columns' value plus the boundary's median offset."""
    out = rows.copy()
    n, m = out.shape
    for i in range(n):
        r = out[i]
        ok = ~np.isnan(r)
        if ok.all() or not ok.any():
            continue
        xs = np.flatnonzero(ok)
        out[i, ~ok] = np.interp(np.flatnonzero(~ok), xs, r[ok])
    return out


def _estimate_pitch(per_col: list[list[float]], min_gap: float) -> float | None:
    """The row pitch from the gaps between lines found in each column, robust to
    missing lines (gaps of 2, 3 pitches) and to a few spurious ones."""
    diffs = np.concatenate([np.diff(ys) for ys in per_col if len(ys) >= 2] or [np.zeros(0)])
    diffs = diffs[diffs > min_gap]
    if diffs.size < 2:
        return None
    p0 = float(np.percentile(diffs, 20))
    base = diffs[(diffs > 0.75 * p0) & (diffs < 1.25 * p0)]
    p1 = float(np.median(base)) if base.size else p0
    k = np.maximum(1, np.round(diffs / p1))
    fit = np.abs(diffs / k - p1) < 0.15 * p1
    return float(np.median(diffs[fit] / k[fit])) if fit.any() else p1


def _ruling_boundaries(pi: PageInk, table: TableSpec, cols: list[tuple[float, float]], ev: np.ndarray
                       ) -> np.ndarray | None:
    """Row boundaries (n_rows+1, n_columns) from the horizontal ruling inside the table box.

    Lines are found per column (so a curved sheet gives each column its own
    positions), merged across columns into the table's lines, completed where a line
    is missing in every column (gaps of k pitches get k-1 lines) and up to the table
    box's top and bottom; a line missing in one column is interpolated there from the
    lines above and below in that column (or from the other columns at the ends).
    """
    x0, y0, x1, y1 = table.box
    tol = int(round(SNAP_MM / 25.4 * pi.dpi))
    inset = max(2, int(round(3 * pi.px)))
    merge = 1.5 / 25.4 * pi.dpi  # double rules closer than 1.5 mm are one boundary
    per_col = [
        _merge_close([g[2] for g in _hline_positions(ev, int(a) + inset, int(b) - inset, y0 - tol,
                                                     y1 + tol + 1, 0.25)], merge)
        for a, b in cols
    ]
    pitch = _estimate_pitch(per_col, 2 * merge)
    if pitch is None:
        return None
    if table.row_pitch:
        # Faint ruling that a FAX kept only every k-th line of (a ledger's bold line
        # each 5 rows) gives k times the pitch: with the blank form's pitch known, the
        # rows in between are filled in below like any missing line.
        k = int(round(pitch / table.row_pitch))
        if k >= 2 and abs(pitch - k * table.row_pitch) < 0.15 * k * table.row_pitch:
            pitch /= k
    # the table's lines: detections of all columns clustered by position
    dets = sorted(y for ys in per_col for y in ys)
    if not dets:
        return None
    clusters: list[list[float]] = [[dets[0]]]
    for y in dets[1:]:
        if y - clusters[-1][-1] < 0.3 * pitch:
            clusters[-1].append(y)
        else:
            clusters.append([y])
    lines = [float(np.median(c)) for c in clusters]
    counts = [len(c) for c in clusters]
    # a line seen in one column only must sit on the pitch grid of its neighbours
    keep = []
    for i, (y, n) in enumerate(zip(lines, counts)):
        if n >= 2 or len(lines) < 3:
            keep.append(y)
            continue
        nb = [lines[j] for j in (i - 1, i + 1) if 0 <= j < len(lines)]
        if any(abs((y - v) / pitch - round((y - v) / pitch)) < 0.2 for v in nb):
            keep.append(y)
    lines = keep
    # the box edges count as lines when none was found near them
    if lines[0] - y0 > 0.5 * pitch:
        lines.insert(0, float(y0))
    if y1 - lines[-1] > 0.5 * pitch:
        lines.append(float(y1))
    filled = [lines[0]]
    for y in lines[1:]:
        gap = y - filled[-1]
        k = int(round(gap / pitch))
        if k >= 2 and abs(gap - k * pitch) < 0.3 * pitch * k:
            filled += [filled[-1] + gap * j / k for j in range(1, k)]
        filled.append(y)
    rows = np.full((len(filled), len(cols)), np.nan)
    snap = 0.35 * pitch
    for j, ys in enumerate(per_col):
        for i, f in enumerate(filled):
            near = [y for y in ys if abs(y - f) <= snap]
            if near:
                rows[i, j] = min(near, key=lambda y: abs(y - f))
    # missing in a column: from that column's lines above and below (follows a curve)
    idx = np.arange(len(filled))
    for j in range(len(cols)):
        ok = ~np.isnan(rows[:, j])
        if ok.sum() >= 2:
            inner = ~ok & (idx > idx[ok].min()) & (idx < idx[ok].max())
            rows[inner, j] = np.interp(idx[inner], idx[ok], rows[ok, j])
    # still missing (ends, empty columns): from the other columns, else the table line
    rows = _fill_missing(rows)
    for i, f in enumerate(filled):
        if np.isnan(rows[i]).any():
            rows[i, np.isnan(rows[i])] = f
    if table.row_count:
        rows = rows[: table.row_count + 1]
    return rows


def _merge_close(ys: list[float], d: float) -> list[float]:
    out: list[float] = []
    for y in ys:
        if out and y - out[-1] < d:
            out[-1] = (out[-1] + y) / 2
        else:
            out.append(y)
    return out


def _pitch_boundaries(pi: PageInk, table: TableSpec, cols: list[tuple[float, float]], ev: np.ndarray
                      ) -> np.ndarray:
    """Row boundaries from the pitch, each snapped per column to a ruling line nearby."""
    boxes = table.row_boxes()
    nominal = np.array([b[1] for b in boxes] + [boxes[-1][3]] if boxes else [table.box[1], table.box[3]], float)
    pitch = float(table.row_pitch or (table.box[3] - table.box[1]))
    tol = min(SNAP_FRACTION * pitch, SNAP_MM / 25.4 * pi.dpi)
    inset = max(2, int(round(3 * pi.px)))
    rows = np.full((len(nominal), len(cols)), np.nan)
    # a pitch measured a pixel off drifts a row's worth over a long table: each boundary
    # is looked for where the last snapped one says the ruling runs (``drift``)
    y0, y1 = int(nominal[0] - tol - 2), int(max(nominal[-1], table.box[3]) + tol + 3)
    for j, (a, b) in enumerate(cols):
        groups = _hline_positions(ev, int(a) + inset, int(b) - inset, y0, y1, 0.25)
        if not groups:
            continue
        offs = np.full(len(nominal), np.nan)
        drift = 0.0
        for i, y in enumerate(nominal):
            g = _nearest(groups, y + drift, tol)
            if g is not None:
                offs[i] = g[2] - y
                drift = float(offs[i])
        ok = ~np.isnan(offs)
        if ok.sum() == 0:
            continue
        # unsnapped boundaries follow their snapped neighbours (a residual curve or drift)
        offs[~ok] = np.interp(np.flatnonzero(~ok), np.flatnonzero(ok), offs[ok])
        rows[:, j] = nominal + offs
    for j in range(len(cols)):
        if np.isnan(rows[:, j]).all():
            rows[:, j] = np.nan
    if np.isnan(rows).all():
        return np.repeat(nominal[:, None], len(cols), axis=1)
    rows = _fill_missing(rows)
    return rows


def table_cells(image_or_ink: np.ndarray | PageInk, table: TableSpec, dpi: float) -> list[dict[str, Box]]:
    """The cell boxes (reference pixels) of every row of ``table`` on an aligned image:
    ``[{column name: box}, ...]``, one dict per row, top to bottom."""
    pi = image_or_ink if isinstance(image_or_ink, PageInk) else page_ink(image_or_ink, dpi)
    cols = _column_ranges(pi, table)
    ev = _row_evidence(pi, table.box, int(round(2 * SNAP_MM / 25.4 * pi.dpi)) + 4)
    rows = None
    if table.rows_from == "ruling" or not table.row_pitch:
        rows = _ruling_boundaries(pi, table, cols, ev)
        if rows is None and table.row_pitch:
            rows = _pitch_boundaries(pi, table, cols, ev)
    else:
        rows = _pitch_boundaries(pi, table, cols, ev)
    if rows is None or len(rows) < 2:
        return []
    out = []
    for i in range(len(rows) - 1):
        cells = {}
        for j, c in enumerate(table.columns):
            a, b = cols[j]
            top, bot = rows[i, j], rows[i + 1, j]
            if bot - top < 2:
                bot = top + 2
            cells[c.name] = (int(round(a)), int(round(top)), int(round(b)), int(round(bot)))
        out.append(cells)
    return out


# --------------------------------------------------------------------------------------
# one field


def _snap_box(pi: PageInk, box: Box) -> tuple[Box, frozenset[str]]:
    """A header field's box with each edge moved onto a ruling line right next to it,
    and the sides ("left", "top", "right", "bottom") that found no line."""
    x0, y0, x1, y1 = box
    tol = BOX_SNAP_MM / 25.4 * pi.dpi
    inset = max(2, int(round(4 * pi.px)))
    hs = _hline_positions(pi.ink, x0 + inset, x1 - inset, int(y0 - tol), int(y1 + tol + 1), 0.6)
    vs = _vline_positions(pi.ink, int(x0 - tol), int(x1 + tol + 1), y0 + inset, y1 - inset, 0.6)
    t, b = _nearest(hs, y0, tol), _nearest(hs, y1, tol)
    left, right = _nearest(vs, x0, tol), _nearest(vs, x1, tol)
    if t is not None and t == b:  # one line near both edges of a low box: the nearer edge's
        t, b = (t, None) if abs(t[2] - y0) <= abs(t[2] - y1) else (None, b)
    if left is not None and left == right:
        left, right = (left, None) if abs(left[2] - x0) <= abs(left[2] - x1) else (None, right)
    open_sides = frozenset(n for n, g in (("left", left), ("top", t), ("right", right), ("bottom", b))
                           if g is None)
    return (int(round(left[2])) if left else x0, int(round(t[2])) if t else y0,
            int(round(right[2])) if right else x1, int(round(b[2])) if b else y1), open_sides


def _border_cores(ink: np.ndarray, box_local: tuple[int, int, int, int], px: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Cores of the cell's own border lines in its window: (horizontal, vertical).

    For each edge of the cell, the rows (columns) within ``BORDER_MM`` of it whose ink
    covers at least 40% of the cell's width (height) - after a 1-px smear across the
    line so a stair-stepped or FAX-broken line still counts - are the border. Catches
    the short and broken lines the page-wide pass (straight runs >= ``RULING_MM``) misses.
    """
    H, W = ink.shape
    x0, y0, x1, y1 = box_local
    band = max(3, int(round(BORDER_MM / 25.4 * 200 * px)))
    ch = np.zeros_like(ink)
    cv_ = np.zeros_like(ink)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return ch, cv_
    u8 = ink.astype(np.uint8)
    sh = cv2.dilate(u8, np.ones((3, 1), np.uint8)) > 0  # smear across the line by 1 px
    sv = cv2.dilate(u8, np.ones((1, 3), np.uint8)) > 0
    inset_x = max(2, (x1 - x0) // 20)
    inset_y = max(2, (y1 - y0) // 20)
    for y in (y0, y1):
        a, b = max(0, y - band), min(H, y + band + 1)
        if b <= a:
            continue
        prof = sh[a:b, x0 + inset_x:x1 - inset_x].mean(axis=1)
        groups = [g for g in _line_groups(prof, 0.4) if g[1] - g[0] <= 4 * band]
        if groups:
            g = max(groups, key=lambda g: (float(prof[g[0]:g[1] + 1].max()), -abs(g[2] + a - y)))
            ch[a + g[0]:a + g[1] + 1, :] = True
    for x in (x0, x1):
        a, b = max(0, x - band), min(W, x + band + 1)
        if b <= a:
            continue
        prof = sv[y0 + inset_y:y1 - inset_y, a:b].mean(axis=0)
        groups = [g for g in _line_groups(prof, 0.4) if g[1] - g[0] <= 4 * band]
        if groups:
            g = max(groups, key=lambda g: (float(prof[g[0]:g[1] + 1].max()), -abs(g[2] + a - x)))
            cv_[:, a + g[0]:a + g[1] + 1] = True
    # in those rows/columns, only runs of 3 mm or more (gaps of 2 px bridged) are line,
    # not a dot of writing that happens to sit on the border
    seg = max(8, int(round(3.0 / 25.4 * 200 * px)))
    lw, lh = min(seg, max(8, int(0.5 * (x1 - x0)))), min(seg, max(8, int(0.5 * (y1 - y0))))
    ch = cv2.morphologyEx((ch & sh).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((1, 3), np.uint8))
    ch = cv2.morphologyEx(ch, cv2.MORPH_OPEN, np.ones((1, lw), np.uint8)) > 0
    cv_ = cv2.morphologyEx((cv_ & sv).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 1), np.uint8))
    cv_ = cv2.morphologyEx(cv_, cv2.MORPH_OPEN, np.ones((lh, 1), np.uint8)) > 0
    return ch & ink, cv_ & ink


def _line_height(mask: np.ndarray, multiline: bool) -> int:
    rows = mask.any(axis=1).astype(np.float32)
    groups = _line_groups(rows, 0.5, max_gap=max(1, mask.shape[0] // 40))
    hs = [b - a + 1 for a, b, _ in groups if b - a + 1 >= 3]
    if not hs:
        return max(1, int(rows.sum()))
    return int(np.median(hs)) if multiline else int(max(hs))


def _cut(pi: PageInk, box: Box, spec: FieldSpec, open_sides: frozenset[str] = frozenset()
         ) -> tuple[np.ndarray, float]:
    """(OCR image, ink fraction) of one cell whose borders are ``box``. ``open_sides``:
    sides of a header box that met no ruling; where little ink runs along them too they
    are no border, and writing the edge cuts through is kept whole (a box drawn by hand
    a little inside the writing)."""
    H, W = pi.ink.shape
    x0, y0, x1, y1 = box
    x0, x1 = max(0, min(x0, W - 1)), max(1, min(x1, W))
    y0, y1 = max(0, min(y0, H - 1)), max(1, min(y1, H))
    if x1 <= x0 or y1 <= y0:
        return np.full((8, 8), 255, np.uint8), 0.0
    ctx = max(int(round(6 * pi.px)), int(CONTEXT_FRACTION * (y1 - y0)))
    wx0, wy0 = max(0, x0 - ctx), max(0, y0 - ctx)
    wx1, wy1 = min(W, x1 + ctx), min(H, y1 + ctx)
    m = max(2, int(round(3 * pi.px)))
    if np.count_nonzero(pi.rough[y0 + m:y1 - m, x0 + m:x1 - m]) < max(4, FAST_EMPTY * (y1 - y0) * (x1 - x0)):
        # nothing but ruling and specks in the cell: empty, no need to look closer
        return np.full((max(1, y1 - y0), max(1, x1 - x0)), 255, np.uint8), 0.0
    raw = pi.ink[wy0:wy1, wx0:wx1]
    local = (x0 - wx0, y0 - wy0, x1 - wx0, y1 - wy0)
    bh, bv = _border_cores(raw, local, pi.px)
    clean = _strip_lines(raw, pi.hlines[wy0:wy1, wx0:wx1] | bh, pi.vlines[wy0:wy1, wx0:wx1] | bv, pi.px)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(clean.astype(np.uint8), connectivity=8)
    lx0, ly0, lx1, ly1 = local
    inside = np.zeros(clean.shape, bool)
    inside[ly0:ly1, lx0:lx1] = True
    speck = max(1, int(round(SPECK_PX * pi.px * pi.px)))
    small = max(speck + 1, int(round(SMALL_PX * pi.px * pi.px)))
    keep = np.zeros(n, bool)
    if n > 1:
        area = stats[:, cv2.CC_STAT_AREA]
        # a component belongs to the cell holding most of its *group*: the components of
        # one run of writing (joined across small gaps, mostly sideways), so the detached
        # strokes of a neighbour's character that spill over the line go with it
        gk = max(5, int(round(GROUP_MM / 25.4 * pi.dpi))) | 1
        joined = cv2.dilate(clean.astype(np.uint8), np.ones((3, gk), np.uint8))
        # never join across the cell's side borders (an open side is none)
        thin = max(2, int(round(2 * pi.px)))
        band = max(thin + 1, int(round(RESIDUE_MM / 25.4 * pi.dpi)))
        sides = {"top": (slice(max(0, ly0 - band), ly0 + band + 1), slice(lx0, lx1)),
                 "bottom": (slice(max(0, ly1 - band), ly1 + band + 1), slice(lx0, lx1)),
                 "left": (slice(ly0, ly1), slice(max(0, lx0 - band), lx0 + band + 1)),
                 "right": (slice(ly0, ly1), slice(max(0, lx1 - band), lx1 + band + 1))}
        walls = {side: side not in open_sides
                 or raw[sl].any(axis=0 if side in ("top", "bottom") else 1).mean() >= EDGE_INKED
                 for side, sl in sides.items()}
        for side, lx in (("left", lx0), ("right", lx1)):
            if walls[side]:
                joined[:, max(0, lx - 1):lx + 1] = 0
        gn, glabels = cv2.connectedComponents(joined, connectivity=8)
        g_in = np.bincount(glabels[clean & inside], minlength=gn)
        g_all = np.bincount(glabels[clean], minlength=gn)
        comp_group = np.zeros(n, np.int64)
        comp_group[labels[clean]] = glabels[clean]
        keep = (g_in[comp_group] * 2 > g_all[comp_group]) & (area >= 2)  # specks: below, unless crowded
        keep[0] = False
        # thin slivers: leftovers of a line (its ragged edge), not writing
        thin = max(2, int(round(2 * pi.px)))
        band_s = max(thin + 1, int(round(RESIDUE_MM / 25.4 * pi.dpi)))
        near_y = max(thin + 1, int(0.25 * (ly1 - ly0)))
        near_x = max(thin + 1, int(0.25 * (lx1 - lx0)))
        for i in np.flatnonzero(keep):
            x, y, w, h = stats[i, :4]
            if h <= thin and w >= max(6 * h, 0.2 * (lx1 - lx0)) and \
                    (abs(y - ly0) <= near_y or abs(y + h - ly1) <= near_y):
                keep[i] = False
            elif w <= thin and h >= max(6 * w, 0.2 * (ly1 - ly0)) and \
                    (abs(x - lx0) <= near_x or abs(x + w - lx1) <= near_x):
                keep[i] = False
        # a piece of a ruling line that the line finders missed (broken by dropouts, a
        # double rule): thin, and the page has a line right there above and below the
        # cell (or left and right of it). A written "1" has no such continuation.
        H, W = pi.ink.shape
        ch, cw = y1 - y0, x1 - x0
        slim = max(3, int(round(4 * pi.px)))
        for i in np.flatnonzero(keep):
            x, y, w, h = stats[i, :4]
            gx, gy = wx0 + x, wy0 + y
            if w <= slim and h >= 0.15 * ch:
                a, b = max(0, y0 - 3 * ch), min(H, y1 + 3 * ch)
                col = pi.ink[a:b, max(0, gx - 1):min(W, gx + w + 1)]
                outside = np.r_[np.arange(a, max(a, y0)), np.arange(min(b, y1), b)] - a
                if outside.size and col[outside].any(axis=1).mean() >= 0.6:
                    keep[i] = False
            elif h <= slim and w >= 0.15 * cw:
                a, b = max(0, x0 - cw), min(W, x1 + cw)
                row = pi.ink[max(0, gy - 1):min(H, gy + h + 1), a:b]
                outside = np.r_[np.arange(a, max(a, x0)), np.arange(min(b, x1), b)] - a
                if outside.size and row[:, outside].any(axis=0).mean() >= 0.6:
                    keep[i] = False
        # a FAX streak (a dirty scanner sensor): a hair-thin vertical line through the
        # whole cell. Pen strokes are thicker; a written "1" does not reach both borders.
        hair = max(1.8, 1.8 * pi.px)
        for i in np.flatnonzero(keep):
            x, y, w, h = stats[i, :4]
            if h >= 0.9 * (ly1 - ly0) and area[i] <= hair * h and y <= ly0 + band_s and y + h >= ly1 - band_s:
                keep[i] = False
        # what is left of a dotted, dithered or broken border line: components lying
        # (80%) within 1 mm of the cell's borders. Writing reaches further into the cell.
        near_border = np.zeros(clean.shape, bool)
        for side, (rs, cs) in sides.items():
            if walls[side]:  # by an open side, the writing's own strokes are no residue
                if side in ("top", "bottom"):
                    near_border[rs, :] = True
                else:
                    near_border[:, cs] = True
        in_band = np.bincount(labels[clean & near_border], minlength=n)
        keep &= ~(in_band >= 0.8 * area)
        # small isolated dots are noise; a dot next to writing (a decimal point) stays, and
        # so do small pieces lying together (writing that a light FAX broke into bits:
        # calling that cell empty would lose the row without a word)
        big = keep & (area > small)
        smalls = np.flatnonzero(keep & ~big)
        if smalls.size:
            reach = int(12 * pi.px) | 1
            near = (cv2.dilate(big[labels].astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0
                    if big.any() else None)
            pieces = np.flatnonzero(keep)
            d = np.linalg.norm(cents[smalls][:, None, :] - cents[pieces][None, :, :], axis=2)
            crowd = (d <= CLUSTER_MM / 25.4 * pi.dpi).sum(axis=1) - 1  # other pieces close by
            for k, i in enumerate(smalls):
                x, y, w, h = stats[i, :4]
                by_writing = area[i] > speck and near is not None and near[y:y + h, x:x + w].any()
                keep[i] = by_writing or crowd[k] >= CLUSTER_N or _decimal_point(stats, big, i, pi.px)
        keep &= ~_comb_dividers(stats, keep, local, pi.px)
    kept = keep[labels]
    area_cell = max(1, (y1 - y0) * (x1 - x0))
    ink = float(np.count_nonzero(kept & inside)) / area_cell
    if not kept.any():
        return np.full((max(1, y1 - y0), max(1, x1 - x0)), 255, np.uint8), 0.0
    ys, xs = np.nonzero(kept)
    by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = kept[by0:by1, bx0:bx1]
    lh = _line_height(crop, spec.multiline)
    pad = max(4, int(round(PAD_FRACTION * lh)))
    img = np.full((crop.shape[0] + 2 * pad, crop.shape[1] + 2 * pad), 255, np.uint8)
    img[pad:pad + crop.shape[0], pad:pad + crop.shape[1]][crop] = 0
    scale = min(MAX_UPSCALE, TEXT_TARGET_PX / max(lh, 1))
    if scale > 1.15:
        up = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        img = np.where(up < 128, 0, 255).astype(np.uint8)
    return img, ink


def _decimal_point(stats: np.ndarray, big: np.ndarray, i: int, px: float) -> bool:
    """A speck-sized dot on the baseline between two characters of one line: a decimal
    point (``4.6``). At 200 dpi, and in FAX standard mode stretched to square pixels, a
    printed point is a 2x2 blob no bigger than a speck; dropping it turned 4.6 into 46,
    a wrong value nothing else can flag. A speck elsewhere (above the line, off the
    baseline, not between two characters) is still dropped."""
    x, y, w, h = (int(v) for v in stats[i, :4])
    if w > max(3, round(4 * px)) or h > max(3, round(4 * px)):
        return False
    js = np.flatnonzero(big)
    if js.size < 2:
        return False
    bx, by, bw, bh = (stats[js, k].astype(np.int64) for k in range(4))
    gap = np.maximum(3 * px, 0.6 * bh)
    left = (bx + bw <= x + 1) & (x - (bx + bw) <= gap) & (bh >= 3 * h)
    right = (bx >= x + w - 1) & (bx - (x + w) <= gap) & (bh >= 3 * h)
    for a in np.flatnonzero(left):
        for b in np.flatnonzero(right):
            top, bottom = max(by[a], by[b]), min(by[a] + bh[a], by[b] + bh[b])
            if bottom - top < 0.5 * min(bh[a], bh[b]):
                continue  # not one line
            base, height = max(by[a] + bh[a], by[b] + bh[b]), max(bh[a], bh[b])
            if y >= base - 0.5 * height and abs((y + h) - base) <= max(2 * px, 0.2 * height):
                return True
    return False


def _comb_dividers(stats: np.ndarray, keep: np.ndarray, local: tuple[int, int, int, int], px: float) -> np.ndarray:
    """Bool per component: a divider of comb boxes (one box per digit, ``|_|_|_|``).

    What is left of them once the border is gone: three or more short thin upright
    strokes standing on the cell's bottom border (or hanging from its top), evenly
    spaced. Left in, Tesseract reads them as ``,`` ``)`` ``|`` between the digits. A
    written ``1`` is taller and does not stand exactly on the border, and several of them
    in an even row on it are unlikely."""
    lx0, ly0, lx1, ly1 = local
    ch = ly1 - ly0
    out = np.zeros(len(stats), bool)
    if ch <= 0:
        return out
    slim = max(3, int(round(3.5 * px)))
    band = max(3, int(round(1.0 / 25.4 * 200 * px)))  # 1 mm
    for top in (False, True):
        cand = []
        for i in np.flatnonzero(keep):
            x, y, w, h = stats[i, :4]
            if w > slim or h < 3 * w or h > 0.6 * ch or x < lx0 or x + w > lx1:
                continue
            if (top and abs(y - ly0) <= band) or (not top and abs(y + h - ly1) <= band):
                cand.append((x + w / 2.0, i))
        if len(cand) < 3:
            continue
        cand.sort()
        xs = np.array([c[0] for c in cand])
        gaps = np.diff(xs)
        if gaps.min() > 0 and gaps.std() <= 0.2 * gaps.mean() and gaps.mean() >= 0.5 * ch:
            out[[i for _, i in cand]] = True
    return out


def crop_fields(aligned: AlignedPage, template: Template) -> list[FieldCrop]:
    """Every header field and table cell of the aligned page, ruling removed (see module doc)."""
    page = aligned.page
    pi = page_ink(aligned.image, float(template.dpi or 200))
    crops: list[FieldCrop] = []
    for f in template.fields:
        box, open_sides = _snap_box(pi, f.box)
        img, ink = _cut(pi, box, f, open_sides)
        crops.append(FieldCrop(sha256=page.sha256, page_index=page.index, name=f.name, box=box, image=img,
                               spec=f, ink=ink))
    for t in template.tables:
        for r, cells in enumerate(table_cells(pi, t, pi.dpi)):
            for c in t.columns:
                box = cells[c.name]
                img, ink = _cut(pi, box, c)
                crops.append(FieldCrop(sha256=page.sha256, page_index=page.index, name=f"{t.name}[{r}].{c.name}",
                                       box=box, image=img, spec=c, ink=ink, table=t.name, row=r, column=c.name))
    return crops


# --------------------------------------------------------------------------------------
# preview


def draw_zones(image: np.ndarray | None, template: Template, aligned: AlignedPage | None = None) -> np.ndarray:
    """A BGR picture of ``image`` (or of ``aligned.image``; with neither, of the
    template's reference image) with every field box, table, row and column drawn and
    labelled - what ``faxflow templates preview`` shows. Rows are found on the picture
    the same way ``crop_fields`` finds them (ruling, snapping)."""
    if aligned is not None:
        image = aligned.image
    elif image is None:
        image = read_image(template.reference_image)
        if image is None:
            raise TemplateError(f"reference image {template.reference_image} cannot be read",
                                f"見本画像 {template.reference_image} を読み込めません", template=template.name)
    base = to_gray(np.asarray(image))
    out = cv2.cvtColor(base, cv2.COLOR_GRAY2BGR)
    out = (out.astype(np.float32) * 0.6 + 255 * 0.4).astype(np.uint8)  # fade the page under the boxes
    dpi = float(template.dpi or 200)
    pi = page_ink(base, dpi)
    fs = max(0.4, dpi / 400.0)
    th = max(1, int(round(dpi / 150)))

    def label(text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
        (tw, tht), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, th)
        y = max(tht + 2, y)
        cv2.rectangle(out, (x, y - tht - 3), (x + tw + 2, y + 2), (255, 255, 255), -1)
        cv2.putText(out, text, (x + 1, y - 1), cv2.FONT_HERSHEY_SIMPLEX, fs, color, th, cv2.LINE_AA)

    for f in template.fields:
        x0, y0, x1, y1 = f.box
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (200, 80, 0), th + 1)
        label(f.name, x0, y0 - 3, (200, 80, 0))
    for t in template.tables:
        x0, y0, x1, y1 = t.box
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (0, 150, 0), th + 1)
        label(f"{t.name} ({'ruling' if t.rows_from == 'ruling' or not t.row_pitch else 'pitch'})", x0, y0 - 3,
              (0, 150, 0))
        rows = table_cells(pi, t, dpi)
        for r, cells in enumerate(rows):
            for c in t.columns:
                a, b, cx1, cy1 = cells[c.name]
                cv2.rectangle(out, (a + 1, b + 1), (cx1 - 2, cy1 - 2), (0, 110, 255), 1)
            first = cells[t.columns[0].name]
            label(str(r), max(0, first[0] - int(fs * 40)), (first[1] + first[3]) // 2 + 5, (0, 110, 255))
        for c in t.columns:
            label(c.name, c.box[0] + 3, y0 + int(22 * fs) + 4, (0, 0, 200))
    for a in template.anchors:
        if a.box is not None:
            x0, y0, x1, y1 = a.box
            cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (160, 0, 160), th)
    if aligned is not None:
        label(f"align score {aligned.score:.2f} {'ok' if aligned.ok else 'DOUBTFUL'}", 10, int(30 * fs) + 10,
              (0, 140, 0) if aligned.ok else (0, 0, 230))
    return out
