"""The Redis store's channels besides the task queue: events and audit in trimmed streams, one
snapshot key per rig, a command stream per rig with request ids applied once, escalation
records decided by one compare-and-set script. ``redis_channels`` bundles them for one rig."""

from __future__ import annotations

import redis

from engine.store.open import Channels
from engine.store.redis.channels.audit import RedisAuditLog
from engine.store.redis.channels.commands import RedisCommandChannel
from engine.store.redis.channels.escalations import RedisEscalationStore
from engine.store.redis.channels.events import RedisEventStream
from engine.store.redis.channels.snapshots import RedisSnapshotStore
from engine.store.redis.client import key_prefix
from engine.store.settings import StoreKind


def redis_channels(client: redis.Redis, cluster: str, rig: str) -> Channels:
    """Every channel of ``rig`` in ``cluster``'s namespace (``galaxy:{cluster}:...``)."""
    prefix = key_prefix(cluster)

    opened: dict[str, RedisCommandChannel] = {}

    def commands_for(name: str) -> RedisCommandChannel:
        if name not in opened:
            opened[name] = RedisCommandChannel(client, prefix, name)
        return opened[name]

    return Channels(rig=rig, events=RedisEventStream(client, prefix), snapshots=RedisSnapshotStore(client, prefix),
                    audit=RedisAuditLog(client, prefix), escalations=RedisEscalationStore(client, prefix),
                    commands_for=commands_for, kind=StoreKind.REDIS,
                    close=client.close)


__all__ = ["RedisAuditLog", "RedisCommandChannel", "RedisEscalationStore", "RedisEventStream", "RedisSnapshotStore",
           "redis_channels"]
