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

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from engine.proctable import HostProcessTable, ProcessTable
from engine.queue.protocol import ClaimView, TaskQueue
from engine.taskgroups import TaskGroups

SWEEP_EVERY_S = 1.0


def gone_claims(queue: TaskQueue, procs: ProcessTable | None = None) -> set[str]:
    """Task ids whose claim was made by a process known to be gone (``galaxy status`` shows
    them as waiting for a supervisor, never as running)."""
    table = procs if procs is not None else HostProcessTable()
    return {c.task_id for c in queue.claims() if c.instance and table.instance_alive(c.instance) is False}


@dataclass
class OrphanSweeper:
    queue: TaskQueue
    groups: TaskGroups
    worker_ids: Collection[str]
    log: Callable[..., None] = lambda *a, **k: None
    every_s: float = SWEEP_EVERY_S
    _last: float = field(default=float("-inf"), init=False)

    def dead(self, live: Collection[str]) -> list[ClaimView]:
        """Claims of our workers made by an instance that is not ``live`` and no longer runs."""
        procs = self.groups.procs
        return [c for c in self.queue.claims() if c.worker_id in self.worker_ids and c.instance
                and c.instance not in live and procs.instance_alive(c.instance) is False]

    def sweep(self, now: float, live: Collection[str], *, force: bool = False) -> list[str]:
        """Kill and hand back the dead instances' claims (at most every ``every_s`` unless forced)."""
        if not force and now - self._last < self.every_s:
            return []
        self._last = now
        released = []
        for c in self.dead(live):
            self.groups.kill_claim(c.task_id, c.worker_id, c.instance)
            now_held = self.queue.claim_of(c.task_id)
            if now_held is None or (now_held.worker_id, now_held.instance) != (c.worker_id, c.instance):
                continue  # finished, reaped or cancelled meanwhile: never hand back someone else's claim
            self.queue.release(c.task_id, c.worker_id, now,
                               f"worker process {c.instance} of {c.worker_id} is gone (rig restarted)")
            released.append(c.task_id)
        if released:
            self.log("claims of gone worker processes handed back", count=len(released), tasks=released[:20])
        dead_groups = self.groups.kill_dead()
        if dead_groups.groups:
            self.log("task process groups of gone workers killed", count=dead_groups.groups,
                     survivors=list(dead_groups.survivors))
        return released
