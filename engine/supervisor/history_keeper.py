"""Keeps the rig's recent history (``engine.history``) in bounded rings, one sample every few seconds.

Why rings of a fixed length, all appended together: memory and file size stay bounded
(15 minutes at one sample per 2 s is 451 points a series), and every series stays aligned
with ``times`` without storing a time per point. A GPU or model that appears later is
padded with ``None`` in front; a model whose whole ring is ``None`` is dropped.

Tokens/s per model, per sample: while workers were generating with the model during the
interval, the mean over those ticks of their live rates added up (a long generation shows
as it runs); otherwise the tokens of its tasks that completed in the interval divided by
the interval (tasks shorter than a tick never show a live rate); ``None`` when neither.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.history import HISTORY_VERSION, GpuSeries, ModelSeries, RigHistory
from engine.model import Task
from engine.supervisor.snapshot_builder import WorkerInfo, is_fresh
from engine.telemetry.protocol import GpuSample

SEEN_MAX = 2000  # completed task ids remembered, so a task is counted once
SAMPLE_S = 2.0
SPAN_S = 900.0
WRITE_S = 4.0

Ring = deque[float | None]


def _ring(cap: int, pad: int) -> Ring:
    return deque([None] * min(pad, cap), maxlen=cap)


@dataclass
class _GpuRings:
    name: str
    mem_total_mb: float | None
    power_limit_w: float | None
    util: Ring
    mem: Ring
    temp: Ring
    power: Ring

    def add(self, s: GpuSample | None) -> None:
        if s is not None:
            self.name = s.name
            self.mem_total_mb = s.mem_total_mb if s.mem_total_mb is not None else self.mem_total_mb
            self.power_limit_w = s.power_limit_w if s.power_limit_w is not None else self.power_limit_w
        for ring, attr in ((self.util, "util_pct"), (self.mem, "mem_used_mb"), (self.temp, "temp_c"),
                           (self.power, "power_w")):
            value = getattr(s, attr, None) if s is not None else None
            ring.append(round(float(value), 1) if value is not None else None)


@dataclass
class HistoryKeeper:
    sample_s: float = SAMPLE_S
    span_s: float = SPAN_S
    write_s: float = WRITE_S
    pid: int | None = None
    times: deque[float] = field(init=False)
    gpus: dict[int, _GpuRings] = field(default_factory=dict, init=False)
    models: dict[str, Ring] = field(default_factory=dict, init=False)
    next_sample_at: float = field(default=float("-inf"), init=False)
    next_write_at: float = field(default=float("-inf"), init=False)
    _rate_sum: dict[str, float] = field(default_factory=dict, init=False)
    _rate_ticks: dict[str, int] = field(default_factory=dict, init=False)
    _done_tokens: dict[str, float] = field(default_factory=dict, init=False)
    _seen: dict[str, None] = field(default_factory=dict, init=False)  # insertion-ordered set
    _last_sample: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.sample_s <= 0 or self.span_s < self.sample_s:
            raise ValueError(f"history: sample_s {self.sample_s} must be > 0 and <= span_s {self.span_s}")
        self.times = deque(maxlen=self.capacity)

    @property
    def capacity(self) -> int:
        return int(self.span_s / self.sample_s) + 1

    def observe(self, now: float, samples: Sequence[GpuSample], workers: Sequence[WorkerInfo],
                completed: Sequence[Task] = ()) -> bool:
        """Called every tick with the live workers and recent completions; True when it took a sample."""
        for model, rate in live_rates(workers).items():
            self._rate_sum[model] = self._rate_sum.get(model, 0.0) + rate
            self._rate_ticks[model] = self._rate_ticks.get(model, 0) + 1
        for t in completed:  # the first call's are from before this supervisor: remembered, not counted
            self._count_completion(t, count=self._last_sample is not None)
        if now < self.next_sample_at:
            return False
        self.next_sample_at = now + self.sample_s
        self._sample(now, samples)
        return True

    def write_due(self, now: float) -> bool:
        if now < self.next_write_at:
            return False
        self.next_write_at = now + self.write_s
        return True

    def _count_completion(self, t: Task, count: bool) -> None:
        if t.task_id in self._seen:
            return
        self._seen[t.task_id] = None
        if len(self._seen) > SEEN_MAX:
            del self._seen[next(iter(self._seen))]
        if not count:
            return
        result = t.result or {}
        tokens = result.get("tokens_generated")
        model = t.model or result.get("model")
        if isinstance(tokens, (int, float)) and not isinstance(tokens, bool) and tokens > 0 and isinstance(model, str):
            self._done_tokens[model] = self._done_tokens.get(model, 0.0) + float(tokens)

    def _rate(self, model: str, interval: float) -> float | None:
        ticks = self._rate_ticks.get(model, 0)
        if ticks:
            return round(self._rate_sum[model] / ticks, 1)
        done = self._done_tokens.get(model)
        return round(done / interval, 1) if done and interval > 0 else None

    def _sample(self, now: float, samples: Sequence[GpuSample]) -> None:
        cap, pad = self.capacity, len(self.times)
        interval = now - self._last_sample if self._last_sample is not None else self.sample_s
        self._last_sample = now
        self.times.append(round(now, 3))
        by_index = {s.index: s for s in samples}
        for index, s in by_index.items():
            if index not in self.gpus:
                self.gpus[index] = _GpuRings(s.name, s.mem_total_mb, s.power_limit_w, _ring(cap, pad),
                                             _ring(cap, pad), _ring(cap, pad), _ring(cap, pad))
        for index, rings in self.gpus.items():
            rings.add(by_index.get(index))
        for model in (*self._rate_ticks, *self._done_tokens):
            self.models.setdefault(model, _ring(cap, pad))
        for model, ring in list(self.models.items()):
            ring.append(self._rate(model, interval))
            if all(v is None for v in ring):
                del self.models[model]
        self._rate_sum.clear()
        self._rate_ticks.clear()
        self._done_tokens.clear()

    def view(self, now: float) -> RigHistory:
        return RigHistory(
            version=HISTORY_VERSION, taken_at=now, interval_s=self.sample_s, times=tuple(self.times),
            gpus=tuple(GpuSeries(index=i, name=r.name, mem_total_mb=r.mem_total_mb, power_limit_w=r.power_limit_w,
                                 util_pct=tuple(r.util), mem_used_mb=tuple(r.mem), temp_c=tuple(r.temp),
                                 power_w=tuple(r.power))
                       for i, r in sorted(self.gpus.items())),
            models=tuple(ModelSeries(model=m, tokens_per_s=tuple(ring)) for m, ring in sorted(self.models.items())),
            supervisor_pid=self.pid)


def live_rates(workers: Sequence[WorkerInfo]) -> dict[str, float]:
    """model -> tokens/s summed over the live workers generating with it right now."""
    out: dict[str, float] = {}
    for w in workers:
        st = w.status
        if st is None or not is_fresh(w) or not st.current_task or st.tokens_per_s is None:
            continue
        model = st.resident_model or "?"
        out[model] = out.get(model, 0.0) + float(st.tokens_per_s)
    return out
