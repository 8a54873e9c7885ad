"""Waking an idle worker without polling Redis: one subscription to ``PREFIX wake``, kept open for
the worker's life, on which every script that makes work claimable publishes the new value of the
version counter ``ver`` (``v123``). A wake is one message read away from the claim: no SUBSCRIBE,
GET or new connection per wait (an idle wait costs no command at all; redis-py pings the
subscription every ``health_check_interval`` seconds).

No wake is missed between a claim and the wait. The claim reads ``ver`` (``seen``); every change
after that read is published with a higher value, and the subscription was open before the read,
so the message is already on the socket or on its way. A message whose value is not above ``seen``
was published before the claim looked (a busy worker's backlog) and is skipped. When the
subscription is new (the first wait, or redis-py reconnected it after a lost connection: the server
confirms each SUBSCRIBE with a ``subscribe`` message), ``ver`` is read once after the confirmation,
which covers whatever changed while no subscription was open.

A wake also carries the heads of the lanes its script queued tasks in. The claim that found nothing
left the heads it read (``seen``); applying each following wake's heads in turn gives the heads as
of the newest wake (``view``), so the claim after a wake is one script, not a read of the heads and
then the claim. Heads taken meanwhile are never published, but the claim script refuses a chosen
head that is gone (and a ``ver`` that moved on) and answers the heads as they are: a view never
claims what it should not, at worst it costs the read it saved.

A busy worker's subscription buffers the wakes published meanwhile (a message is ~60 bytes; the
next wait skips them unread by value). Should a long run of them fill Redis's output buffer limit
for pub/sub clients (``client-output-buffer-limit pubsub``, 8 MB for 60 s by default), Redis
closes that connection and the next wait subscribes again and reads ``ver``: nothing is missed.
Local files (the worker's control file) are watched with inotify.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import redis

from engine.fdwait import readable
from engine.store.redis.replies import Heads, apply_heads

WAKE_PREFIX = "v"  # a wake message is 'v' + the new value of ver; anything else counts as a change


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _value(raw: object) -> int | None:
    """The counter a wake message or a read of ``ver`` carries; None for one that carries none."""
    return _message(raw)[0]


def _message(raw: object) -> tuple[int | None, list[Any] | None]:
    """(the counter, the heads of the lanes the script queued tasks in) of a wake message; None for
    what it does not carry (an older galaxy's ``1``, a counter alone past the lane limit)."""
    text = str(raw) if raw is not None else "0"
    if text.startswith(WAKE_PREFIX):
        text = text[len(WAKE_PREFIX):]
    number, _, rest = text.partition(" ")
    if not number.isdigit():
        return None, None
    if not rest:
        return int(number), None
    try:
        heads = json.loads(rest)
    except ValueError:
        return int(number), None
    return int(number), heads if isinstance(heads, list) else None


def _applied(view: Heads, changes: list[Any]) -> Heads | None:
    """``view`` with the lanes a wake names set to their heads (removed when empty); None for a
    payload that is not what the scripts publish."""
    try:
        return apply_heads(view, changes)
    except (TypeError, ValueError):
        return None


class RedisWaker:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.r = client
        self.channel = prefix + "wake"
        self.ver_key = prefix + "ver"
        self._seen: int | None = None
        self._view: Heads | None = None  # every lane's head as of ver == _seen, when known
        self._fresh = False  # _view was brought up to date by wakes since the last claim looked
        self._ps: Any = None  # the subscription, open from the first wait on
        self._lost = False  # another call found Redis away: subscribe again before the next wait
        self._inotify: Any = None
        self._watch_names: dict[int, frozenset[str] | None] = {}

    def seen(self, ver: str, heads: Heads | None = None) -> None:
        """The wake counter as the last claim read it, and the heads it read with it (every lane's)."""
        self._seen = _value(ver)
        self._view = heads if self._seen is not None else None
        self._fresh = False

    def view(self) -> tuple[Heads, str] | None:
        """The lane heads as of the newest wake, when every wake since the last claim's read carried
        the heads of the lanes it queued tasks in: that read's heads with each wake's applied in turn.
        A claim may offer them to its policy without reading them: the claim script refuses a view
        that is not the current ``ver`` or whose chosen head is gone (taken heads are never
        published), and answers the heads as they are. None when a wake was missed or carried none."""
        if not self._fresh or self._view is None:
            return None
        self._fresh = False
        return self._view, str(self._seen)

    def lost(self) -> None:
        """Redis did not answer a call of this process: the subscription's connection may be dead
        without having noticed (a cut network), so the next wait opens a new one. Any thread."""
        self._lost = True

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
        """True when something may have become claimable since the last claim looked (or the wake
        pipe or a watched file woke it); False after ``timeout_s`` without a change."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        for tries_left in (1, 0):
            try:
                return self._wait(deadline, wake_fd)
            except redis.ConnectionError:
                self._drop()  # its connection was closed (CLIENT KILL, a restart): a new one, once, at once
                if tries_left:
                    continue
            except redis.TimeoutError:
                self._drop()
            break
        time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))  # Redis away: wait a little, claim again
        return False

    def _wait(self, deadline: float, wake_fd: int | None) -> bool:
        ps = self._subscription()
        while True:
            if self._pending(ps):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sock = ps.connection._sock if ps.connection is not None else None  # redis-py keeps it there
            inotify_fd = self._inotify.fileno() if self._inotify is not None else None
            fds = [fd for fd in (wake_fd, inotify_fd) if fd is not None]
            if sock is not None:
                ready = readable([sock.fileno(), *fds], left)
            else:  # not connected: redis-py connects again on the next read
                ready = readable(fds, min(left, 0.05)) if fds else set()
                if not fds:
                    time.sleep(min(left, 0.05))
            if wake_fd is not None and wake_fd in ready:
                return True
            if inotify_fd is not None and inotify_fd in ready and self._watched_change():
                return True

    def _subscription(self) -> Any:
        if self._lost:
            self._lost = False
            self._drop()
        if self._ps is None:
            ps = self.r.pubsub(ignore_subscribe_messages=False)
            ps.subscribe(self.channel)  # confirmed by a 'subscribe' message: ver is read then (_pending)
            self._ps = ps
        return self._ps

    def _pending(self, ps: Any) -> bool:
        """Read every message already here: True when one says the counter moved past ``seen``.

        Read from the subscription's connection itself (what ``PubSub.get_message`` does beneath its
        retry, health-check and message-dict layers, a few hundred microseconds of a just-woken
        worker's CPU per wake): ``can_read`` looks in redis-py's buffer first, then on the socket, so
        a wake read into the buffer together with a health-check PONG is not left there, where
        polling the socket never sees it. A lost connection raises here and ``wait`` subscribes anew."""
        ps.check_health()  # redis-py's PING on the subscription when one is due (every 30 s)
        conn = ps.connection
        changed = False
        subscribed = False
        while conn is not None and conn.can_read(timeout=0):
            reply = conn.read_response(disconnect_on_error=False, push_request=True)
            kind = _text(reply[0]) if isinstance(reply, list) and reply else ""
            if kind == "message" and len(reply) >= 3:
                changed = self._moved(*_message(_text(reply[2]))) or changed
            elif kind == "subscribe":
                subscribed = True  # a new subscription: what changed before it is read from ver below
            elif ps.is_health_check_response(reply):
                ps.health_check_response_counter = max(0, ps.health_check_response_counter - 1)
        if subscribed:
            changed = self._moved(_value(self.r.get(self.ver_key)), None, first=True) or changed
        return changed

    def _moved(self, value: int | None, heads: list[Any] | None, *, first: bool = False) -> bool:
        if value is None:
            self._view = None
            return True  # a wake published without the counter (an older galaxy's scripts)
        if self._seen is None:
            self._seen = value
            return not first  # no claim has looked yet: a wake is a change, the first read is not
        if value > self._seen or (first and value != self._seen):  # (a counter that went back: Redis lost it)
            if value == self._seen + 1 and heads is not None and self._view is not None:
                self._view = _applied(self._view, heads)  # the very next change, and what it queued
            else:
                self._view = None  # a change missed, or one that said not what: the next claim reads the heads
            self._fresh = self._view is not None
            self._seen = value
            return True
        return False

    def _drop(self) -> None:
        ps, self._ps = self._ps, None
        if ps is not None:
            try:
                ps.close()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass  # the connection is gone already

    def close(self) -> None:
        self._drop()
        if self._inotify is not None:
            try:
                os.close(self._inotify.fileno())
            except OSError:
                pass
            self._inotify = None
