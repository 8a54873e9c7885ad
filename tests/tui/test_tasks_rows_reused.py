"""The Tasks view rebuilds a row only when what it shows can change: a busy rig's failed and
recent rows are the same from one snapshot to the next, a running row's time counts up."""

from __future__ import annotations

from dataclasses import replace

from taskkit import T0, busy

from engine.queue.listing import QueuedRow
from engine.snapshot import TaskView
from galaxy_tui.widgets.tasks import EntryKey, TaskEntry, fmt_wait, live_entries, queued_entry

RUNNING = TaskView(task_id="t-run", name="run", task_class="cpu", status="running", worker_id="w1",
                   started_at=T0 - 5)


def test_unchanged_rows_are_reused_and_a_running_row_follows_the_clock() -> None:
    snap = busy(10, running=(RUNNING,), taken_at=T0)
    memo: dict[EntryKey, TaskEntry] = {}
    first = {e.key: e for e in live_entries(snap, memo)}
    later = replace(snap, taken_at=T0 + 1)
    second = {e.key: e for e in live_entries(later, memo)}
    plain = {e.key: e for e in live_entries(later)}
    assert second == plain  # the same rows as without reuse
    assert second["t-done-003"] is first["t-done-003"]
    assert second["t-run"] is not first["t-run"] and second["t-run"].cells[4] != first["t-run"].cells[4]
    assert len(memo) == len(plain)  # it holds this snapshot's rows only


def test_a_changed_task_gets_a_new_row() -> None:
    snap = busy(3, taken_at=T0)
    memo: dict[EntryKey, TaskEntry] = {}
    before = {e.key: e for e in live_entries(snap, memo)}
    retried = tuple(replace(t, retry_count=2) if t.task_id == "t-done-001" else t for t in snap.recent)
    after = {e.key: e for e in live_entries(replace(snap, recent=retried), memo)}
    assert after["t-done-001"] is not before["t-done-001"] and "try 3" in str(after["t-done-001"].cells[6])


def test_queued_rows_reuse_their_row_but_show_the_wait_at_each_snapshot() -> None:
    row = QueuedRow(task_id="q1", task_class="cpu", model=None, priority=0, enqueued_at=T0 - 10, position=0)
    memo: dict[QueuedRow, TaskEntry] = {}
    a = queued_entry(row, T0, memo)
    b = queued_entry(row, T0 + 5, memo)
    assert (a.cells[4], b.cells[4]) == (fmt_wait(10.0), fmt_wait(15.0)) and a.cells[4] != b.cells[4]
    assert b == queued_entry(row, T0 + 5) and a.cells[6] is b.cells[6]
