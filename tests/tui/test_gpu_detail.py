"""The GPU detail screen (Enter on a GPU card): charts from the supervisor's history, processes, keys."""

from __future__ import annotations

import asyncio
import dataclasses

from tuikit import app_for, canned, screen_text, wait_ready

from engine.history import write_history
from engine.snapshot import GpuProcessView
from engine.supervisor.history_keeper import HistoryKeeper
from engine.telemetry.protocol import GpuSample
from galaxy_tui.screens.gpu_detail import GpuDetailScreen, charts_for, process_rows
from galaxy_tui.screens.task_detail import TaskDetailScreen


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def ten_minutes_of_history(root, gpus: int = 5) -> None:
    keeper = HistoryKeeper(sample_s=2.0, span_s=900.0)
    for step in range(1201):  # 600 s at two ticks a second
        t = 1000.0 + step * 0.5
        keeper.observe(t, [GpuSample(index=i, name=f"GPU {i}", util_pct=float(step % 100), mem_used_mb=3900.0,
                                     mem_total_mb=6144.0, temp_c=60.0 + i, power_w=90.0, power_limit_w=140.0)
                           for i in range(gpus)], [])
    (root / "state").mkdir(parents=True, exist_ok=True)
    write_history(root / "state" / "history.json", keeper.view(1600.0))


def with_processes(snap):  # type: ignore[no-untyped-def]
    gpu0 = dataclasses.replace(snap.gpus[0], processes=(
        GpuProcessView(pid=4100, name="ollama", used_mb=3900.0, galaxy=True),
        GpuProcessView(pid=777, name="[bold red]evil[/] 🚀", used_mb=None, galaxy=False)))
    return dataclasses.replace(snap, gpus=(gpu0, *snap.gpus[1:]))


async def _open(size, tmp_path, keys=()):  # type: ignore[no-untyped-def]
    ten_minutes_of_history(tmp_path)
    app, _sink = app_for(with_processes(canned("busy5")), root=tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_ready(pilot)
        await pilot.press("enter")
        for _ in range(50):
            await app.workers.wait_for_complete()
            await pilot.pause()
            if isinstance(app.screen, GpuDetailScreen) and app.screen.history is not None:
                break
        opened = type(app.screen).__name__
        text = screen_text(app)
        for k in keys:
            await pilot.press(k)
            await pilot.pause()
        after = type(app.screen).__name__
        index = app.screen.index if isinstance(app.screen, GpuDetailScreen) else None
    return opened, text, after, index


def test_enter_on_a_gpu_card_opens_its_detail_at_120x40(tmp_path):
    opened, text, _after, _ = run(_open((120, 40), tmp_path))
    assert opened == "GpuDetailScreen"
    assert "GPU 0" in text and "last 10 min" in text
    assert "ollama" in text and "3,900 MB" in text
    assert "[bold red]evil[/] 🚀" in text  # a process name is text, never markup
    assert "N/A" in text  # VRAM the driver does not report


def test_detail_fits_80x24_and_the_processes_scroll_into_view(tmp_path):
    opened, text, _after, _ = run(_open((80, 24), tmp_path))
    assert opened == "GpuDetailScreen"
    assert "util" in text and "VRAM" in text and "GPU 0" in text


def test_arrows_step_through_gpus_and_escape_closes(tmp_path):
    *_, index = run(_open((120, 40), tmp_path, keys=["right", "right"]))
    assert index == 2
    *_, after, _ = run(_open((120, 40), tmp_path, keys=["escape"]))
    assert after != "GpuDetailScreen"


def test_enter_inside_opens_the_running_task(tmp_path):
    _opened, _text, after, _ = run(_open((120, 40), tmp_path, keys=["enter"]))
    assert after == TaskDetailScreen.__name__


def test_without_history_the_charts_fall_back_to_the_snapshots_minute():
    snap = canned("busy5")
    charts, span = charts_for(0, snap.gpus[0], None)
    assert [c.key for c in charts] == ["util", "mem", "temp", "power"]
    assert charts[0].values == tuple(snap.gpus[0].util_history) and span > 0


def test_process_rows_biggest_first_with_na():
    gpu = with_processes(canned("busy5")).gpus[0]
    assert process_rows(gpu) == [("4100", "ollama", "3,900 MB", "galaxy"),
                                 ("777", "[bold red]evil[/] 🚀", "N/A", "other")]
