"""The audit log as one Redis stream per cluster (every rig's commands and escalation decisions),
trimmed like the event stream."""

from __future__ import annotations

import json
from typing import Any

import redis

from engine.store.redis.channels.base import answering, stream_entries

AUDIT_KEPT = 100_000


class RedisAuditLog:
    def __init__(self, client: redis.Redis, prefix: str, *, keep: int = AUDIT_KEPT) -> None:
        self.client = client
        self.key = f"{prefix}audit"
        self.keep = keep
        self.errors = 0
        self.last_error = ""

    def append(self, record: dict[str, Any]) -> None:
        try:
            with answering("an audit append"):
                self.client.xadd(self.key, {"rec": json.dumps(record, default=str)}, maxlen=self.keep,
                                 approximate=True)
        except (OSError, redis.RedisError) as exc:  # the action was taken; a lost audit line stops nobody
            self.errors += 1
            self.last_error = str(exc)

    def __call__(self, record: dict[str, Any]) -> None:
        self.append(record)

    def read(self, n: int = 100) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        with answering("an audit read"):
            entries = self.client.xrevrange(self.key, count=n)
        out: list[dict[str, Any]] = []
        for _id, fields in reversed(stream_entries(entries)):
            try:
                rec = json.loads(fields.get("rec", ""))
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out
