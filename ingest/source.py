"""identify(): an inbox file -> SourceFile(path, sha256, kind, size).

The kind comes from the file's first bytes (its "magic"), never from the extension:
FAX servers and scanners name files freely (``.tif`` that is really a PDF, ``.dat``,
no extension at all), and a wrong extension must not decide how a file is read.

The hash is streamed, so a large PDF is never held in memory. It is the document's
identity for the whole pipeline (duplicates, provenance, SQLite keys).
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from faxflow.templates.errors import EmptyFile, TransientError, UnsupportedFile
from faxflow.templates.types import SourceFile

KINDS = ("pdf", "tiff", "png", "jpeg")

_CHUNK = 1 << 20
# A PDF header may legally be preceded by junk (some FAX servers prepend a line);
# readers accept "%PDF-" anywhere in the first 1024 bytes.
_PDF_SEARCH = 1024


def sniff_kind(head: bytes) -> str | None:
    """The kind of a file from its first bytes (at least 1024 of them when available)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    # Classic TIFF (II*\0 / MM\0*) and BigTIFF (II+\0 / MM\0+).
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if b"%PDF-" in head[:_PDF_SEARCH]:
        return "pdf"
    return None


def identify(path: Path) -> SourceFile:
    """Hash the file and tell its kind by content.

    Raises ``EmptyFile`` for a 0-byte file, ``UnsupportedFile`` for anything that is
    not a PDF, TIFF, PNG or JPEG (or not a regular file), and ``TransientError`` when
    the file cannot be read right now (removed or locked while we looked at it).
    """
    path = Path(path)
    name = path.name
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise UnsupportedFile(
                "not a regular file (a folder or a device); only PDF, TIFF, PNG and JPEG files can be read",
                f"「{name}」はファイルではありません（フォルダなど）。PDF・TIFF・PNG・JPEG のファイルを受信フォルダに入れてください。",
                file=name,
            )
        digest = hashlib.sha256()
        head = b""
        size = 0
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                if len(head) < _PDF_SEARCH:
                    head += chunk[: _PDF_SEARCH - len(head)]
                digest.update(chunk)
                size += len(chunk)
    except (FileNotFoundError, PermissionError) as exc:
        raise TransientError(
            f"cannot read the file right now ({exc.strerror or exc}); it will be tried again",
            f"「{name}」を今は読み込めません（移動中・使用中の可能性）。しばらくして自動で再試行します。",
            file=name,
        ) from exc
    except IsADirectoryError as exc:  # pragma: no cover - caught by the S_ISREG check
        raise UnsupportedFile("not a regular file", f"「{name}」はファイルではありません。", file=name) from exc

    if size == 0:
        raise EmptyFile(
            "the file is empty (0 bytes); the FAX or scan was probably not saved completely - send or scan it again",
            f"「{name}」は中身が空（0バイト）です。受信または保存が途中で失敗した可能性があります。"
            "送信元に再送を依頼するか、もう一度スキャンしてください。",
            file=name,
        )
    kind = sniff_kind(head)
    if kind is None:
        raise UnsupportedFile(
            f"not a PDF, TIFF, PNG or JPEG file (the content does not match any of them, whatever its name "
            f"'{path.suffix}' says); save the FAX or scan as PDF, TIFF, PNG or JPEG",
            f"「{name}」は PDF・TIFF・PNG・JPEG のいずれでもありません（拡張子ではなく中身で判定しています）。"
            "複合機や FAX ソフトの保存形式を PDF・TIFF・PNG・JPEG のどれかにして、もう一度保存してください。",
            file=name,
        )
    return SourceFile(path=path, sha256=digest.hexdigest(), kind=kind, size=size)
