"""Waking an idle worker without polling Redis: pub/sub on ``PREFIX wake``, published by every script
that makes work claimable, plus a version counter (``ver``) that closes the race between a claim
that found nothing and the subscription (a change in between is seen by the counter at once).

A wait costs SUBSCRIBE, GET and UNSUBSCRIBE: nothing is buffered for a busy worker, and an idle one
sends three commands per wait. Local files (the worker's control file) are watched with inotify.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import redis

from engine.fdwait import readable


class RedisWaker:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.r = client
        self.channel = prefix + "wake"
        self.ver_key = prefix + "ver"
        self._seen: str | None = None
        self._inotify: Any = None
        self._watch_names: dict[int, frozenset[str] | None] = {}

    def seen(self, ver: str) -> None:
        """The wake counter as the last claim read it."""
        self._seen = ver

    def watch(self, path: Path, names: frozenset[str] | None = None) -> None:
        try:
            from inotify_simple import INotify
            from inotify_simple import flags as inflags
        except ImportError:  # pragma: no cover - not Linux: the control file is read on the next wake
            return
        if self._inotify is None:
            self._inotify = INotify()
        try:
            wd = self._inotify.add_watch(str(path), inflags.MOVED_TO | inflags.CLOSE_WRITE)
        except OSError:
            return
        self._watch_names[wd] = names

    def _watched_change(self) -> bool:
        relevant = False
        for ev in self._inotify.read(timeout=0):
            names = self._watch_names.get(ev.wd)
            relevant = relevant or names is None or ev.name in names
        return relevant

    def wait(self, timeout_s: float, *, wake_fd: int | None = None) -> bool:
        deadline = time.monotonic() + max(0.0, timeout_s)
        ps: Any = self.r.pubsub(ignore_subscribe_messages=True)
        try:
            ps.subscribe(self.channel)
            ver = self.r.get(self.ver_key)
            now_ver = str(ver) if ver is not None else "0"
            if self._seen is not None and now_ver != self._seen:
                self._seen = now_ver
                return True  # changed since the last claim looked
            self._seen = now_ver
            return self._wait_message(ps, deadline, wake_fd)
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))  # Redis away: wait a little, claim again
            return False
        finally:
            try:
                ps.unsubscribe()
            except (redis.ConnectionError, redis.TimeoutError):
                pass  # Redis went away: closing the connection below is all that is left to do
            finally:
                ps.close()

    def _wait_message(self, ps: Any, deadline: float, wake_fd: int | None) -> bool:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            conn = ps.connection
            if conn is not None and conn.can_read(timeout=0):
                if self._message(ps):
                    return True
                continue
            fds = [fd for fd in (wake_fd, self._inotify.fileno() if self._inotify is not None else None)
                   if fd is not None]
            sock = conn._sock if conn is not None else None  # redis-py keeps the socket there
            if sock is None or not fds:
                if self._message(ps, left):
                    return True
                continue
            ready = readable([sock.fileno(), *fds], left)
            if wake_fd is not None and wake_fd in ready:
                return True
            if self._inotify is not None and self._inotify.fileno() in ready and self._watched_change():
                return True
            if sock.fileno() in ready and self._message(ps):
                return True

    def _message(self, ps: Any, timeout: float = 0.0) -> bool:
        msg = ps.get_message(timeout=timeout)
        return msg is not None and msg.get("type") == "message"  # the next claim reads the counter anew

    def close(self) -> None:
        if self._inotify is not None:
            try:
                os.close(self._inotify.fileno())
            except OSError:
                pass
            self._inotify = None
