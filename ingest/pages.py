"""load_pages(): SourceFile -> [Page], grey uint8 with square pixels, pages in order.

What each kind needs:

* PDF: page count and every page's size are read with ``pdfinfo`` *before* anything
  is rasterised, so a document with a huge page (or thousands of pages) is refused
  without touching memory. Pages are then rasterised one at a time with
  ``pdftoppm -gray``. A password-protected PDF -> ``EncryptedPdf``, a damaged one ->
  ``CorruptFile``.
* TIFF (multi-page, CCITT G3/G4, LZW, ...), PNG, JPEG: decoded with Pillow. Every
  frame's dimensions come from its header and are checked against ``max_pixels``
  before the frame is decoded (decompression bombs -> ``ImageTooLarge``).
* FAX standard mode (about 204x98 dpi) is resampled to square pixels. The resolution
  tags decide; without tags, a page whose height/width is about half of a paper
  size's, and whose characters look squashed (or whose width is a FAX scan line),
  is taken to be standard mode too.
* ``Page.dpi`` is the horizontal resolution after the aspect fix. When the file has
  no (believable) resolution, it is estimated from the paper size the page's
  proportions match (e.g. width px / 8.27 in for A4).

Notes recorded on the page: ``fax-standard-mode``, ``aspect-from-tags=204x98``,
``aspect-guessed``, ``dpi-estimated=A4``, ``exif-orientation=6``,
``pdf-dpi=NNN``, ``pdf-page-size-implausible``.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import subprocess
import warnings
from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from faxflow.templates.errors import CorruptFile, EncryptedPdf, EngineError, ImageTooLarge, UnsupportedFile
from faxflow.templates.types import Page, SourceFile

MAX_PAGES = 200

# (short side, long side) in inches.
PAPERS: dict[str, tuple[float, float]] = {
    "A4": (8.27, 11.69),
    "Letter": (8.5, 11.0),
    "B4": (10.12, 14.33),
    "A3": (11.69, 16.54),
    "Legal": (8.5, 14.0),
    "B5": (7.17, 10.12),
    "A5": (5.83, 8.27),
}
# FAX scan lines at 8 dots/mm (~204 dpi): 215 mm (A4/Letter), 255 mm (B4), 303 mm (A3).
FAX_WIDTHS = {1728: "A4", 2048: "B4", 2432: "A3"}
FAX_DPI = 204.0
# Height/width of a page sent in standard mode (half vertical resolution): half of the
# paper's ratio. A4 as faxed (297 x 215 mm) 0.69, Letter 0.65, B4 0.71, Legal 0.82.
_HALF_RATIO_RANGE = (0.58, 0.85)
# Standard-mode text has characters about half as tall as wide; normal text ~1.0.
_SQUASHED_GLYPHS = 0.85

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# 72 (EXIF/Mac default) and 96 (Windows) dpi are written by cameras and converters that
# do not know the resolution; a real A4 page at those resolutions gets the same value
# back from the paper-size estimate anyway.
_PLACEHOLDER_DPI = (72, 96)

# What Pillow raises on damaged files varies by format and version.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, TypeError, KeyError, IndexError,
                  ZeroDivisionError, struct.error)

_PDFINFO_TIMEOUT = 60
_PDFTOPPM_TIMEOUT = 180


# -- public API -----------------------------------------------------------------------------
def load_pages(src: SourceFile, *, pdf_dpi: int = 300, max_pixels: int = 120_000_000,
               max_pages: int = MAX_PAGES) -> list[Page]:
    """Every page of ``src`` as a grey uint8 image with square pixels, in order."""
    return list(iter_pages(src, pdf_dpi=pdf_dpi, max_pixels=max_pixels, max_pages=max_pages))


def iter_pages(src: SourceFile, *, pdf_dpi: int = 300, max_pixels: int = 120_000_000,
               max_pages: int = MAX_PAGES) -> Iterator[Page]:
    """Like :func:`load_pages`, one page at a time (a long PDF is never all in memory).

    The whole document is checked (page count, every page's size) before the first
    page is produced, so a bad document fails before any work is done on it.
    """
    if src.kind == "pdf":
        return _pdf_pages(src, pdf_dpi, max_pixels, max_pages)
    if src.kind in ("tiff", "png", "jpeg"):
        return _image_pages(src, max_pixels, max_pages)
    raise UnsupportedFile(f"unsupported kind {src.kind!r}",
                          f"「{src.name}」は読み込めない形式です（{src.kind}）。", file=src.name)


# -- raster images ------------------------------------------------------------------------------
def _image_pages(src: SourceFile, max_pixels: int, max_pages: int) -> Iterator[Page]:
    im = _open_image(src, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data" and the like: errors decide
            n = _frame_count(im, src)
            if n > max_pages:
                raise _too_many_pages(src, n, max_pages)
            # Check every frame's header before decoding anything.
            for i in range(n):
                _seek(im, i, src)
                _check_pixels(src, i, im.size[0], im.size[1], max_pixels)
    except BaseException:
        im.close()
        raise
    return _decode_frames(src, im, n, max_pixels)


def _decode_frames(src: SourceFile, im: Image.Image, n: int, max_pixels: int) -> Iterator[Page]:
    with im:
        for i in range(n):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _seek(im, i, src)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # bomb warnings (checked above), corrupt EXIF
                    im.load()
                    grey = to_grey(im)
                    orientation = _exif_orientation(im)
            except _DECODE_ERRORS as exc:
                raise _corrupt(src, f"page {i + 1} cannot be decoded ({exc})", page=i + 1) from exc
            xdpi, ydpi, ratio = image_resolution(im)
            yield _make_page(src, i, grey, xdpi, ydpi, ratio, orientation, max_pixels)


def _make_page(src: SourceFile, index: int, grey: np.ndarray, xdpi: float | None, ydpi: float | None,
               ratio: float | None, orientation: int, max_pixels: int) -> Page:
    notes: list[str] = []
    grey, dpi, aspect_notes = fix_aspect(grey, xdpi, ydpi, ratio)
    notes += aspect_notes
    h, w = grey.shape
    _check_pixels(src, index, w, h, max_pixels)
    if orientation in _TRANSPOSE:
        grey = np.asarray(Image.fromarray(grey).transpose(_TRANSPOSE[orientation]))
        notes.append(f"exif-orientation={orientation}")
    h, w = grey.shape
    if dpi is None or not plausible_dpi(dpi, w, h):
        dpi, paper = estimate_dpi(w, h)
        notes.append(f"dpi-estimated={paper}")
    return Page(sha256=src.sha256, source_name=src.name, index=index, image=np.ascontiguousarray(grey),
                dpi=float(dpi), notes=tuple(notes))


def _open_image(src: SourceFile, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bomb warnings: the size is checked per frame
            return Image.open(src.path)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(
            f"the image is far too large to be a page ({exc}); refused to protect memory",
            f"「{src.name}」の画像サイズが大きすぎるため読み込みを中止しました（用紙1枚の画像として異常な大きさ）。"
            "解像度を 200〜300dpi にして保存し直してください。",
            file=src.name,
        ) from exc
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise _corrupt(src, f"the {src.kind.upper()} image cannot be read ({exc})") from exc


def _frame_count(im: Image.Image, src: SourceFile) -> int:
    try:
        return int(getattr(im, "n_frames", 1))
    except _DECODE_ERRORS as exc:
        raise _corrupt(src, f"the page list of the file is damaged ({exc})") from exc


def _seek(im: Image.Image, i: int, src: SourceFile) -> None:
    try:
        im.seek(i)
    except _DECODE_ERRORS as exc:
        raise _corrupt(src, f"page {i + 1} cannot be found in the file ({exc})", page=i + 1) from exc


def to_grey(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> uint8 grey (0 ink, 255 paper); transparency composited on white."""
    mode = im.mode
    if mode == "L":
        return np.array(im)
    if mode == "1":
        return np.array(im.convert("L"))
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return np.array(white.convert("L"))
    if mode.startswith("I") or mode == "F":
        a = np.asarray(im).astype(np.float32)
        lo = min(float(a.min()), 0.0) if a.size else 0.0
        hi = float(a.max()) if a.size else 255.0
        if mode == "F" and hi <= 1.0:
            scale = 255.0
        elif hi - lo <= 255:
            scale = 1.0
        else:  # full range of the bit depth actually used (12-bit scanners, 16-bit PNG)
            bits = math.ceil(math.log2(hi - lo + 1))
            scale = 255.0 / (2**bits - 1)
        return np.clip((a - lo) * scale + 0.5, 0, 255).astype(np.uint8)
    return np.array(im.convert("L"))


def image_resolution(im: Image.Image) -> tuple[float | None, float | None, float | None]:
    """(x dpi, y dpi, y/x ratio) from the file's tags; None where unknown.

    A unitless resolution (TIFF unit 1, JFIF unit 0) still gives the ratio.
    """
    dpi = im.info.get("dpi")
    x = y = None
    if dpi and len(dpi) == 2:
        try:
            x, y = float(dpi[0]), float(dpi[1])
        except (TypeError, ValueError):
            x = y = None
    if x and y and x >= 20 and y >= 20:
        if round(x) == round(y) and round(x) in _PLACEHOLDER_DPI:
            return None, None, None  # camera/Windows defaults, not a measurement
        return round(x, 1), round(y, 1), y / x
    for key in ("resolution", "jfif_density", "aspect"):
        res = im.info.get(key)
        if res and len(res) == 2:
            try:
                rx, ry = float(res[0]), float(res[1])
            except (TypeError, ValueError):
                continue
            if rx > 0 and ry > 0 and not (rx == ry == 1 and key == "resolution"):
                return None, None, ry / rx
            if rx > 0 and ry > 0:
                return None, None, None
    return None, None, None


def _exif_orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in _TRANSPOSE else 1
    except Exception:  # a broken EXIF block must not lose the page
        return 1


# -- aspect and resolution ------------------------------------------------------------------------
def fix_aspect(grey: np.ndarray, xdpi: float | None, ydpi: float | None,
               ratio: float | None) -> tuple[np.ndarray, float | None, list[str]]:
    """Resample non-square pixels to square ones. Returns (image, horizontal dpi, notes).

    With tags, the lower-resolution axis is resampled up to the higher one (nothing is
    lost). Without tags, :func:`looks_half_height` decides whether the page is FAX
    standard mode.
    """
    h, w = grey.shape
    notes: list[str] = []
    if ratio is None and xdpi and ydpi:
        ratio = ydpi / xdpi
    if ratio is not None and abs(ratio - 1.0) > 0.01 and 0.2 <= ratio <= 5.0:
        if ratio < 1.0:
            out = cv2.resize(grey, (w, max(1, round(h / ratio))), interpolation=cv2.INTER_LINEAR)
            dpi = xdpi
        else:
            out = cv2.resize(grey, (max(1, round(w * ratio)), h), interpolation=cv2.INTER_LINEAR)
            dpi = ydpi
        if 0.4 <= ratio <= 0.6:
            notes.append("fax-standard-mode")
        if xdpi and ydpi:
            notes.append(f"aspect-from-tags={xdpi:g}x{ydpi:g}")
        else:
            notes.append(f"aspect-from-tags=1:{ratio:.3g}")
        return out, dpi, notes
    if ratio is None and looks_half_height(grey):
        out = cv2.resize(grey, (w, 2 * h), interpolation=cv2.INTER_LINEAR)
        notes += ["fax-standard-mode", "aspect-guessed"]
        dpi = FAX_DPI if _fax_width(w) else None
        return out, dpi, notes
    return grey, (xdpi if xdpi and ydpi else None), notes


def looks_half_height(grey: np.ndarray) -> bool:
    """True when an untagged page looks like FAX standard mode (half vertical resolution).

    Only black-and-white pages qualify (a FAX; photos and grey scans never come in
    standard mode). The page's height/width must be about half of a paper size's; then
    the characters decide (standard-mode characters are about half as tall as wide). A page too empty
    to tell is taken as standard mode only when its width is a FAX scan line (1728,
    2048 or 2432 px). A landscape page (A4 landscape is 0.71, like half of A4 portrait)
    keeps its square characters and is left alone.
    """
    h, w = grey.shape
    if w < 200 or h < 100:
        return False
    if not is_bilevel(grey):
        return False  # a FAX is black and white; a photo or grey scan never is standard mode
    r = h / w
    if not (_HALF_RATIO_RANGE[0] <= r <= _HALF_RATIO_RANGE[1]):
        return False
    fax_width = _fax_width(w)
    g = glyph_aspect(grey, dpi=(FAX_DPI if fax_width else w / PAPERS["A4"][0]))
    if g is None:
        return fax_width
    return g < (0.92 if fax_width else _SQUASHED_GLYPHS)


def is_bilevel(grey: np.ndarray) -> bool:
    """Black and white only (a FAX), allowing a little grey from resampling/compression."""
    sample = grey[::5, ::5]
    return np.count_nonzero((sample > 40) & (sample < 215)) <= 0.03 * sample.size


def glyph_aspect(grey: np.ndarray, dpi: float) -> float | None:
    """Median height/width of character-sized blobs (after joining a character's parts).

    About 1.0 for Japanese print with square pixels, about 0.5-0.8 in FAX standard mode.
    None when the page has too few characters to tell.
    """
    small = grey
    scale = 1.0
    if dpi > 220:  # work near 200 dpi: fast, and the same thresholds for every input
        scale = 200.0 / dpi
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    mm = dpi * scale / 25.4
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    k = max(1, int(round(0.4 * mm)))
    ink = cv2.dilate(ink, np.ones((k, k), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    w, h = stats[1:, 2], stats[1:, 3]
    keep = (w >= 1.5 * mm) & (w <= 8 * mm) & (h >= 0.5 * mm) & (h <= 8 * mm)
    if int(keep.sum()) < 20:
        return None
    return float(np.median(h[keep] / w[keep]))


def _fax_width(w: int) -> bool:
    return any(abs(w - fw) <= 8 for fw in FAX_WIDTHS)


def plausible_dpi(dpi: float, w: int, h: int) -> bool:
    """Does ``dpi`` make the page a believable sheet of paper (up to A3/B4, at least ~5 cm)?

    Rejects the 72/96 dpi placeholders cameras and converters write, and 1-dpi junk.
    """
    if not dpi or dpi < 50 or dpi > 2400:
        return False
    short, long_ = sorted((w / dpi, h / dpi))
    return 2.0 <= short <= 17.5 and long_ <= 24.0


def estimate_dpi(w: int, h: int) -> tuple[float, str]:
    """(dpi, paper name) from the page's proportions; A4 when nothing fits."""
    if _fax_width(w):
        return FAX_DPI, "fax-" + FAX_WIDTHS[min(FAX_WIDTHS, key=lambda fw: abs(fw - w))]
    short_px = min(w, h)
    paper = match_paper(w, h)
    return round(short_px / PAPERS[paper][0], 1), paper


def match_paper(w: float, h: float, tolerance: float = 0.04) -> str:
    """The paper size whose long/short ratio is closest to the page's; A4 when none is close."""
    short, long_ = sorted((w, h))
    r = long_ / max(short, 1e-9)
    best, best_err = "A4", 1.0
    for name, (s, l) in PAPERS.items():
        err = abs(r - l / s) / (l / s)
        if err < best_err:
            best, best_err = name, err
    return best if best_err <= tolerance else "A4"


# -- PDF ----------------------------------------------------------------------------------------------
_PAGES_RE = re.compile(r"^Pages:\s+(\d+)", re.M)
_SIZE_RE = re.compile(r"^Page\s+(\d+)\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", re.M)
_ROT_RE = re.compile(r"^Page\s+(\d+)\s+rot:\s+(\d+)", re.M)


def _pdf_pages(src: SourceFile, pdf_dpi: int, max_pixels: int, max_pages: int) -> Iterator[Page]:
    n, sizes = pdf_page_sizes(src, max_pages)
    plans = []
    for i in range(n):
        w_in, h_in = sizes[i][0] / 72.0, sizes[i][1] / 72.0
        short, long_ = sorted((w_in, h_in))
        notes = [f"pdf-dpi={pdf_dpi}"]
        dpi = float(pdf_dpi)
        believable = short <= 17.5 and long_ <= 24.0
        if not believable:
            # Typically a scan embedded at "72 dpi": render it as the paper its shape matches.
            dpi = pdf_dpi * PAPERS[match_paper(w_in, h_in)][0] / short
            notes = [f"pdf-dpi={dpi:.1f}", "pdf-page-size-implausible"]
        _check_pixels(src, i, round(w_in * dpi), round(h_in * dpi), max_pixels,
                      hint_ja="PDF の用紙サイズが大きすぎます。", hint_en="the PDF page is too large")
        plans.append((dpi, believable, notes))
    return _render_pdf(src, plans, pdf_dpi, max_pixels)


def _render_pdf(src: SourceFile, plans, pdf_dpi: int, max_pixels: int) -> Iterator[Page]:
    for i, (dpi, believable, notes) in enumerate(plans):
        grey = _pdftoppm(src, i + 1, dpi)
        h, w = grey.shape
        _check_pixels(src, i, w, h, max_pixels)
        notes = list(notes)
        page_dpi = float(dpi)
        if not believable:  # the size says nothing: treat it like an untagged image
            grey, _, aspect_notes = fix_aspect(grey, None, None, None)
            notes += aspect_notes
            h, w = grey.shape
            page_dpi, paper = estimate_dpi(w, h)
            notes.append(f"dpi-estimated={paper}")
        yield Page(sha256=src.sha256, source_name=src.name, index=i, image=grey, dpi=float(page_dpi),
                   notes=tuple(notes))


def pdf_page_sizes(src: SourceFile, max_pages: int = MAX_PAGES) -> tuple[int, list[tuple[float, float]]]:
    """(page count, [(width pt, height pt)] as displayed, i.e. after /Rotate), via pdfinfo."""
    out = _run(src, ["pdfinfo", "-f", "1", "-l", str(max_pages), str(src.path)], _PDFINFO_TIMEOUT)
    m = _PAGES_RE.search(out)
    if not m:
        raise _corrupt(src, "the PDF has no readable page list")
    n = int(m.group(1))
    if n == 0:
        raise _corrupt(src, "the PDF has no pages")
    if n > max_pages:
        raise _too_many_pages(src, n, max_pages)
    sizes = {int(p): (float(w), float(h)) for p, w, h in _SIZE_RE.findall(out)}
    rots = {int(p): int(r) for p, r in _ROT_RE.findall(out)}
    result = []
    for p in range(1, n + 1):
        if p not in sizes:
            raise _corrupt(src, f"the size of page {p} cannot be read", page=p)
        w, h = sizes[p]
        if w <= 0 or h <= 0:
            raise _corrupt(src, f"page {p} has no area", page=p)
        if rots.get(p, 0) % 180 == 90:
            w, h = h, w
        result.append((w, h))
    return n, result


def _pdftoppm(src: SourceFile, page_no: int, dpi: float) -> np.ndarray:
    data = _run(src, ["pdftoppm", "-gray", "-r", f"{dpi:.3f}", "-f", str(page_no), "-l", str(page_no),
                      str(src.path)], _PDFTOPPM_TIMEOUT, binary=True, page=page_no)
    if not data:
        raise _corrupt(src, f"page {page_no} could not be rendered", page=page_no)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return to_grey(im)
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise _corrupt(src, f"page {page_no} could not be rendered ({exc})", page=page_no) from exc


def _run(src: SourceFile, args: list[str], timeout: float, *, binary: bool = False, page: int | None = None):
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout, env=env)
    except FileNotFoundError as exc:
        raise EngineError(
            f"{args[0]} (poppler-utils) is not installed; run 'make setup' or 'sudo apt-get install poppler-utils'",
            f"PDF を読むためのプログラム {args[0]}（poppler-utils）がありません。IT担当者に 'make setup' の実行を依頼してください。",
            file=src.name,
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise _corrupt(src, f"{args[0]} took more than {timeout:.0f} s (a damaged or pathological PDF)",
                       page=page) from exc
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        low = stderr.lower()
        if "incorrect password" in low or "password" in low or "encrypt" in low:
            raise EncryptedPdf(
                "the PDF is password-protected; save it again without a password (or print it to PDF)",
                f"「{src.name}」はパスワード付きの PDF のため開けません。パスワードを外して保存し直すか、"
                "送信元にパスワードなしで送ってもらってください。",
                file=src.name, page=page,
            ) from RuntimeError(stderr.strip())
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        detail = lines[-1][:200] if lines else f"exit status {proc.returncode}"
        raise _corrupt(src, f"{args[0]} cannot read it ({detail})", page=page) from RuntimeError(stderr.strip())
    return proc.stdout if binary else proc.stdout.decode("utf-8", "replace")


# -- errors -----------------------------------------------------------------------------------------------
def _check_pixels(src: SourceFile, index: int, w: int, h: int, max_pixels: int, *,
                  hint_ja: str = "", hint_en: str = "") -> None:
    if w <= 0 or h <= 0:
        raise _corrupt(src, f"page {index + 1} has no pixels", page=index + 1)
    if w * h > max_pixels:
        en = (f"page {index + 1} would be {w} x {h} pixels ({w * h / 1e6:.0f} Mpx, the limit is "
              f"{max_pixels / 1e6:.0f} Mpx); refused to protect memory")
        if hint_en:
            en = f"{hint_en}: {en}"
        raise ImageTooLarge(
            en,
            f"「{src.name}」の {index + 1} ページ目は画像が大きすぎます（{w}×{h} 画素）。{hint_ja}"
            "解像度を 200〜300dpi にして保存し直してください。",
            file=src.name, page=index + 1,
        )


def _too_many_pages(src: SourceFile, n: int, max_pages: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"the document has {n} pages, more than the limit of {max_pages}; split it into smaller files",
        f"「{src.name}」は {n} ページあり、上限（{max_pages} ページ）を超えています。ファイルを分けて入れ直してください。",
        file=src.name,
    )


def _corrupt(src: SourceFile, en: str, page: int | None = None) -> CorruptFile:
    kind = src.kind.upper()
    return CorruptFile(
        f"{en}; the file is damaged or incomplete - ask the sender to send it again",
        f"「{src.name}」（{kind}）が壊れているか途中までしかないため読み込めません。"
        "送信元に再送を依頼するか、もう一度スキャンして保存してください。",
        file=src.name, page=page,
    )
