"""The endpoint's own text writer gives exactly prometheus-client's text for our families, and
sections are written again only when their inputs changed (a new snapshot, new event lines)."""

from __future__ import annotations

import gzip
import math
from dataclasses import replace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.utils import floatToGoString

from engine.metrics.collector import GalaxyCollector
from engine.metrics.exposition import go_float, render
from engine.metrics.feed import Tallies
from engine.metrics.server import MetricsServer
from engine.snapshot import Snapshot
from tests.engine.test_metrics_collector import canned, tallies


class Feed:  # the collector's use of a feed, with the generation the endpoint keys on
    def __init__(self, t: Tallies) -> None:
        self.tallies, self.generation = t, 0

    def remember_all(self, pairs) -> None:
        list(pairs)

    def update(self, now: float) -> None:
        return None


def pair(snaps: list[Snapshot], feed: Feed) -> tuple[GalaxyCollector, CollectorRegistry]:
    collector = GalaxyCollector(lambda: snaps[-1], feed, spent_today=lambda now: 0.5, budget_usd=5.0)  # type: ignore[arg-type]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return collector, registry


def test_exposition_is_prometheus_clients_text_for_every_section() -> None:
    snaps, feed = [canned()], Feed(tallies())
    collector, registry = pair(snaps, feed)
    assert collector.exposition() == generate_latest(registry)
    # a new snapshot (GPU readings and the queue move), then new event counts: the text follows each
    snaps.append(replace(snaps[0], seq=8, gpus=(replace(snaps[0].gpus[0], util_pct=12.0), snaps[0].gpus[1])))
    text = collector.exposition()
    assert text == generate_latest(registry) and b'galaxy_gpu_utilization_percent{gpu="0"' in text
    assert b"} 12.0\n" in text
    # a state alone (a model unloads, a worker backs off, a breaker opens): its one-hot section follows
    s0 = snaps[-1]
    snaps.append(replace(s0, gpus=(replace(s0.gpus[0], residency="idle"), s0.gpus[1]),
                         workers=(replace(s0.workers[0], state="backoff"), s0.workers[1]),
                         nodes=(replace(s0.nodes[0], breaker="open"), s0.nodes[1])))
    text = collector.exposition()
    assert text == generate_latest(registry)
    assert b'galaxy_worker_state{state="backoff",worker="gpu0"} 1.0' in text
    feed.tallies.failed["cpu"] = 7
    feed.generation += 1
    text = collector.exposition()
    assert text == generate_latest(registry) and b'galaxy_tasks_failed_total{class="cpu"} 7.0' in text


def test_no_snapshot_and_odd_values() -> None:
    collector, registry = pair([None], Feed(Tallies()))  # type: ignore[list-item]
    assert collector.exposition() == generate_latest(registry)
    fam = GaugeMetricFamily("odd", 'doc with \\ and\nnewline', labels=["who"])
    for who, v in (('a "quoted"\\ name\n', 1.0), ("big", 1.8e9), ("inf", math.inf), ("nan", math.nan), ("neg", -3e7)):
        fam.add_metric([who], v)

    class One:
        def collect(self):
            return iter([fam])

    assert render([fam]) == generate_latest(One())  # type: ignore[arg-type]
    for v in (0.0, 1.0, 0.1, 123456.7, 1e6, 2.5e12, -1e6, 1e-9, math.inf, -math.inf):
        assert go_float(v) == floatToGoString(v), v


def test_server_answer_is_galaxy_then_process_metrics_gzipped_on_request() -> None:
    snaps = [canned()]
    server = MetricsServer(GalaxyCollector(lambda: snaps[-1], None, budget_usd=5.0))
    plain = server.exposition(gzipped=False)
    assert b"process_cpu_seconds_total" in plain and b"galaxy_escalation_budget_usd 5.0" in plain
    galaxy = plain.split(b"# HELP process_")[0]
    assert galaxy.startswith(b"# HELP galaxy_rig_info")
    assert gzip.decompress(server.exposition(gzipped=True)).startswith(galaxy)
