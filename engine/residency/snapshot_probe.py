"""A ``GpuProbe`` that reads the supervisor's snapshot file.

Why: in ``--sim`` mode the simulated rig lives in the supervisor's memory, and a worker
subprocess cannot see it. The supervisor publishes every GPU (memory used, processes)
in ``shared/state/snapshot.json`` several times a second; this probe turns that back into
``GpuSample``s, so the worker's residency code (wait until VRAM is freed, CPU-fallback
cross-check) is the very code that runs with NVML on a real rig, only fed from the file.
It lags the rig by one supervisor tick, which the VRAM wait's polling absorbs.
"""

from __future__ import annotations

from pathlib import Path

from engine.schema import SchemaError
from engine.snapshot import GpuView, read_snapshot
from engine.telemetry.protocol import GpuProcess, GpuSample, ProbeStatus


class SnapshotGpuProbe:
    def __init__(self, snapshot_path: Path) -> None:
        self.path = Path(snapshot_path)
        self._last_error: str | None = None
        self.last_taken_at: float | None = None
        """When the supervisor took the snapshot last read: the residency manager trusts
        "VRAM freed" only from a picture taken after it asked for the unload."""

    def status(self) -> ProbeStatus:
        try:
            snap = read_snapshot(self.path)
        except (SchemaError, ValueError, OSError) as exc:
            return ProbeStatus(available=False, kind="none", detail=f"snapshot {self.path} unreadable: {exc}")
        if snap is None:
            return ProbeStatus(available=False, kind="none", detail=f"no snapshot yet at {self.path}")
        return ProbeStatus(available=bool(snap.gpus), kind="simulated" if snap.simulated else "snapshot",
                           detail=f"from the supervisor's snapshot ({snap.telemetry_status})",
                           gpu_count=len(snap.gpus))

    def sample(self) -> list[GpuSample]:
        """Empty when there is no snapshot yet or it cannot be read (status says why)."""
        try:
            snap = read_snapshot(self.path)
        except (SchemaError, ValueError, OSError) as exc:
            self._last_error = str(exc)
            return []
        if snap is None:
            return []
        self.last_taken_at = snap.taken_at
        return [_to_sample(g) for g in snap.gpus]

    def close(self) -> None:
        """Nothing held open."""


def _to_sample(g: GpuView) -> GpuSample:
    return GpuSample(index=g.index, name=g.name, uuid=g.uuid, util_pct=g.util_pct, mem_used_mb=g.mem_used_mb,
                     mem_total_mb=g.mem_total_mb, temp_c=g.temp_c, power_w=g.power_w,
                     power_limit_w=g.power_limit_w, clock_sm_mhz=g.clock_sm_mhz, clock_mem_mhz=g.clock_mem_mhz,
                     fan_pct=g.fan_pct, throttle_reasons=tuple(g.throttle),
                     processes=tuple(GpuProcess(pid=p.pid, name=p.name, used_mb=p.used_mb) for p in g.processes),
                     simulated=g.simulated)
