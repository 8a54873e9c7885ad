"""Read side of the RedisQueue: one task, counts, "why does this wait", recent results, live claims, the ids in a place.

Counts come from per-state counters the transition scripts keep (``n:STATE``), so nothing here
scans a state's members; the lists read at most ``limit`` entries per lane or state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.model import Attempt, Executor, Task, TaskClass, TaskStatus, TaskValidationError, is_safe_task_id
from engine.queue.names import parse_needs
from engine.queue.protocol import ClaimView, Place, QueueCounts, WaitingLane, WaitingTask
from engine.store.redis import codec

if TYPE_CHECKING:
    from engine.store.redis.queue import RedisQueue

STATES = ("held", "delayed", "queue", "processing", "complete", "failed")


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def get_many(q: RedisQueue, ids: list[str]) -> list[Task | None]:
    """The tasks as stored now (None for an unknown id or a damaged record), in one round trip."""
    pipe = q.r.pipeline(transaction=False)
    for task_id in ids:
        pipe.hgetall(q.key(f"t:{task_id}"))
        pipe.lrange(q.key(f"a:{task_id}"), 0, -1)
    raw = pipe.execute()
    out: list[Task | None] = []
    for i, task_id in enumerate(ids):
        fields, attempts = raw[2 * i], raw[2 * i + 1]
        if not fields or fields.get("st") in (None, "new", "restoring"):
            out.append(None)
            continue
        try:
            out.append(codec.decode_task(task_id, fields, attempts, where=f"redis {q.key('t:' + task_id)}"))
        except TaskValidationError:
            out.append(None)
    return out


def get(q: RedisQueue, task_id: str) -> Task | None:
    if not is_safe_task_id(task_id):
        return None
    return get_many(q, [task_id])[0]


def counts(q: RedisQueue) -> QueueCounts:
    pipe = q.r.pipeline(transaction=False)
    for state in (*STATES, "awaiting"):
        pipe.hgetall(q.key(f"n:{state}"))
    pipe.smembers(q.key("lanes"))
    *per_state, lanes = pipe.execute()
    by_state: dict[str, dict[str, int]] = {}
    for state, raw in zip((*STATES, "awaiting"), per_state):
        got = {str(k): int(v) for k, v in raw.items() if int(v) > 0}
        if state != "awaiting" or got:
            by_state[state] = got
    lane_list = sorted(str(lane) for lane in lanes)
    pipe = q.r.pipeline(transaction=False)
    for lane in lane_list:
        pipe.zcard(q.key(f"lane:{lane}"))
    depths = pipe.execute()
    grouped: dict[tuple[str, str, str, str], int] = {}
    for lane, depth in zip(lane_list, depths):
        cls, model_q, _prio, needs = lane.split(codec.LANE_SEP)[:4]
        key = (cls, model_q, needs, codec.lane_rig(lane) or "")
        grouped[key] = grouped.get(key, 0) + int(depth)
    waiting = []
    for (cls, model_q, needs, rig), n in sorted(grouped.items()):
        kind, executor = parse_needs(needs) if needs else (None, Executor.WORKER)
        _, model, _, _, _ = codec.parse_lane(f"{cls}|{model_q}|0|{needs}")
        waiting.append(WaitingLane(cls, model, kind.value if kind else None, executor.value, n, rig=rig or None))
    return QueueCounts(by_state=by_state, lanes=tuple(waiting))


def _order(lane: str) -> tuple[int, int]:
    cls, _, prio, _, _ = codec.parse_lane(lane)
    return (0 if cls is TaskClass.RESOURCE else 1, -prio)


def oldest_waiting(q: RedisQueue, now: float, limit: int) -> list[WaitingTask]:
    out: list[WaitingTask] = []
    lanes = sorted(str(lane) for lane in q.r.smembers(q.key("lanes")))
    pipe = q.r.pipeline(transaction=False)
    for lane in lanes:
        pipe.zrange(q.key(f"lane:{lane}"), 0, max(0, limit - 1), withscores=True)
        pipe.zcard(q.key(f"lane:{lane}"))
    raw = pipe.execute()
    entries: list[tuple[float, str, str]] = []
    depth: dict[str, int] = {}
    for i, lane in enumerate(lanes):
        entries += [(float(score), str(task_id), lane) for task_id, score in raw[2 * i]]
        depth[lane] = int(raw[2 * i + 1])
    entries = sorted(entries)[:limit]
    tasks = get_many(q, [e[1] for e in entries])
    for (score, task_id, lane), task in zip(entries, tasks):
        order = _order(lane)
        ahead = sum(depth[other] for other in lanes if _order(other) < order)
        same = [other for other in lanes if _order(other) == order]
        if same:
            pipe = q.r.pipeline(transaction=False)
            for other in same:
                pipe.zcount(q.key(f"lane:{other}"), "-inf", f"({int(score)}")
            ahead += sum(int(n) for n in pipe.execute())
        cls, model, prio, kind, executor = codec.parse_lane(lane)
        reason = (f"waiting: priority {prio} behind {ahead}" if ahead
                  else "next in line: waiting for a free worker that takes this class")
        out.append(WaitingTask(task_id, task.name if task else task_id, cls.value, prio, score / 1e6, reason,
                               model=model, kind=kind.value if kind else None, executor=executor.value,
                               rig=codec.lane_rig(lane)))
    delayed: list[Any] = list(q.r.zrange(q.key("delayed"), 0, max(0, limit - 1), withscores=True))
    for (task_id, due), task in zip(delayed, get_many(q, [str(d[0]) for d in delayed])):
        if task is None:
            continue
        since = task.attempts[-1].ended_at or task.created_at if task.attempts else task.created_at
        out.append(WaitingTask(str(task_id), task.name, task.task_class.value, task.priority, since,
                               f"backoff until {_hms(float(due) / 1e6)} (retry {task.retry_count} of "
                               f"{task.max_retries})"))
    held: list[Any] = list(q.r.zrange(q.key("held"), 0, max(0, limit - 1), withscores=True))
    for (task_id, since_us), task in zip(held, get_many(q, [str(h[0]) for h in held])):
        if task is None:
            continue
        pipe = q.r.pipeline(transaction=False)
        for dep in task.depends_on:
            pipe.hget(q.key(f"t:{dep}"), "st")
        states = pipe.execute() if task.depends_on else []
        pending = [d for d, st in zip(task.depends_on, states) if st != "complete"]
        out.append(WaitingTask(str(task_id), task.name, task.task_class.value, task.priority, float(since_us) / 1e6,
                               f"dependency pending: {', '.join(pending) or '(releasing)'}",
                               depends_on=task.depends_on))
    out.sort(key=lambda w: w.waiting_since)
    return out[:limit]


def recent(q: RedisQueue, state: str, limit: int) -> list[Task]:
    if state == "processing":
        ids = [str(i) for i in q.r.zrange(q.key("proc"), 0, -1)]  # one per running claim: bounded by workers
        pipe = q.r.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(q.key(f"t:{task_id}"), "clm")
        claimed = pipe.execute()
        running = []
        for task, clm in zip(get_many(q, ids), claimed):
            if task is None or task.status is not TaskStatus.PROCESSING or not clm:
                continue
            started = int(clm) / 1e6
            now_try = Attempt(number=len(task.attempts) + 1, worker_id=task.lease_owner or "", started_at=started)
            running.append((started, task.with_changes(attempts=task.attempts + (now_try,))))
        running.sort(key=lambda x: x[0], reverse=True)
        return [t for _, t in running[:limit]]
    if state not in ("complete", "failed"):
        raise ValueError(f"recent() takes complete, failed or processing, not {state!r}")
    want = TaskStatus(state)
    out: list[Task] = []
    seen: set[str] = set()
    start = 0
    page = max(limit, 50)
    while len(out) < limit and start < 1000:  # the list keeps the newest 1000 (RECENT_CAP in lua.py)
        ids = [str(i) for i in q.r.lrange(q.key(f"recent:{state}"), start, start + page - 1)]
        if not ids:
            break
        fresh = [i for i in ids if i not in seen]
        seen.update(fresh)
        for task in get_many(q, fresh):
            if task is not None and task.status is want and len(out) < limit:
                out.append(task)
        start += page
    return out


CLAIM_FIELDS = ("st", "own", "clm", "exp", "inst")


def _claim_view(task_id: str, raw: Sequence[Any]) -> ClaimView | None:
    st, own, clm, exp, inst = raw
    if st != "processing" or not own or not clm or not exp:
        return None
    return ClaimView(task_id, str(own), int(clm) / 1e6, int(exp) / 1e6, str(inst or ""))


def claim_of(q: RedisQueue, task_id: str) -> ClaimView | None:
    return _claim_view(task_id, q.r.hmget(q.key(f"t:{task_id}"), list(CLAIM_FIELDS)))


def claims(q: RedisQueue, worker_id: str | None) -> list[ClaimView]:
    ids = [str(i) for i in q.r.zrange(q.key("proc"), 0, -1)]
    pipe = q.r.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(q.key(f"t:{task_id}"), list(CLAIM_FIELDS))
    found = [_claim_view(task_id, raw) for task_id, raw in zip(ids, pipe.execute() if ids else [])]
    return [v for v in found if v is not None and (worker_id is None or v.worker_id == worker_id)]


def ids_in(q: RedisQueue, place: Place) -> list[str]:
    if place is Place.QUEUE:
        lanes = sorted(str(lane) for lane in q.r.smembers(q.key("lanes")))
        return [str(i) for lane in lanes for i in q.r.zrange(q.key("lane:" + lane), 0, -1)]
    zsets = {Place.HELD: "held", Place.DELAYED: "delayed", Place.PROCESSING: "proc", Place.FAILED: "failed",
             Place.AWAITING: "awaiting"}
    if place not in zsets:
        raise ValueError(f"ids_in() lists held, delayed, queue, processing, awaiting or failed, not "
                         f"{place.value!r}: complete tasks are read one by one with get()")
    return [str(i) for i in q.r.zrange(q.key(zsets[place]), 0, -1)]
