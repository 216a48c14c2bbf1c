"""faxflow command line: a thin Typer layer.

Each command builds settings, calls ONE library function, prints, and exits with a
code from ``templates.errors.ExitCode``. No cv2/tesserocr imports here; library
modules are imported inside the commands so ``faxflow --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from faxflow.templates.errors import ExitCode, FaxflowError, InputError

# One BLAS thread per process, set before anything imports NumPy: pages are spread over
# worker processes already, and on a busy 2-core machine OpenBLAS's own threads made a
# 3780x324 matrix-vector product 23 ms instead of 0.4 ms (the glyph matcher's).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = typer.Typer(
    help="faxflow: FAX order sheets and handwritten ledgers into checked data (SQLite + CSV).",
    no_args_is_help=True,
    add_completion=False,
)
templates_app = typer.Typer(help="List, check and preview form templates.", no_args_is_help=True)
samples_app = typer.Typer(help="Generate sample scans with ground truth.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")
app.add_typer(samples_app, name="samples")

HomeOption = typer.Option(
    None, "--home", envvar="FAXFLOW_HOME",
    help="Workspace folder (created by 'faxflow init'). Default: $FAXFLOW_HOME.",
)


def _fail(exc: FaxflowError) -> None:
    typer.echo(f"error: {exc}", err=True)
    if exc.ja and exc.ja != exc.en:
        typer.echo(f"エラー: {exc.ja}", err=True)
    raise typer.Exit(int(exc.exit_code))


# --- workspace, batch, watcher, status ---------------------------------------------
# (commands: init, run, watch, status)

InboxArgument = typer.Argument(
    None, help="Inbox folder (default: the workspace's inbox/). Without --home or FAXFLOW_HOME, "
               "the inbox's parent folder is the workspace (archive/, failed/, faxflow.db beside it).",
)


def _workspace_settings(home: Optional[Path], inbox: Optional[Path] = None, **overrides):
    from faxflow.ingest.workspace import load_settings

    try:
        return load_settings(home, inbox=inbox, **{k: v for k, v in overrides.items() if v is not None})
    except FaxflowError as exc:
        _fail(exc)


@app.command("init")
def init_cmd(
    folder: Path = typer.Argument(..., help="Folder for the workspace (created if missing)."),
) -> None:
    """Create a workspace folder with inbox/, archive/, failed/, faxflow.toml and the database.

    Also processing/, exports/, templates/ (the office's own templates) and logs/.
    Running it again keeps what exists."""
    from faxflow.ingest.workspace import init_workspace

    try:
        result = init_workspace(folder)
    except FaxflowError as exc:
        _fail(exc)
    for name in result.created:
        typer.echo(f"created  {result.home / name}")
    for name in result.kept:
        typer.echo(f"kept     {result.home / name}")
    typer.echo(f"\nPut scans into {result.home / 'inbox'}, then:\n"
               f"  faxflow watch --home {result.home}     (process files as they arrive)\n"
               f"  faxflow run --home {result.home}       (process what is waiting, e.g. nightly)\n"
               f"Settings: {result.config}")


@app.command("run")
def run_cmd(
    inbox: Optional[Path] = InboxArgument,
    home: Optional[Path] = HomeOption,
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1,
                                       help="Worker processes (default: [batch] jobs in faxflow.toml, else one per CPU core, "
                                            "at most 4)."),
    export: Optional[bool] = typer.Option(None, "--export/--no-export",
                                          help="Also write the CSV hand-off of new rows to exports/ "
                                               "(default: [export] after_run)."),
    wait: Optional[float] = typer.Option(None, "--wait", min=0,
                                         help="Seconds to wait for a batch already running "
                                              "(default: [batch] lock_wait, 10)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-file lines on the console (logs/faxflow.log has them)."),
) -> None:
    """Process every scan waiting in the inbox (the nightly batch), then print a summary.

    Writes logs/batch-YYYYmmdd-HHMMSS.txt. Exit code 0: all files done; 1: some files
    went to failed/; 2: could not run (config, lock, OCR engine, database); 130: interrupted."""
    from faxflow.ingest.batch import run_batch
    from faxflow.ingest.logs import setup_logging
    from faxflow.ingest.report import RichProgress

    settings = _workspace_settings(home, inbox, jobs=jobs)
    tty = sys.stdout.isatty()
    setup_logging(settings.logs, console=not tty and not quiet)
    try:
        report = run_batch(settings, progress=RichProgress() if tty else None, export=export, lock_wait=wait)
    except FaxflowError as exc:
        _fail(exc)
    report.print()
    raise typer.Exit(int(report.return_code))


@app.command("watch")
def watch_cmd(
    inbox: Optional[Path] = InboxArgument,
    home: Optional[Path] = HomeOption,
    poll: Optional[bool] = typer.Option(None, "--poll/--no-poll",
                                        help="Scan the folder every poll_interval instead of change "
                                             "notifications (network shares, NAS)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Worker processes (default: [batch] jobs)."),
) -> None:
    """Watch the inbox and process each scan as soon as it is completely written.

    Files already waiting are processed first. Runs until Ctrl-C or SIGTERM, then
    finishes the current file and exits 0."""
    from faxflow.ingest.logs import setup_logging
    from faxflow.ingest.watch import watch

    settings = _workspace_settings(home, inbox, jobs=jobs)
    setup_logging(settings.logs, console=True)
    try:
        summary = watch(settings, poll=poll)
    except FaxflowError as exc:
        _fail(exc)
    raise typer.Exit(int(summary.exit_code))


@app.command("status")
def status_cmd(home: Optional[Path] = HomeOption) -> None:
    """Show files per state, the last errors, and when the last batch ran and how it ended."""
    from faxflow.ingest.queue import workspace_status

    settings = _workspace_settings(home)
    try:
        status = workspace_status(settings)
    except FaxflowError as exc:
        _fail(exc)
    for line in status.lines():
        typer.echo(line)


@app.command("review")
def review_cmd(
    home: Optional[Path] = HomeOption,
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on. The default is this computer only; another "
                                  "address lets other computers in the office open the page (no login!)."),
) -> None:
    """Open the review page (レビュー画面) where clerks check and correct flagged values.

    Starts a small web server and prints the address to open in a browser; runs until
    Ctrl-C. Safe to run while 'faxflow watch' or 'faxflow run' is writing the database."""
    from faxflow.export.review import open_review_server
    from faxflow.ingest.logs import setup_logging

    settings = _workspace_settings(home)
    setup_logging(settings.logs, console=True)
    try:
        server = open_review_server(settings.db_path, host=host, port=port,
                                    template_dirs=[settings.templates_dir])
    except FaxflowError as exc:
        _fail(exc)
    typer.echo(f"レビュー画面: {server.url}  ← ブラウザで開いてください（終了は Ctrl-C）")
    typer.echo(f"review page: {server.url}  (open it in a browser; Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()


# --- templates -------------------------------------------------------------------------


def _user_templates_dir(home: Optional[Path]) -> Optional[Path]:
    if home is None:
        return None
    d = Path(home) / "templates"
    return d if d.is_dir() else None


@templates_app.command("list")
def templates_list(
    home: Optional[Path] = HomeOption,
    templates_dir: Optional[Path] = typer.Option(None, "--dir", help="Extra folder of template files."),
) -> None:
    """List the templates faxflow will use (shipped and the workspace's own)."""
    from faxflow.templates.loader import load_templates

    tset = load_templates([_user_templates_dir(home), templates_dir])
    for t in tset.templates:
        fields = len(t.fields) + sum(len(tb.columns) for tb in t.tables)
        origin = "shipped" if t.shipped else "user"
        typer.echo(f"{t.name:24} {t.kind:7} {origin:8} {fields:3} fields  {t.title}  ({t.path})")
    broken = {p.path for p in tset.problems if p.severity == "error"}
    for path in sorted(broken):
        typer.echo(f"{'(broken)':24} {path}  -> run 'faxflow templates check'", err=True)


@templates_app.command("check")
def templates_check(
    home: Optional[Path] = HomeOption,
    templates_dir: Optional[Path] = typer.Option(None, "--dir", help="Extra folder of template files."),
    files: list[Path] = typer.Argument(None, help="Template files to check (default: all)."),
) -> None:
    """Check template files; prints FILE:LINE: problem and exits 3 on any error.

    Besides the YAML, each template's match keywords are looked for on its reference
    image with Tesseract: none readable there is an error (every page would be an
    unknown form)."""
    from faxflow.ingest.template_check import keyword_problems
    from faxflow.templates.loader import check_templates, parse_template

    if files:
        problems, loaded = [], []
        for f in files:
            tpl, probs = parse_template(f)
            problems += probs
            if tpl is not None:
                loaded.append(tpl)
    else:
        tset = check_templates([_user_templates_dir(home), templates_dir])
        problems, loaded = list(tset.problems), list(tset.templates)
    problems += keyword_problems(loaded)
    names = [t.name for t in loaded]
    for p in problems:
        typer.echo(str(p), err=True)
    errors = sum(1 for p in problems if p.severity == "error")
    typer.echo(f"{len(names)} template(s) OK: {', '.join(names)}; {errors} error(s)")
    if errors:
        raise typer.Exit(int(ExitCode.BAD_TEMPLATE))


@templates_app.command("new")
def templates_new(
    name: str = typer.Argument(..., help="Name of the new template (lower case, digits, _), e.g. tanaka_order."),
    image: Path = typer.Argument(..., help="A scan of the blank form, or a FAX received on it (PDF, TIFF, "
                                           "PNG, JPEG)."),
    home: Optional[Path] = HomeOption,
    templates_dir: Optional[Path] = typer.Option(None, "--dir", help="Folder to write to (default: the "
                                                                     "workspace's templates/)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing template of that name."),
    page: Optional[int] = typer.Option(None, "--page", min=1, help="Page of the file that shows the form "
                                       "(default: of the first 5, the one with the most ruled boxes)."),
) -> None:
    """Draft a template from the blank form (or a FAX received on it): boxes, table columns and rows."""
    from faxflow.ingest.template_new import new_template

    folder = templates_dir or (Path(home) / "templates" if home is not None else None)
    if folder is None:
        _fail(InputError("no workspace: give --home (or set FAXFLOW_HOME) or --dir",
                         "作業フォルダが指定されていません（--home または --dir）"))
    try:
        result = new_template(name, image, folder, force=force, page=page)
    except FaxflowError as exc:
        _fail(exc)
    typer.echo(f"wrote {result.yaml_path} and {result.image_path.name} (a DRAFT: check it before use)")
    typer.echo(f"  header fields: {', '.join(result.header) or 'none found'}")
    typer.echo(f"  table: {len(result.columns)} columns ({', '.join(result.columns) or '-'}), {result.rows} rows")
    typer.echo(f"  match keywords: {', '.join(result.keywords) or 'none found'}")
    for note in result.notes:
        typer.echo(f"  note: {note}")
    for p in result.problems:
        typer.echo(f"  {p}", err=True)
    typer.echo(f"next: faxflow templates preview {name}   (then --scan a_real_fax.tif)")
    if result.errors:
        raise typer.Exit(int(ExitCode.BAD_TEMPLATE))


@templates_app.command("preview")
def templates_preview(
    name: str = typer.Argument(..., help="Template name (see 'faxflow templates list')."),
    scan: Optional[Path] = typer.Option(None, "--scan", help="Draw the zones over this scan after alignment."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG to write (default: NAME_preview.png)."),
    page: int = typer.Option(1, "--page", help="Page of the scan (1-based)."),
    home: Optional[Path] = HomeOption,
    templates_dir: Optional[Path] = typer.Option(None, "--dir", help="Extra folder of template files."),
) -> None:
    """Write a PNG with every zone drawn over the reference image or over a processed scan."""
    from faxflow.ingest.preview import preview_template

    try:
        result = preview_template(name, scan=scan, page=page, out=out,
                                  template_dirs=[_user_templates_dir(home), templates_dir])
    except FaxflowError as exc:
        _fail(exc)
    typer.echo(f"wrote {result.path}")
    for line in result.messages:
        typer.echo(line)


# --- samples, eval, export, demo -----------------------------------------------------------


@samples_app.command("make")
def samples_make(
    out: Path = typer.Argument(..., help="Folder to write scans and NAME.truth.json files into."),
    count: int = typer.Option(20, "--count", "-n", help="Number of documents."),
    seed: int = typer.Option(1, "--seed", help="Random seed (same seed, same samples)."),
    handwriting: float = typer.Option(0.0, "--handwriting", help="Fraction of documents with handwritten numbers."),
    ledgers: float = typer.Option(0.0, "--ledgers", help="Fraction of documents that are ledger pages."),
    novel: int = typer.Option(0, "--novel", help="Also make N never-seen order forms, with templates written "
                                                 "as a newcomer would, in OUT/templates/."),
    unknown: float = typer.Option(0.06, "--unknown", help="Fraction of documents with a page of an unknown form."),
) -> None:
    """Generate varied sample scans (FAX modes, skew, noise, fonts...) with ground truth."""
    from faxflow.samples.generate import generate

    paths = generate(out, count=count, seed=seed, handwriting=handwriting, ledgers=ledgers, novel=novel,
                     unknown=unknown)
    typer.echo(f"wrote {len(paths)} sample file(s) with ground truth to {out}")


@app.command("eval")
def eval_cmd(
    folder: Path = typer.Argument(..., help="Folder of scans with NAME.truth.json (from 'faxflow samples make')."),
    jobs: int = typer.Option(2, "--jobs", "-j", help="Worker processes."),
    home: Optional[Path] = HomeOption,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full report as JSON."),
) -> None:
    """Measure accuracy against ground truth: per field, per degradation, silent errors."""
    from faxflow.ingest.evaluate import evaluate, print_report

    settings = _settings(home)
    extra = folder / "templates"
    if extra.is_dir() and settings.templates_dir is None:
        # samples made with --novel carry their own (newcomer-written) templates
        from dataclasses import replace

        settings = replace(settings, templates_dir=extra)
        typer.echo(f"using the templates in {extra} too")
    report = evaluate(folder, settings, jobs=jobs)
    print_report(report)
    if json_out:
        import json

        json_out.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        typer.echo(f"wrote {json_out}")


@app.command("export")
def export_cmd(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="CSV file (default: exports/KIND_YYYYmmdd_HHMMSS.csv)."),
    kind: str = typer.Option("order", "--kind", help="order (order lines) or ledger (ledger entries)."),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="utf-8-sig (Excel, default) or cp932."),
    status: Optional[str] = typer.Option(None, "--status", help="Only rows with this status (ok or review)."),
    new: bool = typer.Option(False, "--new", help="Only rows not exported before, and mark them exported."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Write the CSV hand-off for the municipal platform (atomic: never a half file)."""
    from datetime import datetime

    from faxflow.export.csv_out import export_csv

    settings = _settings(home)
    enc = encoding or settings.export_encoding
    if enc.lower().replace("_", "-") in ("shift-jis", "sjis", "shift_jis", "windows-31j", "ms932"):
        enc = "cp932"
    if out is None:
        settings.exports.mkdir(parents=True, exist_ok=True)
        out = settings.exports / f"{kind}_{datetime.now():%Y%m%d_%H%M%S}.csv"
    try:
        result = export_csv(settings.db_path, out, kind=kind, encoding=enc,
                            statuses=(status,) if status else None, only_new=new, mark_exported=new)
    except FaxflowError as exc:
        _fail(exc)
    typer.echo(f"wrote {result.rows} row(s) to {result.path}")


@app.command("read")
def read_cmd(
    file: Path = typer.Argument(..., help="A scan (PDF, TIFF, PNG, JPEG) to read without storing it."),
    keep_work: Optional[Path] = typer.Option(None, "--keep-work", help="Write p001_clean.png, p001_aligned.png, p001_<field>.png here."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Read one file and print every value with its confidence and status (for debugging)."""
    from faxflow.ingest.pipeline import read_and_describe

    settings = _settings(home, keep_work=keep_work)
    try:
        for line in read_and_describe(file, settings):
            typer.echo(line)
    except FaxflowError as exc:
        _fail(exc)


@app.command("demo")
def demo_cmd(
    folder: Path = typer.Argument(Path("demo"), help="Folder for the demo workspace (recreated)."),
    count: int = typer.Option(24, "--count", "-n", help="Number of sample documents."),
    seed: int = typer.Option(20261123, "--seed", help="Random seed for the samples."),
    jobs: int = typer.Option(2, "--jobs", "-j", help="Worker processes."),
) -> None:
    """Generate sample scans, process them as the nightly batch would, export the CSV, print a summary."""
    from faxflow.ingest.demo import run_demo

    try:
        summary = run_demo(folder, count=count, seed=seed, jobs=jobs, echo=typer.echo)
    except FaxflowError as exc:
        _fail(exc)
    raise typer.Exit(int(summary.exit_code))


def _settings(home: Optional[Path], **overrides):
    """Workspace settings when a workspace is given, defaults otherwise."""
    from faxflow.ingest.settings import Settings

    if home is not None:
        from faxflow.ingest.workspace import load_settings

        try:
            return load_settings(home, **overrides)
        except FaxflowError as exc:
            _fail(exc)
    base = Path.cwd()
    return Settings.for_home(base, templates_dir=None, **overrides)


def main() -> None:
    try:
        app()
    except FaxflowError as exc:  # pragma: no cover - commands normally map errors themselves
        typer.echo(f"error: {exc}", err=True)
        sys.exit(int(exc.exit_code))


if __name__ == "__main__":
    main()
