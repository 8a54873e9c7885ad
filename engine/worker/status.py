"""Publishes the worker's status file from a side thread.

Why: the status file is replaced by rename on every change, and ext4 flushes a file's
data when it is renamed over an old one (auto_da_alloc), which can block for tens of
milliseconds on a busy disk. Writing from a thread keeps that off the claim path; a
burst of changes collapses into one write of the latest status.
"""

from __future__ import annotations

import threading
from pathlib import Path

from engine.workerstate import WorkerStatus, write_json_dataclass


class StatusPublisher:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.write_errors = 0
        self._latest: WorkerStatus | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="worker-status", daemon=True)
        self._thread.start()

    def publish(self, status: WorkerStatus) -> None:
        with self._cond:
            self._latest = status
            self._cond.notify()

    def close(self, final: WorkerStatus | None = None) -> None:
        """Stop the thread and write ``final`` (or whatever is pending) before returning."""
        with self._cond:
            self._closed = True
            if final is not None:
                self._latest = final
            self._cond.notify()
        self._thread.join(timeout=10.0)
        pending, self._latest = self._latest, None
        if pending is not None:
            self._write(pending)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._latest is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                status, self._latest = self._latest, None
            if status is not None:
                self._write(status)

    def _write(self, status: WorkerStatus) -> None:
        try:
            write_json_dataclass(self.path, status)
        except OSError:
            self.write_errors += 1  # advisory: the lease, not the status file, keeps tasks safe
