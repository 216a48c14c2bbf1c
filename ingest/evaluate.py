"""faxflow eval: run the pipeline on generated samples and compare with ground truth.

Each scan ``NAME.ext`` has ``NAME.truth.json`` (format in docs/DEVELOPING.md). Every
truth field lands in one of four boxes:

* right, ok        - the goal
* right, flagged   - costs a clerk a look
* wrong, flagged   - caught: a clerk fixes it
* wrong, ok        - a SILENT ERROR: would reach the municipal database unchecked

Rows the pipeline invented, and rows it missed, count as wrong fields (silent when
nothing on the page was flagged for them).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from faxflow.ingest.settings import Settings


@dataclass
class Tally:
    total: int = 0
    right_ok: int = 0
    right_flagged: int = 0
    wrong_flagged: int = 0
    wrong_ok: int = 0

    def add(self, right: bool, flagged: bool) -> None:
        self.total += 1
        if right and not flagged:
            self.right_ok += 1
        elif right:
            self.right_flagged += 1
        elif flagged:
            self.wrong_flagged += 1
        else:
            self.wrong_ok += 1

    def merge(self, other: "Tally") -> None:
        for k in ("total", "right_ok", "right_flagged", "wrong_flagged", "wrong_ok"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def right(self) -> int:
        return self.right_ok + self.right_flagged

    @property
    def flagged(self) -> int:
        return self.right_flagged + self.wrong_flagged

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 1.0

    @property
    def silent_rate(self) -> float:
        return self.wrong_ok / self.total if self.total else 0.0

    def as_dict(self) -> dict:
        return {"total": self.total, "right": self.right, "accuracy": round(self.accuracy, 4),
                "flagged": self.flagged, "silent_errors": self.wrong_ok,
                "silent_rate": round(self.silent_rate, 4)}


@dataclass
class EvalReport:
    documents: int = 0
    pages: int = 0
    straight_through: int = 0  # documents with every field right and none flagged
    failed_documents: list[tuple[str, str]] = field(default_factory=list)
    form_right: int = 0  # pages whose template (or unknown form) was recognised right
    overall: Tally = field(default_factory=Tally)
    printed: Tally = field(default_factory=Tally)
    handwritten: Tally = field(default_factory=Tally)
    by_field: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_degradation: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    silent_examples: list[dict] = field(default_factory=list)
    # why right values were flagged (the review load that bought nothing): reason code ->
    # fields; "only:<code>" counts fields flagged for that one reason alone
    right_flag_reasons: Counter = field(default_factory=Counter)
    wrong_examples: list[dict] = field(default_factory=list)  # every wrong field, for --json
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "documents": self.documents, "pages": self.pages,
            "straight_through": self.straight_through,
            "form_recognised": self.form_right,
            "failed_documents": self.failed_documents,
            "overall": self.overall.as_dict(), "printed": self.printed.as_dict(),
            "handwritten": self.handwritten.as_dict(),
            "by_field": {k: v.as_dict() for k, v in sorted(self.by_field.items())},
            "by_degradation": {k: v.as_dict() for k, v in sorted(self.by_degradation.items())},
            "silent_examples": self.silent_examples[:50],
            "right_flag_reasons": dict(self.right_flag_reasons.most_common()),
            "wrong_examples": self.wrong_examples,
            "seconds": round(self.seconds, 1),
        }


def _same_text(v, truth: str) -> bool:
    """Exact for every typed value; free text ignores white space and x/× between
    digits (see parse.text_key), because spacing in Japanese text is not content."""
    if v.value_type == "text":
        from faxflow.templates.parse import text_key

        return text_key(v.text) == text_key(truth)
    return v.text == truth


def _degradation_key(d: str) -> str:
    return d.split("=", 1)[0]


def compare_document(truth: dict, records: list, report: EvalReport, *, failed: str | None = None) -> None:
    """Fold one document's outcome into the report."""
    report.documents += 1
    by_page = {r.page_index: r for r in records}
    degradations = sorted({_degradation_key(d) for d in truth.get("degradations", [])}) or ["clean"]
    doc = Tally()
    for tpage in truth["pages"]:
        report.pages += 1
        rec = by_page.get(tpage["index"])
        expected_template = tpage.get("template")
        got_template = rec.template_name if rec is not None else None
        if got_template == expected_template:
            report.form_right += 1
        page_flagged = rec is not None and rec.status != "ok"
        items = []  # (field name, truth text, predicted Value | None, handwritten)
        hw_header = set(tpage.get("header_handwritten", []))
        for name, text in tpage.get("header", {}).items():
            v = rec.header.get(name) if rec is not None and got_template == expected_template else None
            items.append((name, text, v, name in hw_header))
        pred_rows = {}
        if rec is not None and got_template == expected_template:
            for row in rec.rows:
                any_v = next(iter(row.values()), None)
                if any_v is not None and any_v.row is not None:
                    pred_rows[any_v.row] = row
        truth_rows = {r["row"]: r for r in tpage.get("rows", [])}
        for ri, trow in truth_rows.items():
            prow = pred_rows.get(ri, {})
            hw = set(trow.get("handwritten", []))
            for col, text in trow["fields"].items():
                items.append((col, text, prow.get(col), col in hw))
        for ri, prow in pred_rows.items():
            if ri in truth_rows:
                continue
            for col, v in prow.items():  # an invented row: every non-empty value is wrong
                if v.text:
                    items.append((col, "", v, False))
        for name, text, v, hw in items:
            if expected_template is None:
                continue  # unknown forms have no fields to read; counted by form_right
            if v is None:
                right = text == ""
                flagged = page_flagged or failed is not None
            else:
                right = _same_text(v, text)
                flagged = v.status != "ok" or failed is not None
            for t in (report.overall, report.handwritten if hw else report.printed,
                      report.by_field[name], doc):
                t.add(right, flagged)
            for d in degradations:
                report.by_degradation[d].add(right, flagged)
            if right and flagged and v is not None and failed is None:
                codes = sorted({r.split(":", 1)[0] for r in (getattr(v, "reasons", ()) or ())}) or ["page"]
                report.right_flag_reasons.update(codes)
                if len(codes) == 1:
                    report.right_flag_reasons["only:" + codes[0]] += 1
            if not right:
                example = {
                    "file": truth["file"], "page": tpage["index"], "field": name,
                    "row": getattr(v, "row", None), "truth": text,
                    "read": v.text if v is not None else None,
                    "raw": v.raw_text if v is not None else None,
                    "confidence": round(v.confidence, 3) if v is not None else None,
                    "reasons": list(getattr(v, "reasons", ()) or ()), "handwritten": hw}
                if not flagged and len(report.silent_examples) < 200:
                    report.silent_examples.append(example)
                if len(report.wrong_examples) < 5000:
                    report.wrong_examples.append(example)
        if expected_template is None and got_template is not None:
            # an unknown form read as a known one: everything it produced is unchecked data
            if rec is not None and rec.status == "ok":
                report.overall.add(False, False)
    if failed:
        report.failed_documents.append((truth["file"], failed))
    elif doc.total and doc.right_ok == doc.total:
        report.straight_through += 1


def _truth_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.truth.json"))


def _scan_for(truth_path: Path, truth: dict) -> Path:
    return truth_path.parent / truth["file"]


_worker = None


def _init_worker(settings: Settings) -> None:
    global _worker
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from faxflow.ingest.pipeline import Pipeline

    _worker = Pipeline(settings)


def _read_one(scan: str):
    from faxflow.templates.errors import FaxflowError

    try:
        result = _worker.read_document(Path(scan))  # type: ignore[union-attr]
        return result.records, None
    except FaxflowError as exc:
        return [], f"{exc.code}: {exc.en}"


def evaluate(folder: Path, settings: Settings, *, jobs: int = 1, progress=None) -> EvalReport:
    import time

    t0 = time.perf_counter()
    report = EvalReport()
    truths = []
    for tp in _truth_files(Path(folder)):
        truth = json.loads(tp.read_text(encoding="utf-8"))
        truths.append((truth, _scan_for(tp, truth)))
    scans = [str(s) for _, s in truths]
    if jobs <= 1:
        _init_worker(settings)
        results = map(_read_one, scans)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(settings,))
        results = pool.map(_read_one, scans)
    try:
        for (truth, _), (records, failed) in zip(truths, results):
            compare_document(truth, records, report, failed=failed)
            if progress is not None:
                progress()
    finally:
        if jobs > 1:
            pool.shutdown()
    report.seconds = time.perf_counter() - t0
    return report


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def print_report(report: EvalReport, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    o = report.overall
    console.print(f"[bold]faxflow eval[/bold]: {report.documents} documents, {report.pages} pages, "
                  f"{o.total} fields in {report.seconds:.1f} s")
    console.print(f"forms recognised right: {report.form_right}/{report.pages} pages; "
                  f"documents straight through (all right, none flagged): "
                  f"{report.straight_through}/{report.documents}")
    for name, t in (("all fields", o), ("printed", report.printed), ("handwritten", report.handwritten)):
        if t.total:
            console.print(f"{name:12} accuracy {_pct(t.accuracy)} ({t.right}/{t.total}), flagged {t.flagged}, "
                          f"[bold]silent errors {t.wrong_ok} ({_pct(t.silent_rate)})[/bold]")

    def table(title: str, rows: dict[str, Tally]) -> None:
        tb = Table(title=title)
        for col in ("", "fields", "accuracy", "flagged", "wrong+flagged", "silent errors"):
            tb.add_column(col, justify="left" if not col else "right")
        for k, t in sorted(rows.items()):
            tb.add_row(k, str(t.total), _pct(t.accuracy), str(t.flagged), str(t.wrong_flagged),
                       f"{t.wrong_ok} ({_pct(t.silent_rate)})")
        console.print(tb)

    table("per field", report.by_field)
    table("per degradation", report.by_degradation)
    if report.failed_documents:
        console.print(f"[red]{len(report.failed_documents)} document(s) failed:[/red]")
        for name, why in report.failed_documents[:20]:
            console.print(f"  {name}: {why}")
    if report.right_flag_reasons:
        right_flagged = o.right_flagged
        top = [(k, n) for k, n in report.right_flag_reasons.most_common() if not k.startswith("only:")][:8]
        console.print(f"right but flagged: {right_flagged} fields; reasons (a field can have several; "
                      "in brackets: the only reason): " + ", ".join(
                          f"{k} {n} ({report.right_flag_reasons.get('only:' + k, 0)})" for k, n in top))
    if report.silent_examples:
        console.print("[bold red]silent errors (wrong and not flagged), first 20:[/bold red]")
        for ex in report.silent_examples[:20]:
            console.print(f"  {ex['file']} p{ex['page'] + 1} {ex['field']} row={ex['row']}: "
                          f"truth={ex['truth']!r} read={ex['read']!r} raw={ex['raw']!r} conf={ex['confidence']}")


def records_from_store(db_path: Path) -> dict[str, list]:
    """Rebuild light Records from what landed in SQLite, keyed by source file name.

    Lets ``faxflow demo`` (and the integration test) grade the database itself, not
    the in-memory results: what the municipal platform would receive.
    """
    import sqlite3

    from faxflow.templates.types import Record, Value

    con = sqlite3.connect(str(db_path))
    con.row_factory = sqlite3.Row
    try:
        docs = {r["id"]: r for r in con.execute("select id, source_name, sha256 from documents")}
        pages = {(r["document_id"], r["page_index"]): r for r in con.execute(
            "select document_id, page_index, template, kind, status from pages")}
        fields_by_page: dict[tuple[int, int], list] = defaultdict(list)
        for f in con.execute("select * from fields"):
            fields_by_page[(f["document_id"], f["page_index"])].append(f)
    finally:
        con.close()
    out: dict[str, list] = defaultdict(list)
    for (doc_id, page_index), p in sorted(pages.items()):
        doc = docs[doc_id]
        header: dict = {}
        rows: dict[int, dict] = defaultdict(dict)
        for f in fields_by_page.get((doc_id, page_index), []):
            corrected = f["corrected_value"] if "corrected_value" in f.keys() else None
            v = Value(sha256=doc["sha256"], page_index=page_index, name=f["name"], box=(0, 0, 0, 0),
                      raw_text=f["raw_text"] or "", value=None,
                      text=corrected if corrected is not None else (f["value"] or ""),
                      value_type=f["value_type"] or "", confidence=f["confidence"] or 0.0,
                      engine=f["engine"] or "", status=f["status"] or "review",
                      table=f["table_name"], row=f["row_index"], column=f["column_name"])
            if f["table_name"] is None:
                header[f["name"]] = v
            else:
                rows[f["row_index"]][f["column_name"]] = v
        out[doc["source_name"]].append(Record(
            sha256=doc["sha256"], page_index=page_index, template_name=p["template"], kind=p["kind"],
            header=header, rows=[rows[i] for i in sorted(rows)], status=p["status"] or "review"))
    return out


def evaluate_store(db_path: Path, truth_dir: Path) -> EvalReport:
    """Grade the database contents against the truth files of the scans it came from."""
    report = EvalReport()
    stored = records_from_store(db_path)
    for tp in _truth_files(Path(truth_dir)):
        truth = json.loads(tp.read_text(encoding="utf-8"))
        records = stored.get(truth["file"])
        compare_document(truth, records or [], report,
                         failed=None if records is not None else "not in the database")
    return report
