"""How many GPU groups each model's recent work keeps busy: the ``workers_busy`` input of the
claim policy (``engine.scheduling.costs.ModelCost``), as a rig would learn it from its event
log. Work counts when it becomes claimable, at the model's typical task time (a rig does not
know a task's run time before it runs), over a sliding window, so a pipeline's phases
(transcribe first, then segment, then embed) each get their own mix.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Mapping

from engine.scheduling.costs import SwitchCosts


class DemandWindow:
    def __init__(self, window_s: float, typical_task_s: Mapping[str, float], n_groups: int) -> None:
        if window_s <= 0:
            raise ValueError(f"demand window must be positive, got {window_s}")
        self.window_s = window_s
        self.typical_task_s = dict(typical_task_s)
        self.n_groups = n_groups
        self._events: deque[tuple[float, str, float]] = deque()
        self._work: dict[str, float] = {}
        self._total = 0.0

    def add(self, now: float, model: str | None) -> None:
        """A task for ``model`` became claimable at ``now`` (times never go backwards)."""
        if model is None:
            return
        work = self.typical_task_s.get(model, 60.0)
        self._events.append((now, model, work))
        self._work[model] = self._work.get(model, 0.0) + work
        self._total += work

    def workers_busy(self, now: float) -> dict[str, float]:
        """model -> share of the window's work x groups (empty when nothing arrived lately)."""
        while self._events and self._events[0][0] < now - self.window_s:
            _, model, work = self._events.popleft()
            self._work[model] -= work
            self._total -= work
        return {m: min(self.n_groups, w / self.window_s) for m, w in self._work.items() if w > 1e-9}

    def costs(self, base: SwitchCosts, now: float) -> SwitchCosts:
        """``base`` with each model's ``workers_busy`` from the window (0 for no recent work)."""
        busy = self.workers_busy(now)
        models = {m: replace(c, workers_busy=busy.get(m, 0.0)) for m, c in base.models.items()}
        return SwitchCosts(models=models, unknown=base.unknown)
