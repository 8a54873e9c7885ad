"""The main screen never needs scrolling: its content fits the terminal at 80x24 and 120x40, so the
top bar is always on its first line. The cluster view at 80x24 (eight cards under three rig headers)
was one row too tall, and the screen, scrolled by a card or a focus moving into view, hid its top bar
(galaxy_tui/themes/dashboard.tcss: ``Screen.-short GpuPanel``; gpu_panel.py scrolls the card list only)."""

from __future__ import annotations

import asyncio

import pytest
from tuikit import app_for, canned, screen_text, wait_ready


@pytest.mark.parametrize("fixture", ["cluster", "eight", "busy5"])
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_screen_fits_and_the_top_bar_is_first(fixture: str, size: tuple[int, int]) -> None:
    snap = canned(fixture)
    app, _ = app_for(snap)

    async def go() -> tuple[int, float, str]:
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            await pilot.press("down", "down")  # a card further down is selected: the card list scrolls, not the screen
            await pilot.pause()
            return app.screen.virtual_size.height, app.screen.scroll_y, screen_text(app).splitlines()[0]

    height, scrolled, first = asyncio.run(go())
    assert (height, scrolled) == (size[1], 0)
    assert first.startswith(" galaxy ")
