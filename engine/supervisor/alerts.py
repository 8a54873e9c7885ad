"""Alerts that mean something: a condition must hold for a sustained window before it is
raised, and be gone for a clear window before it is dropped (hysteresis), so one hot
sample or one slow heartbeat never pages anyone.

Pure: the supervisor computes the conditions each tick and passes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.snapshot import AlertView


@dataclass(frozen=True)
class Condition:
    key: str  # stable id: "gpu_hot:1", "crash_loop:w1", "task_failures:llm", "stall", "worker_silent:w2"
    active: bool
    severity: str = "warning"  # warning | critical
    message: str = ""
    subject: str | None = None
    raise_after_s: float = 30.0
    clear_after_s: float = 30.0


@dataclass
class _Track:
    active_since: float | None = None
    inactive_since: float | None = None
    raised_at: float | None = None
    severity: str = "warning"
    message: str = ""
    subject: str | None = None


@dataclass
class AlertEngine:
    tracks: dict[str, _Track] = field(default_factory=dict)

    def evaluate(self, conditions: list[Condition], now: float) -> tuple[AlertView, ...]:
        seen = set()
        for c in conditions:
            seen.add(c.key)
            t = self.tracks.setdefault(c.key, _Track())
            self._step(t, c, now)
        for key, t in list(self.tracks.items()):
            if key not in seen:  # its subject went away (worker removed): treat as inactive
                self._step(t, Condition(key, False, clear_after_s=0.0), now)
            if t.raised_at is None and t.active_since is None:
                del self.tracks[key]
        return tuple(sorted((AlertView(key=k, severity=t.severity, message=t.message, since=t.raised_at,
                                       subject=t.subject)
                             for k, t in self.tracks.items() if t.raised_at is not None),
                            key=lambda a: (a.severity != "critical", a.since, a.key)))

    @staticmethod
    def _step(t: _Track, c: Condition, now: float) -> None:
        if c.active:
            t.inactive_since = None
            if t.active_since is None:
                t.active_since = now
            t.severity, t.subject = c.severity, c.subject
            if c.message:
                t.message = c.message
            if t.raised_at is None and now - t.active_since >= c.raise_after_s:
                t.raised_at = now
        else:
            t.active_since = None if t.raised_at is None else t.active_since
            if t.raised_at is None:
                return
            if t.inactive_since is None:
                t.inactive_since = now
            if now - t.inactive_since >= c.clear_after_s:
                t.raised_at = None
                t.active_since = None
                t.inactive_since = None
