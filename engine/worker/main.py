"""One worker process from start to stop: ``run_worker(launch)``.

The CLI (``galaxy worker``) only parses and checks its arguments into a ``WorkerLaunch``;
everything a worker needs (queue, handlers, residency, look-ahead view, signal handlers) is
wired here, so another front end (a test, a service manager) starts a worker the same way.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine.clock import SystemClock
from engine.escalation.rule import rule_from_env
from engine.events import EventLog
from engine.handlers.registry import HandlerRegistry
from engine.logsetup import log_fields
from engine.model import TaskClass
from engine.paths import RigPaths
from engine.queue.protocol import RigQueue
from engine.residency.factory import event_log_sink, make_worker_residency
from engine.scheduling.capability import capabilities_of
from engine.scheduling.policy import WorkerProfile
from engine.store.open import Channels, open_channels_from_env
from engine.store.open_queue import open_queue_from_env
from engine.store.settings import DEFAULT_CLUSTER, ENV_STORE, StoreConfig, effective_store, redact_url
from engine.store.startup import open_when_answering
from engine.worker.loop import Worker, WorkerSettings, default_workdir
from engine.worker.rigview import SnapshotRigView, StoreRigView
from engine.worker.signals import EarlyStop, install_stop_handlers


@dataclass(frozen=True)
class WorkerLaunch:
    """What one worker process is started with (the supervisor passes it as argv and env)."""

    root: Path
    worker_id: str
    gpus: tuple[int, ...] = ()
    allowed: tuple[TaskClass, ...] = tuple(TaskClass)
    preferred: tuple[TaskClass, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    backend: str = "none"  # ollama | openai | router | none
    endpoint: str | None = None
    executor: str = "worker"  # worker | brain
    lease_s: float = 60.0
    grace_s: float = 30.0
    max_tasks: int | None = None
    exit_when_idle: bool = False


def run_worker(launch: WorkerLaunch, log: logging.Logger | None = None) -> int:
    """Run the worker until it is told to stop (signal, drain, ``max_tasks``); returns the exit code."""
    log = log or logging.getLogger(f"galaxy.worker.{launch.worker_id}")
    gpus = launch.gpus
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))  # handlers' CUDA libraries see only ours
    paths = RigPaths(launch.root).ensure()
    clock = SystemClock()
    early = EarlyStop()  # SIGTERM while the store does not answer yet: exit, nothing claimed
    try:
        opened = open_when_answering(lambda: _open_store(paths, gpus), where=_store_where(), clock=clock,
                                     say=log.warning, stop=early.requested)
    except (ValueError, RuntimeError, OSError) as exc:  # a bad url, an evicting Redis, a wrong password
        print(f"galaxy worker {launch.worker_id}: store: {exc}", file=sys.stderr, flush=True)
        log.error("worker cannot open its store", extra=log_fields(worker_id=launch.worker_id, error=str(exc)))
        return 2
    if opened is None:
        print(f"worker {launch.worker_id} stopped ({early.reason}) before its store answered", flush=True)
        return 0
    channels, events, queue = opened
    profile = WorkerProfile(launch.worker_id, preferred_classes=launch.preferred, allowed_classes=launch.allowed,
                            capabilities=capabilities_of(launch.backend, launch.models, launch.allowed,
                                                         role=launch.executor,  # claims match role too
                                                         rig=channels.rig))  # and the rig a task is pinned to
    extras = {"endpoint": launch.endpoint, "backend": launch.backend, "executor": launch.executor,
              "models": launch.models, "training_log": str(paths.training_samples), "root": str(paths.root)}
    settings = WorkerSettings(lease_s=launch.lease_s, stop_grace_s=launch.grace_s, workdir=default_workdir(paths),
                              extras=extras, max_tasks=launch.max_tasks, exit_when_idle=launch.exit_when_idle)
    registry = HandlerRegistry()
    residency = make_worker_residency(gpu_ids=gpus, backend_kind=launch.backend, endpoint=launch.endpoint,
                                      handlers=registry.loaded, paths=paths, simulated=None, clock=clock,
                                      events=event_log_sink(events, launch.worker_id))
    rig_view: SnapshotRigView | StoreRigView  # look-ahead from this rig's snapshot
    if channels.kind == "file":
        rig_view = SnapshotRigView(paths.snapshot, launch.worker_id, clock.now)  # one stat per look
    else:
        rig_view = StoreRigView(channels.snapshots, channels.rig, launch.worker_id, clock.now)
    worker = Worker(queue, registry, residency, clock, paths, events, launch.worker_id, gpus, profile, settings,
                    rig_view=rig_view, escalate=rule_from_env(os.environ))
    install_stop_handlers(worker)
    if early.reason is not None:  # the signal came while the store was being opened
        worker.request_stop(early.reason)
    print(f"worker {launch.worker_id} (pid {os.getpid()}, gpus {list(gpus) or 'none'}) on {paths.root}", flush=True)
    log.info("worker started", extra=log_fields(worker_id=launch.worker_id, pid=os.getpid(), gpus=list(gpus),
                                                 root=str(paths.root), backend=launch.backend))
    ran = worker.run()
    queue.close()
    channels.close()
    print(f"worker {launch.worker_id} stopped after {ran} task(s)", flush=True)
    log.info("worker stopped", extra=log_fields(worker_id=launch.worker_id, tasks=ran))
    return 0


def _store_where() -> str:
    """The store this worker was told to use, for its log (no password)."""
    store = effective_store(StoreConfig(None, DEFAULT_CLUSTER), {ENV_STORE: os.environ.get(ENV_STORE, "")})
    return redact_url(store.url) if store.url else "file"


def _open_store(paths: RigPaths, gpus: tuple[int, ...]) -> tuple[Channels, EventLog, RigQueue]:
    """The supervisor's store (engine.store.open.store_env): channels, the event log on them, the queue.
    Raises StoreUnavailable while it does not answer (nothing is left open then)."""
    channels = open_channels_from_env(paths)
    stamp: dict[str, object] = {"gpu_id": gpus[0] if gpus else None}
    if channels.kind != "file":  # one event stream for the cluster: say which rig each line is from
        stamp["rig"] = channels.rig
    events = EventLog(paths.events, stamp, stream=channels.events)
    try:
        queue = open_queue_from_env(paths, events=events)  # the same store as the supervisor's
    except BaseException:
        channels.close()
        raise
    return channels, events, queue
