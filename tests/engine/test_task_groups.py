"""Process instances on claims and task process groups (engine/proctable.py, engine/taskgroups.py),
with the FakeProcessTable double; the real table is checked against this test's own processes."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.proctable import (
    FakeProcessTable,
    HostProcessTable,
    current_instance,
    parse_instance,
)
from engine.queue.filequeue import FileQueue
from engine.queue.names import ProcessingName, parse_processing_name
from engine.taskgroups import TaskGroupRecord, TaskGroups

T0 = 1_000_000.0


def test_a_processing_name_carries_the_instance_and_old_names_still_parse() -> None:
    new = ProcessingName("b.t1", TaskClass.CPU, "w0", 123, 456, "4242.99887.feceaf9b.0a7c9cdf")
    assert new.render() == "b.t1+cpu+w0+123+456+4242.99887.feceaf9b.0a7c9cdf.json"
    assert parse_processing_name(new.render()) == new
    old = parse_processing_name("b.t1+cpu+w0+123+456.json")
    assert old is not None and old.instance == "" and old.worker_id == "w0"
    assert parse_processing_name("b.t1+cpu+w0+123+456+no+way.json") is None


def test_a_claim_names_the_claiming_process(tmp_path: Path) -> None:
    q = FileQueue(RigPaths(tmp_path / "shared"), use_inotify=False)
    q.submit([Task(task_id="t1", name="t1", command="true")], T0)
    assert q.claim("w1", T0, lambda c, now: c, 60.0) is not None
    [name] = os.listdir(q.paths.processing)
    info = parse_processing_name(name)
    assert info is not None and info.instance == current_instance()
    assert parse_instance(info.instance).pid == os.getpid()  # type: ignore[union-attr]
    q.close()


def test_the_host_table_tells_a_live_process_from_a_gone_one_and_another_host_from_neither() -> None:
    table = HostProcessTable()
    me = current_instance()
    assert table.instance_alive(me) is True and table.is_local(me)
    child = subprocess.Popen(["sleep", "300"])
    inst = table.instance_of(child.pid)
    child.kill()
    child.wait()
    assert inst is not None and table.instance_alive(inst) is False
    mine = parse_instance(me)
    assert mine is not None
    assert table.instance_alive(f"{mine.pid}.{mine.start}.{mine.boot}.0ther0st") is None  # another host
    assert table.instance_alive(f"{mine.pid}.{mine.start}.0ldb00t.{mine.host}") is False  # an earlier boot
    assert table.instance_alive("") is None and table.instance_alive("123.r9f9f") is None


def _record(groups: TaskGroups, task_id: str = "t1", worker: str = "w1", instance: str = "10.1",
            pgid: int = 500, out_path: str | None = None) -> TaskGroupRecord:
    rec = TaskGroupRecord(task_id, worker, instance, pgid, 1, out_path)
    groups.record(rec)
    return rec


def test_killing_a_claim_kills_its_group_removes_its_temp_output_and_the_record(tmp_path: Path) -> None:
    table = FakeProcessTable()
    table.add(500, 1)
    table.add(501, 2, pgid=500)  # a child the task started
    table.add(600, 1)  # someone else's group
    groups = TaskGroups(RigPaths(tmp_path), table)
    fd, out = tempfile.mkstemp(prefix="galaxy-t1-", suffix=".out")
    os.close(fd)
    _record(groups, out_path=out)
    report = groups.kill_claim("t1", "w1", "10.1")
    assert report.groups == 1 and table.killed_groups == [500] and table.group_members(600) == [600]
    assert not os.path.exists(out) and groups.records() == []


def test_a_record_cannot_make_anyone_delete_a_file_that_is_not_a_task_output(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    groups = TaskGroups(RigPaths(tmp_path), FakeProcessTable())
    _record(groups, out_path=str(victim))
    groups.kill_claim("t1", "w1", "10.1")
    assert victim.read_text() == "keep me"


def test_a_group_recorded_on_another_host_is_never_signalled_here(tmp_path: Path) -> None:
    table = FakeProcessTable()
    table.add(500, 1)
    groups = TaskGroups(RigPaths(tmp_path), table)
    _record(groups, instance="10.1.b00t.other")
    assert groups.kill_claim("t1", "w1", "10.1.b00t.other").groups == 1
    assert table.killed_groups == [] and len(groups.records()) == 1  # left to that host's reapers


def test_a_reused_pid_is_not_taken_for_the_task_group(tmp_path: Path) -> None:
    table = FakeProcessTable()
    table.add(500, 99)  # pid 500 now belongs to a process that started later than the task's leader
    groups = TaskGroups(RigPaths(tmp_path), table)
    _record(groups)  # leader_start 1
    groups.kill_claim("t1", "w1", "10.1")
    assert table.killed_groups == [] and table.group_members(500) == [500]


def test_only_groups_of_gone_workers_are_killed_and_junk_records_are_dropped(tmp_path: Path) -> None:
    table = FakeProcessTable()
    alive = table.add(10, 1)
    table.add(500, 1)
    table.add(700, 1)
    groups = TaskGroups(RigPaths(tmp_path), table)
    _record(groups, "t-live", instance=alive, pgid=500)
    _record(groups, "t-dead", instance="11.1", pgid=700)
    (groups.dir / "junk.json").write_text("[" * 5000)
    os.mkfifo(groups.dir / "fifo.json")
    assert groups.kill_dead().groups == 1
    assert table.killed_groups == [700]
    assert [r.task_id for r in groups.records()] == ["t-live"]
    assert sorted(os.listdir(groups.dir)) == [groups.records()[0].file_name]


class _OrderCheckingTable(FakeProcessTable):
    """Notes, at each kill, whether the task was already offered again (in queue/)."""

    def __init__(self, paths: RigPaths) -> None:
        super().__init__()
        self.paths = paths
        self.queued_at_kill: list[bool] = []

    def kill_group(self, pgid: int, leader_start: int | None) -> list[int]:
        self.queued_at_kill.append(bool(os.listdir(self.paths.queue)))
        return super().kill_group(pgid, leader_start)


def test_a_reaped_lease_kills_the_task_group_before_the_task_is_queued_again(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared")
    table = _OrderCheckingTable(paths)
    groups = TaskGroups(paths, table)
    q = FileQueue(paths, use_inotify=False, groups=groups)
    q.submit([Task(task_id="t1", name="t1", command="sleep 300 & wait")], T0)
    q.claim("w1", T0, lambda c, now: c, 60.0)
    table.add(500, 1)
    table.add(501, 1, pgid=500)
    _record(groups, instance=current_instance())
    assert q.reap_stale(T0 + 61.0) == ["t1"]
    assert table.queued_at_kill == [False] and table.killed_groups == [500]
    assert os.listdir(paths.queue) and groups.records() == []
    q.close()


def test_the_real_table_kills_a_whole_group_and_waits_for_it(tmp_path: Path) -> None:
    leader = subprocess.Popen(["bash", "-c", "sleep 300 & sleep 300 & bash -c 'sleep 300 & wait' & wait"],
                              start_new_session=True)
    table = HostProcessTable()
    deadline = time.monotonic() + 30
    while len(table.group_members(leader.pid)) < 5:
        assert time.monotonic() < deadline, "the task's children did not start"
        time.sleep(0.02)
    start = table.start_ticks(leader.pid)
    assert table.kill_group(leader.pid, start) == []
    leader.wait()
    assert table.group_members(leader.pid) == []
