"""One snapshot per rig: a hash ``rig:<rig>:snapshot`` holding the JSON and its publish time, and a
sorted set ``rigs`` of every rig that has published (scored by that time), written in one
MULTI so a reader never sees a snapshot without its time."""

from __future__ import annotations

import redis

from engine.store.channels import PublishedSnapshot
from engine.store.redis.channels.base import answering, json_text, rig_key


class RedisSnapshotStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.rigs_key = f"{prefix}rigs"

    def publish(self, rig: str, data: bytes, now: float) -> None:
        key = rig_key(self.prefix, rig, "snapshot")
        with answering(f"the snapshot of rig {rig}"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(key, mapping={"data": json_text(data), "published_at": repr(float(now))})
            pipe.zadd(self.rigs_key, {rig: float(now)})
            pipe.execute()

    def latest(self, rig: str) -> PublishedSnapshot | None:
        try:
            key = rig_key(self.prefix, rig, "snapshot")
        except ValueError:
            return None
        with answering(f"the snapshot of rig {rig}"):
            data, at = self.client.hmget(key, ["data", "published_at"])
        if data is None or at is None:
            return None
        return PublishedSnapshot(rig, str(data).encode("utf-8"), float(at))

    def rigs(self) -> list[str]:
        with answering("the list of rigs"):
            return sorted(str(r) for r in self.client.zrange(self.rigs_key, 0, -1))
