"""Escalation records in Redis: a hash per record (``esc:<id>``: its state and its JSON) and a
sorted set ``escalations`` by creation time. A decision is one script that writes the new record
only while the stored state is the expected one, and otherwise returns the winner's record;
a send is marked by ``esc:<id>:sending`` (SET NX with an expiry, released by its token)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import redis

from engine.escalation.store import PENDING, CasResult, Escalation, EscalationState, settled_at
from engine.ids import IdKind, check_escalation_id, is_valid_id
from engine.schema import SchemaError, from_plain, to_plain
from engine.store.redis.channels.base import answering

_CAS = """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0} end
if cur ~= ARGV[1] then return {0, redis.call('HGET', KEYS[1], 'record')} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'record', ARGV[3])
return {1}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_PRUNE_ONE = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""


class RedisSendingHold:
    def __init__(self, client: redis.Redis, key: str, token: str) -> None:
        self.client, self.key, self.token = client, key, token
        self._release = client.register_script(_RELEASE)

    def release(self) -> None:
        with answering("the release of an escalation send"):
            self._release(keys=[self.key], args=[self.token])


class RedisEscalationStore:
    def __init__(self, client: redis.Redis, prefix: str, *,
                 on_reject: Callable[[str, str], None] | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.index = f"{prefix}escalations"
        self.on_reject = on_reject  # (escalation id, reason) for a record that cannot be read
        self._cas = client.register_script(_CAS)
        self._prune_one = client.register_script(_PRUNE_ONE)

    def _key(self, escalation_id: str) -> str:
        return f"{self.prefix}esc:{check_escalation_id(escalation_id)}"

    def save(self, e: Escalation) -> None:
        with answering(f"escalation {e.escalation_id}"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self._key(e.escalation_id), mapping={"state": e.state.value, "record": _encode(e)})
            pipe.zadd(self.index, {e.escalation_id: e.created_at})
            pipe.execute()

    def get(self, escalation_id: str) -> Escalation | None:
        if not is_valid_id(IdKind.ESCALATION, escalation_id):
            return None  # never a key from a bad id: "no such escalation"
        with answering(f"escalation {escalation_id}"):
            raw = self.client.hget(self._key(escalation_id), "record")
        return None if raw is None else self._decode(escalation_id, str(raw))

    def _decode(self, escalation_id: str, raw: str) -> Escalation | None:
        try:
            e = from_plain(Escalation, json.loads(raw))
        except (ValueError, SchemaError, RecursionError) as exc:
            if self.on_reject is not None:
                self.on_reject(escalation_id, f"unreadable record: {exc}")
            return None
        if e.escalation_id != escalation_id:
            if self.on_reject is not None:
                self.on_reject(escalation_id, f"record names {e.escalation_id!r}")
            return None
        return e

    def all(self) -> list[Escalation]:
        with answering("the escalations"):
            ids = [str(i) for i in self.client.zrange(self.index, 0, -1)]
            pipe = self.client.pipeline(transaction=False)
            for eid in ids:
                pipe.hget(self._key(eid), "record")
            raws = pipe.execute() if ids else []
        out = []
        for eid, raw in zip(ids, raws):
            e = None if raw is None else self._decode(eid, str(raw))
            if e is not None:
                out.append(e)
        return sorted(out, key=lambda e: e.created_at)

    def for_task(self, task_id: str) -> list[Escalation]:
        return [e for e in self.all() if e.task_id == task_id]

    def compare_and_set(self, new: Escalation, expected: EscalationState) -> CasResult:
        with answering(f"a decision on escalation {new.escalation_id}"):
            reply = self._cas(keys=[self._key(new.escalation_id)],
                              args=[expected.value, new.state.value, _encode(new)])
        if int(reply[0]) == 1:
            return CasResult(True, new)
        current = self._decode(new.escalation_id, str(reply[1])) if len(reply) > 1 and reply[1] else None
        return CasResult(False, current)

    def hold_sending(self, escalation_id: str, hold_s: float) -> RedisSendingHold | None:
        key = self._key(escalation_id) + ":sending"
        token = uuid.uuid4().hex
        with answering(f"the send of escalation {escalation_id}"):
            got = self.client.set(key, token, nx=True, px=max(1, int(hold_s * 1000)))
        return RedisSendingHold(self.client, key, token) if got else None

    def prune(self, older_than: float) -> list[str]:
        removed = []
        for e in self.all():
            if e.state == PENDING or settled_at(e) >= older_than:
                continue
            with answering(f"the prune of escalation {e.escalation_id}"):
                gone = self._prune_one(keys=[self._key(e.escalation_id), self.index],
                                       args=[e.state.value, e.escalation_id])
            if int(gone) == 1:
                removed.append(e.escalation_id)
        return removed


def _encode(e: Escalation) -> str:
    return json.dumps(to_plain(e), separators=(",", ":"))
