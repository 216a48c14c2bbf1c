"""clean: black-and-white FAX input comes out at least as readable as it went in.

The images in tests/data/clean are crops of generated samples (``faxflow samples make``)
as ingest hands them to clean_page (square pixels):

* light_print_scan200.png - a 200-dpi black-and-white scan (threshold 162) of light
  print: thin strokes broken into pieces (rotated 90 degrees);
* light_print_fax_reduced.png - a landscape sheet FAXed shrunk to 71 % (threshold 129):
  small, thin, broken print;
* thresholded_standard.png - FAX standard mode (204x98, stretched to square pixels),
  text mode (threshold 150);
* dithered_fs_standard.png - FAX standard mode in photo mode (Floyd-Steinberg dither):
  shaded headings and dithered text;
* thresholded_scan300.png - a 300-dpi black-and-white scan (threshold 156) of normal print.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faxflow.ocr import clean as C
from faxflow.templates.types import Page

DATA = Path(__file__).parent / "data" / "clean"
THRESHOLDED = [("light_print_scan200.png", 200.0), ("light_print_fax_reduced.png", 204.0),
               ("thresholded_standard.png", 204.0)]


def load(name: str) -> np.ndarray:
    img = cv2.imread(str(DATA / name), cv2.IMREAD_GRAYSCALE)
    assert img is not None, name
    return img


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


@pytest.mark.parametrize("name,dpi", THRESHOLDED, ids=[n for n, _ in THRESHOLDED])
def test_thresholded_print_is_not_taken_for_a_halftone(name, dpi):
    # Thin and broken strokes have many ink pixels without 4-neighbours, like dots;
    # these pages were blurred and re-thresholded, which turned text into blobs.
    grey = load(name)
    assert C.dither_mask(C._below(grey, 128), dpi) is None
    ink, notes = C.binarize(grey, dpi)
    assert "dithered" not in notes
    plain = C._below(C.normalize_background(grey, dpi), C._threshold(C.normalize_background(grey, dpi)))
    assert np.array_equal(ink, plain)  # the strokes exactly as the input drew them


def test_dithered_standard_mode_is_found_and_its_shading_goes():
    grey = load("dithered_fs_standard.png")
    ink = C._below(grey, 128)
    assert C._rows_stretched(ink)  # each scan line twice: no hole between dots shows
    mask = C.dither_mask(ink, 204.0)
    assert mask is not None and np.count_nonzero(mask) > 0.5 * mask.size
    out, notes = C.binarize(grey, 204.0)
    assert "dithered" in notes
    # the dotted shading of the heading column (x 85-135) is gone ...
    shaded = (slice(80, 320), slice(85, 135))
    assert np.count_nonzero(ink[shaded]) > 0.02 * ink[shaded].size
    assert np.count_nonzero(out[shaded]) < 0.003 * out[shaded].size
    # ... its heading (品名・規格) is solid print, and dust became strokes
    heading = (slice(330, 450), slice(90, 130))
    assert np.count_nonzero(out[heading]) > np.count_nonzero(ink[heading])
    assert cv2.connectedComponents(out)[0] < 0.2 * cv2.connectedComponents(ink)[0]


@pytest.mark.parametrize("name,stretched", [("thresholded_standard.png", True), ("dithered_fs_standard.png", True),
                                            ("light_print_fax_reduced.png", False),
                                            ("light_print_scan200.png", False)])
def test_stretched_rows_of_standard_mode_are_recognised(name, stretched):
    assert C._rows_stretched(C._below(load(name), 128)) is stretched


@pytest.mark.parametrize("name,dpi,x0", [("light_print_scan200.png", 200.0, 0),
                                         ("light_print_fax_reduced.png", 204.0, 80)],
                         ids=["light_print_scan200", "light_print_fax_reduced"])
def test_pieces_of_light_print_are_not_specks(name, dpi, x0):
    # Each piece of a broken stroke is speck-sized; together they are far more ink than
    # specks ever put close together. (x0: the FAX's row numbers left of it, one digit
    # in one or two pieces with only ruling around, cannot be told from specks.)
    grey = load(name)
    ink = C._below(grey, 128)
    out, _n = C.despeckle(ink, dpi)
    lost = np.count_nonzero((ink[:, x0:] > 0) & (out[:, x0:] == 0))
    assert lost <= 0.008 * np.count_nonzero(ink[:, x0:])


@pytest.mark.parametrize("name,dpi", THRESHOLDED[:2], ids=[n for n, _ in THRESHOLDED[:2]])
def test_specks_on_a_light_print_page_still_go(name, dpi):
    grey = load(name)
    ink = C._below(grey, 128)
    mm = dpi / 25.4
    far = cv2.dilate(ink, np.ones((int(4 * mm), int(4 * mm)), np.uint8)) == 0  # > 2 mm from any ink
    rng = np.random.default_rng(3)
    noisy = ink.copy()
    ys, xs = np.nonzero(far[3:-3, 3:-3])
    pick = rng.choice(len(ys), size=min(25, len(ys)), replace=False)
    for y, x in zip(ys[pick] + 3, xs[pick] + 3):
        s = int(rng.choice([1, 2, 3]))
        noisy[y:y + s, x:x + s] = 255
    out, n = C.despeckle(noisy, dpi)
    assert n >= 20  # (a few land within 2 mm of each other and keep each other)
    assert np.count_nonzero((out > 0) & (ink == 0)) <= 5 * 9


# -- thin print ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,dpi", THRESHOLDED[:2], ids=[n for n, _ in THRESHOLDED[:2]])
def test_thin_print_is_made_a_pixel_bolder(name, dpi):
    ink = C._below(load(name), 128)
    out, done = C.thicken_thin_print(ink, dpi)
    assert done
    assert not np.any((ink > 0) & (out == 0))  # nothing taken away
    grown = np.count_nonzero(out) / np.count_nonzero(ink)
    assert 1.5 < grown < 2.5  # one pixel bolder, not blobs
    # strokes one or two pixels wide now have an inside
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    assert np.count_nonzero(cv2.erode(out, cross)) > 2 * np.count_nonzero(cv2.erode(ink, cross))


@pytest.mark.parametrize("name,dpi", [("thresholded_scan300.png", 300.0), ("thresholded_standard.png", 204.0),
                                      ("dithered_fs_standard.png", 204.0)])
def test_print_wide_enough_is_not_thickened(name, dpi):
    # 300 dpi: strokes are wide enough; FAX standard mode: every scan line is doubled
    ink = C._below(load(name), 128)
    out, done = C.thicken_thin_print(ink, dpi)
    assert not done and out is ink


def test_clean_page_thickens_thin_fax_print_but_not_its_specks():
    grey = load("light_print_fax_reduced.png")
    noisy = grey.copy()
    rng = np.random.default_rng(5)
    far = cv2.dilate(C._below(grey, 128), np.ones((33, 33), np.uint8)) == 0
    ys, xs = np.nonzero(far[3:-3, 3:-3])
    for i in rng.choice(len(ys), size=min(15, len(ys)), replace=False):
        noisy[ys[i] + 3: ys[i] + 5, xs[i] + 3: xs[i] + 5] = 0
    page = Page(sha256="ab" * 32, source_name="fax.tif", index=0, image=noisy, dpi=204.0, notes=())
    out = C.clean_page(page, detect_orientation=False)
    assert "thin-print-thickened" in out.notes
    got = out.image < 128
    assert np.count_nonzero(got & far) <= 2 * 9  # the specks went (bolder) with them
