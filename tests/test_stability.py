"""The stability rules, on their own: when is a file in the inbox complete?"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from faxflow.ingest.stability import StabilityTracker, candidates, is_ignored


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


P = Path("inbox/a.pdf")


def test_unchanged_for_stable_seconds_is_ready():
    tr = StabilityTracker(2.0)
    tr.update(P, 100, 5, now=0.0)
    assert tr.ready(1.9) == []
    tr.update(P, 100, 5, now=1.9)  # same signature: the clock keeps running
    assert tr.ready(2.0) == [P]


def test_growing_file_restarts_the_clock():
    tr = StabilityTracker(2.0)
    for i, t in enumerate([0.0, 1.0, 2.0, 3.0]):
        tr.update(P, 100 * (i + 1), 5, now=t)
        assert tr.ready(t) == []
    assert tr.ready(4.9) == []
    assert tr.ready(5.0) == [P]


def test_mtime_change_with_same_size_restarts_the_clock():
    # Windows copies preallocate the full size; only the time moves while it writes.
    tr = StabilityTracker(2.0)
    tr.update(P, 4096, 1_000, now=0.0)
    tr.update(P, 4096, 2_000, now=1.5)
    assert tr.ready(3.0) == []
    assert tr.ready(3.5) == [P]


def test_next_ready_in_says_how_long_to_sleep():
    tr = StabilityTracker(2.0, complete=None)
    assert tr.next_ready_in(0.0) is None
    tr.update(P, 1, 1, now=0.0)
    tr.update(Path("b.pdf"), 1, 1, now=1.5)
    assert tr.next_ready_in(0.5) == 1.5
    assert tr.next_ready_in(2.5) == 1.0  # P is ready; b.pdf in 1 s
    assert tr.next_ready_in(4.0) is None


def test_forget_and_unknown_paths():
    tr = StabilityTracker(0.0)
    tr.update(P, 1, 1, now=0.0)
    assert P in tr and len(tr) == 1
    tr.forget(P)
    tr.forget(P)
    assert tr.ready(10.0) == [] and len(tr) == 0


def test_poll_on_a_real_growing_file(tmp_path):
    clock = Clock()
    f = tmp_path / "scan.pdf"
    f.write_bytes(b"x" * 10)
    tr = StabilityTracker(1.0, clock=clock)
    assert tr.poll([f]) == []
    clock.t += 0.6
    with open(f, "ab") as fh:
        fh.write(b"y" * 10)
    assert tr.poll([f]) == []
    clock.t += 0.6  # 0.6 s since the last change
    assert tr.poll([f]) == []
    clock.t += 0.5
    assert tr.poll([f]) == [f]
    assert tr.poll() == [f]  # stays ready until the caller forgets it


def test_locked_file_is_not_taken_until_it_can_be_opened(tmp_path):
    clock = Clock()
    f = tmp_path / "scan.tif"
    f.write_bytes(b"II*\x00data")
    locked = {f}
    tr = StabilityTracker(0.5, clock=clock, opener=lambda p: p not in locked)
    tr.poll([f])
    clock.t += 5
    assert tr.poll([f]) == []  # stable, but a copier still holds it
    locked.clear()
    assert tr.poll([f]) == [f]


def test_vanished_file_is_forgotten(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"1")
    tr = StabilityTracker(0.0)
    tr.poll([f])
    f.unlink()
    assert tr.poll() == [] and f not in tr


def test_can_open_is_false_for_a_missing_or_unreadable_file(tmp_path):
    from faxflow.ingest.stability import can_open

    f = tmp_path / "a.png"
    assert not can_open(f)
    f.write_bytes(b"1")
    assert can_open(f)


@pytest.mark.parametrize("name", [
    "~$注文書.xlsx", "~WRL0001.tmp", "scan.tmp", "scan.TMP", "scan.pdf.part", "scan.pdf.crdownload",
    "upload.pdf.filepart", "Thumbs.db", "thumbs.db", "desktop.ini", "Desktop.ini", ".DS_Store", ".hidden.pdf",
    "._scan.pdf", "注文書.pdf.error.txt", "scan.partial",
])
def test_ignored_names(name):
    assert is_ignored(name)


@pytest.mark.parametrize("name", [
    "注文書 1.pdf", "FAX_20261123_0001.tif", "scan.PNG", "a.jpeg", "noext", "report.txt", "part.pdf",
    "tmp.pdf", "error.txt.pdf",
])
def test_documents_are_not_ignored(name):
    assert not is_ignored(name)


def test_candidates_lists_only_regular_visible_files_oldest_first(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.pdf").write_bytes(b"1")
    for name in ["b.pdf", "a 注文.png", "x.tmp", ".hidden", "Thumbs.db"]:
        (tmp_path / name).write_bytes(b"1")
    now = time.time()
    os.utime(tmp_path / "b.pdf", (now - 100, now - 100))
    os.utime(tmp_path / "a 注文.png", (now - 50, now - 50))
    assert [p.name for p in candidates(tmp_path)] == ["b.pdf", "a 注文.png"]
    assert candidates(tmp_path / "missing") == []


def test_a_whole_file_is_taken_after_the_quick_wait_a_truncated_one_after_the_full():
    tr = StabilityTracker(2.0, quick_seconds=0.5)
    whole, cut = Path("whole.tif"), Path("cut.tif")
    tr.update(whole, 10, 1, now=0.0)
    tr.update(cut, 10, 1, now=0.0)
    assert tr.next_ready_in(0.0) == 0.5  # time to look at them
    assert set(tr.to_check(0.6)) == {whole, cut}
    tr.mark_complete(whole, True)
    tr.mark_complete(cut, False)
    assert tr.ready(0.6) == [whole]
    assert tr.next_ready_in(0.6) == pytest.approx(1.4)  # the truncated one waits the full 2 s
    assert set(tr.ready(2.0)) == {whole, cut}
    tr.update(whole, 20, 2, now=2.1)  # it grew after all: judged again from scratch
    assert whole not in tr.ready(2.2)


def _formats(tmp_path):
    """(name, whole bytes) of one file per accepted format, written by the real libraries."""
    import io

    import numpy as np
    from PIL import Image

    img = Image.fromarray(np.where(np.indices((200, 160)).sum(axis=0) % 7 == 0, 0, 255).astype(np.uint8))
    out = []
    for name, kw in (("a.pdf", dict(format="PDF")), ("a.jpg", dict(format="JPEG")), ("a.png", dict(format="PNG")),
                     ("a.tif", dict(format="TIFF", compression="group4")),
                     ("b.tif", dict(format="TIFF", save_all=True, append_images=[img.copy()], compression="tiff_lzw"))):
        buf = io.BytesIO()
        (img.convert("1") if "group4" in kw.values() else img).save(buf, **kw)
        out.append((name, buf.getvalue()))
    return out


def test_looks_complete_on_whole_and_truncated_files(tmp_path):
    from faxflow.ingest.stability import looks_complete

    for name, data in _formats(tmp_path):
        whole = tmp_path / name
        whole.write_bytes(data)
        assert looks_complete(whole), name
        for keep in (0.5, 0.9):  # a copy still under way
            part = tmp_path / ("part_" + name)
            part.write_bytes(data[: int(len(data) * keep)])
            assert not looks_complete(part), (name, keep)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert not looks_complete(other)  # unknown formats always wait the full time
