"""Opening the store at start-up: wait for a store that does not answer yet, refuse one that is wrong.

Why: a supervisor or worker started while Redis is down (a reboot that brings the rig up before the
Redis host, a Redis still replaying its AOF) must come up when Redis does, not exit and leave the
rig dead until someone restarts it. Only a *configuration* problem (a bad url, a Redis that may
evict keys, a wrong password) is worth exiting for: waiting would never fix it. The openers say
which by what they raise: ``StoreUnavailable`` (wait) or anything else (the caller exits).
Time is a parameter: the delays come from ``RetryPolicy`` and the ``now`` of the ``Clock`` passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from engine.clock import Clock
from engine.queue.protocol import StoreUnavailable
from engine.store.outage import RetryPolicy, StoreOutage, clock_text, describe

T = TypeVar("T")

STARTUP_RETRY = RetryPolicy(base_s=1.0, cap_s=30.0)
"""1 s, 2 s, 4 s ... at most 30 s between tries: a Redis back after a reboot is found within 30 s."""
WAIT_SLICE_S = 0.25
"""How often a wait looks at ``stop``: SIGTERM while waiting ends the process within this."""


def waiting_line(where: str, outage: StoreOutage, now: float) -> str:
    """The line logged for each failed try: what, since when, when the next try is."""
    since = outage.since if outage.since is not None else now
    return (f"store {where} unreachable since {clock_text(since)}, retrying in {outage.wait_s(now):.0f} s "
            f"(try {outage.failures}): {outage.last_error}")


def open_when_answering(open_store: Callable[[], T], *, where: str, clock: Clock, say: Callable[[str], None],
                        stop: Callable[[], bool], policy: RetryPolicy = STARTUP_RETRY) -> T | None:
    """``open_store()`` once the store answers; None when ``stop()`` turned true first (SIGTERM while
    waiting). ``StoreUnavailable`` is retried with ``policy``'s backoff, one ``say`` line per try;
    anything else ``open_store`` raises (a configuration error) goes to the caller at once."""
    outage = StoreOutage(policy)
    while not stop():
        try:
            opened = open_store()
        except StoreUnavailable as exc:
            now = clock.now()
            outage.failed(now, str(exc))
            say(waiting_line(where, outage, now))
            while not stop() and not outage.due(clock.now()):
                clock.sleep(min(WAIT_SLICE_S, outage.wait_s(clock.now())))
            continue
        now = clock.now()
        change = outage.answered(now)
        if change is not None:
            say(f"{describe(change, now)}; starting")
        return opened
    return None
