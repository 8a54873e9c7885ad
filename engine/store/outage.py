"""While the store does not answer: when to try again, and what to say (once per change, not per try).

Why: a worker or supervisor whose store (Redis) is away must neither give up nor flood its log,
nor hammer a store that is coming back. ``StoreOutage`` says when the next call is due (the delay
doubles up to a cap) and reports the changes (answering -> unreachable -> answering), which are
what gets logged. Pure: time is the ``now`` passed in. The worker's use: engine/worker/outage.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before try ``n`` (1-based) after a failure: ``base_s * 2**(n-1)``, at most ``cap_s``."""

    base_s: float = 0.5
    cap_s: float = 15.0

    def delay_s(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * (2.0 ** min(failures - 1, 30)))


@dataclass(frozen=True)
class Change:
    """A change of the store's state as this process sees it (what to log)."""

    down: bool  # True: it stopped answering; False: it answers again
    since: float  # when it stopped answering
    failures: int  # failed tries so far (at a recovery: during the outage)
    error: str = ""


class StoreOutage:
    """Whether the store answered this process's last call, and when the next try is due.

    Shared by the worker loop and its lease thread (a heartbeat that finds the store away says so
    too), hence the lock.
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self.since: float | None = None
        self.failures = 0
        self.next_try_at = float("-inf")
        self.last_error = ""
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def due(self, now: float) -> bool:
        """May the worker call the store now (claim, record)?"""
        return now >= self.next_try_at

    def wait_s(self, now: float) -> float:
        return max(0.0, self.next_try_at - now)

    def failed(self, now: float, error: str) -> Change | None:
        """One call found the store away; a ``Change`` when it was answering until now."""
        with self._lock:
            first = self.since is None
            if first:
                self.since = now
            self.failures += 1
            self.last_error = error
            self.next_try_at = now + self.policy.delay_s(self.failures)
            return Change(True, now, self.failures, error) if first else None

    def answered(self, now: float) -> Change | None:
        """One call went through; a ``Change`` when the store had been away."""
        with self._lock:
            since, failures = self.since, self.failures
            self.since, self.failures, self.next_try_at, self.last_error = None, 0, float("-inf"), ""
            return Change(False, since, failures) if since is not None else None


def clock_text(ts: float) -> str:
    """HH:MM:SS in local time, as the dashboard shows it."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def describe(change: Change, now: float, *, effect: str = "") -> str:
    """The one line logged for a change; ``effect`` says what the caller does meanwhile."""
    if change.down:
        return f"store unreachable since {clock_text(change.since)}: {change.error}{effect}"
    return (f"store answers again (unreachable since {clock_text(change.since)}, {now - change.since:.0f} s, "
            f"{change.failures} failed call(s))")
