"""GPU cards are drawn line by line from their parts (widgets/line_strips.py): the drawing is what
Textual makes of the same text, and a new snapshot redraws only the lines that changed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from textual.content import Content
from textual.visual import Visual
from tuikit import make_app, wait_ready

from galaxy_tui.render import Part
from galaxy_tui.widgets.gpu_panel import GpuCard, GpuPanel
from galaxy_tui.widgets.line_strips import LineStrips, runs


def test_runs_split_where_content_does() -> None:
    parts: list[Part] = ["a", ("", "bold"), "b", ("c", ""), ("d", "$accent"), ("d", "$accent"), "", ("", "bold")]
    assert runs(parts) == [("a", ""), ("bc", ""), ("d", "$accent"), ("d", "$accent")]
    content = Content.assemble(*parts)
    assert [t for t, _ in content.render(end="")] == [t for t, _ in runs(parts)]


def _textual_lines(card: GpuCard) -> list[list[object]]:
    strips = Visual.to_strips(card, card.render(), card.size.width, None, card.visual_style)
    return [list(s) for s in strips]


@pytest.mark.parametrize(("name", "size"), [("eight", (120, 40)), ("hot", (120, 40)), ("busy5", (80, 24)),
                                            ("markup", (120, 40)), ("failed", (120, 40))])
def test_cards_draw_as_textual_draws_their_text(name: str, size: tuple[int, int]) -> None:
    app, _ = make_app(name)

    async def go() -> None:
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            cards = list(app.query(GpuCard))
            assert cards
            for card in cards:  # the selected card too (another background)
                fresh = LineStrips()
                drawn = [list(fresh.strip(card, line, y, card.size.width)) for y, line in enumerate(card.lines())]
                assert drawn == _textual_lines(card), card.data.key
                assert [list(card.render_line(y)) for y in range(len(card.lines()))] == drawn
                again = [list(fresh.strip(card, line, y, card.size.width)) for y, line in enumerate(card.lines())]
                assert again == drawn  # from the kept pieces

    asyncio.run(go())


def test_narrow_card_wider_than_its_width_is_cut_as_before() -> None:
    app, _ = make_app("busy5")

    async def go() -> None:
        async with app.run_test(size=(60, 24)) as pilot:
            await wait_ready(pilot)
            for card in app.query(GpuCard):
                drawn = [list(card.render_line(y)) for y in range(len(card.lines()))]
                assert drawn == _textual_lines(card)

    asyncio.run(go())


def test_a_new_snapshot_redraws_only_changed_lines() -> None:
    app, _ = make_app("eight")

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            panel = app.query_one(GpuPanel)
            cards = list(app.query(GpuCard))
            for card in cards:
                card.render_line(0), card.render_line(1)
            kept = [dict(card._kept.strips) for card in cards]
            snap = app.snapshot
            assert snap is not None
            gpu0 = snap.gpus[0]
            moved = replace(gpu0, util_history=(*gpu0.util_history[1:], 3.0), util_pct=3.0)
            panel.show(replace(snap, gpus=(moved, *snap.gpus[1:])))
            assert 1 not in cards[0]._kept.strips and cards[0]._kept.strips[0] is kept[0][0]  # the sparkline line only
            for card, before in zip(cards[1:], kept[1:]):
                assert card._kept.strips == before
            await pilot.pause()
            assert [list(cards[0].render_line(y)) for y in (0, 1)] == _textual_lines(cards[0])
            assert "  3%" in cards[0].render().plain

    asyncio.run(go())


def test_theme_change_redraws_cards_in_the_new_colours() -> None:
    app, _ = make_app("eight")

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            card = app.query(GpuCard).first()
            before = [list(card.render_line(y)) for y in (0, 1)]
            app.action_next_theme()
            await pilot.pause()
            after = [list(card.render_line(y)) for y in (0, 1)]
            assert after == _textual_lines(card) and after != before

    asyncio.run(go())
