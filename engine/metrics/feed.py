"""Counters and histograms from the event log, folded in at scrape time.

Task durations, tokens, model loads and unloads happen between scrapes, so a snapshot (the
latest state) cannot give them: the event log can. The feed keeps a file offset and, when a
scrape asks, reads only what the log gained (at most ``READ_BUDGET`` bytes per scrape; a
backlog is read over several scrapes). Counting starts where the log ended when the feed
was made (the supervisor's start): counters are per process, as Prometheus expects. The
bytes before that are read once, for task models only (``task_completed`` does not name
its model; ``task_submitted`` and friends do). A new inode or a shorter file is a rotated
log: read from its start. A torn or foreign line is counted and skipped.

A task the cloud tier escalates is no failure (issue 12: awaiting approval is its own state). Its
worker parks it at its failure, with no ``task_failed``; but a task that reached failed/ another
way (the reaper gave up its lease, a worker started without the rule) is parked by the supervisor
at its next tick (``task_awaiting_approval``), its dependents held again (``task_retried``: the
file store had failed them in cascade). So a failure counts only once it has stayed one for
``SETTLE_S`` of the scrape's ``now``; what becomes of an escalation is counted by
``galaxy_escalation_events``.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import safeio
from engine.event_types import EventType
from engine.logsetup import rotated_rest
from engine.model import TaskValidationError, parse_time
from engine.store.channels import EventStream

DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
READ_BUDGET = 4 << 20
FOLLOW_BATCH = 5_000  # lines per read of the store's stream
MAX_FOLLOW_BATCHES = 10  # per scrape: a backlog is caught up over a few scrapes
SEED_BYTES = 4 << 20
MODEL_MEMO = 50_000
SETTLE_S = 15.0
"""How long a failure waits to count: the supervisor parks an escalated task within a tick or two."""
NO_MODEL = "none"  # a task that needs no model (shell, cpu work)
UNKNOWN = "unknown"  # a model or node the log did not say

_TYPE = re.compile(rb'"event_type":"([a-z_]+)"')
E = EventType
COUNTED = frozenset({E.TASK_COMPLETED, E.TASK_FAILED, E.LLM_LOADED, E.LLM_LOAD_FAILED, E.LLM_UNLOADING,
                     E.SCRIPT_RELEASED, E.ESCALATION_REQUESTED, E.ESCALATION_APPROVED, E.ESCALATION_DENIED,
                     E.ESCALATION_EXPIRED, E.ESCALATION_ANSWERED, E.ESCALATION_FAILED, E.TASK_AWAITING_APPROVAL,
                     E.TASK_RETRIED})
ESCALATION_EVENTS = ("requested", "approved", "denied", "expired", "answered", "failed")


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)
        self.total += value
        self.n += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                return

    def cumulative(self) -> list[tuple[str, float]]:
        """[(le, cumulative count), ..., ("+Inf", n)] as prometheus_client wants them."""
        out, running = [], 0
        counts = self.counts or [0] * len(self.bounds)
        for bound, c in zip(self.bounds, counts):
            running += c
            out.append((_le(bound), float(running)))
        out.append(("+Inf", float(self.n)))
        return out


def _le(bound: float) -> str:
    return repr(float(bound))


@dataclass
class Tallies:
    """Everything counted since the feed started. Keys are label tuples."""

    durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)  # (class, model)
    failed: dict[str, int] = field(default_factory=dict)  # class
    tokens: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, node)
    loads: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, node)
    load_seconds: dict[tuple[str, str], float] = field(default_factory=dict)  # (model, node)
    load_failures: dict[tuple[str, str], int] = field(default_factory=dict)
    unloads: dict[tuple[str, str], int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ESCALATION_EVENTS, 0))
    skipped_lines: int = 0


def _bump(d: dict[Any, int], key: Any, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def _label(v: Any) -> str:
    return v if isinstance(v, str) and v else UNKNOWN


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None


class EventFeed:
    def __init__(self, path: Path, *, read_budget: int = READ_BUDGET, seed_bytes: int = SEED_BYTES,
                 stream: EventStream | None = None, rig: str | None = None) -> None:
        self.path = Path(path)
        self.stream = stream  # the store's event stream (Redis), followed instead of the file
        self.rig = rig  # a shared stream: this rig's lines only (lines naming no rig count)
        self._cursor: str | None = None
        self._catching_up = stream is not None  # what the stream held before we started: models only, no counts
        self.read_budget, self.seed_bytes = read_budget, seed_bytes
        self.tallies = Tallies()
        self.generation = 0  # bumped whenever the tallies change: the collector's cue to write them again
        self._models: OrderedDict[str, str | None] = OrderedDict()
        self._unsettled: OrderedDict[str, tuple[str, float]] = OrderedDict()  # task -> (class, failed at)
        try:
            st = os.stat(self.path)
            self._inode: int | None = st.st_ino
            self._offset = self._start = st.st_size
        except FileNotFoundError:
            self._inode, self._offset, self._start = None, 0, 0
        self._seeded = self._start == 0

    # ------------------------------------------------------------ models
    def remember(self, task_id: str, model: str | None) -> None:
        self._models[task_id] = model
        self._models.move_to_end(task_id)
        while len(self._models) > MODEL_MEMO:
            self._models.popitem(last=False)

    def remember_all(self, pairs: Iterable[tuple[str, str | None]]) -> None:
        for task_id, model in pairs:
            if task_id not in self._models:
                self.remember(task_id, model)

    def model_of(self, task_id: Any) -> str:
        if not isinstance(task_id, str) or task_id not in self._models:
            return UNKNOWN
        return self._models[task_id] or NO_MODEL

    # ------------------------------------------------------------ reading
    def update(self, now: float) -> None:
        """Fold in what the log gained since the last call (bounded), then count the failures that
        stayed failures for ``SETTLE_S``; never raises OSError."""
        try:
            if self.stream is not None:
                self._follow(self.stream)
            else:
                if not self._seeded:
                    self._seed()
                self._read()
        except (OSError, safeio.UnsafeFileError):  # a FIFO, device or link at the name: refused, never waited on
            pass  # an unreadable log leaves the counts as they were; the next scrape tries again
        self._settle(now)

    def _settle(self, now: float) -> None:
        while self._unsettled:
            task_id, (cls, at) = next(iter(self._unsettled.items()))
            if at > now - SETTLE_S:
                return
            del self._unsettled[task_id]
            _bump(self.tallies.failed, cls)
            self.generation += 1

    def _follow(self, stream: EventStream) -> None:
        """The store's stream from its oldest kept line: until caught up, lines teach models only (the
        counters start at zero with this process, as they do on the file)."""
        for _ in range(MAX_FOLLOW_BATCHES):
            lines, self._cursor = stream.read_after(self._cursor, FOLLOW_BATCH)
            for line in lines:
                raw = line.encode()
                if self.rig is None or b'"rig":' not in raw or self._ours(raw):
                    self.fold(raw, count=not self._catching_up)
            if len(lines) < FOLLOW_BATCH:
                self._catching_up = False
                return

    def _ours(self, raw: bytes) -> bool:
        try:
            rec = safeio.parse_json(self.path, raw)
        except ValueError:
            return True  # fold() counts it as skipped
        return not isinstance(rec, dict) or rec.get("rig") in (None, self.rig)

    def _seed(self) -> None:
        self._seeded = True
        begin = max(0, self._start - self.seed_bytes)
        with os.fdopen(safeio.open_regular(self.path, 1 << 62), "rb") as fh:  # never a FIFO or link
            fh.seek(begin)
            data = fh.read(self._start - begin)
        lines = data.split(b"\n")
        if begin > 0:
            lines = lines[1:]  # started mid-line
        for raw in lines:
            if b'"model":' in raw or b'"task_submitted"' in raw:
                self.fold(raw, count=False)

    def _read(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if st.st_ino != self._inode or st.st_size < self._offset:  # rotated or truncated: a new log
            if st.st_ino != self._inode:  # rotated (engine.logsetup.EventsRotator): finish events.jsonl.1 first
                for raw in rotated_rest(self.path, self._inode, self._offset, self.read_budget).split(b"\n"):
                    if raw.strip():
                        self.fold(raw)
            self._inode, self._offset = st.st_ino, 0
        if st.st_size <= self._offset:
            return
        with os.fdopen(safeio.open_regular(self.path, 1 << 62), "rb") as fh:  # a FIFO swapped in since the stat
            fh.seek(self._offset)
            data = fh.read(self.read_budget)
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) >= self.read_budget:  # a budget's worth without a newline is not an event log
                self._offset += len(data)
                self.tallies.skipped_lines += 1
            return  # else an unfinished line: wait for its newline
        self._offset += end + 1
        for raw in data[:end].split(b"\n"):
            if raw.strip():
                self.fold(raw)

    def _failed(self, rec: dict[str, Any]) -> None:
        """A failure waits SETTLE_S to count: the supervisor may escalate it (or its dependency)."""
        cls, task_id = _label(rec.get("task_class")), rec.get("task_id")
        try:
            at = parse_time(rec.get("timestamp"), "timestamp")
        except TaskValidationError:
            at = None
        if not isinstance(task_id, str) or at is None:  # nothing could settle it: count it now
            _bump(self.tallies.failed, cls)
            return
        self._unsettled.pop(task_id, None)
        self._unsettled[task_id] = (cls, at)  # in failure order (the log's): settled from the front
        while len(self._unsettled) > MODEL_MEMO:  # a flood of failures: count the oldest now
            _bump(self.tallies.failed, self._unsettled.popitem(last=False)[1][0])

    def fold(self, raw: bytes, *, count: bool = True) -> None:
        """One log line into the tallies (``count=False``: learn its task's model only)."""
        m = _TYPE.search(raw)
        kind = m.group(1).decode() if m else None
        if kind not in COUNTED and kind != E.TASK_SUBMITTED and b'"model":' not in raw:
            return  # most lines (claims, starts, worker events) cost one regex search
        try:
            rec = safeio.parse_json(self.path, raw)
        except ValueError:
            self.tallies.skipped_lines += 1 if count else 0
            return
        if not isinstance(rec, dict):
            self.tallies.skipped_lines += 1 if count else 0
            return
        task_id = rec.get("task_id")
        if isinstance(task_id, str) and kind and kind.startswith("task_") and "model" in rec:
            model = rec["model"]
            self.remember(task_id, model if isinstance(model, str) and model else None)
        elif isinstance(task_id, str) and kind == E.TASK_SUBMITTED:
            self.remember(task_id, None)  # submitted without a model: it needs none
        if count and kind in COUNTED:
            self._count(kind, rec)

    def _count(self, kind: str, rec: dict[str, Any]) -> None:
        t = self.tallies
        self.generation += 1
        node = _label(rec.get("worker_id"))
        if kind == E.TASK_COMPLETED:
            model = self.model_of(rec.get("task_id"))
            seconds = _number(rec.get("duration_ms"))
            if seconds is not None:
                key = (_label(rec.get("task_class")), model)
                t.durations.setdefault(key, Histogram(DURATION_BUCKETS)).observe(seconds / 1000.0)
            tokens = rec.get("tokens_generated")
            if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
                _bump(t.tokens, (model, node), tokens)
        elif kind == E.TASK_FAILED:
            self._failed(rec)
        elif kind in (E.TASK_AWAITING_APPROVAL, E.TASK_RETRIED):
            self._unsettled.pop(str(rec.get("task_id")), None)  # escalated, or held again: it was no failure
        elif kind == E.LLM_LOADED:
            key = (_label(rec.get("model")), node)
            _bump(t.loads, key)
            t.load_seconds[key] = t.load_seconds.get(key, 0.0) + (_number(rec.get("load_s")) or 0.0)
        elif kind == E.LLM_LOAD_FAILED:
            _bump(t.load_failures, (_label(rec.get("model")), node))
        elif kind in (E.LLM_UNLOADING, E.SCRIPT_RELEASED):
            _bump(t.unloads, (_label(rec.get("model")), node))
        elif kind.startswith("escalation_"):
            _bump(t.escalations, kind.removeprefix("escalation_"))
