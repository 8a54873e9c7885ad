"""The supervisor's /metrics endpoint: prometheus-client's HTTP server on its own registry.

Started by ``galaxy supervise`` when ``[metrics] listen`` is set (the default is
127.0.0.1:9464). A port already in use is logged and the rig runs on without metrics:
metrics never stop the supervisor. Scrapes run in the server's thread and read only the
latest snapshot, the event log's new lines and the cost ledger (cached by size and mtime).
Every scrape gets the Prometheus text format (0.0.4), also when the scraper offers
OpenMetrics: prometheus-client's writers escape every name of every sample, character by
character. The text is written by ``engine.metrics.exposition`` from prometheus-client's
metric families (ours and its process collector's), a section only when its inputs changed
(bench/metrics_cost.py).
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer

from engine.escalation.pricing import CostLedger, day_of
from engine.metrics.collector import GalaxyCollector, SnapshotFn
from engine.metrics.exposition import render
from engine.metrics.feed import EventFeed
from engine.store.channels import EventStream

LogFn = Callable[..., None]


class CachedSpend:
    """Today's spend from the cost ledger, re-read only when the file changes (or the day does)."""

    def __init__(self, path: Path) -> None:
        self.ledger = CostLedger(path)
        self._key: tuple[Any, ...] | None = None
        self._value = 0.0

    def __call__(self, now: float) -> float:
        try:
            st = os.stat(self.ledger.path)
            key: tuple[Any, ...] = (st.st_ino, st.st_size, st.st_mtime_ns, day_of(now))
        except FileNotFoundError:
            return 0.0
        if key != self._key:
            self._value = self.ledger.spent_on(day_of(now))
            self._key = key
        return self._value


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None  # a scrape every few seconds is not worth a line on stderr


class MetricsServer:
    def __init__(self, collector: GalaxyCollector) -> None:
        self.collector = collector
        self.process = ProcessCollector(registry=None)  # process_cpu_seconds_total etc.: the supervisor's own cost
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    def exposition(self, *, gzipped: bool) -> bytes:
        """One scrape's answer: galaxy's families, then the process's."""
        text = self.collector.exposition() + render(self.process.collect())
        # level 1: a third of the default's CPU for 15% more bytes (5 KB a scrape)
        return gzip.compress(text, compresslevel=1) if gzipped else text

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Any path but /favicon.ico answers GET with the metrics, as prometheus-client's app does."""
        if environ.get("REQUEST_METHOD") != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET")])
            return [b""]
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("200 OK", [])
            return [b""]
        gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        body = self.exposition(gzipped=gzipped)
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4), ("Content-Length", str(len(body)))]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and serve in a daemon thread; OSError (port in use, bad address) is the caller's."""
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        server_class = type("MetricsHTTPServer", (ThreadingWSGIServer,), {"address_family": family})
        self._server = make_server(host, port, self._app, server_class, handler_class=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="galaxy-metrics", daemon=True)
        self._thread.start()
        bound = self._server.server_address
        self.address = (str(bound[0]), int(bound[1]))
        return self.address

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None


def start_metrics(config: Any, paths: Any, snapshot: SnapshotFn, log: LogFn,
                  stream: EventStream | None = None) -> MetricsServer | None:
    """The endpoint ``[metrics] listen`` asks for, serving; None when off or the address cannot be bound.
    ``stream``: the store's shared event stream (Redis) to count from, instead of the root's events.jsonl."""
    address = config.metrics.address
    if address is None:
        log("metrics off ([metrics] listen = \"\")")
        return None
    feed = EventFeed(paths.events, stream=stream, rig=config.rig if stream is not None else None)
    collector = GalaxyCollector(snapshot, feed,
                                spent_today=CachedSpend(paths.logs / "cost_ledger.jsonl"),
                                budget_usd=config.escalation.daily_budget_usd)
    server = MetricsServer(collector)
    try:
        host, port = server.start(*address)
    except OSError as exc:
        log("metrics endpoint not started; the rig runs on without it", listen=config.metrics.listen,
            error=f"{type(exc).__name__}: {exc}")
        return None
    log("metrics: serving /metrics", url=f"http://{host if ':' not in host else f'[{host}]'}:{port}/metrics")
    return server
