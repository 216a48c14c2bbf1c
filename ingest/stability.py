"""When may a file in the inbox be taken? Pure logic, tested on its own.

A scanner, a copier or a clerk dragging files onto a network share writes the file
over a while. A file is *stable* once its size and modification time have not
changed for ``stable_seconds`` **and** it can be opened for reading (on Windows the
program still writing it holds a lock). Temporary and system files are never taken
(:func:`is_ignored`).

The tracker does not read the clock or the disk unless asked: :meth:`update` and
:meth:`ready` take the time and the file signature as arguments, so the rules can be
tested without sleeping; :meth:`poll` is the thin impure wrapper the watcher and the
batch call (it stats the files and tries to open the ready ones).
"""

from __future__ import annotations

import fnmatch
import os
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


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # clock time at which this (size, mtime) was first seen


class StabilityTracker:
    """Remembers each candidate file's (size, mtime) and since when it is unchanged."""

    def __init__(self, stable_seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 opener: Callable[[Path], bool] = can_open,
                 stat: Callable[[Path], os.stat_result] = os.stat):
        self.stable_seconds = float(stable_seconds)
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

    def ready(self, now: float) -> list[Path]:
        """Paths whose signature has been unchanged for at least ``stable_seconds``."""
        return [p for p, s in self._seen.items() if now - s.since >= self.stable_seconds]

    def next_ready_in(self, now: float) -> float | None:
        """Seconds until the next tracked file becomes stable if nothing changes (None if
        every tracked file is already stable, or none is tracked): the watcher sleeps
        exactly that long instead of polling on a fixed tick."""
        waits = [s.since + self.stable_seconds - now for s in self._seen.values()]
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
        wanted = set(todo)
        return [p for p in self.ready(now) if p in wanted and self.opener(p)]
