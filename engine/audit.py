"""The audit log of the file store: ``logs/audit.jsonl``, one JSON line per operator command
applied or refused and per escalation transition, appended by the process that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine import safeio
from engine.events import tail_events


class FileAuditLog:
    """An ``AuditLog`` over one append-only JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.errors = 0  # lines that could not be written (the action itself stands)
        self.last_error = ""  # why the last one was lost, naming the path

    def append(self, record: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one write per line; never through a symlink or into a FIFO (safeio.open_append)
            safeio.append_bytes(self.path, (json.dumps(record, default=str) + "\n").encode())
        except OSError as exc:  # disk full, a planted link: the action was taken; nobody stops for the audit
            self.errors += 1
            self.last_error = str(exc)

    def __call__(self, record: dict[str, Any]) -> None:
        self.append(record)

    def read(self, n: int = 100) -> list[dict[str, Any]]:
        return tail_events(self.path, n)
