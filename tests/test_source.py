"""identify(): kind by content, streamed sha256, errors a clerk can act on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faxflow.ingest.source import identify, sniff_kind
from faxflow.templates.errors import EmptyFile, TransientError, UnsupportedFile


def _write_image(path: Path, fmt: str, **kw) -> Path:
    Image.fromarray(np.full((40, 30), 200, np.uint8)).save(path, fmt, **kw)
    return path


@pytest.mark.parametrize(
    "name,fmt,kind",
    [
        ("scan.pdf", "PDF", "pdf"),
        ("fax.tif", "TIFF", "tiff"),
        ("photo.png", "PNG", "png"),
        ("photo.jpg", "JPEG", "jpeg"),
        # the extension lies: content decides
        ("really_a_png.tif", "PNG", "png"),
        ("really_a_pdf.jpg", "PDF", "pdf"),
        ("no_extension", "TIFF", "tiff"),
    ],
    ids=lambda v: str(v),
)
def test_kind_from_content(tmp_path, name, fmt, kind):
    path = _write_image(tmp_path / name, fmt)
    src = identify(path)
    assert src.kind == kind
    assert src.path == path
    assert src.size == path.stat().st_size
    assert src.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert src.name == name


def test_sha256_streamed_over_several_chunks(tmp_path):
    path = tmp_path / "big.pdf"
    data = b"%PDF-1.4\n" + bytes(range(256)) * 20000  # ~5 MB, several 1 MiB chunks
    path.write_bytes(data)
    src = identify(path)
    assert src.sha256 == hashlib.sha256(data).hexdigest()
    assert src.size == len(data)


def test_pdf_header_after_junk(tmp_path):
    path = tmp_path / "fax.pdf"
    path.write_bytes(b"FAXSERVER 1.0\r\n%PDF-1.4\n...")
    assert identify(path).kind == "pdf"


def test_big_endian_and_bigtiff_magic():
    assert sniff_kind(b"MM\x00*" + b"\0" * 10) == "tiff"
    assert sniff_kind(b"II+\x00" + b"\0" * 10) == "tiff"
    assert sniff_kind(b"GIF89a") is None


def test_empty_file(tmp_path):
    path = tmp_path / "fax0001.tif"
    path.write_bytes(b"")
    with pytest.raises(EmptyFile) as ei:
        identify(path)
    err = ei.value
    assert err.file == "fax0001.tif"
    assert "fax0001.tif" in err.ja and "空" in err.ja
    assert "empty" in err.en
    assert err.permanent


def test_text_file_named_tif(tmp_path):
    path = tmp_path / "order.tif"
    path.write_text("this is not an image\n", encoding="utf-8")
    with pytest.raises(UnsupportedFile) as ei:
        identify(path)
    err = ei.value
    assert err.file == "order.tif"
    assert "order.tif" in err.ja and "PDF" in err.ja
    assert "order.tif" in str(err)


def test_directory_is_unsupported(tmp_path):
    d = tmp_path / "folder.pdf"
    d.mkdir()
    with pytest.raises(UnsupportedFile):
        identify(d)


def test_missing_file_is_transient(tmp_path):
    with pytest.raises(TransientError) as ei:
        identify(tmp_path / "gone.pdf")
    assert not ei.value.permanent
    assert ei.value.file == "gone.pdf"
