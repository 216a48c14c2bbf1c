"""One list of errors and exit codes.

Every error a clerk or IT helper can see carries a Japanese reason (``ja``) and an
English one (``en``), names the file/page/template/field where it applies, and
chains its cause (``raise ... from exc``). ``permanent`` errors send the file to
``failed/``; transient ones (locks, a file still being copied) are retried.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FILES_FAILED = 1  # the run finished, some files went to failed/
    CANNOT_RUN = 2  # bad config, missing templates, locked workspace, missing Tesseract
    BAD_TEMPLATE = 3  # templates check found errors
    INTERRUPTED = 130


class FaxflowError(Exception):
    """Base error. ``ja``/``en`` are the reasons shown to people."""

    code: str = "error"
    permanent: bool = True
    exit_code: ExitCode = ExitCode.FILES_FAILED

    def __init__(self, en: str, ja: str | None = None, *, file: str | None = None,
                 page: int | None = None, template: str | None = None, field: str | None = None):
        self.en = en
        self.ja = ja or en
        self.file = file
        self.page = page
        self.template = template
        self.field = field
        super().__init__(self._where() + en)

    def _where(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.page is not None:
            parts.append(f"page {self.page}")
        if self.template:
            parts.append(f"template {self.template}")
        if self.field:
            parts.append(f"field {self.field}")
        return (", ".join(parts) + ": ") if parts else ""

    def reason_text(self) -> str:
        """The two-language text written to ``<name>.error.txt``."""
        return f"{self.ja}\n{self.en}\n"


class InputError(FaxflowError):
    """The file cannot be read as a document (permanent)."""

    code = "bad_input"


class UnsupportedFile(InputError):
    code = "unsupported"


class EmptyFile(InputError):
    code = "empty"


class CorruptFile(InputError):
    code = "corrupt"


class EncryptedPdf(InputError):
    code = "encrypted"


class ImageTooLarge(InputError):
    code = "too_large"


class TransientError(FaxflowError):
    """Worth retrying later: a lock, a file still being written."""

    code = "transient"
    permanent = False


class TemplateError(FaxflowError):
    code = "template"
    exit_code = ExitCode.BAD_TEMPLATE


class ConfigError(FaxflowError):
    code = "config"
    exit_code = ExitCode.CANNOT_RUN


class EngineError(FaxflowError):
    """OCR engine missing or broken (Tesseract data not installed, model file missing)."""

    code = "engine"
    exit_code = ExitCode.CANNOT_RUN
    permanent = False
