"""Every rig of a shared store at once: the cluster view behind ``galaxy status`` and ``galaxy attach``.

Each rig's supervisor publishes its own snapshot, and only it knows its GPUs and workers. The queue,
tasks, events and escalations live in the store, so any live rig's snapshot shows the same of those.
A merged view takes them from one base rig (this host's while it is live, else the freshest) and the
GPU cards and workers of every rig, each marked with its rig; commands for a worker go to its rig.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.schema import SchemaError
from engine.snapshot import CommandAck, GpuView, RigView, Snapshot, WorkerView, parse_published
from engine.store.channels import SnapshotStore

RIG_STALE_S = 10.0
"""A rig whose supervisor published nothing for this long is not running (STALE)."""


@dataclass(frozen=True)
class RigReading:
    """One rig's latest snapshot, or why it could not be read (then ``snapshot`` is None)."""

    rig: str
    snapshot: Snapshot | None
    published_at: float | None
    stale: bool
    problem: str | None = None


class RigsReader:
    """Reads every rig's snapshot from ``store``; a snapshot already parsed (same rig, same publish
    time) is not parsed again, so a dashboard polling each second parses only what changed.
    ``OSError`` (the store does not answer) reaches the caller."""

    def __init__(self, store: SnapshotStore, stale_after_s: float = RIG_STALE_S) -> None:
        self.store = store
        self.stale_after_s = stale_after_s
        self._parsed: dict[str, tuple[float, Snapshot]] = {}

    def read(self, now: float) -> list[RigReading]:
        out = []
        for rig in self.store.rigs():
            reading = self._read_one(rig, now)
            if reading is not None:
                out.append(reading)
        self._parsed = {r.rig: self._parsed[r.rig] for r in out if r.rig in self._parsed}
        return out

    def _read_one(self, rig: str, now: float) -> RigReading | None:
        try:
            published = self.store.latest(rig)
        except SchemaError as exc:  # the file store: not a regular file of sane size
            return RigReading(rig, None, None, True, str(exc))
        if published is None:
            return None
        stale = published.is_stale(now, self.stale_after_s)
        cached = self._parsed.get(rig)
        if cached is not None and cached[0] == published.published_at:
            return RigReading(rig, cached[1], published.published_at, stale)
        try:
            snap = parse_published(published)
        except (SchemaError, ValueError) as exc:
            return RigReading(rig, None, published.published_at, stale, str(exc))
        self._parsed[rig] = (published.published_at, snap)
        return RigReading(rig, snap, published.published_at, stale)


def base_reading(readings: list[RigReading], home: str) -> RigReading | None:
    """The rig whose queue, tasks and events the view shows: ``home`` while it is live, else the
    freshest live rig, else ``home``'s last snapshot, else the freshest of any."""
    readable = [r for r in readings if r.snapshot is not None]
    mine = next((r for r in readable if r.rig == home), None)
    if mine is not None and not mine.stale:
        return mine
    live = [r for r in readable if not r.stale]
    if live:
        return max(live, key=lambda r: r.published_at or 0.0)
    if mine is not None:
        return mine
    return max(readable, key=lambda r: r.published_at or 0.0, default=None)


def in_view_order(readings: list[RigReading], home: str) -> list[RigReading]:
    """``home`` first, then the others by name: each rig's cards stay in one place on the screen."""
    return sorted(readings, key=lambda r: (r.rig != home, r.rig))


def rig_views(readings: list[RigReading], home: str) -> tuple[RigView, ...]:
    views = []
    for r in in_view_order(readings, home):
        snap = r.snapshot
        views.append(RigView(rig=r.rig, published_at=r.published_at, stale=r.stale,
                             supervisor_pid=snap.supervisor_pid if snap else None,
                             gpus=len(snap.gpus) if snap else 0, workers=len(snap.workers) if snap else 0,
                             problem=r.problem))
    return tuple(views)


def merge_rigs(readings: list[RigReading], home: str) -> Snapshot | None:
    """One snapshot for the whole cluster (None: no rig has a readable snapshot): the base rig's,
    with every rig's GPUs and workers, each marked with its rig, every rig's command acks, the list
    of rigs, and each running task marked with the rig whose worker holds it (worker names repeat
    across rigs; a finished task's rig is in its last attempt)."""
    base = base_reading(readings, home)
    if base is None or base.snapshot is None:
        return None
    gpus: list[GpuView] = []
    workers: list[WorkerView] = []
    acks: list[CommandAck] = []
    for r in in_view_order(readings, home):
        if r.snapshot is not None:
            gpus += [replace(g, rig=r.rig) for g in r.snapshot.gpus]
            workers += [replace(w, rig=r.rig) for w in r.snapshot.workers]
            acks += r.snapshot.acks  # a command sent to any rig is acknowledged by that rig's supervisor
    holder = {w.current_task: w.rig for w in workers if w.current_task}
    running = tuple(replace(t, rig=holder.get(t.task_id, t.rig)) for t in base.snapshot.running)
    return replace(base.snapshot, gpus=tuple(gpus), workers=tuple(workers), acks=tuple(acks), running=running,
                   rigs=rig_views(readings, home))
