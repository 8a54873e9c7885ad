"""Residency as ``--sim`` runs it: the simulated Ollama reports its VRAM to the simulated
rig (the supervisor's ``SimulatedRig``), a supervisor-tick double publishes the rig in the
snapshot file, and the worker-side ResidencyManager sees the GPUs only through
``SnapshotGpuProbe`` reading that file, as a worker subprocess does. LLM tasks run through
``LlmHandler`` with the endpoint from the worker's context."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from engine.clock import SystemClock
from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.handlers.llm import LlmHandler
from engine.inference.ollama_backend import OllamaBackend
from engine.model import Task
from engine.paths import RigPaths
from engine.residency.manager import ResidencyEvent, ResidencyManager
from engine.residency.snapshot_probe import SnapshotGpuProbe
from engine.sim import SimModelSpec, SimulatedOllamaServer
from engine.snapshot import SNAPSHOT_VERSION, Snapshot, write_snapshot
from engine.supervisor.snapshot_builder import gpu_views
from engine.telemetry.sim_rig import SimulatedRig

QWEN = "qwen2.5:7b"


class SupervisorTick:
    """Publishes the simulated rig into the snapshot file every few ms (the supervisor's job)."""

    def __init__(self, rig: SimulatedRig, path: Path) -> None:
        self.rig, self.path = rig, path
        self.seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def tick(self) -> None:
        self.seq += 1
        views = gpu_views(self.rig.sample(), {}, [], set(), set())
        write_snapshot(self.path, Snapshot(version=SNAPSHOT_VERSION, seq=self.seq, taken_at=time.time(),
                                           rig="sim", simulated=True, telemetry_status="simulated rig", gpus=views))

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            self.tick()

    def __enter__(self) -> Self:
        self.tick()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class ScriptDouble:
    """A whisper-like handler holding VRAM on the simulated rig while warm."""

    def __init__(self, rig: SimulatedRig, gpu: int) -> None:
        self.rig, self.gpu, self.model = rig, gpu, None

    @property
    def resident_model(self) -> str | None:
        return self.model

    def release(self) -> None:
        self.rig.free(self.gpu, "galaxy-worker (whisper)")
        self.model = None

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        if self.model is None:
            self.rig.allocate(self.gpu, "galaxy-worker (whisper)", 1000)
            self.model = "tiny.en"
        return HandlerResult(result={"text": "quick brown fox"}, model=self.model)


@pytest.fixture
def rig_env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    paths = RigPaths(tmp_path).ensure()
    rig = SimulatedRig.with_count(2)
    spec = SimModelSpec(QWEN, size_mb=4700, load_s=90, tokens_per_s=25, vram_release_s=0.05)
    with SimulatedOllamaServer([spec], gpu_ids=(1,), ledger=rig, time_scale=0.001) as server, \
            SupervisorTick(rig, paths.snapshot):
        events: list[ResidencyEvent] = []
        script = ScriptDouble(rig, 1)
        manager = ResidencyManager(OllamaBackend(server.host, timeout_s=10), {"transcribe": script},
                                   SnapshotGpuProbe(paths.snapshot), SystemClock(), (1,), vram_free_timeout_s=10,
                                   events=events.append, poll_interval_s=0.01)
        yield {"server": server, "rig": rig, "manager": manager, "script": script, "events": events}


def make_task(kind: str, tid: str, **params: Any) -> Task:
    return Task.from_dict({"task_id": tid, "name": tid, "type": kind,
                           "model": QWEN if kind in ("llm", "load_llm") else None, "params": params})


def context(server: SimulatedOllamaServer, progress: list | None = None, **kw: Any) -> TaskContext:
    return TaskContext(worker_id="gpu1", gpu_ids=(1,), env={}, workdir=".",
                       deadline=kw.pop("deadline", time.time() + 60),
                       report_progress=(lambda text, tps: progress.append((text, tps))) if progress is not None
                       else (lambda text, tps: None),
                       extras={"endpoint": server.host, "backend_kind": "ollama"}, **kw)


def run(manager: ResidencyManager, handler: Any, task: Task, ctx: TaskContext) -> HandlerResult:
    manager.prepare(task, ctx)
    ok = False
    try:
        out = handler.run(task, ctx)
        ok = True
        return out
    finally:
        manager.finished(task, ok)


def ollama_mb(rig: SimulatedRig, gpu: int) -> float:
    return sum(mb for owner, mb in rig.used_by(gpu).items() if "ollama" in owner)


def test_llm_unload_whisper_reload_through_the_snapshot_probe(rig_env) -> None:
    server, rig, manager, script = rig_env["server"], rig_env["rig"], rig_env["manager"], rig_env["script"]
    llm = LlmHandler()
    progress: list = []
    out = run(manager, llm, make_task("llm", "a1", prompt="summarise the field notes"), context(server, progress))
    r = out.result
    assert r["tokens"] > 0 and r["tokens_per_s"] == pytest.approx(25.0) and r["backend"].startswith("ollama@")
    assert r["text"] and r["prompt_tokens"] == 4 and r["model"] == QWEN
    assert progress and progress[-1][0] == r["text"]  # partial output reached the dashboard hook
    assert ollama_mb(rig, 1) == pytest.approx(4700) and ollama_mb(rig, 0) == 0

    run(manager, script, make_task("transcribe", "b1", audio="x.wav"), context(server))
    assert ollama_mb(rig, 1) == 0 and rig.used_by(1) == {"galaxy-worker (whisper)": 1000}
    assert manager.state == "script_ready"

    run(manager, llm, make_task("llm", "a2", prompt="again"), context(server))
    assert rig.used_by(1) == {server.owner(QWEN): pytest.approx(4700)}
    assert manager.state == "llm_ready" and manager.last_load.load_duration_ns == 90 * 10**9
    kinds = [e.event_type for e in rig_env["events"]]
    assert kinds.count("vram_freed") == 1 and "script_released" in kinds  # an in-process release needs no wait


def test_cpu_fallback_seen_through_the_snapshot(rig_env) -> None:
    server, manager = rig_env["server"], rig_env["manager"]
    server.specs[QWEN].gpu_fraction = 0.5
    run(manager, LlmHandler(), make_task("llm", "c1", prompt="x"), context(server))
    (alert,) = [e for e in rig_env["events"] if e.event_type == "cpu_fallback"]
    assert "on gpu 1 runs partly on CPU (size_vram 2.5 GB of 4.9 GB)" in alert.message


def test_load_llm_reports_the_cold_load(rig_env) -> None:
    out = run(rig_env["manager"], LlmHandler(), make_task("load_llm", "l1"), context(rig_env["server"]))
    assert out.result["load_s"] == 90.0 and out.result["loaded_now"] and out.result["expires_at"]


def test_llm_task_stops_when_cancelled_and_the_card_stays_ready(rig_env) -> None:
    server, manager = rig_env["server"], rig_env["manager"]
    server.time_scale = 1.0  # real-time tokens (25/s), so the stream is still running when we stop
    server.specs[QWEN].load_s = 0
    stop = threading.Event()
    progress: list = []

    def report(text: str | None, tps: float | None) -> None:
        progress.append(text)
        stop.set()

    ctx = TaskContext(worker_id="gpu1", gpu_ids=(1,), env={}, workdir=".", deadline=time.time() + 60,
                      report_progress=report, should_stop=stop.is_set, extras={"endpoint": server.host})
    with pytest.raises(TaskFailure, match="stopped") as exc:
        run(manager, LlmHandler(), make_task("llm", "d1", prompt="long"), ctx)
    assert exc.value.retryable and exc.value.output_tail
    assert manager.state == "llm_ready"


def test_llm_task_past_its_deadline_fails_retryable(rig_env) -> None:
    ctx = context(rig_env["server"], deadline=time.time() - 1)
    with pytest.raises(TaskFailure, match="deadline"):
        LlmHandler().run(make_task("llm", "e1", prompt="x"), ctx)


def test_bad_llm_params_are_definition_errors(rig_env) -> None:
    ctx = context(rig_env["server"])
    for params in ({"prompt": ""}, {"prompt": "x", "options": "hot"}, {"prompt": "x", "system": 3}):
        with pytest.raises(TaskFailure) as exc:
            LlmHandler().run(make_task("llm", "f1", **params), ctx)
        assert not exc.value.retryable


def test_llm_handler_takes_the_worker_command_lines_backend_kind(rig_env) -> None:
    server = rig_env["server"]
    ctx = TaskContext(worker_id="gpu1", gpu_ids=(1,), env={}, workdir=".", deadline=time.time() + 60,
                      extras={"endpoint": server.host, "backend": "ollama", "executor": "worker"})
    out = LlmHandler().run(make_task("llm", "g1", prompt="x"), ctx)
    assert out.result["backend"] == f"ollama@127.0.0.1:{server.port}" and out.tokens_generated
    ctx.extras["backend"] = "none"
    with pytest.raises(TaskFailure, match="no LLM backend") as exc:
        LlmHandler().run(make_task("llm", "g2", prompt="x"), ctx)
    assert not exc.value.retryable


def test_an_a_b_a_b_queue_through_the_worker_loads_the_llm_once(rig_env, tmp_path: Path) -> None:
    """llm, transcribe, llm, transcribe submitted in that order: the worker loop, with the
    residency-aware claim policy and this residency manager, batches by class instead of
    unloading and reloading Qwen for every other task."""
    from engine.events import EventLog
    from engine.handlers.registry import HandlerRegistry
    from engine.model import TaskType
    from engine.queue.filequeue import FileQueue
    from engine.scheduling.policy import WorkerProfile
    from engine.worker.loop import Worker, WorkerSettings

    server, first = rig_env["server"], rig_env["manager"]
    paths = RigPaths(tmp_path / "root").ensure()
    events = EventLog(paths.events)
    queue = FileQueue(paths)
    now = time.time()
    kinds = ["llm", "transcribe", "llm", "transcribe"]
    queue.submit([Task.from_dict({"task_id": f"q{i}-{k}", "name": k, "type": k, "created_at": now + i * 0.001,
                                  "model": QWEN if k == "llm" else "tiny.en",
                                  "params": {"prompt": f"p{i}"} if k == "llm" else {"audio": "x.wav"}})
                  for i, k in enumerate(kinds)], now)
    registry = HandlerRegistry(instances={TaskType.LLM: LlmHandler(), TaskType.TRANSCRIBE: rig_env["script"]})
    manager = ResidencyManager(first.backend, registry.loaded, first.probe, SystemClock(), (1,),  # as a worker wires it
                               vram_free_timeout_s=10, events=rig_env["events"].append, poll_interval_s=0.01)
    worker = Worker(queue, registry, manager, SystemClock(), paths, events, "gpu1", (1,), WorkerProfile("gpu1"),
                    WorkerSettings(extras={"endpoint": server.host, "backend": "ollama"}, max_tasks=4,
                                   exit_when_idle=True, idle_wait_s=0.05, poll_s=0.05))
    try:
        assert worker.run() == 4
    finally:
        queue.close()
    loads = [e for e in rig_env["events"] if e.event_type == "llm_loading"]
    assert len(loads) == 1, [e.event_type for e in rig_env["events"]]
    assert len(list(paths.complete.glob("*.json"))) == 4
