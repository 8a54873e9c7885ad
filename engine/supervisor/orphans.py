"""Claims whose worker process is gone: their process groups killed, the tasks handed back.

Each claim names the process instance that made it (``ProcessingName.instance``, pid and
start time). After a rig crash (supervisor and workers killed together) the old claims
would otherwise look like running tasks of the new workers for a full lease. A starting
supervisor, and then each sweep, hands back at once the claims of its workers whose
instance no longer lives: the task's process group is killed first, then the task goes
back to the queue with no retry charged (the crash was not the task's fault). Claims with
no instance (written before instances existed) and claims of workers that are not this
supervisor's (another host on a shared root) are left to lease expiry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from engine.paths import RigPaths
from engine.proctable import HostProcessTable, ProcessTable
from engine.queue.names import ProcessingName, parse_processing_name
from engine.queue.protocol import TaskQueue
from engine.taskgroups import TaskGroups

SWEEP_EVERY_S = 1.0


def claims(paths: RigPaths, worker_id: str | None = None) -> list[ProcessingName]:
    """The claims in processing/ (of one worker, or all), read from their names alone."""
    try:
        names = os.listdir(paths.processing)
    except FileNotFoundError:
        return []
    out = [pn for pn in map(parse_processing_name, names) if pn is not None]
    return [pn for pn in out if worker_id is None or pn.worker_id == worker_id]


def gone_claims(paths: RigPaths, procs: ProcessTable | None = None) -> set[str]:
    """Task ids whose claim was made by a process known to be gone (``galaxy status`` shows
    them as waiting for a supervisor, never as running)."""
    table = procs if procs is not None else HostProcessTable()
    return {pn.task_id for pn in claims(paths) if pn.instance and table.instance_alive(pn.instance) is False}


@dataclass
class OrphanSweeper:
    paths: RigPaths
    queue: TaskQueue
    groups: TaskGroups
    worker_ids: Collection[str]
    log: Callable[..., None] = lambda *a, **k: None
    every_s: float = SWEEP_EVERY_S
    _last: float = field(default=float("-inf"), init=False)

    def dead(self, live: Collection[str]) -> list[ProcessingName]:
        """Claims of our workers made by an instance that is not ``live`` and no longer runs."""
        procs = self.groups.procs
        return [pn for pn in claims(self.paths) if pn.worker_id in self.worker_ids and pn.instance
                and pn.instance not in live and procs.instance_alive(pn.instance) is False]

    def sweep(self, now: float, live: Collection[str], *, force: bool = False) -> list[str]:
        """Kill and hand back the dead instances' claims (at most every ``every_s`` unless forced)."""
        if not force and now - self._last < self.every_s:
            return []
        self._last = now
        released = []
        for pn in self.dead(live):
            self.groups.kill_claim(pn.task_id, pn.worker_id, pn.instance)
            if not (self.paths.processing / pn.render()).exists():
                continue  # finished, reaped or cancelled meanwhile: never hand back someone else's claim
            self.queue.release(pn.task_id, pn.worker_id, now,
                               f"worker process {pn.instance} of {pn.worker_id} is gone (rig restarted)")
            released.append(pn.task_id)
        if released:
            self.log("claims of gone worker processes handed back", count=len(released), tasks=released[:20])
        dead_groups = self.groups.kill_dead()
        if dead_groups.groups:
            self.log("task process groups of gone workers killed", count=dead_groups.groups,
                     survivors=list(dead_groups.survivors))
        return released
