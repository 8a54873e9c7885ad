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
