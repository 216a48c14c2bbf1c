"""process_file(): the chain of stages for one file. It reads like the list.

    identify -> load_pages -> clean -> match -> align -> crop -> read -> parse -> rules -> store

``Pipeline`` holds what is expensive to set up (templates, reference features, the
Tesseract API, the digit model) and is created once per worker process.
It does not move files: the batch/watcher layer claims, archives and sets aside.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from faxflow.ingest.settings import Settings
from faxflow.templates.errors import FaxflowError
from faxflow.templates.types import Record, SourceFile


@dataclass
class DocumentResult:
    """Outcome of one file. ``status``: ok | review | unknown_form | failed | duplicate."""

    path: Path
    status: str
    source: SourceFile | None = None
    records: list[Record] = field(default_factory=list)
    error: FaxflowError | None = None
    duration_s: float = 0.0
    document_id: int | None = None

    @property
    def pages(self) -> int:
        return len(self.records)

    @property
    def fields(self) -> int:
        return sum(len(r.header) + sum(len(row) for row in r.rows) for r in self.records)

    @property
    def flagged(self) -> int:
        n = 0
        for r in self.records:
            values = list(r.header.values()) + [v for row in r.rows for v in row.values()]
            n += sum(1 for v in values if v.status != "ok")
        return n
