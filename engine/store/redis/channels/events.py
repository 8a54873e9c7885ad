"""The event log as one Redis stream per cluster, trimmed (``XADD MAXLEN ~``) so it never grows
without bound; ``tail`` reads the newest entries with one ``XREVRANGE``. Appends (three or more per
task a worker runs) go out on a connection the stream keeps (engine/store/redis/scripts.py), not
through redis-py's command layers: half the client CPU per event."""

from __future__ import annotations

import json
from typing import Any

import redis

from engine.store.redis.channels.base import answering, stream_entries
from engine.store.redis.scripts import KeptConnection

EVENTS_KEPT = 100_000
"""About how many events the stream keeps (whole macro nodes are trimmed, so a few more)."""


class RedisEventStream:
    def __init__(self, client: redis.Redis, prefix: str, *, keep: int = EVENTS_KEPT) -> None:
        self.client = client
        self.key = f"{prefix}events"
        self.keep = keep
        self.write_errors = 0
        self.last_error = ""
        self._appends = KeptConnection(client)  # connects on the first append only

    def append(self, line: str) -> None:
        if not line:
            return
        try:
            with answering("an event append"):
                self._xadd(line)
        except (OSError, redis.RedisError) as exc:  # a lost event line never stops the caller
            self.write_errors += 1
            self.last_error = str(exc)

    def _xadd(self, line: str) -> None:
        command = ("XADD", self.key, "MAXLEN", "~", self.keep, "*", "line", line)
        try:
            self._appends.call(*command)
        except redis.ConnectionError:  # the kept connection was closed (a restart, CLIENT KILL): a new one, once
            self._appends.call(*command)

    def close(self) -> None:
        """The appends' kept connection goes back to the store's client."""
        self._appends.close()

    def tail(self, n: int = 50) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        with answering("an event tail"):
            entries = self.client.xrevrange(self.key, count=n)
        out: list[dict[str, Any]] = []
        for _id, fields in reversed(stream_entries(entries)):
            try:
                rec = json.loads(fields.get("line", ""))
            except ValueError:
                continue  # not ours: skip, never crash a reader
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def read_after(self, cursor: str | None, limit: int) -> tuple[list[str], str | None]:
        """Cursor: the last entry id read; an entry trimmed away before it was read is skipped."""
        if limit <= 0:
            return [], cursor
        with answering("an event follow"):
            entries = self.client.xrange(self.key, min=f"({cursor}" if cursor else "-", count=limit)
        got = stream_entries(entries)
        return [fields.get("line", "") for _id, fields in got], (got[-1][0] if got else cursor)

    def length(self) -> int:
        """How many events the stream holds now (trimming keeps it near ``keep``)."""
        with answering("an event count"):
            return int(self.client.xlen(self.key))
