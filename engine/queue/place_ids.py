"""Every task id in one place of a file root, read from file names only (``TaskLister.ids_in``).

The names carry the id (engine.queue.names), so no task file is opened; a name that does not
parse (a stray or half-written file) is left out, as every other reader of these folders does.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.model import is_safe_task_id
from engine.paths import RigPaths
from engine.queue.names import parse_delayed_name, parse_held_name, parse_processing_name, parse_queue_name
from engine.queue.protocol import Place


def _names(folder: Path) -> list[str]:
    try:
        return [n for n in os.listdir(folder) if n.endswith(".json")]
    except FileNotFoundError:
        return []


def ids_in(paths: RigPaths, awaiting: list[str], place: Place) -> list[str]:
    """The ids in ``place`` under ``paths``; ``awaiting`` is the awaiting store's own list."""
    if place is Place.QUEUE:
        return [q.task_id for q in map(parse_queue_name, _names(paths.queue)) if q is not None]
    if place is Place.DELAYED:
        return [d.task_id for d in map(parse_delayed_name, _names(paths.delayed)) if d is not None]
    if place is Place.HELD:
        return [h.task_id for h in map(parse_held_name, _names(paths.held)) if h is not None]
    if place is Place.PROCESSING:
        return [p.task_id for p in map(parse_processing_name, _names(paths.processing)) if p is not None]
    if place is Place.FAILED:
        return [n[:-5] for n in _names(paths.failed) if is_safe_task_id(n[:-5])]
    if place is Place.AWAITING:
        return list(awaiting)
    raise ValueError(f"ids_in() lists held, delayed, queue, processing, awaiting or failed, not {place.value!r}: "
                     "complete tasks are read one by one with get()")
