"""Settings: read once, at the edge (CLI / config file), into frozen objects.

Nothing under ``ocr/`` or ``templates/`` reads ``os.environ``; they receive these
objects (or plain arguments) from ``ingest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class OcrSettings:
    languages: str = "jpn"  # Tesseract language(s) for free text; jpn also reads Latin letters and digits
    tessdata: Path | None = None  # None: let tesserocr find the system tessdata
    review_threshold: float = 0.80  # printed fields below this confidence are flagged
    handwriting_threshold: float = 0.90  # handwritten fields below this are flagged
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
    jobs: int = 1

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
