"""NvmlProbe against an in-repo double of pynvml, and the real probe on this (driverless) box."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from engine.telemetry import NoGpuProbe, NvmlProbe, decode_throttle_reasons, detect_probe
from engine.telemetry.protocol import GpuProbe

_spec = importlib.util.spec_from_file_location("fake_pynvml", Path(__file__).with_name("fake_pynvml.py"))
assert _spec and _spec.loader
fake = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fake_pynvml", fake)  # dataclasses look their module up there
_spec.loader.exec_module(fake)
FakeGpu, FakeNvml = fake.FakeGpu, fake.FakeNvml

MIB = 1024 * 1024


def probe_for(nvml: object) -> NvmlProbe:
    return NvmlProbe(nvml_module=nvml, process_name=lambda pid: f"proc{pid}")


def test_reads_every_field_in_familiar_units() -> None:
    nvml = FakeNvml([FakeGpu(compute=[(4242, 3000 * MIB)], graphics=[(77, 60 * MIB)])])
    probe: GpuProbe = probe_for(nvml)  # typed: NvmlProbe satisfies the protocol
    (s,) = probe.sample()
    assert (s.index, s.name, s.uuid) == (0, "NVIDIA GeForce GTX 1060 6GB", "GPU-fake")
    assert s.util_pct == 37 and s.temp_c == 71 and s.fan_pct == 55
    assert s.mem_used_mb == 1024 and s.mem_total_mb == 6144
    assert s.power_w == 98.5 and s.power_limit_w == 140
    assert s.clock_sm_mhz == 1708 and s.clock_mem_mhz == 4004
    assert s.throttle_reasons == ("sw_power_cap", "sw_thermal")
    assert [(p.pid, p.name, p.used_mb) for p in s.processes] == [(77, "proc77", 60), (4242, "proc4242", 3000)]
    assert s.simulated is False and s.error is None


def test_unsupported_fields_are_none_not_a_crash() -> None:
    old = FakeGpu(fan=None, power_mw=None, limit_mw=None, throttle_mask=None, util=None,
                  compute=[(5, None)])
    (s,) = probe_for(FakeNvml([old])).sample()
    assert s.fan_pct is None and s.power_w is None and s.power_limit_w is None
    assert s.util_pct is None and s.throttle_reasons == ()
    assert s.temp_c == 71  # the supported ones still arrive
    assert s.processes[0].used_mb is None  # per-process VRAM not reported (WDDM-like)


def test_a_lost_gpu_is_marked_and_the_others_still_sampled() -> None:
    nvml = FakeNvml([FakeGpu(uuid="a"), FakeGpu(uuid="b"), FakeGpu(uuid="c")])
    probe = probe_for(nvml)
    probe.sample()
    nvml.gpus[1].lost = True
    samples = probe.sample()
    assert [s.error for s in samples] == [None, "GPU is lost", None]
    assert samples[1].temp_c is None and samples[1].name == "NVIDIA GeForce GTX 1060 6GB"
    assert samples[0].temp_c == 71 and samples[2].temp_c == 71


def test_same_process_in_compute_and_graphics_is_listed_once() -> None:
    gpu = FakeGpu(compute=[(10, 500 * MIB)], graphics=[(10, 20 * MIB), (11, 30 * MIB)])
    (s,) = probe_for(FakeNvml([gpu])).sample()
    assert [(p.pid, p.used_mb) for p in s.processes] == [(10, 500), (11, 30)]


def test_old_bindings_fall_back_to_throttle_reasons() -> None:
    (s,) = probe_for(FakeNvml([FakeGpu(throttle_mask=0x1)], has_event_reasons=False)).sample()
    assert s.throttle_reasons == ("idle",)


def test_init_once_and_handles_cached() -> None:
    nvml = FakeNvml([FakeGpu(), FakeGpu()])
    probe = probe_for(nvml)
    for _ in range(3):
        probe.sample()
    probe.status()
    assert nvml.init_calls == 1 and nvml.handle_calls == 2


def test_status_names_driver_and_count() -> None:
    st = probe_for(FakeNvml([FakeGpu()] * 5)).status()
    assert st.available and st.kind == "nvml" and st.gpu_count == 5
    assert st.driver == "535.183.01"
    assert "driver 535.183.01" in st.detail and "5 GPUs" in st.detail


@pytest.mark.parametrize("reason, words", [
    ("LibraryNotFound", "libnvidia-ml.so.1 not found"),
    ("DriverNotLoaded", "driver is not loaded"),
    ("LibRmVersionMismatch", "version mismatch"),
])
def test_no_library_or_driver_is_a_status_not_a_traceback(reason: str, words: str) -> None:
    probe = probe_for(FakeNvml(init_error=reason))
    st = probe.status()
    assert (st.available, st.kind) == (False, "none")
    assert st.detail.startswith("no NVML: ") and words in st.detail
    assert probe.sample() == []


def test_close_shuts_nvml_down() -> None:
    nvml = FakeNvml()
    probe = probe_for(nvml)
    probe.sample()
    probe.close()
    assert nvml.shutdown_calls == 1


def test_decode_throttle_reasons() -> None:
    assert decode_throttle_reasons(0) == ()
    assert decode_throttle_reasons(0x8 | 0x40 | 0x80) == ("hw_slowdown", "hw_thermal", "hw_power_brake")
    assert decode_throttle_reasons(0x1000) == ("other_0x1000",)


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="this machine has an NVIDIA driver")
def test_real_probe_on_a_machine_without_a_driver() -> None:
    probe = NvmlProbe()
    st = probe.status()
    assert not st.available and st.kind == "none"
    assert st.detail.startswith("no NVML: ") and "Traceback" not in st.detail
    assert probe.sample() == []
    fallback = detect_probe(simulated=False)
    assert isinstance(fallback, NoGpuProbe) and fallback.status().detail == st.detail


def test_a_probe_reopened_after_close_names_the_cards_it_finds_now() -> None:
    nvml = FakeNvml([FakeGpu(name="old card", uuid="GPU-old")])
    probe = probe_for(nvml)
    assert probe.sample()[0].name == "old card"
    probe.close()
    nvml.gpus = [FakeGpu(name="new card", uuid="GPU-new")]  # a card swapped while the probe was closed
    (s,) = probe.sample()
    assert (s.name, s.uuid) == ("new card", "GPU-new")
