"""Per-model demand learned from the event log, for the claim policy's demand-aware coverage.

The claim policy keeps a model warm on enough workers for its steady work
(``ModelCost.workers_busy``, docs/scheduling.md). The supervisor, the rig's single writer,
learns it here and publishes it in the snapshot (``Snapshot.model_demand``); every worker
reads it from there (``engine.worker.rigview``). Two things per model:

- **typical run time**: the median claim-to-completion time of its last ``SAMPLES`` completed
  tasks (``task_completed.duration_ms``); while fewer than ``MIN_SAMPLES`` exist, the cost
  table's ``task_s`` counts as one more sample, so one slow first task (a cold load) does not
  set the price alone;
- **workers busy**: its tasks that became claimable in the last hour (submitted, released from
  a dependency, promoted after backoff, retried, handed back, requeued), each counted once per
  window, x typical run time / the hour, capped at the number of GPU groups: the simulator's
  ``DemandWindow``, the same code.

The log is read incrementally (file offset kept; a new inode, a shorter file, or a file whose
byte before the offset is no longer a newline starts over; an unfinished last line waits for
its newline; a line that is not a JSON event is counted and
skipped). On start the last ``SEED_MAX_BYTES`` of the log are read, so a restart does not
forget the last hour. Events do not name their model, so it is looked up by task id
(``ModelLookup``), at most ``LOOKUPS_PER_UPDATE`` task files per call: a big burst is
resolved over a few ticks instead of stalling one. Time is a parameter (``now``).
"""

from __future__ import annotations

import os
import statistics
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine import safeio
from engine.config import GalaxyConfig
from engine.event_types import EventType
from engine.events import salvage_event
from engine.logsetup import rotated_rest
from engine.model import parse_time
from engine.paths import RigPaths
from engine.queue.names import parse_queue_name
from engine.queue.protocol import TaskQueue
from engine.scheduling.costs import SwitchCosts
from engine.scheduling.demand import DemandWindow
from engine.snapshot import ModelDemandView
from engine.store.channels import EventStream

WINDOW_S = 3600.0
SAMPLES = 25
MIN_SAMPLES = 3
READ_BYTES_PER_UPDATE = 1 << 20  # a backlog (the seed, a burst) is read over several ticks
STREAM_LINES_PER_UPDATE = 5_000  # the same for the store's stream (a line is a few hundred bytes)
SEED_MAX_BYTES = 8 << 20
LOOKUPS_PER_UPDATE = 500
LISTING_FROM = 16  # this many unknown ids: one listing of queue/ names most of them at once
MODEL_CACHE = 20_000

CLAIMABLE_EVENTS = frozenset({EventType.TASK_SUBMITTED, EventType.TASK_RELEASED, EventType.TASK_PROMOTED,
                              EventType.TASK_RETRIED, EventType.TASK_LOST, EventType.TASK_HANDED_BACK,
                              EventType.TASK_REQUEUED})
"""Events after which the task waits in queue/ (task_retried may wait on a dependency first:
its task_released then falls in the same window and is not counted twice)."""
COMPLETED = EventType.TASK_COMPLETED


class ModelLookup(Protocol):
    def models(self, task_ids: Sequence[str], budget: int) -> dict[str, str | None]:
        """task id -> its model (None: none, or task unknown) for the ids it could look up."""
        ...


class QueueModelLookup:
    """Models by task id from the queue: queue/ names carry the model (one listing serves a
    burst); any other task is read once with ``queue.get``."""

    def __init__(self, queue: TaskQueue, queue_dir: Path | None = None) -> None:
        self.queue = queue
        self.queue_dir = queue_dir

    def models(self, task_ids: Sequence[str], budget: int) -> dict[str, str | None]:
        wanted = set(task_ids)
        out: dict[str, str | None] = {}
        if self.queue_dir is not None and len(wanted) >= LISTING_FROM:
            try:
                names = os.listdir(self.queue_dir)
            except OSError:
                names = []
            for name in names:
                qn = parse_queue_name(name)
                if qn is not None and qn.task_id in wanted:
                    out[qn.task_id] = qn.model
        for task_id in task_ids:
            if task_id in out:
                continue
            if budget <= 0:
                break
            budget -= 1
            try:
                task = self.queue.get(task_id)
            except Exception:  # noqa: BLE001 - an unreadable task file costs one count, never the tick
                task = None
            out[task_id] = task.model if task is not None else None
        return out


@dataclass(frozen=True)
class _Pending:
    at: float
    kind: str  # "claimable" | "completed"
    task_id: str
    duration_s: float | None = None


class ModelDemand:
    def __init__(self, events_path: Path, lookup: ModelLookup, *, n_groups: int, priors: SwitchCosts,
                 window_s: float = WINDOW_S, seed_max_bytes: int = SEED_MAX_BYTES,
                 stream: EventStream | None = None, rig: str | None = None) -> None:
        self.path = Path(events_path)
        self.stream = stream  # the store's event stream (Redis), followed instead of the file
        self.rig = rig  # a shared stream: other rigs' lines are left out (lines naming no rig count)
        self._cursor: str | None = None
        self.seed_max_bytes = seed_max_bytes
        self.lookup = lookup
        self.priors = priors
        self.window = DemandWindow(window_s, {}, max(1, n_groups))
        self.samples: dict[str, deque[float]] = {}
        self.bad_lines = 0
        self.errors = 0
        self.rewinds = 0  # logs found rewritten under us (read again from the start)
        self._inode: int | None = None
        self._offset = 0
        self._seeded = False
        self._skip_partial = False
        self._pending: deque[_Pending] = deque()
        self._models: OrderedDict[str, str | None] = OrderedDict()
        self._counted: dict[str, float] = {}  # task id -> when it was last counted as claimable

    # ------------------------------------------------------------ public
    def update(self, now: float) -> None:
        """Read what the log gained since the last call and fold it in."""
        try:
            self._read(now)
            self._resolve()
            self._fold(now)
        except OSError:
            self.errors += 1

    def view(self, now: float) -> dict[str, ModelDemandView]:
        """model -> demand for the snapshot (updates first); models with neither recent work nor history are left out."""
        self.update(now)
        busy = self.window.workers_busy(now)
        arrivals = self.window.arrivals(now)
        out = {}
        for model in sorted(set(busy) | set(arrivals) | set(self.samples)):
            learned = self.samples.get(model)
            out[model] = ModelDemandView(
                workers_busy=round(busy.get(model, 0.0), 4),
                task_s=round(self.typical_s(model), 3) if learned else None,
                task_s_samples=len(learned) if learned else 0, claimable=arrivals.get(model, 0),
                window_s=self.window.window_s)
        return out

    def typical_s(self, model: str) -> float:
        prior = self.priors.task_s(model)
        seen = list(self.samples.get(model, ()))
        if len(seen) < MIN_SAMPLES:
            seen.append(prior)
        return float(statistics.median(seen))

    # ------------------------------------------------------------ reading
    def _read(self, now: float) -> None:
        if self.stream is not None:
            new, self._cursor = self.stream.read_after(self._cursor, STREAM_LINES_PER_UPDATE)
            for line in new:
                self._parse(line.encode())
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seeded = True  # nothing to remember: every line of a new log is new
            return
        if st.st_ino != self._inode or st.st_size < self._offset:  # first read, rotated or truncated
            if st.st_ino != self._inode and not self._skip_partial:  # rotated: finish the old file (events.jsonl.1)
                for raw in rotated_rest(self.path, self._inode, self._offset).split(b"\n"):
                    if raw.strip():
                        self._parse(raw)
            self._inode = st.st_ino
            self._offset = 0
            self._skip_partial = False
            if not self._seeded and st.st_size > self.seed_max_bytes:
                self._offset = st.st_size - self.seed_max_bytes
                self._skip_partial = True
        self._seeded = True
        if st.st_size <= self._offset:
            return
        check = self._offset > 0 and not self._skip_partial
        try:  # the name may have become a FIFO or link since the stat: never block the supervisor on it
            fd = safeio.open_regular(self.path, 1 << 62)
        except (FileNotFoundError, safeio.UnsafeFileError):
            return
        with os.fdopen(fd, "rb") as fh:
            fh.seek(self._offset - 1 if check else self._offset)
            data = fh.read(READ_BYTES_PER_UPDATE + (1 if check else 0))
        if check:
            if data[:1] != b"\n":  # rewritten in place and already longer than before: start over
                self._offset = 0
                self.rewinds += 1
                return
            data = data[1:]
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) < READ_BYTES_PER_UPDATE:
                return  # an unfinished line: wait for its newline
            self._offset += len(data)  # a megabyte without a newline is not an event log
            self._skip_partial = True
            self.bad_lines += 1
            return
        self._offset += end + 1
        lines = data[: end + 1].split(b"\n")
        if self._skip_partial:
            lines, self._skip_partial = lines[1:], False  # the seed started mid-line
        for raw in lines:
            if raw.strip():
                self._parse(raw)

    def _parse(self, raw: bytes) -> None:
        try:
            rec = safeio.parse_json(self.path, raw)  # a line nested 100k deep is a bad line, not a crash
            kind = rec.get("event_type")
            task_id = rec.get("task_id")
            at = parse_time(rec.get("timestamp"), "timestamp")
        except (ValueError, AttributeError):
            glued = salvage_event(raw)  # a whole line behind a torn fragment (disk full) still counts
            if glued is not None:
                self._parse(glued)
                return
            self.bad_lines += 1
            return
        if kind not in CLAIMABLE_EVENTS and kind != COMPLETED:
            return
        if self.rig is not None and rec.get("rig") not in (None, self.rig):
            return  # another rig's work on the cluster's stream
        if not isinstance(task_id, str) or at is None:
            self.bad_lines += 1
            return
        if "model" in rec:  # a queue that names the model saves the lookup
            model = rec["model"]
            self._remember(task_id, model if isinstance(model, str) and model else None)
        if kind == COMPLETED:
            ms = rec.get("duration_ms")
            if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
                self._pending.append(_Pending(at, "completed", task_id, ms / 1000.0))
            return
        self._pending.append(_Pending(at, "claimable", task_id))

    # ------------------------------------------------------------ folding in
    def _resolve(self) -> None:
        unknown = list(dict.fromkeys(p.task_id for p in self._pending if p.task_id not in self._models))
        if not unknown:
            return
        try:
            found = self.lookup.models(unknown, LOOKUPS_PER_UPDATE)
        except Exception:  # noqa: BLE001 - a broken lookup loses these counts, never the snapshot
            self.errors += 1
            found = dict.fromkeys(unknown)
        for task_id, model in found.items():
            self._remember(task_id, model)

    def _fold(self, now: float) -> None:
        """Apply pending events in log order, up to the first whose model is still unknown."""
        horizon = now - self.window.window_s
        while self._pending:
            p = self._pending[0]
            if p.task_id not in self._models:
                return
            self._pending.popleft()
            model = self._models[p.task_id]
            if model is None:
                continue
            if p.kind == "completed":
                ring = self.samples.setdefault(model, deque(maxlen=SAMPLES))
                ring.append(p.duration_s or 0.0)
                self.window.set_typical(model, self.typical_s(model))
                continue
            if p.at < horizon or p.at - self._counted.get(p.task_id, float("-inf")) < self.window.window_s:
                continue  # already out of the window, or this task is counted in it already
            if model not in self.window.typical_task_s:
                self.window.set_typical(model, self.typical_s(model))
            self._counted[p.task_id] = p.at
            self.window.add(p.at, model)
        if len(self._counted) > 2 * MODEL_CACHE:
            self._counted = {k: t for k, t in self._counted.items() if t >= horizon}

    def _remember(self, task_id: str, model: str | None) -> None:
        self._models[task_id] = model
        self._models.move_to_end(task_id)
        while len(self._models) > MODEL_CACHE:
            self._models.popitem(last=False)


def rig_demand(config: GalaxyConfig, paths: RigPaths, queue: TaskQueue, *,
               stream: EventStream | None = None) -> ModelDemand:
    """The supervisor's learner: the rig's event log (``stream``: the store's shared stream, this rig's
    lines), models looked up in its queue, capped at its GPU groups, priced (until it has history) with
    the workers' own cost table."""
    from engine.worker.rigview import default_costs

    gpu_groups = sum(1 for g in config.groups if g.gpus) or len(config.groups)
    return ModelDemand(paths.events, QueueModelLookup(queue, paths.queue), n_groups=gpu_groups,
                       priors=default_costs(), stream=stream, rig=config.rig if stream is not None else None)
