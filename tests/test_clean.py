"""clean_page(): binarize, streaks, specks, FAX header, orientation, deskew."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from faxflow.ocr import clean as C
from faxflow.ocr.clean import clean_page, estimate_skew, orientation_candidates, rotate_quarter
from faxflow.templates.types import Page

FONT = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
DPI = 200
MM = DPI / 25.4
W, H = 1654, 2339  # A4 at 200 dpi
WORDS = ["株式会社", "山田製作所", "御中", "下記の通り注文いたします", "注文番号", "六角ボルト",
         "納期", "数量", "単価", "金額", "部品番号", "品名", "東京都大田区", "平座金", "合計"]
TABLE = dict(x0=int(15 * MM), x1=W - int(15 * MM), y0=int(80 * MM), row=int(9 * MM), rows=10)
COLS = [0, 30, 90, 115, 140]  # mm from the table's left edge (plus the right edge)


def _font(size_mm: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, int(size_mm * MM))


def form(*, title: str | None = "注文書", title_y_mm: float = 15, header: str | None = None,
         table: bool = True, seed: int = 0, ink: int = 0) -> np.ndarray:
    """An A4 order sheet at 200 dpi: title, text lines, a ruled table, footer lines."""
    rng = np.random.default_rng(seed)
    im = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(im)
    if header:
        d.text((4 * MM, 1.5 * MM), header, font=_font(2.5), fill=ink)
    if title:
        d.text((W / 2 - 14 * MM, title_y_mm * MM), title, font=_font(9), fill=ink)
    f = _font(3.5)
    y = 35 * MM
    for _ in range(5):
        d.text((20 * MM, y), "".join(rng.choice(WORDS, 3)), font=f, fill=ink)
        d.text((115 * MM, y), "".join(rng.choice(WORDS, 2)), font=f, fill=ink)
        y += 7 * MM
    if table:
        t = TABLE
        xs = [t["x0"] + int(c * MM) for c in COLS] + [t["x1"]]
        lw = max(1, int(0.3 * MM))
        for r in range(t["rows"] + 2):
            yy = t["y0"] + r * t["row"]
            d.line([(t["x0"], yy), (t["x1"], yy)], fill=ink, width=lw)
        for x in xs:
            d.line([(x, t["y0"]), (x, t["y0"] + (t["rows"] + 1) * t["row"])], fill=ink, width=lw)
        for j, head in enumerate(["部品番号", "品名", "数量", "単価", "納期"]):
            d.text((xs[j] + 2 * MM, t["y0"] + 2 * MM), head, font=f, fill=ink)
        for r in range(1, t["rows"] + 1, 2):
            yy = t["y0"] + r * t["row"] + 2 * MM
            d.text((xs[0] + 2 * MM, yy), f"AB-{rng.integers(1000, 9999)}", font=f, fill=ink)
            d.text((xs[1] + 2 * MM, yy), str(rng.choice(WORDS)), font=f, fill=ink)
            d.text((xs[2] + 2 * MM, yy), str(rng.integers(1, 500)), font=f, fill=ink)
    y = 200 * MM
    for _ in range(4):
        d.text((20 * MM, y), "".join(rng.choice(WORDS, 4)), font=f, fill=ink)
        y += 7 * MM
    return np.array(im)


def page_of(img: np.ndarray, *, dpi: float = DPI, index: int = 0, notes=("loaded",)) -> Page:
    return Page(sha256="ab" * 32, source_name="fax.tif", index=index, image=img, dpi=dpi, notes=notes)


def turned(img: np.ndarray, k: int) -> np.ndarray:
    """Content turned k quarter turns counter-clockwise (the fix is k*90 clockwise)."""
    return np.ascontiguousarray(np.rot90(img, k))


def skewed(img: np.ndarray, angle: float) -> np.ndarray:
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)


def note_value(page: Page, key: str) -> str | None:
    for n in page.notes:
        if n.startswith(key + "="):
            return n.split("=", 1)[1]
    return None


def ink_of(img: np.ndarray) -> np.ndarray:
    return img < 128


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b)))


def tesseract_available() -> bool:
    return C.find_tessdata(None, "jpn") is not None


needs_tesseract = pytest.mark.skipif(not tesseract_available(), reason="Tesseract jpn data not installed")


# -- contract -------------------------------------------------------------------------------------
def test_output_is_binary_and_keeps_provenance(tmp_path):
    src = page_of(form(), index=2)
    out = clean_page(src, debug_dir=tmp_path / "work", use_tesseract=False)
    assert out is not src and out.image is not src.image
    assert out.image.dtype == np.uint8 and out.image.shape == src.image.shape
    assert set(np.unique(out.image)) <= {0, 255}
    assert (out.sha256, out.source_name, out.index, out.dpi) == (src.sha256, src.source_name, 2, DPI)
    assert out.notes[0] == "loaded"  # loading notes come first
    written = tmp_path / "work" / "p003_clean.png"
    assert written.exists()
    assert np.array_equal(cv2.imread(str(written), cv2.IMREAD_GRAYSCALE), out.image)


def test_blank_and_tiny_pages_do_not_fail():
    out = clean_page(page_of(np.full((H, W), 255, np.uint8)))
    assert not ink_of(out.image).any()
    assert "orientation=unknown(no-text)" in out.notes
    tiny = clean_page(page_of(np.zeros((5, 7), np.uint8), dpi=72))
    assert tiny.image.shape == (5, 7)


# -- deskew ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("angle", [1.3, -2.7, 4.4, -0.6], ids=lambda a: f"skew{a:+}")
def test_skew_of_known_angle_recovered(angle):
    out = clean_page(page_of(skewed(form(seed=1), angle)), use_tesseract=False)
    applied = float(note_value(out, "deskew"))
    assert applied == pytest.approx(-angle, abs=0.2)
    residual, _ = estimate_skew(np.where(out.image < 128, 255, 0).astype(np.uint8), DPI)
    assert abs(residual) < 0.15


def test_skew_from_text_lines_alone():
    angle = -3.1
    est, _ = estimate_skew(np.where(skewed(form(table=False), angle) < 128, 255, 0).astype(np.uint8), DPI)
    assert est == pytest.approx(angle, abs=0.2)


def test_straight_page_is_not_rotated():
    out = clean_page(page_of(form()), use_tesseract=False)
    assert note_value(out, "deskew") is None
    assert not any(n.startswith("rotated-") for n in out.notes)


# -- orientation ------------------------------------------------------------------------------------
@needs_tesseract
@pytest.mark.tesseract
@pytest.mark.parametrize("k", [1, 2, 3], ids=["90", "180", "270"])
def test_turned_page_comes_out_upright(k):
    upright = form(seed=3)
    out = clean_page(page_of(turned(upright, k)))
    assert f"rotated-{k * 90}" in out.notes
    assert iou(ink_of(out.image), ink_of(upright)) > 0.6
    assert orientation_candidates(out)[0] == 0
    assert float(note_value(out, "orientation-confidence")) > 0.5


@needs_tesseract
@pytest.mark.tesseract
def test_upright_page_stays():
    out = clean_page(page_of(form(seed=4)))
    assert not any(n.startswith("rotated-") for n in out.notes)
    assert orientation_candidates(out)[:2] == [0, 180]


def test_text_direction_without_tesseract():
    # The layout alone tells lines from columns: a quarter-turned page gets 90 or 270.
    for k in (1, 3):
        est = C.estimate_orientation(np.where(turned(form(seed=5), k) < 128, 255, 0).astype(np.uint8),
                                     DPI, use_tesseract=False)
        assert est.turn in (90, 270)
        assert k * 90 in est.candidates[:2]


def test_orientation_candidates_of_a_raw_page():
    cands = orientation_candidates(page_of(turned(form(seed=6), 2)), use_tesseract=False)
    assert sorted(cands) == [0, 90, 180, 270]
    assert set(cands[:2]) == {0, 180}


def test_rotate_quarter_is_clockwise():
    a = np.array([[1, 2], [3, 4]])
    assert rotate_quarter(a, 90).tolist() == [[3, 1], [4, 2]]
    assert rotate_quarter(a, 0) is a
    assert rotate_quarter(rotate_quarter(a, 90), 270).tolist() == a.tolist()


# -- specks, streaks, FAX header ----------------------------------------------------------------------
def test_speckle_removed_text_and_points_kept():
    base = form(seed=7)
    img = Image.fromarray(base)
    ImageDraw.Draw(img).text((120 * MM, 230 * MM), "単価 3.5 円 12:30", font=_font(3.0), fill=0)
    clean_ref = np.array(img)
    noisy = clean_ref.copy()
    rng = np.random.default_rng(0)
    placed = 0
    while placed < 400:
        y, x = int(rng.integers(0, H - 3)), int(rng.integers(0, W - 3))
        s = int(rng.choice([1, 1, 2, 2, 3]))
        if (clean_ref[max(0, y - 20): y + 23, max(0, x - 20): x + 23] < 128).any():
            continue  # specks in empty space only: the test knows where they are
        noisy[y:y + s, x:x + s] = 0
        placed += 1
    out = clean_page(page_of(noisy), detect_orientation=False)
    assert int(note_value(out, "specks-removed")) >= 390
    ref = clean_page(page_of(clean_ref), detect_orientation=False)
    assert note_value(ref, "specks-removed") is None  # nothing of the text taken for a speck
    got, want = ink_of(out.image), ink_of(ref.image)
    assert np.count_nonzero(got & ~want) < 20  # (almost) no speck left
    assert np.count_nonzero(want & ~got) < 0.002 * np.count_nonzero(want)  # text untouched
    # the decimal point and the colon survive
    region = (slice(int(228 * MM), int(236 * MM)), slice(int(118 * MM), int(175 * MM)))
    assert np.array_equal(got[region], want[region])


def _grid_columns() -> list[int]:
    t = TABLE
    return [t["x0"] + int(c * MM) for c in COLS] + [t["x1"]]


def test_streaks_removed_table_grid_kept():
    base = form(seed=8)
    img = base.copy()
    x_streak = 700  # crosses the table, between two column rules
    img[:, x_streak:x_streak + 2] = 0  # dirty glass: top to bottom
    img[:int(H * 0.7), 1400] = 0  # a streak from the top edge that ends on the page
    y_streak = int(150 * MM)
    img[y_streak, :] = 0  # a transmission error: a full black scan line
    out = clean_page(page_of(img), detect_orientation=False)
    assert note_value(out, "streaks-removed") == "3"
    got = ink_of(out.image)
    # streak columns empty except where strokes cross them
    assert np.count_nonzero(got[:, x_streak:x_streak + 2]) < 0.08 * H
    assert np.count_nonzero(got[:, 1400]) < 0.08 * H
    assert np.count_nonzero(got[y_streak - 1:y_streak + 2, :]) < 0.1 * W
    # the form: every column rule and row rule of the table is still there
    t = TABLE
    y_top, y_bot = t["y0"], t["y0"] + (t["rows"] + 1) * t["row"]
    for x in _grid_columns():
        band = got[y_top:y_bot, max(0, x - 3): x + 4].any(axis=1)
        assert band.mean() > 0.97, x
    for r in range(t["rows"] + 2):
        yy = t["y0"] + r * t["row"]
        band = got[yy - 3: yy + 4, t["x0"]: t["x1"]].any(axis=0)
        assert band.mean() > 0.97, r
    # and the text is intact (as clean_page leaves it without streaks: thin print is
    # made a pixel bolder, see test_clean_fax.py)
    want = ink_of(clean_page(page_of(base), detect_orientation=False).image)
    assert iou(got, want) > 0.97


def test_frame_reaching_near_the_edges_is_not_a_streak():
    # A form frame drawn 2 mm from the edges: long lines near the edges that end in corners.
    img = form(seed=9)
    m = int(2 * MM)
    cv2.rectangle(img, (m, m), (W - m, H - m), 0, 2)
    out = clean_page(page_of(img), detect_orientation=False)
    assert note_value(out, "streaks-removed") is None
    got = ink_of(out.image)
    assert got[H // 2, m - 1: m + 3].any() and got[m - 1: m + 3, W // 2].any()


HEADER = "2026/11/20 10:32  FROM:山田製作所  FAX 03-1234-5678      P.001/003"


def test_fax_header_removed_title_kept():
    out = clean_page(page_of(form(seed=10, header=HEADER)), detect_orientation=False)
    assert "fax-header-removed" in out.notes
    got = ink_of(out.image)
    assert not got[: int(5 * MM)].any()  # the header band is white
    without = clean_page(page_of(form(seed=10)), detect_orientation=False)
    assert "fax-header-removed" not in without.notes
    title = (slice(int(14 * MM), int(26 * MM)), slice(W // 2 - int(16 * MM), W // 2 + int(16 * MM)))
    assert ink_of(without.image)[title].any()
    assert iou(got[title], ink_of(without.image)[title]) > 0.97  # the title is intact
    assert iou(got, ink_of(without.image)) > 0.97  # and so is the rest


def test_title_near_the_top_is_not_a_header():
    img = form(seed=11, title="発注書", title_y_mm=3)  # big title 3 mm from the edge
    out = clean_page(page_of(img), detect_orientation=False)
    assert "fax-header-removed" not in out.notes
    assert ink_of(out.image)[: int(12 * MM)].any()


def test_small_text_touching_the_form_is_not_a_header():
    # Small print near the top, but with no white gap before the form's ruling below.
    img = Image.fromarray(form(seed=12))
    d = ImageDraw.Draw(img)
    d.text((4 * MM, 1.5 * MM), HEADER, font=_font(2.5), fill=0)
    d.rectangle([6 * MM, 4.6 * MM, W - 6 * MM, 5.0 * MM], fill=0)  # a rule right under it
    out = clean_page(page_of(np.array(img)), detect_orientation=False)
    assert "fax-header-removed" not in out.notes


# -- binarization -----------------------------------------------------------------------------------
def test_dithered_text_becomes_strokes():
    solid = form(seed=13, table=False)
    grey = np.where(solid < 128, 110, 255).astype(np.uint8)  # grey print, then a FAX in photo mode
    dithered = np.asarray(Image.fromarray(grey).convert("1"), np.uint8) * 255
    out = clean_page(page_of(dithered), detect_orientation=False)
    assert "dithered" in out.notes
    got = ink_of(out.image)
    assert iou(got, ink_of(solid)) > 0.55
    # strokes, not dust: about as many blobs as the clean rendering has
    n_got = cv2.connectedComponents(got.astype(np.uint8))[0]
    n_want = cv2.connectedComponents(ink_of(solid).astype(np.uint8))[0]
    assert n_got < 1.5 * n_want


def test_clean_scan_is_not_taken_for_dithered():
    out = clean_page(page_of(form(seed=14, header=HEADER)), detect_orientation=False)
    assert "dithered" not in out.notes


def test_uneven_light_of_a_phone_photo():
    base = form(seed=15).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    light = 1.0 - 0.55 * (xx / W) * (yy / H) - 0.15 * (yy / H)  # dark lower-right corner
    photo = (40 + (base - 40) * 0.85) * light
    photo = cv2.GaussianBlur(photo, (0, 0), 0.8)
    photo += np.random.default_rng(1).normal(0, 4, photo.shape)
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    out = clean_page(page_of(photo), detect_orientation=False)
    got, want = ink_of(out.image), ink_of(form(seed=15))
    assert np.count_nonzero(got & want) > 0.97 * np.count_nonzero(want)  # all the print is there
    assert iou(got, want) > 0.72  # ... a little bolder at most
    corner = got[int(H * 0.8):, int(W * 0.8):]
    assert corner.mean() < 0.05  # the shadowed corner is paper, not a black blob


def test_low_resolution_grey_page_is_binarized_at_200_dpi():
    """A 120-dpi grey scan is scaled up before thresholding (the reading gain is
    measured with ``faxflow eval``, see ocr.clean.upsample_low_res): the print comes out
    at 200 dpi, where it was, and more of it than thresholding at 120 dpi."""
    want = form(seed=17)
    small = cv2.resize(cv2.GaussianBlur(want, (0, 0), 1.0), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    small = np.clip(small.astype(np.float32) * 0.8 + 40, 0, 255).astype(np.uint8)  # grey print, grey paper
    out = clean_page(page_of(small, dpi=120), detect_orientation=False)
    assert "upsampled-from=120dpi" in out.notes and out.dpi == 200
    assert abs(out.image.shape[0] - H) <= 2 and abs(out.image.shape[1] - W) <= 2
    got = ink_of(cv2.resize(out.image, (W, H), interpolation=cv2.INTER_NEAREST))
    low = C.binarize(small, 120)[0]
    blocky = cv2.resize(low, (W, H), interpolation=cv2.INTER_NEAREST) > 0
    truth = ink_of(want)
    near = cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert np.count_nonzero(got & near) > 0.99 * np.count_nonzero(got)  # nothing out of place
    assert np.count_nonzero(got & truth) > np.count_nonzero(blocky & truth)  # more of the print
    # black and white input has no grey to recover: left at its resolution
    fax = clean_page(page_of(small.copy() * 0 + np.where(small < 150, 0, 255).astype(np.uint8), dpi=120),
                     detect_orientation=False)
    assert fax.dpi == 120 and not any(n.startswith("upsampled") for n in fax.notes)


# -- speed -------------------------------------------------------------------------------------------
@needs_tesseract
@pytest.mark.tesseract
def test_speed_of_a_200_dpi_page():
    page = page_of(skewed(form(seed=16, header=HEADER), 1.5))
    clean_page(page)  # warm-up: Tesseract model load
    t0 = time.process_time()
    clean_page(page)
    # ~0.15-0.2 s CPU here; generous for a busy CI machine
    assert time.process_time() - t0 < 1.0


def test_sheet_on_a_desk_keeps_its_darker_part():
    """A photographed sheet on a darker desk, lit from below: its top is as dark as
    Otsu's split between desk and paper. The paper mask must still hold the whole sheet
    (seen: a ledger's title and right-hand columns cut off, the form not recognised)."""
    from faxflow.ocr.clean import paper_region

    rng = np.random.default_rng(3)
    h, w, dpi = 1500, 1150, 130.0
    desk = rng.normal(80, 12, (h, w))
    sheet = np.zeros((h, w), bool)
    sheet[80:1420, 90:1060] = True
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paper = 125 + 110 * np.clip(1.6 * (yy - 80) / 1340 + 0.3 * (xx - 90) / 970 - 0.1, 0, 1)  # dim top
    img = np.where(sheet, paper + rng.normal(0, 3, (h, w)), desk)
    for y in range(200, 1350, 45):  # ruled rows of a ledger
        img[y:y + 2, 130:1020] = 60
    mask = paper_region(np.clip(img, 0, 255).astype(np.uint8), dpi)
    assert mask is not None
    inside = mask[sheet] > 0
    assert inside.mean() > 0.95  # the sheet, its dim top too (less its 2-mm edge)
    assert mask[100:200, 120:1030].mean() > 0.95 * 255
    assert (mask[~sheet] > 0).mean() < 0.02  # and not the desk
