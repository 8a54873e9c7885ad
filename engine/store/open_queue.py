"""The task queue of the configured store: the file queue under the rig's shared root (no
``[store] url``, today's default), or one RedisQueue for every rig of a cluster.

Every process of a rig opens its queue here (supervisor, workers, CLI, dashboard), so they all
read and write the store the supervisor runs on: a worker from what its supervisor put in its
environment (``engine.store.open.store_env``), the others from galaxy.toml and ``$GALAXY_STORE``.
``redis`` is imported only for a Redis store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine.config import GalaxyConfig
from engine.events import EventLog
from engine.paths import RigPaths
from engine.queue.protocol import DEFAULT_PAGE, QueuedPage, QueuedSource, RigQueue
from engine.store.open import ENV_CLUSTER, rig_from_env
from engine.store.retention import CompletedRetention
from engine.store.settings import DEFAULT_CLUSTER, StoreConfig, effective_store, redact_url

if TYPE_CHECKING:
    from engine.store.redis.queue import RedisQueue


def open_queue(store: StoreConfig, paths: RigPaths, *, events: EventLog | None = None,
               use_inotify: bool = True, rig: str | None = None) -> RigQueue:
    """The queue of ``store``: a ``FileQueue`` on ``paths`` when it names no url, else a ``RedisQueue``
    on the url's server under the store's cluster name (its events, without ``events``, to the
    cluster's event stream). Raises ``StoreConfigError`` for a Redis that may evict keys or refuses
    the password, and ``StoreUnavailable`` (a ``ConnectionError``) when it does not answer. The
    caller closes it. ``rig``: this process's rig, recorded in the attempts a Redis queue writes
    (one rig per file root: there it says nothing)."""
    if store.url is None:
        from engine.queue.filequeue import FileQueue

        return FileQueue(paths, events=events, use_inotify=use_inotify)
    return _redis_queue(store, paths, events, rig)


def _redis_queue(store: StoreConfig, paths: RigPaths, events: EventLog | None, rig: str | None) -> RedisQueue:
    from engine.queue.protocol import StoreUnavailable
    from engine.store.redis.channels.events import RedisEventStream
    from engine.store.redis.client import check_server, connect, key_prefix
    from engine.store.redis.queue import RedisQueue

    url = store.url or ""
    client = connect(url)
    try:
        check_server(client, where=redact_url(url))  # wrong password, may evict: StoreConfigError
        if events is None:  # the queue's events (submitted, lost, promoted ...) go to the cluster's stream
            events = EventLog(paths.events, stream=RedisEventStream(client, key_prefix(store.cluster)))
        return RedisQueue(client, store.cluster, events=events, check_eviction=False, rig=rig)
    except StoreUnavailable as exc:  # no answer: an OSError naming the store (engine/store/startup.py waits)
        client.close()
        raise StoreUnavailable(f"Redis {redact_url(url)} (cluster {store.cluster!r}): {exc}") from None
    except Exception:
        client.close()
        raise


def open_config_queue(config: GalaxyConfig, paths: RigPaths, environ: Mapping[str, str] = os.environ, *,
                      events: EventLog | None = None, use_inotify: bool = True) -> RigQueue:
    """The queue ``config``'s ``[store]`` names (``$GALAXY_STORE`` wins): the supervisor's and the CLI's."""
    return open_queue(effective_store(config.store, environ), paths, events=events, use_inotify=use_inotify,
                      rig=config.rig)


def open_queue_from_env(paths: RigPaths, environ: Mapping[str, str] = os.environ, *,
                        events: EventLog | None = None) -> RigQueue:
    """A worker's queue: its supervisor's store, from the environment it was given; with none of
    it (a worker started by hand), the file queue under ``paths``."""
    cluster = environ.get(ENV_CLUSTER) or DEFAULT_CLUSTER
    return open_queue(effective_store(StoreConfig(None, cluster), environ), paths, events=events,
                      rig=rig_from_env(environ))


def completed_retention(store: StoreConfig, queue: RigQueue) -> CompletedRetention | None:
    """The supervisor's pruning of old completed records (engine/store/retention.py): for a Redis queue
    with ``[store] keep_completed_s`` above 0; None for the file store (complete/ is kept on disk)."""
    if store.url is None or store.keep_completed_s <= 0:
        return None
    from engine.store.redis.queue import RedisQueue

    if not isinstance(queue, RedisQueue):  # the queue open_queue gave for this store: always a RedisQueue
        raise TypeError(f"store {redact_url(store.url)} opened as {type(queue).__name__}, not a RedisQueue")
    return CompletedRetention(queue, store.keep_completed_s)


class _QueueListing:
    """A Redis queue's pages for the dashboard; closing it closes the queue and its connection."""

    def __init__(self, queue: RedisQueue) -> None:
        self.queue = queue
        self.source = queue.lister()

    def page(self, offset: int = 0, limit: int = DEFAULT_PAGE, text: str = "") -> QueuedPage:
        return self.source.page(offset, limit, text)

    def close(self) -> None:
        self.source.close()
        self.queue.close()
        self.queue.r.close()


def open_queued_source(store: StoreConfig, paths: RigPaths) -> QueuedSource | None:
    """The claimable tasks in claim order, page by page (the dashboard's Tasks view): the file
    queue's ``queue/`` listing (None while the root has none), or the Redis queue's lanes."""
    if store.url is None:
        if not paths.queue.is_dir():
            return None
        from engine.queue.listing import QueueLister

        return QueueLister(paths.queue)
    return _QueueListing(_redis_queue(store, paths, None, None))  # reads only: records no attempt
