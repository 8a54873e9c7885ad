"""An append-only ledger of terminal transitions: how counts and "recent" stay cheap.

complete/ grows without bound, so neither ``counts()`` nor ``recent()`` may list it. Every
move into complete/ or failed/ (and every retry out of failed/) appends one short line
``<time_us> <C|F|U> <class> <task_id> <check>``; a reader keeps its offset and reads only
what is new. ``check`` (a CRC of the rest) makes a torn line (disk full, a short write)
detectable: it is skipped, and a whole line glued behind a torn fragment is still read.
Lines without ``check`` (written before it existed) are accepted. A crash between a move
and its ledger line is repaired by the intent journal (engine.queue.journal): the line
is written exactly once.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from pathlib import Path

from engine import safeio
from engine.queue.fsops import REAL_FS, FsOps
from engine.queue.names import us

RECENT_KEEP = 500
_ANY_SIZE = 1 << 62  # our own append-only file: its kind is checked (never a FIFO or link), not its size
COMPLETE, FAILED, UNFAILED = "C", "F", "U"


def _check(body: str) -> str:
    return f"{zlib.crc32(body.encode()):08x}"


def render(now: float, kind: str, task_class: str, task_id: str) -> str:
    """One ledger line, without its newline (the intent journal stores it verbatim)."""
    body = f"{us(now)} {kind} {task_class} {task_id}"
    return f"{body} {_check(body)}"


def parse_line(raw: str, *, legacy: bool = False) -> list[str] | None:
    """The four fields of a whole line; None for a torn or foreign one. ``legacy`` accepts
    unchecked four-field lines (a ledger written before checks; never once one is seen,
    since a line torn inside its last field would look like one)."""
    parts = raw.split(" ")
    if len(parts) == 4:
        return parts if legacy else None
    if len(parts) == 5 and _valid(parts):
        return parts[:4]
    at = _glued_at(raw)
    return raw[at:].split(" ")[:4] if at else None


def _valid(parts: list[str]) -> bool:
    return parts[0].isdigit() and _check(" ".join(parts[:4])) == parts[4]


def _glued_at(raw: str) -> int | None:
    """Where a whole line starts when a torn fragment is glued in front of it (the fragment
    may end inside a field, so every start is tried; the check rules out false ones)."""
    if raw.count(" ") < 5:
        return None
    for i in range(1, len(raw)):
        tail = raw[i:].split(" ")
        if len(tail) < 5:
            return None
        if len(tail) == 5 and _valid(tail):
            return i
    return None


def salvage_ledger(raw: bytes) -> bytes | None:
    """The whole line at the end of ``raw`` when a fragment is glued in front of it."""
    at = _glued_at(raw.decode(errors="replace"))
    return raw[at:] if at else None


class Ledger:
    def __init__(self, path: Path, fs: FsOps | None = None) -> None:
        self.path = Path(path)
        self.fs: FsOps = fs or REAL_FS
        self._path_s = str(path)
        self._start_over()

    def _start_over(self) -> None:
        """Forget what was read (a new, truncated or rotated file is read from its start)."""
        self._offset = 0
        self._partial = b""
        self._legacy = True  # until a checked line is read
        self.counts: dict[str, dict[str, int]] = {"complete": {}, "failed": {}}
        self._recent: dict[str, deque[str]] = {"complete": deque(maxlen=RECENT_KEEP),
                                               "failed": deque(maxlen=RECENT_KEEP)}

    def append(self, now: float, kind: str, task_class: str, task_id: str) -> None:
        self.append_raw(render(now, kind, task_class, task_id))

    def append_raw(self, line: str) -> None:
        self.fs.append_line(self._path_s, f"{line}\n".encode())

    def refresh(self) -> None:
        try:  # a regular file only: a FIFO or link planted at the name never blocks or redirects status
            fd = safeio.open_regular(self.path, _ANY_SIZE)
        except (FileNotFoundError, safeio.UnsafeFileError):
            return
        with os.fdopen(fd, "rb") as fh:
            if os.fstat(fd).st_size < self._offset:  # truncated/rotated: start over
                self._start_over()
            fh.seek(self._offset)
            data = fh.read()
        if not data:
            return
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next refresh
        for raw in lines:
            parts = parse_line(raw.decode(errors="replace"), legacy=self._legacy)
            if parts is None:
                continue
            if raw.count(b" ") >= 4:
                self._legacy = False
            _, kind, cls, task_id = parts
            if kind == COMPLETE:
                self._bump("complete", cls, 1)
                self._recent["complete"].append(task_id)
            elif kind == FAILED:
                self._bump("failed", cls, 1)
                self._recent["failed"].append(task_id)
            elif kind == UNFAILED:
                self._bump("failed", cls, -1)
                try:
                    self._recent["failed"].remove(task_id)
                except ValueError:
                    pass

    def _bump(self, state: str, cls: str, delta: int) -> None:
        by_class = self.counts[state]
        by_class[cls] = max(0, by_class.get(cls, 0) + delta)
        if by_class[cls] == 0:
            del by_class[cls]

    def recent_ids(self, state: str) -> list[str]:
        """Newest first, without repeats."""
        seen: set[str] = set()
        out = []
        for task_id in reversed(self._recent.get(state, ())):
            if task_id not in seen:
                seen.add(task_id)
                out.append(task_id)
        return out
