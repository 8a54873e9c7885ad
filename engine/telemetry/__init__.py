"""GPU and host telemetry behind the GpuProbe protocol (NVML, simulated rig)."""
