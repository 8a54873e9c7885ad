"""Whether the supervisor can still write one of its files (the snapshot, the history).

Why: with the disk full the snapshot goes stale and every dashboard shows an old picture.
The supervisor keeps running; this tracker turns the failures into an alert (shown in the
next snapshot it manages to write, and kept for the clear window after it recovers) and
into log lines that are not repeated every tick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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
