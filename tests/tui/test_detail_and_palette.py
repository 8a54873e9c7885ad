"""Task detail from the real queue, commands from the palette, acks shown when they come back."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from textual.command import CommandList
from textual.widgets import Static
from tuikit import canned, wait_ready

from engine.commands import CommandKind, RecordingCommandSink
from engine.model import Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.snapshot import CommandAck, TaskView
from galaxy_tui.app import GalaxyApp
from galaxy_tui.screens.detail import TaskDetailScreen
from galaxy_tui.source import CannedSnapshotSource


def test_detail_reads_the_task_from_the_queue(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path)
    queue = FileQueue(paths, use_inotify=False)
    task = Task(task_id="t-detail-1", name="summarize-q3", type=TaskType.LLM, task_class=TaskClass.LLM,
                model="qwen2.5:7b", params={"prompt": "hi"}, priority=3, created_at=1_795_000_000.0)
    queue.submit([task], now=1_795_000_000.0)
    queue.close()
    snap = canned("busy5")
    view = TaskView(task_id="t-detail-1", name="summarize-q3", task_class="llm", status="queued")
    snap = replace(snap, recent=(view,) + snap.recent)
    app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at,
                    root=tmp_path)

    async def go() -> str:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            app.push_screen(TaskDetailScreen(view, tmp_path))
            await pilot.pause()
            for _ in range(100):
                await app.workers.wait_for_complete()
                await pilot.pause()
                text = str(app.screen.query_one("#detail-file", Static).render())
                if "loading" not in text:
                    break
            return str(app.screen.query_one("#detail-summary", Static).render()) + "\n" + text

    text = asyncio.run(go())
    assert "qwen2.5:7b" in text and "attempts" in text and "queued" in text


def test_detail_of_an_unknown_task_falls_back_to_the_snapshot(tmp_path: Path) -> None:
    snap = canned("failed")
    app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at,
                    root=tmp_path)

    async def go() -> tuple[str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.press("tab", "down", "down", "down", "enter")
            await pilot.pause()
            for _ in range(100):
                await app.workers.wait_for_complete()
                await pilot.pause()
                file_text = str(app.screen.query_one("#detail-file", Static).render())
                if "loading" not in file_text:
                    break
            return str(app.screen.query_one("#detail-summary", Static).render()), file_text

    summary, file_text = asyncio.run(go())
    assert "t-ocr-scan-7" in summary and "out of GPU memory" in summary
    assert "not found" in file_text


def test_palette_command_sends_like_the_key() -> None:
    snap = canned("busy5")
    sink = RecordingCommandSink()
    app = GalaxyApp(CannedSnapshotSource([snap]), sink, clock=lambda: snap.taken_at)

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"Drain worker")
            for _ in range(100):  # the palette searches asynchronously: wait for its hits
                await pilot.pause()
                hits = app.screen.query(CommandList)
                if hits and hits.first().option_count > 0:
                    break
            await pilot.press("enter")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()

    asyncio.run(go())
    assert [(c.kind, c.target) for c in sink.sent] == [(CommandKind.DRAIN, "w0")]


def test_ack_for_our_command_is_reported() -> None:
    snap = canned("busy5")
    source = CannedSnapshotSource([snap])
    sink = RecordingCommandSink()
    app = GalaxyApp(source, sink, clock=lambda: snap.taken_at)

    async def go() -> list[str]:
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await wait_ready(pilot)
            await pilot.press("p")
            await pilot.pause()
            cmd = sink.sent[0]
            ack = CommandAck(cmd.command_id, "pause", "w0", "ok", "w0 paused", snap.taken_at + 1, cmd.source)
            source.push(replace(snap, seq=snap.seq + 1, acks=(ack,)))
            app.poll_source()
            for _ in range(1000):  # up to 20 s: the reading comes from the app's reader thread
                await app.workers.wait_for_complete()
                await pilot.pause(0.02)
                if app.snapshot is not None and app.snapshot.seq == snap.seq + 1:
                    break
            return [n.message for n in app._notifications]

    messages = asyncio.run(go())
    assert any("pause w0: ok" in m for m in messages), messages
