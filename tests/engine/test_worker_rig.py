"""Worker names repeat across the rigs of one store (every rig has a ``gpu0``): an attempt records the
rig its worker ran on, the snapshot and ``galaxy task show`` name the worker with it (``gpu0@lab``), and
the cluster view marks a running task with the rig whose worker holds it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from engine.model import Attempt, Task, worker_at
from engine.paths import RigPaths
from engine.queue.protocol import Place
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.snapshot import SNAPSHOT_VERSION, Snapshot, TaskView, WorkerView
from engine.store.open_queue import open_queue
from engine.store.rigs_view import RigReading, merge_rigs
from engine.store.settings import StoreConfig
from engine.supervisor.snapshot_builder import task_view
from engine.task_report import TaskState, build_report, report_lines
from tests.support.redis_server import redis_server  # noqa: F401


def test_an_attempt_keeps_its_rig_and_a_single_rigs_record_is_unchanged() -> None:
    plain = Attempt(1, "gpu0", 10.0, 12.0, "ok")
    assert "rig" not in plain.to_dict()  # a file root's records stay as they were
    assert Attempt.from_dict(plain.to_dict()) == plain
    on_lab = replace(plain, rig="lab")
    assert on_lab.to_dict()["rig"] == "lab" and Attempt.from_dict(on_lab.to_dict()) == on_lab
    assert Attempt.from_dict({**plain.to_dict(), "rig": 7}).rig is None  # not a name: dropped, not trusted
    assert [worker_at("gpu0", None), worker_at("gpu0", "lab"), worker_at(None, "lab")] == ["gpu0", "gpu0@lab", "-"]


def test_two_rigs_gpu0_are_told_apart_in_the_records(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    store = StoreConfig(server.url, "rig" + uuid.uuid4().hex[:8])
    lab = open_queue(store, RigPaths(tmp_path / "lab"), rig="lab")
    mac = open_queue(store, RigPaths(tmp_path / "mac"), rig="mac")
    policy = make_claim_policy(WorkerProfile("gpu0"))
    try:
        lab.submit([Task(task_id="a", name="a", command="true", max_retries=0),
                    Task(task_id="b", name="b", command="true", max_retries=0)], now=1.0)
        first = lab.claim("gpu0", 2.0, policy, 60.0)
        second = mac.claim("gpu0", 2.0, policy, 60.0)
        assert first is not None and second is not None
        lab.complete(first.task_id, "gpu0", {"ok": True}, 3.0)
        mac.fail(second.task_id, "gpu0", "exit 1", 3.0, retryable=False)
        done, failed = lab.get(first.task_id), lab.get(second.task_id)
        assert done is not None and failed is not None
        assert [a.rig for a in done.attempts] == ["lab"] and [a.rig for a in failed.attempts] == ["mac"]
        assert lab.where(second.task_id) is Place.FAILED
        assert (task_view(done).worker_id, task_view(done).rig) == ("gpu0", "lab")
        assert task_view(failed).rig == "mac"
        report = build_report(failed, TaskState.FAILED, None)
        assert report.to_dict()["worker_id"] == "gpu0" and report.to_dict()["rig"] == "mac"
        text = "\n".join(report_lines(report, 4.0, with_tail=False))
        assert "worker  gpu0@mac" in text and "#1 gpu0@mac" in text
    finally:
        for q in (lab, mac):
            q.close()


def _rig(rig: str, workers: tuple[WorkerView, ...], running: tuple[TaskView, ...] = ()) -> Snapshot:
    return Snapshot(version=SNAPSHOT_VERSION, seq=1, taken_at=100.0, rig=rig, simulated=True, telemetry_status="test",
                    workers=workers, running=running)


def test_the_cluster_view_marks_a_running_task_with_its_holders_rig() -> None:
    running = (TaskView("t1", "one", "cpu", "running", "gpu0"), TaskView("t2", "two", "cpu", "running", "gpu0"),
               TaskView("t3", "three", "cpu", "running", "gpu0"))  # t3: its holder's rig published nothing
    lab = _rig("lab", (WorkerView("gpu0", (0,), "busy", current_task="t1"),), running)
    mac = _rig("mac", (WorkerView("gpu0", (0,), "busy", current_task="t2"),), running)
    view = merge_rigs([RigReading("lab", lab, 100.0, False), RigReading("mac", mac, 100.0, False)], "lab")
    assert view is not None
    assert [(t.task_id, t.rig) for t in view.running] == [("t1", "lab"), ("t2", "mac"), ("t3", None)]
