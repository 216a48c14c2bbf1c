"""Field-level accuracy of the reading stage alone, for fast experiments (run by hand).

`faxflow eval` runs the whole pipeline; when working on the readers (ocr/read.py,
ocr/engines/*) most of that time goes into clean-up and alignment that do not change.
This script does those once and keeps every field crop with its ground truth:

    .venv/bin/faxflow samples make /tmp/dev --count 40 --seed 4242 --handwriting 0.4
    .venv/bin/python bench/crop_eval.py collect /tmp/dev /tmp/dev.pkl      # ~30 s
    .venv/bin/python bench/crop_eval.py read /tmp/dev.pkl [--field unit] [--handwritten]
    .venv/bin/python bench/crop_eval.py read /tmp/dev.pkl --wrong 30         # show misreads

`read` scores each non-empty crop as `faxflow eval` scores a field (value right or
wrong, flagged or not) with the pipeline's FieldReader and make_value, but without the
page's cross-field rules (so "silent" here is higher than end to end). The pickle is a
developer's scratch file: never commit it.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def _pipeline():
    import tempfile

    from faxflow.ingest.pipeline import Pipeline
    from faxflow.ingest.settings import Settings

    return Pipeline(Settings.for_home(Path(tempfile.mkdtemp(prefix="crop_eval_")), templates_dir=None))


def _collect_one(truth_path: str) -> list[dict]:
    from faxflow.ingest.pages import iter_pages
    from faxflow.ingest.source import identify
    from faxflow.ocr.align import align_page
    from faxflow.ocr.clean import clean_page
    from faxflow.ocr.crop import crop_fields
    from faxflow.templates.match import match_page

    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    p = _pipeline()
    out = []
    for page in iter_pages(identify(Path(truth_path).parent / truth["file"])):
        tpage = next((t for t in truth["pages"] if t["index"] == page.index), None)
        if tpage is None or tpage["template"] is None:
            continue
        cp = clean_page(page)
        m = match_page(cp.image, cp.dpi, p.templates, read_text=p._read_text)
        if m.template is None or m.template.name != tpage["template"]:
            continue
        crops = crop_fields(align_page(cp, m.template, m), m.template)
        rows = {r["row"]: r for r in tpage["rows"]}
        ref = tpage["header"].get("order_date") or None
        year = tpage["header"].get(m.template.year_hint) if m.template.year_hint else None
        for c in crops:
            if c.table is None:
                text, hw = tpage["header"].get(c.name), c.name in tpage.get("header_handwritten", [])
            else:
                r = rows.get(c.row)
                text = r["fields"].get(c.column) if r else ""
                hw = bool(r) and c.column in r.get("handwritten", [])
            if text is None:
                continue
            out.append({"file": truth["file"], "page": page.index, "degradations": truth["degradations"],
                        "crop": c, "truth": text, "handwritten": hw, "ref_date": ref,
                        "year": int(year) if year else None})
    return out


def collect(folder: Path, out: Path, jobs: int) -> None:
    paths = [str(p) for p in sorted(folder.glob("*.truth.json"))]
    items: list[dict] = []
    with ProcessPoolExecutor(jobs) as ex:
        for part in ex.map(_collect_one, paths):
            items += part
    with open(out, "wb") as fh:
        pickle.dump(items, fh)
    print(f"{len(items)} field crops from {len(paths)} documents -> {out}")


def read(pkl: Path, field: str | None, handwritten: bool, wrong: int) -> None:
    from faxflow.ingest.evaluate import Tally, _same_text
    from faxflow.templates.parse import make_value

    with open(pkl, "rb") as fh:
        items = pickle.load(fh)
    p = _pipeline()
    ocr = p.settings.ocr
    total, by_field = Tally(), collections.defaultdict(Tally)
    misreads = []
    for it in items:
        c = it["crop"]
        if it["handwritten"] != handwritten or not it["truth"] or (field and (c.column or c.name) != field):
            continue
        ref = dt.date.fromisoformat(it["ref_date"]) if it["ref_date"] else None
        reading = p.reader.read(c, ref_date=ref)
        thr = ocr.handwriting_threshold if reading.engine == "handwriting" else (
            ocr.text_threshold if c.spec.type == "text" else ocr.review_threshold)
        v = make_value(c, reading, ref_date=ref, year=it["year"], threshold=thr)
        right = _same_text(v, it["truth"])
        flagged = v.status != "ok"
        for t in (total, by_field[c.column or c.name]):
            t.add(right, flagged)
        if not right:
            misreads.append((it["file"], c.name, it["truth"], v.text, v.raw_text, flagged))
    print(f"{'field':14s} {'n':>5s} {'right':>7s} {'flagged':>8s} {'silent':>7s}")
    for name, t in sorted(by_field.items()) + [("ALL", total)]:
        print(f"{name:14s} {t.total:5d} {t.accuracy:7.1%} {t.flagged:8d} {t.wrong_ok:7d}")
    for m in misreads[:wrong]:
        print("  %s %s truth=%r read=%r raw=%r %s" % (*m[:5], "flagged" if m[5] else "SILENT"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("folder", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--jobs", type=int, default=2)
    r = sub.add_parser("read")
    r.add_argument("pkl", type=Path)
    r.add_argument("--field")
    r.add_argument("--handwritten", action="store_true", help="handwritten fields instead of printed")
    r.add_argument("--wrong", type=int, default=0, help="print this many misreads")
    a = ap.parse_args()
    if a.cmd == "collect":
        collect(a.folder, a.out, a.jobs)
    else:
        read(a.pkl, a.field, a.handwritten, a.wrong)
    return 0


if __name__ == "__main__":
    sys.exit(main())
