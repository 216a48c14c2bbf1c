"""Handwritten text for generated sample scans, from real handwritten digits.

``HandwritingSource(path).render("12/5", height=48, rng)`` composes a number from
real handwritten digit images (the MNIST-style file in ``../shared/data``), using
ONLY the validation split defined in ``faxflow.ocr.engines.digits``: the writers of
these digits were never seen by the digit model, so generated samples measure how
it reads unseen handwriting.

Digits get random size jitter, baseline drift, slant, spacing (sometimes touching)
and stroke thickness. Separators (``/ - . , :``) and upper-case ASCII letters are
drawn as pen strokes; anything else (lower case, kana, kanji) comes from a Japanese
font with a little distortion. When the data file is missing the digits come from
fonts too and ``real_digits`` is False.

Images are uint8, 0 = ink, 255 = paper (composite onto a page with ``np.minimum``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from faxflow.ocr.engines.digits import validation_indices

DEFAULT_DATA = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "handwritten-digits"
    / "digits-train.npz"
)

FONT_FILES = (
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/vlgothic/VL-Gothic-Regular.ttf",
    "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
)
JAPANESE_FONTS = tuple(f for f in FONT_FILES if "dejavu" not in f)


def _arc(cx, cy, rx, ry, a0, a1, n=14):
    a = np.radians(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(a), cy - ry * np.sin(a)))


# Upper-case letters and separators as pen strokes: polylines in a box of
# width ``_WIDTH.get(ch, 0.7)`` x height 1 (x right, y down; 0 = top of a digit).
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.62), (0.78, 0.62)]],
    "B": [
        [(0, 0), (0, 1)],
        [(0, 0), (0.6, 0), (0.85, 0.12), (0.85, 0.36), (0.6, 0.48), (0, 0.48)],
        [(0.6, 0.48), (0.95, 0.6), (0.95, 0.88), (0.65, 1), (0, 1)],
    ],
    "C": [_arc(0.55, 0.5, 0.5, 0.5, 50, 310)],
    "D": [[(0, 0), (0, 1)], [(0, 0), (0.5, 0), (0.95, 0.25), (0.95, 0.75), (0.5, 1), (0, 1)]],
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.75, 0.5)]],
    "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.48), (0.75, 0.48)]],
    "G": [_arc(0.52, 0.5, 0.48, 0.5, 45, 330), [(0.55, 0.58), (1.0, 0.58), (1.0, 0.92)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "I": [[(0.5, 0), (0.5, 1)], [(0.15, 0), (0.85, 0)], [(0.15, 1), (0.85, 1)]],
    "J": [[(0.85, 0), (0.85, 0.75), (0.65, 1), (0.3, 1), (0.05, 0.8)]],
    "K": [[(0, 0), (0, 1)], [(0.95, 0), (0, 0.58)], [(0.3, 0.38), (1, 1)]],
    "L": [[(0, 0), (0, 1), (0.9, 1)]],
    "M": [[(0, 1), (0.06, 0), (0.5, 0.72), (0.94, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "O": [_arc(0.5, 0.5, 0.5, 0.5, 90, 450, 24)],
    "P": [[(0, 1), (0, 0), (0.65, 0), (0.95, 0.15), (0.95, 0.4), (0.65, 0.55), (0, 0.55)]],
    "Q": [_arc(0.5, 0.5, 0.5, 0.5, 90, 450, 24), [(0.6, 0.7), (1.05, 1.05)]],
    "R": [
        [(0, 1), (0, 0), (0.65, 0), (0.95, 0.15), (0.95, 0.4), (0.65, 0.55), (0, 0.55)],
        [(0.45, 0.55), (1, 1)],
    ],
    "S": [
        [(0.92, 0.12), (0.6, 0), (0.25, 0), (0.05, 0.2), (0.2, 0.42), (0.8, 0.58),
         (0.97, 0.8), (0.75, 1), (0.35, 1), (0.03, 0.88)]
    ],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "U": [[(0, 0), (0, 0.72), (0.22, 1), (0.78, 1), (1, 0.72), (1, 0)]],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.3), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "Z": [[(0, 0), (1, 0), (0, 1), (1, 1)]],
    "/": [[(0, 1.05), (1, -0.05)]],
    "-": [[(0, 0.55), (1, 0.53)]],
    "×": [[(0.1, 0.35), (0.9, 0.95)], [(0.9, 0.35), (0.1, 0.95)]],
}
_WIDTH = {"I": 0.45, "J": 0.55, "M": 0.95, "W": 1.0, "/": 0.42, "-": 0.5, "×": 0.6, "L": 0.6}


def _chaikin(pts: np.ndarray, rounds: int = 2) -> np.ndarray:
    for _ in range(rounds):
        if len(pts) < 3:
            break
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        inner = np.empty((2 * len(q), 2))
        inner[0::2], inner[1::2] = q, r
        pts = np.vstack([pts[:1], inner, pts[-1:]])
    return pts


def draw_strokes(
    ch: str, height: int, rng: np.random.Generator, thickness: float | None = None, jitter: float = 0.045
) -> np.ndarray:
    """One character from ``STROKES`` drawn as a wobbly pen line: uint8, 0 = ink.

    The image is ``height`` px tall (the character spans it) and as wide as the
    character needs, with a margin of about one stroke width.
    """
    polys = STROKES[ch]
    wr = _WIDTH.get(ch, 0.7) * rng.uniform(0.85, 1.15)
    t = thickness if thickness is not None else max(1.5, height * rng.uniform(0.07, 0.12))
    up = 4  # draw at 4x and shrink: smooth, anti-aliased strokes
    pad = t * 1.2 + 2
    h = height
    w = max(2, int(np.ceil(wr * h + 2 * pad)))
    hh = int(np.ceil(h + 2 * pad))
    canvas = np.zeros((hh * up, w * up), np.uint8)
    for poly in polys:
        p = np.array(poly, float)
        p = p + rng.normal(0, jitter, p.shape)
        p = _chaikin(p, 2)
        xy = np.stack([(pad + p[:, 0] * wr * h) * up, (pad + p[:, 1] * h) * up], axis=1)
        cv2.polylines(
            canvas, [np.round(xy * 16).astype(np.int32)], False, 255,
            thickness=max(1, int(round(t * up))), lineType=cv2.LINE_AA, shift=4,
        )
    small = cv2.resize(canvas, (w, hh), interpolation=cv2.INTER_AREA)
    return (255 - small).astype(np.uint8)


@lru_cache(maxsize=64)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def font_glyph(ch: str, height: int, font_path: str | None = None) -> np.ndarray:
    """``ch`` rendered with a font, cropped to its ink, scaled to ``height`` px tall
    (digit-sized characters) -- uint8, 0 = ink. Empty array for a blank character."""
    from PIL import Image, ImageDraw

    path = font_path or FONT_FILES[0]
    size = 96
    img = Image.new("L", (size * 2, size * 2), 255)
    ImageDraw.Draw(img).text((size // 2, size // 4), ch, fill=0, font=_font(path, size))
    a = np.asarray(img)
    ys, xs = np.nonzero(a < 128)
    if len(xs) == 0:
        return np.zeros((0, 0), np.uint8)
    a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    # scale relative to the font's digit height so '.' stays small and 'y' descends
    ref = _digit_height(path, size)
    s = height / ref
    nh, nw = max(1, round(a.shape[0] * s)), max(1, round(a.shape[1] * s))
    return cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=16)
def _digit_height(path: str, size: int) -> int:
    from PIL import Image, ImageDraw

    img = Image.new("L", (size * 2, size * 2), 255)
    ImageDraw.Draw(img).text((size // 2, size // 4), "0", fill=0, font=_font(path, size))
    ys = np.nonzero(np.asarray(img) < 128)[0]
    return int(ys.max() - ys.min() + 1)


def _shear(img: np.ndarray, k: float) -> np.ndarray:
    """Slant a glyph (0 = ink): x' = x + k * (h - y); widens the canvas to fit."""
    h, w = img.shape
    extra = int(np.ceil(abs(k) * h))
    if k > 0:
        m = np.array([[1, -k, k * h], [0, 1, 0]], float)
    else:
        m = np.array([[1, -k, 0], [0, 1, 0]], float)
    return cv2.warpAffine(img, m, (w + extra, h), flags=cv2.INTER_LINEAR, borderValue=255)


def _crop_ink(img: np.ndarray, level: int = 200) -> np.ndarray:
    ys, xs = np.nonzero(img < level)
    if len(xs) == 0:
        return img[:0, :0]
    return img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


class HandwritingSource:
    """Composes handwritten-looking text from the validation split of the digit data.

    ``path`` defaults to ``../shared/data/handwritten-digits/digits-train.npz`` beside
    the repository. Without the file, digits are drawn from fonts (``real_digits``
    is then False) so the sample generator still works.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else DEFAULT_DATA
        self._by_digit: dict[str, list[np.ndarray]] = {}
        self.indices = np.zeros(0, np.int64)
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as z:
                images, labels = z["images"], z["labels"]
            self.indices = validation_indices(labels)
            for i in self.indices:
                g = _crop_ink(255 - images[i], 200)
                if g.size:
                    self._by_digit.setdefault(str(int(labels[i])), []).append(g)

    @property
    def real_digits(self) -> bool:
        """True when digits come from real handwriting (the data file was found)."""
        return bool(self._by_digit)

    def digit_glyph(self, d: str, rng: np.random.Generator) -> np.ndarray:
        """One raw handwritten glyph of digit ``d`` (uint8, 0 = ink, cropped to ink)."""
        if self.real_digits:
            pool = self._by_digit[d]
            return pool[rng.integers(len(pool))]
        return _fontish(d, 40, rng)

    def render(
        self,
        text: str,
        height: int,
        rng: np.random.Generator,
        *,
        touching: float = 0.12,
        slant: float | None = None,
    ) -> np.ndarray:
        """``text`` written by hand in an image ``height`` px tall (uint8, 0 = ink, 255 = paper).

        Digits are about 60-80 % of ``height`` tall with baseline drift kept inside
        the image; the width follows the text (small margins left and right).
        ``touching`` is the chance that a digit touches or overlaps the previous one;
        ``slant`` (shear, + leans right) is drawn at random when None. A space
        leaves a gap; an empty text gives a blank 1-px-wide image.
        """
        height = int(height)
        if not text:
            return np.full((height, 1), 255, np.uint8)
        ch_h = height * rng.uniform(0.6, 0.78)
        sl = rng.normal(0.1, 0.08) if slant is None else slant
        thick = rng.choice([-1, 0, 0, 0, 1, 1]) if ch_h > 24 else rng.choice([0, 0, 1])
        stroke = max(1.5, ch_h * rng.uniform(0.08, 0.12))
        pieces: list[tuple[np.ndarray, float, float]] = []  # glyph, x, baseline offset
        x = ch_h * rng.uniform(0.1, 0.3)
        base = 0.0
        prev_digit = False
        for ch in text:
            base = float(np.clip(base + rng.normal(0, 0.03 * ch_h), -0.08 * ch_h, 0.08 * ch_h))
            h = ch_h * rng.uniform(0.9, 1.08)
            if ch == " ":
                x += ch_h * rng.uniform(0.35, 0.6)
                prev_digit = False
                continue
            if ch.isdigit() and ch.isascii():
                g = self.digit_glyph(ch, rng)
                g = _resize_h(g, h, rng.uniform(0.9, 1.12))
                g = _thickness(g, thick)
                g = _shear(g, sl + rng.normal(0, 0.05))
                drop = 0.0
            elif ch == ".":
                r = max(1.0, stroke * rng.uniform(0.5, 0.75))
                g = _dot(r)
                drop = 0.0
            elif ch == ",":
                g = draw_strokes("/", max(4, int(h * 0.3)), rng, thickness=stroke * 0.9, jitter=0.03)
                drop = -h * 0.15  # below the baseline
            elif ch == ":":
                r = max(1.0, stroke * 0.6)
                d = _dot(r)
                gap = np.full((int(h * 0.35), d.shape[1]), 255, np.uint8)
                g = np.vstack([d, gap, d])
                drop = h * 0.1
            elif ch in STROKES:
                hh = h * (0.9 if ch == "/" else 1.0)
                g = draw_strokes(ch, max(4, int(round(hh))), rng, thickness=stroke)
                g = _crop_ink(g, 200)
                if ch == "-":
                    drop = h * rng.uniform(0.3, 0.5)
                elif ch == "/":
                    drop = -h * rng.uniform(0.0, 0.08)
                else:
                    drop = 0.0
                g = _shear(g, sl * 0.8)
            elif ch.upper() in STROKES and ch.isascii() and ch.isalpha():
                g = draw_strokes(ch.upper(), max(4, int(round(h * 0.7))), rng, thickness=stroke)
                g = _shear(_crop_ink(g, 200), sl * 0.8)
                drop = 0.0
            else:
                g = _fontish(ch, int(round(h)), rng)
                if g.size == 0:
                    x += ch_h * 0.5
                    continue
                g = _shear(g, sl * 0.5)
                drop = 0.0
            g = _crop_ink(g, 230)
            if g.size == 0:
                continue
            is_digit = ch.isdigit()
            if pieces:
                if is_digit and prev_digit and rng.random() < touching:
                    x -= ch_h * rng.uniform(0.0, 0.1)  # touching / slightly overlapping
                else:
                    x += ch_h * rng.uniform(0.06, 0.3)
            pieces.append((g, x, base + drop))
            x += g.shape[1]
            prev_digit = is_digit
        if not pieces:
            return np.full((height, max(1, int(x))), 255, np.uint8)
        width = int(np.ceil(x + ch_h * rng.uniform(0.1, 0.3)))
        out = np.full((height, width), 255, np.uint8)
        # baseline: glyph bottoms sit at base_y - offset
        base_y = height - (height - ch_h) / 2
        for g, gx, off in pieces:
            gh, gw = g.shape
            y1 = int(round(base_y - off))
            y0 = y1 - gh
            if y0 < 0:
                y1 -= y0
                y0 = 0
            if y1 > height:
                y0 -= y1 - height
                y1 = height
                y0 = max(0, y0)
            gx = int(round(gx))
            x1 = min(width, gx + gw)
            region = out[y0:y1, gx:x1]
            np.minimum(region, g[: y1 - y0, : x1 - gx], out=region)
        # pen ink is dark: darken the grey that scaling thin strokes leaves
        return (255.0 * (out / 255.0) ** 2.5).astype(np.uint8)


def _resize_h(g: np.ndarray, h: float, wscale: float = 1.0) -> np.ndarray:
    s = h / g.shape[0]
    nh, nw = max(1, int(round(h))), max(1, int(round(g.shape[1] * s * wscale)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return np.clip(cv2.resize(g, (nw, nh), interpolation=interp), 0, 255).astype(np.uint8)


def _thickness(g: np.ndarray, step: int) -> np.ndarray:
    if step == 0:
        return g
    k = np.ones((2, 2), np.uint8)
    pad = cv2.copyMakeBorder(g, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=255)
    return cv2.erode(pad, k) if step > 0 else cv2.dilate(pad, k)  # erode on paper = thicker ink


def _dot(r: float) -> np.ndarray:
    n = int(np.ceil(2 * r + 3))
    up = 4
    c = np.zeros((n * up, n * up), np.uint8)
    cv2.circle(c, (n * up // 2, n * up // 2), int(r * up), 255, -1, lineType=cv2.LINE_AA)
    return (255 - cv2.resize(c, (n, n), interpolation=cv2.INTER_AREA)).astype(np.uint8)


def _fontish(ch: str, height: int, rng: np.random.Generator) -> np.ndarray:
    """A font glyph with a hand-made look: random font, slight rotation and wobble."""
    fonts = FONT_FILES if ch.isascii() else JAPANESE_FONTS
    path = fonts[rng.integers(len(fonts))]
    g = font_glyph(ch, height, path)
    if g.size == 0:
        return g
    g = cv2.copyMakeBorder(g, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=255)
    h, w = g.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.normal(0, 4), 1.0)
    g = cv2.warpAffine(g, m, (w, h), borderValue=255)
    # smooth random displacement (elastic)
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), 4) * 12
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), 4) * 12
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    g = cv2.remap(g, gx + dx, gy + dy, cv2.INTER_LINEAR, borderValue=255)
    return _crop_ink(g, 200)


# --------------------------------------------------------------------------- calibration
# ``python -m faxflow.samples.handwriting --calibrate`` composes handwritten fields from
# the validation split (writers the model never saw), reads them with the handwriting
# engine and prints, per threshold, how many wrong readings would pass unflagged and
# how many right ones would be flagged. It lives here, not in ocr/, because ocr/ may
# not import samples/ (the renderer).


def fax_like(img: np.ndarray, rng: np.random.Generator, text_px: float, target_px: float = 40.0) -> np.ndarray:
    """What the page pipeline hands the engine: the writing scanned so that its text is
    ``text_px`` high (FAX 200 dpi: ~14-30 px), binarised, then upscaled by the crop stage
    so the text is ``target_px`` high. uint8, 0 = ink."""
    h = img.shape[0]
    s = text_px / (0.7 * h)
    small = cv2.resize(img, (max(2, round(img.shape[1] * s)), max(2, round(h * s))), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.25:  # FAX standard mode: half the vertical resolution
        hh = max(2, small.shape[0] // 2)
        small = cv2.resize(cv2.resize(small, (small.shape[1], hh), interpolation=cv2.INTER_AREA),
                           (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    noisy = small.astype(np.float32) + rng.normal(0, 12, small.shape)
    b = np.where(noisy < rng.uniform(110, 160), 0, 255).astype(np.uint8)
    up = target_px / text_px
    b = cv2.resize(b, (max(2, round(b.shape[1] * up)), max(2, round(b.shape[0] * up))), interpolation=cv2.INTER_LINEAR)
    return np.pad(b, 6, constant_values=255)


def random_field(rng: np.random.Generator) -> tuple[str, str]:
    """(text, field type) as written on order sheets: quantities and M/D due dates."""
    r = rng.random()
    if r < 0.45:
        n = int(np.exp(rng.uniform(0, np.log(20000))))
        return str(max(1, n)), "quantity"
    if r < 0.6:
        return str(int(rng.integers(1, 10)) * 10 ** int(rng.integers(0, 4))), "quantity"
    m, d = int(rng.integers(1, 13)), int(rng.integers(1, 32))
    return f"{m}/{d}", "date"


def calibration_set(n: int, seed: int, source: HandwritingSource | None = None):
    """``n`` (image, text, field type) composed from the validation digits, FAX-degraded."""
    src = source or HandwritingSource()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        text, ftype = random_field(rng)
        img = src.render(text, int(rng.integers(40, 72)), rng)
        if rng.random() < 0.7:  # 4-5 mm digits at 200 dpi, FAX standard mode halves it
            img = fax_like(img, rng, rng.uniform(18, 40))
        else:
            img = np.pad(img, 6, constant_values=255)
        out.append((img, text, ftype))
    return out


def printed_set(n: int, seed: int):
    """Printed numbers (fonts, straight baseline), FAX-degraded: the other side for ``looks_handwritten``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        text, _ = random_field(rng)
        font = FONT_FILES[rng.integers(len(FONT_FILES))]
        h = int(rng.integers(30, 60))
        glyphs = [font_glyph(c, h, font) for c in text]
        ref = max(g.shape[0] for g in glyphs)
        canvas = np.full((int(ref * 1.6), sum(g.shape[1] + 6 for g in glyphs) + 12), 255, np.uint8)
        x, base = 6, int(ref * 1.3)
        for c, g in zip(text, glyphs):
            y1 = base if c != "/" else base + int(0.1 * ref)
            canvas[y1 - g.shape[0]:y1, x:x + g.shape[1]] = np.minimum(canvas[y1 - g.shape[0]:y1, x:x + g.shape[1]], g)
            x += g.shape[1] + int(h * 0.12)
        out.append((fax_like(canvas, rng, rng.uniform(18, 40)) if rng.random() < 0.7 else canvas, text))
    return out


def calibrate(n: int = 2000, seed: int = 4242, max_wrong: float = 0.005) -> dict:
    """Read ``n`` composed fields; choose the lowest threshold with wrong-but-unflagged
    <= ``max_wrong`` of all fields. Returns the numbers (also printed by ``main``)."""
    import time

    from faxflow.ocr.engines.handwriting import HandwritingEngine, ink_profile, looks_handwritten

    eng = HandwritingEngine()
    data = calibration_set(n, seed)
    t0 = time.perf_counter()
    rows = []
    for img, text, ftype in data:
        r = eng.read_image(img, ftype)
        rows.append((r.text == text, r.confidence, ftype))
    per_field_ms = (time.perf_counter() - t0) / n * 1000
    ok = np.array([r[0] for r in rows])
    conf = np.array([r[1] for r in rows])
    def row(t: float) -> dict:
        passed = conf >= t
        return {
            "threshold": float(t),
            "wrong_unflagged": float(np.mean(~ok & passed)),
            "right_flagged": float(np.mean(ok & ~passed) / max(ok.mean(), 1e-9)),
            "flagged": float(np.mean(~passed)),
        }

    table = [row(t) for t in np.round(np.arange(0.0, 1.0001, 0.05), 3)]
    fine = [row(t) for t in np.round(np.arange(0.0, 1.0001, 0.005), 3)]
    good = [r for r in fine if r["wrong_unflagged"] <= max_wrong]
    chosen = min(good, key=lambda r: r["threshold"]) if good else fine[-1]
    table = sorted(table + [chosen], key=lambda r: r["threshold"])
    hw = np.array([looks_handwritten(img) for img, _, _ in data[:300]])
    pr = np.array([looks_handwritten(img) for img, _ in printed_set(300, seed + 1)])
    return {
        "fields": n, "seed": seed, "accuracy": float(ok.mean()), "ms_per_field": per_field_ms,
        "by_type": {t: float(np.mean([r[0] for r in rows if r[2] == t])) for t in ("quantity", "date")},
        "table": table, "chosen": chosen,
        "looks_handwritten": {"handwriting_mean": float(hw.mean()), "printed_mean": float(pr.mean()),
                              "handwriting_below_0.7": float(np.mean(hw < 0.7)),
                              "printed_above_0.3": float(np.mean(pr > 0.3))},
        "_features": ([ink_profile(img) for img, _, _ in data[:300]],
                      [ink_profile(img) for img, _ in printed_set(300, seed + 1)]),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m faxflow.samples.handwriting")
    ap.add_argument("--calibrate", action="store_true", help="measure errors vs confidence threshold")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--render", metavar="TEXT", help="write TEXT as handwriting to render.png")
    args = ap.parse_args(argv)
    if args.render:
        img = HandwritingSource().render(args.render, 64, np.random.default_rng(args.seed))
        cv2.imwrite("render.png", img)
        return 0
    if not args.calibrate:
        ap.print_help()
        return 2
    res = calibrate(args.n, args.seed)
    res.pop("_features")
    print(f"{res['fields']} fields (seed {res['seed']}): {res['accuracy'] * 100:.2f}% read right "
          f"(quantity {res['by_type']['quantity'] * 100:.2f}%, date {res['by_type']['date'] * 100:.2f}%), "
          f"{res['ms_per_field']:.1f} ms per field")
    print("threshold  wrong-unflagged  right-flagged  flagged")
    for row in res["table"]:
        mark = "  <- chosen" if row is res["chosen"] else ""
        print(f"   {row['threshold']:.3f}        {row['wrong_unflagged'] * 100:6.2f}%        "
              f"{row['right_flagged'] * 100:6.2f}%   {row['flagged'] * 100:6.2f}%{mark}")
    print("looks_handwritten:", json.dumps(res["looks_handwritten"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
