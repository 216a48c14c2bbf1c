"""The handwriting engine: handwritten (and printed) numbers, dates and part numbers.

``HandwritingEngine().read(crop) -> Reading`` for a ``FieldCrop`` (uint8, 0 = ink).
Steps, each a small function you can call on its own:

1. ``binarize`` the crop; ``remove_rules``: long horizontal/vertical lines the crop
   stage left (cell borders, underlines), keeping the pixels where a stroke crosses
   them; short regularly spaced vertical dividers are a *comb* (one box per digit).
2. Connected components -> text height ``H`` and baseline; specks dropped; dots
   ('.', ',') and dashes ('-') recognised by size and position.
3. The rest are *atoms*: components, with wide ones (touching digits) cut at
   valleys of their ink profile. A dynamic programme groups consecutive atoms into
   characters (merging broken strokes, splitting touching digits), scoring each
   candidate character with the digit model (``digits.py``, classes 0-9 / - and a
   reject class '?').
4. Ticks, check marks and scribbles at the ends (reject class, apart from the
   number) are dropped with a note; rejected characters inside stay as '?'.
5. Confidence: per character the probability of the chosen class among those the
   field type allows; the field's confidence is their product. A
   reading below ``DEFAULT_THRESHOLD`` should go to review (see docs/handwriting.md
   for how it was calibrated; ``python -m faxflow.samples.handwriting --calibrate``
   re-runs it: it lives with the renderer, as ``ocr/`` may not import ``samples/``).

``looks_handwritten(image) -> float`` (probability that the ink is handwriting, for
the ``auto`` hint) and ``ink_profile(image) -> dict`` (its features) are here too.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from faxflow.ocr.engines.digits import REJECT, DigitModel, load_model, normalize_glyph
from faxflow.templates.types import FieldCrop, Reading

#: Readings with a lower confidence should be reviewed (calibrated, docs/handwriting.md).
DEFAULT_THRESHOLD = 0.90

DIGITS = "0123456789"
#: Characters each field type may contain (the model's other classes count as doubt).
ALLOWED = {
    "integer": DIGITS + ",",
    "quantity": DIGITS + ",",
    "money": DIGITS + ",.",
    "date": DIGITS + "/-.",
    "part_number": DIGITS + "-/.",
    "text": DIGITS + "-/.,",
}
SEPARATOR_CONFIDENCE = 0.97  # a dot or a dash found by its size and place
CHAR_BONUS = -0.05  # log-probability added per character in the segmentation search
# (a bonus split single digits more often than it kept touching ones apart: measured)
MAX_GROUP = 4  # at most this many atoms make one character
WIDE_ZERO_Q = 0.9  # a component up to 1.6 H wide read as '0' at least this sure stays whole
WL_FLAT = 1.7  # a character with a flat piece (a 5's hat, a 7's bar) may be this wide (x H)
GUESS_FLOOR = 0.05  # a rejected glyph inside a number shows its best digit if at least this likely
LOOP_CUT = math.log(0.15)  # log-probability added for a cut through two or more strokes (a loop,
# a 2's curl, a flat 0): touching digits touch at one point, so their cut crosses one stroke


@dataclass(eq=False)
class _Atom:
    mask: np.ndarray  # bool, full image size
    x0: int
    y0: int
    x1: int
    y1: int
    fixed: str | None = None  # '.', ',', '-' recognised by geometry
    parent: int = -1  # index of the component it was cut from
    area: int = 0
    cut_runs: int = 0  # strokes the cut at its left edge went through (0: not cut there)

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2


@dataclass(eq=False)
class _Char:
    text: str
    conf: float
    x0: int
    x1: int
    y0: int
    y1: int
    p_reject: float = 0.0
    probs: np.ndarray | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- preprocessing


def binarize(image: np.ndarray) -> np.ndarray:
    """uint8 (0 = ink) -> bool ink mask. Otsu on grey crops, 128 on two-level ones."""
    g = np.asarray(image)
    if g.ndim == 3:
        g = g[..., :3].mean(axis=2)
    g = g.astype(np.uint8)
    levels = np.unique(g)
    if len(levels) <= 2:
        return g < 128
    t, _ = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return g < min(max(t, 64), 200)


def _runs(mask1d: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask1d.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def remove_rules(ink: np.ndarray, text_h: float | None = None) -> tuple[np.ndarray, list[float], list[str]]:
    """Remove ruling from an ink mask: -> (ink, comb divider x-positions, notes).

    Horizontal: runs at least max(1.6 H, 40 % of the width) long. Vertical: runs over
    85 % of the height, or shorter regularly spaced dividers rising from a removed
    horizontal line (a comb). Where ink continues on both sides of a removed line the
    line pixels are kept (a stroke crossing it).
    """
    h, w = ink.shape
    notes: list[str] = []
    th = text_h or h * 0.7
    u8 = ink.astype(np.uint8)
    lh = max(int(max(1.6 * th, 0.4 * w)), 12)
    hl = cv2.morphologyEx(u8, cv2.MORPH_OPEN, np.ones((1, lh), np.uint8)) if lh < w else np.zeros_like(u8)
    lv = max(int(0.85 * h), 12)
    vl = cv2.morphologyEx(u8, cv2.MORPH_OPEN, np.ones((lv, 1), np.uint8)) if lv < h else np.zeros_like(u8)
    # thin lines only: a line is at most ~1/5 of the text height thick
    lines = np.zeros_like(ink)
    if hl.any():
        rows = hl.any(axis=1)
        for a, b in _runs(rows):
            if b - a <= max(3, 0.25 * th):
                lines[a:b] |= hl[a:b] > 0
        if lines.any():
            notes.append("ruling-removed")
    if vl.any():
        cols = vl.any(axis=0)
        for a, b in _runs(cols):
            if b - a <= max(3, 0.25 * th):
                lines[:, a:b] |= vl[:, a:b] > 0
    combs: list[float] = []
    # comb dividers: short vertical strokes standing on a removed horizontal line,
    # at least 2 of them, regularly spaced
    if lines.any():
        hrows = np.flatnonzero((lines & (hl > 0)).any(axis=1))
        if len(hrows):
            short = max(6, int(0.25 * h))
            cand = cv2.morphologyEx(u8 & (1 - lines.astype(np.uint8)), cv2.MORPH_OPEN,
                                    np.ones((short, 1), np.uint8))
            xs = []
            for a, b in _runs(cand.any(axis=0)):
                if b - a > max(3, 0.12 * th):
                    continue
                ys = np.flatnonzero(cand[:, a:b].any(axis=1))
                touches = any(abs(int(ys[-1]) + 1 - r) <= 2 or abs(int(ys[0]) - r) <= 2 for r in (hrows.min(), hrows.max() + 1))
                if touches:
                    xs.append(((a + b) / 2, a, b))
            if len(xs) >= 2:
                gaps = np.diff([x[0] for x in xs])
                if gaps.min() > 0.3 * th and gaps.std() <= 0.2 * gaps.mean():
                    for _, a, b in xs:
                        lines[:, a:b] |= cand[:, a:b] > 0
                    combs = [x[0] for x in xs]
                    notes.append("comb")
    if not lines.any():
        return ink, [], notes
    out = ink & ~lines
    # put back line pixels where a stroke crosses: ink right above and below (or left/right)
    k = 3
    up = np.zeros_like(out)
    dn = np.zeros_like(out)
    for d in range(1, k + 1):
        up[d:] |= out[:-d]
        dn[:-d] |= out[d:]
    lf = np.zeros_like(out)
    rt = np.zeros_like(out)
    for d in range(1, k + 1):
        lf[:, d:] |= out[:, :-d]
        rt[:, :-d] |= out[:, d:]
    # extend through the whole line thickness: close vertically / horizontally
    cross_h = cv2.morphologyEx((up & dn).astype(np.uint8) | out.astype(np.uint8), cv2.MORPH_CLOSE,
                               np.ones((7, 1), np.uint8)) > 0
    cross_v = cv2.morphologyEx((lf & rt).astype(np.uint8) | out.astype(np.uint8), cv2.MORPH_CLOSE,
                               np.ones((1, 7), np.uint8)) > 0
    keep = lines & ((cross_h & (hl > 0)) | (cross_v & (vl > 0)))
    return out | keep, combs, notes


# --------------------------------------------------------------------------- components


def _broken_pieces(small: list[_Atom], H: float) -> list[list[_Atom]]:
    """Groups of small components that lie close together (<= 0.15 H apart) and together
    are as tall as a character: a glyph a FAX or a thin pen broke into pieces, not
    dots and dashes."""
    n = len(small)
    if n < 2:
        return set()
    gap = 0.15 * H
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        a = small[i]
        for j in range(i + 1, n):
            b = small[j]
            dx = max(a.x0 - b.x1, b.x0 - a.x1, 0)
            dy = max(a.y0 - b.y1, b.y0 - a.y1, 0)
            if dx <= gap and dy <= gap:
                parent[find(i)] = find(j)
    groups: dict[int, list[_Atom]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(small[i])
    return [g for g in groups.values() if len(g) >= 2 and max(a.y1 for a in g) - min(a.y0 for a in g) >= 0.5 * H]


def _join_broken(atoms: list[_Atom], H: float) -> list[_Atom]:
    """Each group of ``_broken_pieces`` becomes one component."""
    groups = _broken_pieces([a for a in atoms if a.h < 0.55 * H], H)
    if not groups:
        return atoms
    gone = {id(a) for g in groups for a in g}
    out = [a for a in atoms if id(a) not in gone]
    for g in groups:
        m = np.zeros_like(g[0].mask)
        for a in g:
            m |= a.mask
        out.append(_Atom(m, min(a.x0 for a in g), min(a.y0 for a in g), max(a.x1 for a in g),
                         max(a.y1 for a in g), area=sum(a.area for a in g)))
    return sorted(out, key=lambda a: a.x0)


DATE_BEAM_FLOOR = 0.01  # a constrained date less likely than this is a made-up date, not shown
HAT_GAP = 0.4  # a flat stroke this far (x H) right of a body may join it (a 5's detached hat)
SHORT_DIGIT = math.log(0.1)  # log-probability added to a digit less than 0.45 H tall
CUT_MIN_H = 0.45  # a cut must leave parts at least this x H tall
FLAT_UNCUT = 0.45  # a component flatter than this x H is not cut into characters
STACK_OVERLAP = 0.4  # stacked pieces overlapping this share of the narrower one's width are one glyph


def _join_stacked(atoms: list[_Atom], H: float) -> list[_Atom]:
    """Pieces one above the other are one character: a one-line number has no stacked
    characters, but a FAX break cuts a thin 0 or 6 into an upper and a lower arc, and a
    5's hat sits on its body. Two components, at least one of them short (< 0.75 H),
    that overlap horizontally (>= STACK_OVERLAP of the narrower) and lie <= 0.15 H
    apart vertically, together no taller than 1.3 H, are joined (repeatedly)."""
    out = sorted(atoms, key=lambda a: a.x0)
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(out):
            if a.fixed:
                continue
            for j in range(i + 1, len(out)):
                b = out[j]
                if b.fixed or b.x0 >= a.x1:
                    continue
                if min(a.h, b.h) >= 0.75 * H or min(a.h, b.h) < 0.1 * H:
                    continue
                ov = min(a.x1, b.x1) - max(a.x0, b.x0)
                if ov < STACK_OVERLAP * min(a.w, b.w):
                    continue
                up, lo = (a, b) if a.y0 + a.y1 <= b.y0 + b.y1 else (b, a)
                if lo.y0 - up.y1 > 0.15 * H or max(a.y1, b.y1) - min(a.y0, b.y0) > 1.3 * H:
                    continue
                if lo.y0 < up.y0 + 0.5 * up.h:  # side by side more than stacked
                    continue
                m = a.mask | b.mask
                out[i] = _Atom(m, min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1),
                               area=a.area + b.area)
                del out[j]
                changed = True
                break
            if changed:
                break
    return out


WIDE_WHOLE = math.log(0.3)  # log-probability added to a whole component read as one character
# although wider than 1.35 H (a 5 with a long hat, a 0 with a lead-in stroke -- or two digits)
SPECK_SKIP = math.log(0.5)  # log-probability of leaving a speck-sized piece out of the reading
SPECK = 0.35  # a piece at most this x H high and wide, not cut from a component, is speck-sized


def _speck(p: _Atom, pieces: list[_Atom], H: float) -> bool:
    """A piece small enough to be a speck, a tick or a dot of noise (not a separator,
    which has its fixed class, and not a slice of a component that was cut): the
    segmentation may leave it out of the reading, at a cost (SPECK_SKIP)."""
    if p.fixed or p.h > SPECK * H or p.w > SPECK * H:
        return False
    return sum(1 for q in pieces if q.parent == p.parent) == 1


def _comb_teeth(atoms: list[_Atom], width: int) -> tuple[list[_Atom], list[float]]:
    """Comb boxes whose horizontal line is already gone (the crop stage removed it):
    short, straight, upright dividers whose ends line up below (or above) the
    writing, regularly spaced. -> (atoms without the teeth, divider x-positions
    across the whole crop). A written '1' ends on the baseline, not below it."""
    def thin_upright(a: _Atom, H: float) -> bool:
        return (a.w <= max(4, 0.2 * H) and 0.2 * H <= a.h <= 1.0 * H and a.area >= 0.5 * a.w * a.h)

    big = [a for a in atoms if a.area >= 4]
    if len(big) < 4:
        return atoms, []
    H = _text_height([a for a in big if a.w > 4 and a.w >= 0.2 * a.h] or big)
    if H < 8:
        return atoms, []
    cand = [a for a in big if thin_upright(a, H)]
    if len(cand) < 2:
        return atoms, []
    others = [a for a in big if a not in cand and a.h >= 0.5 * H]
    if len(others) < 2:
        return atoms, []
    base = float(np.median([a.y1 for a in others]))
    top = float(np.median([a.y0 for a in others]))
    tol = max(3.0, 0.1 * H)
    for side in ("bottom", "top"):
        ends = np.array([a.y1 if side == "bottom" else a.y0 for a in cand], float)
        ref = float(np.median(ends))
        teeth = [a for a, e in zip(cand, ends) if abs(e - ref) <= tol]
        beyond = ref >= base + 0.08 * H if side == "bottom" else ref <= top - 0.08 * H
        if len(teeth) < 2 or not beyond:
            continue
        xs = np.sort([a.cx for a in teeth])
        gaps = np.diff(xs)
        pitch = float(gaps.min())
        if pitch < 0.6 * H:
            continue
        mult = gaps / pitch
        if np.any(np.abs(mult - np.round(mult)) > 0.15):
            continue
        pitch = float((xs[-1] - xs[0]) / np.round(mult).sum())
        first = xs[0] - pitch * np.floor(xs[0] / pitch)
        dividers = list(np.arange(first, width, pitch))
        ids = {id(a) for a in teeth}
        return [a for a in atoms if id(a) not in ids], [float(d) for d in dividers]
    return atoms, []


def _components(ink: np.ndarray) -> list[_Atom]:
    n, lab, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        out.append(_Atom(lab == i, int(x), int(y), int(x + w), int(y + h), area=int(a)))
    return out


def _holes(a: _Atom) -> int:
    """Number of enclosed paper regions (loops) of a component."""
    sub = a.mask[a.y0 : a.y1, a.x0 : a.x1].astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(1 - np.pad(sub, 1), connectivity=4)
    return sum(1 for k in range(2, n) if stats[k][4] >= max(4, 0.01 * a.w * a.h))


def _one_loop(a: _Atom) -> bool:
    """The component is one closed loop spanning nearly all of its width (a wide
    written 0, an O), not two digits touching (two loops, or a loop beside a stroke)."""
    sub = a.mask[a.y0 : a.y1, a.x0 : a.x1].astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(1 - np.pad(sub, 1), connectivity=4)
    holes = [stats[k] for k in range(2, n) if stats[k][4] >= max(4, 0.01 * a.w * a.h)]
    if len(holes) != 1:
        return False
    hx, hy, hw, hh = holes[0][0] - 1, holes[0][1] - 1, holes[0][2], holes[0][3]
    if not (hx <= 0.25 * a.w and a.w - (hx + hw) <= 0.25 * a.w and hw >= 0.5 * a.w):
        return False
    # beside the hole, at its middle height, one wall on each side -- not a wall and
    # a separate stroke (a 1 leaning on the 0)
    for y in range(hy + int(0.3 * hh), hy + int(0.7 * hh) + 1):
        row = sub[y]
        if len(_runs(row[:hx + 1])) >= 2 or len(_runs(row[hx + hw:])) >= 2:
            return False
    return True


def _text_height(atoms: list[_Atom]) -> float:
    if not atoms:
        return 0.0
    hs = np.array([a.h for a in atoms], float)
    big = hs[hs >= 0.45 * hs.max()]
    return float(np.median(big))


def _cuts(mask: np.ndarray, x0: int, x1: int, H: float) -> list[int]:
    """Candidate cut columns inside a wide component: valleys of its ink profile."""
    prof = mask[:, x0:x1].sum(axis=0).astype(float)
    w = x1 - x0
    lo, hi = max(2, int(0.18 * H)), w - max(2, int(0.18 * H))
    if hi <= lo:
        return []
    sm = np.convolve(prof, np.ones(3) / 3, mode="same")
    cand = []
    for x in range(lo, hi):
        win = sm[max(0, x - 2) : x + 3]
        if sm[x] <= win.min() + 1e-9:
            cand.append((sm[x], x))
    cand.sort()
    chosen: list[int] = []
    for _, x in cand:
        if all(abs(x - c) >= 0.15 * H for c in chosen):
            chosen.append(x)
        if len(chosen) >= 5:
            break
    if not chosen:  # no valley (digits overlapping): cut at fractions of the width
        n = max(2, round(w / (0.6 * H)))
        chosen = [int(w * k / n) for k in range(1, n)]
    return sorted(x0 + c for c in chosen)


def _tall_cuts(mask: np.ndarray, cuts: list[int], x0: int, x1: int, H: float) -> list[int]:
    """The cuts that do not cut a flat end off a component: all that is left of a cut,
    and all that is right of it, at least CUT_MIN_H x H tall. Touching digits are each
    tall; a flat end is a 5's hat or a 7's bar (or a slice of it), cut off its body."""
    if CUT_MIN_H <= 0 or not cuts:
        return cuts
    cols = mask[:, x0:x1]
    has = cols.any(axis=0)
    top = np.where(has, cols.argmax(axis=0), 10 ** 6)
    bot = np.where(has, cols.shape[0] - 1 - cols[::-1].argmax(axis=0), -1)

    def height(l: int, r: int) -> int:
        l, r = l - x0, r - x0
        return int(bot[l:r].max() - top[l:r].min() + 1) if r > l and has[l:r].any() else 0

    return [c for c in cuts if height(x0, c) >= CUT_MIN_H * H and height(c, x1) >= CUT_MIN_H * H]


def _cut_strokes(mask: np.ndarray, x: int, H: float) -> int:
    """How many strokes a vertical cut at column ``x`` of a component goes through: the
    fewest separate ink runs in the columns x-1..x+1 (gaps under 0.06 H closed)."""
    gap = max(2, int(round(0.06 * H)))
    best = None
    for c in range(max(0, x - 1), min(mask.shape[1], x + 2)):
        runs = _runs(mask[:, c])
        n = 0
        last = None
        for r0, r1 in runs:
            if last is None or r0 - last >= gap:
                n += 1
            last = r1
        best = n if best is None else min(best, n)
    return best or 0


CUT_BEND = 0.3  # a cut may bend up to this x H left or right of its column (overlapping digits)


def _cut_path(a: _Atom, c: int, H: float) -> np.ndarray:
    """A cut from the top to the bottom of component ``a`` near column ``c`` that crosses
    as little ink as it can: x per row (full image rows), moving at most one column per
    row and at most CUT_BEND x H from ``c`` (a small cost per column away from it, so on
    paper it stays straight). Overlapping digits (a 1 leaning into an 8, a 3 into a 9)
    have no clear vertical cut, but a slanted one around the overlap."""
    rows = a.mask.shape[0]
    lo, hi = max(a.x0 + 1, int(c - CUT_BEND * H)), min(a.x1 - 1, int(c + CUT_BEND * H))
    path = np.full(rows, c, np.int64)
    if hi - lo < 2:
        return path
    sub = a.mask[a.y0 : a.y1, lo : hi + 1].astype(np.float64)
    dev = np.abs(np.arange(lo, hi + 1) - c) / max(1.0, CUT_BEND * H) * 0.3
    cost = sub * 4.0 + dev[None, :] + 0.01
    n, w = cost.shape
    acc = cost.copy()
    back = np.zeros((n, w), np.int64)
    for y in range(1, n):
        prev = acc[y - 1]
        cand = np.stack([np.r_[np.inf, prev[:-1]], prev, np.r_[prev[1:], np.inf]])
        k = cand.argmin(axis=0)
        acc[y] += cand[k, np.arange(w)]
        back[y] = np.arange(w) + k - 1
    x = int(acc[-1].argmin())
    xs = np.empty(n, np.int64)
    for y in range(n - 1, -1, -1):
        xs[y] = x
        x = back[y, x]
    path[a.y0 : a.y1] = xs + lo
    path[: a.y0] = path[a.y0]
    path[a.y1 :] = path[a.y1 - 1]
    return path


def _bent_cut(a: _Atom, c: int, H: float) -> np.ndarray | None:
    """A bent cut (``_cut_path``) where the straight cut at ``c`` goes through two or
    more strokes and the bent one through fewer; None: cut straight."""
    straight = _cut_strokes(a.mask, c, H)
    if straight < 2:
        return None
    path = _cut_path(a, c, H)
    return path if _path_strokes(a.mask, path, H) < straight else None


def _path_strokes(mask: np.ndarray, path: np.ndarray, H: float) -> int:
    """How many strokes a cut along ``path`` goes through (ink runs along it, gaps
    under 0.06 H closed)."""
    gap = max(2, int(round(0.06 * H)))
    on = mask[np.arange(len(path)), np.clip(path, 0, mask.shape[1] - 1)]
    n, last = 0, None
    for r0, r1 in _runs(on):
        if last is None or r0 - last >= gap:
            n += 1
        last = r1
    return n


def stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width (px) of an ink mask: twice the median distance to paper
    along the middle of the strokes."""
    dist = cv2.distanceTransform(np.pad(ink, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & ink & (dist > 0)
    v = dist[ridge]
    return float(2 * np.median(v)) if len(v) else 0.0


STROKE_MAX = 0.22  # stroke width / text height above which glyphs are thinned (measured:
STROKE_TARGET = 0.17  # fields with bolder strokes were read far worse; thinner ones did not
# gain from thickening)


def _stroke_fix(ink: np.ndarray, H: float) -> int:
    """Pixels to erode each glyph by before classification, so very bold writing
    (heavy toner, felt pen, a blurred photo) looks like the training data."""
    if H < 8:
        return 0
    sw = stroke_width(ink)
    if sw <= STROKE_MAX * H:
        return 0
    return max(0, int(round((sw - STROKE_TARGET * H) / 2)))


def _restroke(sub: np.ndarray, k: int) -> np.ndarray:
    """Erode (k > 0) or dilate (k < 0) a glyph mask by |k| px; an erosion that would
    wipe out most of the glyph is not done."""
    p = abs(k) + 1
    m = np.pad(sub, p).astype(np.uint8)
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(k) + 1, 2 * abs(k) + 1))
    out = cv2.erode(m, ker) if k > 0 else cv2.dilate(m, ker)
    if k > 0 and out.sum() < 0.25 * m.sum():
        return sub
    return out > 0


def _strikes(raw: np.ndarray, H: float) -> list[tuple[int, int, int, int]]:
    """Long, thin horizontal strokes in the ink as received (before ruling removal):
    -> [(x0, y0, x1, y1)], nearby parallel strokes (a double line) merged."""
    ys, xs = np.nonzero(raw)
    if len(xs) == 0 or H < 6:
        return []
    need = max(int(1.2 * H), int(0.25 * (xs.max() - xs.min())), 12)
    run = cv2.morphologyEx(raw.astype(np.uint8), cv2.MORPH_OPEN, np.ones((1, need), np.uint8))
    if not run.any():
        return []
    n, _, stats, _ = cv2.connectedComponentsWithStats(
        cv2.dilate(run, np.ones((max(3, int(0.35 * H)), 1), np.uint8)), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, _ = stats[i]
        out.append((int(x), int(y), int(x + w), int(y + h)))
    return out


def _corrected_line(atoms: list[_Atom], raw: np.ndarray, H: float, notes: list[str]) -> list[_Atom]:
    """A correction (訂正): the old value crossed out (one or two lines through it),
    the new one written above or below. When glyphs straddle a long horizontal
    stroke and other glyphs lie clearly off it, only the others are read (note
    ``correction``, which sends the field to review)."""
    for sx0, sy0, sx1, sy1 in _strikes(raw, H):
        cross = [a for a in atoms if a.y0 < sy1 and a.y1 > sy0 and sx0 <= a.cx <= sx1 and a.h >= 0.3 * H]
        if not cross:
            continue
        hs = float(np.median([a.h for a in cross]))
        mid = (sy0 + sy1) / 2
        # the struck glyphs have their middle on the strike
        struck = [a for a in cross if abs((a.y0 + a.y1) / 2 - mid) <= 0.35 * hs + (sy1 - sy0) / 2]
        if not struck:
            continue
        others = [a for a in atoms if a not in struck and abs((a.y0 + a.y1) / 2 - mid) > 0.5 * hs + (sy1 - sy0) / 2]
        if not any(a.h >= 0.5 * hs for a in others):
            continue
        notes.append("correction")
        return others
    return atoms


# --------------------------------------------------------------------------- the engine


class HandwritingEngine:
    """Reads handwritten (or printed) numbers, dates and part numbers in a field crop."""

    name = "handwriting"

    def __init__(self, model: DigitModel | str | Path | None = None, threshold: float = DEFAULT_THRESHOLD,
                 thin_bold: bool = True):
        self.thin_bold = thin_bold
        self.model = model if isinstance(model, DigitModel) else load_model(model)
        self.threshold = threshold
        cls = self.model.classes
        self._rej = cls.index(REJECT) if REJECT in cls else None
        self._stroke_fix = 0
        self._last_printed = None
        self._probs_cache: dict = {}

    # ----------------------------------------------------------------- public API

    def read(self, crop: FieldCrop) -> Reading:
        """The text in ``crop`` as canonical-ish characters (digits, / - . ,; '?' unreadable)."""
        return self.read_image(crop.image, getattr(crop.spec, "type", "text") or "text",
                               getattr(crop.spec, "pattern", None))

    def read_image(self, image: np.ndarray, field_type: str = "integer", pattern: str | None = None) -> Reading:
        """``read`` on a bare image (uint8, 0 = ink) for a field of ``field_type``; a
        reading that does not match the field's ``pattern`` is searched again for the
        likeliest one that does (note ``pattern-constrained``)."""
        allowed = ALLOWED.get(field_type, ALLOWED["text"])
        self._lattice = None
        self._skipped = 0
        ink = binarize(image)
        if not ink.any():
            return Reading("", 1.0, self.name, (), ("empty",))
        # first pass: text height from the components of the raw ink, to size the line filter
        H0 = _text_height([a for a in _components(ink) if a.area >= 4])
        raw_ink = ink
        ink, combs, notes = remove_rules(ink, H0 if H0 >= 6 else None)
        atoms = [a for a in _components(ink) if a.area >= 2]
        notes = list(notes)
        if not atoms:
            return Reading("", 1.0, self.name, (), tuple(notes + ["empty"]))
        if not combs:
            atoms, combs = _comb_teeth(atoms, image.shape[1])
            if combs:
                notes.append("comb")
        H = _text_height(atoms)
        atoms, dropped = self._clean(atoms, H, notes)
        if not atoms:
            return Reading("", 0.95 if dropped else 1.0, self.name, (), tuple(notes + ["empty"]))
        atoms = _corrected_line(atoms, raw_ink, H, notes) or atoms
        H = _text_height([a for a in atoms if a.fixed is None] or atoms)
        self._stroke_fix = _stroke_fix(ink, H) if self.thin_bold else 0
        base = float(np.median([a.y1 for a in atoms if a.fixed is None and a.h >= 0.6 * H] or [max(a.y1 for a in atoms)]))
        atoms = _join_broken(atoms, H)
        if not combs and STACK_OVERLAP < 1.5:
            atoms = _join_stacked(atoms, H)
        self._separators(atoms, H, base, allowed)
        if combs:
            chars = self._read_comb(atoms, combs, allowed)
        else:
            chars = self._read_free(atoms, H, allowed)
        for c in chars:  # a digit far smaller or taller than the others is doubtful
            if c.text in DIGITS and ((c.y1 - c.y0) < 0.5 * H or (c.y1 - c.y0) > 1.7 * H):
                c.conf = min(c.conf, 0.5)
        had_chars = bool(chars)
        chars, mark_conf = self._drop_marks(chars, H, notes)
        if had_chars and not chars:
            # ink, but nothing like a character: a lone tick, a scribble, a word -- the
            # cell is not simply empty, so let a person look
            return Reading("", min(0.3, 1.0 - mark_conf + 0.3), self.name, (), tuple(notes + ["only-marks"]))
        if self._skipped:
            notes.append("speck-skipped")
        if self._guess_rejected(chars, allowed):
            notes.append("guessed")
        if field_type == "date":
            chars = self._date_separators(chars, notes)
            plain = "".join(c.text for c in chars)
            sure_date = _plausible_date(plain) and float(np.prod([c.conf for c in chars])) >= self.threshold
            if chars and not sure_date and not combs:
                kanji = self._kanji_date(ink, H)
                if kanji is not None:
                    if _plausible_date(plain) and plain != kanji.text:
                        kanji = replace(kanji, confidence=min(kanji.confidence, KANJI_DISAGREE_CONF))
                    return replace(kanji, notes=tuple(notes) + kanji.notes)
            if chars and not _plausible_date("".join(c.text for c in chars)) and not combs:
                best = self._date_beam()
                if best is not None and np.prod([c.conf for c in best]) >= DATE_BEAM_FLOOR:
                    chars = best
                    notes.append("date-constrained")
        elif pattern and chars and not combs and field_type == "part_number":
            rx = _compiled(pattern)
            if rx is not None and not rx.fullmatch("".join(c.text for c in chars)):
                best = self._constrained_beam(lambda t: bool(rx.fullmatch(t)), lambda t: len(t) <= 16,
                                              comma_is_slash=False)
                if best is not None and np.prod([c.conf for c in best]) >= DATE_BEAM_FLOOR:
                    chars = best
                    notes.append("pattern-constrained")
        if not chars:
            return Reading("", min(0.95, mark_conf), self.name, (), tuple(notes + ["empty"]))
        text = "".join(c.text for c in chars)
        confs = tuple(round(float(c.conf), 4) for c in chars)
        # the chance that every character is right (product), capped by the chance
        # that what was dropped as a mark was no character
        conf = float(min(np.prod(confs), mark_conf))
        return Reading(text, conf, self.name, confs, tuple(notes))

    def looks_handwritten(self, image: np.ndarray) -> float:
        return looks_handwritten(image)

    # ------------------------------------------------------- dates written 6月9日

    def _kanji_date(self, ink: np.ndarray, H: float) -> Reading | None:
        """A date written with the kanji 月 and 日 (6月9日, 10月21日) -> 'M/D', or None.

        The digit model knows no kanji: it reads 月 as '?' or '1', 日 as '8' or '13'. So the
        cell's ink components (left to right; handwriting leans, so columns overlap) are
        grouped in windows of 1-3 and matched against font renderings of 月, 日 and the
        digits (the closed-set glyph matcher, ``glyphs``). The rightmost window that looks
        most like 日 ends the day (optional), a window that looks most like 月 with ink on
        both sides splits month from day, and each side is read as an integer by this
        engine. Confidence: the two numbers' (product), times how clearly the kanji were
        told from digits. Note ``kanji-date``."""
        from faxflow.ocr.engines import glyphs

        comps = sorted((a for a in _components(ink) if a.area >= max(4.0, 0.004 * H * H)),
                       key=lambda a: (a.x0 + a.x1) / 2)
        n = len(comps)
        if n < 3:
            return None

        def union(i: int, j: int) -> np.ndarray:
            m = np.zeros(ink.shape, bool)
            for a in comps[i:j]:
                m |= a.mask
            return m

        def kanji(i: int, j: int, which: str) -> float:
            """How surely comps[i:j] are ``which`` (0: not at all)."""
            x0, x1 = min(a.x0 for a in comps[i:j]), max(a.x1 for a in comps[i:j])
            if x1 - x0 < 0.5 * H or x1 - x0 > 1.6 * H:
                return 0.0
            mt = glyphs.match_ink(union(i, j), KANJI_MATCH_VALUES)
            if mt is None or not mt.ranking or mt.ranking[0][0] != which or mt.ranking[0][1] > KANJI_DISTANCE:
                return 0.0
            d = mt.ranking[0][1]
            digit = min((dd for v, dd in mt.ranking if v in DIGITS), default=d + 1.0)
            return float(np.clip((digit - d) / KANJI_MARGIN, 0.0, 1.0))

        day_end, day_sure = n, 1.0  # no 日: the day runs to the end
        best_day = max(((kanji(i, n, "日"), i) for i in range(max(2, n - 3), n)), default=(0.0, n))
        if best_day[0] > 0:
            day_sure, day_end = best_day
        options = [(kanji(i, j, "月"), i, j) for i in range(1, day_end - 1)
                   for j in range(i + 1, min(i + 4, day_end))]
        options = [o for o in options if o[0] > 0]
        if not options:
            return None
        month_sure, i, j = max(options)

        def part(a: int, b: int) -> Reading | None:
            # read as an integer: never comes back here
            r = self.read_image(np.where(union(a, b), 0, 255).astype(np.uint8), "integer")
            return r if r.text.isdigit() else None

        month, day = part(0, i), part(j, day_end)
        if month is None or day is None or not (1 <= int(month.text) <= 12 and 1 <= int(day.text) <= 31):
            return None
        text = f"{int(month.text)}/{int(day.text)}"
        conf = month.confidence * day.confidence * min(month_sure, day_sure) ** 0.5
        confs = month.char_confidences + (round(month_sure, 4),) + day.char_confidences
        return Reading(text, float(conf), self.name, confs, ("kanji-date",))

    def recheck_digits(self, reading: Reading, image: np.ndarray, sure: float = 0.5,
                       numeric: bool = False) -> tuple[Reading, int] | None:
        """A second opinion on the digits of a printed ``reading`` (Tesseract's) of ``image``.

        Printed digits are mostly separate connected components of even height
        (``printed_glyphs``); each tall glyph is matched, left to right, with a tall
        character of the reading (digits, letters, kanji, ¥ and '/'; not , . - or
        spaces), splitting the widest glyph at its narrowest column while there are
        fewer glyphs than characters (touching pairs). Each glyph the reading calls a
        digit is classified by the digit model; where the model reads another digit at
        least ``sure``, that digit replaces Tesseract's (its character confidence
        becomes the model's). Letters, separators and Tesseract's segmentation are kept;
        with ``numeric`` (a number field, where a letter can only be a misread digit,
        '$100' for 8100) a tall character other than ¥ \\ / 円 is classified as well.
        -> (the reading with the model's digits, number of digits changed), or None
        when the glyphs cannot be matched with the reading (the model abstains)."""
        text = reading.text
        tall = [i for i, ch in enumerate(text) if not ch.isspace() and ch not in _SHORT_CHARS]
        if not tall or not any(text[i] in DIGITS for i in tall):
            return None
        glyphs = self._printed_glyphs(image)
        if glyphs is None:
            return None
        glyphs, H = glyphs
        glyphs = list(glyphs)
        while len(glyphs) < len(tall) and _split_widest(glyphs, H):
            pass
        if len(glyphs) != len(tall):
            return None
        probs = self._glyph_probs(glyphs)
        cls = self.model.classes
        chars = list(text)
        confs = list(reading.char_confidences) + [reading.confidence] * (len(text) - len(reading.char_confidences))
        changed = 0
        for g, i in zip(probs, tall):
            if text[i] not in DIGITS and not (numeric and text[i] not in _NUMBER_MARKS):
                continue
            k = int(np.argmax(g))
            if cls[k] in DIGITS and cls[k] != text[i] and g[k] >= sure:
                chars[i], confs[i] = cls[k], float(g[k])
                changed += 1
        if not changed:
            return reading, 0
        return replace(reading, text="".join(chars), char_confidences=tuple(confs[: len(text)]),
                       notes=reading.notes + ("digits-rechecked",)), changed

    def _printed_glyphs(self, image: np.ndarray) -> tuple[list[tuple[int, int, int, int, np.ndarray]], float] | None:
        """``printed_glyphs`` of the last image asked for (a field is rechecked once per read)."""
        last = self._last_printed
        if last is not None and last[0] is image:
            return last[1]
        out = printed_glyphs(image)
        self._last_printed = (image, out)
        self._probs_cache = {}
        return out

    def _glyph_probs(self, glyphs: list[tuple[int, int, int, int, np.ndarray]]) -> np.ndarray:
        keys = [(g[0], g[1], g[2], g[3]) for g in glyphs]
        todo = [g for g, k in zip(glyphs, keys) if k not in self._probs_cache]
        if todo:
            x = np.stack([normalize_glyph(np.where(m[y0:y1, x0:x1], 0, 255).astype(np.uint8))
                          for x0, x1, y0, y1, m in todo])
            for g, p in zip(todo, self.model.classify(x)):
                self._probs_cache[(g[0], g[1], g[2], g[3])] = p
        return np.stack([self._probs_cache[k] for k in keys])

    # ----------------------------------------------------------------- steps

    def _clean(self, atoms: list[_Atom], H: float, notes: list[str]) -> tuple[list[_Atom], int]:
        """Drop specks and underlines (flat strokes under several characters)."""
        keep, dropped = [], 0
        stroke = max(1.0, 0.08 * H)
        for a in atoms:
            if a.area < max(3.0, 0.6 * stroke * stroke) and a.h < 0.2 * H and a.w < 0.2 * H:
                dropped += 1
                continue
            keep.append(a)
        out = []
        for a in keep:
            if a.h <= 0.3 * H and a.w >= 1.6 * H:
                under = [b for b in keep if b is not a and b.x0 >= a.x0 - 2 and b.x1 <= a.x1 + 2 and b.y1 <= a.y0 + 0.3 * H]
                if len(under) >= 2:
                    notes.append("underline")
                    continue
            out.append(a)
        return out, dropped

    def _separators(self, atoms: list[_Atom], H: float, base: float, allowed: str) -> None:
        """Mark dots, commas and dashes (small marks judged by size and position)."""
        talls = [a for a in atoms if a.h >= 0.55 * H]
        for a in atoms:
            if a.h >= 0.45 * H:
                continue
            overl = any(min(a.x1, t.x1) - max(a.x0, t.x0) > 0.5 * min(a.w, t.w) for t in talls if t is not a)
            if overl:
                continue  # a piece of a character (a 5's hat, a broken stroke)
            mid = (a.y0 + a.y1) / 2
            if talls and a.w <= 0.3 * H and a.y1 <= base - 0.45 * H and (a.x0 >= max(t.x1 for t in talls) + 0.15 * H
                                                      or a.x1 <= min(t.x0 for t in talls) - 0.15 * H):
                # a small mark high up beyond either end (a tick, an apostrophe, a
                # stray dash) -- not a 5's detached hat, which is as wide as a digit
                a.fixed = "#speck"
                continue
            if a.w <= 0.4 * H and a.h <= 0.45 * H and a.y1 >= base - 0.3 * H and mid >= base - 0.35 * H:
                between = any(t.cx < a.cx for t in talls) and any(t.cx > a.cx for t in talls)
                if a.h >= 1.5 * a.w and a.y1 > base + 0.05 * H and "," in allowed:
                    a.fixed = ","
                elif a.h <= 0.3 * H:
                    a.fixed = "." if ("." in allowed or not between) else ","
                if a.fixed and not between and a.fixed in ".,":
                    a.fixed = "#speck"  # a dot before or after the number: not a separator
            elif a.h <= 0.3 * H and a.w >= 1.2 * a.h and a.w >= 0.2 * H and base - 0.85 * H <= mid <= base - 0.15 * H:
                a.fixed = "-"

    def _classify_masks(self, masks: list[np.ndarray]) -> np.ndarray:
        glyphs = []
        k = self._stroke_fix
        for m in masks:
            ys, xs = np.nonzero(m)
            sub = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            if k:
                sub = _restroke(sub, k)
            glyphs.append(normalize_glyph(np.where(sub, 0, 255).astype(np.uint8)))
        if not glyphs:
            return np.zeros((0, len(self.model.classes)), np.float32)
        return self.model.classify(np.stack(glyphs))

    def _char_from_probs(self, p: np.ndarray, allowed: str) -> tuple[str, float, float]:
        cls = self.model.classes
        if "/" not in allowed and "/" in cls and "1" in cls:
            # no '/' in this field: a steep stroke is a slanted '1'
            p = p.copy()
            p[cls.index("1")] += p[cls.index("/")]
            p[cls.index("/")] = 0.0
        best, q = REJECT, 0.0
        for i, c in enumerate(cls):
            if c in allowed and p[i] > q:
                best, q = c, float(p[i])
        prej = float(p[self._rej]) if self._rej is not None else 0.0
        if prej > q:  # unreadable: as sure as the best character it is allowed to be
            return REJECT, q, prej
        return best, q, prej

    def _read_comb(self, atoms: list[_Atom], combs: list[float], allowed: str) -> list[_Char]:
        edges = [-1e9] + list(combs) + [1e9]
        boxes: dict[int, list[_Atom]] = {}
        fixed: list[_Char] = []
        for a in atoms:
            if a.fixed == "#speck":
                continue
            k = int(np.searchsorted(combs, a.cx))
            boxes.setdefault(k, []).append(a)
        masks, spans = [], []
        for k in sorted(boxes):
            group = boxes[k]
            if all(g.fixed for g in group):
                for g in group:
                    fixed.append(_Char(g.fixed or "", SEPARATOR_CONFIDENCE, g.x0, g.x1, g.y0, g.y1))
                continue
            m = np.zeros_like(group[0].mask)
            for g in group:
                m |= g.mask
            masks.append(m)
            spans.append((min(g.x0 for g in group), max(g.x1 for g in group),
                          min(g.y0 for g in group), max(g.y1 for g in group)))
        del edges
        probs = self._classify_masks(masks)
        chars = fixed
        for p, (x0, x1, y0, y1) in zip(probs, spans):
            c, q, prej = self._char_from_probs(p, allowed)
            chars.append(_Char(c, q, x0, x1, y0, y1, prej, p))
        chars.sort(key=lambda c: (c.x0 + c.x1) / 2)
        return chars

    def _read_free(self, atoms: list[_Atom], H: float, allowed: str) -> list[_Char]:
        # over-segment wide components at valleys of their ink profile -- unless the
        # whole is clearly one character of a normal width (a wide 0, a 4)
        # (a flat stroke -- a 5's detached hat, a 7's bar -- is never two characters)
        wide = [i for i, a in enumerate(atoms) if not a.fixed and a.w >= 0.75 * H and a.w >= 0.8 * a.h
                and a.h >= FLAT_UNCUT * H]
        keep_whole = set()
        if wide:
            for i, p in zip(wide, self._classify_masks([atoms[i].mask for i in wide])):
                c, q, _ = self._char_from_probs(p, allowed)
                if c != REJECT and q >= 0.97 and atoms[i].w <= 1.05 * H:
                    keep_whole.add(i)
                elif c != REJECT and q >= 0.5 and _one_loop(atoms[i]):
                    keep_whole.add(i)  # a wide, flat 0: one loop spanning the component
                elif c == "0" and q >= WIDE_ZERO_Q and atoms[i].w <= 1.6 * H and _holes(atoms[i]) <= 1:
                    keep_whole.add(i)  # a wide 0, open or lopsided, that reads as one
        pieces: list[_Atom] = []
        for i, a in enumerate(atoms):
            if a.fixed:
                if a.fixed != "#speck":
                    a.parent = i
                    pieces.append(a)
                continue
            if i in wide and i not in keep_whole:
                cuts = [a.x0] + _tall_cuts(a.mask, _cuts(a.mask, a.x0, a.x1, H), a.x0, a.x1, H) + [a.x1]
                made = 0
                paths = [_bent_cut(a, c, H) if CUT_BEND and a.x0 < c < a.x1 else None for c in cuts]
                for k, (l, r) in enumerate(zip(cuts[:-1], cuts[1:])):
                    m = np.zeros_like(a.mask)
                    if paths[k] is None and paths[k + 1] is None:
                        m[:, l:r] = a.mask[:, l:r]
                    else:
                        xs = np.arange(m.shape[1])[None, :]
                        pl = paths[k] if paths[k] is not None else np.full(m.shape[0], l)
                        pr = paths[k + 1] if paths[k + 1] is not None else np.full(m.shape[0], r)
                        m = a.mask & (xs >= pl[:, None]) & (xs < pr[:, None])
                    ys = np.flatnonzero(m.any(axis=1))
                    if len(ys) == 0:
                        continue
                    xs_ = np.flatnonzero(m.any(axis=0))
                    runs = (_path_strokes(a.mask, paths[k], H) if paths[k] is not None
                            else _cut_strokes(a.mask, l, H)) if l > a.x0 else 0
                    pieces.append(_Atom(m, int(xs_[0]), int(ys[0]), int(xs_[-1]) + 1, int(ys[-1]) + 1, parent=i,
                                        area=int(m.sum()), cut_runs=runs))
                    made += 1
                if made:
                    continue
            a.parent = i
            pieces.append(a)
        pieces.sort(key=lambda a: a.cx)
        n = len(pieces)
        # candidate characters: runs of consecutive pieces
        cand: dict[tuple[int, int], np.ndarray] = {}
        order: list[tuple[int, int]] = []
        for s in range(n):
            if pieces[s].fixed:
                continue
            m = np.zeros_like(pieces[s].mask)
            x0, x1 = pieces[s].x0, pieces[s].x1
            y0c, y1c = pieces[s].y0, pieces[s].y1
            for e in range(s, min(n, s + MAX_GROUP)):
                p = pieces[e]
                if p.fixed:
                    break
                if e > s:
                    # pieces of one component (cut apart) may re-join; separate
                    # components join only when they overlap (a 5's hat, a stroke
                    # broken by the FAX) or nearly touch -- a clear gap separates
                    # characters, however well the union would read
                    same = p.parent == pieces[e - 1].parent
                    ov = min(x1, p.x1) - max(x0, p.x0)
                    # a 5's hat, detached: a flat stroke in the upper half, a little
                    # to the right of the body
                    hat = (p.h < 0.45 * H and y1c - y0c >= 0.6 * H and p.y1 <= (y0c + y1c) / 2
                           and ov >= -HAT_GAP * H)
                    if not same and ov < -max(2.0, 0.06 * H) and not hat:
                        break
                    tall = p.h >= 0.7 * H and (y1c - y0c) >= 0.7 * H
                    if not same and tall and ov < 0.3 * min(p.w, x1 - x0):
                        break
                    # a flat piece (a 5's hat, a 7's bar) may stick out further
                    flat = p.h < 0.45 * H or any(q.h < 0.45 * H for q in pieces[s:e])
                    if max(x1, p.x1) - min(x0, p.x0) > (WL_FLAT if flat else 1.35) * H:
                        break
                m = m | p.mask
                x0, x1 = min(x0, p.x0), max(x1, p.x1)
                y0c, y1c = min(y0c, p.y0), max(y1c, p.y1)
                cand[(s, e + 1)] = m
                order.append((s, e + 1))
        specks = {k for k, p in enumerate(pieces) if _speck(p, pieces, H)}
        wide_whole: set[tuple[int, int]] = set()
        # a component that was cut is always also read whole, however wide or however
        # many pieces (specks lying among them left out): a 0 with a lead-in stroke, a 5
        # with a long hat are one character wider than 1.35 H
        for par in sorted({p.parent for p in pieces if not p.fixed}):
            idx = [k for k, p in enumerate(pieces) if p.parent == par and not p.fixed]
            if len(idx) < 2:
                continue
            s, e = idx[0], idx[-1] + 1
            if (s, e) in cand or any(k not in idx and k not in specks for k in range(s, e)):
                continue
            m = np.zeros_like(pieces[s].mask)
            for k in idx:
                m |= pieces[k].mask
            cand[(s, e)] = m
            order.append((s, e))
            if max(pieces[k].x1 for k in idx) - min(pieces[k].x0 for k in idx) > 1.35 * H:
                wide_whole.add((s, e))
        probs = self._classify_masks([cand[k] for k in order])
        scored: dict[tuple[int, int], tuple[float, str, float, float, np.ndarray]] = {}
        for k, p in zip(order, probs):
            c, q, prej = self._char_from_probs(p, allowed)
            score = math.log(max(q, 1e-6)) + CHAR_BONUS
            if c in DIGITS and max(g.y1 for g in pieces[k[0]:k[1]]) - min(g.y0 for g in pieces[k[0]:k[1]]) < 0.45 * H:
                score += SHORT_DIGIT  # a digit is not that short: a hat, a bar, a fragment
            if k in wide_whole:
                score += WIDE_WHOLE  # wider than a character: more often two touching ones
            scored[k] = (score, c, q, prej, p)
        # dynamic programme over piece positions
        best = [-math.inf] * (n + 1)
        back: list[tuple[int, str] | None] = [None] * (n + 1)
        best[0] = 0.0
        starts: dict[int, list[int]] = {}
        for s, e in scored:
            starts.setdefault(e, []).append(s)
        for e in range(1, n + 1):
            p = pieces[e - 1]
            if p.fixed:
                if best[e - 1] > -math.inf:
                    best[e] = best[e - 1] + math.log(SEPARATOR_CONFIDENCE) + CHAR_BONUS
                    back[e] = (e - 1, "fixed")
                continue
            if e - 1 in specks and best[e - 1] > -math.inf:
                best[e], back[e] = best[e - 1] + SPECK_SKIP, (e - 1, "skip")
            for s in starts.get(e, ()):
                if best[s] > -math.inf:
                    v = best[s] + scored[(s, e)][0] + self._cut_cost(pieces, s)
                    if v > best[e]:
                        best[e], back[e] = v, (s, "cls")
        chars: list[_Char] = []
        e = n
        while e > 0 and back[e] is not None:
            s, kind = back[e]  # type: ignore[misc]
            group = pieces[s:e]
            x0, x1 = min(g.x0 for g in group), max(g.x1 for g in group)
            y0, y1 = min(g.y0 for g in group), max(g.y1 for g in group)
            if kind == "fixed":
                chars.append(_Char(group[0].fixed or "", SEPARATOR_CONFIDENCE, x0, x1, y0, y1))
            elif kind == "skip":
                self._skipped += 1
            else:
                _, c, q, prej, p = scored[(s, e)]
                chars.append(_Char(c, q, x0, x1, y0, y1, prej, p))
            e = s
        chars.reverse()
        self._lattice = (pieces, scored, specks)
        return self._check_splits(chars, pieces, atoms, allowed)

    @staticmethod
    def _cut_cost(pieces: list[_Atom], s: int) -> float:
        """Cost of a character boundary before piece ``s``: a cut through several strokes
        of one component (a loop, a curl) is unlikely to separate two characters."""
        if s <= 0 or s >= len(pieces):
            return 0.0
        p, q = pieces[s - 1], pieces[s]
        if p.parent != q.parent or q.cut_runs < 2:
            return 0.0
        return LOOP_CUT

    def _check_splits(self, chars: list[_Char], pieces: list[_Atom], atoms: list[_Atom], allowed: str) -> list[_Char]:
        """A component read as several characters must be convincing: when the whole is
        clearly no character (a tick, a scribble, a letter) and a part is doubtful, the
        whole becomes one '?' (a mark at either end may then be dropped)."""
        split_parents = {}
        for c in chars:
            parents = {p.parent for p in pieces if p.fixed is None and c.x0 <= p.cx <= c.x1}
            if len(parents) == 1:
                split_parents.setdefault(parents.pop(), []).append(c)
        wholes = [(k, cs) for k, cs in split_parents.items() if len(cs) >= 2]
        if not wholes:
            return chars
        probs = self._classify_masks([atoms[k].mask for k, _ in wholes])
        for (k, cs), p in zip(wholes, probs):
            prej = float(p[self._rej]) if self._rej is not None else 0.0
            sticks = all(c.text in "1/" for c in cs)  # a tick cut at its vertex is two sticks
            if prej >= 0.5 and sticks:
                a = atoms[k]
                merged = _Char(REJECT, min(1.0 - prej, min(c.conf for c in cs)), a.x0, a.x1, a.y0, a.y1, prej, p)
                first = chars.index(cs[0])
                chars = [c for c in chars if c not in cs]
                chars.insert(first, merged)
        return chars

    def _guess_rejected(self, chars: list[_Char], allowed: str, floor: float = GUESS_FLOOR) -> bool:
        """A rejected glyph left inside a number (after marks at the ends were dropped)
        becomes its likeliest allowed digit (or '/'), keeping its low confidence
        (below p(reject) <= 0.5, so the field is still reviewed): the clerk sees the
        best guess instead of '?', and it is often right. -> whether any was guessed."""
        cls = self.model.classes
        guessed = False
        for c in chars:
            if c.text != REJECT or c.probs is None:
                continue
            p = c.probs.copy()
            if "/" not in allowed and "/" in cls and "1" in cls:
                p[cls.index("1")] += p[cls.index("/")]
            best, q = None, 0.0
            for i, ch in enumerate(cls):
                if ch != REJECT and ch in allowed and ch in DIGITS + "/" and p[i] > q:
                    best, q = ch, float(p[i])
            if best is not None and q >= floor:
                c.text, c.conf = best, min(c.conf, q)
                guessed = True
        return guessed

    def _date_beam(self, width: int = 30) -> list[_Char] | None:
        return self._constrained_beam(_plausible_date, _date_prefix, width)

    def _constrained_beam(self, full_ok, prefix_ok, width: int = 30, comma_is_slash: bool = True) -> list[_Char] | None:
        """The likeliest reading of the last free-text lattice that ``full_ok`` accepts
        (a plausible date M/D, Y/M/D; a part number matching its pattern), texts that
        ``prefix_ok`` refuses pruned on the way: a beam search over the same
        segmentation candidates, any class of each (not only its best), fixed
        dots/dashes kept (a stray dot or a speck may be skipped). Each character keeps
        the probability of the class it was given, so a glyph forced away from its best
        class reads doubtful. None: no such reading."""
        if self._lattice is None:
            return None
        pieces, scored, specks = self._lattice
        n = len(pieces)
        ends: dict[int, list[int]] = {}
        for s, e in scored:
            ends.setdefault(s, []).append(e)
        cls = self.model.classes
        emit = [i for i, c in enumerate(cls) if c in DIGITS + "/-"]
        beams: list[dict[str, tuple[float, list[_Char]]]] = [dict() for _ in range(n + 1)]
        beams[0][""] = (0.0, [])

        def add(pos: int, text: str, score: float, chars: list[_Char]) -> None:
            if not prefix_ok(text):
                return
            old = beams[pos].get(text)
            if old is None or score > old[0]:
                beams[pos][text] = (score, chars)

        for s0 in range(n):
            if len(beams[s0]) > width:
                keep = sorted(beams[s0].items(), key=lambda kv: -kv[1][0])[:width]
                beams[s0] = dict(keep)
            for text, (score, chars) in list(beams[s0].items()):
                p0 = pieces[s0]
                if p0.fixed:
                    if p0.fixed == "#speck":
                        add(s0 + 1, text, score, chars)
                        continue
                    ch = "/" if p0.fixed == "," and comma_is_slash else p0.fixed
                    c = _Char(ch, SEPARATOR_CONFIDENCE, p0.x0, p0.x1, p0.y0, p0.y1)
                    add(s0 + 1, text + ch, score + math.log(SEPARATOR_CONFIDENCE) + CHAR_BONUS, chars + [c])
                    if p0.fixed in ".,":  # a speck of noise
                        add(s0 + 1, text, score + math.log(0.2), chars)
                    continue
                if s0 in specks:
                    add(s0 + 1, text, score + SPECK_SKIP, chars)
                for e in sorted(ends.get(s0, ())):
                    sc0, _, q0, prej, pr = scored[(s0, e)]
                    # the segmentation's own costs of this candidate (a short digit, a
                    # whole wider than a character), whatever class it is given
                    prior = sc0 - math.log(max(q0, 1e-6)) - CHAR_BONUS
                    group = pieces[s0:e]
                    x0, x1 = min(g.x0 for g in group), max(g.x1 for g in group)
                    y0, y1 = min(g.y0 for g in group), max(g.y1 for g in group)
                    for k in emit:
                        q = float(pr[k])
                        if q < 1e-4:
                            continue
                        c = _Char(cls[k], q, x0, x1, y0, y1, prej, pr)
                        add(e, text + cls[k], score + math.log(q) + CHAR_BONUS + prior + self._cut_cost(pieces, s0),
                            chars + [c])
        done = [(sc, ch) for t, (sc, ch) in beams[n].items() if full_ok(t)]
        if not done:
            return None
        return max(done, key=lambda d: d[0])[1]

    def _date_separators(self, chars: list[_Char], notes: list[str]) -> list[_Char]:
        """'1' or '/'? A stroke alone cannot say; the shape of a date can (M/D, Y/M/D with
        a real month and day). Every assignment of the ambiguous strokes is weighed by
        the model's p('1') / p('/'); each stroke's confidence is the share of the
        plausible assignments that agree with the chosen one."""
        cls = self.model.classes
        if "/" not in cls or "1" not in cls:
            return chars
        i1, isl = cls.index("1"), cls.index("/")
        amb = [i for i, c in enumerate(chars) if c.probs is not None and c.text in ("1", "/")]
        if not amb or len(amb) > 8:
            return chars
        texts = [c.text for c in chars]
        options = []
        for bits in itertools.product((0, 1), repeat=len(amb)):
            for i, b in zip(amb, bits):
                texts[i] = "/" if b else "1"
            if _plausible_date("".join(texts)):
                w = 1.0
                for i, b in zip(amb, bits):
                    p = chars[i].probs
                    w *= float(p[isl] if b else p[i1]) + 1e-6
                options.append((w, bits))
        if not options:
            return chars
        total = sum(w for w, _ in options)
        best_w, best = max(options)
        for k, (i, b) in enumerate(zip(amb, best)):
            agree = sum(w for w, bits in options if bits[k] == b) / total
            c = chars[i]
            new = "/" if b else "1"
            if new != c.text:
                notes.append("separator-inferred" if b else "separator-is-1")
            c.text = new
            c.conf = float(min(0.995, (c.probs[i1] + c.probs[isl]) * agree))
        return chars

    def _drop_marks(self, chars: list[_Char], H: float, notes: list[str]) -> tuple[list[_Char], float]:
        """Ticks, check marks and scribbles at either end, apart from the number: dropped.

        Returns the characters left and the confidence that what was dropped is not
        a character (1.0 when nothing was dropped)."""
        conf = 1.0
        changed = True
        while changed and chars:
            changed = False
            for end in (0, -1):
                c = chars[end]
                if c.text != REJECT or c.p_reject < 0.9:
                    continue
                others = [o for o in chars if o is not c]
                if not any(o.text != REJECT for o in others):
                    continue  # only beside a number is a mark a mark
                nb = others[0] if end == 0 else others[-1]
                gap = (nb.x0 - c.x1) if end == 0 else (c.x0 - nb.x1)
                if gap >= 0.4 * H:
                    notes.append("mark-ignored")
                    conf = min(conf, c.p_reject)
                    chars = others
                    changed = True
                    break
        return chars, conf


# ------------------------------------------------------------------ printed digits (second reader)

#: Characters of a printed reading that are not tall glyphs (matched with no component).
_SHORT_CHARS = set(",.-ー－―‐−–'`:;_~、。･・")
_NUMBER_MARKS = set("¥\\/円")  # tall characters a number field may hold besides digits
PRINTED_TALL = 0.55  # a glyph at least this x the text height is a character, not a separator
PRINTED_SPLIT = 0.75  # only a glyph at least this x H wide is split (a touching pair)


def printed_glyphs(image: np.ndarray) -> tuple[list[tuple[int, int, int, int, np.ndarray]], float] | None:
    """Tall glyphs of printed text, left to right: [(x0, x1, y0, y1, mask)], text height.

    Rules removed as for handwriting; components overlapping in x by more than half
    the narrower one are one glyph (broken strokes, dithered print); glyphs lower than
    PRINTED_TALL x H (commas, dots, dashes) are left out. None: no ink."""
    ink = binarize(image)
    if not ink.any():
        return None
    H0 = _text_height([a for a in _components(ink) if a.area >= 4])
    ink, _, _ = remove_rules(ink, H0 if H0 >= 6 else None)
    atoms = sorted((a for a in _components(ink) if a.area >= 3), key=lambda a: a.x0)
    if not atoms:
        return None
    H = _text_height(atoms)
    groups: list[list] = []
    for a in atoms:
        if groups:
            g = groups[-1]
            if min(g[1], a.x1) - max(g[0], a.x0) > 0.5 * min(a.w, g[1] - g[0]):
                g[0], g[1] = min(g[0], a.x0), max(g[1], a.x1)
                g[2].append(a)
                continue
        groups.append([a.x0, a.x1, [a]])
    out = []
    for x0, x1, parts in groups:
        y0, y1 = min(p.y0 for p in parts), max(p.y1 for p in parts)
        if y1 - y0 < PRINTED_TALL * H:
            continue
        m = parts[0].mask.copy()
        for p in parts[1:]:
            m |= p.mask
        out.append((x0, x1, y0, y1, m))
    return out, H


def _split_widest(glyphs: list, H: float) -> bool:
    """Split the widest glyph in two at its narrowest column (in its middle 40 %), in
    place; False when no glyph is wide enough to be a touching pair."""
    if not glyphs:
        return False
    i = max(range(len(glyphs)), key=lambda k: glyphs[k][1] - glyphs[k][0])
    x0, x1, _, _, m = glyphs[i]
    w = x1 - x0
    if w < PRINTED_SPLIT * H:
        return False
    prof = m[:, x0:x1].sum(axis=0)
    lo, hi = int(0.3 * w), int(0.7 * w) + 1
    cut = x0 + lo + int(np.argmin(prof[lo:hi]))
    parts = []
    for side in (slice(None, cut), slice(cut, None)):
        mm = np.zeros_like(m)
        mm[:, side] = m[:, side]
        ys, xs = np.nonzero(mm)
        if len(xs) == 0:
            return False
        parts.append((int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1, mm))
    glyphs[i : i + 1] = parts
    return True


_PATTERNS: dict[str, re.Pattern | None] = {}


def _compiled(pattern: str) -> re.Pattern | None:
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = re.compile(pattern)
        except re.error:
            _PATTERNS[pattern] = None
    return _PATTERNS[pattern]


_DATE = re.compile(r"^(?:(\d{2,4})[/.-])?(\d{1,2})[/.-](\d{1,2})$")


def _date_prefix(text: str) -> bool:
    """Can ``text`` still grow into a date (Y/M/D or M/D, one kind of separator)?"""
    parts = re.split(r"[/.-]", text)
    if len(parts) > 3 or any(len(p) > 4 for p in parts) or "" in parts[:-1]:
        return False
    if len(parts) >= 2 and any(len(p) > 2 for p in parts[1:]):
        return False
    if len(parts) == 3 and len(parts[0]) < 2:
        return False
    return len(set(re.findall(r"[/.-]", text))) <= 1


# Dates written with 月 and 日 (HandwritingEngine._kanji_date): the values matched; a
# window is a kanji when nearest to its renderings and nearer than KANJI_DISTANCE
# (measured on generated 月日 cells: kanji at 0.2-0.76; digits that came out nearest
# to a kanji at 0.82 and more); its margin over the nearest digit / KANJI_MARGIN is
# its certainty (a thin margin makes the date's confidence low: review). Requiring a
# margin of 0.03 / 0.05 lost 1 / 4 of 86 generated 月日 cells and saved no wrong one.
KANJI_MATCH_VALUES = ("月", "日") + tuple(DIGITS)
KANJI_DISTANCE = 0.8
KANJI_MARGIN = 0.15
# A 月日 reading that differs from a plausible M/D reading of the same cell is shown
# but kept below the review threshold: two readings of one cell disagree.
KANJI_DISAGREE_CONF = 0.5


def _plausible_date(text: str) -> bool:
    m = _DATE.match(text)
    return bool(m) and 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31


# --------------------------------------------------------------------------- handwriting or print


def ink_profile(image: np.ndarray) -> dict:
    """Features of the ink that tell handwriting from print.

    ``stroke_cv``: variation of the stroke width along the strokes; ``height_cv``:
    variation of the heights of the tall glyphs; ``baseline_jitter`` and
    ``top_jitter``: spread of their bottoms / tops relative to the text height;
    ``n_glyphs``; ``text_height`` (px).
    """
    ink = binarize(image)
    atoms = [a for a in _components(ink) if a.area >= 4]
    H = _text_height(atoms)
    out = {"n_glyphs": 0, "text_height": H, "stroke_cv": 0.0, "height_cv": 0.0, "print_match": 0.0,
           "baseline_jitter": 0.0, "top_jitter": 0.0, "width_cv": 0.0}
    tall = [a for a in atoms if a.h >= 0.55 * H and a.h <= 1.6 * H]
    if not tall or H < 4:
        return out
    out["n_glyphs"] = len(tall)
    hs = np.array([a.h for a in tall], float)
    ws = np.array([a.w for a in tall], float)
    out["height_cv"] = float(hs.std() / hs.mean())
    out["width_cv"] = float(ws.std() / max(ws.mean(), 1))
    out["baseline_jitter"] = float(np.std([a.y1 for a in tall]) / H)
    out["top_jitter"] = float(np.std([a.y0 for a in tall]) / H)
    tpl = _print_templates()
    if len(tpl):
        sims = []
        for a in tall[:12]:
            ys, xs = np.nonzero(a.mask)
            sub = a.mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            v = _unit(normalize_glyph(np.where(sub, 0, 255).astype(np.uint8)))
            sims.append(float((tpl @ v).max()))
        out["print_match"] = float(np.median(sims))
    dist = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 3)
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & ink & (dist > 0)
    v = dist[ridge]
    if len(v) >= 5:
        out["stroke_cv"] = float(v.std() / max(v.mean(), 1e-6))
    return out


PRINT_FONTS = (
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf",
    "/usr/share/fonts/truetype/vlgothic/VL-Gothic-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)


def _unit(g: np.ndarray) -> np.ndarray:
    v = cv2.GaussianBlur(g, (0, 0), 1.0).ravel().astype(np.float32)
    v = v - v.mean()
    return v / (np.linalg.norm(v) + 1e-6)


_TEMPLATES: np.ndarray | None = None


def _print_templates() -> np.ndarray:
    """Printed digits 0-9 of the installed fonts, normalised like glyphs (rows: unit vectors)."""
    global _TEMPLATES
    if _TEMPLATES is None:
        rows = []
        try:
            from PIL import Image, ImageDraw, ImageFont

            for path in PRINT_FONTS:
                if not Path(path).exists():
                    continue
                f = ImageFont.truetype(path, 64)
                for d in DIGITS:
                    im = Image.new("L", (128, 128), 255)
                    ImageDraw.Draw(im).text((20, 10), d, fill=0, font=f)
                    a = np.asarray(im)
                    a = np.where(a < 128, 0, 255).astype(np.uint8)
                    rows.append(_unit(normalize_glyph(a)))
        except Exception:  # pragma: no cover - no fonts: the feature is left out
            rows = []
        _TEMPLATES = np.stack(rows) if rows else np.zeros((0, 784), np.float32)
    return _TEMPLATES


# logistic model on ink_profile features (fitted by ``--calibrate`` on rendered printed
# numbers vs numbers composed from held-out handwritten digits; see docs/handwriting.md)
# ``print_match``: how well the glyphs match printed digits of the installed fonts
# (median best correlation) -- by far the strongest cue; stroke width and glyph width
# variation add a little. Fitted: 93 % right on 1,200 FAX-like numbers.
HANDWRITTEN_COEF = {"bias": 24.96, "print_match": -31.05, "stroke_cv": 3.01, "width_cv": 3.05}


def looks_handwritten(image: np.ndarray) -> float:
    """Probability that the ink in ``image`` is handwriting rather than print."""
    f = ink_profile(image)
    if f["n_glyphs"] == 0:
        return 0.5
    z = HANDWRITTEN_COEF["bias"] + sum(HANDWRITTEN_COEF[k] * f[k] for k in HANDWRITTEN_COEF if k != "bias")
    if f["n_glyphs"] == 1:  # one glyph says little about jitter
        z *= 0.5
    return float(1.0 / (1.0 + math.exp(-z)))

