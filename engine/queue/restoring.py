"""Where a task moved from another store lands (``TaskLister.restore``), and what makes a batch
unacceptable: one rule for every store, so a migration means the same thing in both directions.

A failed task arrives failed (its error and attempts kept), a complete one complete (its result
kept), a waiting one whose backoff runs past ``now`` delayed until its ``not_before``, any other
waiting one queued, or held when it has dependencies (judged by the store as at submit: released
at once when they are all complete). A running task or one awaiting approval is not restored: its
claim or escalation lives in the store it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.model import Task, TaskStatus, is_safe_task_id
from engine.queue.protocol import Place

NOT_RESTORED = (TaskStatus.PROCESSING, TaskStatus.AWAITING_APPROVAL)


def restore_place(task: Task, now: float) -> Place:
    """Where ``task`` lands (HELD: judged on its dependencies by the store)."""
    if task.status is TaskStatus.FAILED:
        return Place.FAILED
    if task.status is TaskStatus.COMPLETE:
        return Place.COMPLETE
    if task.not_before is not None and task.not_before > now:
        return Place.DELAYED
    return Place.HELD if task.depends_on else Place.QUEUE


def batch_problems(tasks: Sequence[Task], known: Callable[[str], str | None]) -> list[str]:
    """Why the store must refuse this batch (nothing is written then); ``known(id)`` is the id's
    state in the store, None when the store does not know it."""
    ids = [t.task_id for t in tasks]
    batch = set(ids)
    problems: list[str] = []
    if len(batch) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        problems.append(f"duplicate task id(s) in this batch: {', '.join(dupes)}")
    for t in tasks:
        if not is_safe_task_id(t.task_id):
            problems.append(f"task id {t.task_id!r} is not valid")
            continue
        if t.status in NOT_RESTORED:
            problems.append(f"task {t.task_id}: a {t.status.value} task is not restored (its claim or "
                            "escalation stays in the store it came from)")
        where = known(t.task_id)
        if where is not None:
            problems.append(f"task {t.task_id}: id already exists ({where})")
        for dep in t.depends_on:
            if dep == t.task_id:
                problems.append(f"task {t.task_id}: depends on itself")
            elif dep not in batch and known(dep) is None:
                problems.append(f"task {t.task_id}: unknown dependency {dep!r}")
    return problems
