"""SIGTERM/SIGINT: stop claiming, let the running task finish within the grace period.

A second SIGINT (Ctrl-C twice) stops the running task now; it is handed back, not failed.
"""

from __future__ import annotations

import signal
from typing import Protocol


class Stoppable(Protocol):
    def request_stop(self, reason: str, *, immediate: bool = False) -> None: ...


def install_stop_handlers(worker: Stoppable) -> None:
    seen = {"int": 0}

    def on_term(signum: int, frame: object) -> None:
        worker.request_stop("SIGTERM")

    def on_int(signum: int, frame: object) -> None:
        seen["int"] += 1
        worker.request_stop("SIGINT", immediate=seen["int"] > 1)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_int)


class EarlyStop:
    """SIGTERM/SIGINT before the worker exists (while its store does not answer yet): remember it.

    Installed on creation; ``install_stop_handlers`` replaces it once the worker runs, and the
    caller hands a remembered signal on with ``worker.request_stop``.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.reason = signal.Signals(signum).name

    def requested(self) -> bool:
        return self.reason is not None
