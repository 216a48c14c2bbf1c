"""What a batch did, as one object that also decides the exit code.

Like black's ``Report``: the batch adds one :class:`FileOutcome` per file and the
report's :attr:`BatchReport.return_code` is what ``faxflow run`` exits with
(``templates.errors.ExitCode``: 0 all done, 1 some files failed, 2 could not run,
130 interrupted). The report is shown as a table at the end of the run and written to
``logs/batch-YYYYmmdd-HHMMSS.txt`` (counts, failures with reasons, flagged fields).

Also here: the live progress bar shown when stdout is a terminal, and the text of
``faxflow status``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from faxflow.templates.errors import ExitCode

EXIT_MEANING = {
    ExitCode.OK: "all files done",
    ExitCode.FILES_FAILED: "some files failed (see failed/)",
    ExitCode.CANNOT_RUN: "could not run",
    ExitCode.INTERRUPTED: "interrupted",
}


@dataclass(frozen=True)
class FlaggedField:
    """A value left for a clerk to check."""

    page: int  # 1-based
    name: str
    text: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one inbox file. Plain data: it crosses process boundaries.

    ``state``: done | duplicate | failed (final, the file is in archive/ or failed/),
    released (put back into the inbox: not the file's fault, e.g. the OCR engine is
    missing), abandoned (another process took the file over; nothing was done).
    ``status``: ok | review | unknown_form (done), duplicate, failed, ...
    """

    name: str
    state: str
    status: str
    file_id: int | None = None
    sha256: str | None = None
    dest: str | None = None
    pages: int = 0
    fields: int = 0
    flagged: int = 0
    duration_s: float = 0.0
    attempts: int = 0
    error_code: str | None = None
    error_en: str | None = None
    error_ja: str | None = None
    flagged_fields: tuple[FlaggedField, ...] = ()
    fatal: bool = False  # the error is not this file's fault and stops the run (exit 2)


def reason_en(o: FileOutcome) -> str:
    """The English reason without the leading file name (shown next to the name anyway)."""
    text = o.error_en or ""
    for sep in (": ", ", "):
        if text.startswith(o.name + sep):
            return text[len(o.name) + len(sep):]
    return text


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def _fmt_time(t: dt.datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S %z") if t else "-"


def _fmt_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if h else f"{m} min {s} s"


@dataclass
class BatchReport:
    home: Path | None = None
    jobs: int = 1
    started: dt.datetime = field(default_factory=_now)
    finished: dt.datetime | None = None
    outcomes: list[FileOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # still being written at the end: left in the inbox
    recovered: int = 0  # files taken over from an interrupted run
    fatal_en: str | None = None
    fatal_ja: str | None = None
    interrupted: bool = False
    exports: list[str] = field(default_factory=list)  # "wrote N rows to PATH"
    path: Path | None = None  # the report file once written

    # -- building ------------------------------------------------------------------------
    def add(self, outcome: FileOutcome) -> None:
        if outcome.state == "abandoned":
            return
        self.outcomes.append(outcome)
        if outcome.fatal and self.fatal_en is None:
            self.fail(outcome.error_en or "cannot run", outcome.error_ja)

    def fail(self, en: str, ja: str | None = None) -> None:
        """The run could not go on (exit 2)."""
        self.fatal_en, self.fatal_ja = en, ja or en

    def finish(self) -> None:
        self.finished = _now()

    # -- reading -----------------------------------------------------------------------------
    def count(self, status: str) -> int:
        if status == "failed":
            return sum(1 for o in self.outcomes if o.state == "failed")
        if status == "duplicate":
            return sum(1 for o in self.outcomes if o.state == "duplicate")
        return sum(1 for o in self.outcomes if o.state == "done" and _done_status(o) == status)

    @property
    def counts(self) -> dict[str, int]:
        return {s: self.count(s) for s in ("ok", "review", "unknown_form", "duplicate", "failed")}

    @property
    def pages(self) -> int:
        return sum(o.pages for o in self.outcomes)

    @property
    def fields(self) -> int:
        return sum(o.fields for o in self.outcomes)

    @property
    def flagged(self) -> int:
        return sum(o.flagged for o in self.outcomes)

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.state == "failed"]

    @property
    def released(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.state == "released"]

    @property
    def return_code(self) -> ExitCode:
        if self.fatal_en is not None:
            return ExitCode.CANNOT_RUN
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.count("failed"):
            return ExitCode.FILES_FAILED
        return ExitCode.OK

    @property
    def elapsed_s(self) -> float:
        end = self.finished or _now()
        return (end - self.started).total_seconds()

    def summary_rows(self) -> list[tuple[str, str]]:
        c = self.counts
        rows = [
            ("Files done, all fields ok", str(c["ok"])),
            ("Files done, fields to review", str(c["review"])),
            ("Unknown form (stored for review)", str(c["unknown_form"])),
            ("Duplicate (already stored)", str(c["duplicate"])),
            ("Failed (see failed/)", str(c["failed"])),
        ]
        if self.released:
            rows.append(("Put back into the inbox", str(len(self.released))))
        if self.skipped:
            rows.append(("Left in the inbox (still being written)", str(len(self.skipped))))
        if self.recovered:
            rows.append(("Taken over from an interrupted run", str(self.recovered)))
        rows += [
            ("Pages", str(self.pages)),
            ("Fields read", str(self.fields)),
            ("Flagged fields", str(self.flagged)),
            ("Time", _fmt_duration(self.elapsed_s)),
        ]
        return rows

    def verdict(self) -> str:
        code = self.return_code
        text = f"exit {int(code)}: {EXIT_MEANING.get(code, code.name)}"
        if self.fatal_en:
            text += f" - {self.fatal_en}"
        return text

    # -- output -------------------------------------------------------------------------------
    def render_text(self) -> str:
        width = max(len(k) for k, _ in self.summary_rows())
        lines = [f"{k:<{width}}  {v:>6}" for k, v in self.summary_rows()]
        lines.append(self.verdict())
        if self.path:
            lines.append(f"report: {self.path}")
        return "\n".join(lines)

    def print(self, console: Any = None) -> None:
        """The summary table (rich when stdout is a terminal, plain text otherwise)."""
        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        if not console.is_terminal:
            console.file.write(self.render_text() + "\n")
            console.file.flush()
            return
        table = Table(title="faxflow run", box=box.SIMPLE, show_header=False)
        table.add_column("what")
        table.add_column("count", justify="right")
        for k, v in self.summary_rows():
            table.add_row(k, v)
        console.print(table)
        style = {0: "green", 1: "yellow"}.get(int(self.return_code), "red")
        console.print(self.verdict(), style=style, markup=False, highlight=False)
        for o in self.failures[:10]:
            console.print(f"  failed: {o.dest or o.name}: {o.error_ja or ''} / {reason_en(o)}",
                          markup=False, highlight=False)
        if len(self.failures) > 10:
            console.print(f"  ... and {len(self.failures) - 10} more (see the report)", highlight=False)
        if self.path:
            console.print(f"report: {self.path}", markup=False, highlight=False)

    def write(self, logs_dir: Path) -> Path:
        """Write ``logs/batch-YYYYmmdd-HHMMSS.txt`` (UTF-8 with BOM: Notepad opens it)."""
        from faxflow.templates.reasons import describe

        logs_dir = Path(logs_dir)
        logs_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.started.strftime("%Y%m%d-%H%M%S")
        path = logs_dir / f"batch-{stamp}.txt"
        n = 1
        while path.exists():
            n += 1
            path = logs_dir / f"batch-{stamp}-{n}.txt"
        out: list[str] = [
            "faxflow batch report / 一括処理の報告",
            f"workspace: {self.home}" if self.home else "",
            f"started:   {_fmt_time(self.started)}",
            f"finished:  {_fmt_time(self.finished)}  ({_fmt_duration(self.elapsed_s)}, {self.jobs} worker(s))",
            f"result:    {self.verdict()}",
        ]
        if self.fatal_ja and self.fatal_ja != self.fatal_en:
            out.append(f"結果:      処理を続けられませんでした - {self.fatal_ja}")
        out.append("")
        width = max(len(k) for k, _ in self.summary_rows())
        out += [f"  {k:<{width}}  {v:>6}" for k, v in self.summary_rows()]
        if self.failures:
            out += ["", "Failed files / 処理できなかったファイル (the reason is also in failed/NAME.error.txt)"]
            for o in self.failures:
                out.append(f"  {o.dest or o.name}")
                if o.error_ja:
                    out.append(f"    理由:   {o.error_ja}")
                out.append(f"    reason: {reason_en(o) or '-'}")
        if self.released:
            out += ["", "Put back into the inbox (not the file's fault) / 受信フォルダに戻したファイル"]
            for o in self.released:
                out.append(f"  {o.name}: {reason_en(o)}")
        if self.skipped:
            out += ["", "Left in the inbox, still being written / 書き込み中のため次回に回したファイル"]
            out += [f"  {name}" for name in self.skipped]
        flagged = [(o, f) for o in self.outcomes for f in o.flagged_fields]
        if flagged:
            out += ["", "Flagged fields / 要確認の項目"]
            for o, f in flagged:
                ja = "; ".join(describe(r, "ja") for r in f.reasons)
                en = "; ".join(describe(r, "en") for r in f.reasons)
                out.append(f"  {o.name}  p{f.page}  {f.name}  {f.text!r}  {ja} / {en}")
            more = self.flagged - len(flagged)
            if more > 0:
                out.append(f"  ... and {more} more (see the review page)")
        if self.exports:
            out += ["", "Exports / CSV 出力"] + [f"  {e}" for e in self.exports]
        if self.outcomes:
            out += ["", "Files / ファイル一覧"]
            for o in self.outcomes:
                detail = (f"{o.pages} page(s), {o.fields} field(s), {o.flagged} flagged"
                          if o.state == "done" else (o.error_code or o.status))
                out.append(f"  {o.state:9} {_done_status(o):12} {o.duration_s:6.1f} s  {o.name}  "
                           f"-> {o.dest or '-'}  ({detail})")
        text = "\n".join(line for line in out if line is not None) + "\n"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8-sig", newline="\r\n" if os.name == "nt" else "\n")
        os.replace(tmp, path)
        self.path = path
        return path

    def as_dict(self) -> dict[str, Any]:
        """The numbers kept in the database's ``runs`` table (for ``faxflow status``)."""
        return {**self.counts, "pages": self.pages, "fields": self.fields, "flagged": self.flagged,
                "released": len(self.released), "skipped": len(self.skipped), "recovered": self.recovered}


def _done_status(o: FileOutcome) -> str:
    return "ok" if o.status == "recovered" else o.status


# --------------------------------------------------------------------------- progress --

class RichProgress:
    """A progress bar for a terminal; failures are printed above it as they happen."""

    def __init__(self, console: Any = None):
        from rich.console import Console

        self.console = console or Console()
        self._progress = None
        self._task = None

    def start(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("[bold]faxflow run"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.description}"),
                                  console=self.console, transient=True)
        self._progress.start()
        self._task = self._progress.add_task("", total=total)

    def add_total(self, n: int) -> None:
        if self._progress is not None:
            task = self._progress.tasks[0]
            self._progress.update(self._task, total=(task.total or 0) + n)

    def advance(self, outcome: FileOutcome) -> None:
        if self._progress is None:
            return
        if outcome.state in ("failed", "released"):
            from rich.markup import escape

            self._progress.console.print(f"[red]{outcome.state}[/red] {escape(outcome.name)}: "
                                         f"{escape(reason_en(outcome))}", highlight=False)
        self._progress.update(self._task, advance=1, description=outcome.name.replace("[", "(").replace("]", ")"))

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# ----------------------------------------------------------------------------- status --

def _t(iso: str | None) -> str:
    """'2026-11-23T02:00:03+09:00' -> '2026-11-23 02:00:03' (local time as recorded)."""
    if not iso:
        return "-"
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


@dataclass
class WorkspaceStatus:
    home: Path
    db_path: Path
    inbox: Path
    waiting: int  # files in the inbox
    states: dict[str, int]  # files table: queued/processing/done/failed/duplicate
    done_by_status: dict[str, int]  # ok/review/unknown_form among done
    last_errors: list[dict[str, Any]]
    last_batch: dict[str, Any] | None
    watchers: list[dict[str, Any]]  # watchers that look alive

    def lines(self) -> list[str]:
        s = self.states
        out = [
            f"workspace: {self.home}",
            f"database:  {self.db_path}",
            f"inbox:     {self.inbox}  ({self.waiting} file(s) waiting)",
            "files:     " + ", ".join(f"{k} {s.get(k, 0)}" for k in
                                      ("queued", "processing", "done", "duplicate", "failed")),
        ]
        if self.done_by_status:
            out.append("           done: " + ", ".join(f"{k} {v}" for k, v in sorted(self.done_by_status.items())))
        b = self.last_batch
        if b is None:
            out.append("last batch: never ran")
        else:
            if b.get("finished_at"):
                code = b.get("exit_code")
                meaning = EXIT_MEANING.get(ExitCode(code), "") if code in {int(c) for c in ExitCode} else ""
                out.append(f"last batch: {_t(b['started_at'])} -> {_t(b['finished_at'])}, exit {code} ({meaning})")
            elif b.get("alive"):
                out.append(f"last batch: running since {_t(b['started_at'])} (pid {b.get('pid')})")
            else:
                out.append(f"last batch: started {_t(b['started_at'])} and did not finish (killed or crashed; "
                           "its files are taken over by the next run)")
            summary = b.get("summary") or {}
            if summary:
                out.append("           " + ", ".join(f"{k} {v}" for k, v in summary.items() if v))
            if b.get("message"):
                out.append(f"           {b['message']}")
            if b.get("report_path"):
                out.append(f"           report: {b['report_path']}")
        if self.watchers:
            for w in self.watchers:
                out.append(f"watcher:   running since {_t(w['started_at'])} (pid {w['pid']} on {w['host']})")
        else:
            out.append("watcher:   not running")
        if self.last_errors:
            out.append("last errors:")
            for e in self.last_errors:
                out.append(f"  {_t(e['finished_at'] or e['claimed_at'])}  {e['dest'] or e['original_name']}")
                if e.get("error_ja"):
                    out.append(f"      {e['error_ja']}")
                out.append(f"      {e.get('error_en') or ''}")
        return out


def iter_flagged(records: Iterable[Any], limit: int = 200) -> tuple[FlaggedField, ...]:
    """FlaggedField for every value not ok (header first), at most ``limit``."""
    out: list[FlaggedField] = []
    for r in records:
        values = list(r.header.values()) + [v for row in r.rows for v in row.values()]
        for v in values:
            if v.status != "ok":
                out.append(FlaggedField(page=r.page_index + 1, name=v.name, text=v.text or v.raw_text,
                                        reasons=tuple(v.reasons)))
                if len(out) >= limit:
                    return tuple(out)
    return tuple(out)
