"""Logging: ``logs/faxflow.log`` (rotating), one English line per file.

Worker processes do not write the log file themselves (two processes rotating one
file lose lines): they send their records through a queue to the parent, which
writes them (:func:`worker_logging` / :func:`start_listener`).

A line per file, e.g.::

    2026-11-23 02:00:05 +0900 INFO  [4711] done      review        2 pages  34 fields   3 flagged   1.8 s  注文書 1.pdf -> archive/2026-11-23/注文書 1.pdf
    2026-11-23 02:00:06 +0900 WARNING [4711] failed    corrupt       0 pages   0 fields   0 flagged   0.1 s  scan7.pdf -> failed/scan7.pdf: the PDF is damaged ...
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import IO, Any, Callable

from faxflow.ingest.report import FileOutcome, reason_en

LOGGER_NAME = "faxflow"
LOG_FILE = "faxflow.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 10  # faxflow.log.1 ... .10: about 50 MB, months of nights
FILE_FORMAT = "%(asctime)s %(levelname)-7s [%(process)d] %(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"

_TAG = "_faxflow_handler"


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def setup_logging(logs_dir: Path | None, *, console: bool | IO[str] = False,
                  level: int = logging.INFO) -> logging.Logger:
    """Send the ``faxflow`` logger to ``logs_dir/faxflow.log`` and, if asked, to the
    console (``True``: stderr). Calling it again replaces the handlers it added."""
    logger = get_logger()
    for h in list(logger.handlers):
        if getattr(h, _TAG, False):
            logger.removeHandler(h)
            h.close()
    logger.setLevel(level)
    logger.propagate = False
    if logs_dir is not None:
        Path(logs_dir).mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(Path(logs_dir) / LOG_FILE, maxBytes=MAX_BYTES,
                                                  backupCount=BACKUP_COUNT, encoding="utf-8", delay=True)
        fh.setFormatter(logging.Formatter(FILE_FORMAT, DATE_FORMAT))
        setattr(fh, _TAG, True)
        logger.addHandler(fh)
    if console:
        stream = sys.stderr if console is True else console
        ch = logging.StreamHandler(stream)
        ch.setFormatter(logging.Formatter(CONSOLE_FORMAT, DATE_FORMAT))
        setattr(ch, _TAG, True)
        logger.addHandler(ch)
    return logger


def ensure_file_logging(logs_dir: Path) -> Callable[[], None]:
    """Make sure ``logs_dir/faxflow.log`` gets the ``faxflow`` records (a library caller
    may not have called :func:`setup_logging`); returns a function that undoes it."""
    logger = get_logger()
    target = (Path(logs_dir) / LOG_FILE).resolve()
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == target:
            return lambda: None
    Path(logs_dir).mkdir(parents=True, exist_ok=True)
    fh = logging.handlers.RotatingFileHandler(target, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                              encoding="utf-8", delay=True)
    fh.setFormatter(logging.Formatter(FILE_FORMAT, DATE_FORMAT))
    old_level = logger.level
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(fh)

    def undo() -> None:
        logger.removeHandler(fh)
        fh.close()
        logger.setLevel(old_level)

    return undo


def close_logging() -> None:
    logger = get_logger()
    for h in list(logger.handlers):
        if getattr(h, _TAG, False):
            logger.removeHandler(h)
            h.close()


def outcome_line(o: FileOutcome) -> str:
    """One line per file: state, status, numbers, time, name -> where it went."""
    what = (o.error_code or o.status) if o.state in ("failed", "released") else o.status
    line = (f"{o.state:9} {what:13} {o.pages:3d} pages {o.fields:4d} fields {o.flagged:4d} flagged "
            f"{o.duration_s:6.1f} s  {o.name}")
    if o.dest:
        line += f" -> {o.dest}"
    if o.attempts > 1:
        line += f" (attempt {o.attempts})"
    if o.error_en and o.state in ("failed", "released"):
        line += f": {reason_en(o)}"
    return line


def log_outcome(o: FileOutcome, logger: logging.Logger | None = None) -> None:
    logger = logger or get_logger()
    level = logging.WARNING if o.state in ("failed", "released") else logging.INFO
    if o.state == "abandoned":
        level = logging.DEBUG
    logger.log(level, outcome_line(o))


# ------------------------------------------------------------------ worker processes --

def worker_logging(queue: Any, level: int = logging.INFO) -> None:
    """In a worker process: every ``faxflow`` record goes to the parent through ``queue``."""
    logger = get_logger()
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.handlers.QueueHandler(queue)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class _ToLogger(logging.Handler):
    """Re-emit records that came from a worker through the parent's handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = get_logger()
        for h in logger.handlers:
            if record.levelno >= h.level:
                h.handle(record)


def start_listener(queue: Any) -> logging.handlers.QueueListener:
    listener = logging.handlers.QueueListener(queue, _ToLogger(), respect_handler_level=False)
    listener.start()
    return listener
