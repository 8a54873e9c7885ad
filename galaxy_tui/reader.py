"""The thread that polls the dashboard's snapshot source, one for the dashboard's life.

Why not a Textual thread worker per poll: the app polls twice a second, and each worker (a new
thread, its state messages through the app's message queue, the worker manager's bookkeeping)
cost ~2.5 ms of CPU, most of an idle dashboard's (bench/dashboard_cost.py). Here one thread
waits for a ``kick``, polls, and hands a reading over only when there is one. The app still never
blocks on the source (a slow disk or NFS mount): the poll runs in this thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from galaxy_tui.source import SnapshotReading, SnapshotSource


class SourceReader:
    """Polls ``source`` once per ``kick`` (kicks while a poll runs make one more poll, not one
    each) and calls ``deliver`` with each reading, from this thread; ``stop`` ends it."""

    def __init__(self, source: SnapshotSource, deliver: Callable[[SnapshotReading], object]) -> None:
        self.source = source
        self.deliver = deliver
        self._wanted = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Poll once more, soon (starts the thread at the first kick)."""
        if self._stopped:
            return
        self._wanted.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="galaxy-snapshot-reader", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """No more polls or readings. Does not wait for a poll under way (a stuck disk must not
        hold up quitting): the thread ends after it, delivering nothing."""
        self._stopped = True
        self._wanted.set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the thread to end (after ``stop``); True when it has (or never began)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopped:
                return
            try:
                reading = self.source.poll()
            except Exception as exc:  # noqa: BLE001 - a bad read must never kill the dashboard
                reading = SnapshotReading(None, f"snapshot source failed: {exc}", None)
            if reading is not None and not self._stopped:
                try:
                    self.deliver(reading)
                except RuntimeError:  # the app's event loop is closed: it has exited
                    return
