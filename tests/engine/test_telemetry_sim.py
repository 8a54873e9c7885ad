"""The simulated rig: the field-notes defaults, the thermal/power model, VRAM accounting."""

from __future__ import annotations

import threading

import pytest

from engine.clock import FakeClock
from engine.telemetry import GpuOutOfMemory, SimGpuSpec, SimulatedRig, detect_probe


def rig() -> tuple[SimulatedRig, FakeClock]:
    clock = FakeClock()
    return SimulatedRig(clock=clock), clock


def test_defaults_follow_the_field_notes() -> None:
    r, _ = rig()
    st = r.status()
    assert (st.available, st.kind, st.gpu_count) == (True, "simulated", 5)
    assert st.detail == "simulated rig: 5 x GTX 1060 6GB"
    samples = r.sample()
    assert len(samples) == 5
    assert all(s.simulated and s.name.endswith("(simulated)") for s in samples)
    assert all(s.mem_total_mb == 6144 and s.power_limit_w == 140 for s in samples)
    assert all(s.throttle_reasons == ("idle",) and s.util_pct == 0 for s in samples)


def test_temperature_climbs_under_load_and_plateaus() -> None:
    r, clock = rig()
    r.set_load(1, 100)
    start = r.sample()[1].temp_c
    clock.advance(60)
    t60 = r.sample()[1].temp_c
    clock.advance(1200)
    t_long = r.sample()[1].temp_c
    clock.advance(1200)
    t_longer = r.sample()[1].temp_c
    assert start < t60 < t_long
    assert abs(t_longer - t_long) < 0.5  # plateau
    assert 76 <= t_long <= 78  # notes: GPUs 1 and 2 run 76-78 C sustained
    assert r.sample()[0].temp_c < 40  # an idle card stays cool


def test_binned_cards_run_cooler_and_hit_the_140w_cap() -> None:
    r, clock = rig()
    for i in range(5):
        r.set_load(i, 100)
    clock.advance(3600)
    s = r.sample()
    assert s[0].temp_c < s[4].temp_c < s[1].temp_c
    assert s[0].power_w == 140 and "sw_power_cap" in s[0].throttle_reasons
    assert all(x.power_w is not None and x.power_w <= 140 for x in s)


def test_power_follows_utilisation() -> None:
    r, _ = rig()
    r.set_load(2, 0)
    idle = r.sample()[2].power_w
    r.set_load(2, 50)
    half = r.sample()[2].power_w
    r.set_load(2, 100)
    full = r.sample()[2].power_w
    assert idle is not None and half is not None and full is not None
    assert idle < 10 and idle < half < full <= 140


def test_a_hot_room_makes_the_card_throttle_near_83c() -> None:
    r, clock = rig()
    r.set_ambient(40)
    r.set_load(1, 100)
    clock.advance(3600)
    s = r.sample()[1]
    assert s.temp_c is not None and 82 <= s.temp_c <= 83.5
    assert "sw_thermal" in s.throttle_reasons
    assert s.power_w is not None and s.power_w < 140
    assert s.clock_sm_mhz is not None and s.clock_sm_mhz < 1835


def test_heat_holds_a_temperature_until_cooled() -> None:
    r, clock = rig()
    r.set_load(2, 100)
    r.heat(2, 90)
    clock.advance(600)
    s = r.sample()[2]
    assert s.temp_c == 90 and "sw_thermal" in s.throttle_reasons
    r.set_load(2, 0)
    r.cool(2)
    clock.advance(1800)
    cooled = r.sample()[2]
    assert cooled.temp_c is not None and cooled.temp_c < 40
    assert "sw_thermal" not in cooled.throttle_reasons


def test_heat_without_hold_relaxes() -> None:
    r, clock = rig()
    r.heat(0, 70, hold=False)
    assert r.sample()[0].temp_c == 70
    clock.advance(300)
    assert r.sample()[0].temp_c < 70  # type: ignore[operator]


def test_extreme_heat_shows_hardware_slowdown() -> None:
    r, _ = rig()
    r.set_load(3, 100)
    r.heat(3, 100)
    reasons = r.sample()[3].throttle_reasons
    assert "hw_slowdown" in reasons and "hw_thermal" in reasons


def test_vram_follows_allocations_and_other_processes() -> None:
    r, _ = rig()
    r.allocate(1, "ollama:qwen2.5:7b", 4700, pid=321, name="ollama")
    foreign = r.inject_foreign(1, "Xorg", 180)
    s = r.sample()[1]
    assert s.mem_used_mb == 4880
    assert {(p.pid, p.name, p.used_mb) for p in s.processes} == {(321, "ollama", 4700), (foreign, "Xorg", 180)}
    assert r.used_by(1) == {"ollama:qwen2.5:7b": 4700, f"foreign:{foreign}": 180}
    r.allocate(1, "ollama:qwen2.5:7b", 5000)  # replaces, keeps its pid
    assert r.sample()[1].processes[0].pid == 321
    assert r.free(1, "ollama:qwen2.5:7b") == 5000
    assert r.free(1, "ollama:qwen2.5:7b") == 0
    assert r.sample()[1].mem_used_mb == 180


def test_allocation_past_the_card_is_an_out_of_memory_error() -> None:
    r, _ = rig()
    r.allocate(0, "a", 6000)
    with pytest.raises(GpuOutOfMemory, match="144 MB free"):
        r.allocate(0, "b", 200)
    assert r.used_by(0) == {"a": 6000}


def test_unknown_gpu_index_is_a_clear_error() -> None:
    r, _ = rig()
    with pytest.raises(IndexError, match=r"GPUs 0\.\.4, not 7"):
        r.set_load(7, 50)


def test_configurable_cards() -> None:
    r = SimulatedRig([SimGpuSpec(name="NVIDIA GeForce RTX 3090", mem_total_mb=24576, max_power_w=350,
                                 power_limit_w=300)] * 2, clock=FakeClock())
    assert r.status().detail == "simulated rig: 2 x RTX 3090"
    assert SimulatedRig.with_count(8, clock=FakeClock()).status().gpu_count == 8


def test_threads_allocating_concurrently_lose_nothing() -> None:
    r, _ = rig()

    def worker(n: int) -> None:
        for k in range(50):
            r.allocate(n % 5, f"t{n}-{k}", 1.0)
            r.sample()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r.used_by(i)) for i in range(5)) == 500


def test_detect_probe_simulated() -> None:
    probe = detect_probe(simulated=True, clock=FakeClock())
    assert probe.status().kind == "simulated"
