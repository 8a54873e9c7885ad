"""The task detail of a running shell task (Pilot): its output tail, as the worker publishes it
while the command runs (engine.handlers.shell), streams on the screen as plain text: markup
stays literal and terminal escapes never reach the terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

from taskkit import T0, busy
from textual.widgets import Static
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from engine.model import Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from engine.snapshot import TaskView
from engine.workerstate import WorkerStatus, write_json_dataclass
from galaxy_tui.app import GalaxyApp
from galaxy_tui.screens.task_detail import TaskDetailScreen
from galaxy_tui.source import CannedSnapshotSource


async def _until(pilot, check, tries: int = 300) -> None:  # type: ignore[no-untyped-def]
    for _ in range(tries):
        if check():
            return
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.02)
    raise AssertionError("condition never held")


def test_a_running_shell_tasks_tail_streams_as_plain_text(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path)
    q = FileQueue(paths, use_inotify=False)
    q.submit([Task(task_id="b.build", name="build[all]", type=TaskType.SHELL, task_class=TaskClass.CPU,
                   command="make all")], now=T0)
    assert q.claim("w0", T0 + 1, make_claim_policy(WorkerProfile("w0")), 600.0) is not None
    paths.workers.mkdir(parents=True, exist_ok=True)

    def status(progress: str) -> None:
        write_json_dataclass(paths.worker_status("w0"), WorkerStatus(
            worker_id="w0", pid=1, gpus=(), state="busy", heartbeat_at=T0 + 2, current_task="b.build",
            task_name="build[all]", task_class="cpu", task_started_at=T0 + 1, progress=progress))

    status("\x1b[1;32mcompiling\x1b[0m [bold]a.c[/]\n")
    snap = busy(3)
    app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at, root=tmp_path)
    view = TaskView(task_id="b.build", name="build[all]", task_class="cpu", status="running", worker_id="w0")

    async def go() -> tuple[str, str]:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_ready(pilot)
            app.push_screen(TaskDetailScreen(view, tmp_path))
            await pilot.pause()
            body = app.screen.query_one("#detail-file", Static)
            await _until(pilot, lambda: "compiling" in str(body.render()))
            first = str(body.render())
            status("\x1b[1;32mcompiling\x1b[0m [bold]a.c[/]\nlinking galaxy\n")
            await _until(pilot, lambda: "linking galaxy" in str(body.render()))
            return first, str(body.render())

    first, later = asyncio.run(go())
    q.close()
    assert "output tail (live, streaming)" in first and "compiling [bold]a.c[/]" in first
    assert "linking" not in first and "compiling [bold]a.c[/]\nlinking galaxy" in later
    assert "\x1b" not in first + later
