"""Whether the supervisor can still write one of its files (the snapshot, the history).

Why: with the disk full the snapshot goes stale and every dashboard shows an old picture.
The supervisor keeps running; this tracker turns the failures into an alert (shown in the
next snapshot it manages to write, and kept for the clear window after it recovers) and
into log lines that are not repeated every tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.supervisor.alerts import Condition

LOG_EVERY_S = 60.0  # while a write keeps failing, one log line a minute


@dataclass
class WriteHealth:
    what: str  # "snapshot" | "history": names the alert key and the message
    path: Path
    severity: str = "critical"
    failing_since: float | None = None
    failures: int = 0
    last_error: str = ""
    _logged_at: float = float("-inf")

    def failed(self, now: float, exc: OSError) -> bool:
        """Record one failure; True when it deserves a log line (the first, a new error, a minute on)."""
        error = exc.strerror or str(exc)
        new = self.failing_since is None or error != self.last_error
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        self.last_error = error
        if new or now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            return True
        return False

    def succeeded(self) -> int:
        """Record a good write; returns how many failed before it (0: nothing to report)."""
        failed = self.failures
        self.failing_since, self.failures, self.last_error = None, 0, ""
        self._logged_at = float("-inf")
        return failed

    def message(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.failing_since or 0.0))
        return (f"cannot write the {self.what} {self.path}: {self.last_error} "
                f"({self.failures} failed write(s) since {since}); dashboards show an old picture")

    def condition(self, clear_after_s: float) -> Condition:
        failing = self.failing_since is not None
        return Condition(key=f"{self.what}_write", active=failing, severity=self.severity,
                         message=self.message() if failing else "", subject=str(self.path),
                         raise_after_s=0.0, clear_after_s=clear_after_s)


@dataclass
class LostLines:
    """Lines a shared log could not write (the event log, the audit log), as an alert.

    Why: those writers never stop the rig for a lost line (disk full, a link or FIFO planted
    at the name is refused: ``safeio.open_append``); they count it. The supervisor reads the
    count every tick and raises this alert while it grows, so the loss is seen, not silent."""

    what: str  # "events" | "audit": names the alert key
    subject: str  # the log's path (or stream), shown in the alert
    count: Callable[[], int] = field(repr=False)
    severity: str = "warning"
    lost: int = 0
    _seen: int = 0  # the count at the last tick (a stream counts from 0 when the process starts)
    _growing: bool = False

    def observe(self) -> None:
        try:
            now_count = int(self.count())
        except Exception:  # noqa: BLE001 - a counter must never stop the tick
            return
        self._growing = now_count > self._seen
        self.lost += max(0, now_count - self._seen)
        self._seen = now_count

    def condition(self, clear_after_s: float) -> Condition:
        message = (f"lines lost writing the {self.what} log {self.subject} ({self.lost} so far): "
                   "disk full, or not a regular file at that name (a link or FIFO is refused)") if self._growing else ""
        return Condition(key=f"{self.what}_write", active=self._growing, severity=self.severity, message=message,
                         subject=self.subject, raise_after_s=0.0, clear_after_s=clear_after_s)
