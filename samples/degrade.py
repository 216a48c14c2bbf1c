"""What happens to a sheet between the sender's printer and our inbox.

Building blocks used by ``samples.generate``: each takes a NumPy image (uint8, grey
0 = ink / 255 = paper, or RGB for photos) and a ``numpy.random.Generator`` and
returns the new image plus the tokens recorded in the ground truth
(``"degradations"``). Savers write the file formats FAX machines, FAX servers,
office scanners and phones produce.

Token vocabulary (see also ``samples.generate``):
  fax-fine, fax-standard, no-dpi-tags, fax-reduced=F, threshold=T, dither-ordered,
  dither-fs, blur, noise, speckle, streaks, toner-light, toner-heavy, fax-header,
  skew=D, shift=FX,FY, scale=F, rotate=90|180|270 (content turned counter-clockwise),
  scan-DPI, jpeg-q=Q, edge-shadow, fax-then-scan, photo, perspective, curve,
  lighting, exif-orientation=6|8
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from faxflow.samples.forms import get_font

FAX_WIDTH = 1728  # pixels per line of a G3/G4 FAX page (215 mm at 8 dots/mm)
FAX_DPI_X = 204


def _clip_normal(rng: np.random.Generator, sigma: float, limit: float) -> float:
    return float(np.clip(rng.normal(0.0, sigma), -limit, limit))


# --- geometry ------------------------------------------------------------------------


def random_geometry(rng: np.random.Generator, *, skew_sigma: float = 1.2, skew_max: float = 3.0,
                    shift_sigma: float = 0.02, shift_max: float = 0.05,
                    scale_sigma: float = 0.02, scale_max: float = 0.05) -> dict:
    """Skew (degrees), shift (fraction of the page) and scale for one page.
    Mostly small, sometimes up to the limits (skew +-3 deg, shift/scale +-5 %)."""
    return {
        "skew": round(_clip_normal(rng, skew_sigma, skew_max), 2),
        "shift": (round(_clip_normal(rng, shift_sigma, shift_max), 3),
                  round(_clip_normal(rng, shift_sigma, shift_max), 3)),
        "scale": round(1.0 + _clip_normal(rng, scale_sigma, scale_max), 3),
    }


def geometry_tokens(g: dict) -> list[str]:
    out = []
    if abs(g["skew"]) >= 0.05:
        out.append(f"skew={g['skew']:+.2f}")
    sx, sy = g["shift"]
    if abs(sx) >= 0.001 or abs(sy) >= 0.001:
        out.append(f"shift={sx:+.3f},{sy:+.3f}")
    if abs(g["scale"] - 1.0) >= 0.001:
        out.append(f"scale={g['scale']:.3f}")
    return out


def affine(img: np.ndarray, g: dict, border=255) -> np.ndarray:
    """Rotate by ``skew`` degrees (counter-clockwise), scale and shift about the centre;
    the image keeps its size (what falls off the sheet is lost)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), g["skew"], g["scale"])
    m[0, 2] += g["shift"][0] * w
    m[1, 2] += g["shift"][1] * h
    bv = border if img.ndim == 2 else (border,) * img.shape[2]
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=bv)


def rotate90(img: np.ndarray, k: int) -> np.ndarray:
    """Turn the content k quarter turns counter-clockwise (token rotate=90*k)."""
    return np.ascontiguousarray(np.rot90(img, k % 4))


# --- print and sensor effects ----------------------------------------------------------


def toner(grey: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """A light or heavy print: the ink's darkness scaled (thin grey strokes fade or
    grow, as with a printer low on toner or set too dark)."""
    r = rng.random()
    if r < 0.24:
        gain = rng.uniform(0.6, 0.85) if r < 0.12 else rng.uniform(1.25, 1.6)
        ink = (255.0 - grey.astype(np.float32)) * gain
        out = (255.0 - np.clip(ink, 0, 255)).astype(np.uint8)
        return out, ["toner-light" if r < 0.12 else "toner-heavy"]
    return grey, []


def blur_noise(grey: np.ndarray, rng: np.random.Generator, blur: tuple[float, float],
               noise: tuple[float, float]) -> np.ndarray:
    s = rng.uniform(*blur)
    out = cv2.GaussianBlur(grey, (0, 0), s) if s > 0.2 else grey
    n = rng.uniform(*noise)
    if n > 0:
        out = out.astype(np.float32) + rng.normal(0, n, out.shape).astype(np.float32)
        out = np.clip(out, 0, 255).astype(np.uint8)
    return out


# --- binarisation --------------------------------------------------------------------

_BAYER8 = np.array([
    [0, 32, 8, 40, 2, 34, 10, 42], [48, 16, 56, 24, 50, 18, 58, 26],
    [12, 44, 4, 36, 14, 46, 6, 38], [60, 28, 52, 20, 62, 30, 54, 22],
    [3, 35, 11, 43, 1, 33, 9, 41], [51, 19, 59, 27, 49, 17, 57, 25],
    [15, 47, 7, 39, 13, 45, 5, 37], [63, 31, 55, 23, 61, 29, 53, 21]], np.float32)


def binarize(grey: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """FAX binarisation: a fixed threshold (text mode) or dithering (photo mode).
    Returns uint8 0/255."""
    r = rng.random()
    if r < 0.68:
        t = int(rng.integers(115, 176))
        return np.where(grey < t, 0, 255).astype(np.uint8), [f"threshold={t}"]
    # photo (halftone) mode: a tone curve first, so that paper stays white
    grey = np.clip((grey.astype(np.float32) - 8.0) * (255.0 / 222.0), 0, 255).astype(np.uint8)
    if r < 0.84:
        h, w = grey.shape
        tile = np.tile((_BAYER8 + 0.5) * 4.0, (h // 8 + 1, w // 8 + 1))[:h, :w]
        return np.where(grey < tile, 0, 255).astype(np.uint8), ["dither-ordered"]
    img = Image.fromarray(grey).convert("1", dither=Image.Dither.FLOYDSTEINBERG)
    return (np.asarray(img, dtype=np.uint8) * 255), ["dither-fs"]


def speckle(binary: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Black specks (dust, line noise) and a few white drop-outs."""
    h, w = binary.shape
    out = binary.copy()
    n = int(h * w * rng.uniform(2e-5, 2.5e-4))
    ys, xs = rng.integers(0, h - 3, n), rng.integers(0, w - 3, n)
    sizes = rng.choice([1, 1, 1, 2, 2, 3], n)
    for y, x, s in zip(ys, xs, sizes):
        out[y:y + s, x:x + s] = 0
    m = int(n * 0.3)
    ys, xs = rng.integers(0, h, m), rng.integers(0, w, m)
    out[ys, xs] = 255
    return out


def streaks(binary: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FAX streaks: thin vertical lines (dirt on the scanner glass, along the feed) and
    horizontal line errors (a black line, a dropped white band, or a shifted band)."""
    h, w = binary.shape
    out = binary.copy()
    for _ in range(int(rng.integers(0, 3)) + (1 if rng.random() < 0.6 else 0)):
        x = int(rng.integers(0, w - 3))
        width = int(rng.choice([1, 1, 2, 3]))
        y0 = int(rng.integers(0, h // 3)) if rng.random() < 0.4 else 0
        y1 = h if rng.random() < 0.7 else int(rng.integers(y0 + 1, h))
        out[y0:y1, x:x + width] = 0
    for _ in range(int(rng.integers(1, 4))):
        y = int(rng.integers(0, h - 12))
        kind = rng.random()
        if kind < 0.35:
            out[y:y + int(rng.integers(1, 3)), :] = 0
        elif kind < 0.65:
            out[y:y + int(rng.integers(2, 10)), :] = 255
        else:
            band = int(rng.integers(2, 12))
            out[y:y + band] = np.roll(out[y:y + band], int(rng.integers(-40, 40)), axis=1)
    return out


# --- FAX -----------------------------------------------------------------------------


def fax_header_text(rng: np.random.Generator, when, sender: str, fax_no: str, page: int,
                    pages: int) -> str:
    """The sending machine's header line (TTI)."""
    hh, mm = int(rng.integers(8, 19)), int(rng.integers(0, 60))
    style = int(rng.integers(0, 3))
    if style == 0:
        return f"{when:%Y/%m/%d} {hh:02d}:{mm:02d}   {fax_no}   {sender}   P.{page}/{pages}"
    if style == 1:
        mon = when.strftime("%b").upper()
        return f"{mon}-{when.day:02d}-{when.year} {hh:02d}:{mm:02d}  FROM:{fax_no.replace('-', '')}  P.{page:03d}/{pages:03d}"
    return f"{when.year}年{when.month:2d}月{when.day:2d}日 {hh:02d}時{mm:02d}分  {sender}  {fax_no}  {page}/{pages}"


def draw_header_line(grey: np.ndarray, text: str, rng: np.random.Generator, *,
                     px: float) -> np.ndarray:
    """Overlay the header line at the top edge, in a small machine font."""
    img = Image.fromarray(grey)
    d = ImageDraw.Draw(img)
    font = get_font(str(rng.choice(["gothic", "sans_mono", "vlgothic"])), round(px))
    x = int(rng.integers(20, 120))
    y = int(rng.integers(4, 20))
    w = int(font.getlength(text))
    d.rectangle([x - 4, y - 2, x + w + 4, y + int(px * 1.25)], fill=255)
    d.text((x, y), text, font=font, fill=0)
    return np.asarray(img)


def to_fax(grey: np.ndarray, rng: np.random.Generator, mode: str, *, header: str | None = None,
           page_width: int = FAX_WIDTH) -> tuple[np.ndarray, list[str]]:
    """A page rendered at 204 dpi (square pixels) -> FAX raster (uint8 0/255):
    scanner blur and noise, vertical resolution of the mode, binarisation, 1728
    pixels per line, specks and streaks. The page must already be portrait."""
    tokens = []
    g = blur_noise(grey, rng, (0.3, 0.9), (2.0, 9.0))
    if header is not None:
        g = draw_header_line(g, header, rng, px=rng.uniform(20, 26))
        tokens.append("fax-header")
    h, w = g.shape
    lines_per_inch = 196 if mode == "fine" else 98
    g = cv2.resize(g, (w, max(1, round(h * lines_per_inch / FAX_DPI_X))), interpolation=cv2.INTER_AREA)
    b, tk = binarize(g, rng)
    tokens += tk
    # place on the FAX line width (the sheet is narrower than the scan line)
    out = np.full((b.shape[0], page_width), 255, np.uint8)
    off = (page_width - w) // 2 + int(rng.integers(-8, 9))
    src0, dst0 = max(0, -off), max(0, off)
    n = min(w - src0, page_width - dst0)
    out[:, dst0:dst0 + n] = b[:, src0:src0 + n]
    if rng.random() < 0.45:
        out = speckle(out, rng)
        tokens.append("speckle")
    if rng.random() < 0.25:
        out = streaks(out, rng)
        tokens.append("streaks")
    return out, tokens


def fax_reduce(grey: np.ndarray, factor: float) -> np.ndarray:
    """A landscape sheet sent without turning: the machine shrinks it to the line width."""
    h, w = grey.shape
    return cv2.resize(grey, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)


# --- office scans ----------------------------------------------------------------------


def office_scan(grey: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Greyscale flatbed/ADF scan: paper tone, slight blur and noise, maybe a shadow
    along one edge (lid not closed)."""
    tokens = ["blur", "noise"]
    paper = rng.uniform(232, 252)
    ink = rng.uniform(10, 55)
    g = grey.astype(np.float32) / 255.0
    g = ink + (paper - ink) * g
    g = blur_noise(np.clip(g, 0, 255).astype(np.uint8), rng, (0.5, 1.3), (0.8, 3.5))
    if rng.random() < 0.12:
        h, w = g.shape
        side = int(rng.integers(0, 4))
        width = int(rng.uniform(0.01, 0.04) * (w if side < 2 else h))
        ramp = np.linspace(rng.uniform(40, 120), 255, width, dtype=np.float32)
        f = g.astype(np.float32)
        if side == 0:
            f[:, :width] = np.minimum(f[:, :width], ramp[None, :])
        elif side == 1:
            f[:, w - width:] = np.minimum(f[:, w - width:], ramp[::-1][None, :])
        elif side == 2:
            f[:width, :] = np.minimum(f[:width, :], ramp[:, None])
        else:
            f[h - width:, :] = np.minimum(f[h - width:, :], ramp[::-1][:, None])
        g = f.astype(np.uint8)
        tokens.append("edge-shadow")
    return g, tokens


# --- phone photos ------------------------------------------------------------------------


def _smooth(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(small.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)


def phone_photo(rgb: np.ndarray, rng: np.random.Generator, frame: tuple[int, int]
                ) -> tuple[np.ndarray, list[str]]:
    """A phone photo of the sheet on a desk: page curl, perspective, uneven light,
    defocus, sensor noise. ``frame`` = (width, height) of the photo.

    One remap does curl and perspective together; the smooth fields (maps, light,
    desk texture) are computed on a 1/8 grid and interpolated."""
    tokens = ["photo", "perspective"]
    h, w = rgb.shape[:2]
    fw, fh = frame
    fill = rng.uniform(0.78, 0.94)
    s = min(fw * fill / w, fh * fill / h)
    pw, ph = w * s, h * s
    cx = fw / 2 + rng.uniform(-0.04, 0.04) * fw
    cy = fh / 2 + rng.uniform(-0.04, 0.04) * fh
    j = 0.035
    dst = np.float32([
        [cx - pw / 2 + rng.uniform(-j, j) * pw, cy - ph / 2 + rng.uniform(-j, j) * ph],
        [cx + pw / 2 + rng.uniform(-j, j) * pw, cy - ph / 2 + rng.uniform(-j, j) * ph],
        [cx + pw / 2 + rng.uniform(-j, j) * pw, cy + ph / 2 + rng.uniform(-j, j) * ph],
        [cx - pw / 2 + rng.uniform(-j, j) * pw, cy + ph / 2 + rng.uniform(-j, j) * ph],
    ])
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    minv = cv2.getPerspectiveTransform(dst, src)  # photo -> page
    gs = 8
    sw, sh = fw // gs + 2, fh // gs + 2
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float64) * gs
    den = minv[2, 0] * xx + minv[2, 1] * yy + minv[2, 2]
    u = (minv[0, 0] * xx + minv[0, 1] * yy + minv[0, 2]) / den
    v = (minv[1, 0] * xx + minv[1, 1] * yy + minv[1, 2]) / den
    if rng.random() < 0.7:  # page curl: rows bow, columns bend a little
        a = rng.uniform(0.002, 0.012) * h * rng.choice([-1, 1])
        b = rng.uniform(0.0, 0.006) * w * rng.choice([-1, 1])
        cu, cv_ = np.clip(u, 0, w), np.clip(v, 0, h)
        u = u + b * np.sin(np.pi * cv_ / h)
        v = v + a * np.sin(np.pi * cu / w) * (1.0 - 0.6 * cv_ / h)
        tokens.append("curve")
    # the small grid covers (sw-1)*gs >= fw pixels: crop after resizing
    mapx = _smooth(u, (sw * gs, sh * gs))[:fh, :fw]
    mapy = _smooth(v, (sw * gs, sh * gs))[:fh, :fw]
    page = cv2.remap(rgb, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=(0, 0, 0))
    inside = ((mapx >= 0) & (mapx < w - 1) & (mapy >= 0) & (mapy < h - 1)).astype(np.float32)
    inside = cv2.GaussianBlur(inside, (0, 0), 0.8)
    desk = [rng.uniform(60, 170), rng.uniform(50, 140), rng.uniform(40, 120)]
    texture = rng.normal(0, 10, (fh // 16 + 1, fw // 16 + 1))
    bg = cv2.merge([np.clip(_smooth(texture + c, (fw, fh)), 0, 255).astype(np.uint8) for c in desk])
    img = cv2.blendLinear(page, bg, inside, 1.0 - inside)
    # paper tint and light: a gradient, a vignette, maybe a soft shadow
    tint = [rng.uniform(0.93, 1.0), rng.uniform(0.92, 0.99), rng.uniform(0.85, 0.97)]
    ly, lx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    lx, ly = lx * gs / fw, ly * gs / fh
    ang = rng.uniform(0, 2 * np.pi)
    light = 1.0 - rng.uniform(0.1, 0.4) * (((lx - 0.5) * np.cos(ang) + (ly - 0.5) * np.sin(ang)) + 0.5)
    light *= 1.0 - rng.uniform(0.1, 0.35) * ((lx - 0.5) ** 2 + (ly - 0.5) ** 2) / 0.5
    if rng.random() < 0.3:
        sx, sy, rad = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.2, 0.5)
        light *= 1.0 - rng.uniform(0.15, 0.35) * np.exp(-(((lx - sx) ** 2 + (ly - sy) ** 2) / rad ** 2))
    light *= rng.uniform(0.95, 1.08)
    light3 = cv2.merge([_smooth(light * t, (sw * gs, sh * gs))[:fh, :fw] for t in tint])
    tokens.append("lighting")
    f = cv2.multiply(img.astype(np.float32), light3)
    f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.6, 1.8))
    noise = rng.standard_normal((fh // 2 + 1, fw // 2 + 1, 3), dtype=np.float32) * np.float32(rng.uniform(2, 7))
    f = cv2.add(f, cv2.resize(noise, (fw, fh), interpolation=cv2.INTER_NEAREST))
    img = cv2.convertScaleAbs(cv2.max(f, 0.0))  # saturates at 255
    return img, tokens


# --- files ---------------------------------------------------------------------------


def save_tiff(pages: list[np.ndarray], path: Path, *, compression: str,
              dpi: tuple[float, float] | None, min_is_white: bool = True) -> None:
    """1-bit CCITT TIFF (``group3`` or ``group4``), one page or several; ``dpi=None``
    writes no resolution tags at all (some FAX software does that)."""
    ims = [Image.fromarray(p > 127) for p in pages]
    kw = {"compression": compression}
    if dpi is not None:
        kw["dpi"] = dpi
    if min_is_white:
        kw["tiffinfo"] = {262: 0}  # PhotometricInterpretation: min-is-white, as FAX software writes
    if len(ims) > 1:
        kw.update(save_all=True, append_images=ims[1:])
    ims[0].save(path, **kw)


def save_pdf(pages: list[Image.Image], path: Path, *, dpi: tuple[float, float], when=None,
             quality: int = 80) -> None:
    """Image-only PDF: 1-bit pages are stored as CCITT G4, grey/RGB pages as JPEG
    (``quality``). ``dpi`` sets the page size, so a 204x98 dpi page is A4 too."""
    stamp = time.gmtime(0) if when is None else when.timetuple()
    kw = dict(dpi=dpi, title=path.stem, creationDate=stamp, modDate=stamp)
    if pages[0].mode != "1":
        kw["quality"] = int(quality)
    if len(pages) > 1:
        kw.update(save_all=True, append_images=pages[1:])
    pages[0].save(path, "PDF", **kw)


def save_jpeg(img: np.ndarray, path: Path, *, quality: int, dpi: float | None,
              exif_orientation: int | None = None) -> None:
    im = Image.fromarray(img)
    kw = {"quality": int(quality)}
    if dpi:
        kw["dpi"] = (dpi, dpi)
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    im.save(path, "JPEG", **kw)
