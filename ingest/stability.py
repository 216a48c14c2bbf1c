"""When may a file in the inbox be taken? Pure logic, tested on its own.

A scanner, a copier or a clerk dragging files onto a network share writes the file
over a while. A file is *stable* once its size and modification time have not
changed for ``stable_seconds`` **and** it can be opened for reading (on Windows the
program still writing it holds a lock). Temporary and system files are never taken
(:func:`is_ignored`).

A file whose format shows it is whole (:func:`looks_complete`: a PDF's final
``%%EOF``, a JPEG's end marker, a PNG's ``IEND``, a TIFF whose every page's data lies
inside the file) is taken after ``quick_seconds`` unchanged instead: the one-page FAX
a FAX server drops in one write is read a second after it lands, while a file still
being copied (truncated, so not whole) waits the full ``stable_seconds``. (A multi-page
TIFF written page by page looks whole between pages: a writer pausing over a second
there is the one case this takes early, as ``stable_seconds`` would after a longer
pause.)

The tracker does not read the clock or the disk unless asked: :meth:`update` and
:meth:`ready` take the time and the file signature as arguments, so the rules can be
tested without sleeping; :meth:`poll` is the thin impure wrapper the watcher and the
batch call (it stats the files and tries to open the ready ones).
"""

from __future__ import annotations

import fnmatch
import os
import struct
import stat as stat_mod
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

# Compared in lower case: Windows and most NAS shares are case-insensitive.
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "ehthumbs.db"})
IGNORED_PATTERNS = (
    "~$*",  # Office lock files
    "~*.tmp",
    "*.tmp",
    "*.temp",
    "*.part",  # browsers, curl, rsync --partial-dir
    "*.partial",
    "*.crdownload",  # Chrome
    "*.filepart",  # WinSCP uploads
    "*.error.txt",  # our own reason files
    ".*",  # hidden (Unix), .~lock.* (LibreOffice), .DS_Store, ._* (macOS)
)


def is_ignored(name: str) -> bool:
    """True for temporary/system files and our own ``*.error.txt`` files."""
    low = name.lower()
    if low in IGNORED_NAMES:
        return True
    return any(fnmatch.fnmatchcase(low, pattern) for pattern in IGNORED_PATTERNS)


def is_hidden(st: os.stat_result) -> bool:
    """Windows hidden/system attribute (names starting with '.' are covered by is_ignored)."""
    attrs = getattr(st, "st_file_attributes", 0)
    return bool(attrs & (getattr(stat_mod, "FILE_ATTRIBUTE_HIDDEN", 2) | getattr(stat_mod, "FILE_ATTRIBUTE_SYSTEM", 4)))


def can_open(path: Path) -> bool:
    """Can the file be opened and read? False while another program holds a lock."""
    try:
        with open(path, "rb") as fh:
            fh.read(1)
        return True
    except OSError:
        return False


def candidates(folder: Path) -> list[Path]:
    """Regular, non-ignored, non-hidden files directly in ``folder``, oldest first."""
    found: list[tuple[int, str, Path]] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        if is_ignored(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # vanished between listing and stat
        if is_hidden(st):
            continue
        found.append((st.st_mtime_ns, entry.name, Path(entry.path)))
    found.sort()
    return [p for _, _, p in found]


def looks_complete(path: Path) -> bool:
    """Does the file's own structure show it was written to the end? False when unsure
    (an unknown format, BigTIFF, a read error): the caller then waits the full time."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head.startswith(b"%PDF"):
                fh.seek(max(0, size - 2048))
                return b"%%EOF" in fh.read()
            if head.startswith(b"\xff\xd8"):
                fh.seek(max(0, size - 32))
                return fh.read().rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9")
            if head.startswith(b"\x89PNG"):
                fh.seek(max(0, size - 12))
                return fh.read()[-8:-4] == b"IEND"
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff_complete(fh, size, "<" if head[:2] == b"II" else ">")
    except (OSError, struct.error, ValueError):
        return False
    return False


# TIFF tags holding where a page's pixel data is and how long it is
_TIFF_DATA = {273: 279, 324: 325}  # StripOffsets -> StripByteCounts, TileOffsets -> TileByteCounts
_TIFF_SIZES = {3: 2, 4: 4, 16: 8}  # SHORT, LONG, LONG8


def _tiff_complete(fh, size: int, e: str) -> bool:
    fh.seek(4)
    ifd = struct.unpack(e + "I", fh.read(4))[0]
    pages, seen = 0, set()
    while ifd:
        if ifd in seen or ifd + 2 > size or pages > 10_000:
            return False
        seen.add(ifd)
        fh.seek(ifd)
        n = struct.unpack(e + "H", fh.read(2))[0]
        if ifd + 2 + 12 * n + 4 > size:
            return False
        tags = {}
        for _ in range(n):
            tag, typ, count, raw = struct.unpack(e + "HHI4s", fh.read(12))
            tags[tag] = (typ, count, raw)
        ifd = struct.unpack(e + "I", fh.read(4))[0]
        pos = fh.tell()
        for off_tag, len_tag in _TIFF_DATA.items():
            if off_tag not in tags or len_tag not in tags:
                continue
            offsets, lengths = _tiff_values(fh, e, *tags[off_tag]), _tiff_values(fh, e, *tags[len_tag])
            if offsets is None or lengths is None:
                return False
            if any(o + n_ > size for o, n_ in zip(offsets, lengths)):
                return False
        fh.seek(pos)
        pages += 1
    return pages > 0


def _tiff_values(fh, e: str, typ: int, count: int, raw: bytes) -> list[int] | None:
    width = _TIFF_SIZES.get(typ)
    if width is None or width == 8:
        return None
    fmt = e + ("H" if width == 2 else "I") * count
    if width * count <= 4:
        return list(struct.unpack(fmt, raw[: width * count]))
    fh.seek(struct.unpack(e + "I", raw)[0])
    data = fh.read(width * count)
    if len(data) < width * count:
        return None
    return list(struct.unpack(fmt, data))


QUICK_SECONDS = 1.0  # a file whose format shows it whole is taken after this long unchanged


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # clock time at which this (size, mtime) was first seen
    complete: bool | None = None  # the format shows the file whole (None: not looked yet)


class StabilityTracker:
    """Remembers each candidate file's (size, mtime) and since when it is unchanged."""

    def __init__(self, stable_seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 opener: Callable[[Path], bool] = can_open,
                 stat: Callable[[Path], os.stat_result] = os.stat,
                 quick_seconds: float | None = None,
                 complete: Callable[[Path], bool] | None = looks_complete):
        self.stable_seconds = float(stable_seconds)
        # a whole file (by its format) is taken after this; None / complete=None: never early
        self.quick_seconds = min(self.stable_seconds, QUICK_SECONDS if quick_seconds is None else quick_seconds)
        self.complete = complete
        self.clock = clock
        self.opener = opener
        self.stat = stat
        self._seen: dict[Path, _Seen] = {}

    # -- pure part -------------------------------------------------------------------------------
    def update(self, path: Path, size: int, mtime_ns: int, now: float) -> None:
        """Record an observation; a changed size or mtime restarts the clock."""
        seen = self._seen.get(path)
        if seen is None or seen.size != size or seen.mtime_ns != mtime_ns:
            self._seen[path] = _Seen(size, mtime_ns, now)

    def mark_complete(self, path: Path, complete: bool) -> None:
        """Record whether the file, as it is now, looks whole (see :func:`looks_complete`)."""
        seen = self._seen.get(path)
        if seen is not None:
            seen.complete = complete

    def _needs(self, s: _Seen) -> float:
        return self.quick_seconds if (s.complete or (s.complete is None and self.complete)) \
            else self.stable_seconds

    def ready(self, now: float) -> list[Path]:
        """Paths unchanged for at least ``stable_seconds``, or ``quick_seconds`` when
        marked complete."""
        return [p for p, s in self._seen.items()
                if now - s.since >= self.stable_seconds or (s.complete and now - s.since >= self.quick_seconds)]

    def to_check(self, now: float) -> list[Path]:
        """Paths unchanged for ``quick_seconds`` whose completeness is not known yet."""
        if self.complete is None:
            return []
        return [p for p, s in self._seen.items()
                if s.complete is None and self.quick_seconds <= now - s.since < self.stable_seconds]

    def next_ready_in(self, now: float) -> float | None:
        """Seconds until the next tracked file becomes stable (or due for its completeness
        check) if nothing changes (None if every tracked file is already due, or none is
        tracked): the watcher sleeps exactly that long instead of polling on a fixed tick."""
        waits = [s.since + self._needs(s) - now for s in self._seen.values()]
        waits += [s.since + self.stable_seconds - now for s in self._seen.values() if s.complete is False]
        waits = [w for w in waits if w > 0]
        return min(waits) if waits else None

    def unchanged_for(self, path: Path, now: float) -> float:
        seen = self._seen.get(path)
        return 0.0 if seen is None else now - seen.since

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def __contains__(self, path: object) -> bool:
        return path in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    @property
    def paths(self) -> list[Path]:
        return list(self._seen)

    # -- impure wrapper ------------------------------------------------------------------------
    def poll(self, paths: Iterable[Path] | None = None) -> list[Path]:
        """Stat ``paths`` (default: those tracked), return the ones stable and readable.

        Returned paths stay tracked until :meth:`forget` (the caller forgets a path once
        it has claimed it). Vanished paths are forgotten.
        """
        now = self.clock()
        todo = list(self._seen) if paths is None else list(paths)
        for path in todo:
            try:
                st = self.stat(path)
            except OSError:
                self.forget(path)
                continue
            self.update(path, st.st_size, st.st_mtime_ns, now)
        if self.complete is not None:
            for path in self.to_check(now):
                self.mark_complete(path, bool(self.complete(path)))
        wanted = set(todo)
        return [p for p in self.ready(now) if p in wanted and self.opener(p)]
