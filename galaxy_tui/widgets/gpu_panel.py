"""The GPU panel: one card per GPU (plus CPU-only workers), the selected one drives the keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from engine.snapshot import GpuView, Snapshot, WorkerView
from galaxy_tui.render import gpu_narrow, gpu_wide, same_look

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
    return cards


def _key(kind: str, rig: str | None, name: str) -> str:
    return f"{kind}-{name}" if rig is None else f"{kind}-{rig}-{name}"


def _clock_for(worker: WorkerView | None, taken_at: float) -> float:
    """Only a running task's elapsed time needs "now"; an idle card stays equal, so it is not redrawn."""
    return taken_at if worker is not None and worker.current_task else 0.0


class CardList(VerticalScroll, can_focus=False):
    """Scrolls when the cards outgrow the panel; focus stays on the panel."""


class GpuCard(Static):
    """One GPU's line (narrow) or two lines (wide); re-renders only when its data changes."""

    data: reactive[CardData | None] = reactive(None, layout=False)
    wide: reactive[bool] = reactive(False)

    def __init__(self, data: CardData, wide: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(GpuCard.data, data)
        self.set_reactive(GpuCard.wide, wide)
        self.set_class(wide, "-wide")

    def render(self) -> Content | str:
        return self._content(self.data)

    def _content(self, d: CardData | None) -> Content | str:
        if d is None:
            return ""
        width = max(self.size.width, 40)
        if self.wide:
            return gpu_wide(d.gpu, d.worker, width, d.taken_at)
        return gpu_narrow(d.gpu, d.worker, width, d.taken_at)

    def show(self, data: CardData) -> None:
        """New data; the card is redrawn only if its text changes (a heartbeat or a history
        sample the card does not show is not worth a repaint)."""
        if data == self.data:
            return
        if self.data is not None and same_look(self._content(data), self._content(self.data)):
            self.set_reactive(GpuCard.data, data)
        else:
            self.data = data

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

    class Selected(Message):
        def __init__(self, card: CardData | None) -> None:
            super().__init__()
            self.card = card

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._cards: list[CardData] = []

    def compose(self) -> ComposeResult:
        yield CardList(id="gpu-cards")

    def show(self, snap: Snapshot) -> None:
        new = cards_from(snap)
        was = self.current.key if self.current else None
        box = self.query_one("#gpu-cards", CardList)
        old_keys = [c.key for c in self._cards]
        if [c.key for c in new] == old_keys:
            for widget, data in zip(box.query(GpuCard), new):
                widget.show(data)
        else:
            box.remove_children()
            wide = self.has_class("-wide")
            box.mount_all(GpuCard(c, wide=wide) for c in new)
        self._cards = new
        title = f"GPUs ({len(snap.gpus)})" + ("  SIMULATED" if snap.simulated else "")
        if self.border_title != title:
            self.border_title = title
        keys = [c.key for c in new]
        # The selection follows its card, not its position: a card appearing or leaving above it
        # must not turn the next p/x/u onto another worker.
        self.selected = keys.index(was) if was in keys else min(self.selected, max(len(new) - 1, 0))
        if keys != old_keys:
            self._mark_selected()

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
                card.scroll_visible(animate=False)

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE_AT
        self.set_class(wide, "-wide")
        for card in self.query(GpuCard):
            card.wide = wide
            card.set_class(wide, "-wide")
