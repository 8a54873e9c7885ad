"""The worker's view of the rest of the rig, read from the supervisor's snapshot.

The claim policy's look-ahead (``engine.scheduling.policy``) leaves a lane to another
worker that already holds its model warm, or that can switch to it more cheaply. That
needs to know which *other* workers hold which model, idle or busy: the supervisor
writes exactly that into ``state/snapshot.json`` a few times a second, so the worker
reads it from there (no extra channel, no extra writer).

Wrong information here could leave work to a worker that will never take it, so only
peers the snapshot shows alive and claiming count: state ``running`` (not paused,
draining, hot or dead), a recent heartbeat, and a snapshot that is itself fresh. With
no usable snapshot the view is empty, which turns look-ahead off (every worker simply
takes what it ranks best): safe, just less clever. Aging bounds every wait anyway.

The snapshot also carries what the supervisor learned of each model from the event log
(``model_demand``: how many workers its last hour of work keeps busy, its typical run time);
``with_demand`` puts that into the costs, so a model the rig's work needs on two GPUs counts
as covered only while two other workers hold it (docs/scheduling.md).

Reading is cheap: the file is parsed again only when its (inode, mtime, size) changed,
and at most once per ``min_interval_s`` (the supervisor writes it every 0.5 s; a parse is
~2 ms for a 5-GPU rig, so a worker claiming non-stop spends under 0.5% of a core here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from engine.scheduling.costs import DEFAULT_MODEL_COSTS, ModelCost, SwitchCosts
from engine.scheduling.policy import IdlePeer, RigView
from engine.schema import SchemaError
from engine.snapshot import ModelDemandView, Snapshot, WorkerView, parse_published, read_snapshot
from engine.store.channels import SnapshotStore

SNAPSHOT_FRESH_S = 10.0
"""An older snapshot means no supervisor is writing: trust nothing in it."""
HEARTBEAT_FRESH_S = 20.0
"""A peer silent for longer may be hung or gone: do not leave work to it."""
CLAIMING_STATES = frozenset({"running"})

PACKAGED_MODEL_COSTS: dict[str, ModelCost] = {
    "tiny.en": ModelCost(load_s=4.0, unload_s=1.5, task_s=60.0),
    "all-MiniLM-L6-v2": ModelCost(load_s=4.0, unload_s=1.5, task_s=2.0),
}
"""The offline models galaxy ships with (handlers/models.py), at the field notes' whisper and
sentence-transformers figures (3-5 s loads). Without them the policy would price them as
unknown, LLM-sized switches and keep a card on whisper rather than take embedding work."""


def default_costs() -> SwitchCosts:
    return SwitchCosts(models={**DEFAULT_MODEL_COSTS, **PACKAGED_MODEL_COSTS})


def rig_view_from_snapshot(snap: Snapshot | None, worker_id: str, now: float, *,
                           costs: SwitchCosts | None = None, snapshot_fresh_s: float = SNAPSHOT_FRESH_S,
                           heartbeat_fresh_s: float = HEARTBEAT_FRESH_S) -> RigView:
    """Which other live workers hold which model warm (idle or busy), the idle peers, and the
    costs with each model's learned demand (``Snapshot.model_demand``) over ``costs``."""
    costs = costs or default_costs()
    if snap is None or now - snap.taken_at > snapshot_fresh_s:
        return RigView(costs=costs)
    costs = with_demand(costs, snap.model_demand)
    held_back = _gpus_held_back(snap)
    idle_warm: dict[str, int] = {}
    busy_warm: dict[str, int] = {}
    peers: list[IdlePeer] = []
    for w in snap.workers:
        if w.worker_id == worker_id or not _claiming(w, now, heartbeat_fresh_s, held_back):
            continue
        busy = w.current_task is not None
        if not busy:  # a CPU worker (no GPUs) is never the one to leave model work to
            peers.append(IdlePeer(w.resident_model, None if w.gpus else frozenset()))
        if w.resident_model:
            bucket = busy_warm if busy else idle_warm
            bucket[w.resident_model] = bucket.get(w.resident_model, 0) + 1
    return RigView(warm_elsewhere=idle_warm, busy_warm_elsewhere=busy_warm, idle_peers=tuple(peers), costs=costs)


def with_demand(costs: SwitchCosts, demand: Mapping[str, ModelDemandView]) -> SwitchCosts:
    """``costs`` with the supervisor's learned ``workers_busy`` and typical task time per model (a
    model the table does not know is priced as ``costs.unknown`` with them); the others as they are."""
    if not demand:
        return costs
    models = dict(costs.models)
    for model, d in demand.items():
        base = models.get(model, costs.unknown)
        task_s = d.task_s if d.task_s is not None and d.task_s > 0 else base.task_s
        models[model] = replace(base, workers_busy=max(0.0, d.workers_busy), task_s=task_s)
    return SwitchCosts(models=models, unknown=costs.unknown)


def _gpus_held_back(snap: Snapshot) -> set[int]:
    """GPUs that will not take work soon: thermal hold or degraded (e.g. VRAM never freed)."""
    return {g.index for g in snap.gpus if g.thermal_hold or g.degraded}


def _claiming(w: WorkerView, now: float, heartbeat_fresh_s: float, held_back: set[int]) -> bool:
    if w.state not in CLAIMING_STATES:
        return False
    if w.last_heartbeat is None or now - w.last_heartbeat > heartbeat_fresh_s:
        return False
    return not any(g in held_back for g in w.gpus)


class _ThrottledRigView:
    """The rig view from the latest snapshot, looked up at most every ``min_interval_s``;
    subclasses say where the snapshot comes from (``_refresh`` sets ``_snap``)."""

    worker_id: str
    now: Callable[[], float]
    costs: SwitchCosts
    min_interval_s: float
    _snap: Snapshot | None
    _checked_at: float

    def __call__(self) -> RigView:
        now = self.now()
        if now - self._checked_at >= self.min_interval_s:
            self._checked_at = now
            self._refresh()
        return rig_view_from_snapshot(self._snap, self.worker_id, now, costs=self.costs)

    def _refresh(self) -> None:
        raise NotImplementedError


class SnapshotRigView(_ThrottledRigView):
    """``Worker(rig_view=SnapshotRigView(paths.snapshot, worker_id, clock.now))``: called before
    every claim; returns an empty view (look-ahead off) whenever the snapshot is missing,
    stale or unreadable, and never raises."""

    def __init__(self, snapshot_path: Path, worker_id: str, now: Callable[[], float], *,
                 costs: SwitchCosts | None = None, min_interval_s: float = 0.5) -> None:
        self.path = Path(snapshot_path)
        self.worker_id = worker_id
        self.now = now
        self.costs = costs or default_costs()
        self.min_interval_s = min_interval_s
        self.reads = 0  # parses done (tests: proves the mtime cache works)
        self._stamp: tuple[int, int, int] | None = None
        self._snap: Snapshot | None = None
        self._checked_at = float("-inf")


    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self._snap = None, None
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # written by rename: a new inode every time
        if stamp == self._stamp:
            return
        try:
            snap = read_snapshot(self.path)
            self.reads += 1
        except (OSError, ValueError, SchemaError):  # half-written by a foreign tool, or a newer version
            self._stamp, self._snap = stamp, None  # read once per change: a bad file is not re-read every claim
            return
        self._stamp, self._snap = stamp, snap


class StoreRigView(_ThrottledRigView):
    """The rig view from the configured store's ``SnapshotStore`` (the Redis store): this rig's
    snapshot, looked up at most every ``min_interval_s`` and parsed only when a new one was
    published; empty (look-ahead off) while there is none, it is unreadable or the store does not
    answer. Never raises."""

    def __init__(self, snapshots: SnapshotStore, rig: str, worker_id: str, now: Callable[[], float], *,
                 costs: SwitchCosts | None = None, min_interval_s: float = 0.5) -> None:
        self.snapshots, self.rig, self.worker_id, self.now = snapshots, rig, worker_id, now
        self.costs = costs or default_costs()
        self.min_interval_s = min_interval_s
        self.reads = 0
        self._published_at: float | None = None
        self._snap: Snapshot | None = None
        self._checked_at = float("-inf")


    def _refresh(self) -> None:
        try:
            published = self.snapshots.latest(self.rig)
        except OSError:  # the store does not answer: no look-ahead until it does
            self._published_at, self._snap = None, None
            return
        if published is None:
            self._published_at, self._snap = None, None
            return
        if published.published_at == self._published_at:
            return
        try:
            snap = parse_published(published)
            self.reads += 1
        except (ValueError, SchemaError):
            snap = None
        self._published_at, self._snap = published.published_at, snap
