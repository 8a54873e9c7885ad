"""The supervisor daemon from start to stop: ``run_supervisor(launch)``.

``galaxy supervise`` only parses its arguments into a ``SupervisorLaunch``; loading the config,
the probe (real or simulated rig), logging, the pid file, metrics, the demo feeder and the tick
loop live here, so the daemon can be started the same way without the CLI.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.event_types import EventType
from engine.logsetup import EventsRotator, log_fields, setup_logging

_LOG = logging.getLogger("galaxy.supervisor")


class SupervisorStartError(Exception):
    """The supervisor refused to start: one message per problem, and the exit code to use."""

    def __init__(self, messages: list[str], exit_code: int) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
        self.exit_code = exit_code


@dataclass(frozen=True)
class SupervisorLaunch:
    root: Path
    config: Path | None = None  # galaxy.toml, already located (None: defaults)
    sim: bool = False  # simulated rig with simulated Ollama servers; workers are real processes
    gpus: int | None = None  # --sim: number of simulated GPUs
    tick_s: float | None = None  # default: [thresholds] snapshot_interval_s
    demo: bool = False  # --sim only: keep the rig busy with made-up work
    run_for_s: float | None = None  # tests/bench: stop after this long
    log_file: Path | None = None
    log_level: str | None = None


def json_log(msg: str, **fields: Any) -> None:
    """The supervisor's log calls go through ``logging`` (engine.logsetup decides where)."""
    level = logging.WARNING if fields.get("error") is not None else logging.INFO
    _LOG.log(level, msg, extra=log_fields(**fields))


def _events_tail(channels: Any) -> Callable[[int], Any]:
    from engine.event_views import stream_event_views

    return lambda n: stream_event_views(channels.events, n)


def _open_store_once(config: Any, paths: Any) -> tuple[Any, Any]:
    """Snapshots, commands, events, escalations and audit, and the task queue (the one its workers
    open), in the configured store (docs/cluster.md). StoreUnavailable while it does not answer."""
    from engine.store.open import open_channels
    from engine.store.open_queue import open_config_queue

    channels = open_channels(config, paths)
    try:
        return channels, open_config_queue(config, paths)
    except BaseException:
        channels.close()
        raise


def _retention(config: Any, queue: Any) -> Any:
    """Old completed records pruned by the tick (Redis: [store] keep_completed_s; none on the file store)."""
    from engine.store.open_queue import completed_retention
    from engine.store.settings import effective_store

    return completed_retention(effective_store(config.store, os.environ), queue)


def _open_store(config: Any, paths: Any, clock: Any, stop: Callable[[], bool]) -> tuple[Any, Any] | None:
    """The store's channels and queue once it answers (engine/store/startup.py: a Redis that is down
    is waited for, with backoff); None when stopped while waiting. A store that is wrong (a bad
    $GALAXY_STORE, an evicting Redis, a refused password) refuses to start."""
    from engine.store.settings import effective_store, redact_url
    from engine.store.startup import open_when_answering

    try:
        store = effective_store(config.store, os.environ)
        where = redact_url(store.url) if store.url else "file"
        return open_when_answering(lambda: _open_store_once(config, paths), where=where, clock=clock,
                                   say=lambda line: _LOG.warning(line), stop=stop)
    except (ValueError, RuntimeError, OSError) as exc:
        raise SupervisorStartError([f"store: {exc}"], 2) from None


def _cloud_tier(config: Any, paths: Any, queue: Any, endpoints: Any, channels: Any) -> Any:
    """Routing health, breakers and operator-approved escalation (see docs/routing.md)."""
    from engine.escalation.wiring import build_cloud_tier
    from engine.events import EventLog
    from engine.supervisor.command_processor import Outcome

    events = EventLog(paths.events, stream=channels.events).bind(worker_id="supervisor")
    if channels.kind != "file":  # one event stream for the cluster: say which rig each line is from
        events = events.bind(rig=channels.rig)

    def on_event(kind: EventType, data: dict[str, Any]) -> None:
        json_log(kind, **data)
        task_id = data.pop("task_id", None)
        events.emit(kind, task_id=task_id if isinstance(task_id, str) else None,
                    **{k: v for k, v in data.items() if k not in ("error",)},
                    error=str(data["error"]) if data.get("error") else None)

    return build_cloud_tier(config, paths, queue, endpoints=endpoints, outcome=Outcome,
                            on_event=on_event, channels=channels)


def _load(launch: SupervisorLaunch, clock: Any) -> tuple[Any, Any]:
    """The config and the probe; a bad config or a group naming an unseen GPU refuses to start."""
    from engine.config import ConfigError, ConfigErrors, default_config, load_config, unseen_gpu_errors
    from engine.supervisor.sim_driver import make_sim_rig
    from engine.telemetry.detect import detect_probe

    try:
        if launch.sim:
            config = load_config(launch.config, gpu_count=launch.gpus if launch.gpus is not None else 5)
            if config.source is None and launch.gpus is None:
                config = default_config(config.sim.gpus)
            probe: Any = make_sim_rig(config, clock, gpu_count=launch.gpus)
        else:
            probe = detect_probe(simulated=False)
            config = load_config(launch.config, gpu_count=probe.status().gpu_count)
        status = probe.status()  # a group naming a GPU NVML (or the simulated rig) does not see is refused
        unseen = unseen_gpu_errors(config, status.gpu_count, status.kind)
        if unseen:
            raise unseen[0] if len(unseen) == 1 else ConfigErrors(unseen)
    except ConfigError as exc:
        raise SupervisorStartError([str(one) for one in exc.errors], 2) from None  # every problem, each with its line
    return config, probe


def run_supervisor(launch: SupervisorLaunch) -> int:
    """Run until SIGTERM/SIGINT, a ``stop`` or ``--run-for``; raises SupervisorStartError when it cannot start."""
    from engine.clock import SystemClock
    from engine.paths import RigPaths
    from engine.service import note_service_run
    from engine.supervisor.launcher import SubprocessLauncher
    from engine.supervisor.pidfile import PidFile, SupervisorAlreadyRunning, UnsafePidFile
    from engine.supervisor.sim_driver import SimRigDriver
    from engine.supervisor.supervisor import Supervisor
    from engine.telemetry.host import HostProbe

    if launch.demo and not launch.sim:
        raise SupervisorStartError(["--demo needs --sim (it submits made-up work)"], 2)
    clock = SystemClock()
    paths = RigPaths(launch.root).ensure()
    config, probe = _load(launch, clock)
    if launch.log_level:
        config = dataclasses.replace(config, log=dataclasses.replace(config.log, level=launch.log_level))
    setup_logging(level=config.log.level, log_file=launch.log_file, config=config.log)
    rotator = EventsRotator(paths.events, config.log.events_max_bytes, config.log.events_backups)
    pidfile = PidFile(paths.supervisor_pid)  # first: a second supervisor is refused, not left waiting too
    try:
        pidfile.acquire()
    except (SupervisorAlreadyRunning, UnsafePidFile) as exc:
        raise SupervisorStartError([str(exc)], 1) from None
    stop: dict[str, str | None] = {"signal": None}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["signal"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        opened = _open_store(config, paths, clock, lambda: stop["signal"] is not None)
    except BaseException:
        pidfile.release()
        raise
    if opened is None:
        pidfile.release()
        json_log("supervisor stopped before its store answered", signal=stop["signal"])
        return 0
    channels, queue = opened
    service = note_service_run(paths.state, os.environ, os.getpid())  # `galaxy up` then just attaches
    if service:
        json_log("supervisor runs as a systemd service", unit=service["unit"])
    driver = None
    metrics: Any = None  # engine.metrics.server.MetricsServer
    endpoints = None
    demo_cloud = None
    feeder = None
    try:
        if launch.sim:
            driver = SimRigDriver(probe)
            endpoints = driver.start_servers(config.groups, clock=clock)
        if launch.demo:
            from engine.sim.demo_wiring import make_feeder, with_sim_cloud

            config, demo_cloud = with_sim_cloud(config)
            feeder = make_feeder(paths, queue, json_log)
            json_log("demo: feeding the rig", tasks_per_min=feeder.settings.tasks_per_min,
                     cloud=demo_cloud.url, plan=feeder.plan is not None)
        cloud = _cloud_tier(config, paths, queue, endpoints, channels)
        sup = Supervisor(config, paths, queue, probe, SubprocessLauncher(), host=HostProbe(paths.root),
                         simulated=launch.sim, endpoints=endpoints, rig_driver=driver,
                         events_tail=_events_tail(channels), log=json_log, cloud=cloud, channels=channels,
                         retention=_retention(config, queue))
        from engine.metrics.server import start_metrics  # [metrics] listen (docs/metrics.md)

        metrics = start_metrics(config, paths, lambda: sup.writer.last_snapshot, json_log,
                                stream=channels.events if channels.kind != "file" else None)
        interval = launch.tick_s or config.thresholds.snapshot_interval_s
        started = clock.now()
        sup.start(started)
        while True:
            now = clock.now()
            sup.tick(now)
            rotator.tick(now)  # logs/events.jsonl by size; writers and readers follow the name
            if feeder is not None and not sup.stop_requested:
                try:
                    feeder.tick(now)
                except Exception as exc:  # noqa: BLE001 - the demo's work must never stop the rig
                    json_log("demo: submit failed", error=f"{type(exc).__name__}: {exc}")
            if stop["signal"] and not sup.stop_requested:
                sup.begin_shutdown(now, reason=f"received {stop['signal']}")
            if launch.run_for_s is not None and now - started >= launch.run_for_s and not sup.stop_requested:
                sup.begin_shutdown(now, reason="--run-for elapsed")
            if sup.stop_requested and sup.all_stopped():
                break
            clock.sleep(max(0.0, interval - (clock.now() - now)))
        sup.finish_shutdown(clock.now())
    finally:
        if metrics is not None:
            metrics.stop()
        if driver is not None:
            driver.stop()
        if demo_cloud is not None:
            demo_cloud.stop()
        queue.close()
        channels.close()
        pidfile.release()
    return 0
