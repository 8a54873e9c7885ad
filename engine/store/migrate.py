"""Moving a rig's tasks from one store to another (``galaxy store migrate``): file root -> Redis and back.

Only the declared protocols are used (engine/queue/protocol.py: ``TaskLister.ids_in`` to list, ``get``
to read, ``TaskLister.restore`` to write), so any pair of stores works. What moves: waiting (queue),
held and delayed tasks, and failed ones, with their ids, priorities, retry counts, attempts, errors
and dependencies. Completed tasks stay where they are, except the completed parents of moved tasks,
which are COPIED (their result too, not their own dependency list) so dependencies resolve in the
target.

The target takes everything in one ``restore`` (all or nothing): each task lands where its record
says (engine/queue/restoring.py): a failed one failed with its error (``galaxy retry`` runs it
again), a copied parent complete with its result, a delayed one delayed until the rest of its
backoff, a held one held until its parents complete there. Only then, unless ``keep_source``, each
moved task is removed from the source: cancelled ("moved to <target>") if it was waiting, then
forgotten (``TaskLister.forget_failed``), so its id is free there.

Refused before anything is written: a claim in the source (a worker runs), a live supervisor on
it (the caller says), a task awaiting an operator's approval (its escalation does not move), an id
the target already knows (other than a completed parent that is complete there too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.model import Task, TaskStatus
from engine.queue.protocol import Place, RigQueue

MOVED = (Place.QUEUE, Place.HELD, Place.DELAYED, Place.FAILED)
WAITING = (Place.QUEUE, Place.HELD, Place.DELAYED)


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


def write(m: Migration, target: RigQueue, now: float) -> list[str]:
    """Put ``m`` into the target in one ``restore``; the ids written (none when it raises)."""
    parents = [p.with_changes(depends_on=()) for p in m.parents]  # complete: what they waited on is history
    return target.restore([*parents, *m.moved()], now)


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
