"""Every escalation the snapshot holds: pending on the first tab, decided ones on their own.

Enter opens the review screen for the highlighted row; the lists follow the live snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, TabbedContent, TabPane

from engine.snapshot import Snapshot
from galaxy_tui.widgets.escalations import EscalationsTable, decided_rows, pending_rows, split

if TYPE_CHECKING:
    from galaxy_tui.app import GalaxyApp


class EscalationsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Back"), Binding("tab", "other_tab", "Pending/decided", priority=True),
                Binding("question_mark", "app.help", "Help", show=False)]

    def __init__(self, root: Path | None) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        with TabbedContent(id="esc-tabs"):
            with TabPane("Pending", id="tab-pending"):
                yield EscalationsTable(id="esc-pending")
            with TabPane("Decided", id="tab-decided"):
                yield EscalationsTable(id="esc-decided")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        snap = self.galaxy.snapshot
        if snap is not None:
            self.on_snapshot(snap)
        self.query_one("#esc-pending").focus()

    @property
    def galaxy(self) -> GalaxyApp:
        return self.app  # type: ignore[return-value]

    def on_snapshot(self, snap: Snapshot) -> None:
        pending, decided = split(snap)
        self.query_one("#esc-pending", EscalationsTable).set_rows(pending_rows(snap))
        self.query_one("#esc-decided", EscalationsTable).set_rows(decided_rows(snap))
        tabs = self.query_one(TabbedContent)
        tabs.get_tab("tab-pending").label = f"Pending ({len(pending)})"
        tabs.get_tab("tab-decided").label = f"Decided ({len(decided)})"

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        if isinstance(table, EscalationsTable) and table.selected_key is not None:
            self.galaxy.open_review(table.selected_key)

    def action_other_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-decided" if tabs.active == "tab-pending" else "tab-pending"
        self.query_one("#esc-decided" if tabs.active == "tab-decided" else "#esc-pending").focus()

    def action_close(self) -> None:
        self.dismiss(None)
