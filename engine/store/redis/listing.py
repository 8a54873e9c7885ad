"""Pages of a Redis queue's claimable tasks in claim order, for the dashboard's Tasks view
(engine.queue.protocol.QueuedSource; FileQueue's is engine.queue.listing.QueueLister).

Claim order: resource tasks first, then priority (high first), then enqueue time, then id. Lanes
with the same (resource, priority) are merged by enqueue time. A page reads at most
``offset + limit`` ids from each lane of the group it starts in; lanes before it are skipped by their
depth. A filter word that the lane's class or model contains matches the whole lane; a word that
must match task ids reads at most ``SEARCH_CAP`` ids of each lane (a search looks that deep).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from engine.model import TaskClass
from engine.queue.protocol import DEFAULT_PAGE, QueuedPage, QueuedRow
from engine.store.redis import codec

if TYPE_CHECKING:
    from engine.store.redis.queue import RedisQueue

SEARCH_CAP = 20_000


class RedisQueueLister:
    def __init__(self, q: RedisQueue) -> None:
        self.q = q

    def close(self) -> None:
        return None

    def page(self, offset: int = 0, limit: int = DEFAULT_PAGE, text: str = "") -> QueuedPage:
        r = self.q.r
        lanes = sorted(str(lane) for lane in r.smembers(self.q.key("lanes")))
        pipe = r.pipeline(transaction=False)
        for lane in lanes:
            pipe.zcard(self.q.key(f"lane:{lane}"))
        depth = {lane: int(n) for lane, n in zip(lanes, pipe.execute() if lanes else [])}
        total = sum(depth.values())
        words = text.lower().split()
        groups: dict[tuple[int, int], list[str]] = {}
        for lane in lanes:
            cls, _model, prio, _kind, _executor = codec.parse_lane(lane)
            groups.setdefault((0 if cls is TaskClass.RESOURCE else 1, -prio), []).append(lane)
        rows: list[QueuedRow] = []
        matched = 0
        for key in sorted(groups):
            group = groups[key]
            id_words = {lane: self._id_words(lane, words) for lane in group}
            searched = {lane: self._search(lane, w) for lane, w in id_words.items() if w}
            group_n = sum(len(searched[lane]) if lane in searched else depth[lane] for lane in group)
            skip = offset + len(rows) - matched  # the next row the page needs, inside this group
            if len(rows) < limit and 0 <= skip < group_n:
                need = skip + limit - len(rows)
                merged = heapq.merge(*(self._entries(lane, searched.get(lane), need) for lane in group))
                for i, (enq, task_id, lane) in enumerate(merged):
                    if i >= need:
                        break
                    if i >= skip:
                        cls, model, prio, _kind, _executor = codec.parse_lane(lane)
                        rows.append(QueuedRow(task_id, cls.value, model, prio, enq / 1e6, matched + i))
            matched += group_n
        return QueuedPage(tuple(rows), offset, matched, total)

    @staticmethod
    def _id_words(lane: str, words: list[str]) -> list[str]:
        """The filter words the lane's class and model do not contain: ids must."""
        cls, model, _prio, _kind, _executor = codec.parse_lane(lane)
        lane_text = f"{cls.value} {model or ''}".lower()
        return [w for w in words if w not in lane_text]

    def _search(self, lane: str, words: list[str]) -> list[tuple[float, str]]:
        raw: list[Any] = list(self.q.r.zrange(self.q.key(f"lane:{lane}"), 0, SEARCH_CAP - 1, withscores=True))
        return [(float(score), str(task_id)) for task_id, score in raw
                if all(w in str(task_id).lower() for w in words)]

    def _entries(self, lane: str, searched: list[tuple[float, str]] | None, need: int
                 ) -> Iterator[tuple[float, str, str]]:
        if searched is not None:
            for enq, task_id in searched[:need]:
                yield enq, task_id, lane
            return
        raw: list[Any] = list(self.q.r.zrange(self.q.key(f"lane:{lane}"), 0, max(0, need - 1), withscores=True))
        for task_id, score in raw:
            yield float(score), str(task_id), lane
