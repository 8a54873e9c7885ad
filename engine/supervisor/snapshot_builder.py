"""Turns what the supervisor knows this tick into an immutable ``Snapshot``.

Keeps the short per-GPU histories (a ring per metric) and explains why the oldest tasks
wait in operator words. Everything here is cheap: the queue is asked for counts and a few
recent tasks (cached by the supervisor), never walked file by file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from engine.config import GroupConfig
from engine.model import Executor, Task, TaskClass, TaskType
from engine.queue.protocol import WaitingTask
from engine.residency.machine import GpuState
from engine.scheduling.capability import (
    WorkerCapabilities,
    cannot_run,
    capabilities_of,
    effective_backend,
    waiting_reason,
)
from engine.snapshot import GpuProcessView, GpuView, TaskView, WaitingView, WorkerView
from engine.supervisor.states import WorkerRecord, WState
from engine.telemetry.protocol import GpuSample
from engine.workerstate import WorkerStatus

HISTORY_LEN = 32  # samples per metric per GPU in the snapshot (16 s at 2 snapshots/s: the cards' sparklines);
# the long history (15 min) is state/history.json (engine.supervisor.history_keeper), written every few seconds
LIVE_STATES = (WState.RUNNING, WState.PAUSED, WState.DRAINING, WState.STARTING)


@dataclass
class GpuHistory:
    util: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    temp: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    power: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))

    def add(self, s: GpuSample) -> None:
        for ring, v in ((self.util, s.util_pct), (self.temp, s.temp_c), (self.power, s.power_w)):
            if v is not None:
                ring.append(round(float(v), 1))


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as the snapshot builder sees it."""

    group: GroupConfig
    record: WorkerRecord
    pid: int | None
    status: WorkerStatus | None
    endpoint: str | None
    backend: str | None = None  # the backend its command line got (sim: the simulated Ollama)
    rig: str | None = None  # the rig it runs on (a task pinned elsewhere is not for it)

    def capabilities(self) -> WorkerCapabilities:
        """What its claims can run (the same rule the worker applies to itself)."""
        backend = effective_backend(self.backend or self.group.backend, self.endpoint)
        return capabilities_of(backend, self.group.models, role=self.group.role, rig=self.rig)


def gpu_views(samples: Sequence[GpuSample], histories: dict[int, GpuHistory], workers: Sequence[WorkerInfo],
              held: set[int], galaxy_pids: set[int]) -> tuple[GpuView, ...]:
    owner: dict[int, WorkerInfo] = {g: w for w in workers for g in w.group.gpus}
    views = []
    for s in samples:
        hist = histories.setdefault(s.index, GpuHistory())
        hist.add(s)
        procs = tuple(GpuProcessView(pid=p.pid, name=p.name, used_mb=p.used_mb, galaxy=p.pid in galaxy_pids)
                      for p in s.processes)
        galaxy_mb = sum(p.used_mb or 0.0 for p in procs if p.galaxy)
        other_mb = sum(p.used_mb or 0.0 for p in procs if not p.galaxy)
        w = owner.get(s.index)
        st = w.status if w else None
        views.append(GpuView(
            index=s.index, name=s.name, simulated=s.simulated, uuid=s.uuid, util_pct=s.util_pct,
            mem_used_mb=s.mem_used_mb, mem_total_mb=s.mem_total_mb,
            mem_galaxy_mb=galaxy_mb if procs else None, mem_other_mb=other_mb if procs else None,
            temp_c=s.temp_c, power_w=s.power_w, power_limit_w=s.power_limit_w, fan_pct=s.fan_pct,
            clock_sm_mhz=s.clock_sm_mhz, clock_mem_mhz=s.clock_mem_mhz, throttle=s.throttle_reasons,
            processes=procs, util_history=tuple(hist.util), temp_history=tuple(hist.temp),
            power_history=tuple(hist.power), worker_id=w.group.name if w else None,
            residency=st.residency if st else GpuState.IDLE, resident_model=st.resident_model if st else None,
            thermal_hold=s.index in held, degraded=fresh.gpu_degraded if (fresh := fresh_status(w)) else None))
    return tuple(views)


def is_fresh(w: WorkerInfo) -> bool:
    """The status file was written by the worker process that is alive now (not a dead predecessor)."""
    return fresh_status(w) is not None


def fresh_status(w: WorkerInfo | None) -> WorkerStatus | None:
    """The worker's status when it is fresh (see ``is_fresh``), else None."""
    st = w.status if w is not None else None
    if st is None or w is None or w.pid is None or st.pid != w.pid or w.record.state not in LIVE_STATES:
        return None
    return st


def worker_views(workers: Sequence[WorkerInfo]) -> tuple[WorkerView, ...]:
    out = []
    for w in workers:
        r, st = w.record, fresh_status(w)
        out.append(WorkerView(
            worker_id=w.group.name, gpus=w.group.gpus, state=r.state, state_reason=r.reason, pid=w.pid,
            role=w.group.role, preferred_classes=w.group.preferred_classes,
            current_task=st.current_task if st else None, task_name=st.task_name if st else None,
            task_class=st.task_class if st else None, task_started_at=st.task_started_at if st else None,
            tokens_per_s=st.tokens_per_s if st else None, progress=st.progress if st else None,
            restarts=r.restarts, last_heartbeat=r.last_heartbeat, backoff_until=r.backoff_until,
            residency=st.residency if st else GpuState.IDLE, resident_model=st.resident_model if st else None,
            endpoint=w.endpoint, llm_backend=(caps := w.capabilities()).llm_backend,
            llm_models=tuple(sorted(caps.llm_models)) if caps.llm_models is not None else None))
    return tuple(out)


def can_take(w: WorkerInfo, task_class: str, model: str | None = None, *, kind: str | None = None,
             executor: str = "worker", rig: str | None = None) -> bool:
    """Whether this worker's claims would offer it such a task: the function its own claim
    policy applies (scheduling.capability.cannot_run), from what the queue names record."""
    try:
        cls = TaskClass(task_class)
        task_kind = TaskType(kind) if kind else None
        role = Executor(executor)
    except ValueError:  # written by a newer galaxy: no worker of this version takes it
        return False
    return cannot_run(cls, model, w.capabilities(), kind=task_kind, executor=role, rig=rig) is None


def explain_wait(w: WaitingTask, workers: Sequence[WorkerInfo]) -> str:
    """The queue's reason, or (for a plain waiting task) what stands in its way on this rig."""
    unrunnable = waiting_reason(w, [x.capabilities() for x in workers])
    if unrunnable:
        return unrunnable  # "no worker serves model M": no worker's claim policy will offer it
    generic = (not w.reason) or w.reason in ("waiting", "queued", "ready", "pending")
    if not generic:
        return w.reason
    able = [x for x in workers if can_take(x, w.task_class, w.model, kind=w.kind, executor=w.executor, rig=w.rig)]
    if not able:
        return f"no worker for class {w.task_class}"
    live = [x for x in able if x.record.state in (WState.RUNNING, WState.DRAINING)]
    if not live:
        if any(x.record.state is WState.PAUSED and x.record.thermal_hold for x in able):
            return "thermal hold on every worker that can run it"
        if any(x.record.state is WState.PAUSED for x in able):
            return "worker paused"
        if any(x.record.state in (WState.STARTING, WState.BACKOFF) for x in able):
            return "worker starting"
        if w.executor == Executor.BRAIN.value:
            return "no brain worker is running (the task's executor is brain)"
        return f"no running worker for class {w.task_class}"
    if all(x.status is not None and x.status.current_task for x in live):
        return "all workers busy"
    return w.reason or "waiting for a claim"


def waiting_views(waiting: Iterable[WaitingTask], workers: Sequence[WorkerInfo]) -> tuple[WaitingView, ...]:
    return tuple(WaitingView(task_id=w.task_id, name=w.name, task_class=w.task_class, priority=w.priority,
                             waiting_since=w.waiting_since, reason=explain_wait(w, workers)) for w in waiting)


def running_claims(workers: Sequence[WorkerInfo]) -> dict[str, tuple[str, float]]:
    """task id -> (worker id, start time) from the live workers' status files."""
    out = {}
    for w in workers:
        st = w.status
        if is_fresh(w) and st is not None and st.current_task and st.task_started_at is not None:
            out[st.current_task] = (w.group.name, st.task_started_at)
    return out


def task_view(t: Task, claim: tuple[str, float] | None = None) -> TaskView:
    """A task for the snapshot. A running task's times are its current attempt's: the queue
    reports the claim as a ``running`` attempt; ``claim`` (worker, start) from the worker's
    status is the fallback for a queue that does not."""
    last = t.attempts[-1] if t.attempts else None
    started = last.started_at if last else None
    ended = last.ended_at if last else None
    rig = None
    if t.status.value == "processing" and (last is None or last.outcome != "running"):  # an older attempt's times
        started, ended = (claim[1] if claim else None), None
        worker = t.lease_owner or (claim[0] if claim else None)
    else:
        worker = (last.worker_id if last else None) or t.lease_owner
        rig = last.rig if last else None
    result = t.result or {}
    tps = result.get("tokens_per_s")
    rtf = result.get("realtime_factor")
    return TaskView(
        task_id=t.task_id, name=t.name, task_class=t.task_class.value, status=t.status.value,
        worker_id=worker, started_at=started, ended_at=ended,
        duration_s=round(ended - started, 3) if started and ended else None,
        tokens_per_s=float(tps) if isinstance(tps, (int, float)) and not isinstance(tps, bool) else None,
        realtime_factor=float(rtf) if isinstance(rtf, (int, float)) and not isinstance(rtf, bool) else None,
        error=t.error or (last.error if last and last.outcome != "running" else None), retry_count=t.retry_count,
        model=t.model, rig=rig)
