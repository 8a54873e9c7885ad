"""The supervisor and claims of gone worker processes: a rig crash, a worker exit, a live
older worker. FakeLauncher + FakeProcessTable (processes and groups), the real FileQueue."""

from __future__ import annotations

import os

import pytest

from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.model import Task
from engine.paths import RigPaths
from engine.proctable import FakeProcessTable
from engine.queue.filequeue import FileQueue
from engine.queue.names import parse_processing_name
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.taskgroups import TaskGroupRecord, TaskGroups
from engine.telemetry.sim_rig import SimulatedRig

TH = Thresholds(restart_backoff_s=1.0, max_fast_crashes=3, fast_crash_s=10.0, snapshot_interval_s=0.5,
                temp_hot_c=83.0, temp_resume_c=75.0, shutdown_grace_s=5.0)
GONE = "31337.5"  # a worker process of before the crash: not in the table


class Table(FakeProcessTable):
    """Notes, at each group kill, whether its task was already offered again (in queue/)."""

    def __init__(self, paths: RigPaths) -> None:
        super().__init__()
        self.paths = paths
        self.task_of: dict[int, str] = {}
        self.queued_at_kill: list[bool] = []

    def kill_group(self, pgid: int, leader_start: int | None) -> list[int]:
        task_id = self.task_of.get(pgid, "?")
        self.queued_at_kill.append(any(n.endswith(f"+{task_id}.json") for n in os.listdir(self.paths.queue)))
        return super().kill_group(pgid, leader_start)


class Rig:
    def __init__(self, tmp_path) -> None:
        self.clock = FakeClock(1_000.0)
        self.paths = RigPaths(tmp_path / "shared").ensure()
        self.table = Table(self.paths)
        self.groups = TaskGroups(self.paths, self.table)
        self.queue = FileQueue(self.paths, use_inotify=False, groups=self.groups)
        self.launcher = FakeLauncher(table=self.table)
        self.logs: list[tuple[str, dict]] = []
        cfg = GalaxyConfig(rig="test", groups=(GroupConfig("w1", gpus=(1,)), GroupConfig("w2", gpus=(2,))),
                           thresholds=TH, source=None, origin="test config")
        self.sup = Supervisor(cfg, self.paths, self.queue, SimulatedRig.with_count(3, clock=self.clock),
                              self.launcher, simulated=True, pid=4242, groups=self.groups,
                              log=lambda msg, **kw: self.logs.append((msg, kw)))

    def claim(self, task_id: str, worker_id: str, instance: str | None) -> None:
        """Claim as ``worker_id``; the claim then names ``instance`` (None: a name of before instances)."""
        self.queue.submit([Task(task_id=task_id, name=task_id, command="sleep 300 & sleep 300 & wait")],
                          self.clock.now())
        assert self.queue.claim(worker_id, self.clock.now(), lambda c, now: [x for x in c if x.task_id == task_id],
                                60.0).task_id == task_id
        self.queue._claims.clear()  # this process only stands in for the claiming worker
        name = next(n for n in os.listdir(self.paths.processing) if n.startswith(task_id + "+"))
        info = parse_processing_name(name)
        os.rename(self.paths.processing / name, self.paths.processing / name.replace(f"+{info.instance}.json",
                                                                                       f"+{instance}.json" if instance else ".json"))

    def group(self, task_id: str, worker_id: str, instance: str, pgid: int) -> None:
        self.table.add(pgid, 1)
        self.table.add(pgid + 1, 2, pgid=pgid)  # the task's background child
        self.table.task_of[pgid] = task_id
        self.groups.record(TaskGroupRecord(task_id, worker_id, instance, pgid, 1, None))

    def state(self, task_id: str) -> str:
        return self.queue.get(task_id).status.value

    def step(self, s: float = 0.5) -> None:
        self.clock.advance(s)
        self.sup.tick(self.clock.now())


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.queue.close()


def test_a_supervisor_starting_after_a_rig_crash_hands_back_the_gone_workers_claims_at_once(rig):
    rig.claim("t1", "w1", GONE)
    rig.claim("t2", "w2", GONE)
    rig.group("t1", "w1", GONE, 900)
    rig.claim("t3", "manual", GONE)  # not this supervisor's worker: left to its lease
    rig.claim("t4", "w1", None)  # written before instances: left to its lease
    rig.sup.start(rig.clock.now())
    for tid in ("t1", "t2"):
        t = rig.queue.get(tid)
        assert t.status.value == "pending" and t.retry_count == 0 and t.attempts[-1].outcome == "released"
    assert rig.table.killed_groups == [900] and rig.table.queued_at_kill == [False]
    assert rig.groups.records() == []
    assert rig.state("t3") == "processing" and rig.state("t4") == "processing"


def test_claims_of_an_earlier_worker_that_still_runs_are_left_to_it(rig):
    older = rig.table.add(31338, 5)  # still finishing its task after the supervisor restarted
    rig.claim("t1", "w1", older)
    rig.group("t1", "w1", older, 900)
    rig.sup.start(rig.clock.now())
    rig.step(2.0)
    assert rig.state("t1") == "processing" and rig.table.killed_groups == []
    del rig.table.procs[31338]  # then it is killed
    rig.step(2.0)
    t = rig.queue.get("t1")
    assert t.status.value == "pending" and t.retry_count == 0
    assert rig.table.killed_groups == [900] and rig.table.queued_at_kill == [False]


def test_a_crashed_worker_s_task_group_dies_before_the_task_is_offered_again(rig):
    rig.sup.start(rig.clock.now())
    w1 = rig.launcher.for_worker("w1")[0]
    rig.claim("t1", "w1", w1.instance)
    rig.group("t1", "w1", w1.instance, 900)
    rig.step()
    w1.exit(-9)
    rig.step()
    t = rig.queue.get("t1")
    assert t.status.value == "pending" and t.retry_count == 1  # a crash is charged, as before
    assert rig.table.killed_groups == [900] and rig.table.queued_at_kill == [False]
    assert rig.table.group_members(900) == []


def test_a_worker_exit_leaves_the_claims_of_another_live_process_of_the_same_worker(rig):
    rig.sup.start(rig.clock.now())
    older = rig.table.add(31338, 5)
    rig.claim("t-old", "w1", older)
    w1 = rig.launcher.for_worker("w1")[0]
    rig.claim("t-new", "w1", w1.instance)
    w1.exit(-9)
    rig.step()
    assert rig.state("t-old") == "processing"
    assert rig.queue.get("t-new").retry_count == 1
