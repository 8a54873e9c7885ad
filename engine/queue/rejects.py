"""Files that are not valid tasks go to failed/ with the reason; their bytes are kept.

The original file is renamed (never copied: it may be 50 MB) to ``failed/<id>.raw`` and a
small, valid task record ``failed/<id>.json`` explains what was wrong, so ``galaxy
status`` lists it like any other failure and the worker simply goes on. An excerpt of
the bytes is kept only from a regular file (read with O_NOFOLLOW, so never from a FIFO,
a device or through a symlink); a symlink is moved as the link itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from engine import safeio
from engine.event_types import EventType
from engine.model import Task, TaskClass, TaskStatus, is_safe_task_id
from engine.queue.names import parse_processing_name, parse_queue_name, us

if TYPE_CHECKING:
    from engine.queue.filequeue import FileQueue

RAW_EXCERPT_CHARS = 300


def _id_from_name(name: str) -> str:
    for parse in (parse_queue_name, parse_processing_name):
        parsed = parse(name)
        if parsed is not None and is_safe_task_id(parsed.task_id):
            return parsed.task_id
    stem = name[:-5] if name.endswith(".json") else name
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).replace("..", "_").lstrip("._-")[:90]
    return f"invalid-{safe or 'file'}"


def reject_file(fq: FileQueue, path: Path, orig_name: str, reason: str, now: float) -> str | None:
    """Move ``path`` (a file we hold) to failed/ as ``<id>.raw`` with a ``<id>.json`` record."""
    task_id = _id_from_name(orig_name)
    if (fq.paths.failed / f"{task_id}.json").exists() or (fq.paths.failed / f"{task_id}.raw").exists():
        task_id = f"{task_id[:100]}-{us(now)}"
    raw_dest = fq.paths.failed / f"{task_id}.raw"
    try:
        size = os.lstat(path).st_size  # lstat: a symlink is described, never followed
    except FileNotFoundError:
        return None
    excerpt = safeio.excerpt(path, RAW_EXCERPT_CHARS)  # None unless a regular file (no FIFO, device, link)
    try:
        os.rename(path, raw_dest)
    except FileNotFoundError:
        return None
    record = Task(
        task_id=task_id,
        name=f"invalid task file {orig_name[:120]}",
        command=f"# not run: the task file was invalid; original bytes in failed/{raw_dest.name}",
        task_class=TaskClass.CPU,
        status=TaskStatus.FAILED,
        created_at=now,
        max_retries=0,
        source="queue",
        result={"invalid_file": orig_name, "raw_file": raw_dest.name, "raw_bytes": size, "raw_excerpt": excerpt},
    )
    fq.write_failed(record, reason, now, event=EventType.TASK_INVALID, cascade=False)
    return task_id


def is_invalid_record(task: Task) -> bool:
    return bool(task.result and "invalid_file" in task.result)
