"""Reading and writing one task file (shared by the queue's modules)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.model import MAX_TASK_FILE_BYTES, Task, TaskValidationError
from engine.queue.names import ProcessingName
from engine.safeio import UnsafeFileError, read_json


@dataclass
class Grabbed:
    path: str | Path  # the file, now in tasks/.tmp, that only we hold
    info: ProcessingName
    task: Task
    enqueued_us: int | None


def encode(task: Task) -> bytes:
    return json.dumps(task.to_dict(), separators=(",", ":"), default=str).encode()


def read_task_file(path: str | Path, *, where: str) -> Task:
    """Read and validate one task file with the bounded reader (engine.safeio): a FIFO,
    device, symlink, oversize, non-UTF-8 or too-deep file is a ``TaskValidationError``."""
    try:
        data = read_json(path, MAX_TASK_FILE_BYTES)
    except UnsafeFileError as exc:
        raise TaskValidationError(exc.reason, where=where) from None
    try:
        return Task.from_dict(data, where=where)
    except TaskValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any surprise in a file is that file's fault: it goes to failed/
        raise TaskValidationError(f"not a valid task: {type(exc).__name__}: {exc}", where=where) from None
