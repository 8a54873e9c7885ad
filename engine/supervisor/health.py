"""The alert conditions of one tick, computed from plain values (pure).

Kept apart from ``alerts.AlertEngine`` (which adds the sustained windows and hysteresis)
so each rule can be read and tested on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from engine.config import Thresholds
from engine.model import Task
from engine.queue.protocol import WaitingLane
from engine.store.outage import StoreOutage, clock_text
from engine.supervisor.alerts import Condition
from engine.supervisor.snapshot_builder import WorkerInfo, can_take, is_fresh
from engine.supervisor.states import WState
from engine.telemetry.protocol import GpuSample

_TRAILING_ID = re.compile(r"[-_. ]?\d+$")
_FANOUT_KEY = re.compile(r"\[[^\[\]]*\]$")  # a plan's for_each instance: ``name[key]``


def base_name(name: str) -> str:
    """``boom[a]`` and ``boom[b]`` (a plan's fan-out), ``job-3`` and ``job 12`` are one kind."""
    stripped = _FANOUT_KEY.sub("", name).rstrip()
    return _TRAILING_ID.sub("", stripped) or stripped or name


def task_kind(t: Task) -> str:
    """What "the same kind of task" means for the repeated-failure alert."""
    if t.type.value != "shell":
        return t.type.value
    return base_name(t.name)


def gpu_conditions(samples: Sequence[GpuSample], th: Thresholds) -> list[Condition]:
    out = []
    for s in samples:
        hot = s.temp_c is not None and s.temp_c >= th.temp_alert_c
        out.append(Condition(
            key=f"gpu_hot:{s.index}", active=hot, severity="critical" if hot and s.temp_c is not None and s.temp_c >= 95 else "warning",
            message=f"GPU {s.index} at {s.temp_c:.0f} C (alert at {th.temp_alert_c:.0f} C)" if hot else "",
            subject=str(s.index), raise_after_s=th.alert_window_s, clear_after_s=th.alert_clear_s))
    return out


def worker_conditions(workers: Sequence[WorkerInfo], th: Thresholds, now: float) -> list[Condition]:
    out = []
    for w in workers:
        r, wid = w.record, w.group.name
        looping = r.state is WState.FATAL or r.consecutive_crashes >= 2
        out.append(Condition(
            key=f"crash_loop:{wid}", active=looping, severity="critical" if r.state is WState.FATAL else "warning",
            message=f"worker {wid} keeps crashing: {r.reason}" if looping else "", subject=wid,
            raise_after_s=0.0, clear_after_s=th.alert_clear_s))
        silent_for = None
        if r.state in (WState.RUNNING, WState.PAUSED, WState.DRAINING) and r.last_heartbeat is not None:
            silent_for = now - r.last_heartbeat
        elif r.state is WState.STARTING and r.spawned_at is not None:
            silent_for = now - r.spawned_at
        silent = silent_for is not None and silent_for > th.heartbeat_silent_s
        out.append(Condition(
            key=f"worker_silent:{wid}", active=silent, severity="warning",
            message=f"worker {wid} has not sent a heartbeat for {silent_for:.0f}s" if silent else "",
            subject=wid, raise_after_s=0.0, clear_after_s=th.alert_clear_s))
        degraded = w.status.gpu_degraded if w.status is not None and is_fresh(w) else None
        gpus = ",".join(str(g) for g in w.group.gpus) or "none"
        out.append(Condition(
            key=f"gpu_degraded:{wid}", active=bool(degraded), severity="critical",
            message=(f"GPU {gpus} ({wid}) degraded: {degraded}; it takes no model work until its VRAM is free"
                     if degraded else ""),
            subject=wid, raise_after_s=0.0, clear_after_s=0.0))
    return out


def failure_conditions(failed: Sequence[Task], th: Thresholds, now: float) -> list[Condition]:
    counts: dict[str, int] = {}
    last_error: dict[str, str] = {}
    for t in failed:
        ended = t.attempts[-1].ended_at if t.attempts else None
        if ended is None or now - ended > th.failure_alert_window_s:
            continue
        k = task_kind(t)
        counts[k] = counts.get(k, 0) + 1
        last_error.setdefault(k, (t.error or "")[:120])
    out = []
    for k, n in counts.items():
        active = n >= th.failure_alert_count
        out.append(Condition(
            key=f"task_failures:{k}", active=active, severity="warning",
            message=(f"{n} '{k}' tasks failed in the last {th.failure_alert_window_s / 60:.0f} min; "
                     f"last error: {last_error[k]}") if active else "",
            subject=k, raise_after_s=0.0, clear_after_s=th.alert_clear_s))
    return out


def store_condition(outage: StoreOutage, clear_after_s: float) -> Condition:
    """Critical at once while the store does not answer: nothing is claimed or recorded meanwhile."""
    since = outage.since
    message = "" if since is None else (
        f"store unreachable since {clock_text(since)}: {outage.last_error} ({outage.failures} failed call(s)); "
        "workers keep finished results and claim nothing until it answers")
    return Condition(key="store_unreachable", active=since is not None, severity="critical", message=message,
                     subject="store", raise_after_s=0.0, clear_after_s=clear_after_s)


def could_take_any(w: WorkerInfo, waiting_by_class: dict[str, int], lanes: Sequence[WaitingLane]) -> bool:
    """Whether ``w``'s claims would offer it some waiting task: judged per lane (class, model,
    type, executor) like the worker's own claim filter; by class alone when the queue gives no lanes."""
    if lanes:
        return any(ln.count > 0 and can_take(w, ln.task_class, ln.model, kind=ln.kind, executor=ln.executor,
                                             rig=ln.rig) for ln in lanes)  # work pinned to another rig is not its
    served = sorted(w.capabilities().llm_models or ())  # by class alone: a model it serves stands in
    return any(n > 0 and can_take(w, c, served[0] if served else None, executor="any")
               for c, n in waiting_by_class.items())


def stall_condition(waiting_by_class: dict[str, int], workers: Sequence[WorkerInfo],
                    samples: Sequence[GpuSample], th: Thresholds, lanes: Sequence[WaitingLane] = ()) -> Condition:
    """Work waits that some running, idle worker could take, and the GPUs sit idle. Work no
    idle worker can take is no stall: its waiting reason says why ("no worker serves model M")."""
    idle_able = []
    for w in workers:
        if w.record.state is not WState.RUNNING:
            continue
        busy = w.status is not None and bool(w.status.current_task)
        if not busy and could_take_any(w, waiting_by_class, lanes):
            idle_able.append(w.group.name)
    gpus_idle = all((s.util_pct or 0.0) < 10.0 for s in samples)
    active = bool(idle_able) and gpus_idle
    total = sum(waiting_by_class.values())
    return Condition(
        key="stall", active=active, severity="warning",
        message=(f"{total} task(s) waiting while worker(s) {', '.join(idle_able)} sit idle"
                 f" for over {th.stall_window_s:.0f}s") if active else "",
        subject=None, raise_after_s=th.stall_window_s, clear_after_s=th.alert_clear_s)
