"""Which process group runs which claim, so a dead worker's task can be killed for sure.

The worker writes one small record per running shell task (``state/taskgroups/``) after
the task's process group exists and before its command runs (the shell handler holds the
command at a gate until then), and removes it when the group is gone. Whoever finds the
claim abandoned (the supervisor when the worker exits, a reaper when the lease expires,
a supervisor starting after a rig crash) kills the group, removes the task's temp output
file and the record, and only then hands the task back. ``TaskGroups`` is the only writer.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.atomic import atomic_write_bytes
from engine.model import is_safe_task_id
from engine.paths import RigPaths
from engine.proctable import HostProcessTable, ProcessTable
from engine.queue.names import SEP, is_safe_instance, is_safe_worker_id

RECORD_LIMIT = 4096
OUT_PREFIX = "galaxy-"
OUT_SUFFIX = ".out"


@dataclass(frozen=True)
class TaskGroupRecord:
    task_id: str
    worker_id: str
    instance: str  # the worker process that claimed and started it (engine.proctable)
    pgid: int
    leader_start: int | None  # the group leader's start ticks: a reused pid is not our group
    out_path: str | None = None  # the task's temp output file, removed with the group

    @property
    def file_name(self) -> str:
        return SEP.join((self.task_id, self.worker_id, self.instance)) + ".json"


@dataclass(frozen=True)
class KillReport:
    groups: int = 0  # records whose group was signalled
    survivors: tuple[int, ...] = ()  # pids still alive after the wait (should never happen)


def _parse(raw: bytes) -> TaskGroupRecord | None:
    try:
        d = json.loads(raw.decode("utf-8"))
        rec = TaskGroupRecord(task_id=str(d["task_id"]), worker_id=str(d["worker_id"]), instance=str(d["instance"]),
                              pgid=int(d["pgid"]),
                              leader_start=None if d.get("leader_start") is None else int(d["leader_start"]),
                              out_path=None if d.get("out_path") is None else str(d["out_path"]))
    except (ValueError, KeyError, TypeError, RecursionError, AttributeError):
        return None
    if rec.pgid <= 1 or not is_safe_task_id(rec.task_id) or not is_safe_worker_id(rec.worker_id) \
            or not is_safe_instance(rec.instance):
        return None
    return rec


def _is_our_temp_file(path: str) -> bool:
    """Only a task output file the shell handler made: a record cannot name any other file."""
    p = Path(path)
    return (str(p.parent) == tempfile.gettempdir() and p.name.startswith(OUT_PREFIX)
            and p.name.endswith(OUT_SUFFIX) and "/" not in p.name)


class TaskGroups:
    def __init__(self, paths: RigPaths, procs: ProcessTable | None = None) -> None:
        self.dir = paths.state / "taskgroups"
        self.procs: ProcessTable = procs if procs is not None else HostProcessTable()

    # ---------------------------------------------------------------- the worker's side
    def record(self, rec: TaskGroupRecord) -> None:
        """Durably note the group before the task's command runs (OSError: do not run it)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.dir / rec.file_name, json.dumps(asdict(rec)).encode())

    def forget(self, rec: TaskGroupRecord) -> None:
        try:
            os.unlink(self.dir / rec.file_name)
        except FileNotFoundError:
            pass

    # ---------------------------------------------------------------- whoever cleans up
    def records(self) -> list[TaskGroupRecord]:
        """Every readable record; a file that is not one of ours is removed (never re-read)."""
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if not name.endswith(".json"):
                continue
            rec = self._read(self.dir / name)
            if rec is None or rec.file_name != name:
                self._unlink(self.dir / name)
                continue
            out.append(rec)
        return out

    def _read(self, path: Path) -> TaskGroupRecord | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return _parse(os.read(fd, RECORD_LIMIT + 1)[:RECORD_LIMIT + 1])
        except OSError:
            return None
        finally:
            os.close(fd)

    @staticmethod
    def _unlink(path: Path | str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    def kill(self, rec: TaskGroupRecord) -> list[int]:
        """Kill the record's group, remove its temp output and then the record.

        Only a group of this host and boot is signalled: another host's pgid names nothing
        here (its own reapers handle it), and an earlier boot's group is long gone."""
        if self.procs.is_local(rec.instance):
            survivors = self.procs.kill_group(rec.pgid, rec.leader_start)
        elif self.procs.instance_alive(rec.instance) is False:
            survivors = []
        else:
            return []
        if rec.out_path and _is_our_temp_file(rec.out_path):
            self._unlink(rec.out_path)
        if not survivors:
            self._unlink(self.dir / rec.file_name)
        return survivors

    def kill_claim(self, task_id: str, worker_id: str, instance: str = "") -> KillReport:
        """Kill the groups of one claim (a claim without an instance: any of that worker's)."""
        return self._kill([r for r in self.records() if r.task_id == task_id and r.worker_id == worker_id
                           and (not instance or r.instance == instance)])

    def kill_dead(self, *, worker_id: str | None = None) -> KillReport:
        """Kill every recorded group whose worker process is gone (of one worker, or all)."""
        return self._kill([r for r in self.records() if (worker_id is None or r.worker_id == worker_id)
                           and self.procs.instance_alive(r.instance) is False])

    def _kill(self, recs: list[TaskGroupRecord]) -> KillReport:
        survivors: list[int] = []
        for rec in recs:
            survivors += self.kill(rec)
        return KillReport(groups=len(recs), survivors=tuple(survivors))
