"""Reading the Redis queue scripts' replies: the lane heads a claim or completion hands back, whether a
finish was applied by an earlier try, and the same-age shortcut a contended claim offers its script."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from engine.queue.protocol import Candidate, ClaimPolicy


def same_enq(policy: ClaimPolicy, top: Candidate, offered: Sequence[Candidate], head: tuple[str, float, int],
              now: float) -> str:
    """The enqueue time (us) at which another task of ``top``'s lane is the same choice: when the policy
    still puts ``top`` first with its lane at depth 1 (the policy only ever prefers a deeper lane more:
    depth weighs in the look-ahead alone), a worker that finds the head taken by another takes the
    next one enqueued at that very time instead of answering a conflict. "" when depth matters."""
    if head[2] <= 1:
        return ""
    others = [c for c in offered if c.task_id != top.task_id]
    again = policy([replace(top, lane_depth=1), *others], now)
    return str(int(head[1])) if again and again[0].task_id == top.task_id else ""


def applied_earlier(reply: dict[str, Any]) -> bool:
    """A finish (complete, fail, release) answered "done": this very claim's finish, applied by an
    earlier try whose reply was lost (``run``'s resend, or a kept result recorded again after
    ``StoreUnavailable``). Only the token's holder can get it, and it has written no event for that
    finish yet (a finish whose reply arrived drops the claim, so it is never sent again): the caller
    writes the events now, once, from what the script answers the finish did."""
    return reply.get("state") == "done"


Heads = dict[str, tuple[str, float, int]]
"""lane -> (head id, enqueue us, depth)."""


def heads_of(reply: dict[str, Any]) -> tuple[Heads, str]:
    """The lane heads a script answered (``hd``) and the wake counter they are as of."""
    return apply_heads({}, reply.get("hd") or []), str(reply.get("ver", "0"))


def apply_heads(heads: Heads, flat: Sequence[Any]) -> Heads:
    """``heads`` with the lanes of a flat list as the scripts give it (lane, 'ID ENQ DEPTH', ...: the
    hash ``hd``, or a wake's lanes) set to their heads; a lane given as '' is empty (removed); the
    hash's mark (lane '') is skipped. Raises ValueError for a list that is not that."""
    out = dict(heads)
    for i in range(0, len(flat) - 1, 2):
        lane, entry = str(flat[i]), str(flat[i + 1])
        if not lane:
            continue
        if not entry:
            out.pop(lane, None)
            continue
        task_id, enq, depth = entry.rsplit(" ", 2)
        out[lane] = (task_id, float(enq), int(depth))
    return out
