"""Where the dashboard's snapshots come from, and when they count as stale.

The app polls a ``SnapshotSource`` from a worker thread, so a slow disk or NFS mount
never freezes the screen. Tests inject a ``CannedSnapshotSource``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.schema import SchemaError
from engine.snapshot import Snapshot, read_snapshot
from engine.store.channels import SnapshotStore
from engine.store.rigs_view import RIG_STALE_S, RigsReader, base_reading, merge_rigs
from engine.supervisor.pidfile import pid_alive

STALE_AFTER_S = 3.0
READ_EVERY_S = 1.0
"""An attached dashboard takes at most one new snapshot a second (the supervisor writes two):
each one re-renders the screen, which costs more than everything else the dashboard does,
and a second is what an operator's eye follows (nvitop's default is two)."""


@dataclass(frozen=True)
class SnapshotReading:
    """One poll's outcome: a new snapshot, an error to show, and whether the writer lives."""

    snapshot: Snapshot | None
    error: str | None = None
    supervisor_alive: bool | None = None  # None: cannot tell (no pid, other host)


class SnapshotSource(Protocol):
    def poll(self) -> SnapshotReading | None:
        """A reading when something changed since the last call, else None. May block on I/O."""
        ...


class FileSnapshotSource:
    """Reads ``state/snapshot.json`` only when its mtime or size changed (a stat per poll), and
    at most once every ``min_interval_s`` (a newer file waits for the next poll after that)."""

    def __init__(self, snapshot_path: Path, pid_path: Path | None = None, *, min_interval_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(snapshot_path)
        self.pid_path = pid_path
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._read_at: float | None = None
        self._stamp: tuple[int, int] | None = None
        self._alive: bool | None = None
        self._error: str | None = None
        self._last_pid: int | None = None

    def _supervisor_alive(self, snap: Snapshot | None) -> bool | None:
        """From the snapshot's pid, else the pid file's; remembered for the polls in between."""
        pid = snap.supervisor_pid if snap else None
        if pid is None and self.pid_path is not None:
            try:
                pid = int(self.pid_path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = None
        self._last_pid = pid
        return pid_alive(pid)

    def poll(self) -> SnapshotReading | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            alive = self._supervisor_alive(None)
            if self._stamp is not None or self._error != "no snapshot yet" or alive != self._alive:
                self._stamp, self._error, self._alive = None, "no snapshot yet", alive
                return SnapshotReading(None, f"no snapshot yet at {self.path}", alive)
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        too_soon = self._read_at is not None and self.clock() - self._read_at < self.min_interval_s
        if stamp == self._stamp or (too_soon and self._error is None):
            alive = self._supervisor_alive_cached()
            if alive != self._alive:
                self._alive = alive
                return SnapshotReading(None, None, alive)
            return None
        try:
            snap = read_snapshot(self.path)
        except (SchemaError, json.JSONDecodeError, OSError) as exc:
            self._stamp, self._error = stamp, str(exc)
            return SnapshotReading(None, f"{self.path}: {exc}", self._alive)
        if snap is None:  # removed between the stat and the read
            self._stamp = None
            return None
        self._stamp, self._error = stamp, None
        self._read_at = self.clock()
        self._alive = self._supervisor_alive(snap)
        return SnapshotReading(snap, None, self._alive)

    def _supervisor_alive_cached(self) -> bool | None:
        return pid_alive(self._last_pid)


class ClusterSnapshotSource:
    """The cluster view of a shared store (Redis): every rig's snapshot merged into one
    (``engine.store.rigs_view``), the queue, tasks and events from ``home`` while it is live, the
    GPU cards of every rig. Read at most once every ``min_interval_s``; a rig may be another host, so
    liveness is the publish time, not a pid. While the store does not answer, says so with the time
    it stopped answering."""

    def __init__(self, store: SnapshotStore, home: str, *, min_interval_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.reader = RigsReader(store, RIG_STALE_S)
        self.home = home
        self.min_interval_s = min_interval_s
        self.clock, self.wall = clock, wall
        self._read_at: float | None = None
        self._seen: object = None
        self._alive: bool | None = None
        self._error: str | None = None
        self._down_since: float | None = None

    def poll(self) -> SnapshotReading | None:
        if self._read_at is not None and self.clock() - self._read_at < self.min_interval_s:
            return None
        self._read_at = self.clock()
        try:
            readings = self.reader.read(self.wall())
        except OSError as exc:  # StoreUnavailable: Redis does not answer
            if self._down_since is None:
                self._down_since = self.wall()
            since = time.strftime("%H:%M:%S", time.localtime(self._down_since))
            return self._report(f"store unreachable since {since}: {exc}", None)
        self._down_since = None
        base = base_reading(readings, self.home)
        if base is None or base.snapshot is None:
            problem = next((f"snapshot of rig {r.rig}: {r.problem}" for r in readings if r.problem), None)
            return self._report(problem or f"no snapshot yet for rig {self.home}", None)
        alive = False if base.stale else None
        seen = tuple((r.rig, r.published_at, r.stale, r.problem) for r in readings)
        if seen == self._seen and self._error is None:
            return None
        self._seen, self._error, self._alive = seen, None, alive
        return SnapshotReading(merge_rigs(readings, self.home), None, alive)

    def _report(self, error: str, alive: bool | None) -> SnapshotReading | None:
        """An error reading, once per distinct error (the screen keeps showing it)."""
        if error == self._error and alive == self._alive:
            return None
        self._seen, self._error, self._alive = None, error, alive
        return SnapshotReading(None, error, alive)


class CannedSnapshotSource:
    """A double for tests and screenshots: hands out the given snapshots one per poll."""

    def __init__(self, snapshots: Sequence[Snapshot], *, supervisor_alive: bool | None = None) -> None:
        self._pending = list(snapshots)
        self.alive = supervisor_alive

    def push(self, snapshot: Snapshot) -> None:
        self._pending.append(snapshot)

    def poll(self) -> SnapshotReading | None:
        if not self._pending:
            return None
        return SnapshotReading(self._pending.pop(0), None, self.alive)


def load_snapshot_file(path: Path) -> Snapshot:
    """Read a canned snapshot (tests, docs); raises SchemaError naming the file."""
    try:
        return Snapshot.from_dict(json.loads(Path(path).read_text()))
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from exc


def staleness(snap: Snapshot | None, now: float, supervisor_alive: bool | None,
              stale_after_s: float = STALE_AFTER_S) -> float | None:
    """The time the picture went stale (its ``taken_at``), or None while it is fresh."""
    if snap is None:
        return None
    if supervisor_alive is False or now - snap.taken_at > stale_after_s:
        return snap.taken_at
    return None
