"""The top bar (rig, freshness, store unreachable, SIMULATED, READ-ONLY, supervisor pid and uptime), the approvals
banner and the alert banner. Text from the rig (alert messages, ids) goes in as data, never markup."""

from __future__ import annotations

from textual.content import Content

from engine.snapshot import Snapshot
from galaxy_tui.render import fmt_clock, fmt_duration
from galaxy_tui.widgets.text_panel import TextPanel


class TopBar(TextPanel):
    """One line that always says what you are looking at and whether it is live."""

    def show(self, snap: Snapshot | None, *, stale_since: float | None, read_only: bool,
             error: str | None) -> None:
        parts: list[tuple[str, str] | str] = [(" galaxy ", "bold reverse $primary")]
        if read_only:  # first, so it survives the narrowest terminal
            parts += [" ", (" READ-ONLY ", "bold reverse $secondary")]
        if snap is None:
            parts += [" ", (error or "waiting for the supervisor's first snapshot…", "$warning")]
        else:
            if stale_since is not None:
                parts += [" ", (f" STALE since {fmt_clock(stale_since)} ", "bold reverse $error")]
            else:
                parts += [" ", (f"live {fmt_clock(snap.taken_at)}", "$success")]
            if snap.store_unreachable_since is not None:  # its workers keep results, claim nothing
                parts += [" ", (f" store unreachable since {fmt_clock(snap.store_unreachable_since)} ",
                                "bold reverse $error")]
            if snap.simulated:
                parts += [" ", (" SIMULATED ", "bold reverse $warning")]
            parts += [" ", (snap.rig, "bold"), " ", supervisor_part(snap)]
            if len(snap.rigs) > 1:  # a cluster view: the queue is the store's; the cards are every rig's
                stale = sum(r.stale for r in snap.rigs)
                parts += ["  ", (f"{len(snap.rigs)} rigs", "bold")]
                if stale:
                    parts += [" ", (f"{stale} STALE", "bold $warning")]
            parts += ["  ", (f"#{snap.seq}", "$text-muted"), "  ", (snap.telemetry_status, "$text-muted")]
            if error:
                parts += ["  ", (error, "$error")]
        self.update_lines([parts])


def supervisor_part(snap: Snapshot) -> tuple[str, str]:
    """"pid 4242 up 2h03": which supervisor wrote this picture and for how long it has run
    (uptime by the snapshot's own clock, so a frozen picture does not count up)."""
    pid = "pid ?" if snap.supervisor_pid is None else f"pid {snap.supervisor_pid}"
    up = "" if snap.started_at is None else f" up {fmt_duration(snap.taken_at - snap.started_at)}"
    return (pid + up, "$text-muted")


class ApprovalBanner(TextPanel):
    """"N approvals pending": one line under the top bar in every layout while any wait."""

    def show(self, snap: Snapshot | None) -> None:
        pending = sorted((e for e in snap.escalations if e.state == "pending"), key=lambda e: e.created_at) \
            if snap else []
        if self.display != bool(pending):
            self.display = bool(pending)
        if not pending:
            return
        first = pending[0]
        n = len(pending)
        expiry = ""
        if first.expires_at is not None and snap is not None:
            left = first.expires_at - snap.taken_at
            expiry = f", expires in {fmt_duration(left)}" if left > 0 else ", expired"
        self.update(Content.assemble((f" {n} approval{'s' if n != 1 else ''} pending ", "bold reverse"),
                                     ("  e", "bold"), " review", ("  ·  oldest: ", ""), (first.task_id, "bold"),
                                     f" → {first.provider}/{first.model} ≤ ${first.est_cost_usd:.3f}{expiry}"))


class AlertBanner(TextPanel):
    """Critical and warning alerts, top of the screen, hidden when there are none."""

    def show(self, snap: Snapshot | None) -> None:
        alerts = list(snap.alerts) if snap else []
        if self.display != bool(alerts):
            self.display = bool(alerts)
        if not alerts:
            return
        crit = any(a.severity == "critical" for a in alerts)
        self.set_class(crit, "-critical")
        alerts.sort(key=lambda a: (a.severity != "critical", a.since))
        lines = []
        shown = alerts[:2]  # two lines at most: the GPUs must stay on an 80x24 screen
        for i, a in enumerate(shown):
            mark = "!! " if a.severity == "critical" else " ! "
            more = f"  (+{len(alerts) - len(shown)} more)" if i == len(shown) - 1 and len(alerts) > len(shown) else ""
            lines.append(Content.assemble((mark + a.severity.upper(), "bold"), f" {fmt_clock(a.since)}  ",
                                          a.message, (more, "italic")))
        self.update(Content("\n").join(lines))
