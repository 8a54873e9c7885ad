"""The escalation keys of the dashboard: review, approve (over budget only after asking), deny
with a reason, and the guard against deciding one twice while the snapshot catches up.

A base class of ``GalaxyApp`` (which supplies ``send``, ``confirm`` and the snapshot), so the
app file stays about layout and the worker/task keys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.app import App

from engine.commands import CommandKind
from engine.snapshot import EscalationView, Snapshot
from galaxy_tui.widgets.escalations import EscalationsTable

# The review, escalations and reason screens are imported where they are opened: none is on the
# first frame, and importing them at start costs about a fifth of it (issue 12: first frame < 1 s).


class EscalationKeys(App[None]):
    snapshot: Snapshot | None
    root: Path | None
    decided: dict[str, str]  # escalation id -> "approve"/"deny" sent from here, until refused

    def send(self, kind: CommandKind, target: str | None = None, *, on_sent: Callable[[], None] | None = None,
             rig: str | None = None, **args: object) -> None:
        raise NotImplementedError  # GalaxyApp.send

    def confirm(self, question: str, label: str, then: Callable[[], None]) -> None:
        raise NotImplementedError  # GalaxyApp.confirm

    def selected_escalation(self) -> EscalationView | None:
        key = self.query_one(EscalationsTable).selected_key
        if key is None or self.snapshot is None:
            return None
        return next((e for e in self.snapshot.escalations if e.escalation_id == key), None)

    def _escalation(self, escalation_id: str) -> EscalationView | None:
        if self.snapshot is None:
            return None
        return next((e for e in self.snapshot.escalations if e.escalation_id == escalation_id), None)

    def _undecided(self, esc: EscalationView) -> EscalationView | None:
        """The live view of a still-pending escalation this dashboard has not decided yet, else
        None (and says why): a second press while the snapshot catches up sends nothing."""
        esc = self._escalation(esc.escalation_id) or esc
        if esc.state != "pending":
            self.notify(f"{esc.escalation_id} is {esc.state}, not pending", severity="warning", markup=False)
            return None
        if esc.escalation_id in self.decided:
            self.notify(f"{self.decided[esc.escalation_id]} already sent for {esc.escalation_id}; waiting for "
                        "the supervisor", severity="information", markup=False)
            return None
        return esc

    def _decide(self, escalation_id: str, kind: CommandKind) -> Callable[[], None]:
        return lambda: self.decided.__setitem__(escalation_id, kind.value)

    def approve_escalation(self, esc: EscalationView, *, override_budget: bool) -> None:
        """Approve as shown; over budget only with ``override_budget``, and only after asking."""
        live = self._undecided(esc)
        if live is None:
            return
        esc = live
        if not override_budget:
            from galaxy_tui.review import over_budget

            if over_budget(esc):
                self.notify(f"${esc.est_cost_usd:.4f} is over today's budget left (${esc.budget_left_usd:.4f}): "
                            "press o to approve over budget", severity="warning", markup=False)
                return
            self.send(CommandKind.APPROVE, esc.escalation_id, override_budget=False,
                      on_sent=self._decide(esc.escalation_id, CommandKind.APPROVE))
            return
        left = "unknown" if esc.budget_left_usd is None else f"${esc.budget_left_usd:.4f}"
        self.confirm(f"Approve {esc.escalation_id} OVER today's budget?\nUp to ${esc.est_cost_usd:.4f} "
                     f"(at the output cap) against {left} left; it is sent to {esc.provider}/{esc.model} now.",
                     "Approve over budget",
                     lambda: self.send(CommandKind.APPROVE, esc.escalation_id, override_budget=True,
                                       on_sent=self._decide(esc.escalation_id, CommandKind.APPROVE)))

    def deny_escalation(self, esc: EscalationView) -> None:
        live = self._undecided(esc)
        if live is None:
            return
        esc = live
        from galaxy_tui.screens.confirm import ReasonScreen

        def done(reason: str | None) -> None:
            if reason:
                self.send(CommandKind.DENY, esc.escalation_id, reason=reason,
                          on_sent=self._decide(esc.escalation_id, CommandKind.DENY))
        self.push_screen(ReasonScreen(f"Deny escalation {esc.escalation_id} of task {esc.task_id}: why?"), done)

    def _panel_escalation(self) -> EscalationView | None:
        """The escalation a/d on the main screen act on: the panel's highlighted one when the panel
        has focus. Otherwise a/d open the review first: nobody approves what is not on screen."""
        esc = self.selected_escalation()
        if esc is None or esc.state != "pending":
            from galaxy_tui.screens.review import pending_of

            if pending_of(self.snapshot):
                self.action_review_pending()
            else:
                self.notify("no approvals pending", severity="information")
            return None
        if not isinstance(self.focused, EscalationsTable):
            self.open_review(esc.escalation_id)
            return None
        return esc

    def action_approve(self) -> None:
        esc = self._panel_escalation()
        if esc is not None:
            self.approve_escalation(esc, override_budget=False)

    def action_deny(self) -> None:
        esc = self._panel_escalation()
        if esc is not None:
            self.deny_escalation(esc)

    def open_review(self, escalation_id: str) -> None:
        esc = self._escalation(escalation_id)
        if esc is None:
            self.notify(f"{escalation_id} is no longer in the snapshot", severity="warning", markup=False)
            return
        from galaxy_tui.screens.review import ReviewScreen

        screen = ReviewScreen(esc, self.root)
        if isinstance(self.screen, ReviewScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def action_review_pending(self) -> None:
        """From anywhere: the review screen of the oldest pending escalation."""
        from galaxy_tui.screens.review import pending_of

        pending = pending_of(self.snapshot)
        if not pending:
            self.notify("no approvals pending", severity="information")
            return
        self.open_review(pending[0].escalation_id)

    def action_escalations(self) -> None:
        from galaxy_tui.screens.escalations import EscalationsScreen

        if not isinstance(self.screen, EscalationsScreen):
            self.push_screen(EscalationsScreen(self.root))
