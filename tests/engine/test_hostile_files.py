"""Hostile files in every channel the engine reads: FIFO, /dev/zero link, link out of the root,
oversize, 100k-deep JSON, invalid UTF-8. Each is refused with its reason and moved aside once;
nothing blocks, nothing outside the root is read or touched, and good work around it goes on."""

from __future__ import annotations

import json
import os

import pytest
from queue_helpers import T0, drain_ids, events_of, make_queue, task

from engine.audit import FileAuditLog
from engine.commands import CommandKind, FileCommandChannel, FileCommandSink, make_command
from engine.config import ConfigError, load_config
from engine.escalation.store import EscalationStore
from engine.model import MAX_TASK_FILE_BYTES, TaskClass, TaskStatus
from engine.plans import PlanError, load_plan
from engine.queue.inspect import SYMLINK_REFUSED
from engine.queue.names import HeldName, ProcessingName, QueueName
from engine.schema import SchemaError
from engine.snapshot import read_snapshot
from engine.supervisor.command_processor import CommandProcessor, Outcome
from engine.workerstate import read_control, read_status

OLD = 1_000_000_000  # mtime for hand-dropped files: "finished being written long ago"
DEEP_JSON = b"[" * 30_000 + b"]" * 30_000  # 60 KB: under every channel's size limit, so depth is what fails


def _outside_task(tmp_path):
    """A valid task file outside the rig root: a link to it must never be followed."""
    target = tmp_path / "outside" / "secret.json"
    target.parent.mkdir()
    target.write_text(json.dumps({"task_id": "stolen", "name": "x", "command": "true", "task_class": "cpu"}))
    os.utime(target, (OLD, OLD))
    return target


def make_hostile(kind: str, path, tmp_path) -> None:
    """Create ``path`` as the hostile file ``kind``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    elif kind == "outside_link":
        path.symlink_to(_outside_task(tmp_path))
    elif kind == "deep":
        path.write_bytes(DEEP_JSON)
    elif kind == "utf8":
        path.write_bytes(b'{"task_id": "\xff\xfe"}')
    elif kind == "oversize":
        with open(path, "wb") as fh:
            fh.truncate(MAX_TASK_FILE_BYTES * 5)
    else:  # pragma: no cover
        raise AssertionError(kind)
    if not path.is_symlink():
        os.utime(path, (OLD, OLD))


KINDS = ["fifo", "devzero", "outside_link", "deep", "utf8", "oversize"]
REASONS = {"fifo": "is a FIFO", "devzero": "is a symlink", "outside_link": "is a symlink",
           "deep": "nested too deep", "utf8": "not UTF-8", "oversize": "over the 1,000,000-byte limit"}


def _invalid_records(q):
    out = []
    for name in os.listdir(q.paths.failed):
        if name.endswith(".json"):
            rec = json.loads((q.paths.failed / name).read_text())
            if (rec.get("result") or {}).get("invalid_file"):
                out.append(rec)
    return out


# ---------------------------------------------------------------- the task queue
@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_file_with_a_queue_name_fails_on_claim_and_the_next_task_runs(tmp_path, kind):
    q = make_queue(tmp_path, use_inotify=False)
    q.submit([task("fine")], T0)
    name = QueueName(9, TaskClass.CPU, None, 1, "poison").render()  # first in line
    make_hostile(kind, q.paths.queue / name, tmp_path)
    assert drain_ids(q, T0) == ["fine"]
    [rec] = _invalid_records(q)
    assert REASONS[kind] in rec["error"] and f"queue/{name}" in rec["error"]
    raw = q.paths.failed / rec["result"]["raw_file"]
    assert os.path.lexists(raw) and not os.path.lexists(q.paths.queue / name)
    if kind in ("fifo", "devzero", "outside_link"):
        assert rec["result"]["raw_excerpt"] is None  # never read from a FIFO, a device or through a link
    if kind == "outside_link":
        assert (tmp_path / "outside" / "secret.json").stat().st_mtime == OLD  # the lease never touched it
        assert q.get("stolen") is None
    assert len(events_of(tmp_path, "task_invalid")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_file_dropped_into_queue_goes_to_failed(tmp_path, kind):
    q = make_queue(tmp_path, use_inotify=False)
    q.submit([task("fine")], T0)
    make_hostile(kind, q.paths.queue / "dropped.json", tmp_path)
    assert drain_ids(q, T0) == ["fine"]
    [rec] = _invalid_records(q)
    reason = SYMLINK_REFUSED if kind in ("devzero", "outside_link") else REASONS[kind]
    assert reason in rec["error"] and "queue/dropped.json" in rec["error"]
    assert os.listdir(q.tmp) == []  # nothing vanished into .tmp/
    assert os.listdir(q.paths.queue) == []
    assert q.get("stolen") is None


def test_a_dangling_symlink_dropped_into_queue_goes_to_failed(tmp_path):
    q = make_queue(tmp_path, use_inotify=False)
    (q.paths.queue / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    assert drain_ids(q, T0) == []
    [rec] = _invalid_records(q)
    assert SYMLINK_REFUSED in rec["error"]
    assert os.listdir(q.paths.queue) == [] and os.listdir(q.tmp) == []


def _drop_json(q, name, obj):
    path = q.paths.queue / name
    path.write_text(json.dumps(obj))
    os.utime(path, (OLD, OLD))


@pytest.mark.parametrize("deps,reason", [(["self-dep"], "depends on itself"),
                                         (["ghost"], "unknown dependency 'ghost'")])
def test_a_dropped_task_with_impossible_dependencies_fails_like_submit(tmp_path, deps, reason):
    q = make_queue(tmp_path, use_inotify=False)
    _drop_json(q, "dropped.json", {"task_id": "self-dep", "name": "x", "command": "true", "task_class": "cpu",
                                   "depends_on": deps})
    assert drain_ids(q, T0) == []
    [rec] = _invalid_records(q)
    assert reason in rec["error"]
    assert os.listdir(q.paths.held) == ["_deps"] or os.listdir(q.paths.held) == []  # never held forever


def test_a_dropped_task_with_a_known_dependency_is_held_then_runs(tmp_path):
    q = make_queue(tmp_path, use_inotify=False)
    q.submit([task("first")], T0)
    _drop_json(q, "dropped.json", {"task_id": "second", "name": "x", "command": "true", "task_class": "cpu",
                                   "depends_on": ["first"]})
    assert drain_ids(q, T0) == ["first", "second"]
    assert _invalid_records(q) == []


def _dep_task(task_id, *deps):
    return {"task_id": task_id, "name": task_id, "command": "true", "task_class": "cpu", "depends_on": list(deps)}


def test_tasks_dropped_together_are_judged_as_one_submission(tmp_path):
    q = make_queue(tmp_path, use_inotify=False)
    _drop_json(q, "a.json", _dep_task("a", "b"))  # depends on a task dropped in the same pass
    _drop_json(q, "b.json", _dep_task("b"))
    _drop_json(q, "c.json", _dep_task("c", "d"))  # a cycle: both would wait forever
    _drop_json(q, "d.json", _dep_task("d", "c"))
    _drop_json(q, "e.json", _dep_task("e", "ghost"))  # unknown...
    _drop_json(q, "f.json", _dep_task("f", "e"))  # ...and what depends on it goes too
    _drop_json(q, "g.json", _dep_task("b"))  # the same id twice
    assert drain_ids(q, T0) == ["b", "a"]
    errors = {r["result"]["invalid_file"]: r["error"] for r in _invalid_records(q)}
    assert sorted(errors) == ["c.json", "d.json", "e.json", "f.json", "g.json"]
    assert "dependency cycle" in errors["c.json"] and "dependency cycle" in errors["d.json"]
    assert "unknown dependency 'ghost'" in errors["e.json"] and "unknown dependency 'e'" in errors["f.json"]
    assert "task id 'b' already exists" in errors["g.json"]
    assert [n for n in os.listdir(q.paths.held) if n != "_deps"] == []


def test_a_deep_held_task_goes_to_failed_on_settle(tmp_path):
    q = make_queue(tmp_path, use_inotify=False)
    name = HeldName(1, TaskClass.CPU, "held1").render()
    (q.paths.held / name).write_bytes(DEEP_JSON)
    q.deps.settle("held1", T0)
    [rec] = _invalid_records(q)
    assert "nested too deep" in rec["error"]
    assert not (q.paths.held / name).exists()


def test_a_lease_heartbeat_never_touches_what_a_link_points_at(tmp_path):
    q = make_queue(tmp_path, use_inotify=False)
    target = _outside_task(tmp_path)
    pname = ProcessingName("t1", TaskClass.CPU, "w1", int(T0 * 1e6), 30_000).render()
    (q.paths.processing / pname).symlink_to(target)
    q.heartbeat("t1", "w1", T0 + 5, 30.0)
    assert target.stat().st_mtime == OLD


# ---------------------------------------------------------------- the command channel
@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_command_file_is_rejected_once_and_the_next_command_applies(tmp_path, kind):
    proc = CommandProcessor(FileCommandChannel(tmp_path / "commands"), FileAuditLog(tmp_path / "audit.jsonl"))
    applied: list[str] = []
    proc.register(CommandKind.PAUSE, lambda c, now: (applied.append(c.target), Outcome.ok("paused"))[1])
    (tmp_path / "commands").mkdir()
    make_hostile(kind, tmp_path / "commands" / "000-bad.json", tmp_path)
    FileCommandSink(tmp_path / "commands").send(make_command(CommandKind.PAUSE, "w1", source="t", now=5.0))
    acks = proc.process(now=10.0)
    assert [a.outcome for a in acks] == ["refused", "ok"] and applied == ["w1"]
    reason = "limit" if kind == "oversize" else REASONS[kind]
    assert reason in acks[0].message
    rejected = tmp_path / "commands" / "rejected"
    assert os.path.lexists(rejected / "000-bad.json")
    assert reason in (rejected / "000-bad.json.reason.txt").read_text()
    assert proc.process(now=11.0) == [] and proc.process(now=20.0) == []  # never read again


# ---------------------------------------------------------------- escalation records
@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_escalation_record_is_moved_aside_once_with_an_event(tmp_path, kind):
    rejected: list[tuple[str, str]] = []
    store = EscalationStore(tmp_path / "esc", on_reject=lambda eid, why: rejected.append((eid, why)))
    make_hostile(kind, tmp_path / "esc" / "e1.json", tmp_path)
    assert store.all() == [] and store.get("e1") is None
    assert len(rejected) == 1 and rejected[0][0] == "e1"
    assert os.path.lexists(tmp_path / "esc" / "rejected" / "e1.json")
    assert (tmp_path / "esc" / "rejected" / "e1.json.reason.txt").exists()


# ---------------------------------------------------------------- worker state, snapshot
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_worker_status_and_control_files_read_as_absent(tmp_path, kind):
    make_hostile(kind, tmp_path / "w1.status.json", tmp_path)
    make_hostile(kind, tmp_path / "w1.control.json", tmp_path) if kind != "outside_link" else \
        (tmp_path / "w1.control.json").symlink_to(tmp_path / "w1.status.json")
    assert read_status(tmp_path / "w1.status.json") is None
    assert read_control(tmp_path / "w1.control.json") is None


@pytest.mark.parametrize("kind", ["fifo", "devzero", "deep", "utf8"])
def test_a_hostile_snapshot_is_a_schema_error(tmp_path, kind):
    make_hostile(kind, tmp_path / "snapshot.json", tmp_path)
    with pytest.raises(SchemaError, match=r"snapshot\.json"):
        read_snapshot(tmp_path / "snapshot.json")


# ---------------------------------------------------------------- plans and galaxy.toml
@pytest.mark.parametrize("kind,reason", [("fifo", "is a FIFO"), ("devzero", "is a character device"),
                                         ("oversize", "over the 1,000,000-byte limit")])
def test_a_hostile_plan_is_a_plan_error(tmp_path, kind, reason):
    make_hostile(kind, tmp_path / "plan.md", tmp_path)
    with pytest.raises(PlanError, match=reason):
        load_plan(tmp_path / "plan.md", now=T0)


@pytest.mark.parametrize("kind,reason", [("fifo", "is a FIFO"), ("devzero", "is a character device"),
                                         ("utf8", "not UTF-8")])
def test_a_hostile_config_is_a_config_error(tmp_path, kind, reason):
    make_hostile(kind, tmp_path / "galaxy.toml", tmp_path)
    with pytest.raises(ConfigError, match=reason):
        load_config(tmp_path / "galaxy.toml")


def test_a_config_nested_100k_deep_is_a_config_error(tmp_path):
    (tmp_path / "galaxy.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deep"):
        load_config(tmp_path / "galaxy.toml")


def test_status_shows_a_refused_file_as_failed(tmp_path):
    q = make_queue(tmp_path, use_inotify=False)
    make_hostile("deep", q.paths.queue / "deep.json", tmp_path)
    drain_ids(q, T0)
    [failed] = q.recent("failed", 10)
    assert failed.status is TaskStatus.FAILED and "nested too deep" in failed.error


# ---------------------------------------------------------------- a task's own input file
@pytest.mark.parametrize("kind,reason", [("fifo", "is a FIFO"), ("devzero", "is a character device")])
def test_an_llm_input_that_is_a_fifo_or_device_fails_the_task_without_hanging(tmp_path, kind, reason):
    from engine.handlers.base import TaskFailure
    from engine.handlers.llm_io import llm_prompt
    from engine.model import Task, TaskType

    make_hostile(kind, tmp_path / "input.txt", tmp_path)
    t = Task(task_id="l1", name="l", type=TaskType.LLM, task_class=TaskClass.LLM, model="m",
             params={"prompt": "summarise", "input": "input.txt"})
    with pytest.raises(TaskFailure, match=reason) as info:
        llm_prompt(t, str(tmp_path))
    assert info.value.retryable is False


@pytest.mark.parametrize("kind", ["fifo", "devzero", "deep"])
def test_a_hostile_supervisor_pid_file_reads_as_no_supervisor(tmp_path, kind):
    from engine.supervisor.pidfile import read_pid, running_supervisor_pid

    make_hostile(kind, tmp_path / "supervisor.pid", tmp_path)
    assert read_pid(tmp_path / "supervisor.pid") is None
    assert running_supervisor_pid(tmp_path / "supervisor.pid") is None


# ---------------------------------------------------------------- the queue's intent journal
@pytest.mark.parametrize("kind", ["fifo", "devzero", "outside_link", "deep", "utf8", "dir"])
def test_a_hostile_intent_record_never_stops_recovery(tmp_path, kind):
    q = make_queue(tmp_path, use_inotify=False)
    q.submit([task("fine")], T0)
    journal = q.paths.tasks / ".journal"
    journal.mkdir(exist_ok=True)
    bad = journal / "00000000000000000001.x.intent"
    if kind == "dir":
        bad.mkdir()
    else:
        make_hostile(kind, bad, tmp_path)
    q.journal.recover(T0)  # returns, never blocks on the FIFO or raises on the depth
    assert (tmp_path / "outside" / "secret.json").exists() if kind == "outside_link" else True
    assert drain_ids(q, T0) == ["fine"]


# ---------------------------------------------------------------- log lines read back
def test_a_log_line_nested_100k_deep_is_skipped_by_every_log_reader(tmp_path):
    from engine.escalation.pricing import CostLedger
    from engine.events import EventLog, tail_events

    deep = "[" * 100_000 + "]" * 100_000
    log = EventLog(tmp_path / "events.jsonl")
    log.emit("task_submitted", at=T0, task_id="a")
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write(deep + "\n")
    log.emit("task_submitted", at=T0 + 1, task_id="b")
    assert [e["task_id"] for e in tail_events(tmp_path / "events.jsonl")] == ["a", "b"]
    (tmp_path / "cost.jsonl").write_text(deep + "\n" + json.dumps({"day": "d", "cost_usd": 1.5}) + "\n")
    assert CostLedger(tmp_path / "cost.jsonl").spent_on("d") == 1.5


def test_the_demand_learner_counts_a_deep_event_line_as_bad(tmp_path):
    from engine.scheduling.costs import SwitchCosts
    from engine.supervisor.model_demand import ModelDemand

    class NoLookup:
        def models(self, task_ids, budget):
            return {}

    (tmp_path / "events.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    demand = ModelDemand(tmp_path / "events.jsonl", NoLookup(), n_groups=1, priors=SwitchCosts())
    demand.update(T0)
    assert demand.bad_lines == 1 and demand.errors == 0


# ---------------------------------------------------------------- a real worker loop
@pytest.mark.parametrize("kind", ["fifo", "devzero", "deep"])
def test_a_worker_with_a_hostile_control_file_runs_on_and_reports_it_once(tmp_path, kind):
    from worker_doubles import RecordingResidency

    from engine.clock import FakeClock
    from engine.events import EventLog
    from engine.handlers.registry import HandlerRegistry
    from engine.scheduling.policy import WorkerProfile
    from engine.worker.loop import Worker, WorkerSettings

    q = make_queue(tmp_path, use_inotify=False)
    q.submit([task("a"), task("b")], T0)
    q.paths.workers.mkdir(parents=True, exist_ok=True)
    make_hostile(kind, q.paths.worker_control("w1"), tmp_path)
    w = Worker(q, HandlerRegistry(), RecordingResidency(), FakeClock(T0), q.paths, EventLog(q.paths.events), "w1",
               (), WorkerProfile("w1"), WorkerSettings(exit_when_idle=True, housekeeping_s=0.0))
    assert w.run() == 2
    errors = [e for e in events_of(tmp_path, "worker_error") if "control file" in (e.get("error") or "")]
    assert len(errors) == 1
