"""The worker lifecycle as one pure function: ``transition(record, event, policy)``.

The supervisor feeds it events (spawned, heartbeat seen, exited, operator commands,
thermal hot/cool, backoff time reached, shutdown) and carries out the actions it returns
(spawn, terminate, write the control file). Keeping it pure makes every restart/backoff/
fatal rule testable with plain values and no processes.

States: starting (spawned, no heartbeat yet), running, paused (operator pause or thermal
hold: takes nothing new, the running task continues), draining (finish the task, then
exit), backoff (crashed; respawn at ``backoff_until``), stopping (told to exit),
stopped, fatal (too many fast crashes; needs ``restart``/``resume`` from the operator).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from engine.commands import CommandKind
from engine.workerstate import ControlMode


class WState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    DRAINING = "draining"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FATAL = "fatal"


ALIVE = {WState.STARTING, WState.RUNNING, WState.PAUSED, WState.DRAINING, WState.STOPPING}
"""States in which a process exists (the supervisor polls it)."""

SPAWN = "spawn"
TERMINATE = "terminate"
WRITE_CONTROL = "write_control"


@dataclass(frozen=True)
class RestartPolicy:
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    fast_crash_s: float = 30.0
    max_fast_crashes: int = 5

    def delay(self, consecutive: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * (2.0 ** max(0, consecutive - 1)))


@dataclass(frozen=True)
class WorkerRecord:
    state: WState = WState.STOPPED
    reason: str | None = None
    mode: ControlMode = ControlMode.RUN  # operator intent
    thermal_hold: bool = False
    restarts: int = 0
    consecutive_crashes: int = 0  # crashes in a row, each soon after its spawn
    backoff_until: float | None = None
    spawned_at: float | None = None
    last_heartbeat: float | None = None
    restart_pending: bool = False
    stop_requested: bool = False
    last_exit_code: int | None = None


# ---------------------------------------------------------------- events

@dataclass(frozen=True)
class Start:
    """The supervisor starts: spawn the worker."""


@dataclass(frozen=True)
class Spawned:
    now: float


@dataclass(frozen=True)
class HeartbeatSeen:
    at: float


@dataclass(frozen=True)
class Exited:
    code: int
    uptime_s: float
    now: float


@dataclass(frozen=True)
class TimeReached:
    now: float


@dataclass(frozen=True)
class OperatorCommand:
    kind: CommandKind  # pause | resume | drain | restart


@dataclass(frozen=True)
class ThermalHot:
    detail: str = ""


@dataclass(frozen=True)
class ThermalCool:
    pass


@dataclass(frozen=True)
class Shutdown:
    pass


Event = Start | Spawned | HeartbeatSeen | Exited | TimeReached | OperatorCommand | ThermalHot | ThermalCool | Shutdown


@dataclass(frozen=True)
class Transition:
    record: WorkerRecord
    actions: tuple[str, ...] = ()
    refused: str | None = None  # why a command could not apply (goes into its ack)
    note: str | None = None  # what happened, for the log


def _live(r: WorkerRecord) -> WorkerRecord:
    """The state of a worker whose process is up and has reported, from intent + thermal hold."""
    if r.stop_requested or r.restart_pending:
        return replace(r, state=WState.STOPPING)
    if r.mode == ControlMode.DRAIN:
        return replace(r, state=WState.DRAINING, reason="draining: finishes its task, then stops")
    if r.mode == ControlMode.PAUSE:
        return replace(r, state=WState.PAUSED, reason="paused by operator")
    if r.thermal_hold:
        return replace(r, state=WState.PAUSED, reason="thermal hold: card over temperature")
    return replace(r, state=WState.RUNNING, reason=None)


def _spawn(r: WorkerRecord, reason: str, *, count_restart: bool) -> Transition:
    rec = replace(r, state=WState.STARTING, reason=reason, backoff_until=None, restart_pending=False,
                  restarts=r.restarts + (1 if count_restart else 0))
    return Transition(rec, (SPAWN,), note=reason)


def transition(r: WorkerRecord, ev: Event, policy: RestartPolicy) -> Transition:
    if isinstance(ev, Start):
        if r.state in ALIVE:
            return Transition(r)
        return _spawn(replace(r, stop_requested=False), "starting", count_restart=False)

    if isinstance(ev, Spawned):
        return Transition(replace(r, state=WState.STARTING, spawned_at=ev.now, last_heartbeat=None,
                                  reason="started; waiting for its first heartbeat"), (WRITE_CONTROL,))

    if isinstance(ev, HeartbeatSeen):
        rec = replace(r, last_heartbeat=ev.at)
        if r.state is WState.STARTING:
            rec = _live(replace(rec, consecutive_crashes=r.consecutive_crashes))
            return Transition(rec, note="first heartbeat")
        return Transition(rec)

    if isinstance(ev, Exited):
        return _on_exit(r, ev, policy)

    if isinstance(ev, TimeReached):
        if r.state is WState.BACKOFF and r.backoff_until is not None and ev.now >= r.backoff_until:
            return _spawn(r, f"restarting after backoff (restart #{r.restarts + 1})", count_restart=True)
        return Transition(r)

    if isinstance(ev, ThermalHot):
        rec = replace(r, thermal_hold=True)
        rec = _live(rec) if r.state in (WState.RUNNING, WState.PAUSED) else rec
        if ev.detail and rec.state is WState.PAUSED and r.mode == ControlMode.RUN:
            rec = replace(rec, reason=f"thermal hold: {ev.detail}")
        return Transition(rec, (WRITE_CONTROL,), note=f"thermal hold on ({ev.detail})")

    if isinstance(ev, ThermalCool):
        rec = replace(r, thermal_hold=False)
        rec = _live(rec) if r.state in (WState.RUNNING, WState.PAUSED) else rec
        return Transition(rec, (WRITE_CONTROL,), note="thermal hold off")

    if isinstance(ev, Shutdown):
        if r.state in ALIVE:
            return Transition(replace(r, stop_requested=True, state=WState.STOPPING, reason="stopping (shutdown)"),
                              (TERMINATE,))
        return Transition(replace(r, stop_requested=True, state=WState.STOPPED, reason="stopped (shutdown)",
                                  backoff_until=None))

    if isinstance(ev, OperatorCommand):
        return _on_command(r, ev.kind)

    raise TypeError(f"unknown event {ev!r}")


def _on_exit(r: WorkerRecord, ev: Exited, policy: RestartPolicy) -> Transition:
    base = replace(r, last_exit_code=ev.code, spawned_at=None)
    if r.stop_requested:
        return Transition(replace(base, state=WState.STOPPED, reason=f"stopped (shutdown, exit code {ev.code})"))
    if r.restart_pending:
        return _spawn(replace(base, consecutive_crashes=0), "restarting on operator request", count_restart=True)
    if r.mode == ControlMode.DRAIN:
        return Transition(replace(base, state=WState.STOPPED, mode=ControlMode.RUN,
                                  reason=f"drained (exit code {ev.code}); 'resume' starts it again"))
    fast = ev.uptime_s < policy.fast_crash_s
    crashes = r.consecutive_crashes + 1 if fast else 1
    what = f"exited with code {ev.code} after {ev.uptime_s:.1f}s"
    if fast and crashes >= policy.max_fast_crashes:
        reason = (f"fatal: {what}; {crashes} crashes in a row within {policy.fast_crash_s:.0f}s of starting. "
                  "Not restarting: fix the cause, then 'galaxy restart' it")
        return Transition(replace(base, state=WState.FATAL, consecutive_crashes=crashes, reason=reason,
                                  backoff_until=None), note=reason)
    delay = policy.delay(crashes)
    rec = replace(base, state=WState.BACKOFF, consecutive_crashes=crashes, backoff_until=ev.now + delay,
                  reason=f"{what}; restarting in {delay:.1f}s")
    return Transition(rec, note=rec.reason)


def _on_command(r: WorkerRecord, kind: CommandKind) -> Transition:
    alive = r.state in ALIVE
    if r.stop_requested:
        return Transition(r, refused="the supervisor is shutting down")
    if kind == CommandKind.PAUSE:
        if r.state in (WState.STOPPED, WState.FATAL):
            return Transition(r, refused=f"worker is {r.state.value}; nothing to pause")
        rec = replace(r, mode=ControlMode.PAUSE)
        rec = _live(rec) if r.state in (WState.RUNNING, WState.DRAINING, WState.PAUSED) else rec
        return Transition(rec, (WRITE_CONTROL,), note="paused by operator")
    if kind == CommandKind.RESUME:
        rec = replace(r, mode=ControlMode.RUN)
        if r.state in (WState.STOPPED, WState.FATAL, WState.BACKOFF):
            return _spawn(replace(rec, consecutive_crashes=0), "starting on operator resume", count_restart=False)
        rec = _live(rec) if r.state in (WState.RUNNING, WState.DRAINING, WState.PAUSED) else rec
        return Transition(rec, (WRITE_CONTROL,), note="resumed by operator")
    if kind == CommandKind.DRAIN:
        if r.state in (WState.STOPPED, WState.FATAL):
            return Transition(r, refused=f"worker is already {r.state.value}")
        if r.state is WState.BACKOFF:
            return Transition(replace(r, state=WState.STOPPED, backoff_until=None,
                                      reason="drained while in backoff; 'resume' starts it again"))
        rec = replace(r, mode=ControlMode.DRAIN)
        rec = _live(rec) if alive and r.state is not WState.STARTING else replace(rec, reason="draining after start")
        return Transition(rec, (WRITE_CONTROL,), note="draining")
    if kind == CommandKind.RESTART:
        if alive:
            rec = replace(r, restart_pending=True, mode=ControlMode.RUN, state=WState.STOPPING,
                          reason="restarting on operator request")
            return Transition(rec, (WRITE_CONTROL, TERMINATE), note="restart requested")
        return _spawn(replace(r, mode=ControlMode.RUN, consecutive_crashes=0), "restarting on operator request",
                      count_restart=True)
    return Transition(r, refused=f"unknown worker command {kind!r}")
