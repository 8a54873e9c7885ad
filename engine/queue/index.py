"""An in-memory index of queue/ per process: one listdir at start, then inotify.

Why: claiming must cost the same at depth 20,000 as at depth 2. The sort key lives in
each file's name (engine.queue.names), so the index never opens a task file. Each lane
(class, model, priority) is a heap ordered by enqueue time; a claim looks only at lane
heads. Removals are lazy: a name leaves ``present`` at once and its heap entry is
dropped when it reaches the head.

inotify does not see changes made by another machine (NFS) and can overflow, so the
index also rescans: on overflow, and every ``rescan_s`` seconds.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.fdwait import readable
from engine.queue.names import SUFFIX, QueueName, parse_queue_name

try:  # Linux only; the index falls back to polling without it
    from inotify_simple import INotify
    from inotify_simple import flags as inflags
except ImportError:  # pragma: no cover - non-Linux
    INotify = None
    inflags = None

Lane = tuple[str, str, int, str]  # class, model, priority, needs (names.QueueName.lane)


class QueueIndex:
    def __init__(self, queue_dir: Path, *, rescan_s: float = 30.0, use_inotify: bool = True,
                 poll_rescan_s: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.dir = Path(queue_dir)
        self.poll_rescan_s = poll_rescan_s
        self._dir_s = str(queue_dir)
        self.rescan_s = rescan_s
        self._monotonic = monotonic
        self._lanes: dict[Lane, list[tuple[int, str, str]]] = {}
        self._lane_count: dict[Lane, int] = {}
        self.present: dict[str, QueueName] = {}
        self.by_id: dict[str, str] = {}
        self.foreign: set[str] = set()  # names we did not write: to adopt or reject
        self.version = 0  # bumped on every change, so readers can cache what they derive
        self._inotify = None
        self._queue_wd = -1
        self._watch_names: dict[int, frozenset[str] | None] = {}  # extra watches: wd -> names that wake
        self._last_rescan = float("-inf")
        if use_inotify and INotify is not None:
            try:
                self._inotify = INotify()
                mask = inflags.MOVED_TO | inflags.MOVED_FROM | inflags.DELETE | inflags.CLOSE_WRITE
                self._queue_wd = self._inotify.add_watch(str(self.dir), mask)
            except OSError:
                self._inotify = None
        self.rescan()

    # ---- maintenance ----
    @property
    def live(self) -> bool:
        """True when inotify keeps the index current between rescans."""
        return self._inotify is not None

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    def add_watch(self, path: Path, mask: int | None = None, *, names: frozenset[str] | None = None) -> None:
        """Wake ``wait`` on changes in directory ``path`` too; with ``names``, only on those
        file names (a worker wants its own control file, not every peer's status write)."""
        if self._inotify is None:
            return
        if mask is None:
            mask = inflags.MOVED_TO | inflags.CLOSE_WRITE
        try:
            wd = self._inotify.add_watch(str(path), mask)
        except OSError:
            return
        self._watch_names[wd] = names

    def rescan(self) -> None:
        self._drain_events()  # anything queued so far is superseded by the listing
        self._lanes.clear()
        self._lane_count.clear()
        self.present.clear()
        self.by_id.clear()
        self.foreign.clear()
        self.version += 1
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            names = []
        for name in names:
            self.add(name)
        self._last_rescan = self._monotonic()

    def sync(self) -> None:
        """Bring the index up to date: pending inotify events, or a rescan when due.

        Without inotify (NFS, or turned off) the index rescans when it is empty or every
        ``poll_rescan_s``; in between, claims work from what it has (a stale entry costs one
        failed rename), so claim cost stays independent of depth in that mode too.
        """
        age = self._monotonic() - self._last_rescan
        if self._inotify is None:
            if not self.present or age >= self.poll_rescan_s:
                self.rescan()
        elif age >= self.rescan_s:
            self.rescan()
        else:
            self._drain_events()

    def wait(self, timeout_s: float, extra_fds: tuple[int, ...] = ()) -> bool:
        """Block until the queue or a watched name changes, an extra fd is readable, or
        ``timeout_s``. Events nobody asked for (a peer's status file) are consumed here and
        the wait goes on, so an idle worker does not spin on its peers' heartbeats.

        Returns True if woken early. Without inotify it simply sleeps (the caller polls).
        """
        fds = list(extra_fds)
        if self._inotify is not None:
            fds.append(self._inotify.fileno())
        if not fds:
            time.sleep(max(0.0, timeout_s))
            return False
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            try:
                ready = readable(fds, deadline - time.monotonic())
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
                return True
            if not ready:
                return False
            if any(fd in extra_fds for fd in ready) or self._drain_events():
                return True
            if time.monotonic() >= deadline:
                return False

    def _drain_events(self) -> bool:
        """Apply pending queue events to the index; True if anything a waiter cares about
        happened (a queue change, an overflow, or a watched name)."""
        if self._inotify is None:
            return False
        events = self._inotify.read(timeout=0)
        overflow = relevant = False
        for ev in events:
            if ev.mask & inflags.Q_OVERFLOW:
                overflow = True
                continue
            if ev.wd != self._queue_wd:
                if ev.wd in self._watch_names:
                    names = self._watch_names[ev.wd]
                    relevant = relevant or names is None or ev.name in names
                continue
            if not ev.name:
                continue
            relevant = True
            if ev.mask & (inflags.MOVED_FROM | inflags.DELETE):
                self.remove(ev.name)
            elif ev.mask & (inflags.MOVED_TO | inflags.CLOSE_WRITE):
                if os.path.exists(f"{self._dir_s}/{ev.name}"):  # it may have gone already
                    self.add(ev.name)
        if overflow:
            self.rescan()
        return relevant or overflow

    # ---- content ----
    def add(self, name: str) -> None:
        if name.startswith(".") or name in self.present or not name.endswith(SUFFIX):
            return
        qn = parse_queue_name(name)
        if qn is None:
            self.foreign.add(name)
            return
        self.present[name] = qn
        self.version += 1
        self.by_id[qn.task_id] = name
        lane = qn.lane
        heapq.heappush(self._lanes.setdefault(lane, []), (qn.enqueued_us, qn.task_id, name))
        self._lane_count[lane] = self._lane_count.get(lane, 0) + 1

    def remove(self, name: str) -> None:
        self.foreign.discard(name)
        qn = self.present.pop(name, None)
        if qn is None:
            return
        self.version += 1
        if self.by_id.get(qn.task_id) == name:
            del self.by_id[qn.task_id]
        lane = qn.lane
        left = self._lane_count.get(lane, 1) - 1
        if left <= 0:
            self._lane_count.pop(lane, None)
            self._lanes.pop(lane, None)
        else:
            self._lane_count[lane] = left

    def heads(self) -> Iterator[tuple[QueueName, str, int]]:
        """(name info, file name, lane depth) for the head of every non-empty lane."""
        for lane in list(self._lanes):
            heap = self._lanes[lane]
            while heap and heap[0][2] not in self.present:
                heapq.heappop(heap)
            if not heap:
                self._lanes.pop(lane, None)
                self._lane_count.pop(lane, None)
                continue
            name = heap[0][2]
            yield self.present[name], name, self._lane_count.get(lane, 1)

    def lane_depths(self) -> dict[Lane, int]:
        return dict(self._lane_count)

    def __len__(self) -> int:
        return len(self.present)
