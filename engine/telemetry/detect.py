"""Choosing a GPU probe: NVML when a driver answers, the simulated rig when asked for,
otherwise a probe that says plainly there is no GPU (and why)."""

from __future__ import annotations

from engine.clock import Clock
from engine.telemetry.protocol import GpuProbe, GpuSample, ProbeStatus


class NoGpuProbe:
    """No GPU telemetry on this machine; ``status().detail`` explains why."""

    def __init__(self, detail: str = "no NVML: no GPU probe available") -> None:
        self._status = ProbeStatus(available=False, kind="none", detail=detail)

    def status(self) -> ProbeStatus:
        return self._status

    def sample(self) -> list[GpuSample]:
        return []

    def close(self) -> None:
        """Nothing to release."""


def detect_probe(simulated: bool = False, clock: Clock | None = None, sim: object | None = None) -> GpuProbe:
    """The simulated rig when ``simulated`` (shaped by ``sim``, galaxy.toml's [sim] table,
    when given); else NVML if it initialises; else NoGpuProbe saying why."""
    if simulated:
        from engine.telemetry.sim_rig import SimulatedRig

        return SimulatedRig.from_sim_config(sim, clock=clock) if sim is not None else SimulatedRig(clock=clock)
    from engine.telemetry.nvml import NvmlProbe

    probe = NvmlProbe()
    status = probe.status()
    if status.available:
        return probe
    probe.close()
    return NoGpuProbe(status.detail)
