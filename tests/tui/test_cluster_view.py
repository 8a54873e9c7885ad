"""The dashboard over several rigs (a shared Redis store): each rig's GPU cards under its header
(live or STALE), a worker's keys sent to its own rig's supervisor, a STALE rig's keys asking first,
queue keys to the rig the view shows, and ``g`` filtering the cards by rig. The view is what
``ClusterSnapshotSource`` hands the app (``engine.store.rigs_view.merge_rigs``, in
tests/tui/fixtures/make_fixtures.py)."""

from __future__ import annotations

import asyncio

import pytest
from tuikit import canned, press_and_read, screen_text, wait_ready

from engine.commands import CommandKind, RecordingCommandSink
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource


def app_and_sinks() -> tuple[GalaxyApp, RecordingCommandSink, dict[str, RecordingCommandSink]]:
    snap = canned("cluster")  # lab (this host, 5 GPUs), gaming (2), mac (1, silent for 65 s): make_fixtures.py
    home, routed = RecordingCommandSink(), {}

    def route(rig: str) -> RecordingCommandSink:
        return routed.setdefault(rig, RecordingCommandSink())

    app = GalaxyApp(CannedSnapshotSource([snap]), home, clock=lambda: snap.taken_at, route=route, home_rig="lab")
    return app, home, routed


def sent(sinks: dict[str, RecordingCommandSink]) -> dict[str, list[tuple[CommandKind, str | None]]]:
    return {rig: [(c.kind, c.target) for c in sink.sent] for rig, sink in sinks.items() if sink.sent}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_each_rigs_cards_under_its_header(size: tuple[int, int]) -> None:
    app, _, _ = app_and_sinks()
    text, _, _ = asyncio.run(press_and_read(app, [], size))
    assert "3 rigs 1 STALE" in text.splitlines()[0]  # the top bar
    assert "rig lab · live · 5 GPU(s)" in text
    assert "rig gaming · live · 2 GPU(s) · supervisor 777" in text
    if size[1] >= 40:  # at 80x24 the panel scrolls: mac's header is below the fold
        assert "rig mac · STALE 1m05s" in text


def test_a_workers_keys_go_to_its_own_rig() -> None:
    app, home, routed = app_and_sinks()
    # the first card of gaming: after lab's five
    asyncio.run(press_and_read(app, ["down"] * 5 + ["p", "x"], (120, 40)))
    assert sent(routed) == {"gaming": [(CommandKind.PAUSE, "w0"), (CommandKind.DRAIN, "w0")]}
    assert home.sent == []


def test_a_stale_rigs_worker_keys_ask_first() -> None:
    app, _, routed = app_and_sinks()
    said, screen, _ = asyncio.run(press_and_read(app, ["down"] * 7 + ["p"], (120, 40)))  # mac's card
    assert screen == "ConfirmScreen" and said.startswith("No supervisor is running; send anyway?")
    assert "on rig mac" in said and sent(routed) == {}


def test_this_rigs_keys_go_to_this_rig() -> None:
    app, _, routed = app_and_sinks()
    asyncio.run(press_and_read(app, ["p"], (120, 40)))  # the first card: lab's w0
    assert sent(routed) == {"lab": [(CommandKind.PAUSE, "w0")]}


def test_g_shows_one_rig_then_the_next_then_every_rig() -> None:
    async def steps() -> list[str]:
        app, _, _ = app_and_sinks()
        seen = []
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            for _ in range(4):
                await pilot.press("g")
                await pilot.pause()
                seen.append(screen_text(app))
        return seen

    lab_only, gaming_only, mac_only, every = asyncio.run(steps())
    assert "rig lab" in lab_only and "rig gaming" not in lab_only and "GPUs (5) · rig lab" in lab_only
    assert "rig gaming" in gaming_only and "rig lab" not in gaming_only and "GPUs (2) · rig gaming" in gaming_only
    assert "rig mac · STALE" in mac_only and "rig gaming" not in mac_only
    assert all(f"rig {r}" in every for r in ("lab", "gaming", "mac")) and "GPUs (8)" in every


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_tasks_view_names_each_worker_with_its_rig(size: tuple[int, int]) -> None:
    """Every rig has a w0: a running task shows the rig whose worker holds it, a finished one the rig
    of its last attempt; the worker column grows to fit them."""
    app, _, _ = app_and_sinks()
    text, _, _ = asyncio.run(press_and_read(app, [], size))
    rows = [line for line in text.splitlines() if line.startswith(("│ running ", "│ done "))]  # the Tasks rows
    assert any("w0@lab" in r for r in rows) and not any(" w0 " in r for r in rows)
    if size[1] >= 40:  # at 80x24 the recent rows are below the fold
        assert any("embed-docs-3" in r and "w0@gaming" in r for r in rows)
        assert "@w0@lab" in text  # an event's worker, with the rig its line came from
