"""Closed-set glyph matcher: which of a field's ``allowed`` values is in this cell?

A unit cell (個, 本, 台, kg ...) holds one or two small glyphs that a FAX turns into
blobs; Tesseract, even restricted to the values' characters, reads 個 as 優 or 台 as
人. Here every allowed value is rendered with the installed fonts, degraded like a
FAX (low resolution, thin or thick strokes, half vertical resolution), and the crop's
ink is compared with each rendering:

* ``normalize``: binarize, drop specks, trim to the ink's bounding box, pad to a
  square (the aspect ratio is part of the shape: ``m`` is wide, ``個`` square) and
  shrink to ``SIZE`` x ``SIZE``. Renderings go through the same function.
* ``features``: a HOG descriptor (OpenCV) of that image, L2-normalised.
* ``GlyphMatcher.match``: per value the distance to its nearest rendering; the best
  value, its distance and the margin to the second best value. ``confidence`` maps the
  margin to [0, 1]; a best distance above ``REJECT_DISTANCE`` means "none of the list"
  (``text`` empty), so a value that is not in the list is never pushed into it.

Renderings are cached per tuple of values, in memory and on disk (``cache_dir()``):
~2 s the first time a list is seen on a machine, milliseconds in later processes; a
match then costs ~2 ms. Fonts are whatever of ``FONT_CANDIDATES`` (and
any other font file in ``FONT_DIRS``) is installed and has the value's glyphs; with no
usable font the matcher gives no reading and the caller goes on without it.

This module only matches; how its answer is combined with Tesseract's reads is decided
in ``ocr.read.FieldReader._closed_set`` (measured there).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SIZE = 32  # side of the normalised glyph image
# Font files looked for first (relative to a font folder): Japanese faces of many
# designs, then Latin ones. Any other font file found is used too (up to MAX_FONTS).
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts",
             "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")
FONT_CANDIDATES = (
    ("opentype/ipafont-gothic/ipag.ttf", 0), ("opentype/ipafont-gothic/ipagp.ttf", 0),
    ("opentype/ipafont-mincho/ipam.ttf", 0), ("opentype/ipafont-mincho/ipamp.ttf", 0),
    ("truetype/vlgothic/VL-Gothic-Regular.ttf", 0),
    ("opentype/noto/NotoSansCJK-Regular.ttc", 0), ("opentype/noto/NotoSansCJK-Bold.ttc", 0),
    ("opentype/noto/NotoSerifCJK-Regular.ttc", 0), ("opentype/noto/NotoSerifCJK-Bold.ttc", 0),
    ("truetype/fonts-japanese-gothic.ttf", 0), ("truetype/fonts-japanese-mincho.ttf", 0),
    ("truetype/dejavu/DejaVuSans.ttf", 0), ("truetype/dejavu/DejaVuSans-Bold.ttf", 0),
    ("truetype/dejavu/DejaVuSerif.ttf", 0), ("truetype/dejavu/DejaVuSansMono.ttf", 0),
    ("truetype/dejavu/DejaVuSansCondensed.ttf", 0), ("truetype/dejavu/DejaVuSerif-Bold.ttf", 0),
    ("truetype/liberation/LiberationSans-Regular.ttf", 0), ("truetype/liberation/LiberationSerif-Regular.ttf", 0),
    ("msgothic.ttc", 0), ("msmincho.ttc", 0), ("meiryo.ttc", 0), ("YuGothM.ttc", 0), ("arial.ttf", 0),
    ("ヒラギノ角ゴシック W3.ttc", 0), ("Hiragino Sans GB.ttc", 0),
)
MAX_FONTS = 24
UPSCALE_PX = 32  # renderings are blown up to about this ink height, as crops are
RENDER_PX = 64  # glyphs are drawn this high, then degraded
# FAX-like degradations of each rendering: the glyph's ink height in source pixels
# (a 10-pt unit at 200 dpi is ~20 px, small print or standard mode ~10), the vertical
# resolution (1.0, or 0.5 for 200x100 dpi standard mode) and the binarization threshold
# on the anti-aliased glyph (low = thin strokes, high = thick).
DEGRADE_HEIGHTS = (11, 16, 24)
DEGRADE_VSCALES = (1.0, 0.5)
DEGRADE_THRESHOLDS = (60, 128, 200)
DEGRADE_DILATE = (0, 1)  # extra pixels of stroke (heavy toner), at the source resolution
SPECK_FRACTION = 0.04  # a component with less ink than this of the largest is a speck ...
SPECK_FAR = 0.35  # ... when farther than this x the ink height from the largest
REJECT_DISTANCE = 0.9  # nearest rendering farther than this: not one of the values
MARGIN_SCALE = 0.25  # margin (second - best distance) that counts as certainty 1.0

CELL = 8  # HOG cell side (px of the normalised image)
BINS = 9  # unsigned gradient orientations per cell
_CELL_INDEX = (np.arange(SIZE) // CELL)[:, None] * (SIZE // CELL) + (np.arange(SIZE) // CELL)[None, :]


def normalize(ink: np.ndarray) -> np.ndarray | None:
    """A boolean ink mask -> the ink trimmed to its bounding box, padded to a square and
    shrunk to SIZE x SIZE (float32, 1 = ink); None when there is no ink."""
    ink = ink.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = int(np.argmax(areas)) + 1
    bx, by, bw, bh = stats[big, :4]
    reach = SPECK_FAR * max(bh, bw)
    keep = np.zeros(n, bool)
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        dx = max(bx - (x + w), x - (bx + bw), 0)
        dy = max(by - (y + h), y - (by + bh), 0)
        keep[i] = a >= SPECK_FRACTION * areas[big - 1] or (dx <= reach and dy <= reach and a >= 2)
    mask = keep[labels]
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    mask = mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.float32)
    h, w = mask.shape
    side = max(h, w)
    canvas = np.zeros((side, side), np.float32)
    canvas[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = mask
    return cv2.resize(canvas, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def features(norm: np.ndarray) -> np.ndarray:
    """HOG-like descriptor: per CELL x CELL cell a histogram of unsigned gradient
    orientations weighted by magnitude, each 2x2 block of cells L2-normalised, the whole
    L2-normalised (OpenCV's HOGDescriptor is not in every cv2 build)."""
    img = cv2.GaussianBlur(norm, (3, 3), 0)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi) * (BINS / np.pi)
    b0 = np.floor(ang).astype(np.int32) % BINS
    w1 = ang - np.floor(ang)
    n = SIZE // CELL
    idx = _CELL_INDEX * BINS
    hist = (np.bincount((idx + b0).ravel(), (mag * (1 - w1)).ravel(), n * n * BINS)
            + np.bincount((idx + (b0 + 1) % BINS).ravel(), (mag * w1).ravel(), n * n * BINS))
    hist = hist.reshape(n, n, BINS)
    blocks = np.concatenate([hist[:-1, :-1], hist[:-1, 1:], hist[1:, :-1], hist[1:, 1:]], axis=2)
    blocks /= np.sqrt((blocks * blocks).sum(axis=2, keepdims=True)) + 1e-3
    f = blocks.ravel().astype(np.float32)
    return f / (np.linalg.norm(f) + 1e-6)


# -- rendering ------------------------------------------------------------------------

def _font_files() -> list[tuple[Path, int]]:
    dirs = [Path(os.path.expanduser(d)) for d in FONT_DIRS]
    dirs = [d for d in dirs if d.is_dir()]
    found: list[tuple[Path, int]] = []
    for rel, index in FONT_CANDIDATES:
        for d in dirs:
            p = d / rel
            if p.is_file() and (p, index) not in found:
                found.append((p, index))
                break
    for d in dirs:  # other fonts of the machine, a few: more designs seen
        for p in sorted(d.rglob("*")):
            if len(found) >= MAX_FONTS:
                break
            if p.suffix.lower() in (".ttf", ".otf", ".ttc") and (p, 0) not in found:
                found.append((p, 0))
    return found


@functools.lru_cache(maxsize=1)
def _fonts() -> tuple:
    from PIL import ImageFont

    out = []
    for path, index in _font_files():
        try:
            out.append(ImageFont.truetype(str(path), RENDER_PX, index=index))
        except (OSError, ValueError):
            continue
    return tuple(out)


def _draw(text: str, font) -> np.ndarray | None:
    """``text`` drawn in ``font`` (grey, 255 = ink), trimmed; None when blank."""
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = font.getbbox(text)
    if x1 <= x0 or y1 <= y0:
        return None
    img = Image.new("L", (x1 - x0 + 8, y1 - y0 + 8), 0)
    ImageDraw.Draw(img).text((4 - x0, 4 - y0), text, fill=255, font=font)
    a = np.asarray(img)
    ys, xs = np.nonzero(a > 40)
    if ys.size == 0:
        return None
    return a[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def _has_glyphs(text: str, font) -> bool:
    """Whether ``font`` draws every character of ``text`` (not its 'missing' box)."""
    missing = _draw("\U0010FFFD", font)
    for ch in text:
        if ch.isspace():
            continue
        g = _draw(ch, font)
        if g is None or (missing is not None and g.shape == missing.shape and np.array_equal(g, missing)):
            return False
    return True


def degrade(glyph: np.ndarray, height: int, vscale: float, threshold: int, dilate: int = 0) -> np.ndarray:
    """A FAX-like binary version of an anti-aliased glyph (255 = ink): shrunk so its ink
    is ``height`` px high (times ``vscale`` vertically), thresholded, blown up again as
    the crop stage upscales cells (blocky)."""
    h, w = glyph.shape
    s = height / h
    small = cv2.resize(glyph, (max(1, round(w * s)), max(1, round(h * s * vscale))), interpolation=cv2.INTER_AREA)
    binary = small >= (255 - threshold)
    if dilate:
        binary = cv2.dilate(binary.astype(np.uint8), np.ones((dilate + 1, dilate + 1), np.uint8)) > 0
    if vscale != 1.0:  # standard mode: ingest doubles the rows back to square pixels
        binary = cv2.resize(binary.astype(np.uint8), (binary.shape[1], max(1, round(binary.shape[0] / vscale))),
                            interpolation=cv2.INTER_NEAREST) > 0
    # the crop stage upscales cells so text is ~40 px high (cubic, thresholded): the
    # same blocky corners here, and specks are judged at the same scale
    up = UPSCALE_PX / max(binary.shape[0], 1)
    if up > 1.15:
        big = cv2.resize(np.where(binary, 0, 255).astype(np.uint8), None, fx=up, fy=up,
                         interpolation=cv2.INTER_CUBIC)
        binary = big < 128
    return binary


@dataclass(frozen=True)
class Candidates:
    values: tuple[str, ...]
    labels: np.ndarray  # index into values, per rendering
    feats: np.ndarray  # (renderings, dims)


@functools.lru_cache(maxsize=32)
def candidates(values: tuple[str, ...]) -> Candidates | None:
    """Every value rendered in every font that has its glyphs, degraded every way.

    Rendering takes ~2 s per list, in every worker process of every batch, so the result
    is also kept on disk (``cache_dir()``), keyed by the values, the font files and this
    module's code: a later process loads it in milliseconds."""
    path = _cache_path(values)
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if z["feats"].shape[0] == 0:
                    return None
                return Candidates(values, z["labels"].astype(np.intp), z["feats"].astype(np.float32))
        except (OSError, ValueError, KeyError):
            pass  # unreadable or from an older numpy: render again and rewrite it
    made = _render_candidates(values)
    if path is not None:
        _save_cache(path, made)
    return made


def cache_dir() -> Path:
    """Where renderings are kept between processes: $FAXFLOW_CACHE, else
    $XDG_CACHE_HOME/faxflow, else ~/.cache/faxflow. Deleting it is always safe."""
    env = os.environ.get("FAXFLOW_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "faxflow"


def _cache_path(values: tuple[str, ...]) -> Path | None:
    import hashlib

    try:
        h = hashlib.sha256()
        h.update(Path(__file__).read_bytes())  # any change of this code renders again
        h.update(repr((values, np.__version__, cv2.__version__)).encode("utf-8"))
        for path, index in _font_files():
            st = path.stat()
            h.update(f"{path}|{index}|{st.st_size}|{st.st_mtime_ns}".encode("utf-8"))
    except OSError:
        return None
    return cache_dir() / f"glyphs-{h.hexdigest()[:24]}.npz"


def _save_cache(path: Path, made: Candidates | None) -> None:
    """Written to a temporary name and renamed: a reader never sees half a file. A cache
    that cannot be written (read-only home) is only slower, never an error."""
    import tempfile

    labels = made.labels if made is not None else np.zeros(0, np.intp)
    feats = made.feats if made is not None else np.zeros((0, 1), np.float32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, labels=labels, feats=feats)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass


def _render_candidates(values: tuple[str, ...]) -> Candidates | None:
    labels, feats = [], []
    for font in _fonts():
        for i, v in enumerate(values):
            if not v.strip() or not _has_glyphs(v, font):
                continue
            g = _draw(v, font)
            if g is None:
                continue
            for height in DEGRADE_HEIGHTS:
                for vs in DEGRADE_VSCALES:
                    for t in DEGRADE_THRESHOLDS:
                        for dil in DEGRADE_DILATE:
                            n = normalize(degrade(g, height, vs, t, dil))
                            if n is not None:
                                labels.append(i)
                                feats.append(features(n))
    if not feats:
        return None
    order = np.argsort(labels, kind="stable")  # grouped by value, for match_ink's reduceat
    return Candidates(values, np.asarray(labels)[order], np.vstack(feats)[order])


@dataclass(frozen=True)
class Match:
    value: str  # "" when nothing in the list is close enough
    distance: float  # to the nearest rendering of ``value``
    margin: float  # the second best value's distance minus the best's
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()  # (value, distance), best first


def match_ink(ink: np.ndarray, values: tuple[str, ...]) -> Match | None:
    """The allowed value whose renderings are nearest to ``ink`` (boolean mask); None
    when there is no ink or no font can draw the values."""
    cands = candidates(tuple(values))
    norm = normalize(ink)
    if cands is None or norm is None:
        return None
    f = features(norm)
    # |a - b| of unit vectors from their dot product. einsum, not '@': a threaded BLAS
    # took 23 ms for this product on a busy 2-core machine, einsum 0.4 ms
    d = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * np.einsum("ij,j->i", cands.feats, f)))
    starts = np.flatnonzero(np.r_[True, np.diff(cands.labels) != 0])
    best = np.full(len(values), np.inf)
    best[cands.labels[starts]] = np.minimum.reduceat(d, starts)
    order = np.argsort(best)
    ranking = tuple((values[i], float(best[i])) for i in order if np.isfinite(best[i]))
    b = ranking[0][1]
    second = ranking[1][1] if len(ranking) > 1 else b + MARGIN_SCALE
    margin = second - b
    value = ranking[0][0] if b <= REJECT_DISTANCE else ""
    conf = float(np.clip(margin / MARGIN_SCALE, 0.0, 1.0)) if value else 0.0
    return Match(value, b, margin, conf, ranking)


def match_image(image: np.ndarray, values: tuple[str, ...]) -> Match | None:
    """``match_ink`` for a grey crop (0 = ink, 255 = paper)."""
    return match_ink(image < 128, values)
