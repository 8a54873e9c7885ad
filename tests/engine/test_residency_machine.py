"""The GPU state machine and the pure VRAM / CPU-fallback checks, without a GPU."""

from __future__ import annotations

import pytest

from engine.inference.protocol import LoadedModel
from engine.residency.crosscheck import cpu_fallback_findings, vram_released
from engine.residency.machine import TRANSITIONS, Event, GpuResidency, GpuState, IllegalTransition, transition
from engine.telemetry.protocol import GpuProcess, GpuSample

S, E = GpuState, Event
GB = 10**9


def run(events: list[tuple[Event, str | None]], start: GpuResidency = GpuResidency()) -> GpuResidency:
    r = start
    for ev, model in events:
        r = transition(r, ev, model=model)
    return r


def test_llm_cycle_from_the_field_notes() -> None:
    r = run([(E.BEGIN_LLM_LOAD, "qwen"), (E.LLM_LOADED, None)])
    assert (r.state, r.model) == (S.LLM_READY, "qwen")
    r = run([(E.TASK_START, None)], r)
    assert r.state is S.LLM_BUSY
    r = run([(E.TASK_END, None), (E.BEGIN_UNLOAD, None), (E.VRAM_FREED, None)], r)
    assert r == GpuResidency(S.IDLE, None, None)


def test_script_cycle_keeps_the_model_warm_between_tasks() -> None:
    r = run([(E.BEGIN_SCRIPT_LOAD, "tiny.en"), (E.SCRIPT_LOADED, None), (E.TASK_END, None)])
    assert (r.state, r.model) == (S.SCRIPT_READY, "tiny.en")
    r = run([(E.TASK_START, None)], r)
    assert r.state is S.SCRIPT_BUSY


def test_failed_load_goes_back_to_idle() -> None:
    r = run([(E.BEGIN_LLM_LOAD, "qwen"), (E.LOAD_FAILED, None)])
    assert r == GpuResidency(S.IDLE, None, None)


def test_vram_timeout_marks_degraded_and_a_clean_unload_clears_it() -> None:
    r = run([(E.BEGIN_LLM_LOAD, "q"), (E.LLM_LOADED, None), (E.BEGIN_UNLOAD, None)])
    r = transition(r, E.VRAM_TIMEOUT, reason="VRAM not freed in 30s")
    assert (r.state, r.degraded) == (S.IDLE, "VRAM not freed in 30s")
    r = run([(E.BEGIN_LLM_LOAD, "q"), (E.LOAD_FAILED, None)], r)
    assert r.degraded  # a failed load does not make the card clean
    r = run([(E.ADOPT_LLM, "q"), (E.BEGIN_UNLOAD, None), (E.VRAM_FREED, None)], r)
    assert r.degraded is None


def test_force_unload_from_busy_is_allowed() -> None:
    r = run([(E.BEGIN_LLM_LOAD, "q"), (E.LLM_LOADED, None), (E.TASK_START, None), (E.BEGIN_UNLOAD, None)])
    assert r.state is S.UNLOADING


@pytest.mark.parametrize("state,event", [
    (S.IDLE, E.TASK_START), (S.IDLE, E.BEGIN_UNLOAD), (S.IDLE, E.LLM_LOADED),
    (S.LLM_READY, E.BEGIN_SCRIPT_LOAD), (S.LLM_BUSY, E.TASK_START), (S.BOOTING_LLM, E.BEGIN_UNLOAD),
    (S.SCRIPT_READY, E.BEGIN_LLM_LOAD), (S.UNLOADING, E.TASK_START), (S.SCRIPT_BUSY, E.BEGIN_LLM_LOAD)])
def test_illegal_transitions_raise(state: GpuState, event: Event) -> None:
    with pytest.raises(IllegalTransition, match=f"{event.value}.*{state.value}"):
        transition(GpuResidency(state, "m"), event, model="m")


def test_load_events_need_a_model_name() -> None:
    with pytest.raises(ValueError, match="model"):
        transition(GpuResidency(), E.BEGIN_LLM_LOAD)


def test_every_state_is_reachable_from_idle() -> None:
    seen, frontier = {S.IDLE}, [S.IDLE]
    while frontier:
        cur = frontier.pop()
        for (src, _ev), dst in TRANSITIONS.items():
            if src is cur and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(GpuState)


# --- VRAM released ---

def gpu(index: int, used: float | None, procs: tuple[GpuProcess, ...] = ()) -> GpuSample:
    return GpuSample(index=index, name="GTX 1060", mem_used_mb=used, mem_total_mb=6144, processes=procs)


OLLAMA = GpuProcess(pid=10, name="/usr/bin/ollama", used_mb=4500)
WORKER = GpuProcess(pid=11, name="python worker", used_mb=300)


def test_vram_released_when_ollamas_process_is_gone() -> None:
    before = [gpu(0, 4900, (OLLAMA, WORKER))]
    assert not vram_released(before, before, [0], 4500)
    assert vram_released(before, [gpu(0, 400, (WORKER,))], [0], 4500)


def test_vram_not_released_while_ollamas_process_still_holds_memory_on_any_gpu_of_the_group() -> None:
    before = [gpu(0, 2400, (OLLAMA,)), gpu(1, 2400, (OLLAMA,))]
    now = [gpu(0, 100), gpu(1, 2400, (GpuProcess(10, "ollama_llama_server", 2300),))]
    assert not vram_released(before, now, [0, 1], 2300)
    assert vram_released(before, now, [0], 2300)  # only GPU 0 is this group's


def test_without_per_process_data_used_memory_must_drop() -> None:
    before = [gpu(0, 4900)]
    assert not vram_released(before, [gpu(0, 4000)], [0], 4500)
    assert vram_released(before, [gpu(0, 500)], [0], 4500)
    unmeasured = (GpuProcess(10, "ollama", None),)
    assert not vram_released([gpu(0, 4900, unmeasured)], [gpu(0, 4800, unmeasured)], [0], 4500)


def test_a_probe_that_reports_nothing_has_nothing_to_wait_for() -> None:
    assert vram_released([], [], [0], 4500)
    assert vram_released([gpu(0, None)], [gpu(0, None)], [0], 4500)


# --- CPU fallback cross-check ---

def test_size_vram_below_size_is_flagged_with_a_readable_message() -> None:
    m = LoadedModel("qwen2.5:7b", size_bytes=int(4.7 * GB), size_vram_bytes=int(1.2 * GB))
    (f,) = cpu_fallback_findings([m], [], [2])
    assert f.message == "model qwen2.5:7b on gpu 2 runs partly on CPU (size_vram 1.2 GB of 4.7 GB)"
    assert f.key == "cpu_fallback:2:qwen2.5:7b"


def test_fully_on_gpu_with_the_process_holding_vram_is_fine() -> None:
    m = LoadedModel("q", size_bytes=4 * GB, size_vram_bytes=4 * GB)
    assert cpu_fallback_findings([m], [gpu(0, 4200, (OLLAMA,))], [0]) == []


def test_ollama_claims_vram_but_the_probe_sees_none_for_its_process() -> None:
    m = LoadedModel("q", size_bytes=4 * GB, size_vram_bytes=4 * GB)
    (f,) = cpu_fallback_findings([m], [gpu(0, 400, (WORKER,))], [0])
    assert "no VRAM held by an Ollama process" in f.message


def test_no_process_listing_means_only_size_vram_decides() -> None:
    m = LoadedModel("q", size_bytes=4 * GB, size_vram_bytes=4 * GB)
    assert cpu_fallback_findings([m], [gpu(0, 4200)], [0]) == []


def test_a_baseline_that_never_showed_the_model_cannot_hold_the_wait_forever() -> None:
    # a lagging probe took "before" ahead of the load: its totals cannot be compared
    assert vram_released([gpu(0, 80)], [gpu(0, 80)], [0], 4700)


def test_a_process_this_machine_cannot_see_may_be_ollama_so_no_cpu_alarm() -> None:
    from engine.telemetry.nvml import NOT_VISIBLE

    m = LoadedModel("q", size_bytes=4 * GB, size_vram_bytes=4 * GB)
    hidden = GpuProcess(pid=4242, name=f"pid 4242 {NOT_VISIBLE}", used_mb=4500)  # Ollama in another container
    assert cpu_fallback_findings([m], [gpu(0, 4800, (hidden, WORKER))], [0]) == []
