"""The crash-injection harness: run a queue operation on a CrashingFs that dies after step k,
recover as a restarting rig would, drain, and check the queue's invariants.

Not a test module (tests/reliability/test_crash_injection.py drives it).
"""

from __future__ import annotations

import collections
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.events import EventLog, tail_events
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.fsops import FsOps
from engine.queue.ledger import Ledger, parse_line
from engine.queue.names import parse_delayed_name, parse_held_name, parse_processing_name, parse_queue_name
from engine.scheduling.policy import WorkerProfile, make_claim_policy
from tests.doubles.crash_fs import CrashingFs, SimulatedCrash

T0 = float(int(time.time()))  # file mtimes are real: a claim cut short before its utime keeps one
LEASE_S = 30.0
LATER = T0 + 10_000.0  # every lease and backoff of a scenario is over by then


def task(task_id: str, *deps: str, retries: int = 3) -> Task:
    return Task(task_id=task_id, name=task_id, command="true", task_class=TaskClass.CPU, depends_on=tuple(deps),
                max_retries=retries)


def open_queue(root: Path, fs: FsOps | None = None) -> FileQueue:
    paths = RigPaths(root).ensure()
    return FileQueue(paths, events=EventLog(paths.events, fs=fs), fs=fs, rng=random.Random(3), orphan_age_s=0.0)


def policy(worker_id: str):  # type: ignore[no-untyped-def]
    return make_claim_policy(WorkerProfile(worker_id))


@dataclass
class Scenario:
    """``setup`` brings a queue (real filesystem) to the state before the operation;
    ``op`` is the operation under test, run on the crashing filesystem."""

    name: str
    setup: Callable[[FileQueue], None]
    op: Callable[[FileQueue], object]
    ids: tuple[str, ...]


def run_case(root: Path, sc: Scenario, crash_after: int | None, *, torn: bool = False) -> CrashingFs:
    """Set up, run the operation until the simulated death (or its end). Returns the fs."""
    q = open_queue(root)
    try:
        sc.setup(q)
    finally:
        q.close()
    fs = CrashingFs(crash_after, torn=torn)
    q = open_queue(root, fs)
    try:
        sc.op(q)
    except SimulatedCrash:
        pass
    finally:
        q.close()
    return fs


def recover_and_drain(root: Path) -> FileQueue:
    """A worker starting after the crash (reap_stale rolls the journal forward), once every
    lease is over; then it runs everything there is to run."""
    q = open_queue(root)
    q.reap_stale(LATER)
    pol = policy("rescuer")
    for _ in range(50):
        q.promote_due(LATER + 10_000)
        t = q.claim("rescuer", LATER, pol, LEASE_S)
        if t is None:
            break
        q.complete(t.task_id, "rescuer", {"ok": True}, LATER)
    return q


def states(paths: RigPaths) -> dict[str, list[str]]:
    """task id -> every state it is found in."""
    where: dict[str, list[str]] = collections.defaultdict(list)
    parsers = {"queue": parse_queue_name, "processing": parse_processing_name, "delayed": parse_delayed_name}
    for state, parse in parsers.items():
        for name in os.listdir(getattr(paths, state)):
            parsed = parse(name)
            assert parsed is not None, f"{state}/{name} is not a name the queue writes"
            where[parsed.task_id].append(state)
    for name in os.listdir(paths.held):
        hn = parse_held_name(name)
        if hn is not None:
            where[hn.task_id].append("held")
    for state in ("complete", "failed", "awaiting"):
        for name in os.listdir(getattr(paths, state)):
            if name.endswith(".json"):
                where[name[:-5]].append(state)
    return where


def ledger_lines(paths: RigPaths) -> list[list[str]]:
    out: list[list[str]] = []
    path = paths.tasks / "ledger.log"
    for raw in (path.read_text(errors="replace").splitlines() if path.exists() else []):
        fields = parse_line(raw)
        if fields is not None:
            out.append(fields)
    return out


def snapshot(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".locks"]
        for f in filenames:
            p = Path(dirpath, f)
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def check_invariants(root: Path, sc: Scenario, q: FileQueue) -> None:
    paths = q.paths
    where = states(paths)
    known = set(where)
    submitted = set(sc.ids)
    all_or_none = sc.name in ("submit", "restore")  # a batch: every task or none of them
    assert known in (submitted, set()) if all_or_none else known == submitted, f"tasks: {sorted(known)}"
    for task_id, found in where.items():
        assert len(found) == 1, f"{task_id} is in {found}"
        t = q.get(task_id)
        waits_on_operator = t is not None and any(where[d] == ["awaiting"] for d in t.depends_on)
        ended = ("complete", "failed", "awaiting") + (("held",) if waits_on_operator else ())
        assert found[0] in ended, f"{task_id} still {found[0]} after the drain"
    for task_id in known:  # dependents released or failed in cascade, as their dependencies went
        t = q.get(task_id)
        assert t is not None
        dep_states = [where[d][0] for d in t.depends_on]
        if where[task_id][0] == "complete":
            assert all(s == "complete" for s in dep_states), f"{task_id} ran before its dependencies"
        elif "failed" in dep_states:
            assert t.error and t.error.startswith("dependency "), f"{task_id}: {t.error}"
    ledger = Ledger(paths.tasks / "ledger.log")
    ledger.refresh()
    complete = [i for i, s in where.items() if s == ["complete"]]
    failed = [i for i, s in where.items() if s == ["failed"]]
    assert sum(ledger.counts["complete"].values()) == len(complete), "ledger complete count != complete/"
    assert sum(ledger.counts["failed"].values()) == len(failed), "ledger failed count != failed/"
    c_lines = collections.Counter(f[3] for f in ledger_lines(paths) if f[1] == "C")
    assert {i: c_lines[i] for i in complete} == dict.fromkeys(complete, 1), f"ledger C lines: {c_lines}"
    events = tail_events(paths.events, 100_000)
    done = collections.Counter(e["task_id"] for e in events if e["event_type"] == "task_completed"
                               or (e["event_type"] == "task_migrated" and e.get("place") == "complete"))
    assert {i: done[i] for i in complete} == dict.fromkeys(complete, 1), f"task_completed events: {done}"
    assert not done.keys() - set(complete), f"completion events for tasks not complete: {done}"
    awaiting = [i for i, s in where.items() if s == ["awaiting"]]
    parked = collections.Counter(e["task_id"] for e in events if e["event_type"] == "task_awaiting_approval")
    assert {i: parked[i] for i in awaiting} == dict.fromkeys(awaiting, 1), f"task_awaiting_approval events: {parked}"
    failed_events = collections.Counter(e["task_id"] for e in events if e["event_type"] == "task_failed")
    assert not failed_events.keys() & set(awaiting), f"failure events for tasks awaiting approval: {failed_events}"
    assert not os.listdir(q.tmp), f"left in tasks/.tmp: {os.listdir(q.tmp)}"
    assert not os.listdir(q.journal.dir), f"left in tasks/.journal: {os.listdir(q.journal.dir)}"
    # a second recovery is a no-op
    before = snapshot(root)
    q2 = open_queue(root)
    try:
        q2.reap_stale(LATER + 20_000)
    finally:
        q2.close()
    after = snapshot(root)
    assert before == after, f"second recovery changed {sorted(k for k in after if before.get(k) != after[k])}"
