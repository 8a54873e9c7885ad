"""Tasks view (Pilot): the view stays where the operator put it, Home/End, filter, sort, queued
rows from a real queue, task names shown as text, and a task detail that follows the task."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from taskkit import HOSTILE, T0, busy, hostile_names, many_recent, queue_with
from textual.widgets import Static
from tuikit import canned, wait_ready

from engine.commands import RecordingCommandSink
from engine.model import TaskClass, TaskType
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.snapshot import TaskView
from engine.workerstate import WorkerStatus, write_json_dataclass
from galaxy_tui.app import GalaxyApp
from galaxy_tui.render import clip
from galaxy_tui.screens.task_detail import TaskDetailScreen
from galaxy_tui.source import CannedSnapshotSource, SnapshotReading
from galaxy_tui.widgets.tasks import TasksTable


def _app(snap, root: Path | None = None) -> GalaxyApp:  # type: ignore[no-untyped-def]
    return GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at, root=root)


async def _until(pilot, check, tries: int = 300) -> None:  # type: ignore[no-untyped-def]
    """Until ``check()`` holds (worker threads and intervals need real time, not a fixed sleep)."""
    for _ in range(tries):
        if check():
            return
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.02)
    raise AssertionError("condition never held")


def test_new_rows_do_not_move_the_view_or_the_selection() -> None:
    snap = busy(60)
    app = _app(snap)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            table.focus()
            for _ in range(30):
                await pilot.press("down")
            table.scroll_relative(y=5, animate=False, immediate=True)  # the mouse wheel, past the cursor
            await pilot.pause()
            before_y, before_key = table.scroll_y, table.selected_key
            assert before_y > 0 and before_key is not None
            # new running and recent rows arrive above and around the operator's place, some leave
            newer = replace(snap, taken_at=T0 + 5, recent=many_recent(8, first=100) + snap.recent[2:],
                            running=(TaskView("t-new-run", "new-run", "llm", "running", "w4", T0),) + snap.running)
            app.apply_reading(SnapshotReading(newer))
            await pilot.pause()
            await pilot.pause()
            assert "t-new-run" in table.row_keys and "t-done-100" in table.row_keys
            assert table.scroll_y == before_y
            assert table.selected_key == before_key

    asyncio.run(go())


def test_home_end_and_page_keys_move_the_cursor() -> None:
    app = _app(busy(60))

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            table.focus()
            await pilot.press("end")
            assert table.cursor_row == len(table.row_keys) - 1
            await pilot.press("home")
            assert table.cursor_row == 0 and table.selected_key == table.row_keys[0]
            await pilot.press("pagedown")
            assert table.cursor_row > 5
            await pilot.press("pageup")
            assert table.cursor_row == 0

    asyncio.run(go())


def test_slash_filters_by_class_state_worker_and_model() -> None:
    app = _app(busy(30))

    async def filtered(pilot, text: str) -> list[str]:  # type: ignore[no-untyped-def]
        await pilot.press("slash")
        await pilot.pause()
        inp = app.screen.query_one("#filter-input")
        inp.value = ""  # type: ignore[attr-defined]
        await pilot.press(*text, "enter")
        await pilot.pause()
        return app.query_one(TasksTable).row_keys

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            snap = app.snapshot
            assert snap is not None
            views = {t.task_id: t for t in (*snap.running, *snap.recent)}
            keys = await filtered(pilot, "script")
            assert keys and all(views[k].task_class == "script" for k in keys)
            keys = await filtered(pilot, "running")
            assert sorted(keys) == sorted(t.task_id for t in snap.running)
            keys = await filtered(pilot, "w3 done")
            assert keys and all(views[k].worker_id == "w3" and views[k].status == "done" for k in keys)
            keys = await filtered(pilot, "qwen2.5")
            assert keys and "t-done-003" in keys and "t-done-001" not in keys
            assert "/qwen2.5" in str(table.border_title)
            await filtered(pilot, "")
            assert sorted(table.row_keys) == sorted(views)

    asyncio.run(go())


def test_sort_by_key_and_by_header_click() -> None:
    app = _app(busy(30))

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            table.focus()
            await pilot.press("o", "o")  # state, then task name
            snap = app.snapshot
            assert snap is not None
            names = {t.task_id: t.name for t in (*snap.running, *snap.recent)}
            assert table.sort_column == "name"
            assert [names[k] for k in table.row_keys] == sorted(names[k].lower() for k in table.row_keys)
            await pilot.press("O")
            assert [names[k] for k in table.row_keys] == sorted((names[k] for k in table.row_keys), reverse=True)
            # a click on the "time" header sorts by duration
            x = 1 + sum(c.get_render_width(table) for c in table.ordered_columns[:4]) + 1
            await pilot.click(TasksTable, offset=(x, 1))
            await pilot.pause()
            assert table.sort_column == "dur" and not table.sort_reverse
            durs = [table._entries[k].sort["dur"] for k in table.row_keys]  # the values it sorted by
            assert durs == sorted(durs)

    asyncio.run(go())


def test_task_names_are_shown_as_text_never_markup() -> None:
    snap = hostile_names(busy(5))
    app = _app(snap)

    async def go() -> str:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            for i, name in enumerate(HOSTILE):
                cell = table.row_cells(f"b.hostile-{i}")[1]
                assert isinstance(cell, Text) and cell.plain == clip(name, table.name_w).rstrip()
                assert not cell.spans  # nothing was parsed into styles
            return app.export_screenshot()

    svg = asyncio.run(go())
    assert "job[intro]" in svg and "boom[a]" in svg and "[bold]loud[" in svg


def test_queued_tasks_are_listed_a_page_at_a_time(tmp_path: Path) -> None:
    ids = queue_with(tmp_path, 250)
    app = _app(busy(3), root=tmp_path)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            await _until(pilot, lambda: table.queued_page_data is not None)
            queued = [k for k in table.row_keys if k.startswith("b.q")]
            assert queued == ids[:100]  # claim order: same priority, oldest first
            assert "queued 1-100 of 250" in str(table.border_title)
            table.focus()
            await pilot.press("right_square_bracket")
            await _until(pilot, lambda: table.queued_page_data is not None and table.queued_page_data.offset == 100)
            assert [k for k in table.row_keys if k.startswith("b.q")] == ids[100:200]
            table.set_filter("llama")  # the queue filters by the names' model too
            await _until(pilot, lambda: table.queued_page_data is not None and table.queued_page_data.matched == 50)
            assert [k for k in table.row_keys if k.startswith("b.q")] == ids[::5]
            view = table.selected_view() if table.selected_key in ids else None
            assert view is None or view.status == "queued"

    asyncio.run(go())


def test_task_detail_follows_the_snapshot() -> None:
    snap = busy(3)
    app = _app(snap)

    async def go() -> tuple[str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            running = snap.running[0]
            app.push_screen(TaskDetailScreen(running, None))
            await pilot.pause()
            summary = app.screen.query_one("#detail-summary", Static)
            await _until(pilot, lambda: "Q3 revenue" in str(summary.render()))
            before = str(summary.render())
            done = replace(running, status="done", ended_at=T0 + 4, duration_s=87.0)
            app.apply_reading(SnapshotReading(replace(snap, taken_at=T0 + 5, running=snap.running[1:],
                                                      recent=(done,) + snap.recent,
                                                      workers=tuple(replace(w, current_task=None, progress=None)
                                                                    for w in snap.workers))))
            await _until(pilot, lambda: "done" in str(summary.render()))
            return before, str(summary.render())

    before, after = asyncio.run(go())
    assert "running" in before and "output tail (live)" in before
    assert "done" in after and "1m27" in after and "live" not in after


def test_task_detail_streams_output_from_the_queue_then_shows_the_result(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path)
    q = FileQueue(paths, use_inotify=False)
    from engine.model import Task

    q.submit([Task(task_id="b.job-intro", name="job[intro]", type=TaskType.LLM, task_class=TaskClass.LLM,
                   model="qwen2.5:3b", params={"prompt": "intro please"})], now=T0)
    claimed = q.claim("w0", T0 + 1, make_claim_policy(WorkerProfile("w0")), 600.0)
    assert claimed is not None
    paths.workers.mkdir(parents=True, exist_ok=True)

    def status(progress: str) -> None:
        write_json_dataclass(paths.worker_status("w0"), WorkerStatus(
            worker_id="w0", pid=1, gpus=(0,), state="busy", heartbeat_at=T0 + 2, current_task="b.job-intro",
            task_name="job[intro]", task_class="llm", task_started_at=T0 + 1, progress=progress, tokens_per_s=40.0))

    status("Welcome to")
    view = TaskView(task_id="b.job-intro", name="job[intro]", task_class="llm", status="running", worker_id="w0")
    app = _app(busy(3), root=tmp_path)

    async def go() -> list[str]:
        seen = []
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            app.push_screen(TaskDetailScreen(view, tmp_path))
            await pilot.pause()
            body = app.screen.query_one("#detail-file", Static)
            summary = app.screen.query_one("#detail-summary", Static)
            await _until(pilot, lambda: "Welcome to" in str(body.render()))
            seen.append(str(summary.render()) + str(body.render()))
            status("Welcome to the intro, part two")
            await _until(pilot, lambda: "part two" in str(body.render()))
            q.complete("b.job-intro", "w0", {"text": "Welcome to the intro, all of it.", "tokens_per_s": 41.0}, T0 + 9)
            await _until(pilot, lambda: "all of it" in str(body.render()))
            seen.append(str(summary.render()) + str(body.render()))
        return seen

    running, finished = asyncio.run(go())
    q.close()
    assert "running (live)" in running and "job[intro]" in running and "output tail (live, streaming)" in running
    assert "complete" in finished and "(live" not in finished and "#1 w0" in finished and "ok" in finished


def test_when_the_selected_row_leaves_the_cursor_stays_at_its_place() -> None:
    snap = busy(20)
    app = _app(snap)

    async def go() -> tuple[int, int, str | None]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            table.focus()
            await pilot.press(*["down"] * 6)
            row, key = table.cursor_row, table.selected_key
            gone = replace(snap, taken_at=T0 + 5, recent=tuple(t for t in snap.recent if t.task_id != key))
            app.apply_reading(SnapshotReading(gone))
            await pilot.pause()
            return row, table.cursor_row, table.selected_key

    before, after, key = asyncio.run(go())
    assert after == before and key is not None


def test_reason_column_fits_the_panel_without_sideways_scrolling() -> None:
    snap = canned("failed")
    app = _app(snap)

    async def go() -> tuple[int, int, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.pause()
            table = app.query_one(TasksTable)
            reason = str(table.row_cells(snap.failed[0].task_id)[6])
            return table.max_scroll_x, table.detail_w, reason

    max_x, detail_w, reason = asyncio.run(go())
    assert max_x == 0 and detail_w >= 8
    assert reason.endswith("…") and len(reason) == detail_w


def test_rows_coming_and_going_keep_the_tables_size() -> None:
    """A busy table must not change its virtual size per snapshot (each change is a layout pass)."""
    snap = busy(20)
    app = _app(snap)

    async def go() -> list[tuple[object, int]]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            await pilot.pause()
            sizes = [(table.virtual_size, len(table.row_keys))]
            for i in range(1, 6):  # tasks finish and start: the list goes 22, 21, 23, ... rows long
                newer = replace(snap, taken_at=T0 + i, running=snap.running[: 1 + i % 3],
                                recent=many_recent(20 - i % 2, first=10 * i) + canned("busy5").recent)
                app.apply_reading(SnapshotReading(newer))
                await pilot.pause()
                sizes.append((table.virtual_size, len(table.row_keys)))
            return sizes

    sizes = asyncio.run(go())
    assert len({n for _, n in sizes}) > 1  # the number of tasks did change
    assert len({size for size, _ in sizes[1:]}) == 1  # the table's size did not
