"""Forgetting a failed task for good (``TaskLister.forget_failed``): ``galaxy store migrate`` moved it.

One intent (engine.queue.journal) unlinks failed/<id>.json and writes the ledger's ``U`` line, so
the failed count drops exactly once across a crash; cascade markers it left as a root go too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.model import TaskStatus
from engine.queue.journal import Intent
from engine.queue.ledger import UNFAILED
from engine.queue.ledger import render as ledger_line
from engine.queue.protocol import DONE, Refusal, Verdict

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue


def forget_failed(fq: FileQueue, task_id: str, now: float) -> Verdict:
    bad = fq.deps.id_refusal(task_id)
    if bad is not None:
        return bad
    with fq.deps_lock():
        task = fq.get(task_id)
        if task is None or task.status is not TaskStatus.FAILED:
            where = fq.where(task_id)
            return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not failed (state "
                                   f"{where.value if where else 'unknown'}): only a failed task can be forgotten")
        j = fq.journal
        intent = Intent("forget", task_id, now, ledger=[ledger_line(now, UNFAILED, task.task_class.value, task_id)],
                        unlink=[j.rel(fq.paths.failed / f"{task_id}.json")])
        with j.begin(intent) as h:
            h.finish()
        fq.deps.drop_cascade_markers(task_id)
    return DONE
