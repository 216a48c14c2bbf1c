"""Form recognition: which template, roughly where, and "unknown" when nothing fits."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from _synthform import corner_error, distort, ledger_form, order_form

from faxflow.templates.match import HEADER_BAND, fuzzy_contains, match_page


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    d = tmp_path_factory.mktemp("match")
    tanaka = order_form(d)
    sato = order_form(d, company="佐藤商事株式会社", name="sato_order", keywords=("佐藤商事",))
    ledger = ledger_form(d)
    return {"tanaka": tanaka, "sato": sato, "ledger": ledger}


FILL = {"order_no": "PO-240117", "order_date": "2026/11/20", "lines[0].part_no": "AB-1234",
        "lines[0].quantity": "120", "lines[3].description": "六角ボルト M8×30"}

CASES = {
    "upright": dict(),
    "rot+3": dict(angle=3),
    "rot-3 scale1.05 shift+5%": dict(angle=-3, scale=1.05, shift=(0.05, 0.05)),
    "fax-standard speckle header": dict(angle=2, scale=0.95, shift=(-0.05, -0.04), fax_standard=True,
                                        speckle=0.001, header=True),
    "photo perspective": dict(perspective=0.04, angle=1),
    "fax reduced A3->A4": dict(scale=0.71, angle=-0.5, fax_standard=True),
}


@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_distorted_page_matches_its_template(forms, kw):
    f = forms["tanaka"]
    page, m = distort(f.fill(FILL), **kw)
    r = match_page(page, 200, [f.template, forms["ledger"].template])
    assert r.template is f.template, r.reason
    assert r.reason is None
    assert r.rotation == 0
    assert r.inliers >= 20
    assert r.candidates[0][0] == "tanaka_order" and r.candidates[-1] == ("ledger", 0.0)
    assert corner_error(f.template, m, r.transform) < 4.0  # coarse: align refines it


@pytest.mark.parametrize("k", [1, 2, 3], ids=["rot90", "rot180", "rot270"])
def test_quarter_turned_page_is_found_and_reported(forms, k):
    f = forms["tanaka"]
    page, m = distort(f.fill(FILL), rot90=k, angle=1.0)
    r = match_page(page, 200, [f.template])
    assert r.template is f.template, r.reason
    assert r.rotation == 90 * k
    assert f"rotated-{90 * k}" in r.notes
    assert corner_error(f.template, m, r.transform) < 4.0


def test_different_form_is_unknown_with_a_reason(forms):
    page, _ = distort(forms["ledger"].image, angle=1)
    r = match_page(page, 200, [forms["tanaka"].template, forms["sato"].template])
    assert r.template is None and r.transform is None
    assert r.reason and "no template matched" in r.reason
    assert {n for n, _ in r.candidates} == {"tanaka_order", "sato_order"}


@pytest.mark.parametrize("image", [
    np.full((2339, 1654), 255, np.uint8),
    np.where(np.random.default_rng(0).random((1200, 900)) < 0.05, 0, 255).astype(np.uint8),
    np.zeros((10, 10), np.uint8),
], ids=["blank", "noise", "tiny"])
def test_junk_pages_never_raise(forms, image):
    r = match_page(image, 200, [forms["tanaka"].template])
    assert r.template is None and r.reason


def test_no_templates_and_broken_reference(forms, tmp_path):
    assert match_page(forms["tanaka"].image, 200, []).reason == "no templates loaded"
    broken = replace(forms["ledger"].template, name="broken", reference_image=tmp_path / "missing.png")
    page, _ = distort(forms["tanaka"].image, angle=1)
    r = match_page(page, 200, [broken, forms["tanaka"].template])
    assert r.template is forms["tanaka"].template
    assert ("broken", 0.0) in r.candidates


def _fake_ocr(forms, calls):
    """A stand-in for Tesseract on the header band: it 'reads' whichever company's header
    the band looks like (correlation with each reference's band), so it only reads
    right when match_page hands it a correctly aligned header band."""
    bands = {}
    for key, text in (("tanaka", "注 文 書 田中工業株式会社 御中"), ("sato", "注 文 書 佐藤商事株式会社 御中")):
        img = forms[key].image
        bands[text] = img[: int(img.shape[0] * HEADER_BAND)].astype(np.float32)

    def read_text(band: np.ndarray) -> str:
        calls.append(band.shape)
        best, text = -1.0, ""
        for t, ref in bands.items():
            if band.shape != ref.shape:
                continue
            c = float(cv2.matchTemplate(band.astype(np.float32), ref, cv2.TM_CCOEFF_NORMED).max())
            if c > best:
                best, text = c, t
        return text if best > 0.5 else ""

    return read_text


@pytest.mark.parametrize("who", ["tanaka", "sato"])
def test_similar_forms_are_told_apart_by_keywords(forms, who):
    f = forms[who]
    page, _ = distort(f.fill(FILL), angle=-1.5, shift=(0.02, 0.03), fax_standard=True)
    calls: list = []
    tpls = [forms["tanaka"].template, forms["sato"].template]
    r = match_page(page, 200, tpls, read_text=_fake_ocr(forms, calls))
    assert r.template is f.template, r.reason
    # this stand-in reads whole header bands only, so the band decided
    assert (int(f.image.shape[0] * HEADER_BAND), f.image.shape[1]) in calls
    # both pass the geometric test: without OCR the choice is flagged as ambiguous
    r2 = match_page(page, 200, tpls)
    assert r2.template is not None and "keywords-unchecked" in r2.notes
    assert any(n.startswith("ambiguous-with:") for n in r2.notes)


def test_same_stationery_from_an_unknown_customer_is_rejected(forms):
    """Keywords declared and read: a page that shows none of them is not this form."""
    page, _ = distort(forms["tanaka"].image, angle=1)
    r = match_page(page, 200, [forms["sato"].template], read_text=lambda img: "注 文 書 山田製作所 御中")
    assert r.template is None
    assert "keywords not found" in r.reason


def test_anchor_in_its_box(forms):
    from faxflow.templates.model import Anchor

    t = replace(forms["tanaka"].template, keywords=(), anchors=(Anchor("注文書", (540, 60, 1110, 160)),))
    page, _ = distort(forms["tanaka"].image, angle=1)
    seen = []

    def read_text(img):
        seen.append(img.shape)
        return "注 文 書" if img.shape[0] < 400 else ""

    assert match_page(page, 200, [t], read_text=read_text).template is t
    assert seen  # the anchor box was read
    assert match_page(page, 200, [t], read_text=lambda img: "請求書").template is None


def test_a_filled_reference_still_matches_other_fillings(forms, tmp_path):
    f = forms["tanaka"]
    ref_img = f.fill({"order_no": "PO-999999", "buyer": "鈴木", "lines[5].description": "ナット M8 黒"})
    path = tmp_path / "filled_ref.png"
    cv2.imwrite(str(path), ref_img)
    t = replace(f.template, name="filled_ref", reference_image=path)
    page, m = distort(f.fill(FILL), angle=2, scale=0.97)
    r = match_page(page, 200, [t])
    assert r.template is t, r.reason
    assert corner_error(t, m, r.transform) < 4.0


def test_page_at_another_dpi(forms):
    f = forms["tanaka"]
    page, m = distort(f.fill(FILL), angle=-1)
    big = cv2.resize(page, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)
    big = np.where(big < 128, 0, 255).astype(np.uint8)
    s = np.array([[1.5, 0, 0.25], [0, 1.5, 0.25], [0, 0, 1]])
    r = match_page(big, 300, [f.template])
    assert r.template is f.template
    assert corner_error(f.template, s @ m, r.transform) < 4.0


@pytest.mark.parametrize("text,word,found", [
    ("注 文 書 田中工業株式会社 御中", "田中工業", True),
    ("注文書田中エ業株式会社", "田中工業", True),  # one OCR slip in four characters
    ("注文書 佐藤商事", "田中工業", False),
    ("ＡＢＣ商会", "abc商会", True),  # NFKC and case
    ("", "注文書", False),
])
def test_fuzzy_contains(text, word, found):
    assert fuzzy_contains(text, word) is found


def test_correlation_fallback_places_a_featureless_page(forms):
    """When features find nothing (a FAX that lost the fine print), the form is slid over
    the page at ~25 dpi and refitted with patches; it must land within a few pixels."""
    import faxflow.templates.match as M

    f = forms["tanaka"]
    img, m = distort(f.fill(FILL), shift=(0.03, -0.02), angle=0.5)
    cand = M._Candidate(f.template, M.reference_for(f.template))
    M._correlate(cand, M._page_work(img, 200, 0))
    assert not cand.reason and cand.score >= M.CORR_MIN_SCORE
    assert corner_error(f.template, m, cand.transform) < 4.0
    other = M._Candidate(forms["ledger"].template, M.reference_for(forms["ledger"].template))
    M._correlate(other, M._page_work(img, 200, 0))
    assert other.reason  # another form is not found this way either


def test_keywords_are_read_where_the_reference_prints_them(tesseract, tmp_path):
    """Real Tesseract on a shipped form: once the reference shows where each keyword is
    printed, a page reads those runs of print only, not the whole header band (a fifth
    of the reading time); a keyword the page does not show still rejects the form."""
    import cv2 as _cv2

    from faxflow.templates.loader import load_templates

    tpl = next(t for t in load_templates().templates if t.name == "yamada_order")
    ref = _cv2.imread(str(tpl.reference_image), _cv2.IMREAD_GRAYSCALE)
    band = (int(ref.shape[0] * HEADER_BAND), ref.shape[1])
    calls: list = []

    def read_text(img):
        calls.append(img.shape)
        return tesseract.recognize(img, lang="jpn", psm=6).text

    for seed in (1, 2):  # the first page also finds the keywords on the reference
        page, _ = distort(ref, angle=0.4, shift=(0.01, -0.01), fax_standard=True, seed=seed)  # deskewed
        calls.clear()
        r = match_page(page, 200, [tpl], read_text=read_text)
        assert r.template is tpl, r.reason
    assert calls and band not in calls and all(h * w < band[0] * band[1] / 4 for h, w in calls)
    # keywords this stationery does not print: found nowhere on the reference, so the
    # band (and then the page) is read, and the form is rejected as before
    other = replace(tpl, name="other_order", keywords=("見積書", "佐藤商事"), anchors=())
    calls.clear()
    r = match_page(page, 200, [other], read_text=read_text)
    assert r.template is None and "keywords not found" in r.reason
    assert band in calls


@pytest.mark.parametrize("shift", [(0.0, -0.045), (-0.06, 0.0)], ids=["up", "left"])
def test_form_running_off_the_page_edge(forms, shift):
    """A FAX sent with the sheet pushed up (or a tight scan) cuts through the title.
    ORB finds nothing within ~31 px of an image's border, so the title and the header
    gave no features (a never-seen generated FAX, shifted 4% up, went unrecognised with
    5 inliers). The page is padded white before its features are found: features come
    from right at its edge, and the form is found."""
    from faxflow.templates.match import _page_work

    f = forms["tanaka"]
    page, m = distort(f.fill(FILL), angle=0.5, shift=shift, fax_standard=True)
    pw = _page_work(page, 200, 0)
    axis = 1 if shift[1] else 0
    assert (pw.kps[:, axis] < 20).sum() >= 10  # the cut title and frame at the edge
    r = match_page(page, 200, [f.template])
    assert r.template is f.template, r.reason
    assert corner_error(f.template, m, r.transform) < 6.0


def test_keywords_unread_on_a_page_that_fits_one_form_exactly(forms, tesseract):
    """A FAX whose keywords the OCR cannot read, of the one form it fits exactly, with
    the keywords' print looking like the reference's: taken as that form, unconfirmed
    (the pipeline sends every value to review). Another customer's copy of the same
    stationery - another name printed where the keyword is - stays an unknown form."""
    from faxflow.ocr.engines.tesseract import read_keywords

    sato = replace(forms["sato"].template, name="sato_unread")  # a reference model of its own

    def real(img):
        return read_keywords(tesseract, img)

    page, _ = distort(forms["sato"].fill(FILL), angle=0.8, shift=(0.01, 0.02), fax_standard=True)
    first = match_page(page, 200, [sato], read_text=real)  # finds where the keyword is printed
    assert first.template is sato and first.confirmed, first.reason
    r = match_page(page, 200, [sato], read_text=lambda img: "")
    assert r.template is sato and not r.confirmed
    assert any(n.startswith("keywords-unread:sato_unread:") for n in r.notes), r.notes
    other, _ = distort(forms["tanaka"].fill(FILL), angle=0.8, shift=(0.01, 0.02), fax_standard=True)
    r = match_page(other, 200, [sato], read_text=lambda img: "")
    assert r.template is None and "keywords not found" in r.reason
    # and a page that fits two forms equally is never guessed
    both = [sato, replace(forms["tanaka"].template, name="tanaka_unread")]
    assert match_page(page, 200, both, read_text=lambda img: "").template is None


def test_pipeline_sends_a_page_with_unread_keywords_to_review(tmp_path):
    """End to end on a shipped sample: the same FAX read by an OCR that cannot make out
    the keywords is still read with its template, every value flagged form_unconfirmed."""
    from pathlib import Path

    from faxflow.ingest.pipeline import Pipeline
    from faxflow.ingest.settings import Settings

    scan = Path(__file__).resolve().parent.parent / "samples" / "scans" / "fax_standard_kawada.tif"
    pipeline = Pipeline(Settings.for_home(tmp_path))
    seen = pipeline.read_document(scan).records[0]  # also finds where the keywords are printed
    assert seen.template_name == "kawada_order" and "form_unconfirmed" not in seen.reasons
    pipeline._read_text = lambda img: ""  # a page too faint for the OCR
    rec = pipeline.read_document(scan).records[0]
    assert rec.template_name == "kawada_order" and rec.status == "review"
    assert "form_unconfirmed" in rec.reasons
    assert any(n.startswith("keywords-unread:kawada_order:") for n in rec.notes)
    values = list(rec.header.values()) + [v for r in rec.rows for v in r.values()]
    assert rec.rows and all(v.status == "review" and "form_unconfirmed" in v.reasons for v in values)
    # the same values as before, only flagged
    assert [v.text for v in values] == [v.text for v in list(seen.header.values()) + [v for r in seen.rows
                                                                                     for v in r.values()]]
