"""Claims match capabilities: a worker is offered only work it can run, and a task no
worker can run waits with that reason instead of being failed by the wrong worker."""

from __future__ import annotations

import time
from pathlib import Path

from engine.cli.status_data import status_data
from engine.config import GroupConfig
from engine.model import Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.protocol import Candidate, WaitingTask
from engine.scheduling.capability import (
    cannot_run,
    capabilities_of,
    effective_backend,
    explain_unrunnable,
    wait_reason,
)
from engine.scheduling.policy import (
    RigView,
    WorkerProfile,
    explain,
    make_claim_policy,
    rank,
)
from engine.snapshot import SNAPSHOT_VERSION, Snapshot, WorkerView, write_snapshot
from engine.supervisor.snapshot_builder import WorkerInfo, explain_wait
from engine.supervisor.states import WorkerRecord, WState

LLAMA = capabilities_of("openai", {"llm": "smollm2"})
OLLAMA = capabilities_of("ollama", {"llm": "qwen2.5:7b"})
SCRIPT = capabilities_of("none", {"transcribe": "tiny.en"})


def cand(task_id: str, cls: TaskClass, model: str | None = None) -> Candidate:
    return Candidate(task_id, cls, model, priority=5, created_at=0.0)


def test_an_llm_task_needs_a_backend_that_serves_its_model() -> None:
    assert cannot_run(TaskClass.LLM, "smollm2", LLAMA) is None
    assert "serves smollm2, not qwen" in (cannot_run(TaskClass.LLM, "qwen", LLAMA) or "")
    assert cannot_run(TaskClass.LLM, "anything", OLLAMA) is None  # Ollama loads what it has
    assert cannot_run(TaskClass.LLM, "anything", capabilities_of("router", {})) is None
    assert "no LLM backend" in (cannot_run(TaskClass.LLM, "smollm2", SCRIPT) or "")
    assert "no LLM backend" in (cannot_run(TaskClass.RESOURCE, "smollm2", SCRIPT) or "")
    # a server without a declared model: we cannot know what it serves, so anything
    assert cannot_run(TaskClass.LLM, "qwen", capabilities_of("openai", {})) is None


def test_script_and_cpu_work_and_class_restrictions() -> None:
    assert cannot_run(TaskClass.SCRIPT, "tiny.en", SCRIPT) is None
    assert cannot_run(TaskClass.CPU, None, LLAMA) is None
    only_llm = capabilities_of("openai", {"llm": "smollm2"}, (TaskClass.LLM,))
    assert "does not take class script" in (cannot_run(TaskClass.SCRIPT, None, only_llm) or "")


def test_an_endpoint_less_group_has_no_backend() -> None:
    assert effective_backend("ollama", None) == "none"
    assert effective_backend("openai", "http://127.0.0.1:8080") == "openai"
    assert effective_backend("router", None) == "router"
    assert effective_backend("none", "http://x") == "none"


def test_the_claim_policy_drops_what_the_worker_cannot_run() -> None:
    llm, script, other_model = cand("l", TaskClass.LLM, "smollm2"), cand("s", TaskClass.SCRIPT), \
        cand("q", TaskClass.LLM, "qwen")
    script_worker = WorkerProfile("script", capabilities=SCRIPT)
    llama_worker = WorkerProfile("llama", capabilities=LLAMA)
    assert [c.task_id for c in rank([llm, script, other_model], script_worker, RigView(), 0.0)] == ["s"]
    assert {c.task_id for c in rank([llm, script, other_model], llama_worker, RigView(), 0.0)} == {"l", "s"}
    # without capabilities (the simulator's profiles) nothing is dropped
    assert len(rank([llm, script, other_model], WorkerProfile("sim"), RigView(), 0.0)) == 3
    text = explain([llm, script], script_worker, RigView(), 0.0)
    assert "l [llm:smollm2]: not runnable on script (has no LLM backend (backend = none))" in text


def test_wait_reason_names_the_model_when_no_worker_serves_it() -> None:
    assert wait_reason(TaskClass.LLM, "qwen", [LLAMA, SCRIPT]) == "no worker serves model qwen"
    assert wait_reason(TaskClass.LLM, "smollm2", [LLAMA, SCRIPT]) is None
    assert wait_reason(TaskClass.LLM, "qwen", [SCRIPT]) == "no worker serves model qwen"
    assert wait_reason(TaskClass.LLM, None, [SCRIPT]) == "no worker has an LLM backend"
    assert wait_reason(TaskClass.LLM, "qwen", []) is None  # nothing to judge by
    waiting = [WaitingTask("a", "a", "llm", 5, 0.0, "next in line: ...", model="qwen"),
               WaitingTask("b", "b", "llm", 5, 0.0, "dependency pending: x", model="qwen"),
               WaitingTask("c", "c", "llm", 5, 0.0, "waiting: priority 5 behind 1", model="smollm2")]
    out = explain_unrunnable(waiting, [LLAMA, SCRIPT])
    assert [w.reason for w in out] == ["no worker serves model qwen", "dependency pending: x",
                                       "waiting: priority 5 behind 1"]


def _info(group: GroupConfig, endpoint: str | None, backend: str | None = None) -> WorkerInfo:
    return WorkerInfo(group=group, record=WorkerRecord(state=WState.RUNNING), pid=1, status=None,
                      endpoint=endpoint, backend=backend)


def test_the_supervisors_explanation_uses_the_same_rule() -> None:
    llama = _info(GroupConfig("llama", backend="openai", endpoint="http://127.0.0.1:1", models={"llm": "smollm2"}),
                  "http://127.0.0.1:1")
    script = _info(GroupConfig("script", backend="none"), None)
    w = WaitingTask("a", "a", "llm", 5, 0.0, "next in line: waiting for a free worker", model="qwen")
    assert explain_wait(w, [llama, script]) == "no worker serves model qwen"
    ok = WaitingTask("b", "b", "llm", 5, 0.0, "next in line: waiting for a free worker", model="smollm2")
    assert explain_wait(ok, [llama, script]) == ok.reason
    # the simulated rig hands a backend-none group a simulated Ollama: that worker can run it
    sim = _info(GroupConfig("gpu0", gpus=(0,), backend="none"), "http://127.0.0.1:2", backend="ollama")
    assert explain_wait(w, [sim]) == w.reason


def test_a_worker_never_claims_or_fails_an_llm_task_it_cannot_run_and_retry_does_not_change_that(
        tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    q = FileQueue(paths, use_inotify=False)
    now = time.time()
    q.submit([Task(task_id="gen", name="gen", type=TaskType.LLM, task_class=TaskClass.LLM, model="smollm2",
                   params={"prompt": "hi"}),
              Task(task_id="sh", name="sh", command="true", task_class=TaskClass.SCRIPT)], now)
    script_policy = make_claim_policy(WorkerProfile("script", capabilities=SCRIPT))
    claimed = q.claim("script", now, script_policy, 60.0)
    assert claimed is not None and claimed.task_id == "sh"
    assert q.claim("script", now, script_policy, 60.0) is None  # the llm task is not offered to it
    # the task failed once elsewhere (e.g. before this fix); a retry puts it back where only the
    # llama worker is offered it
    llama_task = q.claim("llama", now, make_claim_policy(WorkerProfile("llama", capabilities=LLAMA)), 60.0)
    assert llama_task is not None and llama_task.task_id == "gen"
    q.fail("gen", "llama", "server hiccup", now, retryable=False)
    assert q.retry("gen", now + 1)
    assert q.claim("script", now + 2, script_policy, 60.0) is None
    assert q.get("gen").status.value == "pending"
    waiting = {w.task_id: w for w in explain_unrunnable(q.oldest_waiting(now + 2, 10), [SCRIPT])}
    assert waiting["gen"].reason == "no worker serves model smollm2"
    q.close()


def _publish(paths: RigPaths, *workers: WorkerView) -> None:
    write_snapshot(paths.snapshot, Snapshot(version=SNAPSHOT_VERSION, seq=1, taken_at=time.time(), rig="r",
                                            simulated=False, telemetry_status="none", workers=workers))


def test_galaxy_status_says_why_from_the_snapshots_worker_capabilities(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    q = FileQueue(paths, use_inotify=False)
    q.submit([Task(task_id="gen", name="gen", type=TaskType.LLM, task_class=TaskClass.LLM, model="qwen2.5:7b",
                   params={"prompt": "hi"})], time.time())
    q.close()
    llama = WorkerView("llama", (), "running", llm_backend="openai", llm_models=("smollm2",))
    scripts = WorkerView("scripts", (), "running", llm_backend="none")
    _publish(paths, llama, scripts)
    (row,) = status_data(paths.root, time.time())["waiting"]
    assert row["reason"] == "no worker serves model qwen2.5:7b"
    # a stopped worker that could serve it does not change the answer; a running one does
    _publish(paths, llama, WorkerView("big", (0,), "stopped", llm_backend="ollama"))
    assert status_data(paths.root, time.time())["waiting"][0]["reason"] == "no worker serves model qwen2.5:7b"
    _publish(paths, llama, WorkerView("big", (0,), "running", llm_backend="ollama"))
    assert "no worker" not in status_data(paths.root, time.time())["waiting"][0]["reason"]
    # an older supervisor that publishes no capabilities: nothing is claimed about them
    _publish(paths, WorkerView("old", (), "running"))
    assert "no worker" not in status_data(paths.root, time.time())["waiting"][0]["reason"]
