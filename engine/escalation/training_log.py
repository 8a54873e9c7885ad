"""The training-samples log (prompts, responses, outcomes) the field notes keep for later
fine-tuning, with secrets redacted and ``sensitive`` tasks kept out entirely."""

from __future__ import annotations

import json
from pathlib import Path

from engine import safeio
from engine.escalation.redact import redact
from engine.model import Task, iso


class TrainingSampleLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record(self, task: Task, *, prompt: str, response: str, outcome: str, at: float,
               served_by: str | None = None, tokens_per_s: float | None = None) -> None:
        entry: dict[str, object] = {"at": iso(at), "task_id": task.task_id, "task_class": task.task_class.value,
                                    "source": task.source, "outcome": outcome, "served_by": served_by,
                                    "tokens_per_s": tokens_per_s}
        if task.sensitive:
            entry["sensitive"] = True  # content withheld: the task asked to stay out of logs
        else:
            entry["prompt"] = redact(prompt)
            entry["response"] = redact(response)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        safeio.append_bytes(self.path, (json.dumps(entry) + "\n").encode())  # never through a planted link/FIFO
