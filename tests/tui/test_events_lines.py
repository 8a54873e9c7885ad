"""Events lines are drawn from their parts (widgets/line_strips.py): what Textual draws of the same
text, cut with an ellipsis where too wide, padded to the panel's width, in each theme."""

from __future__ import annotations

import asyncio

import pytest
from taskkit import busy, with_events
from textual.visual import Visual
from tuikit import app_for, make_app, wait_ready

from galaxy_tui.app import GalaxyApp
from galaxy_tui.widgets.events import EventsPanel


def _check(panel: EventsPanel) -> None:
    width = panel.scrollable_content_region.width
    lines = panel.lines
    assert lines
    for y, line in enumerate(lines[:panel.size.height]):
        want = Visual.to_strips(panel, line, width, 1, panel.visual_style, pad=True)[0]
        assert list(panel.render_line(y)) == list(want), line.plain


async def _all_themes(app: GalaxyApp, size: tuple[int, int], wide_line: bool) -> None:
    async with app.run_test(size=size) as pilot:
        await wait_ready(pilot)
        panel = app.query_one(EventsPanel)
        if wide_line:
            width = panel.scrollable_content_region.width
            assert any(len(line.plain) > width for line in panel.lines)  # some are cut
        for _ in app._themes:
            _check(panel)
            app.action_next_theme()
            await pilot.pause()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_event_lines_draw_as_textual_draws_their_text(size: tuple[int, int]) -> None:
    app, _ = app_for(with_events(busy(3)))
    asyncio.run(_all_themes(app, size, wide_line=size == (80, 24)))


def test_markup_and_no_events_lines_draw_as_textual_draws_them() -> None:
    for name in ("markup", "eight"):
        app, _ = make_app(name)
        asyncio.run(_all_themes(app, (120, 40), wide_line=False))
