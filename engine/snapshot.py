"""The rig snapshot: a versioned, immutable picture of everything, written every tick.

The supervisor is its only writer, through a ``SnapshotStore`` (engine.store.channels): the
file store's ``FileSnapshotStore`` writes ``shared/state/snapshot.json`` atomically, the Redis
store one key per rig. The dashboard, ``galaxy status --json`` and scripts are readers.
"n/a" fields are ``None``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import safeio
from engine.atomic import atomic_write_bytes
from engine.escalation.store import EscalationState
from engine.residency.machine import GpuState
from engine.routing.breaker import BreakerState
from engine.safeio import UnsafeFileError, read_json
from engine.safeio import read_bytes as safe_read_bytes
from engine.schema import SchemaError, from_plain, to_plain_dict
from engine.store.channels import PublishedSnapshot
from engine.store.settings import name_problem
from engine.supervisor.states import WState

SNAPSHOT_VERSION = 1
MAX_SNAPSHOT_BYTES = 32_000_000  # a real snapshot is tens of KB; anything near this is not ours


@dataclass(frozen=True)
class GpuProcessView:
    pid: int
    name: str
    used_mb: float | None
    galaxy: bool  # started by galaxy (a worker, or a backend galaxy manages)


@dataclass(frozen=True)
class GpuView:
    index: int
    name: str
    simulated: bool = False
    uuid: str | None = None
    util_pct: float | None = None
    mem_used_mb: float | None = None
    mem_total_mb: float | None = None
    mem_galaxy_mb: float | None = None  # galaxy's models/processes
    mem_other_mb: float | None = None  # processes galaxy did not start
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    fan_pct: float | None = None
    clock_sm_mhz: float | None = None
    clock_mem_mhz: float | None = None
    throttle: tuple[str, ...] = ()
    processes: tuple[GpuProcessView, ...] = ()
    util_history: tuple[float, ...] = ()
    temp_history: tuple[float, ...] = ()
    power_history: tuple[float, ...] = ()
    worker_id: str | None = None
    residency: GpuState = GpuState.IDLE
    resident_model: str | None = None
    degraded: str | None = None  # reason, when the card is marked degraded
    thermal_hold: bool = False
    rig: str | None = None  # set in a cluster view (engine.store.rigs_view): the rig this card is on


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    gpus: tuple[int, ...]
    state: WState
    state_reason: str | None = None
    pid: int | None = None
    role: str = "worker"
    preferred_classes: tuple[str, ...] = ()
    current_task: str | None = None
    task_name: str | None = None
    task_class: str | None = None
    task_started_at: float | None = None
    tokens_per_s: float | None = None
    progress: str | None = None  # partial output / progress line of the running task
    restarts: int = 0
    last_heartbeat: float | None = None
    backoff_until: float | None = None
    residency: GpuState = GpuState.IDLE
    resident_model: str | None = None
    endpoint: str | None = None
    llm_backend: str | None = None  # ollama | openai | router | none; None: not published (older supervisor)
    llm_models: tuple[str, ...] | None = None  # models its LLM server serves; None: any
    rig: str | None = None  # set in a cluster view (engine.store.rigs_view): the rig it runs on


@dataclass(frozen=True)
class WaitingView:
    task_id: str
    name: str
    task_class: str
    priority: int
    waiting_since: float
    reason: str


@dataclass(frozen=True)
class QueueView:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # state -> class -> n
    waiting: tuple[WaitingView, ...] = ()


@dataclass(frozen=True)
class TaskView:
    task_id: str
    name: str
    task_class: str
    status: str
    worker_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    tokens_per_s: float | None = None
    realtime_factor: float | None = None
    error: str | None = None
    retry_count: int = 0
    model: str | None = None  # the model it needs resident (the dashboard filters by it)
    rig: str | None = None
    """The rig of its worker, on a store shared by several rigs: from the attempt once it ended, from
    the rig whose worker holds it while it runs (engine.store.rigs_view)."""


@dataclass(frozen=True)
class AlertView:
    key: str  # stable id, e.g. "gpu_hot:1"
    severity: str  # warning | critical
    message: str
    since: float
    subject: str | None = None  # gpu index, worker id, task kind


@dataclass(frozen=True)
class CommandAck:
    command_id: str
    kind: str
    target: str | None
    outcome: str  # ok | refused | error
    message: str
    at: float
    source: str | None = None


@dataclass(frozen=True)
class EscalationView:
    escalation_id: str
    task_id: str
    state: EscalationState
    reason: str
    provider: str
    model: str
    est_input_tokens: int
    est_cost_usd: float
    budget_left_usd: float | None
    created_at: float
    expires_at: float | None
    preview: str  # exactly what would leave the rig (already redacted for display)


@dataclass(frozen=True)
class NodeView:
    name: str
    tier: int
    backend: str
    endpoint: str
    model: str
    healthy: bool | None
    latency_ms: float | None
    load: int
    breaker: BreakerState
    breaker_failures: int = 0
    next_probe_at: float | None = None
    context_window: int = 8192
    max_concurrency: int = 1
    external: bool = False


@dataclass(frozen=True)
class HostView:
    cpu_pct: float | None = None
    ram_used_mb: float | None = None
    ram_total_mb: float | None = None
    disk_free_gb: float | None = None
    load_avg: tuple[float, ...] = ()


@dataclass(frozen=True)
class EventView:
    at: float
    event_type: str
    message: str
    task_id: str | None = None
    worker_id: str | None = None
    rig: str | None = None  # the rig that wrote it, on a store several rigs share (worker names repeat)


@dataclass(frozen=True)
class ModelDemandView:
    """What the supervisor learned of one model from the event log (``engine.supervisor.model_demand``);
    workers put it into the claim policy's costs (``engine.worker.rigview``)."""

    workers_busy: float  # run time of its work that became claimable in the window / the window
    task_s: float | None = None  # median run (claim to completion) of recent tasks; None: not learned yet
    task_s_samples: int = 0  # completions behind task_s
    claimable: int = 0  # its tasks that became claimable in the window
    window_s: float = 3600.0


@dataclass(frozen=True)
class RigView:
    """One rig of a cluster view: when its supervisor last published, and whether it is STALE."""

    rig: str
    published_at: float | None
    stale: bool
    supervisor_pid: int | None = None
    gpus: int = 0
    workers: int = 0
    problem: str | None = None  # its snapshot could not be read (then it has no cards)


@dataclass(frozen=True)
class Snapshot:
    version: int
    seq: int
    taken_at: float
    rig: str
    simulated: bool
    telemetry_status: str  # "nvml ok (driver 550.x)", "simulated rig", "no NVML: <reason>"
    supervisor_pid: int | None = None
    started_at: float | None = None
    host: HostView = field(default_factory=HostView)
    gpus: tuple[GpuView, ...] = ()
    workers: tuple[WorkerView, ...] = ()
    queue: QueueView = field(default_factory=QueueView)
    running: tuple[TaskView, ...] = ()
    recent: tuple[TaskView, ...] = ()
    failed: tuple[TaskView, ...] = ()
    alerts: tuple[AlertView, ...] = ()
    acks: tuple[CommandAck, ...] = ()
    escalations: tuple[EscalationView, ...] = ()
    nodes: tuple[NodeView, ...] = ()
    events: tuple[EventView, ...] = ()
    model_demand: dict[str, ModelDemandView] = field(default_factory=dict)
    """model -> learned demand; empty from an older supervisor (readers fall back to their tables)."""
    store_unreachable_since: float | None = None
    """When the supervisor's store (Redis) stopped answering; None while it answers (and from an
    older supervisor). Workers keep their results and claims wait meanwhile (docs/cluster.md)."""
    rigs: tuple[RigView, ...] = ()
    """Every rig of the cluster, in a merged view (engine.store.rigs_view); a supervisor publishes none."""

    def to_dict(self) -> dict[str, Any]:
        return to_plain_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Snapshot:
        if not isinstance(data, dict):
            raise SchemaError("snapshot must be a JSON object")
        version = data.get("version")
        if version != SNAPSHOT_VERSION:
            raise SchemaError(f"snapshot version {version!r} is not {SNAPSHOT_VERSION}")
        return from_plain(cls, data)


def write_snapshot(path: Path, snap: Snapshot) -> None:
    atomic_write_bytes(path, json.dumps(snap.to_dict(), separators=(",", ":")).encode())


def read_snapshot(path: Path) -> Snapshot | None:
    """None when no supervisor has written one yet; SchemaError when it is malformed, or not
    a regular file of sane size and depth (the bounded reader, engine.safeio)."""
    try:
        data = read_json(path, MAX_SNAPSHOT_BYTES)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        raise SchemaError(str(exc)) from None
    return Snapshot.from_dict(data)


def rig_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a rig (it becomes a file name and a Redis key part), or None."""
    return name_problem("rig", name)


class FileSnapshotStore:
    """The file store's ``SnapshotStore``: this rig's snapshot at ``state/snapshot.json`` (where every
    reader has always looked), any other rig's at ``state/snapshots/<rig>.json``. The publish time is
    the file's mtime, set to the publisher's ``now``."""

    def __init__(self, snapshot_path: Path, rig: str, *,
                 write_bytes: Callable[[Path, bytes], None] = atomic_write_bytes) -> None:
        self.path = Path(snapshot_path)
        self.rig = rig
        self.others = self.path.parent / "snapshots"
        self.write_bytes = write_bytes

    def path_for(self, rig: str) -> Path:
        if rig == self.rig:
            return self.path
        why = rig_name_problem(rig)
        if why is not None:
            raise ValueError(why)
        return self.others / f"{rig}.json"

    def publish(self, rig: str, data: bytes, now: float) -> None:
        path = self.path_for(rig)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.write_bytes(path, data)
        os.utime(path, ns=(int(now * 1e9), int(now * 1e9)))

    def latest(self, rig: str) -> PublishedSnapshot | None:
        try:
            path = self.path_for(rig)
        except ValueError:
            return None
        try:
            data = safe_read_bytes(path, MAX_SNAPSHOT_BYTES)
            published_at = os.stat(path).st_mtime_ns / 1e9
        except FileNotFoundError:
            return None
        except UnsafeFileError as exc:
            raise SchemaError(str(exc)) from None
        return PublishedSnapshot(rig, data, published_at)

    def rigs(self) -> list[str]:
        names = {self.rig} if self.path.exists() else set()
        try:
            names.update(p.stem for p in self.others.glob("*.json") if rig_name_problem(p.stem) is None)
        except OSError:
            pass  # no other rig has published here
        return sorted(names)


def parse_published(published: PublishedSnapshot) -> Snapshot:
    """The snapshot in ``published`` (SchemaError naming the rig when it is not one)."""
    try:
        data = safeio.parse_json(f"snapshot of rig {published.rig}", published.data)
    except ValueError as exc:
        raise SchemaError(str(exc)) from None
    return Snapshot.from_dict(data)
