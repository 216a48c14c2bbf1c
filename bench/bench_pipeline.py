"""Speed of the main job, file -> CSV, on 10-row order sheets (run by hand: make bench).

Generates N printed order sheets of the shipped templates (FAX fine/standard, scans),
runs the nightly batch over them with --jobs 1 and --jobs 2 (the same code as
`faxflow run`), exports the CSV, and prints pages per minute. Target (issue #2):
>= 40 pages/min end to end on a 2-core machine.

    .venv/bin/python bench/bench_pipeline.py [--count 40] [--jobs 1 2] [--no-second-engine]

Besides wall time it prints the CPU seconds per page (this process and its worker
processes, user + system). Wall time on a shared 2-core machine moves by a third
with whatever else runs; CPU per page moves far less, so compare commits by it
(docs/operations.md, section 7).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-second-engine", action="store_true",
                    help="Tesseract alone ([ocr] second_engine = false), to see what PP-OCR costs")
    args = ap.parse_args()

    from faxflow.export.csv_out import export_csv
    from faxflow.ingest.batch import run_batch
    from faxflow.ingest.workspace import init_workspace, load_settings
    from faxflow.samples.generate import generate

    work = Path(tempfile.mkdtemp(prefix="faxflow-bench-"))
    samples = work / "samples"
    generate(samples, count=args.count, seed=args.seed, unknown=0.0, multipage=0.0)
    scans = [p for p in sorted(samples.iterdir()) if p.is_file() and not p.name.endswith(".json")]
    for jobs in args.jobs:
        home = work / f"jobs{jobs}"
        init_workspace(home)
        if args.no_second_engine:
            cfg = home / "faxflow.toml"
            cfg.write_text(cfg.read_text(encoding="utf-8").replace("second_engine = true", "second_engine = false"),
                           encoding="utf-8")
        settings = load_settings(home)
        assert settings.ocr.second_engine is not args.no_second_engine
        for s in scans:
            shutil.copy2(s, settings.inbox / s.name)
        t0, c0 = time.perf_counter(), _cpu_seconds()
        report = run_batch(settings, jobs=jobs, export=False, handle_signals=False)
        export_csv(settings.db_path, settings.exports / "orders.csv")
        dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        pages = report.pages if hasattr(report, "pages") else len(scans)
        print(f"jobs={jobs}: {len(scans)} files, {pages} pages in {dt:.1f} s -> "
              f"{60 * pages / dt:.1f} pages/min ({dt / max(pages, 1):.2f} s/page; "
              f"CPU {cpu / max(pages, 1):.2f} s/page, worker start-up included)")
    shutil.rmtree(work, ignore_errors=True)


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (the batch's
    worker processes are shut down, and so counted, when run_batch returns)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
