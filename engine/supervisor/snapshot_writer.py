"""Writes the rig snapshot atomically with an increasing ``seq``, and evaluates alerts.

Queue detail (recent completions, failures, oldest waiting) is re-read only when the
queue's counts change or every ``DETAIL_REFRESH_S``: the tick must stay cheap even with
thousands of task files on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_bytes
from engine.config import GalaxyConfig
from engine.history import encode_history
from engine.model import Task
from engine.paths import RigPaths
from engine.queue.protocol import QueueCounts, TaskQueue, WaitingTask
from engine.snapshot import (
    SNAPSHOT_VERSION,
    AlertView,
    CommandAck,
    EventView,
    FileSnapshotStore,
    HostView,
    ModelDemandView,
    QueueView,
    Snapshot,
)
from engine.store.channels import SnapshotStore
from engine.store.outage import StoreOutage
from engine.supervisor import health
from engine.supervisor.alerts import AlertEngine
from engine.supervisor.history_keeper import HistoryKeeper
from engine.supervisor.snapshot_builder import (
    GpuHistory,
    WorkerInfo,
    gpu_views,
    running_claims,
    task_view,
    waiting_views,
    worker_views,
)
from engine.supervisor.write_health import LostLines, WriteHealth
from engine.telemetry.protocol import GpuProbe, GpuSample

DETAIL_REFRESH_S = 5.0
RECENT_N = 20
WAITING_N = 10
EVENTS_N = 30

WriteBytes = Callable[[Path, bytes], None]
"""Writes a whole file atomically (``engine.atomic.atomic_write_bytes``; tests pass a double)."""
LogFn = Callable[..., None]


def _silent(*_a: Any, **_k: Any) -> None:
    return None


class SnapshotWriter:
    def __init__(self, config: GalaxyConfig, paths: RigPaths, queue: TaskQueue, probe: GpuProbe, *,
                 simulated: bool, events_tail: Callable[[int], Sequence[EventView]] | None, pid: int,
                 extras: Callable[[float], dict[str, Any]] | None = None,
                 demand: Callable[[float], dict[str, ModelDemandView]] | None = None,
                 write_bytes: WriteBytes = atomic_write_bytes, log: LogFn = _silent,
                 history: HistoryKeeper | None = None, snapshots: SnapshotStore | None = None,
                 store_outage: StoreOutage | None = None, lost_lines: Sequence[LostLines] = ()) -> None:
        self.config, self.paths, self.queue, self.probe = config, paths, queue, probe
        self.write_bytes, self.log = write_bytes, log
        self.snapshots = snapshots if snapshots is not None else FileSnapshotStore(paths.snapshot, config.rig,
                                                                                    write_bytes=write_bytes)
        self.history = history if history is not None else HistoryKeeper(pid=pid)
        self.store_outage = store_outage if store_outage is not None else StoreOutage()  # the supervisor's view
        self.history_path = paths.history
        self.snapshot_health = WriteHealth("snapshot", paths.snapshot)
        self.history_health = WriteHealth("history", self.history_path, severity="warning")
        self.lost_lines = tuple(lost_lines)  # the shared logs' lost-line counts, as alerts
        self.simulated, self.events_tail, self.pid = simulated, events_tail, pid
        self.extras = extras  # nodes, escalations, extra waiting reasons (the cloud tier)
        self.demand = demand  # per-model demand learned from the event log (model_demand.py)
        self.seq = 0
        self.started_at: float | None = None
        self.histories: dict[int, GpuHistory] = {}
        self.next_write_at = float("-inf")
        self.last_snapshot: Snapshot | None = None
        self._counts: QueueCounts = QueueCounts()
        self._detail_at = float("-inf")
        self._recent: list[Task] = []
        self._failed: list[Task] = []
        self._running: list[Task] = []
        self._waiting: list[WaitingTask] = []
        self.alert_views: tuple[AlertView, ...] = ()
        self.errors: list[str] = []

    def maybe_write(self, now: float, workers: Sequence[WorkerInfo], samples: Sequence[GpuSample],
                    held: set[int], host: HostView, acks: tuple[CommandAck, ...], alerts: AlertEngine,
                    galaxy_pids: set[int], *, force: bool = False) -> Snapshot | None:
        self._refresh_queue(now)
        self._record_history(now, samples, workers, force)
        self._evaluate_alerts(now, workers, samples, alerts)
        if not force and now < self.next_write_at:
            return None
        self.next_write_at = now + self.config.thresholds.snapshot_interval_s
        snap = self.build(now, workers, samples, held, host, acks, galaxy_pids)
        self._publish(now, snap)
        self.last_snapshot = snap
        return snap

    def _record_history(self, now: float, samples: Sequence[GpuSample], workers: Sequence[WorkerInfo],
                        force: bool) -> None:
        """One history sample every few seconds; the file rewritten every few seconds (and on the last tick)."""
        try:
            self.history.observe(now, samples, workers, self._recent)
        except Exception as exc:  # noqa: BLE001 - history is a nicety; snapshots must go on
            self.errors.append(f"history sample failed: {exc}")
            return
        if self.history.write_due(now) or force:
            self._write(self.history_health, now, lambda: encode_history(self.history.view(now)))

    def _publish(self, now: float, snap: Snapshot) -> None:
        """Publish through the snapshot store; a failure is handled like a failed file write."""
        data = json.dumps(snap.to_dict(), separators=(",", ":")).encode()
        self._write(self.snapshot_health, now, lambda: data,
                    write=lambda _path, payload: self.snapshots.publish(self.config.rig, payload, now))

    def _write(self, health: WriteHealth, now: float, encode: Callable[[], bytes],
               write: WriteBytes | None = None) -> None:
        """Write one of our files; a failure (ENOSPC, EIO, any OSError) becomes an alert and a log line."""
        path = health.path
        try:
            (write or self.write_bytes)(path, encode())
        except OSError as exc:
            self.errors.append(f"{health.what} write failed: {exc}")
            if health.failed(now, exc):
                self.log(f"cannot write the {health.what}", path=str(path), error=health.last_error,
                         failures=health.failures)
            return
        failed = health.succeeded()
        if failed:
            self.log(f"{health.what} written again", path=str(path), failed_writes=failed)

    def build(self, now: float, workers: Sequence[WorkerInfo], samples: Sequence[GpuSample], held: set[int],
              host: HostView, acks: tuple[CommandAck, ...], galaxy_pids: set[int]) -> Snapshot:
        self.seq += 1
        status = self.probe.status().detail
        if self.config.source is None:
            status = f"{status}; {self.config.origin}"
        events: tuple[EventView, ...] = ()
        if self.events_tail is not None:
            try:
                events = tuple(self.events_tail(EVENTS_N))
            except Exception:  # noqa: BLE001 - a torn event log line must not stop snapshots
                events = ()
        extra: dict[str, Any] = {}
        if self.extras is not None:
            try:
                extra = dict(self.extras(now))
            except Exception as exc:  # noqa: BLE001 - routing views must not stop snapshots
                self.errors.append(f"snapshot extras failed: {exc}")
        extra_waiting = tuple(extra.pop("waiting", ()))
        model_demand: dict[str, ModelDemandView] = {}
        if self.demand is not None:
            try:
                model_demand = self.demand(now)
            except Exception as exc:  # noqa: BLE001 - workers then price with their tables, as before
                self.errors.append(f"model demand failed: {exc}")
        claims = running_claims(workers)
        return Snapshot(
            version=SNAPSHOT_VERSION, seq=self.seq, taken_at=now, rig=self.config.rig, simulated=self.simulated,
            telemetry_status=status, supervisor_pid=self.pid, started_at=self.started_at, host=host,
            gpus=gpu_views(samples, self.histories, workers, held, galaxy_pids),
            workers=worker_views(workers),
            queue=QueueView(counts={k: dict(v) for k, v in self._counts.by_state.items()},
                            waiting=waiting_views(self._waiting, workers) + extra_waiting),
            running=tuple(task_view(t, claims.get(t.task_id)) for t in self._running),
            recent=tuple(task_view(t) for t in self._recent),
            failed=tuple(task_view(t) for t in self._failed),
            alerts=self.alert_views, acks=acks, events=events, model_demand=model_demand,
            store_unreachable_since=self.store_outage.since, **extra)

    def _refresh_queue(self, now: float) -> None:
        if self.store_outage.down:
            return  # the last counts stand; asking a store that does not answer would stall the tick
        try:
            counts = self.queue.counts()
        except Exception as exc:  # noqa: BLE001
            self.errors.append(f"queue counts failed: {exc}")
            return
        changed = counts.by_state != self._counts.by_state
        self._counts = counts
        if not changed and now - self._detail_at < DETAIL_REFRESH_S:
            return
        self._detail_at = now
        self._recent = self._safe(lambda: self.queue.recent("complete", RECENT_N), self._recent)
        self._failed = self._safe(lambda: self.queue.recent("failed", RECENT_N * 2), self._failed)
        self._running = self._safe(lambda: self.queue.recent("processing", RECENT_N), self._running)
        self._waiting = self._safe(lambda: self.queue.oldest_waiting(now, WAITING_N), self._waiting)

    def _safe(self, fn: Callable[[], Any], fallback: Any) -> Any:
        try:
            return list(fn())
        except Exception as exc:  # noqa: BLE001
            self.errors.append(f"queue read failed: {exc}")
            return fallback

    def _evaluate_alerts(self, now: float, workers: Sequence[WorkerInfo], samples: Sequence[GpuSample],
                         alerts: AlertEngine) -> None:
        th = self.config.thresholds
        waiting = dict(self._counts.by_state.get("queue", {}))
        conditions = (health.gpu_conditions(samples, th) + health.worker_conditions(workers, th, now)
                      + health.failure_conditions(self._failed, th, now)
                      + [health.stall_condition(waiting, workers, samples, th, self._counts.lanes),
                         self.snapshot_health.condition(th.alert_clear_s),
                         health.store_condition(self.store_outage, th.alert_clear_s),
                         self.history_health.condition(th.alert_clear_s)])
        for lost in self.lost_lines:
            lost.observe()
            conditions.append(lost.condition(th.alert_clear_s))
        self.alert_views = alerts.evaluate(conditions, now)
        del self.errors[:-20]
