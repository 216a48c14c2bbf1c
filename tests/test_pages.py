"""load_pages(): every input kind -> grey pages with square pixels, and the refusals."""

from __future__ import annotations

import resource
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from faxflow.ingest.pages import glyph_aspect, iter_pages, load_pages
from faxflow.ingest.source import identify
from faxflow.templates.errors import CorruptFile, EncryptedPdf, ImageTooLarge

FONT = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
WORDS = "株式会社山田製作所御中下記の通り注文いたします注文番号六角ボルト納期数量単価金額部品番号品名東京都大田区"


def text_page(width: int, height: int, dpi: float, *, marker: int = 0, lines: int = 12) -> np.ndarray:
    """A grey page with Japanese text lines, a small table and ``marker`` black squares (page id)."""
    im = Image.new("L", (width, height), 255)
    d = ImageDraw.Draw(im)
    mm = dpi / 25.4
    font = ImageFont.truetype(FONT, max(8, int(3.5 * mm)))
    y = 20 * mm
    for i in range(lines):
        start = (i * 7) % (len(WORDS) - 16)
        d.text((15 * mm, y), WORDS[start:start + 16] + f" AB-{1000 + i * 37}", font=font, fill=0)
        y += 7 * mm
    x0, x1 = 15 * mm, width - 15 * mm
    for r in range(4):
        d.line([(x0, y + r * 8 * mm), (x1, y + r * 8 * mm)], fill=0, width=max(1, int(0.3 * mm)))
    for c in (x0, (x0 + x1) / 2, x1):
        d.line([(c, y), (c, y + 24 * mm)], fill=0, width=max(1, int(0.3 * mm)))
    for k in range(marker):
        d.rectangle([5 * mm + k * 8 * mm, 5 * mm, 10 * mm + k * 8 * mm, 10 * mm], fill=0)
    return np.array(im)


def markers(page_image: np.ndarray, dpi: float) -> int:
    """Count the page-id squares drawn by text_page (top-left, 5 mm apart)."""
    mm = dpi / 25.4
    row = page_image[int(7.5 * mm), : int(80 * mm)] < 128
    return int(np.count_nonzero(np.diff(row.astype(np.int8)) == 1))


def standard_mode(fine: np.ndarray) -> Image.Image:
    """Halve the vertical resolution like a FAX in standard mode: mode "1"."""
    h, w = fine.shape
    half = cv2.resize(fine, (w, h // 2), interpolation=cv2.INTER_AREA)
    return Image.fromarray(np.where(half < 160, 0, 255).astype(np.uint8)).convert("1")


def load(path: Path, **kw):
    return load_pages(identify(path), **kw)


# -- TIFF FAX ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["group3", "group4"])
def test_multipage_fax_tiff_standard_mode_with_tags(tmp_path, compression):
    fine = [text_page(1728, 2290, 204, marker=k + 1) for k in range(3)]
    frames = [standard_mode(f) for f in fine]
    path = tmp_path / f"fax_{compression}.tif"
    frames[0].save(path, compression=compression, dpi=(204, 98), save_all=True, append_images=frames[1:])
    pages = load(path)
    assert [p.index for p in pages] == [0, 1, 2]
    for k, p in enumerate(pages):
        assert p.image.dtype == np.uint8 and p.image.ndim == 2
        assert p.dpi == pytest.approx(204)
        assert "fax-standard-mode" in p.notes
        h, w = p.image.shape
        assert w == 1728
        assert h == pytest.approx(1145 * 204 / 98, abs=2)  # square pixels again
        assert markers(p.image, p.dpi) == k + 1  # pages in order
        assert p.sha256 == identify(path).sha256 and p.source_name == path.name


def test_standard_mode_without_tags_fax_width(tmp_path):
    path = tmp_path / "notag.tif"
    standard_mode(text_page(1728, 2290, 204)).save(path, compression="group4")
    (p,) = load(path)
    assert p.image.shape == (2290, 1728)
    assert "fax-standard-mode" in p.notes and "aspect-guessed" in p.notes
    assert p.dpi == pytest.approx(204)


def test_standard_mode_without_tags_detected_from_characters(tmp_path):
    # Not a FAX scan-line width: the squashed characters decide.
    path = tmp_path / "notag.png"
    standard_mode(text_page(1654, 2339, 200)).convert("L").save(path)
    (p,) = load(path)
    assert "aspect-guessed" in p.notes
    assert p.image.shape[0] == 2 * (2339 // 2)
    assert p.dpi == pytest.approx(200, rel=0.02)  # estimated from A4 width


@pytest.mark.parametrize("bilevel", [True, False], ids=["bilevel", "grey"])
def test_landscape_page_is_not_mistaken_for_standard_mode(tmp_path, bilevel):
    # A4 landscape has height/width 0.71, like half of A4 portrait, but square characters
    # (and a grey page is never a FAX).
    path = tmp_path / "landscape.png"
    page = text_page(2339, 1654, 200, lines=8)
    if bilevel:
        page = np.where(page < 128, 0, 255).astype(np.uint8)
    Image.fromarray(page).save(path)
    (p,) = load(path)
    assert p.image.shape == (1654, 2339)
    assert "fax-standard-mode" not in p.notes
    assert p.dpi == pytest.approx(200, rel=0.02)


def test_glyph_aspect_separates_standard_from_fine():
    fine = text_page(1654, 2339, 200)
    squashed = np.array(standard_mode(fine).convert("L"))
    assert glyph_aspect(fine, 200) > 0.9
    assert glyph_aspect(squashed, 200) < 0.75


def test_fine_mode_tags_are_squared_up(tmp_path):
    path = tmp_path / "fine.tif"
    Image.fromarray(text_page(1728, 2200, 204)).convert("1").save(path, compression="group4", dpi=(204, 196))
    (p,) = load(path)
    assert p.image.shape[1] == 1728
    assert p.image.shape[0] == pytest.approx(2200 * 204 / 196, abs=2)
    assert "fax-standard-mode" not in p.notes


def test_resolution_tags_in_centimetres(tmp_path):
    path = tmp_path / "cm.tif"
    Image.fromarray(text_page(800, 1130, 96)).save(
        path, tiffinfo={282: 80.0, 283: 80.0, 296: 3})  # 80 dots/cm = 203.2 dpi
    (p,) = load(path)
    assert p.dpi == pytest.approx(203.2)


# -- PNG modes -------------------------------------------------------------------------------------
def _modes(page: np.ndarray):
    rgb = np.dstack([page, page, page])
    alpha = np.where(page < 128, 255, 0).astype(np.uint8)  # transparent paper
    yield "1", Image.fromarray(page).convert("1")
    yield "L", Image.fromarray(page)
    yield "P", Image.fromarray(rgb).convert("P")
    yield "RGB", Image.fromarray(rgb)
    yield "RGBA", Image.fromarray(np.dstack([rgb, alpha]))
    yield "LA", Image.fromarray(np.dstack([page, alpha]), "LA")
    yield "I;16", Image.fromarray(page.astype(np.uint16) * 257)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16"])
def test_png_modes_become_grey_ink_on_paper(tmp_path, mode):
    page = text_page(827, 1169, 100)
    im = dict(_modes(page))[mode]
    path = tmp_path / f"page_{mode.replace(';', '')}.png"
    im.save(path, dpi=(100, 100))
    with Image.open(path) as check:
        if mode == "I;16":
            assert check.mode.startswith("I")
    (p,) = load(path)
    assert p.image.dtype == np.uint8 and p.image.shape == page.shape
    assert p.dpi == pytest.approx(100, abs=0.1)
    ink, paper = page < 128, page > 200
    assert np.median(p.image[ink]) < 60, mode
    assert np.median(p.image[paper]) > 220, mode


# -- JPEG and EXIF ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation,stored", [(6, 1), (3, 2), (8, 3)], ids=["exif6", "exif3", "exif8"])
def test_jpeg_exif_orientation_applied(tmp_path, orientation, stored):
    upright = text_page(827, 1169, 100, marker=2)
    raw = np.ascontiguousarray(np.rot90(upright, stored))  # as the camera stored it
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    Image.fromarray(raw).save(path, exif=exif, quality=92, dpi=(72, 72))
    (p,) = load(path)
    assert p.image.shape == upright.shape
    assert np.mean(np.abs(p.image.astype(int) - upright)) < 6
    assert f"exif-orientation={orientation}" in p.notes
    assert any(n.startswith("dpi-estimated") for n in p.notes)  # 72 dpi is a placeholder
    assert p.dpi == pytest.approx(100, rel=0.02)


# -- PDF -----------------------------------------------------------------------------------------------------
def _pdf(path: Path, pages: list[np.ndarray], dpi: float) -> Path:
    ims = [Image.fromarray(p) for p in pages]
    ims[0].save(path, save_all=True, append_images=ims[1:], resolution=dpi)
    return path


def test_three_page_pdf(tmp_path):
    path = _pdf(tmp_path / "order.pdf", [text_page(827, 1169, 100, marker=k + 1) for k in range(3)], 100)
    pages = load(path, pdf_dpi=150)
    assert len(pages) == 3
    for k, p in enumerate(pages):
        assert p.index == k
        assert p.dpi == 150
        assert p.image.shape == pytest.approx((1754, 1241), abs=2)
        assert markers(p.image, p.dpi) == k + 1


def test_pdf_too_many_pages_refused_before_rendering(tmp_path):
    path = _pdf(tmp_path / "long.pdf", [text_page(200, 283, 24)] * 3, 24)
    with pytest.raises(ImageTooLarge) as ei:
        load(path, max_pages=2)
    assert "3" in ei.value.ja


def test_pdf_page_too_large_refused_before_rendering(tmp_path):
    path = _pdf(tmp_path / "a4.pdf", [text_page(827, 1169, 100)], 100)
    t0 = time.perf_counter()
    with pytest.raises(ImageTooLarge) as ei:  # 9924 x 14028 px at 1200 dpi
        iter_pages(identify(path), pdf_dpi=1200, max_pixels=50_000_000)
    assert time.perf_counter() - t0 < 2
    assert ei.value.page == 1 and ei.value.file == "a4.pdf"


def test_pdf_with_implausible_page_size_rendered_as_paper(tmp_path):
    # A scan embedded at "10 dpi": the page claims to be 83 x 117 inches.
    path = _pdf(tmp_path / "huge.pdf", [text_page(827, 1169, 100)], 10)
    (p,) = load(path, pdf_dpi=200)
    assert "pdf-page-size-implausible" in p.notes
    assert p.image.shape == pytest.approx((2339, 1654), abs=3)
    assert p.dpi == pytest.approx(200, rel=0.02)


def test_truncated_pdf_is_corrupt(tmp_path):
    good = _pdf(tmp_path / "good.pdf", [text_page(400, 560, 48)] * 3, 48).read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CorruptFile) as ei:
        load(path)
    assert "cut.pdf" in ei.value.ja and ei.value.file == "cut.pdf"


def test_garbage_pdf_is_corrupt(tmp_path):
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 200)
    with pytest.raises(CorruptFile):
        load(path)


def test_encrypted_pdf(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    plain = _pdf(tmp_path / "plain.pdf", [text_page(400, 560, 48)], 48)
    locked = pypdf.PdfWriter(clone_from=str(plain))
    locked.encrypt("secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    locked.write(path)
    with pytest.raises(EncryptedPdf) as ei:
        load(path)
    assert "パスワード" in ei.value.ja and "password" in ei.value.en
    # An owner password alone (printing/copy restrictions) still opens.
    owner_only = pypdf.PdfWriter(clone_from=str(plain))
    owner_only.encrypt("", "owner", algorithm="RC4-128")
    path2 = tmp_path / "restricted.pdf"
    owner_only.write(path2)
    assert len(load(path2, pdf_dpi=96)) == 1


# -- decompression bombs and damaged images ------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_png_bomb_header_refused_fast_with_low_memory(tmp_path):
    path = tmp_path / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)  # 2.5 Gpx grey
    idat = zlib.compress(b"\x00" * (50_001 * 64), 9)  # a few rows of zeros, tiny on disk
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(ImageTooLarge) as ei:
        load(path)
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100_000  # KiB
    assert ei.value.file == "bomb.png"


def test_image_over_max_pixels_checked_from_header(tmp_path):
    path = tmp_path / "big.tif"
    pages = [Image.new("1", (500, 700), 1), Image.new("1", (4000, 4000), 1)]
    pages[0].save(path, compression="group4", save_all=True, append_images=pages[1:])
    with pytest.raises(ImageTooLarge) as ei:
        next(iter_pages(identify(path), max_pixels=10_000_000))  # page 2 is refused up front
    assert ei.value.page == 2


def test_truncated_png_is_corrupt(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray((np.random.default_rng(0).random((800, 600)) * 255).astype(np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptFile):
        load(path)


def test_truncated_multipage_tiff_is_corrupt(tmp_path):
    path = tmp_path / "cut.tif"
    rng = np.random.default_rng(1)
    frames = [Image.fromarray((rng.random((600, 500)) > 0.5).astype(np.uint8) * 255).convert("1")
              for _ in range(3)]
    frames[0].save(path, compression="group4", save_all=True, append_images=frames[1:])
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(CorruptFile):
        load(path)
