"""The rig snapshot: a versioned, immutable picture of everything, written every tick.

The supervisor is its only writer (atomically, to ``shared/state/snapshot.json``); the
dashboard, ``galaxy status --json`` and scripts are readers. "n/a" fields are ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_bytes
from engine.escalation.store import EscalationState
from engine.residency.machine import GpuState
from engine.routing.breaker import BreakerState
from engine.safeio import UnsafeFileError, read_json
from engine.schema import SchemaError, from_plain, to_plain_dict
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
