"""``FileQueue.restore``: tasks moved from another store, each written where its record says
(engine/queue/restoring.py), all or none, through the same staged batch and intent record as
submit (engine/queue/submit.py): complete/ and failed/ records with their ledger lines, delayed/
names carrying the due time, held tasks settled after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.event_types import EventType
from engine.model import Task, TaskStatus, TaskValidationError
from engine.queue.ledger import COMPLETE, FAILED
from engine.queue.ledger import render as ledger_line
from engine.queue.names import DelayedName, QueueName, model_fits_name, us
from engine.queue.protocol import Place
from engine.queue.restoring import batch_problems, restore_place
from engine.queue.submit import StagedBatch

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue

_ORDER = {Place.COMPLETE: 0, Place.FAILED: 1, Place.HELD: 2, Place.DELAYED: 3, Place.QUEUE: 4}
"""Finished ones first (a held one is settled on the parents restored with it), claimable ones last."""


def restore_batch(fq: FileQueue, tasks: Sequence[Task], now: float) -> list[str]:
    active = fq.inspector.active_ids()
    problems = batch_problems(tasks, lambda task_id: fq.inspector.where_is(task_id, active))
    problems += [f"task {t.task_id}: model name is too long" for t in tasks if not model_fits_name(t.model)]
    if problems:
        raise TaskValidationError("; ".join(problems))
    if not tasks:
        return []
    places = {t.task_id: restore_place(t, now) for t in tasks}
    done = frozenset(i for i, p in places.items() if p is Place.COMPLETE)
    batch = StagedBatch(fq, now)
    with batch.staging():
        for t in sorted(tasks, key=lambda t: _ORDER[places[t.task_id]]):
            place = places[t.task_id]
            _stage(fq, batch, t.with_changes(lease_owner=None, lease_expires=None), place, done, now)
            batch.events.append(fq.events.render(EventType.TASK_MIGRATED, at=now, task_id=t.task_id,
                                                 task_class=t.task_class.value, model=t.model, place=place.value))
    batch.commit("restore", tasks[0].task_id)
    return [t.task_id for t in tasks]


def _stage(fq: FileQueue, batch: StagedBatch, t: Task, place: Place, done: frozenset[str], now: float) -> None:
    cls = t.task_class.value
    if place is Place.COMPLETE:
        batch.stage(t.with_changes(error=None, not_before=None), fq.paths.complete / f"{t.task_id}.json")
        batch.ledger.append(ledger_line(now, COMPLETE, cls, t.task_id))
    elif place is Place.FAILED:
        batch.stage(t.with_changes(not_before=None), fq.paths.failed / f"{t.task_id}.json")
        batch.ledger.append(ledger_line(now, FAILED, cls, t.task_id))
    elif place is Place.DELAYED:
        assert t.not_before is not None  # restore_place says DELAYED only with a due time
        batch.stage(t.with_changes(status=TaskStatus.PENDING),
                    fq.paths.delayed / DelayedName.for_task(t, us(t.not_before)).render())
    elif place is Place.HELD:
        batch.stage_held(t.with_changes(not_before=None), done)
    else:
        batch.stage(t.with_changes(status=TaskStatus.PENDING, not_before=None),
                    fq.paths.queue / QueueName.for_task(t, us(now)).render())
