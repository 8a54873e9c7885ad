"""Turning a Redis that does not answer into ``StoreUnavailable`` (engine.queue.protocol), the one
condition callers handle for every store: a worker keeps its result, the supervisor's tick goes on."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis

from engine.queue.protocol import StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")

NOT_ANSWERING = (redis.ConnectionError, redis.TimeoutError)


def store_call(fn: Callable[P, R]) -> Callable[P, R]:
    """A queue read that talks to Redis directly: connection and timeout errors raise
    ``StoreUnavailable`` naming the call (never a redis-py exception the caller must know)."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except NOT_ANSWERING as exc:
            raise StoreUnavailable(f"Redis did not answer {fn.__name__}: {exc}") from None

    return wrapped
