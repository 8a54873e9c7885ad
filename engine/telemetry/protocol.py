"""What any GPU probe returns. ``None`` in a field means "n/a": the card or driver does not
report it. A probe never raises for a missing field, and reports "no NVML" as a status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_mb: float | None


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str
    uuid: str | None = None
    util_pct: float | None = None
    mem_used_mb: float | None = None
    mem_total_mb: float | None = None
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    clock_sm_mhz: float | None = None
    clock_mem_mhz: float | None = None
    fan_pct: float | None = None
    throttle_reasons: tuple[str, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    simulated: bool = False
    error: str | None = None  # this GPU could not be read this time ("GPU is lost"); fields None


@dataclass(frozen=True)
class ProbeStatus:
    available: bool
    kind: str  # "nvml" | "simulated" | "none"
    detail: str  # human sentence: "NVML 12.550 driver 550.54, 5 GPUs" / "no NVML: libnvidia-ml.so.1 not found"
    driver: str | None = None
    gpu_count: int = 0


class GpuProbe(Protocol):
    def status(self) -> ProbeStatus: ...

    def sample(self) -> list[GpuSample]:
        """One reading of every GPU. Empty when no GPU (status says why)."""
        ...

    def close(self) -> None: ...
