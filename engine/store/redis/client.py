"""Connecting to Redis for galaxy: one url, one key namespace per cluster, a refusal to run on a
Redis that may evict keys (an evicted task is a lost task; docs/cluster.md)."""

from __future__ import annotations

import re

import redis

from engine.queue.protocol import StoreUnavailable

CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SOCKET_TIMEOUT_S = 10.0


class StoreConfigError(RuntimeError):
    """The Redis named by the store url cannot hold galaxy's state safely (or is misnamed)."""


def key_prefix(cluster: str) -> str:
    """``galaxy:{cluster}:``; the braces are a hash tag, so one cluster's keys share one slot and
    every script may touch all of them (also on Redis Cluster)."""
    if not CLUSTER_NAME_RE.match(cluster):
        raise StoreConfigError(f"cluster name {cluster!r} must be letters, digits, '_', '-', '.' (max 64)")
    return f"galaxy:{{{cluster}}}:"


def connect(url: str, *, socket_timeout_s: float = SOCKET_TIMEOUT_S) -> redis.Redis:
    """A client for ``redis://host:port/db`` (or ``rediss://``, ``unix://``); strings decoded as UTF-8."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise StoreConfigError(f"store url {url!r} must start with redis://, rediss:// or unix://")
    client: redis.Redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=socket_timeout_s,
                                               socket_connect_timeout=socket_timeout_s, health_check_interval=30)
    return client


def eviction_policy(client: redis.Redis) -> str:
    """The server's maxmemory-policy (CONFIG GET, or INFO where CONFIG is disabled, as on managed Redis)."""
    try:
        got = client.config_get("maxmemory-policy")
        policy = got.get("maxmemory-policy") if isinstance(got, dict) else None
        if isinstance(policy, str) and policy:
            return policy
    except redis.ResponseError:
        pass
    info = client.info("memory")
    value = info.get("maxmemory_policy") if isinstance(info, dict) else None
    return str(value) if value else "unknown"


def require_no_eviction(client: redis.Redis, *, where: str = "") -> None:
    """Refuse a Redis that may evict keys: only ``noeviction`` keeps every task (a full Redis then
    refuses writes, which galaxy reports, instead of silently dropping queued work)."""
    policy = eviction_policy(client)
    if policy != "noeviction":
        at = f" at {where}" if where else ""
        raise StoreConfigError(
            f"Redis{at} has maxmemory-policy {policy!r}: it may evict keys and lose tasks; galaxy needs "
            "'noeviction' (set 'maxmemory-policy noeviction' in redis.conf or run "
            "CONFIG SET maxmemory-policy noeviction)")


def check_server(client: redis.Redis, *, where: str) -> None:
    """At start-up, tell a Redis worth waiting for from one that is wrong: ``StoreUnavailable`` when it
    does not answer (down, cut off, still loading its AOF: engine/store/startup.py waits and tries
    again), ``StoreConfigError`` when it answers but cannot be used (it refused the password, may
    evict keys, or refused the check itself): waiting would not fix those."""
    try:
        require_no_eviction(client, where=where)
    except redis.AuthenticationError as exc:  # a ConnectionError to redis-py, but no wait fixes it
        raise StoreConfigError(f"Redis at {where} refused galaxy's credentials: {exc} "
                               "(check the user and password in the store url)") from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"Redis did not answer at {where}: {exc}") from None
    except redis.RedisError as exc:  # NOPERM, a database number it does not have ...
        raise StoreConfigError(f"Redis at {where} refused galaxy: {exc}") from None
