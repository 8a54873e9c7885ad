"""Events view (Pilot): each line names its task and worker on one line, claims/starts hidden
until `f`, the panel takes focus and scrolls, `l` shows it full-screen, toasts stay off it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from taskkit import EVENTS, T0, busy, with_events
from textual.widgets._toast import Toast
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from engine.snapshot import EventView
from galaxy_tui.app import GalaxyApp
from galaxy_tui.screens.events import EventsScreen
from galaxy_tui.source import CannedSnapshotSource
from galaxy_tui.widgets.events import EventsPanel, event_message, fold


def _app(snap) -> GalaxyApp:  # type: ignore[no-untyped-def]
    return GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at)


def test_fold_keeps_first_and_last_line() -> None:
    assert fold("exit code 1: Traceback\n  File x\n\nValueError: bad") == "exit code 1: Traceback … ValueError: bad"
    assert fold("one   line") == "one line" and fold("\n\n") == ""
    quiet = EventView(at=0, event_type="task_started", message="t-a on w1", task_id="t-a", worker_id="w1")
    assert event_message(quiet) == ""  # the supervisor's "task on worker" would only repeat the columns


def test_every_line_names_task_and_worker_on_one_line() -> None:
    app = _app(with_events(busy(3)))

    async def go() -> tuple[list[str], list[str], str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            panel = app.query_one(EventsPanel)
            quiet = panel.content.plain.split("\n")
            panel.focus()
            await pilot.press("f")
            every = panel.content.plain.split("\n")
            return quiet, every, str(panel.border_title)

    quiet, every, title = asyncio.run(go())
    assert len(quiet) == 3 and len(every) == 5  # claimed and started hidden, then shown
    assert not any("task_claimed" in line or "task_started" in line for line in quiet)
    for line, e in zip(every, sorted(EVENTS, key=lambda e: e.at, reverse=True)):
        assert (e.task_id or "-") in line and f"@{e.worker_id}" in line and e.event_type in line
    failed = next(line for line in every if "task_failed" in line)
    assert "duration_ms=1200" in failed and "… ValueError: [bold]bad input[/]" in failed
    assert "all" in title


def test_events_panel_takes_focus_scrolls_and_goes_full_screen() -> None:
    many = tuple(EventView(at=T0 - i, event_type="task_done", message=f"duration_ms={i}", task_id=f"t-{i}",
                           worker_id=f"w{i % 5}") for i in range(30))
    app = _app(replace(busy(3), events=many))

    async def go() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            panel = app.query_one(EventsPanel)
            for _ in range(8):  # tab reaches it like any panel
                if app.focused is panel:
                    break
                await pilot.press("tab")
            assert app.focused is panel
            await pilot.press("down", "down", "down")
            assert panel.scroll_y == 3
            await pilot.press("end")
            assert panel.scroll_y == panel.max_scroll_y > 3
            await pilot.press("l")
            await pilot.pause()
            assert isinstance(app.screen, EventsScreen)
            full = app.screen.query_one(EventsPanel)
            await pilot.pause()
            lines = full.content.plain.split("\n")
            assert len(lines) == 30 and lines[0].split()[2] == "t-0"
            assert full.size.height > 15
            await pilot.press("escape")
            assert not isinstance(app.screen, EventsScreen)

    asyncio.run(go())


async def _toasts_clear_of_events(size: tuple[int, int]) -> None:
    app = _app(with_events(busy(3)))
    async with app.run_test(size=size, notifications=True) as pilot:
        await wait_ready(pilot)
        app.notify("sent pause w1")
        app.notify("could not send drain w2: disk full", severity="error")
        toasts: list[Toast] = []
        for _ in range(100):  # the toasts mount on a later message
            toasts = list(app.screen.query(Toast))
            if len(toasts) == 2:
                break
            await pilot.pause(0.02)
        events = app.query_one(EventsPanel).region
        assert len(toasts) == 2
        assert all(not t.region.overlaps(events) for t in toasts), size


def test_notifications_do_not_cover_the_events_panel() -> None:
    for size in ((80, 24), (120, 40)):
        asyncio.run(_toasts_clear_of_events(size))


def test_full_screen_reads_more_of_the_log_than_the_snapshot_carries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.events import EventLog
    from engine.paths import RigPaths

    log = EventLog(RigPaths(tmp_path).ensure().events)
    for i in range(60):
        log.emit("task_completed", at=T0 - 100 + i, task_id=f"b.t{i:02d}", worker_id=f"w{i % 3}",
                 duration_ms=1000.0 + i)
    snap = with_events(busy(3))
    app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at, root=tmp_path)

    async def go() -> list[str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.press("l")
            lines = app.screen.query_one(EventsPanel)
            for _ in range(300):
                if "b.t59" in lines.content.plain:
                    break
                await app.workers.wait_for_complete()
                await pilot.pause(0.02)
            return lines.content.plain.split("\n")

    lines = asyncio.run(go())
    assert len(lines) == 60 and "b.t59 @w2 duration_ms=1059.0" in lines[0] and "b.t00 @w0" in lines[-1]
