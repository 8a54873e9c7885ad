"""Thermal guard with hysteresis: hold new claims on a card at or above ``hot_c`` and
release it only at or below ``resume_c``.

The gap between the two stops a card hovering at the limit from flapping its worker
between paused and running every tick. Pure: temperatures in, the set of held cards out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class ThermalGuard:
    hot_c: float
    resume_c: float
    held: set[int] = field(default_factory=set)

    def update(self, temps: Mapping[int, float | None]) -> tuple[set[int], set[int]]:
        """Feed the latest temperatures; returns (newly held, newly released) card indexes.

        A card with no reading ("n/a") keeps its current state: a missing sensor must
        neither trip nor clear a hold.
        """
        became_hot: set[int] = set()
        became_cool: set[int] = set()
        for idx, temp in temps.items():
            if temp is None:
                continue
            if idx not in self.held and temp >= self.hot_c:
                self.held.add(idx)
                became_hot.add(idx)
            elif idx in self.held and temp <= self.resume_c:
                self.held.discard(idx)
                became_cool.add(idx)
        return became_hot, became_cool

    def holds_any(self, gpus: tuple[int, ...]) -> bool:
        return any(g in self.held for g in gpus)
