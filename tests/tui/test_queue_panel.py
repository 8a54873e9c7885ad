"""The Queue panel (widgets/queue_panel.py): drawn line by line as Textual draws the same text
(lines too wide cut with an ellipsis), a snapshot redraws only the lines that changed, and its
height follows the content up at once but down only after SHRINK_AFTER_S."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from textual.content import Content
from textual.visual import Visual
from tuikit import canned, make_app, wait_ready

from engine.snapshot import Snapshot
from galaxy_tui.widgets.line_strips import cut
from galaxy_tui.widgets.panels import queue_parts
from galaxy_tui.widgets.queue_panel import QueuePanel
from galaxy_tui.widgets.tables import SHRINK_AFTER_S


def queue_content(snap: Snapshot) -> Content:
    """The Queue panel's text as one Content: what Textual's own drawing is given."""
    return Content("\n").join([Content.assemble(*line) for line in queue_parts(snap)])


def _textual_lines(panel: QueuePanel, snap: Snapshot) -> list[list[object]]:
    width = panel.content_size.width
    content = queue_content(snap)
    return [list(s) for s in Visual.to_strips(panel, content, width, None, panel.visual_style)]


def panel_snap(panel: QueuePanel) -> Snapshot:
    snap = panel.app.snapshot  # type: ignore[attr-defined]
    assert isinstance(snap, Snapshot)
    return snap


def test_cut_is_what_content_truncate_makes() -> None:
    pieces = [(" export[part-2]", "bold"), ("    5s ", "$text-muted"), ("backoff until 18:36:13", "$warning")]
    for width in (1, 5, 15, 16, 22, 27, 28):
        content = Content.assemble(*pieces).truncate(width, ellipsis=True)
        mine = Content.assemble(*cut(pieces, width))
        assert (mine.plain, mine.spans) == (content.plain, content.spans), width


@pytest.mark.parametrize(("name", "size"), [("busy5", (120, 40)), ("busy5", (80, 24)), ("markup", (120, 40)),
                                            ("eight", (120, 40))])
def test_queue_lines_draw_as_textual_draws_their_text(name: str, size: tuple[int, int]) -> None:
    app, _ = make_app(name)

    async def go() -> None:
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            panel = app.query_one(QueuePanel)
            lines = queue_parts(panel_snap(panel))
            assert panel.size.height >= 1
            if size == (80, 24):  # some lines are cut with an ellipsis here
                assert any(len(Content.assemble(*line).plain) > panel.content_size.width for line in lines)
            drawn = [list(panel.render_line(y)) for y in range(len(lines))]
            assert drawn == _textual_lines(panel, panel_snap(panel))[:len(lines)]

    asyncio.run(go())


def test_height_holds_while_the_queue_shortens_then_gives_way() -> None:
    snap = canned("busy5")
    app, _ = make_app("busy5")

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            panel = app.query_one(QueuePanel)
            full = len(queue_parts(snap))
            assert panel._height == full
            short = replace(snap, queue=replace(snap.queue, waiting=snap.queue.waiting[:1]))
            t = snap.taken_at
            for dt in (1.0, 5.0, SHRINK_AFTER_S - 0.5):
                panel.show(replace(short, taken_at=t + dt))
                assert panel._height == full, dt  # blank lines at the bottom, no layout pass
            panel.show(replace(short, taken_at=t + 1.0 + SHRINK_AFTER_S))
            assert panel._height == full - 3
            panel.show(replace(snap, taken_at=t + 40 + SHRINK_AFTER_S))  # grows at once
            assert panel._height == full
            await pilot.pause()
            assert panel.size.height == full

    asyncio.run(go())


def test_a_new_snapshot_redraws_only_changed_lines() -> None:
    snap = canned("busy5")
    app, _ = make_app("busy5")

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            panel = app.query_one(QueuePanel)
            lines = queue_parts(snap)
            for y in range(len(lines)):
                panel.render_line(y)
            kept = dict(panel._kept.strips)
            counts = dict(snap.queue.counts)
            first = next(iter(counts))
            counts[first] = {**counts[first], "llm": counts[first].get("llm", 0) + 1}
            more = replace(snap, queue=replace(snap.queue, counts=counts))
            panel.show(more)
            assert 0 not in panel._kept.strips
            assert all(panel._kept.strips[y] is kept[y] for y in range(1, len(lines)))
            await pilot.pause()
            assert list(panel.render_line(0)) == _textual_lines(panel, more)[0]

    asyncio.run(go())
