"""TUI test helpers: an app fed canned snapshots, a recording sink, a clock frozen at taken_at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from textual.coordinate import Coordinate
from textual.widgets import DataTable

from engine.commands import RecordingCommandSink
from engine.snapshot import Snapshot
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource, load_snapshot_file

FIXTURES = Path(__file__).parent / "fixtures"


def canned(name: str) -> Snapshot:
    return load_snapshot_file(FIXTURES / f"{name}.json")


def make_app(name: str, *, read_only: bool = False, sink: RecordingCommandSink | None = None,
             root: Path | None = None) -> tuple[GalaxyApp, RecordingCommandSink]:
    snap = canned(name)
    sink = sink if sink is not None else RecordingCommandSink()
    app = GalaxyApp(CannedSnapshotSource([snap]), sink, read_only=read_only, clock=lambda: snap.taken_at,
                    root=root)
    return app, sink


def app_for(snap: Snapshot, *, clock_offset: float = 0.0, root: Path | None = None,
            supervisor_alive: bool | None = None, **kwargs: object) -> tuple[GalaxyApp, RecordingCommandSink]:
    """An app fed one given snapshot (a fixture changed in the test), clock at its taken_at + offset."""
    sink = RecordingCommandSink()
    app = GalaxyApp(CannedSnapshotSource([snap], supervisor_alive=supervisor_alive), sink,
                    clock=lambda: snap.taken_at + clock_offset, root=root, **kwargs)  # type: ignore[arg-type]
    return app, sink


READY_S = 30.0  # how long a test waits for the reader thread's first reading (a loaded CI machine)


async def unfocused_then_focused(pilot, table: DataTable[object], *, row: int,  # type: ignore[no-untyped-def]
                                 hover: Coordinate) -> AsyncIterator[bool]:
    """The table as drawn unfocused, then focused with its cursor on ``row`` and the mouse over
    ``hover``: each state settled, its pseudo classes set as a drawing sets them."""
    for focused in (False, True):
        if focused:
            table.focus()
            table.move_cursor(row=row)
            table._set_hover_cursor(True)
            table.hover_coordinate = hover
        await pilot.pause()
        table._pseudo_class_state = table.get_pseudo_class_state()
        yield focused


async def wait_ready(pilot) -> None:  # type: ignore[no-untyped-def]
    """Until the first snapshot is on screen (the source is polled in the app's reader thread)."""
    app = pilot.app
    for _ in range(int(READY_S / 0.01)):
        await app.workers.wait_for_complete()
        if app.snapshot is not None:  # then the GPU cards it mounted, and the layout they ask for
            await pilot.pause()
            await pilot.pause()
            return
        await pilot.pause(0.01)
    raise AssertionError("the dashboard never rendered its first snapshot")


def screen_text(app: GalaxyApp) -> str:
    """The screen as plain text, one line per row (what ``export_screenshot`` draws, minus colour):
    lets a test assert that literal text, markup characters included, is on screen."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def notes(app: GalaxyApp) -> list[str]:
    """The messages of the notifications on screen (toasts wrap, so their text is read here)."""
    return [n.message for n in app._notifications]


async def press_and_read(app: GalaxyApp, keys: list[str], size: tuple[int, int] = (80, 24)) -> tuple[str, str, str | None]:
    """(what the screen says: a dialog's question, or the screen text and the notifications; the
    screen's class name; the focused widget's id) after pressing ``keys``."""
    from galaxy_tui.screens.confirm import ConfirmScreen

    async with app.run_test(size=size) as pilot:
        await wait_ready(pilot)
        for k in keys:
            await pilot.press(k)
            await pilot.pause()
        said = app.screen.question if isinstance(app.screen, ConfirmScreen) else \
            screen_text(app) + "\n".join(notes(app))
        return said, type(app.screen).__name__, app.focused.id if app.focused else None
