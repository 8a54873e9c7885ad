"""What every Redis channel shares: the key names under the cluster's prefix, and turning a Redis
that does not answer into ``StoreUnavailable`` (an ``OSError``), so callers that already survive a
full disk survive an unreachable store the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from engine.snapshot import rig_name_problem
from engine.store.redis.queue import StoreUnavailable


def rig_key(prefix: str, rig: str, what: str) -> str:
    """``galaxy:{cluster}:rig:<rig>:<what>``; the rig name is checked (it is part of a key)."""
    why = rig_name_problem(rig)
    if why is not None:
        raise ValueError(why)
    return f"{prefix}rig:{rig}:{what}"


@contextmanager
def answering(what: str) -> Iterator[None]:
    """Run Redis calls; a connection or timeout error becomes ``StoreUnavailable`` naming ``what``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"Redis did not answer {what}: {exc}") from None


def json_text(data: bytes) -> str:
    """Stored values are UTF-8 text (the client decodes replies); what we publish is JSON."""
    return data.decode("utf-8")


def stream_entries(raw: object) -> list[tuple[str, dict[str, str]]]:
    """XRANGE / XREVRANGE replies as (entry id, fields) in text (the client decodes replies)."""
    out: list[tuple[str, dict[str, str]]] = []
    for entry in raw if isinstance(raw, list) else []:
        entry_id, fields = entry
        out.append((_text(entry_id), {_text(k): _text(v) for k, v in (fields or {}).items()}))
    return out


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
