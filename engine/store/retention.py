"""How long a shared store keeps completed tasks' records, and when the supervisor prunes them.

Why: the Redis store keeps every task in memory; completed ones would pile up for ever (the file
store keeps ``complete/`` on disk, where that costs little). Each supervisor's tick asks
``CompletedRetention.tick(now)``; at most once a minute (sooner while a backlog remains) it has the
store remove the records of tasks completed more than ``[store] keep_completed_s`` ago, in bounded
batches (engine/store/redis/lua_operator.py: PRUNE). Several rigs' supervisors may prune the same cluster:
each batch is one script, so they never remove a record twice. Time is the ``now`` passed in.
"""

from __future__ import annotations

from typing import Protocol

PRUNE_EVERY_S = 60.0


class CompletedPruner(Protocol):
    """A store that can drop old completed records (RedisQueue)."""

    def prune_completed(self, now: float, keep_s: float) -> list[str]: ...


class CompletedRetention:
    """When the next prune is due; the pruning itself is the store's."""

    def __init__(self, pruner: CompletedPruner, keep_s: float, every_s: float = PRUNE_EVERY_S) -> None:
        self.pruner = pruner
        self.keep_s = keep_s
        self.every_s = every_s
        self.next_at = float("-inf")

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def tick(self, now: float) -> list[str]:
        """Prune when due; the ids pruned. A call that pruned something is followed by another at the
        next tick (a backlog drains at the store's batch size per tick), else after ``every_s``.
        ``StoreUnavailable`` goes to the caller (its outage handling) and the prune stays due."""
        if not self.due(now):
            return []
        pruned = self.pruner.prune_completed(now, self.keep_s)
        self.next_at = now if pruned else now + self.every_s
        return pruned
