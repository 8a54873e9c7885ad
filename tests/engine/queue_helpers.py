"""Shared helpers for the queue tests (not a test module)."""

from __future__ import annotations

import random
from pathlib import Path

from engine.events import EventLog, tail_events
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.scheduling.policy import WorkerProfile, make_claim_policy

T0 = 1_700_000_000.0


def make_queue(root: Path, **kwargs) -> FileQueue:
    paths = RigPaths(root)
    kwargs.setdefault("rng", random.Random(7))
    kwargs.setdefault("events", EventLog(paths.ensure().events))
    return FileQueue(paths, **kwargs)


def task(task_id: str, **kw) -> Task:
    kw.setdefault("name", task_id)
    kw.setdefault("command", "true")
    kw.setdefault("task_class", TaskClass.CPU)
    return Task(task_id=task_id, **kw)


def policy(worker_id: str = "w1", **kw):
    return make_claim_policy(WorkerProfile(worker_id, **kw))


def drain_ids(q: FileQueue, now: float, worker_id: str = "w1", **policy_kw) -> list[str]:
    out = []
    pol = policy(worker_id, **policy_kw)
    while (t := q.claim(worker_id, now, pol, 30.0)) is not None:
        out.append(t.task_id)
        q.complete(t.task_id, worker_id, {"ok": True}, now)
    return out


def events_of(root: Path, kind: str) -> list[dict]:
    return [e for e in tail_events(RigPaths(root).events, 100_000) if e["event_type"] == kind]
