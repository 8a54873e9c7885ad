"""Paged listings of the queue for people (dashboard, ``galaxy task show``), from file names only.

Why: an operator must see queued tasks at depth 20,000, and the dashboard must stay cheap.
Every queue file's name carries its priority, class, model, enqueue time and id
(``engine.queue.names``), and ``QueueIndex`` keeps those names current by inotify, so a page
costs one pass over the in-memory index and never opens a task file.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable
from pathlib import Path

from engine.model import TaskClass
from engine.queue.index import QueueIndex
from engine.queue.names import ProcessingName, QueueName, parse_processing_name
from engine.queue.protocol import DEFAULT_PAGE, QueuedPage, QueuedRow

__all__ = ["DEFAULT_PAGE", "QueueLister", "QueuedPage", "QueuedRow", "claim_of", "claim_order", "queued_page"]


def claim_order(qn: QueueName) -> tuple[int, int, int, str]:
    """The order claims take, as ``QueueInspector.oldest_waiting`` computes it: resource tasks
    first, then higher priority, then older."""
    return (0 if qn.task_class is TaskClass.RESOURCE else 1, -qn.priority, qn.enqueued_us, qn.task_id)


def _matches(qn: QueueName, words: list[str]) -> bool:
    """Every word occurs in the id, class, model or state ("queued"), as the dashboard's filter."""
    hay = f"{qn.task_id} {qn.task_class.value} {qn.model or ''} queued".lower()
    return all(word in hay for word in words)


def queued_page(names: Iterable[QueueName], offset: int = 0, limit: int = DEFAULT_PAGE,
                text: str = "") -> QueuedPage:
    """Rows ``offset .. offset+limit`` of the queue in claim order, optionally only those whose
    id, class or model contain every word of ``text`` (case-insensitive). One pass over the names."""
    offset, limit = max(0, offset), max(0, limit)
    words = text.lower().split()
    all_names = list(names)
    picked = [qn for qn in all_names if _matches(qn, words)] if words else all_names
    want = offset + limit
    if want * 8 < len(picked):  # a page near the front: a bounded heap beats sorting everything
        head = heapq.nsmallest(want, picked, key=claim_order)[offset:]
    else:
        head = sorted(picked, key=claim_order)[offset:want]
    rows = tuple(QueuedRow(qn.task_id, qn.task_class.value, qn.model, qn.priority, qn.enqueued_us / 1e6,
                           offset + i) for i, qn in enumerate(head))
    return QueuedPage(rows=rows, offset=offset, matched=len(picked), total=len(all_names))


class QueueLister:
    """The file store's ``QueuedSource``: a read-only view of ``queue/`` for a process that only
    looks (the dashboard): an index of its names, current by inotify, never a claim or a write."""

    def __init__(self, queue_dir: Path, *, use_inotify: bool = True) -> None:
        self.index = QueueIndex(queue_dir, use_inotify=use_inotify)
        self._last: tuple[tuple[int, int, int, str], QueuedPage] | None = None

    def page(self, offset: int = 0, limit: int = DEFAULT_PAGE, text: str = "") -> QueuedPage:
        """The page; free while the queue has not changed (the index's version is the same)."""
        self.index.sync()
        key = (self.index.version, offset, limit, text)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        page = queued_page(self.index.present.values(), offset, limit, text)
        self._last = (key, page)
        return page

    def close(self) -> None:
        self.index.close()


def claim_of(processing_dir: Path, task_id: str) -> ProcessingName | None:
    """The live claim of a running task (owner and claim time are in the processing file's name)."""
    try:
        names = os.listdir(processing_dir)
    except FileNotFoundError:
        return None
    for name in names:
        pn = parse_processing_name(name)
        if pn is not None and pn.task_id == task_id:
            return pn
    return None
