"""A test double of the part of the ``pynvml`` module (nvidia-ml-py) that NvmlProbe uses.

It follows the real binding's documented behaviour: errors are ``NVMLError`` subclasses named
``NVMLError_<Reason>`` carrying ``.value`` (the NVML return code); an unsupported field raises
``NVMLError_NotSupported``; a missing library makes ``nvmlInit`` raise
``NVMLError_LibraryNotFound``; memory is in bytes, power in milliwatts; process entries have
``pid`` and ``usedGpuMemory`` (None when the driver cannot tell, as on WDDM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2

_CODES = {
    "Uninitialized": 1, "InvalidArgument": 2, "NotSupported": 3, "NoPermission": 4,
    "DriverNotLoaded": 9, "LibraryNotFound": 12, "FunctionNotFound": 13, "GpuIsLost": 15,
    "LibRmVersionMismatch": 18, "Unknown": 999,
}
_TEXT = {"NotSupported": "Not Supported", "GpuIsLost": "GPU is lost",
         "LibraryNotFound": "NVML Shared Library Not Found", "DriverNotLoaded": "Driver Not Loaded",
         "Uninitialized": "Uninitialized", "NoPermission": "Insufficient Permissions"}


class NVMLError(Exception):
    value = 999

    def __str__(self) -> str:
        return _TEXT.get(type(self).__name__.removeprefix("NVMLError_"), "Unknown Error")


def _error_class(reason: str) -> type[NVMLError]:
    return type(f"NVMLError_{reason}", (NVMLError,), {"value": _CODES[reason]})


ERRORS: dict[str, type[NVMLError]] = {reason: _error_class(reason) for reason in _CODES}


@dataclass
class FakeGpu:
    """One card. A field set to None raises NVMLError_NotSupported, as an old card would."""

    name: str = "NVIDIA GeForce GTX 1060 6GB"
    uuid: str = "GPU-fake"
    util: int | None = 37
    mem_used: int | None = 1024 * 1024 * 1024
    mem_total: int | None = 6144 * 1024 * 1024
    temp: int | None = 71
    power_mw: int | None = 98_500
    limit_mw: int | None = 140_000
    sm_mhz: int | None = 1708
    mem_mhz: int | None = 4004
    fan: int | None = 55
    throttle_mask: int | None = 0x24
    compute: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, bytes)
    graphics: list[tuple[int, int | None]] = field(default_factory=list)
    lost: bool = False  # every call raises NVMLError_GpuIsLost


class FakeNvml:
    """Module-like: pass an instance as ``NvmlProbe(nvml_module=FakeNvml(...))``."""

    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM = NVML_CLOCK_SM
    NVML_CLOCK_MEM = NVML_CLOCK_MEM
    NVMLError = NVMLError

    def __init__(self, gpus: list[FakeGpu] | None = None, init_error: str | None = None,
                 driver: str = "535.183.01", has_event_reasons: bool = True) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.init_error = init_error
        self.driver = driver
        self.init_calls = 0
        self.shutdown_calls = 0
        self.handle_calls = 0
        self._initialised = False
        for reason, cls in ERRORS.items():
            setattr(self, f"NVMLError_{reason}", cls)
        if not has_event_reasons:  # bindings older than 12.535 only have the "Throttle" name
            self.nvmlDeviceGetCurrentClocksEventReasons = None

    # --- library ---
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error:
            raise ERRORS[self.init_error]()
        self._initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1
        self._initialised = False

    def _check(self) -> None:
        if not self._initialised:
            raise ERRORS["Uninitialized"]()

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check()
        return self.driver

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._check()
        return "12." + self.driver

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._check()
        self.handle_calls += 1
        if not 0 <= index < len(self.gpus):
            raise ERRORS["InvalidArgument"]()
        return self.gpus[index]

    # --- per device ---
    def _get(self, gpu: FakeGpu, attr: str) -> Any:
        self._check()
        if gpu.lost:
            raise ERRORS["GpuIsLost"]()
        value = getattr(gpu, attr)
        if value is None:
            raise ERRORS["NotSupported"]()
        return value

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return self._get(h, "name")

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> str:
        return self._get(h, "uuid")

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._get(h, "util"), memory=0)

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> SimpleNamespace:
        total = self._get(h, "mem_total")
        used = self._get(h, "mem_used")
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        if sensor != NVML_TEMPERATURE_GPU:
            raise ERRORS["InvalidArgument"]()
        return self._get(h, "temp")

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        return self._get(h, "power_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeGpu) -> int:
        return self._get(h, "limit_mw")

    def nvmlDeviceGetClockInfo(self, h: FakeGpu, clock_type: int) -> int:
        attr = {NVML_CLOCK_SM: "sm_mhz", NVML_CLOCK_MEM: "mem_mhz"}.get(clock_type)
        if attr is None:
            raise ERRORS["InvalidArgument"]()
        return self._get(h, attr)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGpu) -> int:
        return self._get(h, "throttle_mask")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: FakeGpu) -> int:
        return self._get(h, "throttle_mask")

    def nvmlDeviceGetFanSpeed(self, h: FakeGpu) -> int:
        return self._get(h, "fan")

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGpu) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p, usedGpuMemory=b) for p, b in self._get(h, "compute")]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: FakeGpu) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p, usedGpuMemory=b) for p, b in self._get(h, "graphics")]
