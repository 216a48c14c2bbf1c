"""faxflow command line: a thin Typer layer.

Each command builds settings, calls ONE library function, prints, and exits with a
code from ``templates.errors.ExitCode``. No cv2/tesserocr imports here; library
modules are imported inside the commands so ``faxflow --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from faxflow.templates.errors import ExitCode, FaxflowError

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


def main() -> None:
    try:
        app()
    except FaxflowError as exc:  # pragma: no cover - commands normally map errors themselves
        typer.echo(f"error: {exc}", err=True)
        sys.exit(int(exc.exit_code))


if __name__ == "__main__":
    main()
