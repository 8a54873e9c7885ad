"""An append-only ledger of terminal transitions: how counts and "recent" stay cheap.

complete/ grows without bound, so neither ``counts()`` nor ``recent()`` may list it. Every
move into complete/ or failed/ (and every retry out of failed/) appends one short line
``<time_us> <C|F|U> <class> <task_id>``; a reader keeps its offset and reads only what is
new. A crash between a move and its ledger line can make a count off by one; the
directories stay the truth for each task.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from engine.queue.fsops import append_line
from engine.queue.names import us

RECENT_KEEP = 500
COMPLETE, FAILED, UNFAILED = "C", "F", "U"


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._path_s = str(path)
        self._offset = 0
        self._partial = b""
        self.counts: dict[str, dict[str, int]] = {"complete": {}, "failed": {}}
        self._recent: dict[str, deque[str]] = {"complete": deque(maxlen=RECENT_KEEP),
                                               "failed": deque(maxlen=RECENT_KEEP)}

    def append(self, now: float, kind: str, task_class: str, task_id: str) -> None:
        append_line(self._path_s, f"{us(now)} {kind} {task_class} {task_id}\n".encode())

    def refresh(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self._offset:  # truncated/rotated: start over
                    self.__init__(self.path)  # type: ignore[misc]
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next refresh
        for raw in lines:
            parts = raw.decode(errors="replace").split(" ")
            if len(parts) != 4:
                continue
            _, kind, cls, task_id = parts
            if kind == COMPLETE:
                self._bump("complete", cls, 1)
                self._recent["complete"].append(task_id)
            elif kind == FAILED:
                self._bump("failed", cls, 1)
                self._recent["failed"].append(task_id)
            elif kind == UNFAILED:
                self._bump("failed", cls, -1)
                try:
                    self._recent["failed"].remove(task_id)
                except ValueError:
                    pass

    def _bump(self, state: str, cls: str, delta: int) -> None:
        by_class = self.counts[state]
        by_class[cls] = max(0, by_class.get(cls, 0) + delta)
        if by_class[cls] == 0:
            del by_class[cls]

    def recent_ids(self, state: str) -> list[str]:
        """Newest first, without repeats."""
        seen: set[str] = set()
        out = []
        for task_id in reversed(self._recent.get(state, ())):
            if task_id not in seen:
                seen.add(task_id)
                out.append(task_id)
        return out
