"""`faxflow demo` / `make demo`: the main job on generated samples, end to end.

samples (with ground truth) -> a fresh workspace's inbox -> the nightly batch (the same
code as `faxflow run`) -> the CSV hand-off -> a summary that grades what landed in the
database against the ground truth.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from faxflow.templates.errors import ExitCode


@dataclass
class DemoSummary:
    db_path: Path
    csv_paths: list[Path]
    exit_code: ExitCode


def run_demo(folder: Path, *, count: int, seed: int, jobs: int = 2,
             echo: Callable[[str], None] = print) -> DemoSummary:
    from faxflow.export.csv_out import export_csv
    from faxflow.ingest.batch import run_batch
    from faxflow.ingest.evaluate import evaluate_store
    from faxflow.ingest.report import RichProgress
    from faxflow.ingest.workspace import init_workspace, load_settings
    from faxflow.samples.generate import generate

    folder = Path(folder).resolve()
    if (folder / "faxflow.toml").exists() or (folder / "samples").exists():
        shutil.rmtree(folder)  # a previous demo: start clean so the numbers mean this run
    samples = folder / "samples"
    echo(f"1/4 generating {count} sample documents (seed {seed}) in {samples} ...")
    generate(samples, count=count, seed=seed, handwriting=0.3, ledgers=0.15)
    init_workspace(folder)
    settings = load_settings(folder)
    for scan in sorted(samples.iterdir()):
        if scan.is_file() and not scan.name.endswith(".truth.json"):
            shutil.copy2(scan, settings.inbox / scan.name)
    echo(f"2/4 processing the inbox with {jobs} worker(s) (as the nightly 'faxflow run' does) ...")
    import sys

    report = run_batch(settings, jobs=jobs, progress=RichProgress() if sys.stdout.isatty() else None,
                       export=False)
    report.print()
    echo("3/4 writing the CSV hand-off ...")
    csvs = []
    for kind in ("order", "ledger"):
        out = settings.exports / f"{kind}_demo.csv"
        result = export_csv(settings.db_path, out, kind=kind, encoding=settings.export_encoding)
        csvs.append(result.path)
        echo(f"    {result.rows} {kind} row(s) -> {result.path}")
    echo("4/4 grading the database against the samples' ground truth ...")
    grade = evaluate_store(settings.db_path, samples)
    o = grade.overall
    lines = [
        "",
        "faxflow demo summary",
        f"  documents      {grade.documents} ({grade.straight_through} straight through: every field right, none flagged)",
        f"  pages          {grade.pages} ({grade.form_right} recognised as the right form)",
        f"  fields         {o.total}",
        f"  flagged        {o.flagged} for review ({o.wrong_flagged} of them really wrong)",
        f"  accuracy       {100 * o.accuracy:.1f}% (printed {100 * grade.printed.accuracy:.1f}%, "
        f"handwritten {100 * grade.handwritten.accuracy:.1f}%)",
        f"  silent errors  {o.wrong_ok} ({100 * o.silent_rate:.2f}% of fields: wrong and not flagged)",
        f"  database       {settings.db_path}",
    ] + [f"  CSV            {p}" for p in csvs] + [
        f"  review page    faxflow review --home {settings.home}   (check the flagged values in a browser)",
    ]
    for line in lines:
        echo(line)
    return DemoSummary(settings.db_path, csvs, report.return_code)
