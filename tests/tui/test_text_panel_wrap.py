"""A wrapping text panel (the selected task's failure reason under Tasks) takes the height of its
wrapped text: a long reason after a short one gets its lines, not the first one only."""

from __future__ import annotations

import asyncio

from textual.content import Content
from tuikit import make_app, wait_ready

from galaxy_tui.widgets.text_panel import TextPanel


def test_a_longer_wrapped_text_gets_its_lines() -> None:
    app, _ = make_app("busy5")

    async def go() -> list[int]:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(pilot)
            strip = app.query_one("#task-reason", TextPanel)
            strip.display = True
            heights = []
            for text in ("short error", "a long error " * 12, "short again"):
                strip.update(Content(text))  # no line break: only wrapping makes it longer
                await pilot.pause()
                heights.append(strip.size.height)
            return heights

    assert asyncio.run(go()) == [1, 2, 1]
