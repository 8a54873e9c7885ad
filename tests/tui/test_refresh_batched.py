"""A snapshot that changes several lines of a line-drawn widget asks for one refresh with those
lines, not one refresh per line: each ``Widget.refresh`` call clears caches and posts to the
message queue (~26 calls a busy snapshot before). The lines redrawn are the same."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from textual.app import App, ComposeResult
from textual.geometry import Region
from tuikit import canned

from galaxy_tui.widgets.gpu_panel import CardData, GpuCard, cards_from
from galaxy_tui.widgets.tables import KeyedTable


class Counting:
    """Records each refresh call's regions (a whole-widget refresh: ``()``)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.calls: list[tuple[Region, ...]] = []
        super().__init__(*args, **kwargs)

    def refresh(self, *regions: Region, **kwargs: bool) -> object:
        self.calls.append(regions)
        return super().refresh(*regions, **kwargs)  # type: ignore[misc]


class CountingTable(Counting, KeyedTable):
    COLUMNS = (("name", "name", 10), ("n", "n", 4))


class CountingCard(Counting, GpuCard):
    pass


class Bench(App[None]):
    def __init__(self, card: CardData) -> None:
        super().__init__()
        self.card = card

    def compose(self) -> ComposeResult:
        yield CountingTable(id="t")
        yield CountingCard(self.card, wide=True, id="c")


def rows(changed: set[int]) -> list[tuple[str, tuple[object, ...]]]:
    return [(f"r{i}", (f"task {i}", f"{i}{'!' if i in changed else ''}")) for i in range(8)]


def test_changed_lines_in_one_refresh() -> None:
    snap = canned("eight")
    first = next(c for c in cards_from(snap) if c.gpu is not None)
    app = Bench(first)

    async def go() -> tuple[list[tuple[Region, ...]], list[tuple[Region, ...]]]:
        async with app.run_test(size=(100, 20)) as pilot:
            table, card = app.query_one(CountingTable), app.query_one(CountingCard)
            table.set_rows(rows(set()))
            await pilot.pause()
            card.lines(), card.render_line(0), card.render_line(1)
            table.calls, card.calls = [], []
            table.set_rows(rows({1, 4, 6}))  # three rows' cells change
            gpu = first.gpu
            assert gpu is not None
            moved = replace(gpu, util_history=(*gpu.util_history[1:], 3.0), util_pct=3.0, temp_c=gpu.temp_c + 9)
            card.show(replace(first, gpu=moved))  # both lines of the card change
            return list(table.calls), list(card.calls)  # what set_rows and show asked for, not the shutdown's

    table_calls, card_calls = asyncio.run(go())
    assert [[r.y for r in call] for call in table_calls] == [[2, 5, 7]]  # header line 0: rows 1, 4, 6
    assert [[r.y for r in call] for call in card_calls] == [[0, 1]]
