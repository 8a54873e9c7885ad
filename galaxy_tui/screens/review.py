"""Full-screen review of one escalation: what leaves the rig, what it costs, and the decision.

The screen follows the live snapshot (an escalation approved elsewhere or expired shows so);
the decision keys call back into the app, which owns sending (read-only, stale and budget
checks happen there). Works at 80x24: facts on top, the payload scrolls below.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.snapshot import EscalationView, Snapshot
from galaxy_tui.review import Payload, facts_content, load_payload, payload_content

if TYPE_CHECKING:
    from galaxy_tui.app import GalaxyApp


def pending_of(snap: Snapshot | None) -> list[EscalationView]:
    """Pending escalations, oldest first (the order the banner's key walks)."""
    if snap is None:
        return []
    return sorted((e for e in snap.escalations if e.state == "pending"), key=lambda e: e.created_at)


class ReviewScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve"),
        Binding("o", "approve_over", "Over budget"),
        Binding("d", "deny", "Deny"),
        Binding("n", "next", "Next"),
        Binding("escape", "close", "Back"),
        Binding("question_mark", "app.help", "Help"),
        Binding("home", "scroll_home", show=False),
        Binding("end", "scroll_end", show=False),
    ]

    def __init__(self, view: EscalationView, root: Path | None) -> None:
        super().__init__()
        self.view = view
        self.root = root
        self.payload: Payload | None = None

    @property
    def galaxy(self) -> GalaxyApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="review-facts")
        with VerticalScroll(id="review-body"):
            yield Static(Content.styled("loading the request body…", "$text-muted"), id="review-payload")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#review-body").border_title = "would send (secrets redacted)"
        self.query_one("#review-body").focus()
        self._show_facts()
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        payload = load_payload(self.root, self.view)
        self.app.call_from_thread(self._loaded, payload)

    def _loaded(self, payload: Payload) -> None:
        self.payload = payload
        self.query_one("#review-payload", Static).update(payload_content(payload))
        self._show_facts()

    def _show_facts(self) -> None:
        snap = self.galaxy.snapshot
        pending = pending_of(snap)
        ids = [e.escalation_id for e in pending]
        position = f"{ids.index(self.view.escalation_id) + 1} of {len(ids)} pending" if self.view.escalation_id in ids \
            else f"{len(ids)} other pending" if ids else ""
        name = None
        if snap is not None:
            name = next((t.name for t in (*snap.running, *snap.failed, *snap.recent)
                         if t.task_id == self.view.task_id), None)
        now = snap.taken_at if snap is not None else self.galaxy.clock()
        facts = facts_content(self.view, self.payload, task_name=name, now=now, position=position)
        self.query_one("#review-facts", Static).update(facts)
        self.query_one("#review-facts").border_title = "escalation review"

    def on_snapshot(self, snap: Snapshot) -> None:
        """Called by the app on every new snapshot: the state, expiry and budget stay live."""
        fresh = next((e for e in snap.escalations if e.escalation_id == self.view.escalation_id), None)
        if fresh is not None and fresh != self.view:
            self.view = fresh
        self._show_facts()

    # ---- decisions (the app sends; it refuses a decided one) ----
    def action_approve(self) -> None:
        self.galaxy.approve_escalation(self.view, override_budget=False)

    def action_approve_over(self) -> None:
        self.galaxy.approve_escalation(self.view, override_budget=True)

    def action_deny(self) -> None:
        self.galaxy.deny_escalation(self.view)

    def action_next(self) -> None:
        pending = [e for e in pending_of(self.galaxy.snapshot) if e.escalation_id != self.view.escalation_id]
        if not pending:
            self.notify("no other pending escalation", severity="information")
            return
        later = [e for e in pending if e.created_at > self.view.created_at]
        self.app.switch_screen(ReviewScreen((later or pending)[0], self.root))

    def action_scroll_home(self) -> None:
        self.query_one("#review-body", VerticalScroll).scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.query_one("#review-body", VerticalScroll).scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
