"""GPU and host telemetry behind the GpuProbe protocol (NVML, simulated rig)."""

from engine.telemetry.detect import NoGpuProbe, detect_probe
from engine.telemetry.nvml import NvmlProbe, decode_throttle_reasons
from engine.telemetry.protocol import GpuProbe, GpuProcess, GpuSample, ProbeStatus
from engine.telemetry.sim_rig import GpuOutOfMemory, SimGpuSpec, SimulatedRig, default_gpu_specs

__all__ = [
    "GpuOutOfMemory", "GpuProbe", "GpuProcess", "GpuSample", "NoGpuProbe", "NvmlProbe",
    "ProbeStatus", "SimGpuSpec", "SimulatedRig", "decode_throttle_reasons", "default_gpu_specs",
    "detect_probe",
]
