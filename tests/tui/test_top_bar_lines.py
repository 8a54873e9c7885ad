"""The top bar is drawn from its parts (TextPanel.update_lines, LineStrips): what Textual draws of the
same text, live and STALE, wide and narrow (where it does not fit), in every theme."""

from __future__ import annotations

import asyncio

import pytest
from textual.visual import Visual
from tuikit import app_for, canned, make_app, wait_ready

from galaxy_tui.app import GalaxyApp
from galaxy_tui.widgets.status import TopBar


def _same_as_textual(bar: TopBar) -> None:
    want = Visual.to_strips(bar, bar.render(), bar.content_size.width, None, bar.visual_style)[0]
    assert list(bar.render_line(0)) == list(want), bar.render().plain


async def _check(app: GalaxyApp, size: tuple[int, int]) -> None:
    async with app.run_test(size=size) as pilot:
        await wait_ready(pilot)
        bar = app.query_one(TopBar)
        for _ in app._themes:
            _same_as_textual(bar)
            app.action_next_theme()
            await pilot.pause()


@pytest.mark.parametrize(("name", "size"), [("eight", (120, 40)), ("busy5", (80, 24)), ("markup", (120, 40)),
                                            ("cluster", (80, 24)), ("eight", (40, 24))])
def test_top_bar_draws_as_textual_draws_its_text(name: str, size: tuple[int, int]) -> None:
    app, _ = make_app(name, read_only=True)
    asyncio.run(_check(app, size))


def test_stale_top_bar_draws_as_textual_draws_it() -> None:
    app, _ = app_for(canned("busy5"), clock_offset=600.0)
    asyncio.run(_check(app, (120, 40)))


def test_a_new_snapshot_redraws_the_top_bar_in_its_new_text() -> None:
    app, _ = make_app("eight")

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            bar = app.query_one(TopBar)
            before = bar.render().plain
            bar.render_line(0)
            snap = app.snapshot
            assert snap is not None
            bar.show(snap, stale_since=None, read_only=False, error="a read failed")
            assert bar._kept is not None and bar._kept.strips == {}
            await pilot.pause()
            assert "a read failed" in bar.render().plain and bar.render().plain != before
            _same_as_textual(bar)

    asyncio.run(go())
