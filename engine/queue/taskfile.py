"""Reading and writing one task file (shared by the queue's modules)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.model import MAX_TASK_FILE_BYTES, Task, TaskValidationError
from engine.queue.names import ProcessingName


@dataclass
class Grabbed:
    path: str | Path  # the file, now in tasks/.tmp, that only we hold
    info: ProcessingName
    task: Task
    enqueued_us: int | None


def encode(task: Task) -> bytes:
    return json.dumps(task.to_dict(), separators=(",", ":"), default=str).encode()


def read_task_file(path: str | Path, *, where: str) -> Task:
    """Read and validate one task file; a file over the size limit is refused unread."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_TASK_FILE_BYTES:
            raise TaskValidationError(f"task file is {size:,} bytes, over the {MAX_TASK_FILE_BYTES:,}-byte limit",
                                      where=where)
        raw = fh.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TaskValidationError(f"not valid JSON: {exc}", where=where) from None
    return Task.from_dict(data, where=where)
