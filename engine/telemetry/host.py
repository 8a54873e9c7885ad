"""Host telemetry through psutil: CPU, RAM, disk free under the shared root, load average.

Why cheap: the supervisor samples every tick. ``cpu_percent(interval=None)`` never blocks;
it reports the CPU use since the previous call (the probe primes it once at construction,
so the first real sample is meaningful).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from engine.snapshot import HostView

T = TypeVar("T")

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class HostSample:
    cpu_pct: float | None = None
    cpu_count: int | None = None
    ram_used_mb: float | None = None
    ram_total_mb: float | None = None
    disk_free_gb: float | None = None
    disk_total_gb: float | None = None
    load_avg: tuple[float, ...] = ()

    def view(self) -> HostView:
        """The snapshot's slice of this sample."""
        return HostView(cpu_pct=self.cpu_pct, ram_used_mb=self.ram_used_mb,
                        ram_total_mb=self.ram_total_mb, disk_free_gb=self.disk_free_gb,
                        load_avg=self.load_avg)


def existing_ancestor(path: Path) -> Path:
    """The path itself or its nearest existing parent (a fresh rig has no shared/ yet)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


class HostProbe:
    def __init__(self, root: Path) -> None:
        import psutil

        self._psutil = psutil
        self._root = Path(root)
        self._cpu_count = psutil.cpu_count()
        psutil.cpu_percent(interval=None)  # prime: the next call measures since now

    def sample(self) -> HostSample:
        ps = self._psutil
        cpu = _safe(lambda: float(ps.cpu_percent(interval=None)))
        vm = _safe(ps.virtual_memory)
        disk = _safe(lambda: ps.disk_usage(str(existing_ancestor(self._root))))
        load = _safe(os.getloadavg)
        return HostSample(
            cpu_pct=cpu, cpu_count=self._cpu_count,
            ram_used_mb=round((vm.total - vm.available) / MB, 1) if vm else None,
            ram_total_mb=round(vm.total / MB, 1) if vm else None,
            disk_free_gb=round(disk.free / GB, 2) if disk else None,
            disk_total_gb=round(disk.total / GB, 2) if disk else None,
            load_avg=tuple(round(x, 2) for x in load) if load else (),
        )


def _safe(fn: Callable[[], T]) -> T | None:
    """A host reading that fails (odd containers, permissions) is n/a, never a crash."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - psutil and /proc raise many kinds here; the reading is just n/a
        return None
