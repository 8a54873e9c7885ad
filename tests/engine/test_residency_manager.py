"""ResidencyManager against the simulated Ollama (real HTTP, the real ``ollama`` client)
with an in-memory VRAM ledger as the GPU probe, and a whisper-like script handler double
that holds VRAM on the same ledger while its model is warm."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.clock import FakeClock, SystemClock
from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.handlers.llm import LlmHandler
from engine.inference.ollama_backend import OllamaBackend
from engine.model import Task, TaskType
from engine.residency.manager import ResidencyEvent, ResidencyManager
from engine.sim import InMemoryVramLedger, SimModelSpec, SimulatedOllamaServer

QWEN = "qwen2.5:7b"
LLAMA = "llama3.2:3b"


class WhisperDouble:
    """A script handler double: loads its model on first run (VRAM on the ledger), keeps it warm."""

    def __init__(self, ledger: InMemoryVramLedger, gpu: int = 0, name: str = "python worker (whisper)") -> None:
        self.ledger, self.gpu, self.owner = ledger, gpu, name
        self.model: str | None = None
        self.loads = 0

    @property
    def resident_model(self) -> str | None:
        return self.model

    def release(self) -> None:
        self.ledger.free(self.gpu, self.owner)
        self.model = None

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        if self.model is None:
            self.ledger.allocate(self.gpu, self.owner, 900)
            self.model = task.model or "tiny.en"
            self.loads += 1
        return HandlerResult(result={"text": "the quick brown fox"}, model=self.model)


def task(kind: str, model: str | None = None, **params: Any) -> Task:
    tid = f"t-{kind}-{(model or 'x').replace(':', '_')}"
    return Task.from_dict({"task_id": tid, "name": kind, "type": kind, "model": model,
                           "params": params})


def ctx(**extras: Any) -> TaskContext:
    return TaskContext(worker_id="w1", gpu_ids=(0,), env={}, workdir=".", deadline=SystemClock().now() + 60,
                       extras=dict(extras))


@pytest.fixture
def ledger() -> InMemoryVramLedger:
    return InMemoryVramLedger(gpu_count=1)


@pytest.fixture
def server(ledger):
    specs = [SimModelSpec(QWEN, size_mb=4700, load_s=90), SimModelSpec(LLAMA, size_mb=2000, load_s=40)]
    with SimulatedOllamaServer(specs, gpu_ids=(0,), ledger=ledger, time_scale=0.0) as s:
        yield s


@pytest.fixture
def events() -> list[ResidencyEvent]:
    return []


@pytest.fixture
def whisper(ledger) -> WhisperDouble:
    return WhisperDouble(ledger)


@pytest.fixture
def manager(server, ledger, whisper, events) -> ResidencyManager:
    return ResidencyManager(OllamaBackend(server.host, timeout_s=10), {"transcribe": whisper}, ledger, FakeClock(),
                            (0,), vram_free_timeout_s=5.0, events=events.append, poll_interval_s=1.0)


def owners(ledger: InMemoryVramLedger) -> set[str]:
    return set(ledger.used_by(0))


def run_task(m: ResidencyManager, t: Task, handler: Any, c: TaskContext | None = None) -> HandlerResult:
    c = c or ctx(endpoint=m.backend.host)  # type: ignore[union-attr]
    m.prepare(t, c)
    try:
        out = handler.run(t, c)
    except TaskFailure:
        m.finished(t, False)
        raise
    m.finished(t, True)
    return out


def test_llm_then_whisper_then_llm_again(manager, server, ledger, whisper, events) -> None:
    llm = LlmHandler()
    out = run_task(manager, task("llm", QWEN, prompt="hello"), llm)
    assert out.result["load_s"] == 90.002 and out.result["cold_load"]  # the manager's cold load + the warm call
    assert manager.last_load is not None and manager.last_load.load_duration_ns == 90 * 10**9
    assert manager.state == "llm_ready" and owners(ledger) == {server.owner(QWEN)}

    run_task(manager, task("transcribe", "tiny.en", audio="a.wav"), whisper)
    assert manager.state == "script_ready" and manager.resident_model == "tiny.en"
    assert server.loaded_models() == [] and owners(ledger) == {whisper.owner}
    assert [e.event_type for e in events if e.event_type in ("llm_unloading", "vram_freed")] == \
        ["llm_unloading", "vram_freed"]
    assert ("/api/generate", {"model": QWEN, "prompt": "", "stream": False, "keep_alive": 0}) in server.requests

    run_task(manager, task("transcribe", "tiny.en", audio="b.wav"), whisper)
    assert whisper.loads == 1  # kept warm between script tasks

    warm = run_task(manager, task("llm", QWEN, prompt="again"), llm)
    assert "cold_load" not in run_task(manager, task("llm", QWEN, prompt="warm"), llm).result
    assert warm.result["cold_load"] and whisper.model is None and owners(ledger) == {server.owner(QWEN)}
    assert manager.state == "llm_ready" and manager.resident_model == QWEN


def test_manager_loads_with_keep_alive_forever_so_no_timer_unloads_behind_its_back(manager, server) -> None:
    manager.prepare(task("llm", QWEN, prompt="x"), ctx())
    loads = [b for p, b in server.requests if p == "/api/generate" and b.get("prompt") == ""]
    assert loads[-1]["keep_alive"] == -1


def test_switching_llm_models_unloads_the_first(manager, server, ledger) -> None:
    run_task(manager, task("llm", QWEN, prompt="x"), LlmHandler())
    run_task(manager, task("llm", LLAMA, prompt="x"), LlmHandler())
    assert server.loaded_models() == [LLAMA] and owners(ledger) == {server.owner(LLAMA)}


def test_a_failed_load_fails_the_task_goes_idle_and_a_retry_loads(manager, server, events) -> None:
    server.specs[QWEN].fail_next_loads = 1
    t = task("llm", QWEN, prompt="x")
    with pytest.raises(TaskFailure) as exc:
        manager.prepare(t, ctx())
    assert exc.value.retryable and "could not load" in str(exc.value)
    assert manager.state == "idle" and manager.resident_model is None
    assert any(e.event_type == "llm_load_failed" and e.severity == "warning" for e in events)
    manager.prepare(t, ctx())
    assert manager.state == "llm_busy"


def test_vram_not_freed_times_out_marks_degraded_and_alerts(manager, server, ledger, whisper, events) -> None:
    server.specs[QWEN].leak_vram_on_unload = True
    run_task(manager, task("llm", QWEN, prompt="x"), LlmHandler())
    with pytest.raises(TaskFailure, match="degraded: VRAM not freed"):
        manager.prepare(task("transcribe", "tiny.en", audio="a.wav"), ctx())
    assert manager.state == "idle" and manager.degraded
    (alert,) = [e for e in events if e.event_type == "vram_not_freed"]
    assert alert.severity == "critical" and alert.key == "vram_not_freed:0" and "4700 MB" in alert.message

    with pytest.raises(TaskFailure, match="is degraded"):  # still held: no work on this card
        manager.prepare(task("transcribe", "tiny.en", audio="a.wav"), ctx())
    ledger.free(0, server.owner(QWEN))  # the driver finally lets go
    manager.prepare(task("transcribe", "tiny.en", audio="a.wav"), ctx())
    assert manager.state == "script_busy" and manager.degraded is None
    assert any(e.event_type == "gpu_recovered" for e in events)


def test_waits_until_the_probe_shows_the_vram_freed(ledger, whisper, events) -> None:
    spec = SimModelSpec(QWEN, size_mb=4700, load_s=0, vram_release_s=1.0)
    with SimulatedOllamaServer([spec], ledger=ledger, time_scale=1.0) as server:
        class CountingProbe:
            def __init__(self) -> None:
                self.held_seen = 0

            def sample(self):
                s = ledger.sample()
                self.held_seen += any("ollama" in p.name for p in s[0].processes)
                return s

            def status(self):
                return ledger.status()

            def close(self) -> None: ...

        probe = CountingProbe()
        m = ResidencyManager(OllamaBackend(server.host, timeout_s=10), {"transcribe": whisper}, probe,
                             SystemClock(), (0,), vram_free_timeout_s=20, events=events.append, poll_interval_s=0.02)
        m.prepare(task("llm", QWEN, prompt="x"), ctx())
        m.finished(task("llm", QWEN), True)
        m.prepare(task("transcribe", audio="a.wav"), ctx())
        assert probe.held_seen >= 2  # Ollama said "unload" while the VRAM was still held
        assert owners(ledger) == set() and m.state == "script_busy"


def test_force_unload_while_an_llm_task_streams(ledger, events) -> None:
    spec = SimModelSpec(QWEN, load_s=0, tokens_per_s=20)
    with SimulatedOllamaServer([spec], ledger=ledger, time_scale=1.0) as server:
        m = ResidencyManager(OllamaBackend(server.host, timeout_s=10), {}, ledger, SystemClock(), (0,),
                             vram_free_timeout_s=10, events=events.append, poll_interval_s=0.02)
        streaming = threading.Event()
        c = TaskContext(worker_id="w1", gpu_ids=(0,), env={}, workdir=".", deadline=SystemClock().now() + 60,
                        report_progress=lambda text, tps: streaming.set(), extras={"endpoint": server.host})
        outcome: list[BaseException | HandlerResult] = []
        t = task("llm", QWEN, prompt="a long answer")

        def worker() -> None:
            try:
                outcome.append(run_task(m, t, LlmHandler(), c))
            except TaskFailure as exc:
                outcome.append(exc)

        th = threading.Thread(target=worker)
        th.start()
        assert streaming.wait(10)
        assert m.state == "llm_busy"
        m.force_unload()
        th.join(10)
        assert isinstance(outcome[0], TaskFailure) and outcome[0].retryable
        assert m.state == "idle" and server.loaded_models() == [] and owners(ledger) == set()
        assert any(e.event_type == "force_unload" for e in events)


def test_force_unload_of_a_warm_script_model(manager, whisper, ledger) -> None:
    run_task(manager, task("transcribe", "tiny.en", audio="a.wav"), whisper)
    manager.force_unload()
    assert manager.state == "idle" and whisper.model is None and owners(ledger) == set()


def test_cpu_fallback_is_flagged_after_an_llm_task(manager, server, events) -> None:
    server.specs[QWEN].gpu_fraction = 0.25
    run_task(manager, task("llm", QWEN, prompt="x"), LlmHandler())
    (alert,) = [e for e in events if e.event_type == "cpu_fallback"]
    assert alert.severity == "warning" and alert.key == "cpu_fallback:0:qwen2.5:7b"
    assert "runs partly on CPU (size_vram 1.2 GB of 4.9 GB)" in alert.message
    run_task(manager, task("llm", QWEN, prompt="y"), LlmHandler())
    assert len([e for e in events if e.event_type == "cpu_fallback"]) == 1  # once per load, not per task


def test_load_llm_and_unload_llm_resource_tasks(manager, server, ledger) -> None:
    llm = LlmHandler()
    out = run_task(manager, task("load_llm", QWEN), llm)
    assert out.result["loaded_now"] is True and out.result["load_s"] == 90.0
    assert out.result["size_vram_bytes"] == 4700 * 1024 * 1024 and manager.state == "llm_ready"
    out = run_task(manager, task("load_llm", QWEN), llm)
    assert out.result["loaded_now"] is False
    out = run_task(manager, Task.from_dict({"task_id": "u1", "name": "u", "type": "unload_llm"}), llm)
    assert out.result["unloaded"] == [QWEN] and manager.state == "idle" and owners(ledger) == set()


def test_a_restarted_worker_adopts_the_model_the_server_holds(manager, server) -> None:
    OllamaBackend(server.host).load(QWEN, keep_alive=-1)
    manager.prepare(task("llm", QWEN, prompt="x"), ctx())
    assert manager.state == "llm_busy" and manager.last_load is None


def test_a_model_dropped_behind_our_back_is_reloaded(manager, server, events) -> None:
    run_task(manager, task("llm", QWEN, prompt="x"), LlmHandler())
    OllamaBackend(server.host).unload(QWEN)  # someone ran `ollama stop`
    manager.prepare(task("llm", QWEN, prompt="y"), ctx())
    assert manager.state == "llm_busy" and server.loaded_models() == [QWEN]
    assert any(e.event_type == "llm_lost" for e in events)


def test_cpu_and_shell_tasks_leave_the_card_alone(manager, server) -> None:
    run_task(manager, task("llm", QWEN, prompt="x"), LlmHandler())
    shell = Task.from_dict({"task_id": "s1", "name": "s", "command": "echo hi", "task_class": "cpu"})
    manager.prepare(shell, ctx())
    manager.finished(shell, True)
    assert manager.state == "llm_ready" and server.loaded_models() == [QWEN]


def test_llm_task_without_a_model_is_a_definition_error(manager) -> None:
    with pytest.raises(TaskFailure) as exc:
        manager.prepare(Task.from_dict({"task_id": "n", "name": "n", "type": "llm", "params": {"prompt": "x"}}),
                        ctx())
    assert not exc.value.retryable


def test_unmanaged_backend_means_no_residency_switching(whisper) -> None:
    m = ResidencyManager(None, {"transcribe": whisper}, None, FakeClock(), (0,))
    m.prepare(task("llm", "smollm2", prompt="x"), ctx())
    assert m.state == "idle"
    assert TaskType.LLM.value == "llm"


class HidesOllama:
    """A probe double whose card lists the worker's processes but none of Ollama's: a model
    Ollama calls loaded is not in VRAM at all."""

    def __init__(self, ledger: InMemoryVramLedger) -> None:
        self.ledger = ledger

    def sample(self):
        from dataclasses import replace

        from engine.telemetry.protocol import GpuProcess
        return [replace(s, processes=(GpuProcess(1, "python worker", 300.0),)) for s in self.ledger.sample()]

    def status(self):
        return self.ledger.status()

    def close(self) -> None: ...


def test_probe_side_cpu_fallback_waits_until_the_probe_can_have_seen_the_load(server, ledger, events) -> None:
    clock = FakeClock()
    m = ResidencyManager(OllamaBackend(server.host, timeout_s=10), {}, HidesOllama(ledger), clock, (0,),
                         events=events.append, crosscheck_settle_s=5.0)
    run_task(m, task("llm", QWEN, prompt="x"), LlmHandler())
    assert not [e for e in events if e.event_type == "cpu_fallback"]  # the probe may simply lag the load
    clock.advance(6)
    run_task(m, task("llm", QWEN, prompt="y"), LlmHandler())
    (alert,) = [e for e in events if e.event_type == "cpu_fallback"]
    assert "no VRAM held by an Ollama process" in alert.message


class StaleProbe:
    """A lagging probe (the snapshot of a supervisor that stopped writing): its picture
    predates the unload, so it cannot prove the VRAM was freed."""

    last_taken_at = 0.0

    def sample(self):
        return []

    def status(self):
        return None

    def close(self) -> None: ...


def test_a_picture_older_than_the_unload_does_not_count_as_freed(server, events) -> None:
    m = ResidencyManager(OllamaBackend(server.host, timeout_s=10), {}, StaleProbe(), FakeClock(), (0,),
                         vram_free_timeout_s=3, events=events.append, poll_interval_s=1)
    run_task(m, task("llm", QWEN, prompt="x"), LlmHandler())
    with pytest.raises(TaskFailure, match="degraded"):
        m.prepare(task("transcribe", audio="a.wav"), ctx())
    assert server.loaded_models() == []  # Ollama did unload; the probe just never showed it


def test_notes_style_shell_tasks_of_class_llm_and_script(manager, server, ledger) -> None:
    """The field notes' plans run shell commands tagged llm or script: an llm-class command
    keeps the warm model busy; a script-class one (a whisper script) gets the card emptied."""
    shell_llm = Task.from_dict({"task_id": "s-llm", "name": "s", "command": "ollama run qwen2.5:7b hi",
                                "task_class": "llm"})
    manager.prepare(shell_llm, ctx())  # nothing warm and no model named: nothing to do
    assert manager.state == "idle"
    run_task(manager, task("llm", QWEN, prompt="x"), LlmHandler())
    manager.prepare(shell_llm, ctx())
    assert manager.state == "llm_busy"
    manager.finished(shell_llm, True)
    whisper_script = Task.from_dict({"task_id": "s-wh", "name": "w", "command": "python whisper.py --gpu 0",
                                     "task_class": "script"})
    manager.prepare(whisper_script, ctx())
    assert manager.state == "script_busy" and server.loaded_models() == [] and owners(ledger) == set()
    manager.finished(whisper_script, True)
    assert manager.state == "idle"  # the script's process exited: nothing stays warm


def test_resource_tasks_on_an_unmanaged_backend_are_left_to_the_handler(whisper) -> None:
    m = ResidencyManager(None, {"transcribe": whisper}, None, FakeClock(), (0,))
    c = ctx()
    m.prepare(task("load_llm", "smollm2"), c)
    assert m.state == "idle" and "residency_report" not in c.extras
