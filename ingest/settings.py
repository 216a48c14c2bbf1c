"""Settings: read once, at the edge (CLI / config file), into frozen objects.

Nothing under ``ocr/`` or ``templates/`` reads ``os.environ``; they receive these
objects (or plain arguments) from ``ingest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def default_jobs() -> int:
    """Worker processes when nothing is configured: one per CPU core, at most 4 (each
    holds its own OCR models and page images, up to ~0.6 GB). Measured on the 2-core
    development machine: 10-row order sheets at 33.6 pages/min with 1 worker, 62.5 with
    2 (bench/bench_pipeline.py)."""
    import os

    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class OcrSettings:
    languages: str = "jpn"  # Tesseract language(s) for free text; jpn also reads Latin letters and digits
    tessdata: Path | None = None  # None: let tesserocr find the system tessdata
    review_threshold: float = 0.80  # printed fields below this confidence are flagged
    handwriting_threshold: float = 0.90  # handwritten fields below this are flagged
    # Free text has no pattern or cross-check, and Tesseract drops dakuten (ピ->ヒ) on FAXed
    # kana with 0.9+ confidence. Calibrated with faxflow eval on generated samples: 0.98 cut
    # wrong-but-ok text values from 29 to 4 of 509 while 199 of 292 right ones stay ok.
    text_threshold: float = 0.98
    # PP-OCR (ocr/engines/ppocr.py) as a second printed reader beside Tesseract: more
    # values right, fewer agreeing misreads unchecked, ~0.6 s more per page
    second_engine: bool = True
    pdf_dpi: int = 300  # rasterisation of PDF pages
    max_pixels: int = 120_000_000  # larger pages are refused (decompression bombs)


@dataclass(frozen=True)
class Settings:
    home: Path  # the workspace
    db_path: Path
    inbox: Path
    processing: Path
    archive: Path
    failed: Path
    exports: Path
    templates_dir: Path | None  # user templates (beside the shipped ones)
    logs: Path
    ocr: OcrSettings = field(default_factory=OcrSettings)
    keep_work: Path | None = None  # write p001_clean.png, p001_aligned.png, p001_<field>.png here
    poll_interval: float = 2.0  # seconds between folder scans when polling
    stable_seconds: float = 2.0  # size and mtime unchanged this long before a file is taken
    export_encoding: str = "utf-8-sig"  # or "cp932"
    jobs: int = field(default_factory=lambda: default_jobs())  # one worker per CPU core, at most 4
    # Inbox, batch and watcher (ingest/queue.py, batch.py, watch.py; faxflow.toml [watch] [batch] [export]).
    poll: bool = False  # scan the inbox every poll_interval instead of OS notifications (network shares)
    max_attempts: int = 3  # tries per file (transient errors, interrupted runs) before it goes to failed/
    retry_backoff: float = 2.0  # first wait before retrying a transient error; doubles, at most 60 s
    stale_after: float = 1800.0  # a claim in processing/ this old is taken over even if its process seems alive
    lock_wait: float = 10.0  # a second 'faxflow run' waits this long for the first, then exits 2
    export_after_run: bool = False  # 'faxflow run' also writes the CSV hand-off of new rows
    export_kinds: tuple[str, ...] = ("order", "ledger")
    export_only_new: bool = True  # hand off only rows not exported before (and mark them exported)
    export_statuses: tuple[str, ...] | None = None  # e.g. ("ok",): only checked rows; None: all
    config_path: Path | None = None  # the faxflow.toml these settings were read from, if any
    # Page images for the review page (the aligned page the field boxes refer to), one
    # folder per file: <pages_dir>/<sha256 first 16>/p001.png. None: "pages/" beside the database.
    pages_dir: Path | None = None

    @property
    def page_images_dir(self) -> Path:
        return Path(self.pages_dir) if self.pages_dir is not None else Path(self.db_path).parent / "pages"

    @classmethod
    def for_home(cls, home: Path, **overrides) -> "Settings":
        home = Path(home)
        base = dict(
            home=home,
            db_path=home / "faxflow.db",
            inbox=home / "inbox",
            processing=home / "processing",
            archive=home / "archive",
            failed=home / "failed",
            exports=home / "exports",
            templates_dir=home / "templates",
            logs=home / "logs",
        )
        base.update(overrides)
        return cls(**base)
