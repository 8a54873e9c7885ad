"""How many GPU groups each model's recent work keeps busy: the ``workers_busy`` input of the
claim policy (``engine.scheduling.costs.ModelCost``). The simulator (``engine.sim.des``) and a
live rig (``engine.supervisor.model_demand``, from the event log) use this same window.

Work counts when it becomes claimable, at the model's typical task time (a rig does not know
a task's run time before it runs), over a sliding window, so a pipeline's phases (transcribe
first, then segment, then embed) each get their own mix. The window keeps arrival *counts*
and multiplies by the typical time when asked: a rig that learns a model's run time while
work arrives re-prices the whole window at once (the simulator's typical times never change,
so for it the two are the same).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace

from engine.scheduling.costs import SwitchCosts

DEFAULT_TYPICAL_TASK_S = 60.0  # a model the typical-time table does not know


class DemandWindow:
    def __init__(self, window_s: float, typical_task_s: Mapping[str, float], n_groups: int) -> None:
        if window_s <= 0:
            raise ValueError(f"demand window must be positive, got {window_s}")
        self.window_s = window_s
        self.typical_task_s = dict(typical_task_s)
        """model -> seconds; a live rig updates it as completions teach it (``set_typical``)."""
        self.n_groups = n_groups
        self._events: deque[tuple[float, str]] = deque()
        self._count: dict[str, int] = {}

    def add(self, now: float, model: str | None) -> None:
        """A task for ``model`` became claimable at ``now`` (times never go backwards)."""
        if model is None:
            return
        self._events.append((now, model))
        self._count[model] = self._count.get(model, 0) + 1

    def set_typical(self, model: str, task_s: float) -> None:
        """What a task of ``model`` typically runs now (prices the whole window, past arrivals too)."""
        self.typical_task_s[model] = task_s

    def arrivals(self, now: float) -> dict[str, int]:
        """model -> tasks that became claimable in the window ending at ``now``."""
        self._expire(now)
        return dict(self._count)

    def workers_busy(self, now: float) -> dict[str, float]:
        """model -> share of the window's work x groups (empty when nothing arrived lately)."""
        self._expire(now)
        out = {}
        for m, n in self._count.items():
            work = n * self.typical_task_s.get(m, DEFAULT_TYPICAL_TASK_S)
            if work > 1e-9:
                out[m] = min(self.n_groups, work / self.window_s)
        return out

    def costs(self, base: SwitchCosts, now: float) -> SwitchCosts:
        """``base`` with each model's ``workers_busy`` from the window (0 for no recent work)."""
        busy = self.workers_busy(now)
        models = {m: replace(c, workers_busy=busy.get(m, 0.0)) for m, c in base.models.items()}
        return SwitchCosts(models=models, unknown=base.unknown)

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] < now - self.window_s:
            _, model = self._events.popleft()
            left = self._count[model] - 1
            if left:
                self._count[model] = left
            else:
                del self._count[model]
