"""How RedisQueue sends its transition scripts, and the event stream its appends: one command at a
time on one connection of the client's pool, kept for its owner and used under a lock (the worker's
heartbeat thread shares the queue's).

A claim and a completion are one script each, so this call is the whole of a task's round trips.
It goes through redis-py's ``Connection`` (``send_command`` / ``read_response``: the same
protocol code as every redis-py call) but not through ``Redis.execute_command``'s pool checkout,
retry and instrumentation layers, which cost about as much client CPU again as the round trip
itself (an event's ``XADD``: ~130 us of a worker's CPU through them, ~75 us here); the owner does
its own resending. A connection or timeout error drops the connection (redis-py disconnects it)
and the next call connects again.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import redis


class ScriptCalls(Protocol):
    """What RedisQueue needs to run a script (redis.Redis has both; tests inject clients that lose replies)."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int) -> Any: ...

    def script_load(self, script: str) -> Any: ...


class KeptConnection:
    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self._conn: Any = None
        self._lock = threading.Lock()

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int) -> Any:
        return self.call("EVALSHA", sha, numkeys, *keys_and_args)

    def script_load(self, script: str) -> Any:
        return self.call("SCRIPT", "LOAD", script)

    def call(self, *args: str | int) -> Any:
        """One command and its reply on the kept connection (connected again after an error)."""
        with self._lock:
            if self._conn is None:
                self._conn = self.pool.get_connection()
            conn = self._conn
            try:
                conn.send_command(*args)
                return conn.read_response()
            except redis.ResponseError:
                raise  # an answer (NOSCRIPT, OOM, a script error): the connection is in step
            except BaseException:
                conn.disconnect()  # a reply may be left unread: never read it as the next call's
                raise

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
            self.pool.release(conn)
