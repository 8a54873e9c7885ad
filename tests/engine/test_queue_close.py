"""``FileQueue.close`` releases what the queue opened: its event log's descriptor (a supervisor's
status loop and the dashboard open and close queues for the rig's life; each left one open)."""

from __future__ import annotations

import os
from pathlib import Path

from engine.events import EventLog
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from tests.engine.queue_helpers import task


def _fds_on(path: Path) -> int:
    target = str(path.resolve())
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            continue
    return n


def test_close_releases_the_event_log_the_queue_opened(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared")
    for i in range(3):
        q = FileQueue(paths, use_inotify=False)
        q.submit([task(f"t{i}")], now=1.0)
        assert _fds_on(paths.events) == 1
        q.close()
        assert _fds_on(paths.events) == 0
    assert [e["task_id"] for e in EventLog(paths.events).tail(10)] == ["t0", "t1", "t2"]


def test_close_leaves_a_log_it_was_given_to_its_owner(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared")
    log = EventLog(paths.events)
    q = FileQueue(paths, events=log, use_inotify=False)
    q.submit([task("a")], now=1.0)
    q.close()
    assert _fds_on(paths.events) == 1  # the caller's log is still open for its other writers
    log.close()
    assert _fds_on(paths.events) == 0
