"""What ``galaxy status`` shows, as data (``status --json`` prints it): the queue from the store, and the
workers and supervisor from the rig's snapshot, or from every rig's on a shared store (Redis)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.paths import RigPaths
from engine.schema import to_plain
from engine.snapshot import Snapshot, read_snapshot

if TYPE_CHECKING:
    from engine.queue.protocol import RigQueue
    from engine.store.rigs_view import RigReading

SNAPSHOT_FRESH_S = 10.0
"""A snapshot older than this is not live: its workers are not shown, its supervisor is not fresh."""


def status_data(root: Path, now: float, limit: int = 10, queue: RigQueue | None = None,
                cluster: ClusterReading | None = None) -> dict[str, Any]:
    """What ``galaxy status`` shows; ``queue`` (closed here): the store's, default the file queue at ``root``;
    ``cluster``: every rig of a shared store (``read_cluster``), None on the file store (one rig: its
    snapshot file tells)."""
    from engine.queue.filequeue import FileQueue

    paths = RigPaths(root)
    q: RigQueue = queue if queue is not None else FileQueue(paths, use_inotify=False)
    try:
        counts = q.counts().by_state
        waiting = q.oldest_waiting(now, limit)
        failed = q.recent("failed", limit)
        running = q.recent("processing", limit)
        awaiting = q.awaiting.tasks()[:limit]
        from engine.supervisor.orphans import gone_claims

        gone = gone_claims(q)  # claims of a worker process that is gone (a rig crash): not running
    finally:
        q.close()
    data: dict[str, Any] = {
        "root": str(root),
        "counts": counts,
        "totals": {state: sum(by.values()) for state, by in counts.items()},
        "waiting": [{"task_id": w.task_id, "name": w.name, "task_class": w.task_class, "priority": w.priority,
                     "waiting_s": round(now - w.waiting_since, 1), "reason": w.reason} for w in waiting],
        "running": [{"task_id": t.task_id, "name": t.name, "worker_id": t.lease_owner, "rig": None,
                     "task_class": t.task_class.value} for t in running if t.task_id not in gone],
        "orphaned": [{"task_id": t.task_id, "name": t.name, "worker_id": t.lease_owner,
                      "task_class": t.task_class.value} for t in running if t.task_id in gone],
        "failed": [{"task_id": t.task_id, "name": t.name, "task_class": t.task_class.value, "error": t.error,
                    "retry_count": t.retry_count} for t in failed],
        "awaiting_approval": [{"task_id": t.task_id, "name": t.name, "task_class": t.task_class.value,
                               "escalation_id": (t.result or {}).get("awaiting_escalation"), "error": t.error}
                              for t in awaiting],
        "workers": None,
    }
    if cluster is None:
        mine = _local_snapshot(paths)
        live = mine if mine is not None and now - mine.taken_at <= SNAPSHOT_FRESH_S else None
    else:
        from engine.store.rigs_view import merge_rigs

        data["rigs"] = [_rig_row(r, now) for r in cluster.readings]
        mine = next((r.snapshot for r in cluster.readings if r.rig == cluster.home), None)
        live = merge_rigs([r for r in cluster.readings if not r.stale], cluster.home)
    data["workers"] = _workers_of(live)
    if cluster is not None and live is not None:  # worker names repeat across rigs: whose gpu0 runs it
        holder = {w.current_task: w.rig for w in live.workers if w.current_task}
        for r in data["running"]:
            r["rig"] = holder.get(r["task_id"])
    data["supervisor"] = _supervisor_of(mine, now)
    _explain_unrunnable(live, data["waiting"], waiting)
    if cluster is not None:  # last: a task pinned to a rig that is not running waits for that rig first
        _explain_pinned(data["waiting"], waiting, {r.rig for r in cluster.readings if not r.stale})
    data["model_demand"] = {model: to_plain(d) for model, d in live.model_demand.items()} if live else None
    return data


@dataclass(frozen=True)
class ClusterReading:
    """Every rig's latest snapshot in a shared store, and which rig this host is."""

    readings: list[RigReading]
    home: str


def read_cluster(args: argparse.Namespace, now: float) -> ClusterReading | None:
    """Every rig that published a snapshot in the shared store; None on the file store (one rig,
    the snapshot file tells) or when the store's channels cannot be opened or do not answer."""
    from engine.cli.store_channels import StoreOpenError, open_cli_channels
    from engine.store.rigs_view import RigsReader

    try:
        channels = open_cli_channels(args)
    except StoreOpenError:
        return None
    try:
        if channels.kind == "file":
            return None
        return ClusterReading(RigsReader(channels.snapshots).read(now), channels.rig)
    except OSError:  # the store stopped answering: status still shows the queue
        return None
    finally:
        channels.close()


def _rig_row(r: RigReading, now: float) -> dict[str, Any]:
    """One rig in ``status --json``: liveness, its supervisor and its workers (None while STALE)."""
    return {"rig": r.rig, "published_at": r.published_at,
            "age_s": round(now - r.published_at, 1) if r.published_at is not None else None,
            "stale": r.stale, "problem": r.problem, "supervisor": _supervisor_of(r.snapshot, now),
            "gpus": len(r.snapshot.gpus) if r.snapshot else 0,
            "workers": None if r.stale else _workers_of(r.snapshot)}


def _explain_pinned(rows: list[dict[str, Any]], waiting: list[Any], live: set[str]) -> None:
    """A task pinned to a rig whose supervisor is not running waits for that rig: say so in its row."""
    for row, w in zip(rows, waiting):
        if w.rig is not None and w.rig not in live and not w.reason.startswith(("dependency", "backoff")):
            row["reason"] = f"pinned to rig {w.rig} (no live supervisor there)"
        if w.rig is not None:
            row["rig"] = w.rig


def _local_snapshot(paths: RigPaths) -> Snapshot | None:
    """The file store's snapshot; None when there is none or it is malformed (status must not break)."""
    try:
        return read_snapshot(paths.snapshot)
    except Exception:  # noqa: BLE001 - a malformed snapshot must not break status
        return None


def _explain_unrunnable(live: Snapshot | None, rows: list[dict[str, Any]], waiting: list[Any]) -> None:
    """Where no worker of the live snapshot (of every live rig, on a shared store) can run a waiting
    task, say so in its row ("no worker serves model M"): it waits for such a worker, no claim will fail it."""
    from engine.scheduling.capability import WorkerCapabilities, explain_unrunnable, role_of

    if live is None:
        return
    workers = [w for w in live.workers if w.state not in ("stopped", "fatal")]
    if any(w.llm_backend is None for w in workers):
        return  # a supervisor that does not publish capabilities: nothing to judge by
    caps = [WorkerCapabilities(llm_backend=w.llm_backend or "none",
                               llm_models=frozenset(w.llm_models) if w.llm_models is not None else None,
                               role=role_of(w.role))
            for w in workers]
    judged = {v.task_id: v.reason for v in live.queue.waiting if v.reason.startswith("no worker can run")}
    for row, w in zip(rows, explain_unrunnable(waiting, caps)):
        # script handlers and models are judged where the workers run: the supervisor's reason
        row["reason"] = judged.get(w.task_id, w.reason) if w.reason == row["reason"] else w.reason


def _supervisor_of(snap: Snapshot | None, now: float) -> dict[str, Any] | None:
    """The supervisor's pid, start time and uptime, from its latest snapshot (None: none has written one).
    ``fresh`` is false when that snapshot is older than SNAPSHOT_FRESH_S (it may have stopped)."""
    if snap is None:
        return None
    started = snap.started_at
    return {"pid": snap.supervisor_pid, "started_at": started, "snapshot_at": snap.taken_at,
            "uptime_s": round(snap.taken_at - started, 1) if started is not None else None,
            "fresh": now - snap.taken_at <= SNAPSHOT_FRESH_S}


def _workers_of(snap: Snapshot | None) -> list[dict[str, Any]] | None:
    if snap is None:
        return None
    return [{"worker_id": w.worker_id, "gpus": list(w.gpus), "state": w.state, "current_task": w.current_task,
             "residency": w.residency, "resident_model": w.resident_model,
             **({"rig": w.rig} if w.rig is not None else {})} for w in snap.workers]


