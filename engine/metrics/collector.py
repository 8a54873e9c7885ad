"""The Prometheus collector: one pass over the latest snapshot per scrape, plus the event feed.

Nothing is updated per tick: the supervisor already builds an immutable snapshot, and a
scrape turns the latest one into metric families (``families``, a pure function the tests
call with a canned snapshot). The endpoint asks for ``exposition``: the same families as
text, each section written again only when its inputs changed since the last scrape. The
one-hot states (a third of the series) are their own sections: they change when a model
loads or a worker stops, not with every reading. Label values come from fixed enums (worker states, GPU
residency states, breaker states, task classes), and every value of an enum is exported
(0 or 1), so a series never vanishes when a state is left. See docs/metrics.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.escalation.store import EscalationState
from engine.metrics.exposition import render
from engine.metrics.feed import NO_MODEL, UNKNOWN, EventFeed, Tallies
from engine.model import TaskClass
from engine.residency.machine import GpuState
from engine.routing.breaker import BreakerState
from engine.snapshot import GpuView, Snapshot
from engine.supervisor.states import WState

MIB = 1024 * 1024
GPU_LABELS = ("rig", "gpu", "uuid", "name")
RESIDENCY_STATES = tuple(s.value for s in GpuState)
WORKER_STATES = tuple(s.value for s in WState)
BREAKER_STATES = tuple(s.value for s in BreakerState)
ESCALATION_STATES = tuple(s.value for s in EscalationState)
QUEUE_STATES = ("held", "delayed", "queue", "processing", "awaiting", "complete", "failed")
TASK_CLASSES = tuple(c.value for c in TaskClass)
SEVERITIES = ("warning", "critical")

SnapshotFn = Callable[[], "Snapshot | None"]
SpentFn = Callable[[float], "float | None"]


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def _one_hot(fam: GaugeMetricFamily, base: list[str], states: Iterable[str], current: str) -> None:
    for state in states:
        fam.add_metric(base + [state], 1.0 if state == current else 0.0)


def families(snap: Snapshot | None, tallies: Tallies | None = None, *, spent_today_usd: float | None = None,
             budget_usd: float | None = None) -> list[Metric]:
    """Every galaxy metric for one snapshot and the event tallies (None: not known yet)."""
    out: list[Metric] = []
    if snap is not None:
        out += _rig(snap) + _gpus(snap) + _queue(snap) + _workers(snap) + _nodes(snap) + _escalations(snap)
    return out + _events(tallies or Tallies()) + _spend(spent_today_usd, budget_usd)


def _spend(spent_today_usd: float | None, budget_usd: float | None) -> list[Metric]:
    spent = _gauge("galaxy_escalation_cost_today_usd", "Cloud escalation spend today (UTC day), USD, from the cost ledger.")
    if spent_today_usd is not None:
        spent.add_metric([], spent_today_usd)
    budget = _gauge("galaxy_escalation_budget_usd", "The daily escalation budget (escalation.daily_budget_usd).")
    if budget_usd is not None:
        budget.add_metric([], budget_usd)
    return [spent, budget]


def _rig(snap: Snapshot) -> list[Metric]:
    info = _gauge("galaxy_rig_info", "The rig: 1, labelled with its name and whether it is simulated.",
                  ("rig", "simulated"))
    info.add_metric([snap.rig, "true" if snap.simulated else "false"], 1.0)
    taken = _gauge("galaxy_snapshot_timestamp_seconds", "When the supervisor took the snapshot behind this scrape.")
    taken.add_metric([], snap.taken_at)
    started = _gauge("galaxy_supervisor_start_time_seconds", "When the supervisor started (Unix time).")
    if snap.started_at is not None:
        started.add_metric([], snap.started_at)
    alerts = _gauge("galaxy_alerts", "Active alerts by severity.", ("severity",))
    for sev in SEVERITIES:
        alerts.add_metric([sev], float(sum(1 for a in snap.alerts if a.severity == sev)))
    return [info, taken, started, alerts]


_GPU_VALUES: tuple[tuple[str, str, str, float], ...] = (
    # (metric, doc, GpuView field, scale)
    ("galaxy_gpu_memory_used_bytes", "GPU memory used (DCGM_FI_DEV_FB_USED x 2^20).", "mem_used_mb", MIB),
    ("galaxy_gpu_memory_total_bytes", "GPU memory total (DCGM_FI_DEV_FB_TOTAL x 2^20).", "mem_total_mb", MIB),
    ("galaxy_gpu_memory_galaxy_bytes", "GPU memory held by galaxy's workers and models.", "mem_galaxy_mb", MIB),
    ("galaxy_gpu_utilization_percent", "GPU utilisation, 0-100 (DCGM_FI_DEV_GPU_UTIL).", "util_pct", 1.0),
    ("galaxy_gpu_temperature_celsius", "GPU temperature (DCGM_FI_DEV_GPU_TEMP).", "temp_c", 1.0),
    ("galaxy_gpu_power_watts", "GPU power draw (DCGM_FI_DEV_POWER_USAGE).", "power_w", 1.0),
    ("galaxy_gpu_power_limit_watts", "GPU power limit (DCGM_FI_DEV_POWER_MGMT_LIMIT).", "power_limit_w", 1.0),
    ("galaxy_gpu_fan_speed_percent", "GPU fan speed, 0-100 (DCGM_FI_DEV_FAN_SPEED).", "fan_pct", 1.0),
    ("galaxy_gpu_sm_clock_hertz", "GPU SM clock (DCGM_FI_DEV_SM_CLOCK x 10^6).", "clock_sm_mhz", 1e6),
    ("galaxy_gpu_memory_clock_hertz", "GPU memory clock (DCGM_FI_DEV_MEM_CLOCK x 10^6).", "clock_mem_mhz", 1e6),
)


def _gpus(snap: Snapshot) -> list[Metric]:
    return _gpu_values(snap) + _gpu_states(snap)


def _gpu_base(snap: Snapshot, g: GpuView) -> list[str]:
    return [snap.rig, str(g.index), g.uuid or "", g.name]


def _gpu_values(snap: Snapshot) -> list[Metric]:
    """The readings (they move every tick)."""
    values = [(_gauge(name, doc, GPU_LABELS), attr, scale) for name, doc, attr, scale in _GPU_VALUES]
    for g in snap.gpus:
        base = _gpu_base(snap, g)
        for fam, attr, scale in values:
            v = getattr(g, attr)
            if v is not None:  # "n/a" from NVML: no sample rather than a made-up 0
                fam.add_metric(base, float(v) * scale)
    return [fam for fam, _a, _s in values]


def _gpu_states(snap: Snapshot) -> list[Metric]:
    """Residency, resident model, thermal hold, degraded (they change when a model loads or leaves)."""
    residency = _gauge("galaxy_gpu_residency_state", "The GPU's residency state (1 for the current one).",
                       GPU_LABELS + ("state",))
    resident = _gauge("galaxy_gpu_resident_model", "The model resident on the GPU (1; absent when none).",
                      GPU_LABELS + ("model",))
    hold = _gauge("galaxy_gpu_thermal_hold", "1 while the thermal guard holds new work off the GPU.", GPU_LABELS)
    degraded = _gauge("galaxy_gpu_degraded", "1 while the GPU is marked degraded (VRAM not freed).", GPU_LABELS)
    for g in snap.gpus:
        base = _gpu_base(snap, g)
        _one_hot(residency, base, RESIDENCY_STATES, g.residency)
        if g.resident_model:
            resident.add_metric(base + [g.resident_model], 1.0)
        hold.add_metric(base, 1.0 if g.thermal_hold else 0.0)
        degraded.add_metric(base, 1.0 if g.degraded else 0.0)
    return [residency, resident, hold, degraded]


def _queue(snap: Snapshot) -> list[Metric]:
    fam = _gauge("galaxy_queue_tasks", "Tasks by queue state and class (complete and failed: since the ledger began).",
                 ("state", "class"))
    counts = snap.queue.counts
    states = QUEUE_STATES + tuple(sorted(set(counts) - set(QUEUE_STATES)))
    for state in states:
        by_class = counts.get(state, {})
        for cls in TASK_CLASSES + tuple(sorted(set(by_class) - set(TASK_CLASSES))):
            fam.add_metric([state, cls], float(by_class.get(cls, 0)))
    return [fam]


def _workers(snap: Snapshot) -> list[Metric]:
    return _worker_states(snap) + _worker_values(snap)


def _worker_states(snap: Snapshot) -> list[Metric]:
    state = _gauge("galaxy_worker_state", "The worker's state (1 for the current one).", ("worker", "state"))
    for w in snap.workers:
        _one_hot(state, [w.worker_id], WORKER_STATES, w.state)
    return [state]


def _worker_values(snap: Snapshot) -> list[Metric]:
    restarts = _counter("galaxy_worker_restarts", "Restarts of the worker since the supervisor started.", ("worker",))
    beat = _gauge("galaxy_worker_last_heartbeat_timestamp_seconds", "The worker's last heartbeat (Unix time).",
                  ("worker",))
    tps = _gauge("galaxy_tokens_per_second", "Generation speed of the running LLM task (absent when none).",
                 ("model", "node"))
    running = _gauge("galaxy_worker_busy", "1 while the worker runs a task.", ("worker",))
    for w in snap.workers:
        restarts.add_metric([w.worker_id], float(w.restarts))
        if w.last_heartbeat is not None:
            beat.add_metric([w.worker_id], w.last_heartbeat)
        running.add_metric([w.worker_id], 1.0 if w.current_task else 0.0)
        if w.tokens_per_s is not None and w.current_task:
            tps.add_metric([w.resident_model or UNKNOWN, w.worker_id], w.tokens_per_s)
    return [restarts, beat, running, tps]


def _nodes(snap: Snapshot) -> list[Metric]:
    return _node_states(snap) + _node_values(snap)


def _node_states(snap: Snapshot) -> list[Metric]:
    breaker = _gauge("galaxy_node_breaker_state", "The node's circuit breaker (1 for the current state).",
                     ("node", "state"))
    for n in snap.nodes:
        _one_hot(breaker, [n.name], BREAKER_STATES, n.breaker)
    return [breaker]


def _node_values(snap: Snapshot) -> list[Metric]:
    healthy = _gauge("galaxy_node_healthy", "1 when the node's last health check passed (absent before one).", ("node",))
    latency = _gauge("galaxy_node_latency_seconds", "The node's last health-check latency.", ("node",))
    load = _gauge("galaxy_node_load", "Requests the node is serving now.", ("node",))
    failures = _gauge("galaxy_node_breaker_failures", "Consecutive failures the breaker counted.", ("node",))
    for n in snap.nodes:
        if n.healthy is not None:
            healthy.add_metric([n.name], 1.0 if n.healthy else 0.0)
        if n.latency_ms is not None:
            latency.add_metric([n.name], n.latency_ms / 1000.0)
        load.add_metric([n.name], float(n.load))
        failures.add_metric([n.name], float(n.breaker_failures))
    return [healthy, latency, load, failures]


def _escalations(snap: Snapshot) -> list[Metric]:
    fam = _gauge("galaxy_escalations", "Escalations in the snapshot by state (every open one; the last few decided).",
                 ("state",))
    for state in ESCALATION_STATES:
        fam.add_metric([state], float(sum(1 for e in snap.escalations if e.state == state)))
    return [fam]


def _events(t: Tallies) -> list[Metric]:
    dur = HistogramMetricFamily("galaxy_task_duration_seconds", "Claim-to-completion time of completed tasks.",
                                labels=["class", "model"])
    for (cls, model), h in sorted(t.durations.items()):
        dur.add_metric([cls, model], h.cumulative(), h.total)
    failed = _counter("galaxy_tasks_failed", "Tasks that failed for good, by class.", ("class",))
    for cls in TASK_CLASSES + tuple(sorted(set(t.failed) - set(TASK_CLASSES))):
        failed.add_metric([cls], float(t.failed.get(cls, 0)))
    tokens = _counter("galaxy_tokens_generated", "Tokens generated by completed tasks.", ("model", "node"))
    for (model, node), n in sorted(t.tokens.items()):
        tokens.add_metric([model, node], float(n))
    loads = _counter("galaxy_model_loads", "LLM loads that succeeded.", ("model", "node"))
    for key, n in sorted(t.loads.items()):
        loads.add_metric(list(key), float(n))
    load_s = _counter("galaxy_model_load_seconds", "Seconds spent loading LLMs (the backend's load time).",
                      ("model", "node"))
    for key, sec in sorted(t.load_seconds.items()):
        load_s.add_metric(list(key), sec)
    load_failures = _counter("galaxy_model_load_failures", "LLM loads that failed.", ("model", "node"))
    for key, n in sorted(t.load_failures.items()):
        load_failures.add_metric(list(key), float(n))
    unloads = _counter("galaxy_model_unloads", "Model unloads (LLM unloads and released script models).",
                       ("model", "node"))
    for key, n in sorted(t.unloads.items()):
        unloads.add_metric(list(key), float(n))
    esc = _counter("galaxy_escalation_events", "Escalation lifecycle events since the supervisor started.", ("event",))
    for event, n in t.escalations.items():
        esc.add_metric([event], float(n))
    skipped = _counter("galaxy_metrics_event_lines_skipped", "Event log lines the metrics feed could not read.")
    skipped.add_metric([], float(t.skipped_lines))
    return [dur, failed, tokens, loads, load_s, load_failures, unloads, esc, skipped]


class GalaxyCollector(Collector):
    """Registered on its own registry; ``collect`` runs in the HTTP server's thread, under a lock."""

    def __init__(self, snapshot: SnapshotFn, feed: EventFeed | None = None, *, spent_today: SpentFn | None = None,
                 budget_usd: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.snapshot, self.feed, self.spent_today = snapshot, feed, spent_today
        self.budget_usd, self.clock = budget_usd, clock
        self._lock = threading.Lock()
        self._sections: dict[str, tuple[Any, bytes]] = {}  # name -> (the inputs it was written from, its text)

    def describe(self) -> list[Metric]:
        return []  # registering must not scrape

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snap, tallies, spent = self._inputs()
            fams = families(snap, tallies, spent_today_usd=spent, budget_usd=self.budget_usd)
        yield from fams

    def exposition(self) -> bytes:
        """``collect``'s families in the text format; a section whose inputs are unchanged is not written again."""
        with self._lock:
            snap, tallies, spent = self._inputs()
            parts: list[bytes] = []
            if snap is not None:
                s = snap
                parts.append(render(_rig(s)))
                gpu_ids = tuple((g.index, g.uuid, g.name) for g in s.gpus)
                parts.append(self._section("gpu-values", (s.rig, gpu_ids, tuple(
                    tuple(getattr(g, attr) for _n, _d, attr, _s in _GPU_VALUES) for g in s.gpus)), lambda: _gpu_values(s)))
                parts.append(self._section("gpu-states", (s.rig, gpu_ids, tuple(
                    (g.residency, g.resident_model, g.thermal_hold, g.degraded) for g in s.gpus)), lambda: _gpu_states(s)))
                parts.append(self._section("queue", s.queue.counts, lambda: _queue(s)))
                parts.append(self._section("worker-states", tuple((w.worker_id, w.state) for w in s.workers),
                                           lambda: _worker_states(s)))
                parts.append(self._section("worker-values", tuple(
                    (w.worker_id, w.restarts, w.last_heartbeat, w.current_task, w.tokens_per_s, w.resident_model)
                    for w in s.workers), lambda: _worker_values(s)))
                parts.append(self._section("node-states", tuple((n.name, n.breaker) for n in s.nodes),
                                           lambda: _node_states(s)))
                parts.append(self._section("node-values", tuple(
                    (n.name, n.healthy, n.latency_ms, n.load, n.breaker_failures) for n in s.nodes),
                    lambda: _node_values(s)))
                parts.append(self._section("escalations", tuple(e.state for e in s.escalations),
                                           lambda: _escalations(s)))
            generation = (self.feed.generation, self.feed.tallies.skipped_lines) if self.feed is not None else None
            parts.append(self._section("events", generation, lambda: _events(tallies or Tallies())))
            parts.append(render(_spend(spent, self.budget_usd)))
        return b"".join(parts)

    def _section(self, name: str, key: Any, build: Callable[[], list[Metric]]) -> bytes:
        cached = self._sections.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = render(build())
        self._sections[name] = (key, text)
        return text

    def _inputs(self) -> tuple[Snapshot | None, Tallies | None, float | None]:
        """The latest snapshot, the event tallies brought up to date, today's spend."""
        snap = self.snapshot()
        tallies = None
        if self.feed is not None:
            if snap is not None:
                self.feed.remember_all((t.task_id, t.model) for t in snap.running + snap.recent)
            self.feed.update(self.clock())
            tallies = self.feed.tallies
        spent = None
        if self.spent_today is not None:
            try:
                spent = self.spent_today(self.clock())
            except (OSError, ValueError):
                spent = None
        return snap, tallies, spent


__all__ = ["NO_MODEL", "UNKNOWN", "GalaxyCollector", "families"]
