"""Moving a rig's tasks from one store to another (``galaxy store migrate``): file root -> Redis and back.

Only the declared protocols are used (engine/queue/protocol.py: ``TaskLister.ids_in`` to list, ``get``
to read, ``submit``/``cancel``/``resolve_failed`` to write), so any pair of stores works. What moves:
waiting (queue), held and delayed tasks, and failed ones, with their ids, priorities, retry counts,
attempts and dependencies. Completed tasks stay where they are, except the completed parents of moved
tasks, which are COPIED (their result too) so dependencies resolve in the target.

How the target is written, since a store takes new tasks only through ``submit``:
1. When failed tasks or completed parents must be carried: one submit of a placeholder task
   (``migrate-<hex>``, pinned to the rig ``galaxy-migrate`` that no worker serves) with those tasks held
   on it, so none of them is ever claimable; each failed one is then cancelled with its old error
   ("cancelled: <error>"), each parent cancelled and resolved with its result (complete, recorded
   once), and the placeholder cancelled and resolved (it stays in the target as one complete task).
2. One submit (all-or-nothing) of the queue, held and delayed tasks with their own dependencies:
   held ones stay held until their parents complete. Delayed tasks arrive claimable (the rest of
   their backoff is not carried; their retry count is).
Only then, unless ``keep_source``, each moved task is removed from the source: cancelled ("moved to
<target>") if it was waiting, then forgotten (``TaskLister.forget_failed``), so its id is free there.

Refused before anything is written: a claim in the source (a worker runs), a live supervisor on
it (the caller says), a task awaiting an operator's approval (its escalation does not move), an id
the target already knows (other than a completed parent that is complete there too).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.model import Task, TaskClass, TaskStatus
from engine.queue.protocol import Place, RigQueue, Verdict

MOVED = (Place.QUEUE, Place.HELD, Place.DELAYED, Place.FAILED)
WAITING = (Place.QUEUE, Place.HELD, Place.DELAYED)
PLACEHOLDER_RIG = "galaxy-migrate"


class MigrationRefused(RuntimeError):
    """Nothing was written: the message says why and what to do."""


@dataclass
class Migration:
    """What moves, read from the source before anything is written."""

    tasks: dict[Place, list[Task]] = field(default_factory=dict)
    parents: list[Task] = field(default_factory=list)  # completed parents, copied
    parents_known: list[str] = field(default_factory=list)  # completed parents the target has already

    def moved(self) -> list[Task]:
        return [t for place in MOVED for t in self.tasks.get(place, [])]

    def summary(self) -> dict[str, int]:
        out = {place.value: len(self.tasks.get(place, [])) for place in MOVED}
        out["complete_parents_copied"] = len(self.parents)
        return out


def plan(source: RigQueue, target: RigQueue, live_supervisors: Sequence[str] = ()) -> Migration:
    """Read everything that moves; raise ``MigrationRefused`` when the source is in use or the
    target cannot take it."""
    if live_supervisors:
        raise MigrationRefused(f"a supervisor runs on the source ({', '.join(live_supervisors)}): stop it first "
                               "(`galaxy down`), then migrate")
    claims = source.claims()
    if claims:
        named = ", ".join(f"{c.task_id} (worker {c.worker_id})" for c in sorted(claims, key=lambda c: c.task_id))
        raise MigrationRefused(f"{len(claims)} task(s) are running on the source: {named}; stop the workers "
                               "(`galaxy down`) and let their leases end or the tasks finish, then migrate")
    awaiting = source.ids_in(Place.AWAITING)
    if awaiting:
        raise MigrationRefused(f"{len(awaiting)} task(s) await an operator's approval of their escalation: "
                               f"{', '.join(sorted(awaiting))}; approve or deny them first (escalations do not move)")
    m = Migration()
    for place in MOVED:
        tasks = [source.get(i) for i in sorted(source.ids_in(place))]
        m.tasks[place] = [t for t in tasks if t is not None]  # one that left meanwhile has no claim: gone for good
    moving = {t.task_id for t in m.moved()}
    for dep in sorted({d for t in m.moved() for d in t.depends_on} - moving):
        parent = source.get(dep)
        if parent is None or parent.status is not TaskStatus.COMPLETE:
            where = source.where(dep)
            raise MigrationRefused(f"dependency {dep} is {where.value if where else 'unknown'} in the source, "
                                   "not complete: it cannot be carried")
        there = target.get(dep)
        if there is None:
            m.parents.append(parent)
        elif there.status is TaskStatus.COMPLETE:
            m.parents_known.append(dep)
        else:
            raise MigrationRefused(f"dependency {dep} is complete in the source but {there.status.value} in the target")
    known = sorted(i for i in moving | {p.task_id for p in m.parents} if target.where(i) is not None)
    if known:
        raise MigrationRefused(f"the target already has {len(known)} of these task id(s): {', '.join(known[:20])}"
                               + (" ..." if len(known) > 20 else ""))
    return m


def write(m: Migration, target: RigQueue, now: float) -> str | None:
    """Put ``m`` into the target (steps 1 and 2 above); the placeholder's id, None when none was needed."""
    failed, parents = m.tasks.get(Place.FAILED, []), m.parents
    placeholder: str | None = None
    if failed or parents:
        placeholder = f"migrate-{uuid.uuid4().hex[:12]}"
        hold = Task(task_id=placeholder, name="galaxy store migrate (placeholder)", command="true",
                    task_class=TaskClass.CPU, rig=PLACEHOLDER_RIG)
        target.submit([hold, *(t.with_changes(depends_on=(placeholder,)) for t in [*failed, *parents])], now)
        for t in failed:
            _done(target.cancel(t.task_id, now, t.error or "failed"), t.task_id)
        for p in parents:
            _done(target.cancel(p.task_id, now, "completed parent being copied"), p.task_id)
            _done(target.resolve_failed(p.task_id, dict(p.result or {}), now, note="migrated"), p.task_id)
        _done(target.cancel(placeholder, now, "placeholder of galaxy store migrate"), placeholder)
        _done(target.resolve_failed(placeholder, {"migration": True}, now, note="migrated"), placeholder)
    waiting = [t for place in (Place.QUEUE, Place.HELD, Place.DELAYED) for t in m.tasks.get(place, [])]
    if waiting:
        target.submit([t.with_changes(not_before=None) for t in waiting], now)
    return placeholder


def _done(verdict: Verdict, task_id: str) -> None:
    if not verdict:
        raise RuntimeError(f"the target refused a step for {task_id}: {verdict.message}")


def check(m: Migration, target: RigQueue) -> list[str]:
    """Every moved task and copied parent in the target (failed ones failed, parents complete; a
    waiting one may already run there); the problems, if any."""
    problems = []
    for place in MOVED:
        for t in m.tasks.get(place, []):
            there = target.where(t.task_id)
            if there is None or (place is Place.FAILED and there is not Place.FAILED):
                problems.append(f"{t.task_id} is {there.value if there else 'missing'} in the target")
    problems += [f"{p.task_id} is not complete in the target" for p in m.parents
                 if target.where(p.task_id) is not Place.COMPLETE]
    return problems


def retire(m: Migration, source: RigQueue, now: float, target_name: str) -> list[str]:
    """Remove every moved task from the source: a waiting one is cancelled first ("moved to
    <target>", so it leaves the waiting work at once), then each is forgotten (``forget_failed``).
    The ids removed; one that changed state meanwhile stays (and is not returned)."""
    out = []
    for place in (Place.HELD, Place.DELAYED, Place.QUEUE):  # dependents first: no cascade noise
        for t in m.tasks.get(place, []):
            if source.where(t.task_id) in WAITING:  # a worker that claimed it since keeps it (and is reported)
                source.cancel(t.task_id, now, f"moved to {target_name} by galaxy store migrate")
    for t in m.moved():
        if source.forget_failed(t.task_id, now):
            out.append(t.task_id)
    return out


def left_behind(m: Migration, removed: Sequence[str]) -> list[str]:
    """Moved tasks still in the source after ``retire``: claimed there meanwhile (now in both stores)."""
    gone = set(removed)
    return [t.task_id for t in m.moved() if t.task_id not in gone]
