"""Claims match capabilities, the remaining cases: a task's ``executor`` restricts it to
groups of that role; a transcribe/embed task is offered only to a worker that has the
handler's library and resolves its model; the supervisor's waiting reasons and stall alert
use the same rule; retry of a task awaiting approval says so (supervisor and CLI)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine.config import GroupConfig, Thresholds
from engine.model import Executor, Task, TaskClass, TaskType, TaskValidationError
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.names import DelayedName, QueueName, parse_delayed_name, parse_queue_name
from engine.queue.protocol import Candidate, WaitingLane, WaitingTask
from engine.scheduling.capability import WorkerCapabilities, cannot_run, capabilities_of, wait_reason
from engine.scheduling.policy import RigView, WorkerProfile, make_claim_policy, rank
from engine.scheduling.script_support import ScriptSupport
from engine.supervisor.health import stall_condition
from engine.supervisor.snapshot_builder import WorkerInfo, explain_wait
from engine.supervisor.states import WorkerRecord, WState
from engine.workerstate import WorkerActivity, WorkerStatus

ANY_SCRIPT = WorkerCapabilities()  # no ScriptSupport: any script work (the simulator's profiles)
BRAIN = WorkerCapabilities(role=Executor.BRAIN)


def _no_library(_: str) -> bool:
    return False


def _resolve_only(known: set[str]) -> Any:
    def resolve(kind: TaskType, model: str | None, models: Any) -> str | None:
        return None if (model or "default") in known else f"model {model!r} not found"
    return resolve


def _state(q: FileQueue, task_id: str) -> str | None:
    t = q.get(task_id)
    return t.status.value if t is not None else None


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


# ---- names ---------------------------------------------------------------------------

def test_queue_names_record_type_and_executor_only_when_a_claim_needs_them() -> None:
    plain = Task("t1", "t1", command="true")
    assert QueueName.for_task(plain, 5).render() == "05+cpu++00000000000000005+t1.json"  # unchanged format
    brain = Task("t2", "t2", command="true", executor="brain")
    name = QueueName.for_task(brain, 5).render()
    assert name.endswith("+t2+shell.brain.json")
    assert parse_queue_name(name) == QueueName.for_task(brain, 5)
    tr = Task("t3", "t3", type=TaskType.TRANSCRIBE, task_class=TaskClass.SCRIPT, model="tiny.en")
    parsed = parse_queue_name(QueueName.for_task(tr, 5).render())
    assert parsed is not None and parsed.kind is TaskType.TRANSCRIBE and parsed.executor is Executor.WORKER
    # a name written before the field existed: executor worker, type unknown
    old = parse_queue_name("05+script+tiny.en+00000000000000005+t3.json")
    assert old is not None and old.kind is None and old.executor is Executor.WORKER
    assert parse_queue_name("05+cpu++00000000000000005+t1+boss.brain.json") is None  # not ours: adopted
    # backoff keeps it: delayed/ -> queue/ on promotion
    dn = DelayedName.for_task(brain, 9)
    back = parse_delayed_name(dn.render())
    assert back is not None and back.queue_name(7).executor is Executor.BRAIN
    # a brain-only head never hides worker tasks of the same class/model/priority
    assert QueueName.for_task(brain, 5).lane != QueueName.for_task(Task("t4", "t4", command="x"), 5).lane


def test_an_unknown_executor_is_refused_with_its_field() -> None:
    with pytest.raises(TaskValidationError) as err:
        Task.from_dict({"task_id": "a", "name": "a", "command": "true", "task_class": "cpu", "executor": "boss"})
    assert err.value.field == "executor" and "'boss'" in str(err.value)
    assert Task.from_dict({"task_id": "a", "name": "a", "command": "true", "task_class": "cpu",
                           "executor": "any"}).executor is Executor.ANY


# ---- executor ------------------------------------------------------------------------

def test_executor_restricts_claims_to_groups_of_that_role() -> None:
    worker = capabilities_of("none", {}, role="worker")
    brain = capabilities_of("none", {}, role="brain")
    assert cannot_run(TaskClass.CPU, None, worker, executor=Executor.BRAIN) is not None
    assert cannot_run(TaskClass.CPU, None, brain, executor=Executor.BRAIN) is None
    assert cannot_run(TaskClass.CPU, None, brain) is None  # the brain helps with worker tasks
    assert cannot_run(TaskClass.CPU, None, brain, executor=Executor.ANY) is None
    assert cannot_run(TaskClass.CPU, None, worker, executor=Executor.ANY) is None
    cands = [Candidate("b", TaskClass.CPU, None, 5, 0.0, executor=Executor.BRAIN),
             Candidate("w", TaskClass.CPU, None, 5, 0.0),
             Candidate("a", TaskClass.CPU, None, 5, 0.0, executor=Executor.ANY)]
    assert {c.task_id for c in rank(cands, WorkerProfile("w1", capabilities=worker), RigView(), 0.0)} == {"w", "a"}
    assert {c.task_id for c in rank(cands, WorkerProfile("b1", capabilities=brain), RigView(), 0.0)} == {"b", "w", "a"}


def test_a_task_no_live_role_may_run_waits_with_that_reason() -> None:
    worker = capabilities_of("none", {}, role="worker")
    assert wait_reason(TaskClass.CPU, None, [worker], executor=Executor.BRAIN) == \
        "no brain worker is running (the task's executor is brain)"
    assert wait_reason(TaskClass.CPU, None, [BRAIN]) is None  # a brain alone still runs worker tasks
    assert wait_reason(TaskClass.CPU, None, [worker, BRAIN], executor=Executor.BRAIN) is None


def test_a_real_queue_offers_a_brain_task_only_to_a_brain_worker(tmp_path: Path) -> None:
    q = FileQueue(RigPaths(tmp_path / "shared").ensure(), use_inotify=False)
    now = time.time()
    q.submit([Task("think", "think", command="true", executor="brain", created_at=now),
              Task("chore", "chore", command="true", created_at=now)], now)
    as_worker = make_claim_policy(WorkerProfile("w1", capabilities=capabilities_of("none", {}, role="worker")))
    got = q.claim("w1", now, as_worker, 60.0)
    assert got is not None and got.task_id == "chore"
    assert q.claim("w1", now, as_worker, 60.0) is None  # the brain task is never offered to it
    waiting = q.oldest_waiting(now, 10)
    assert [(w.task_id, w.executor) for w in waiting] == [("think", "brain")]
    # it failed once on a brain worker: its retry (delayed/, then queue/) is still brain-only
    as_brain = make_claim_policy(WorkerProfile("b1", capabilities=capabilities_of("none", {}, role="brain")))
    think = q.claim("b1", now, as_brain, 60.0)
    assert think is not None and think.task_id == "think"
    q.fail("think", "b1", "hiccup", now)
    q.promote_due(now + 3600)
    assert q.claim("w1", now + 3600, as_worker, 60.0) is None
    again = q.claim("b1", now + 3600, as_brain, 60.0)
    assert again is not None and again.task_id == "think"
    q.close()


# ---- script handlers and models ----------------------------------------------------

def test_script_work_needs_the_handlers_library_and_a_resolvable_model() -> None:
    clock = FakeClock()
    has = ScriptSupport({}, resolve=_resolve_only({"tiny.en", "default"}), clock=clock)
    caps = WorkerCapabilities(script=has)
    assert cannot_run(TaskClass.SCRIPT, "tiny.en", caps, kind=TaskType.TRANSCRIBE) is None
    assert cannot_run(TaskClass.SCRIPT, None, caps, kind=TaskType.EMBED) is None  # the default
    why = cannot_run(TaskClass.SCRIPT, "big.en", caps, kind=TaskType.TRANSCRIBE)
    assert why is not None and why.startswith("cannot resolve transcribe model big.en")
    # a script-class shell task, or one whose name does not record its type: by class only
    assert cannot_run(TaskClass.SCRIPT, "big.en", caps) is None
    assert cannot_run(TaskClass.SCRIPT, "big.en", caps, kind=TaskType.SHELL) is None
    bare = WorkerCapabilities(script=ScriptSupport({}, has_library=_no_library))
    assert "has no transcribe handler (faster_whisper is not installed)" == \
        cannot_run(TaskClass.SCRIPT, "tiny.en", bare, kind=TaskType.TRANSCRIBE)
    assert wait_reason(TaskClass.SCRIPT, "big.en", [caps, bare], kind=TaskType.TRANSCRIBE) == \
        "no worker can run this transcribe task: it cannot resolve transcribe model big.en: model 'big.en' not found"
    assert wait_reason(TaskClass.SCRIPT, "tiny.en", [caps, bare], kind=TaskType.TRANSCRIBE) is None
    assert wait_reason(TaskClass.SCRIPT, "big.en", [ANY_SCRIPT], kind=TaskType.TRANSCRIBE) is None


def test_a_no_is_asked_again_after_recheck_s_a_yes_is_kept() -> None:
    clock, known = FakeClock(), {"tiny.en"}
    calls: list[str | None] = []

    def resolve(kind: TaskType, model: str | None, models: Any) -> str | None:
        calls.append(model)
        return None if model in known else "not found"

    s = ScriptSupport({}, resolve=resolve, clock=clock, recheck_s=30.0)
    assert s.why_not(TaskType.TRANSCRIBE, "big.en") and s.why_not(TaskType.TRANSCRIBE, "big.en")
    assert calls == ["big.en"]  # cached: claims never stat model folders every poll
    known.add("big.en")  # the operator installs it
    clock.t = 31.0
    assert s.why_not(TaskType.TRANSCRIBE, "big.en") is None
    clock.t = 1000.0
    assert s.why_not(TaskType.TRANSCRIBE, "big.en") is None and calls == ["big.en", "big.en"]


def test_the_real_resolver_refuses_an_unknown_model_and_a_missing_mapped_folder(tmp_path: Path) -> None:
    s = ScriptSupport({"mini": str(tmp_path / "absent"), "here": str(tmp_path)})
    assert "not found" in (s.why_not(TaskType.TRANSCRIBE, "no-such-model-anywhere") or "")
    assert "does not exist" in (s.why_not(TaskType.EMBED, "mini") or "")
    if s.has_library("sentence_transformers"):
        assert s.why_not(TaskType.EMBED, "here") is None  # a mapped folder that exists


def test_a_real_queue_never_offers_an_unresolvable_transcribe_task(tmp_path: Path) -> None:
    q = FileQueue(RigPaths(tmp_path / "shared").ensure(), use_inotify=False)
    now = time.time()
    q.submit([Task("tr", "tr", type=TaskType.TRANSCRIBE, task_class=TaskClass.SCRIPT, model="big.en",
                   params={"audio": "a.wav"}, created_at=now),
              Task("sh", "sh", command="true", task_class=TaskClass.SCRIPT, created_at=now)], now)
    caps = WorkerCapabilities(script=ScriptSupport({}, resolve=_resolve_only({"tiny.en"})))
    policy = make_claim_policy(WorkerProfile("cpu", capabilities=caps))
    got = q.claim("cpu", now, policy, 60.0)
    assert got is not None and got.task_id == "sh"
    assert q.claim("cpu", now, policy, 60.0) is None
    (w,) = q.oldest_waiting(now, 10)
    assert (w.task_id, w.kind) == ("tr", "transcribe") and _state(q, "tr") == "pending"
    q.close()


# ---- the supervisor: waiting reasons and the stall alert ----------------------------

def _info(group: GroupConfig, *, busy: bool = False) -> WorkerInfo:
    status = WorkerStatus(worker_id=group.name, pid=1, gpus=group.gpus,
                          state=WorkerActivity.BUSY if busy else WorkerActivity.IDLE,
                          heartbeat_at=0.0, current_task="x" if busy else None)
    return WorkerInfo(group=group, record=WorkerRecord(state=WState.RUNNING), pid=1, status=status, endpoint=None)


def test_a_cpu_script_group_can_take_script_work_and_reasons_use_the_capability_rule() -> None:
    cpu = _info(GroupConfig("cpu", backend="none"))
    w = WaitingTask("sh", "sh", "script", 5, 0.0, "")
    assert explain_wait(w, [cpu]) != "no worker for class script"  # a CPU group runs script work
    brain_task = WaitingTask("b", "b", "cpu", 5, 0.0, "next in line: waiting", executor="brain")
    assert explain_wait(brain_task, [cpu]) == "no brain worker is running (the task's executor is brain)"
    brain = _info(GroupConfig("big", role="brain"))
    assert explain_wait(brain_task, [cpu, brain]) == brain_task.reason


def test_no_stall_alert_for_work_no_idle_worker_can_take() -> None:
    th = Thresholds()
    cpu = _info(GroupConfig("cpu", backend="none"))
    brain_only = (WaitingLane("cpu", None, None, "brain", 3),)
    assert not stall_condition({"cpu": 3}, [cpu], [], th, brain_only).active
    llm_lane = (WaitingLane("llm", "qwen", None, "worker", 2),)
    assert not stall_condition({"llm": 2}, [cpu], [], th, llm_lane).active
    plain = (WaitingLane("script", None, None, "worker", 1),)
    assert stall_condition({"script": 1}, [cpu], [], th, plain).active  # before: script needed a GPU
    busy = _info(GroupConfig("cpu", backend="none"), busy=True)
    assert not stall_condition({"script": 1}, [busy], [], th, plain).active
    # a queue that gives no lanes: judged by class, as before
    assert stall_condition({"script": 1}, [cpu], [], th).active
    assert not stall_condition({"llm": 1}, [cpu], [], th).active


def test_queue_counts_carry_lanes_for_the_stall_alert(tmp_path: Path) -> None:
    q = FileQueue(RigPaths(tmp_path / "shared").ensure(), use_inotify=False)
    now = time.time()
    q.submit([Task("b1", "b1", command="true", executor="brain"), Task("b2", "b2", command="true", executor="brain"),
              Task("w", "w", command="true", priority=7)], now)
    lanes = q.counts().lanes
    assert sorted((ln.executor, ln.count) for ln in lanes) == [("brain", 2), ("worker", 1)]
    assert q.counts().by_state["queue"] == {"cpu": 3}
    q.close()


# ---- retry of a task awaiting approval ------------------------------------------------

def test_the_supervisors_retry_of_a_parked_task_names_its_escalation(tmp_path: Path) -> None:
    from engine.commands import CommandKind, FileCommandSink, make_command
    from engine.config import GalaxyConfig
    from engine.snapshot import read_snapshot
    from engine.supervisor.launcher import FakeLauncher
    from engine.supervisor.supervisor import Supervisor
    from engine.telemetry.sim_rig import SimulatedRig

    paths = RigPaths(tmp_path / "shared").ensure()
    q = FileQueue(paths, use_inotify=False)
    now = 1_000.0
    q.submit([Task("ask", "ask", command="false", max_retries=0)], now)
    assert q.claim("w1", now, lambda c, t: c, 60.0) is not None
    q.fail("ask", "w1", "no local tier can take it", now, retryable=False)
    assert q.awaiting.park("ask", "esc-1234", now)
    cfg = GalaxyConfig(rig="t", groups=(GroupConfig("w1"),), thresholds=Thresholds(), source=None, origin="test")
    sup = Supervisor(cfg, paths, q, SimulatedRig.with_count(1), FakeLauncher(), simulated=True, pid=4242)
    sup.start(now)
    FileCommandSink(paths.commands).send(make_command(CommandKind.RETRY, "ask", source="test", now=now))
    sup.tick(now + 0.5)
    snap = read_snapshot(paths.snapshot)
    assert snap is not None
    (ack,) = [a for a in snap.acks if a.target == "ask"]
    assert ack.outcome == "refused"
    # not "ask is not in failed/"
    assert ack.message == "ask is awaiting approval of escalation esc-1234; approve or deny it first"
    assert _state(q, "ask") == "awaiting_approval"
    q.close()


def test_galaxy_status_gives_the_role_reason_and_the_supervisors_script_reason(tmp_path: Path) -> None:
    from engine.cli.status_data import status_data
    from engine.snapshot import SNAPSHOT_VERSION, QueueView, Snapshot, WaitingView, WorkerView, write_snapshot

    paths = RigPaths(tmp_path / "shared").ensure()
    q = FileQueue(paths, use_inotify=False)
    now = time.time()
    q.submit([Task("think", "think", command="true", executor="brain", created_at=now),
              Task("tr", "tr", type=TaskType.TRANSCRIBE, task_class=TaskClass.SCRIPT, model="big.en",
                   params={"audio": "a.wav"}, created_at=now + 1)], now)
    q.close()
    said = "no worker can run this transcribe task: it cannot resolve transcribe model big.en: not found"
    write_snapshot(paths.snapshot, Snapshot(
        version=SNAPSHOT_VERSION, seq=1, taken_at=time.time(), rig="r", simulated=False, telemetry_status="none",
        workers=(WorkerView("cpu", (), "running", llm_backend="none"),),
        queue=QueueView(waiting=(WaitingView("tr", "tr", "script", 5, now, said),))))
    reasons = {row["task_id"]: row["reason"] for row in status_data(paths.root, time.time())["waiting"]}
    assert reasons == {"think": "no brain worker is running (the task's executor is brain)", "tr": said}
