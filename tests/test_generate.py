"""The sample generator and the shipped templates it draws.

One small generated sample per channel (FAX fine/standard TIFF, FAX-server PDF,
JPEG/PDF/PNG office scans, phone photo), checked file by file: it opens, its truth
is in the documented format and canonical text, and the numbers add up.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageSequence

from faxflow.samples import degrade, forms
from faxflow.samples import generate as gen

SEED = 20261123
CHANNELS = ["fax-fine", "fax-standard", "pdf-fax", "scan-jpeg", "pdf-scan", "png", "photo"]
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "forms"
KNOWN_TOKENS = {
    "fax-fine", "fax-standard", "g3", "g4", "no-dpi-tags", "pdf", "png", "photo", "photo-grey",
    "perspective", "curve", "lighting", "exif-orientation", "jpeg-q", "multipage", "threshold",
    "dither-ordered", "dither-fs", "blur", "noise", "speckle", "streaks", "toner-light",
    "toner-heavy", "fax-header", "skew", "shift", "scale", "rotate", "fax-reduced",
    "scan-200", "scan-300", "scan-400", "fax-then-scan", "edge-shadow", "handwriting", "correction",
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """One document per channel; ledgers, handwriting and unknown pages switched on."""
    out = tmp_path_factory.mktemp("samples")
    result = {}
    for k, ch in enumerate(CHANNELS):
        d = out / ch
        [path] = gen.generate(d, 1, SEED + k, handwriting=0.5, ledgers=0.35, unknown=0.2,
                              channels=[ch])
        truth = json.loads(path.with_name(path.name.split(".")[0] + ".truth.json").read_text("utf-8"))
        result[ch] = (path, truth)
    return result


def _pages(path: Path) -> list[Image.Image]:
    if path.suffix == ".pdf":
        pdf2image = pytest.importorskip("pdf2image")
        if not shutil.which("pdftoppm"):
            pytest.skip("poppler not installed")
        return pdf2image.convert_from_path(path, dpi=72)
    im = Image.open(path)
    return [p.copy() for p in ImageSequence.Iterator(im)]


# --- canonical text ---------------------------------------------------------------------


def test_canonical_text_rules():
    assert gen.canon_text("六角ボルト　Ｍ８×３０") == "六角ボルト M8×30"
    assert gen.canon_text(" 株式会社 山田製作所  購買部 ") == "株式会社山田製作所購買部"
    assert gen.canon_text("㈱山田製作所") == "(株)山田製作所"
    assert gen.canon_text("Oリング  P-20") == "Oリング P-20"
    assert gen.canon_part("ab－1234") == "AB-1234"
    assert gen.canon_part("７Ｍ ー221") == "7M-221"
    assert gen.canon_money(Decimal("3.50")) == "3.5"
    assert gen.canon_money(Decimal("12000.0")) == "12000"


# --- every sample ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_sample_opens_and_matches_truth_pages(samples, channel):
    path, truth = samples[channel]
    assert truth["file"] == path.name
    pages = _pages(path)
    assert len(pages) == len(truth["pages"])
    assert [p["index"] for p in truth["pages"]] == list(range(len(pages)))
    for p in pages:
        assert min(p.size) > 500
    if "g3" in truth["degradations"] or "g4" in truth["degradations"]:
        im = Image.open(path)
        assert im.info["compression"] == ("group3" if "g3" in truth["degradations"] else "group4")
        if "no-dpi-tags" in truth["degradations"]:
            assert 282 not in im.tag_v2 and 283 not in im.tag_v2  # (PIL then reports dpi (1, 1))
        else:
            assert tuple(round(float(v)) for v in im.info["dpi"]) == (
                (204, 98) if "fax-standard" in truth["degradations"] else (204, 196))


@pytest.mark.parametrize("channel", CHANNELS)
def test_truth_format_and_consistency(samples, channel):
    _, truth = samples[channel]
    assert set(truth) == {"file", "degradations", "pages"}
    for tok in truth["degradations"]:
        assert tok.split("=")[0] in KNOWN_TOKENS, tok
    for page in truth["pages"]:
        assert {"index", "template", "kind", "header", "header_handwritten", "rows"} <= set(page)
        if page["template"] is None:
            assert page["kind"] is None and page["header"] == {} and page["rows"] == []
            continue
        check_page(page)


def check_page(page: dict, layouts: dict | None = None) -> None:
    """Truth of one known page: the template's names, canonical text, sums and dates."""
    layout = (layouts or forms.SHIPPED)[page["template"]]
    assert page["kind"] == layout.kind
    specs = {f.name: f for f in layout.fields}
    assert set(page["header"]) == set(specs)
    assert set(page["header_handwritten"]) <= set(specs)
    table = layout.tables[0]
    cols = {c.name: c for c in table.read_columns}
    for name, text in page["header"].items():
        check_value(specs[name], text)
    seen = []
    for r in page["rows"]:
        assert 0 <= r["row"] < table.count
        seen.append(r["row"])
        assert set(r["fields"]) == set(cols)
        assert set(r["handwritten"]) <= set(cols)
        assert r["fields"][table.key], "a listed row has its key column filled"
        for name, text in r["fields"].items():
            check_value(cols[name], text)
    assert seen == sorted(set(seen)) and len(seen) >= 3
    if layout.kind == "order":
        check_order(page)
    else:
        check_ledger(page)


def check_value(spec, text: str) -> None:
    if text == "":
        return
    if spec.type == "text":
        assert text == gen.canon_text(text)
    elif spec.type == "part_number":
        assert text == gen.canon_part(text)
    elif spec.type in ("quantity", "integer"):
        assert re.fullmatch(r"\d+", text), text
    elif spec.type == "money":
        assert re.fullmatch(r"\d+(\.\d*[1-9])?", text), text
    elif spec.type == "date":
        assert dt.date.fromisoformat(text).isoformat() == text
    if spec.pattern:
        assert re.fullmatch(spec.pattern, text), (spec.name, spec.pattern, text)
    if spec.allowed:
        assert text in spec.allowed
    if spec.min is not None:
        assert float(text) >= spec.min
    if spec.max is not None:
        assert float(text) <= spec.max


def check_order(page: dict) -> None:
    order_date = dt.date.fromisoformat(page["header"]["order_date"])
    total = Decimal(0)
    for r in page["rows"]:
        f = r["fields"]
        q, p, a = Decimal(f["quantity"]), Decimal(f["unit_price"]), Decimal(f["amount"])
        assert abs(a - q * p) < 1, f"amount {a} != {q} x {p} (rounded to yen)"
        assert a == a.to_integral_value()
        total += a
        due = dt.date.fromisoformat(f["due_date"])
        # the year of an M/D date is the next one on or after the order date
        assert order_date <= due < order_date + dt.timedelta(days=365)
        assert 1 <= int(f["quantity"]) <= 5000
    if "total" in page["header"]:
        assert Decimal(page["header"]["total"]) == total


def check_ledger(page: dict) -> None:
    year = int(page["header"]["year"])
    prev = 0
    last = None
    for k, r in enumerate(page["rows"]):
        f = r["fields"]
        d = dt.date.fromisoformat(f["date"])
        assert d.year == year
        assert last is None or d >= last
        last = d
        inq = int(f["in_qty"] or 0)
        outq = int(f["out_qty"] or 0)
        bal = int(f["balance"])
        if k == 0 and not f["in_qty"] and not f["out_qty"]:
            prev = bal  # carried over from the previous page
            continue
        assert bal == prev + inq - outq
        assert bal >= 0
        prev = bal


def test_every_kind_of_page_was_checked(samples):
    templates = {p["template"] for _, t in samples.values() for p in t["pages"]}
    assert {"yamada_order", "kawada_order", "ledger_nyushukko"} <= templates | {None}
    assert len(templates - {None}) >= 2


def test_multipage_file_mixes_forms(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "MULTIPAGE_P", 1.0)
    [path] = gen.generate(tmp_path, 1, SEED, channels=["fax-standard"], unknown=0.0)
    truth = json.loads((tmp_path / "s0000.truth.json").read_text("utf-8"))
    assert 2 <= len(truth["pages"]) <= 3
    assert truth["degradations"][0] == f"multipage={len(truth['pages'])}"
    assert all("degradations" in p for p in truth["pages"])
    assert Image.open(path).n_frames == len(truth["pages"])
    for page in truth["pages"]:
        check_page(page)
    # one transmission carries orders written around the same time, as a real FAX does
    dates = [dt.date.fromisoformat(p["header"]["order_date"]) for p in truth["pages"]
             if p["template"] and p["header"].get("order_date")]
    assert len(dates) >= 2 and (max(dates) - min(dates)).days <= 14


def test_novel_forms_with_hand_made_templates(tmp_path):
    """--novel: never-seen layouts, their templates written beside the samples."""
    loader = pytest.importorskip("faxflow.templates.loader")
    paths = gen.generate(tmp_path, 3, SEED, novel=2, channels=["fax-standard"], unknown=0.0,
                         templates=["kawada_order"])
    layouts = {f"novel{k + 1:02d}": forms.random_order_layout(np.random.default_rng([SEED, 1_000_000 + k]),
                                                              f"novel{k + 1:02d}") for k in range(2)}
    for name, layout in layouts.items():
        tpl, problems = loader.parse_template(tmp_path / "templates" / f"{name}.yaml")
        # a box measured a few px short of its rows is a warning that is put right, never an error
        errors = [str(p) for p in problems if p.severity == "error"]
        assert tpl is not None and not errors, errors
        assert all(any(w in str(p) for w in ("taken down", "widened", "share the edge")) for p in problems), problems
        assert Image.open(tmp_path / "templates" / f"{name}.png").size == layout.size
        # measured "by hand": near the true boxes, not on them
        for f in layout.fields:
            got = tpl.field(f.name).box
            assert max(abs(a - b) for a, b in zip(got, f.inner)) <= 5
    seen = set()
    for p in paths:
        truth = json.loads(p.with_name(p.name.split(".")[0] + ".truth.json").read_text("utf-8"))
        for page in truth["pages"]:
            seen.add(page["template"])
            check_page(page, {**forms.SHIPPED, **layouts})
    assert seen & set(layouts)


def test_same_seed_same_samples(tmp_path):
    kw = dict(channels=["fax-standard", "scan-jpeg"], ledgers=0.5)
    a = gen.generate(tmp_path / "a", 2, 7, **kw)
    b = gen.generate(tmp_path / "b", 2, 7, **kw)
    c = gen.generate(tmp_path / "c", 1, 8, **kw)
    for pa, pb in zip(a, b):
        ta = pa.with_name(pa.name.split(".")[0] + ".truth.json").read_text("utf-8")
        tb = pb.with_name(pb.name.split(".")[0] + ".truth.json").read_text("utf-8")
        assert ta == tb
        assert pa.read_bytes() == pb.read_bytes()
    tc = (tmp_path / "c" / "s0000.truth.json").read_text("utf-8")
    assert tc != (tmp_path / "a" / "s0000.truth.json").read_text("utf-8")


def test_handwriting_skipped_without_module(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "faxflow.samples.handwriting", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="faxflow.samples"):
        [path] = gen.generate(tmp_path, 1, 3, handwriting=1.0, channels=["fax-fine"], unknown=0.0)
    assert "handwriting" in caplog.text
    truth = json.loads((tmp_path / "s0000.truth.json").read_text("utf-8"))
    assert "handwriting" not in truth["degradations"]
    for page in truth["pages"]:
        assert page["header_handwritten"] == []
        assert all(r["handwritten"] == [] for r in page["rows"])


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="nosuch"):
        gen.generate(tmp_path, 1, 1, templates=["nosuch"])
    with pytest.raises(ValueError, match="telex"):
        gen.generate(tmp_path, 1, 1, channels=["telex"])


def test_fax_tiff_without_resolution_tags(tmp_path):
    page = np.full((300, 200), 255, np.uint8)
    page[100:110] = 0
    degrade.save_tiff([page, page], tmp_path / "x.tif", compression="group3", dpi=None)
    im = Image.open(tmp_path / "x.tif")
    assert im.n_frames == 2 and 282 not in im.tag_v2 and 283 not in im.tag_v2
    assert np.asarray(im.convert("L"))[105, 5] == 0 and np.asarray(im.convert("L"))[5, 5] == 255


# --- the shipped templates ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(forms.SHIPPED))
def test_template_files_are_current(name):
    layout = forms.SHIPPED[name]
    yml = TEMPLATES_DIR / f"{name}.yaml"
    png = TEMPLATES_DIR / f"{name}.png"
    assert yml.exists() and png.exists()
    assert yml.read_text("utf-8") == forms.template_yaml(layout), (
        "regenerate: python -m faxflow.samples.forms --write templates/forms")
    ref = Image.open(png)
    assert ref.size == layout.size
    assert np.array_equal(np.asarray(ref), np.asarray(forms.reference_image(layout)))


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("name", sorted(forms.SHIPPED))
def test_template_boxes_inside_and_apart(name):
    raw = yaml.safe_load((TEMPLATES_DIR / f"{name}.yaml").read_text("utf-8"))
    w, h = Image.open(TEMPLATES_DIR / raw["reference"]["image"]).size
    inside = lambda b: 0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h  # noqa: E731
    boxes = {n: f["box"] for n, f in raw.get("fields", {}).items()}
    for n, b in boxes.items():
        assert inside(b), (n, b)
    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _overlap(boxes[a], boxes[b]), (a, b)
    for tname, t in raw["tables"].items():
        tb = t["box"]
        assert inside(tb)
        for n, b in boxes.items():
            assert not _overlap(b, tb), (n, tname)
        xs = sorted((c["x"][0], c["x"][1], cn) for cn, c in t["columns"].items())
        for x0, x1, cn in xs:
            assert tb[0] <= x0 < x1 <= tb[2], cn
        for (a0, a1, an), (b0, b1, bn) in zip(xs, xs[1:]):
            assert a1 <= b0, f"columns {an} and {bn} overlap"
        assert t["key"] in t["columns"]
        rows = t["rows"]
        if "pitch" in rows:
            assert tb[1] + rows["pitch"] * rows["count"] <= tb[3]
            assert 60 <= rows["pitch"] <= 80  # 8-10 mm rows at 200 dpi
        else:
            assert rows == {"from": "ruling"}


def test_templates_load_without_problems():
    loader = pytest.importorskip("faxflow.templates.loader")
    for name in forms.SHIPPED:
        tpl, problems = loader.parse_template(TEMPLATES_DIR / f"{name}.yaml", shipped=True)
        assert tpl is not None and not problems, [str(p) for p in problems]


# --- the committed sample scans (samples/scans) ----------------------------------------------

SCANS = Path(__file__).resolve().parents[1] / "samples" / "scans"
COMMITTED = sorted(SCANS.glob("*.truth.json"))


def test_committed_set_is_small_and_varied():
    assert 4 <= len(COMMITTED) <= 8
    assert sum(p.stat().st_size for p in SCANS.iterdir()) < 1.5e6
    exts = {json.loads(t.read_text("utf-8"))["file"].rsplit(".", 1)[1] for t in COMMITTED}
    assert {"tif", "pdf", "jpg"} <= exts


@pytest.mark.parametrize("truth_path", COMMITTED, ids=[p.name.split(".")[0] for p in COMMITTED])
def test_committed_sample(truth_path):
    truth = json.loads(truth_path.read_text("utf-8"))
    path = SCANS / truth["file"]
    assert path.exists() and truth_path.name == path.name.rsplit(".", 1)[0] + ".truth.json"
    assert len(_pages(path)) == len(truth["pages"])
    for page in truth["pages"]:
        if page["template"] is not None:
            check_page(page)
