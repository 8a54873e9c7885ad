"""The layout of the rig's shared filesystem root (``shared/`` by default).

One place names every directory, so the queue, supervisor, dashboard and CLI agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RigPaths:
    root: Path

    # --- task queue (a task's directory is its state) ---
    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def queue(self) -> Path:
        return self.tasks / "queue"

    @property
    def processing(self) -> Path:
        return self.tasks / "processing"

    @property
    def complete(self) -> Path:
        return self.tasks / "complete"

    @property
    def failed(self) -> Path:
        return self.tasks / "failed"

    @property
    def awaiting(self) -> Path:
        """Tasks whose escalation waits for an operator's decision (not failed, not retried)."""
        return self.tasks / "awaiting"

    @property
    def delayed(self) -> Path:
        """Tasks in retry backoff, released to queue/ when their not-before time passes."""
        return self.tasks / "delayed"

    @property
    def held(self) -> Path:
        """Plan tasks waiting on dependencies (the field notes' private task list)."""
        return self.root / "brain" / "private_tasks"

    @property
    def locks(self) -> Path:
        return self.tasks / ".locks"

    # --- supervisor state ---
    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def snapshot(self) -> Path:
        return self.state / "snapshot.json"

    @property
    def history(self) -> Path:
        """The supervisor's last minutes per GPU and model (engine.history), beside the snapshot."""
        return self.state / "history.json"

    @property
    def commands(self) -> Path:
        """Incoming operator commands, one JSON file each (written atomically)."""
        return self.state / "commands"

    @property
    def workers(self) -> Path:
        """Per-worker status (written by the worker) and control (written by the supervisor)."""
        return self.state / "workers"

    @property
    def supervisor_pid(self) -> Path:
        return self.state / "supervisor.pid"

    @property
    def escalations(self) -> Path:
        return self.state / "escalations"

    # --- logs ---
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def events(self) -> Path:
        return self.logs / "events.jsonl"

    @property
    def audit(self) -> Path:
        return self.logs / "audit.jsonl"

    @property
    def training_samples(self) -> Path:
        return self.logs / "training_samples.jsonl"

    @property
    def plans(self) -> Path:
        return self.root / "plans"

    def worker_status(self, worker_id: str) -> Path:
        return self.workers / f"{worker_id}.status.json"

    def worker_control(self, worker_id: str) -> Path:
        return self.workers / f"{worker_id}.control.json"

    def ensure(self) -> RigPaths:
        for d in (self.queue, self.processing, self.complete, self.failed, self.delayed, self.held, self.awaiting,
                  self.locks, self.state, self.commands, self.workers, self.escalations, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        return self
