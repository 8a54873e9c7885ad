"""The GPU panel: one card per GPU (plus CPU-only workers), the selected one drives the keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from engine.snapshot import GpuView, RigView, Snapshot, WorkerView
from galaxy_tui.render import Part, gpu_narrow_parts, gpu_wide_parts
from galaxy_tui.widgets.line_strips import KeptLines

WIDE_AT = 110  # columns: two-line cards from here up


@dataclass(frozen=True)
class CardData:
    key: str
    gpu: GpuView | None
    worker: WorkerView | None
    taken_at: float


def cards_from(snap: Snapshot) -> list[CardData]:
    """One card per GPU, then one per CPU-only worker. In a cluster view (several rigs) worker names
    repeat from rig to rig, so a card's worker is looked up within its own rig and its key names it."""
    by_gpu: dict[tuple[str | None, int], WorkerView] = {}
    gpu_less: list[WorkerView] = []
    for w in snap.workers:
        if w.gpus:
            for i in w.gpus:
                by_gpu.setdefault((w.rig, i), w)
        else:
            gpu_less.append(w)
    named = {(w.rig, w.worker_id): w for w in snap.workers}
    cards = []
    for g in snap.gpus:
        worker = named.get((g.rig, g.worker_id)) if g.worker_id else None
        card_worker = worker or by_gpu.get((g.rig, g.index))
        cards.append(CardData(_key("gpu", g.rig, str(g.index)), g, card_worker,
                              _clock_for(card_worker, snap.taken_at)))
    cards += [CardData(_key("cpu", w.rig, w.worker_id), None, w, _clock_for(w, snap.taken_at)) for w in gpu_less]
    if snap.rigs:  # a cluster view: each rig's cards together, in the view's rig order
        order = {r.rig: i for i, r in enumerate(snap.rigs)}
        cards.sort(key=lambda c: order.get(card_rig(c) or "", len(order)))
    return cards


def card_rig(card: CardData) -> str | None:
    """The rig a card is on (None outside a cluster view)."""
    if card.gpu is not None:
        return card.gpu.rig
    return card.worker.rig if card.worker is not None else None


def rig_header(rig: RigView, now: float) -> Content:
    """``lab · live · 2 GPU(s) · supervisor 4242`` or ``mac · STALE 1m05s`` above a rig's cards."""
    if rig.problem:
        state: tuple[str, str] = (f"unreadable: {rig.problem}", "$error")
    elif rig.stale:
        age = int(now - rig.published_at) if rig.published_at is not None else None
        state = (f"STALE {age // 60}m{age % 60:02d}s" if age is not None else "STALE", "$warning bold")
    else:
        state = ("live", "$success")
    pid = f" · supervisor {rig.supervisor_pid}" if rig.supervisor_pid is not None and not rig.stale else ""
    return Content.assemble(("rig ", "$text-muted"), (rig.rig, "bold"), " · ", state,
                            (f" · {rig.gpus} GPU(s){pid}", "$text-muted"))


def _key(kind: str, rig: str | None, name: str) -> str:
    return f"{kind}-{name}" if rig is None else f"{kind}-{rig}-{name}"


def _clock_for(worker: WorkerView | None, taken_at: float) -> float:
    """Only a running task's elapsed time needs "now"; an idle card stays equal, so it is not redrawn."""
    return taken_at if worker is not None and worker.current_task else 0.0


class CardList(VerticalScroll, can_focus=False):
    """Scrolls when the cards outgrow the panel; focus stays on the panel."""


class RigHeader(Static):
    """The line above one rig's cards in a cluster view: the rig, live or STALE, its supervisor."""


class GpuCard(Widget):
    """One GPU's line (narrow) or two lines (wide), drawn line by line (the Line API): a snapshot
    redraws only the lines whose text or styles changed (most often the sparkline's), and a line
    is drawn from its parts with the pieces it shares with the last drawing kept (``LineStrips``)."""

    def __init__(self, data: CardData, wide: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.data = data
        self._wide = wide
        self._lines: list[list[Part]] | None = None  # the parts of each line, made at _width
        self._width = 0
        self._kept = KeptLines()
        self.set_class(wide, "-wide")

    @property
    def wide(self) -> bool:
        return self._wide

    @wide.setter
    def wide(self, wide: bool) -> None:
        if wide != self._wide:
            self._wide = wide
            self._lines = None
            self.refresh()

    def _parts(self, d: CardData, width: int) -> list[list[Part]]:
        width = max(width, 40)
        if self._wide:
            return list(gpu_wide_parts(d.gpu, d.worker, width, d.taken_at))
        return [gpu_narrow_parts(d.gpu, d.worker, width, d.taken_at)]

    def lines(self) -> list[list[Part]]:
        """The card's lines at its current width."""
        width = self.size.width
        if self._lines is None or width != self._width:
            self._lines, self._width = self._parts(self.data, width), width
            self._kept.forget()
        return self._lines

    def render(self) -> Content:  # the whole card as one text (text selection reads it)
        lines = self.lines()
        return Content.assemble(*[part for i, line in enumerate(lines)
                                  for part in ([*line, "\n"] if i < len(lines) - 1 else line)])

    def render_line(self, y: int) -> Strip:
        lines = self.lines()
        width = self.size.width
        if y >= len(lines):
            return Strip.blank(width, self.visual_style.rich_style)
        return self._kept.line(self, y, lines[y], width)

    def notify_style_update(self) -> None:  # a theme or CSS change: "$accent" may be another colour
        self._kept.clear()
        super().notify_style_update()

    def show(self, data: CardData) -> None:
        """New data; only the lines whose parts change are redrawn (a heartbeat or a history
        sample the card does not show is not worth a repaint)."""
        if data == self.data:
            return
        self.data = data
        old = self._lines
        if old is None:
            self.refresh()
            return
        self._lines = new = self._parts(data, self._width)
        if len(new) != len(old):
            self._kept.forget()
            self.refresh()
            return
        changed = [y for y, (now, before) in enumerate(zip(new, old)) if now != before]
        for y in changed:
            self._kept.forget(y)
        if changed:  # one refresh for the lines (each call posts to the message queue)
            self.refresh(*[Region(0, y, self._width, 1) for y in changed])

    def on_click(self) -> None:
        parent = self.parent
        while parent is not None and not isinstance(parent, GpuPanel):
            parent = parent.parent
        if isinstance(parent, GpuPanel):
            parent.select_key(self.data.key if self.data else None)
            parent.focus()


class GpuPanel(Widget, can_focus=True):
    """Focusable list of cards; up/down moves the selection, which names the worker for p/x/u."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
    ]

    selected: reactive[int] = reactive(0)
    rig_filter: reactive[str | None] = reactive(None, init=False)
    """Only this rig's cards (a cluster view); None: every rig's."""

    class Selected(Message):
        def __init__(self, card: CardData | None) -> None:
            super().__init__()
            self.card = card

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._cards: list[CardData] = []
        self._layout: list[str] = []  # "rig:<name>" header or card key, in screen order
        self._snap: Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield CardList(id="gpu-cards")

    def show(self, snap: Snapshot) -> None:
        self._snap = snap
        new = cards_from(snap)
        if self.rig_filter is not None:
            new = [c for c in new if card_rig(c) == self.rig_filter]
        was = self.current.key if self.current else None
        box = self.query_one("#gpu-cards", CardList)
        old_keys = [c.key for c in self._cards]
        layout = self._layout_of(snap, new)
        headers = {r.rig: rig_header(r, snap.taken_at) for r in snap.rigs} if len(snap.rigs) > 1 else {}
        if layout == self._layout:
            for widget, data in zip(box.query(GpuCard), new):
                widget.show(data)
            for header in box.query(RigHeader):
                header.update(headers[header.name or ""])
        else:
            box.remove_children()
            wide = self.has_class("-wide")
            box.mount_all(RigHeader(headers[item[4:]], name=item[4:]) if item.startswith("rig:")
                          else GpuCard(next(c for c in new if c.key == item), wide=wide) for item in layout)
        self._cards, self._layout = new, layout
        count = len(new) if self.rig_filter is not None else len(snap.gpus)
        title = f"GPUs ({count})" + (f" · rig {self.rig_filter}" if self.rig_filter else "") + (
            "  SIMULATED" if snap.simulated else "")
        if self.border_title != title:
            self.border_title = title
        keys = [c.key for c in new]
        # The selection follows its card, not its position: a card appearing or leaving above it
        # must not turn the next p/x/u onto another worker.
        self.selected = keys.index(was) if was in keys else min(self.selected, max(len(new) - 1, 0))
        if keys != old_keys:
            self._mark_selected()

    def _layout_of(self, snap: Snapshot, cards: list[CardData]) -> list[str]:
        """Card keys in order; with several rigs, each rig's header then its cards (a rig with no
        readable snapshot still has its header, saying why)."""
        if len(snap.rigs) < 2:
            return [c.key for c in cards]
        layout: list[str] = []
        for rig in snap.rigs:
            if self.rig_filter in (None, rig.rig):
                layout += [f"rig:{rig.rig}"] + [c.key for c in cards if card_rig(c) == rig.rig]
        return layout + [c.key for c in cards if card_rig(c) is None]

    def watch_rig_filter(self) -> None:
        if self._snap is not None:
            self.show(self._snap)

    @property
    def current(self) -> CardData | None:
        if not self._cards:
            return None
        return self._cards[min(self.selected, len(self._cards) - 1)]

    def select_key(self, key: str | None) -> None:
        for i, c in enumerate(self._cards):
            if c.key == key:
                self.selected = i

    def action_move(self, delta: int) -> None:
        if self._cards:
            self.selected = (self.selected + delta) % len(self._cards)

    def watch_selected(self) -> None:
        self._mark_selected()
        self.post_message(self.Selected(self.current))

    def _mark_selected(self) -> None:
        for i, card in enumerate(self.query(GpuCard)):
            card.set_class(i == self.selected, "-selected")
            if i == self.selected:
                self._bring_into_view(card)

    def _bring_into_view(self, card: GpuCard) -> None:
        """The selected card into view by scrolling the card list only: ``scroll_visible`` scrolls
        every scrollable ancestor, the screen too, and a screen scrolled while the cards were still
        being laid out stayed scrolled, the top bar off the top (a cluster view at 80x24)."""
        box = self.query_one("#gpu-cards", CardList)
        if card.size:
            box.scroll_to_widget(card, animate=False)
        else:  # not laid out yet
            box.call_after_refresh(box.scroll_to_widget, card, animate=False)

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE_AT
        self.set_class(wide, "-wide")
        for card in self.query(GpuCard):
            card.wide = wide
            card.set_class(wide, "-wide")
