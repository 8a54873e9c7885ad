"""The event log: one JSON line per state change, in ``shared/logs/events.jsonl`` (the file
store's ``FileEventStream``) or a Redis stream (``engine.store.redis.channels``); ``EventLog``
renders the lines and appends them to its ``EventStream``.

Schema (the field notes' suggestion): timestamp, event_type, task_id, worker_id, gpu_id,
duration_ms, tokens_generated, error, plus any extra fields. Each line is written with a
single ``write`` on an ``O_APPEND`` descriptor, so lines from many processes never
interleave. A log that cannot be written never stops the queue: the error is counted
(``write_errors``, ``last_error``). The log is opened through ``safeio.open_append``: a
symlink or FIFO planted at its path is refused, never followed or waited on.
A line is whole or absent: a short write (disk full) is closed with a newline by the
writer (engine.queue.fsops), and readers skip a torn line, reading the whole line glued
behind a torn fragment (``salvage_event``).
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import safeio
from engine.event_types import EventType
from engine.model import ERROR_SNIPPET_CHARS, iso
from engine.queue.fsops import REAL_FS, FsOps
from engine.store.channels import EventStream

REOPEN_CHECK_S = 1.0  # how often a kept-open log checks that it still writes to the named file


class FileEventStream:
    """The file store's event stream (``logs/events.jsonl``): lines appended on a kept-open
    ``O_APPEND`` descriptor, reopened when the file was rotated or deleted. Opened through
    ``safeio.open_append``: a symlink or FIFO planted at the path is refused (the line is lost
    and counted, ``last_error`` names the path), never followed or waited on."""

    def __init__(self, path: Path, fs: FsOps | None = None) -> None:
        self.path = Path(path)
        self.fs = fs  # the write step (a test double can tear or refuse it); None: the real filesystem
        self.write_errors = 0
        self.last_error = ""  # why the last line was lost (names the path); "" once one is written again
        self._open_fd: int | None = None
        self._checked_at = float("-inf")

    def append(self, line: str) -> None:
        if not line:
            return
        try:
            (self.fs or REAL_FS).append_fd(self._fd(), (line + "\n").encode(), self.path)
        except OSError as exc:  # disk full, or a symlink/FIFO planted at the path: the line is lost, we go on
            self._close()
            self.write_errors += 1
            self.last_error = str(exc)
        else:
            self.last_error = ""

    def _fd(self) -> int:
        """The log's descriptor, kept open; reopened if the file was rotated, deleted or replaced
        (``lstat``: a symlink planted over it is refused at the reopen)."""
        now = time.monotonic()
        if self._open_fd is not None and now - self._checked_at < REOPEN_CHECK_S:
            return self._open_fd
        self._checked_at = now
        if self._open_fd is not None:
            try:
                if os.lstat(self.path).st_ino == os.fstat(self._open_fd).st_ino:
                    return self._open_fd
            except FileNotFoundError:
                pass
            self._close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_fd = safeio.open_append(self.path)  # never through a symlink, never blocked by a FIFO
        return self._open_fd

    def close(self) -> None:
        """Close the kept-open descriptor (the next append opens it again)."""
        self._close()

    def _close(self) -> None:
        if self._open_fd is not None:
            try:
                os.close(self._open_fd)
            except OSError:
                pass
            self._open_fd = None

    def tail(self, n: int = 50, *, max_bytes: int | None = None) -> list[dict[str, Any]]:
        """The last ``n`` events (oldest first), reading at most ``max_bytes`` from the end (default:
        about 2 KB an event, 64 KB to 1 MiB: a snapshot's 30 events cost one small read)."""
        limit = max_bytes if max_bytes is not None else min(1 << 20, max(64_000, n * 2_000))
        return tail_events(self.path, n, max_bytes=limit)


    def read_after(self, cursor: str | None, limit: int, *, max_bytes: int = 1 << 20) -> tuple[list[str], str | None]:
        """Cursor ``INODE:OFFSET`` in the current file; a rotated or truncated file is read from its start."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return [], cursor
        ino, offset = _parse_cursor(cursor)
        if ino != st.st_ino or st.st_size < offset:
            offset = 0
        if st.st_size <= offset or limit <= 0:
            return [], f"{st.st_ino}:{offset}"
        try:
            fd = safeio.open_regular(self.path, 1 << 62)
        except (FileNotFoundError, safeio.UnsafeFileError):
            return [], cursor
        with os.fdopen(fd, "rb") as fh:
            fh.seek(offset)
            data = fh.read(max_bytes)
        lines: list[str] = []
        used = 0
        while len(lines) < limit:
            end = data.find(b"\n", used)
            if end < 0:
                break  # an unfinished line: wait for its newline
            raw = data[used:end]
            used = end + 1
            if raw.strip():
                lines.append(raw.decode("utf-8", "replace"))
        return lines, f"{st.st_ino}:{offset + used}"


def _parse_cursor(cursor: str | None) -> tuple[int | None, int]:
    try:
        ino, offset = (cursor or "").split(":", 1)
        return int(ino), int(offset)
    except ValueError:
        return None, 0


@dataclass
class EventLog:
    """Renders events and appends them to an ``EventStream`` (the file at ``path`` unless one is given)."""

    path: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    """Fields stamped on every event from this log (e.g. this worker's gpu_id)."""
    clock: Callable[[], float] | None = None
    fs: FsOps | None = None
    """The file stream's write step (a test double can tear or refuse it); None: the real filesystem."""
    stream: EventStream | None = None
    """Where lines go; None: a ``FileEventStream`` at ``path`` (the file store)."""

    def __post_init__(self) -> None:
        if self.stream is None:
            self.stream = FileEventStream(self.path, self.fs)

    @property
    def _stream(self) -> EventStream:
        assert self.stream is not None  # set in __post_init__
        return self.stream

    @property
    def write_errors(self) -> int:
        return self._stream.write_errors

    def bind(self, **defaults: Any) -> EventLog:
        """A log that adds ``defaults`` to every event (shares the stream)."""
        return EventLog(self.path, {**self.defaults, **defaults}, self.clock, fs=self.fs, stream=self.stream)

    def emit(self, event_type: EventType, *, at: float | None = None, task_id: str | None = None,
             worker_id: str | None = None, gpu_id: int | None = None, duration_ms: float | None = None,
             tokens_generated: int | None = None, error: str | None = None, **extra: Any) -> None:
        self.write_line(self.render(event_type, at=at, task_id=task_id, worker_id=worker_id, gpu_id=gpu_id,
                                    duration_ms=duration_ms, tokens_generated=tokens_generated, error=error,
                                    **extra))

    def render(self, event_type: EventType, *, at: float | None = None, task_id: str | None = None,
               worker_id: str | None = None, gpu_id: int | None = None, duration_ms: float | None = None,
               tokens_generated: int | None = None, error: str | None = None, **extra: Any) -> str:
        """The event's line without its newline (the queue's intent journal stores it verbatim)."""
        if at is None:
            at = self.clock() if self.clock else _wall()
        record: dict[str, Any] = {
            "timestamp": iso(at),
            "event_type": event_type,
            "task_id": task_id,
            "worker_id": worker_id if worker_id is not None else self.defaults.get("worker_id"),
            "gpu_id": gpu_id if gpu_id is not None else self.defaults.get("gpu_id"),
            "duration_ms": None if duration_ms is None else round(duration_ms, 1),
            "tokens_generated": tokens_generated,
            "error": error[-ERROR_SNIPPET_CHARS:] if error else None,
        }
        for key, value in self.defaults.items():
            record.setdefault(key, value)
        for key, value in extra.items():
            if value is not None:
                record[key] = value
        return json.dumps(record, default=str, separators=(",", ":"))

    def write_line(self, line: str) -> None:
        if line:
            self._stream.append(line)

    def close(self) -> None:
        """Release the stream's descriptor; logs bound from this one share it, and reopen on their next line."""
        self._stream.close()

    def tail(self, n: int = 50) -> list[dict[str, Any]]:
        """The last ``n`` events (oldest first)."""
        return self._stream.tail(n)


def tail_events(path: Path, n: int = 50, *, max_bytes: int = 1 << 20) -> list[dict[str, Any]]:
    """The last ``n`` events; none from a log that is not a regular file (a FIFO never blocks us)."""
    try:
        start, data = _read_tail(path, max_bytes)
    except (FileNotFoundError, safeio.UnsafeFileError):
        return []
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # first line is probably cut
    out: list[dict[str, Any]] = []
    for raw in reversed(lines):
        if len(out) >= n:
            break
        if not raw.strip():
            continue
        try:
            rec = safeio.parse_json(path, raw)  # a line nested 100k deep is a ValueError here, not a crash
        except ValueError:
            glued = salvage_event(raw)  # a torn line glued to a whole one: keep the whole one
            if glued is None:
                continue  # a torn or foreign line: skip, never crash a reader
            try:
                rec = safeio.parse_json(path, glued)
            except ValueError:
                continue
        if isinstance(rec, dict):
            out.append(rec)
    out.reverse()
    return out


def _read_tail(path: Path, max_bytes: int) -> tuple[int, bytes]:
    """(offset, bytes) of at most ``max_bytes`` from the end of the regular file ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise safeio.UnsafeFileError(path, f"cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise safeio.UnsafeFileError(path, "is not a regular file")
        start = max(0, st.st_size - max_bytes)
        chunks: list[bytes] = []
        got = 0
        while got < max_bytes:
            chunk = os.pread(fd, max_bytes - got, start + got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return start, b"".join(chunks)
    finally:
        os.close(fd)


_LINE_START = b'{"timestamp":'


def salvage_event(raw: bytes) -> bytes | None:
    """The whole event at the end of ``raw`` when a torn fragment is glued in front of it."""
    at = raw.rfind(_LINE_START)
    return raw[at:] if at > 0 else None


def _wall() -> float:
    return time.time()

