"""The event log: one JSON line per state change in ``shared/logs/events.jsonl``.

Schema (the field notes' suggestion): timestamp, event_type, task_id, worker_id, gpu_id,
duration_ms, tokens_generated, error, plus any extra fields. Each line is written with a
single ``write`` on an ``O_APPEND`` descriptor, so lines from many processes never
interleave. A log that cannot be written never stops the queue: the error is counted.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.model import ERROR_SNIPPET_CHARS, iso

REOPEN_CHECK_S = 1.0  # how often a kept-open log checks that it still writes to the named file

EVENT_TYPES = (
    "task_submitted", "task_held", "task_released", "task_claimed", "task_started", "task_completed",
    "task_retry_scheduled", "task_promoted", "task_failed", "task_lost", "task_requeued", "task_handed_back",
    "task_cancelled", "task_retried", "task_invalid", "task_fixed", "duplicate_completion",
    "duplicate_claim_dropped", "late_result_discarded", "worker_started", "worker_stopped", "worker_paused",
    "worker_resumed", "worker_draining", "worker_error", "model_unloaded",
)


@dataclass
class EventLog:
    path: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    """Fields stamped on every event from this log (e.g. this worker's gpu_id)."""
    clock: Callable[[], float] | None = None
    write_errors: int = 0
    _open_fd: int | None = field(default=None, init=False, repr=False, compare=False)
    _checked_at: float = field(default=float("-inf"), init=False, repr=False, compare=False)

    def bind(self, **defaults: Any) -> "EventLog":
        """A log that adds ``defaults`` to every event (shares the file)."""
        return EventLog(self.path, {**self.defaults, **defaults}, self.clock)

    def emit(self, event_type: str, *, at: float | None = None, task_id: str | None = None,
             worker_id: str | None = None, gpu_id: int | None = None, duration_ms: float | None = None,
             tokens_generated: int | None = None, error: str | None = None, **extra: Any) -> None:
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
        self._append((json.dumps(record, default=str, separators=(",", ":")) + "\n").encode())

    def _append(self, line: bytes) -> None:
        try:
            os.write(self._fd(), line)
        except OSError:
            self._close()
            self.write_errors += 1

    def _fd(self) -> int:
        """The log's descriptor, kept open; reopened if the file was rotated or deleted."""
        now = time.monotonic()
        if self._open_fd is not None and now - self._checked_at < REOPEN_CHECK_S:
            return self._open_fd
        self._checked_at = now
        if self._open_fd is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(self._open_fd).st_ino:
                    return self._open_fd
            except FileNotFoundError:
                pass
            self._close()
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._open_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._open_fd

    def _close(self) -> None:
        if self._open_fd is not None:
            try:
                os.close(self._open_fd)
            except OSError:
                pass
            self._open_fd = None

    def tail(self, n: int = 50, *, max_bytes: int = 1 << 20) -> list[dict[str, Any]]:
        """The last ``n`` events (oldest first), reading at most ``max_bytes`` from the end."""
        return tail_events(self.path, n, max_bytes=max_bytes)


def tail_events(path: Path, n: int = 50, *, max_bytes: int = 1 << 20) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
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
            rec = json.loads(raw)
        except ValueError:
            continue  # a torn or foreign line: skip, never crash a reader
        if isinstance(rec, dict):
            out.append(rec)
    out.reverse()
    return out


def _wall() -> float:
    return time.time()


class NullEventLog(EventLog):
    """Discards everything (benchmarks measuring the bare queue, unit tests that do not care)."""

    def __init__(self) -> None:
        super().__init__(Path(os.devnull))

    def bind(self, **defaults: Any) -> "EventLog":
        return self

    def emit(self, event_type: str, **kwargs: Any) -> None:  # type: ignore[override]
        return None
