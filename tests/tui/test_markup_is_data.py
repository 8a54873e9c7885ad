"""Text from tasks, events, alerts, workers and payloads is shown literally, never as markup:
names full of ``[bold]``, ``[link=...]``, ``[/]``, ``[red]`` and emoji, at 80x24 and 120x40."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from tuikit import make_app, screen_text, wait_ready

from engine.snapshot import CommandAck
from galaxy_tui.screens.confirm import ConfirmScreen
from galaxy_tui.source import SnapshotReading

LITERALS_MAIN = ["job[intro]", "boom[a] [", "2 tasks failed: boom[a] [red]x[/]",
                 "[bold]CUDA[/] 🚀", "t-boom[a]"]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_main_screen_shows_markup_literally(size: tuple[int, int]) -> None:
    async def go() -> str:
        app, _ = make_app("markup")
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            return screen_text(app)
    text = run(go())
    for literal in LITERALS_MAIN:
        assert literal in text, f"{literal!r} not on the {size} screen:\n{text}"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_review_screen_shows_markup_literally(size: tuple[int, int]) -> None:
    async def go() -> str:
        app, _ = make_app("markup")
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            await pilot.press("e")
            await pilot.pause()
            return screen_text(app)
    text = run(go())
    for literal in ("[bold]needs[/] a bigger model 🚀", "claude-[x]", "boom[a] [link=http://x]click[/link]",
                    '"[link=http://x]click[/link]'):
        assert literal in text, f"{literal!r} not on the review screen at {size}:\n{text}"


def test_worker_reason_and_failed_reason_literal() -> None:
    async def go() -> tuple[str, str]:
        app, _ = make_app("markup")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            await pilot.press(*["down"] * 4)  # GPU 4: worker w4 is fatal
            await pilot.pause()
            gpu = screen_text(app)
            await pilot.press("tab", "down", "down", "down")  # Tasks: the failed boom[a]
            await pilot.pause()
            return gpu, screen_text(app)
    gpu, tasks = run(go())
    assert "w4: fatal: exited [red]code 1[/] 5 times in 30s" in gpu
    assert "failed: [red]CUDA[/] out of memory 🚀 [/]" in tasks


def test_acks_and_confirmations_are_literal() -> None:
    async def go() -> tuple[str, str]:
        app, _ = make_app("markup")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            await pilot.press("c")  # cancel w0's task job[intro] [bold]big[/]
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            question = screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            app.sent_ids.add("abc123")
            snap = app.snapshot
            ack = CommandAck("abc123", "cancel", "t-job[intro]", "refused", "[bold]not[/] running [link=http://x]",
                             snap.taken_at)
            app.apply_reading(SnapshotReading(replace(snap, seq=snap.seq + 1, acks=(ack,))))
            await pilot.pause()
            toasts = [(n.message, n.markup) for n in app._notifications]
            return question, screen_text(app), toasts
    question, _, toasts = run(go())
    assert "Cancel task job[intro] [bold]big" in question  # the dialog's own text, as drawn
    message = "cancel t-job[intro]: refused [bold]not[/] running [link=http://x]"
    assert (message, False) in toasts  # markup=False: Textual shows the message as plain text
