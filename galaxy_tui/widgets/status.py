"""The top bar (rig, freshness, SIMULATED, READ-ONLY) and the alert banner."""

from __future__ import annotations

from textual.content import Content
from galaxy_tui.widgets.text_panel import TextPanel

from engine.snapshot import Snapshot
from galaxy_tui.render import fmt_clock


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
            if snap.simulated:
                parts += [" ", (" SIMULATED ", "bold reverse $warning")]
            parts += [" ", (snap.rig, "bold"), "  ", (f"#{snap.seq}", "$text-muted"), "  ",
                      (snap.telemetry_status, "$text-muted")]
            if error:
                parts += ["  ", (error, "$error")]
        self.update(Content.assemble(*parts))


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
