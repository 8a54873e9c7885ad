"""The supervisor: one worker subprocess per GPU group, driven by ``tick(now)``.

Each tick: notice exits and heartbeats, run the pure state machine, restart after
backoff, reap stale leases and promote due retries, sample telemetry, apply the thermal
guard, apply operator commands, evaluate alerts and write the snapshot. Everything is
per-worker and guarded, so one worker failing never touches the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from engine.commands import Command, CommandKind
from engine.config import GalaxyConfig, GroupConfig
from engine.logsetup import rotate_if_over, worker_log_env
from engine.paths import RigPaths
from engine.queue.protocol import StoreUnavailable, TaskQueue
from engine.snapshot import EventView, HostView
from engine.store.open import Channels, file_channels, store_env
from engine.store.outage import Change, RetryPolicy, StoreOutage, describe
from engine.store.retention import CompletedRetention
from engine.supervisor import states as S
from engine.supervisor.alerts import AlertEngine
from engine.supervisor.command_processor import CommandProcessor, Outcome
from engine.supervisor.launcher import LaunchSpec, ProcessHandle, ProcessLauncher, worker_argv, worker_env
from engine.supervisor.model_demand import ModelDemand, rig_demand
from engine.supervisor.orphans import OrphanSweeper
from engine.supervisor.snapshot_builder import WorkerInfo
from engine.supervisor.snapshot_writer import SnapshotWriter
from engine.supervisor.thermal import ThermalGuard
from engine.supervisor.write_health import LostLines
from engine.taskgroups import TaskGroups
from engine.telemetry.protocol import GpuProbe, GpuSample
from engine.workerstate import ControlMode, WorkerControl, WorkerStatus, read_status, write_json_dataclass

LogFn = Callable[..., None]
ArgvBuilder = Callable[..., tuple[str, ...]]
"""(group, root, *, endpoint, backend, lease_s) -> argv; ``launcher.worker_argv`` by default."""
WORKER_COMMANDS = {"pause", "resume", "drain", "restart"}


class CloudTierLike(Protocol):
    """Routing and escalation (engine.escalation.cloud_tier.CloudTier)."""

    def register(self, processor: CommandProcessor) -> None: ...

    def tick(self, now: float) -> None: ...

    def snapshot_extras(self, now: float) -> dict[str, Any]: ...

    def worker_env(self) -> dict[str, str]:
        """The environment workers need to park a task that qualifies for escalation at its failure."""
        ...

    def close(self) -> None: ...


class HostSampler(Protocol):
    def sample(self) -> Any: ...  # has .view() -> HostView (engine.telemetry.host.HostSample)


class RigDriver(Protocol):
    """Sim mode only: feeds worker activity into the simulated rig before each sample."""

    def drive(self, workers: Sequence[WorkerInfo], now: float) -> None: ...

    def galaxy_pids(self, samples: Sequence[GpuSample] = ()) -> set[int]: ...


@dataclass
class WorkerSlot:
    group: GroupConfig
    record: S.WorkerRecord = field(default_factory=S.WorkerRecord)
    proc: ProcessHandle | None = None
    endpoint: str | None = None
    backend: str | None = None
    control_seq: int = 0
    unload_seq: int = 0
    status: WorkerStatus | None = None
    status_mtime_ns: tuple[int, int, int] = (0, 0, 0)
    terminate_sent_at: float | None = None
    instance: str | None = None  # the running process's instance, as its claims name it
    rig: str | None = None  # the rig it runs on: tasks pinned to another rig are not for it

    @property
    def worker_id(self) -> str:
        return self.group.name

    def info(self) -> WorkerInfo:
        return WorkerInfo(group=self.group, record=self.record, pid=self.proc.pid if self.proc else None,
                          status=self.status, endpoint=self.endpoint, backend=self.backend, rig=self.rig)


def _silent(*_a: Any, **_k: Any) -> None:
    return None


def _log_name(store_kind: str, path: Path) -> str:
    """What a lost-lines alert names: the file, or the store's stream."""
    return str(path) if store_kind == "file" else f"{path.stem} stream of the {store_kind} store"


class Supervisor:
    def __init__(self, config: GalaxyConfig, paths: RigPaths, queue: TaskQueue, probe: GpuProbe,
                 launcher: ProcessLauncher, *, host: HostSampler | None = None, simulated: bool = False,
                 endpoints: dict[str, tuple[str, str]] | None = None, rig_driver: RigDriver | None = None,
                 events_tail: Callable[[int], Sequence[EventView]] | None = None, log: LogFn = _silent,
                 pid: int | None = None, argv_for: ArgvBuilder | None = None,
                 cloud: CloudTierLike | None = None, demand: ModelDemand | None = None,
                 groups: TaskGroups | None = None, channels: Channels | None = None,
                 retention: CompletedRetention | None = None) -> None:
        self.config, self.paths, self.queue, self.probe = config, paths, queue, probe
        self.channels = channels if channels is not None else file_channels(paths, config.rig)
        self.launcher, self.host, self.rig_driver, self.log = launcher, host, rig_driver, log
        self.argv_for: ArgvBuilder = argv_for or worker_argv
        th = config.thresholds
        self.policy = S.RestartPolicy(th.restart_backoff_s, th.restart_backoff_max_s, th.fast_crash_s,
                                      th.max_fast_crashes)
        self.slots: dict[str, WorkerSlot] = {}
        for g in config.groups:
            backend, endpoint = (endpoints or {}).get(g.name, (g.backend, g.endpoint or ""))
            self.slots[g.name] = WorkerSlot(group=g, endpoint=endpoint or None, backend=backend, rig=config.rig)
        self.groups = groups if groups is not None else TaskGroups(paths)
        self.orphans = OrphanSweeper(queue, self.groups, frozenset(self.slots), log)
        self.thermal = ThermalGuard(th.temp_hot_c, th.temp_resume_c)
        self.alerts = AlertEngine()
        self.commands = CommandProcessor(self.channels.commands, self.channels.audit)
        self.store_outage = StoreOutage(RetryPolicy(base_s=1.0, cap_s=10.0))
        """Whether the store answers; while it does not, the tick skips the store's work until a retry is due."""
        self.retention = retention
        """Old completed records pruned with the store's work (a Redis store; None: kept)."""
        self.cloud = cloud
        shared = self.channels.events if self.channels.kind != "file" else None  # the file: read by name, rotations too
        self.demand = demand if demand is not None else rig_demand(config, paths, queue, stream=shared)
        self.writer = SnapshotWriter(config, paths, queue, probe, simulated=simulated, events_tail=events_tail,
                                     pid=pid if pid is not None else os.getpid(),
                                     extras=cloud.snapshot_extras if cloud is not None else None,
                                     demand=self.demand.view, log=log, snapshots=self.channels.snapshots,
                                     store_outage=self.store_outage, lost_lines=(
                                         LostLines("events", _log_name(self.channels.kind, paths.events),
                                                   lambda: self.channels.events.write_errors),
                                         LostLines("audit", _log_name(self.channels.kind, paths.audit),
                                                   lambda: self.channels.audit.errors)))
        self.stop_requested = False
        self.samples: list[GpuSample] = []
        self.host_view = HostView()
        self._last_host_at = float("-inf")
        self._now = 0.0
        self._register_commands()
        if cloud is not None:
            cloud.register(self.commands)

    # ------------------------------------------------------------ lifecycle
    def start(self, now: float) -> None:
        self.paths.ensure()
        self.writer.started_at = now
        self.log("supervisor starting", rig=self.config.rig, config=self.config.origin,
                 telemetry=self.probe.status().detail, workers=[g.name for g in self.config.groups])
        self._sweep_orphans(now, force=True)  # claims of a crashed rig's workers: back now, not after a lease
        for slot in self.slots.values():
            self._write_control(slot)
            self._event(slot, S.Start(), now)

    def begin_shutdown(self, now: float, reason: str = "shutdown requested") -> None:
        if self.stop_requested:
            return
        self.stop_requested = True
        self.log("supervisor stopping", reason=reason)
        for slot in self.slots.values():
            self._event(slot, S.Shutdown(), now)

    def all_stopped(self) -> bool:
        return all(s.record.state not in S.ALIVE for s in self.slots.values())

    def finish_shutdown(self, now: float) -> None:
        """After every worker exited (or was killed): write the last snapshot."""
        self.tick(now, force_snapshot=True)
        if self.cloud is not None:
            self.cloud.close()
        self.probe.close()
        self.log("supervisor stopped")

    # ------------------------------------------------------------ the tick
    def tick(self, now: float, *, force_snapshot: bool = False) -> None:
        self._now = now
        for slot in self.slots.values():
            self._guard(slot, "watch", partial(self._watch, slot, now))
        store_due = self.store_outage.due(now)  # while the store does not answer: only when a retry is due
        if store_due:
            self._queue_maintenance(now)  # first: it tells whether the store answers
        if store_due and not self.store_outage.down:
            self._sweep_orphans(now)
        if self.cloud is not None and not self.store_outage.down:
            try:
                self.cloud.tick(now)
            except StoreUnavailable as exc:
                self._store_failed(now, exc)
            except Exception as exc:  # noqa: BLE001 - routing/escalation trouble never stops the rig
                self.log("cloud tier tick failed", error=f"{type(exc).__name__}: {exc}")
        self._sample(now)
        self._apply_thermal()
        acks = []
        if not self.store_outage.down:
            try:  # each file is guarded inside; this catches the directory itself going wrong
                acks = self.commands.process(now)
            except StoreUnavailable as exc:
                self._store_failed(now, exc)
            except Exception as exc:  # noqa: BLE001 - the command channel never stops the rig
                self.log("command processing failed", error=f"{type(exc).__name__}: {exc}")
        for ack in acks:
            self.log("command", kind=ack.kind, target=ack.target, outcome=ack.outcome, message=ack.message,
                     source=ack.source)
        infos = [s.info() for s in self.slots.values()]
        self.writer.maybe_write(now, infos, self.samples, self.thermal.held, self.host_view,
                                self.commands.recent_acks(), self.alerts, self._galaxy_pids(),
                                force=force_snapshot)

    def _watch(self, slot: WorkerSlot, now: float) -> None:
        proc = slot.proc
        if proc is not None:
            code = proc.poll()
            if code is not None:
                uptime = now - (slot.record.spawned_at or now)
                self._recover_tasks(slot, code, now)
                slot.proc, slot.terminate_sent_at = None, None
                self.log("worker exited", worker=slot.worker_id, code=code, uptime_s=round(uptime, 2))
                self._event(slot, S.Exited(code, uptime, now), now)
            elif slot.terminate_sent_at is not None and \
                    now - slot.terminate_sent_at > self.config.thresholds.shutdown_grace_s:
                self.log("worker did not stop in time; killing", worker=slot.worker_id, pid=proc.pid)
                proc.kill()
        self._read_status(slot, now)
        if slot.record.state is S.WState.BACKOFF:
            self._event(slot, S.TimeReached(now), now)

    def _read_status(self, slot: WorkerSlot, now: float) -> None:
        path = self.paths.worker_status(slot.worker_id)
        try:
            st_ = path.stat()
        except FileNotFoundError:
            return
        # Written by rename, so a new inode each time: two writes within one mtime tick still differ.
        mtime = (st_.st_ino, st_.st_mtime_ns, st_.st_size)
        if mtime == slot.status_mtime_ns:
            return
        st = read_status(path)
        slot.status_mtime_ns = mtime  # a bad file is read once, not on every tick until it changes
        if st is None:  # foreign junk (FIFO, link, bad JSON): keep the last good one, say so once
            self.log("worker status file unreadable; keeping the last one", worker=slot.worker_id)
            return
        slot.status = st
        if slot.proc is not None and st.pid == slot.proc.pid:
            self._event(slot, S.HeartbeatSeen(st.heartbeat_at), now)

    def _recover_tasks(self, slot: WorkerSlot, code: int, now: float) -> None:
        """A worker that died holding tasks: kill their process groups, then give them back
        now instead of at lease expiry.

        After a crash the attempt is charged (``fail``, retried with backoff); after a
        shutdown or operator restart it is handed back untouched (``release``). The queue's
        processing claims name their owner and its instance, so they alone say what it held:
        its last status may still show a task it had already finished."""
        ids: dict[str, str] = {}
        try:
            ids = {c.task_id: c.instance for c in self.queue.claims(slot.worker_id)
                   if self._held_by(slot, c.instance)}
            dead = self.groups.kill_dead(worker_id=slot.worker_id)  # every group the dead process left running
            if dead.survivors:
                self.log("task processes survived SIGKILL", worker=slot.worker_id, pids=list(dead.survivors))
        except OSError as exc:
            self.log("could not list processing tasks", error=str(exc))
        planned = slot.record.stop_requested or slot.record.restart_pending
        for task_id, instance in sorted(ids.items()):
            try:
                self.groups.kill_claim(task_id, slot.worker_id, instance)  # before the task is offered again
                if planned:
                    self.queue.release(task_id, slot.worker_id, now, f"worker {slot.worker_id} stopped")
                else:
                    self.queue.fail(task_id, slot.worker_id, f"worker {slot.worker_id} exited with code {code}",
                                    now, retryable=True, return_code=code)
                self.log("task recovered from exited worker", task_id=task_id, worker=slot.worker_id)
            except Exception as exc:  # noqa: BLE001 - already completed/reaped elsewhere is fine
                self.log("task recovery skipped", task_id=task_id, error=str(exc))

    def _held_by(self, slot: WorkerSlot, instance: str) -> bool:
        """Was a claim with this instance the exited process's? (Another live process of the same
        worker id, say one still stopping after a supervisor restart, keeps its claims; so does a
        worker of the same name on another rig of a shared store: this host cannot see it die.)"""
        if not instance or instance == slot.instance:
            return True
        if not slot.instance:  # its instance unknown: any claim of its name (on a shared store: made on this host)
            return self.channels.kind == "file" or self.groups.procs.is_local(instance)
        return self.groups.procs.instance_alive(instance) is False

    def _sweep_orphans(self, now: float, *, force: bool = False) -> None:
        live = {s.instance for s in self.slots.values() if s.proc is not None and s.instance}
        try:
            self.orphans.sweep(now, live, force=force)
        except Exception as exc:  # noqa: BLE001 - a queue hiccup must not stop the supervisor
            self.log("sweeping claims of gone workers failed", error=f"{type(exc).__name__}: {exc}")

    def _queue_maintenance(self, now: float) -> None:
        steps: tuple[tuple[str, Callable[[float], list[str]]], ...] = (
            ("reap_stale", self.queue.reap_stale), ("promote_due", self.queue.promote_due))
        if self.retention is not None:
            steps += (("prune_completed", self.retention.tick),)
        for name, step in steps:
            try:
                moved = step(now)
            except StoreUnavailable as exc:  # logged once per change, tried again when due
                self._store_failed(now, exc)
                return
            except Exception as exc:  # noqa: BLE001 - a queue hiccup must not stop the supervisor
                self.log("queue maintenance failed", step=name, error=f"{type(exc).__name__}: {exc}")
                continue
            if moved:
                self.log(f"queue {name}", tasks=list(moved)[:20], count=len(moved))
        change = self.store_outage.answered(now)
        if change is not None:
            self._store_changed(change, now)

    def _store_failed(self, now: float, exc: OSError) -> None:
        change = self.store_outage.failed(now, f"{type(exc).__name__}: {exc}")
        if change is not None:
            self._store_changed(change, now)

    def _store_changed(self, change: Change, now: float) -> None:
        """One log line per change of the store's state, not one per tick."""
        self.log(describe(change, now, effect="; workers keep their results, the tick goes on"),
                 store_down=change.down)

    def _sample(self, now: float) -> None:
        if self.rig_driver is not None:
            self.rig_driver.drive([s.info() for s in self.slots.values()], now)
        try:
            self.samples = list(self.probe.sample())
        except Exception as exc:  # noqa: BLE001 - telemetry never takes the supervisor down
            self.log("telemetry sample failed", error=str(exc))
            self.samples = []
        if self.host is not None and now - self._last_host_at >= 2.0:
            self._last_host_at = now
            try:
                self.host_view = self.host.sample().view()
            except Exception:  # noqa: BLE001
                self.host_view = HostView()

    def _apply_thermal(self) -> None:
        temps = {s.index: s.temp_c for s in self.samples if getattr(s, "error", None) is None}
        hot, cool = self.thermal.update(temps)
        if not hot and not cool:
            return
        for idx in sorted(hot):
            self.log("thermal hold", gpu=idx, temp_c=temps.get(idx), hot_c=self.thermal.hot_c)
        for idx in sorted(cool):
            self.log("thermal release", gpu=idx, temp_c=temps.get(idx), resume_c=self.thermal.resume_c)
        for slot in self.slots.values():
            gpus = set(slot.group.gpus)
            now = self._now
            if gpus & hot and not slot.record.thermal_hold:
                detail = ", ".join(f"GPU {g} at {temps.get(g)} C" for g in sorted(gpus & hot))
                self._event(slot, S.ThermalHot(detail), now)
            elif gpus & cool and slot.record.thermal_hold and not self.thermal.holds_any(slot.group.gpus):
                self._event(slot, S.ThermalCool(), now)

    # ------------------------------------------------------------ effects
    def _event(self, slot: WorkerSlot, ev: S.Event, now: float) -> S.Transition:
        t = S.transition(slot.record, ev, self.policy)
        slot.record = t.record
        if (t.note and not isinstance(ev, (S.HeartbeatSeen, S.TimeReached))) or (t.note and t.actions):
            self.log("worker state", worker=slot.worker_id, state=t.record.state.value, note=t.note)
        for action in t.actions:
            if action == S.WRITE_CONTROL:
                self._write_control(slot)
            elif action == S.TERMINATE and slot.proc is not None:
                slot.proc.terminate()
                slot.terminate_sent_at = now
            elif action == S.SPAWN:
                self._spawn(slot, now)
        return t

    def _spawn(self, slot: WorkerSlot, now: float) -> None:
        g = slot.group
        th = self.config.thresholds
        argv = self.argv_for(g, self.paths.root, endpoint=slot.endpoint, backend=slot.backend,
                             lease_s=th.lease_s, grace_s=round(th.shutdown_grace_s * 0.8, 1))
        env = worker_env(g, lease_s=self.config.thresholds.lease_s, store=store_env(self.config))
        if self.cloud is not None:
            env.update(self.cloud.worker_env())  # awaiting approval from the failure on (engine/escalation/rule.py)
        out = self.paths.logs / "workers" / f"{g.name}.out"  # the child's stdout/stderr (tracebacks, prints)
        env.update(worker_log_env(self.paths.logs / "workers" / f"{g.name}.log", self.config.log))
        rotate_if_over(out, self.config.log.max_bytes, self.config.log.backups)  # only we open .out, at spawn
        spec = LaunchSpec(worker_id=g.name, argv=argv, env=env, log_path=out)
        self._write_control(slot)
        try:
            slot.proc = self.launcher.spawn(spec)
        except OSError as exc:
            self.log("worker spawn failed", worker=g.name, error=str(exc))
            slot.proc = None
            self._event(slot, S.Spawned(now), now)
            self._event(slot, S.Exited(127, 0.0, now), now)
            return
        slot.instance = getattr(slot.proc, "instance", None)
        self.log("worker spawned", worker=g.name, pid=slot.proc.pid, gpus=list(g.gpus),
                 cuda_visible_devices=spec.env["CUDA_VISIBLE_DEVICES"], endpoint=slot.endpoint)
        self._event(slot, S.Spawned(now), now)

    def _write_control(self, slot: WorkerSlot) -> None:
        r = slot.record
        slot.control_seq += 1
        mode = r.mode
        reason = r.reason if mode != ControlMode.RUN or r.thermal_hold else None
        try:
            write_json_dataclass(self.paths.worker_control(slot.worker_id),
                                 WorkerControl(seq=slot.control_seq, mode=mode, reason=reason,
                                               unload_seq=slot.unload_seq, thermal_hold=r.thermal_hold))
        except OSError as exc:
            self.log("could not write control file", worker=slot.worker_id, error=str(exc))

    def _guard(self, slot: WorkerSlot, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - isolate workers from each other
            self.log("supervisor step failed for one worker", worker=slot.worker_id, step=what,
                     error=f"{type(exc).__name__}: {exc}")

    def _galaxy_pids(self) -> set[int]:
        pids = {s.proc.pid for s in self.slots.values() if s.proc is not None}
        if self.rig_driver is not None:
            pids |= self.rig_driver.galaxy_pids(self.samples)
        return pids

    # ------------------------------------------------------------ commands
    def _register_commands(self) -> None:
        for kind in WORKER_COMMANDS:
            self.commands.register(kind, self._worker_command)
        self.commands.register(CommandKind.UNLOAD, self._unload)
        self.commands.register(CommandKind.RETRY, self._retry)
        self.commands.register(CommandKind.RETRY_ALL_FAILED, self._retry_all)
        self.commands.register(CommandKind.CANCEL, self._cancel)
        self.commands.register(CommandKind.SHUTDOWN, self._shutdown_cmd)

    def _slot_for(self, cmd: Command) -> WorkerSlot | None:
        return self.slots.get(cmd.target or "")

    def _unknown_worker(self, cmd: Command) -> Outcome:
        return Outcome.refused(f"no worker named {cmd.target!r} (workers: {', '.join(self.slots) or 'none'})")

    def _worker_command(self, cmd: Command, now: float) -> Outcome:
        slot = self._slot_for(cmd)
        if slot is None:
            return self._unknown_worker(cmd)
        t = self._event(slot, S.OperatorCommand(cmd.kind), now)
        if t.refused:
            return Outcome.refused(t.refused)
        return Outcome.ok(f"{slot.worker_id}: {t.record.state.value}"
                          + (f" ({t.record.reason})" if t.record.reason else ""))

    def _unload(self, cmd: Command, now: float) -> Outcome:
        slot = self._slot_for(cmd)
        if slot is None:
            return self._unknown_worker(cmd)
        if slot.record.state not in S.ALIVE:
            return Outcome.refused(f"{slot.worker_id} is {slot.record.state.value}; nothing is loaded")
        slot.unload_seq += 1
        self._write_control(slot)
        model = slot.status.resident_model if slot.status else None
        return Outcome.ok(f"unload #{slot.unload_seq} sent to {slot.worker_id}" + (f" ({model})" if model else ""))

    def _retry(self, cmd: Command, now: float) -> Outcome:
        verdict = self.queue.retry(cmd.target or "", now)
        return Outcome.ok(f"{cmd.target} queued again") if verdict else \
            Outcome.refused(verdict.message or f"{cmd.target} is not a failed task")

    def _retry_all(self, cmd: Command, now: float) -> Outcome:
        ids = self.queue.retry_all_failed(now)
        return Outcome.ok(f"{len(ids)} failed task(s) queued again")

    def _cancel(self, cmd: Command, now: float) -> Outcome:
        reason = str(cmd.args.get("reason") or f"cancelled by {cmd.source or 'operator'}")
        verdict = self.queue.cancel(cmd.target or "", now, reason)
        return Outcome.ok(f"{cmd.target} cancelled") if verdict else \
            Outcome.refused(verdict.message or f"{cmd.target} is not waiting or running (already finished, or unknown)")

    def _shutdown_cmd(self, cmd: Command, now: float) -> Outcome:
        self.begin_shutdown(now, reason=f"shutdown command from {cmd.source or 'operator'}")
        return Outcome.ok("stopping: workers finish or hand back their tasks")

