"""Circuit breaker per node: closed -> open after N consecutive failures -> half-open
after a wait (doubling up to a cap) -> closed on one success, open again on failure.

Half-open admits ONE probe at a time (``try_acquire``): a node that just came back is not
hit by every waiting request at once. The probe's slot expires at ``probe_until`` so a
probe whose caller never reports (crashed, hung) cannot wedge the breaker in half-open.

Pure state plus transitions that take ``now``; the router and the snapshot read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class BreakerState(StrEnum):
    """A node's circuit breaker (in the snapshot, the metrics and ``galaxy cluster``)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


@dataclass(frozen=True)
class Breaker:
    state: BreakerState = CLOSED
    failures: int = 0  # consecutive
    opened_count: int = 0  # consecutive openings, for the doubling wait
    next_probe_at: float | None = None
    forced: bool = False  # opened by the operator: stays open until reset
    last_error: str | None = None
    probe_until: float | None = None  # half-open: a probe is in flight until it reports or this passes


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 3
    reset_s: float = 30.0
    reset_max_s: float = 600.0

    def wait_s(self, opened_count: int) -> float:
        return min(self.reset_max_s, self.reset_s * (2.0 ** max(0, opened_count - 1)))


def probe_in_flight(b: Breaker, now: float) -> bool:
    return b.state == HALF_OPEN and b.probe_until is not None and now < b.probe_until


def allows(b: Breaker, now: float) -> bool:
    """May a request go to this node now? (Closed: yes. Open past its wait, or half-open with
    no live probe: one probe.)"""
    if b.state == CLOSED:
        return True
    if b.state == HALF_OPEN:
        return not probe_in_flight(b, now)
    return not b.forced and b.next_probe_at is not None and now >= b.next_probe_at


def try_acquire(b: Breaker, now: float, probe_timeout_s: float) -> tuple[Breaker, bool]:
    """Admit a request: (new state, may it go). Off the closed state it takes the single probe
    slot until ``now + probe_timeout_s``; the caller must then report success or failure, or
    ``release_probe`` when it gave up for reasons of its own."""
    if b.state == CLOSED:
        return b, True
    if not allows(b, now):
        return b, False
    return replace(b, state=HALF_OPEN, probe_until=now + probe_timeout_s), True


def release_probe(b: Breaker) -> Breaker:
    """The probe's caller stopped it (cancelled): not the node's fault, so free the slot."""
    return replace(b, probe_until=None) if b.state == HALF_OPEN else b


def before_request(b: Breaker, now: float) -> Breaker:
    """Open past its wait -> half-open, without taking the probe slot (health checks)."""
    if b.state == OPEN and allows(b, now):
        return replace(b, state=HALF_OPEN)
    return b


def on_success(b: Breaker, now: float) -> Breaker:
    if b.forced:
        return b
    return Breaker()


def on_failure(b: Breaker, now: float, policy: BreakerPolicy, error: str | None = None) -> Breaker:
    if b.forced:
        return replace(b, last_error=error)
    failures = b.failures + 1
    if b.state == HALF_OPEN or failures >= policy.failure_threshold:
        opened = b.opened_count + 1
        return Breaker(state=OPEN, failures=failures, opened_count=opened,
                       next_probe_at=now + policy.wait_s(opened), last_error=error)
    return replace(b, failures=failures, last_error=error)


def force_open(b: Breaker, now: float) -> Breaker:
    return Breaker(state=OPEN, failures=b.failures, opened_count=b.opened_count, next_probe_at=None,
                   forced=True, last_error="opened by operator")


def reset(b: Breaker) -> Breaker:
    return Breaker()
