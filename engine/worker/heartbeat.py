"""Keeps a running task's lease fresh from a side thread while the handler works.

Why a thread: handlers block (a shell command, a long generation); the lease must be
extended regardless. A heartbeat that fails means the task was reaped or cancelled: the
thread raises the ``lost`` flag and the handler's ``should_stop`` turns True.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Self

from engine.clock import Clock
from engine.queue.protocol import StoreUnavailable, TaskQueue


class LeaseKeeper:
    def __init__(self, queue: TaskQueue, clock: Clock, task_id: str, worker_id: str, lease_s: float,
                 interval_s: float, on_beat: Callable[[], None] = lambda: None,
                 status_every_s: float | None = None,
                 on_store: Callable[[StoreUnavailable | None], None] = lambda _error: None) -> None:
        self.queue = queue
        self.clock = clock
        self.task_id = task_id
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.interval_s = interval_s
        self.on_beat = on_beat
        self.on_store = on_store  # told when a heartbeat finds the store away (and when it answers again)
        self.status_every_s = min(interval_s, status_every_s or interval_s)
        self.lost = False
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{task_id}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        """Wake every ``status_every_s`` (the status heartbeat), renew the lease every ``interval_s``."""
        next_lease = time.monotonic() + self.interval_s
        while not self._stop.wait(self.status_every_s):
            if time.monotonic() >= next_lease:
                next_lease = time.monotonic() + self.interval_s
                try:
                    ok = self.queue.heartbeat(self.task_id, self.worker_id, self.clock.now(), self.lease_s)
                    self.on_store(None)
                except StoreUnavailable as exc:  # not lost: the task goes on, its result is kept until recorded
                    ok = True
                    self.on_store(exc)
                except OSError:
                    ok = True  # a transient filesystem error: try again next beat, the lease has slack
                if not ok:
                    self.lost = True
                    return
                self.beats += 1
            try:
                self.on_beat()
            except Exception as exc:  # noqa: BLE001 - a status write must never kill the lease thread
                logging.getLogger(__name__).debug("status write on a beat failed: %s", exc)
