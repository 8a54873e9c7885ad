"""Real GPU telemetry through NVML (the ``nvidia-ml-py`` package, module ``pynvml``).

Why this shape (after nvitop's ``api/libnvml.py``): every NVML call goes through one query
helper that turns "this card does not report that" (NotSupported, NoPermission,
FunctionNotFound, a missing binding in an old pynvml) into ``None``, so one passive-cooled
card without a fan reading never breaks a sample. "GPU is lost" and similar per-device
failures mark that one GPU's sample with ``error`` and leave the others intact. A machine
without the library or driver gets a clear ``ProbeStatus``, never a traceback.

``pynvml`` is imported lazily (inside methods), so importing galaxy never needs a driver.
Tests inject a double of the module through ``NvmlProbe(nvml_module=...)``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from engine.telemetry.protocol import GpuProcess, GpuSample, ProbeStatus

_LOG = logging.getLogger(__name__)

MIB = 1024 * 1024

# NVML's clocks-event (throttle) reason bits: stable ABI values from nvml.h.
THROTTLE_BITS: tuple[tuple[int, str], ...] = (
    (0x001, "idle"),
    (0x002, "app_clocks"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal"),
    (0x040, "hw_thermal"),
    (0x080, "hw_power_brake"),
    (0x100, "display_clocks"),
)

# Errors that mean "the card cannot tell us this", answered with None ("n/a").
_NA_ERRORS = ("NVMLError_NotSupported", "NVMLError_NoPermission", "NVMLError_FunctionNotFound",
              "NVMLError_InvalidArgument", "NVMLError_NotFound", "NVMLError_Unknown")
# Errors that mean the whole device is unusable this sample.
_DEVICE_ERRORS = ("NVMLError_GpuIsLost", "NVMLError_ResetRequired", "NVMLError_Uninitialized")

_INIT_HINTS = {
    "NVMLError_LibraryNotFound": "libnvidia-ml.so.1 not found (is the NVIDIA driver installed?)",
    "NVMLError_DriverNotLoaded": "the NVIDIA driver is not loaded (nvidia kernel module missing?)",
    "NVMLError_LibRmVersionMismatch": "driver/library version mismatch (reboot or reload the nvidia "
                                      "kernel module after a driver upgrade)",
    "NVMLError_NoPermission": "no permission to open the GPU devices (/dev/nvidia*)",
}


def decode_throttle_reasons(mask: int | None) -> tuple[str, ...]:
    """NVML's bit mask as short names, e.g. 0x24 -> ("sw_power_cap", "sw_thermal")."""
    if not mask:
        return ()
    names = [name for bit, name in THROTTLE_BITS if mask & bit]
    unknown = mask & ~sum(bit for bit, _ in THROTTLE_BITS)
    if unknown:
        names.append(f"other_0x{unknown:x}")
    return tuple(names)


def _text(value: Any) -> str:
    """pynvml returns str in new versions and bytes in old ones."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


NOT_VISIBLE = "(not visible)"
"""Ends the name of a process this machine cannot see (another container's pid): it may be anyone's."""


def _process_name(pid: int) -> str:
    """The process's name when this machine can see it (other containers' pids cannot be)."""
    try:
        import psutil
    except ImportError:
        return f"pid {pid} {NOT_VISIBLE}"
    try:
        return str(psutil.Process(pid).name())
    except (psutil.Error, OSError):  # NoSuchProcess, AccessDenied, ZombieProcess
        return f"pid {pid} {NOT_VISIBLE}"


class _DeviceLost(Exception):
    """Raised inside one device's sample to abandon it with a reason."""


class NvmlProbe:
    """``GpuProbe`` over NVML. Initialises once (on first use), caches device handles."""

    def __init__(self, nvml_module: ModuleType | Any | None = None,
                 process_name: Callable[[int], str] = _process_name) -> None:
        self._module = nvml_module
        self._process_name = process_name
        self._lock = threading.Lock()
        self._tried = False
        self._nvml: Any = None
        self._status = ProbeStatus(available=False, kind="none", detail="no NVML: not initialised")
        self._handles: list[Any] = []
        self._names: list[str] = []
        self._uuids: list[str | None] = []
        self._pid_names: dict[int, str] = {}

    # --- GpuProbe ---
    def status(self) -> ProbeStatus:
        with self._lock:
            self._ensure_init()
            return self._status

    def sample(self) -> list[GpuSample]:
        with self._lock:
            if not self._ensure_init():
                return []
            seen: set[int] = set()
            out = [self._sample_device(i, seen) for i in range(len(self._handles))]
            self._pid_names = {p: n for p, n in self._pid_names.items() if p in seen}
            return out

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None and self._status.available:
                try:
                    self._nvml.nvmlShutdown()
                except Exception as exc:  # noqa: BLE001 - NVMLError or a broken library: we are closing anyway
                    _LOG.debug("nvmlShutdown failed: %s", exc)
            self._nvml = None
            self._handles, self._names, self._uuids = [], [], []
            self._pid_names = {}
            self._tried = False
            self._status = ProbeStatus(available=False, kind="none", detail="no NVML: probe closed")

    # --- init ---
    def _ensure_init(self) -> bool:
        if self._tried:
            return self._status.available
        self._tried = True
        try:
            nvml = self._module if self._module is not None else importlib.import_module("pynvml")
        except ImportError as exc:
            self._status = ProbeStatus(False, "none", f"no NVML: the nvidia-ml-py package is not "
                                                      f"installed ({exc})")
            return False
        try:
            nvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - NVMLError subclasses, or OSError from a broken library
            hint = _INIT_HINTS.get(type(exc).__name__, f"{type(exc).__name__}: {exc}")
            self._status = ProbeStatus(False, "none", f"no NVML: {hint}")
            return False
        self._nvml = nvml
        driver = self._na(nvml, "nvmlSystemGetDriverVersion")
        driver = _text(driver) if driver is not None else None
        version = self._na(nvml, "nvmlSystemGetNVMLVersion")
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:  # noqa: BLE001 - NVMLError of any kind: no GPUs to show, with why
            self._status = ProbeStatus(False, "none", f"no NVML: cannot count GPUs ({exc})", driver=driver)
            return False
        for i in range(count):
            handle, name, uuid = None, None, None
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                name = self._na(nvml, "nvmlDeviceGetName", handle)
                uuid = self._na(nvml, "nvmlDeviceGetUUID", handle)
            except Exception as exc:  # noqa: BLE001 - a lost card keeps its slot; each sample reports its error
                _LOG.debug("GPU %d: no handle at init: %s", i, exc)
            self._names.append(_text(name) if name is not None else f"GPU {i}")
            self._uuids.append(_text(uuid) if uuid is not None else None)
            self._handles.append(handle)
        detail = (f"NVML {_text(version) if version is not None else '?'} driver {driver or '?'}, "
                  f"{count} GPU{'s' if count != 1 else ''}")
        self._status = ProbeStatus(True, "nvml", detail, driver=driver, gpu_count=count)
        return True

    # --- queries ---
    def _na(self, nvml: Any, fn_name: str, *args: Any) -> Any:
        """One NVML call: None when the card or binding cannot answer; _DeviceLost when the
        device itself is gone."""
        fn = getattr(nvml, fn_name, None)
        if fn is None:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            name = type(exc).__name__
            if name in _DEVICE_ERRORS:
                raise _DeviceLost(str(exc) or name) from exc
            if name in _NA_ERRORS or name == "NVMLLibraryMismatchError" or self._is_nvml_error(exc):
                return None
            raise

    def _is_nvml_error(self, exc: Exception) -> bool:
        base = getattr(self._nvml, "NVMLError", None)
        return isinstance(base, type) and isinstance(exc, base)

    def _sample_device(self, i: int, seen: set[int]) -> GpuSample:
        handle, name, uuid = self._handles[i], self._names[i], self._uuids[i]
        if handle is None:
            return GpuSample(index=i, name=name, uuid=uuid, error="device handle unavailable")
        try:
            return self._read_device(i, handle, name, uuid, seen)
        except _DeviceLost as exc:
            return GpuSample(index=i, name=name, uuid=uuid, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - anything unexpected stays with this one GPU
            return GpuSample(index=i, name=name, uuid=uuid, error=f"{type(exc).__name__}: {exc}")

    def _read_device(self, i: int, h: Any, name: str, uuid: str | None, seen: set[int]) -> GpuSample:
        nvml, q = self._nvml, self._na
        util = q(nvml, "nvmlDeviceGetUtilizationRates", h)
        mem = q(nvml, "nvmlDeviceGetMemoryInfo", h)
        temp = q(nvml, "nvmlDeviceGetTemperature", h, getattr(nvml, "NVML_TEMPERATURE_GPU", 0))
        power_mw = q(nvml, "nvmlDeviceGetPowerUsage", h)
        limit_mw = q(nvml, "nvmlDeviceGetEnforcedPowerLimit", h)
        sm = q(nvml, "nvmlDeviceGetClockInfo", h, getattr(nvml, "NVML_CLOCK_SM", 1))
        mem_clock = q(nvml, "nvmlDeviceGetClockInfo", h, getattr(nvml, "NVML_CLOCK_MEM", 2))
        reasons = q(nvml, "nvmlDeviceGetCurrentClocksEventReasons", h)
        if reasons is None:
            reasons = q(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", h)
        fan = q(nvml, "nvmlDeviceGetFanSpeed", h)
        return GpuSample(
            index=i, name=name, uuid=uuid,
            util_pct=_num(getattr(util, "gpu", None)),
            mem_used_mb=_mb(getattr(mem, "used", None)),
            mem_total_mb=_mb(getattr(mem, "total", None)),
            temp_c=_num(temp),
            power_w=_num(power_mw, 1000.0),
            power_limit_w=_num(limit_mw, 1000.0),
            clock_sm_mhz=_num(sm), clock_mem_mhz=_num(mem_clock), fan_pct=_num(fan),
            throttle_reasons=decode_throttle_reasons(int(reasons) if reasons is not None else None),
            processes=self._processes(h, seen),
        )

    def _processes(self, h: Any, seen: set[int]) -> tuple[GpuProcess, ...]:
        """Compute and graphics processes, merged by pid, whoever started them."""
        used: dict[int, float | None] = {}
        for kind in ("Compute", "Graphics"):
            procs = self._na(self._nvml, f"nvmlDeviceGet{kind}RunningProcesses", h)
            if procs is None:  # an older driver: fall back to the _v2 entry point
                procs = self._na(self._nvml, f"nvmlDeviceGet{kind}RunningProcesses_v2", h)
            for p in procs or ():
                pid = int(p.pid)
                mb = _mb(getattr(p, "usedGpuMemory", None))
                prev = used.get(pid)
                used[pid] = mb if prev is None else max(prev, mb or 0.0)
        out = []
        for pid, mb in sorted(used.items()):
            seen.add(pid)
            if pid not in self._pid_names:
                self._pid_names[pid] = self._process_name(pid)
            out.append(GpuProcess(pid=pid, name=self._pid_names[pid], used_mb=mb))
        return tuple(out)


def _num(value: Any, divide: float = 1.0) -> float | None:
    if value is None:
        return None
    try:
        return round(float(value) / divide, 1)
    except (TypeError, ValueError):
        return None


def _mb(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return round(float(value) / MIB, 1)
    except (TypeError, ValueError):
        return None
