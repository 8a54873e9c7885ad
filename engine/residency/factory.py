"""Building a worker's residency: the one place that decides which probe and backend a
worker's ResidencyManager gets, so a rig and ``--sim`` differ only in the probe.

- A CPU worker (no GPUs): ``NullResidency``.
- A GPU worker with an Ollama endpoint: ResidencyManager over ``OllamaBackend``.
- A GPU worker with an OpenAI-compatible endpoint (vLLM, llama.cpp) or none: the manager
  still switches script models, but leaves the LLM server's model alone (it cannot unload).
- Probe: NVML on a rig; the supervisor's snapshot file in ``--sim`` (the worker process
  cannot see the supervisor's in-memory simulated rig). ``simulated=None`` reads the
  snapshot's own ``simulated`` flag, so a worker needs no extra command-line flag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.clock import Clock
from engine.handlers.base import Handler
from engine.paths import RigPaths
from engine.residency.manager import EventSink, ResidencyEvent, ResidencyManager
from engine.residency.protocol import NullResidency, Residency
from engine.telemetry.protocol import GpuProbe


def event_log_sink(events: Any, worker_id: str) -> EventSink:
    """Residency events into the shared event log (``engine.events.EventLog``)."""

    def emit(e: ResidencyEvent) -> None:
        events.emit(e.event_type, worker_id=worker_id, gpu_id=e.gpu_ids[0] if e.gpu_ids else None,
                    message=e.message, severity=e.severity, alert_key=e.key, model=e.model,
                    gpu_ids=list(e.gpu_ids), **e.data)

    return emit


def make_worker_residency(*, gpu_ids: Sequence[int], backend_kind: str | None, endpoint: str | None,
                          handlers: Mapping[str, Handler] | Callable[[], Mapping[Any, Handler]],
                          paths: RigPaths, simulated: bool | None, clock: Clock, events: EventSink | None = None,
                          vram_free_timeout_s: float = 30.0, probe: GpuProbe | None = None) -> Residency:
    if not gpu_ids:
        return NullResidency()
    backend = None
    if backend_kind == "ollama" and endpoint:
        from engine.inference.ollama_backend import OllamaBackend

        backend = OllamaBackend(endpoint)
    if probe is None:
        probe = worker_probe(paths, simulated)
    return ResidencyManager(backend, handlers, probe, clock, tuple(gpu_ids), vram_free_timeout_s, events)


def worker_probe(paths: RigPaths, simulated: bool | None) -> GpuProbe:
    """``simulated`` None: ask the supervisor's snapshot whether the rig is simulated. A real
    rig gets NVML, or the snapshot's (the supervisor's NVML) view when NVML does not answer
    in this process."""
    from engine.residency.snapshot_probe import SnapshotGpuProbe

    if simulated is None:
        from engine.schema import SchemaError
        from engine.snapshot import read_snapshot

        try:
            snap = read_snapshot(paths.snapshot)
        except (SchemaError, ValueError, OSError):
            snap = None
        simulated = bool(snap and snap.simulated)
    if simulated:
        return SnapshotGpuProbe(paths.snapshot)
    from engine.telemetry.detect import detect_probe

    probe = detect_probe()
    return probe if probe.status().available else SnapshotGpuProbe(paths.snapshot)
