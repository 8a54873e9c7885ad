"""The metrics event feed: counts only what the log gained after it started, learns task
models from earlier lines, reads a rotated log from its start, skips torn lines, waits for an
unfinished one; plus ``[metrics]`` config and the HTTP endpoint (a busy port never stops it)."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from engine.config import ConfigError, GalaxyConfig, parse_config
from engine.events import EventLog
from engine.metrics.feed import NO_MODEL, SETTLE_S, UNKNOWN, EventFeed
from engine.metrics.server import start_metrics
from engine.metrics.settings import MetricsConfig
from engine.paths import RigPaths

LATER = 1_800_000_060.0  # a scrape a minute after the events: every failure has settled


def write(log: EventLog, kind: str, **fields) -> None:
    log.emit(kind, at=1_800_000_000.0, **fields)


def test_counts_what_the_log_gained_after_start(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    write(log, "task_submitted", task_id="b.old", model="qwen2.5:7b")  # before the supervisor: models only
    write(log, "task_completed", task_id="b.old", worker_id="gpu0", duration_ms=9000.0, task_class="llm")
    feed = EventFeed(log.path)
    write(log, "task_submitted", task_id="b.sh")  # no model: it needs none
    write(log, "task_completed", task_id="b.old", worker_id="gpu0", duration_ms=2000.0, tokens_generated=120,
          task_class="llm")
    write(log, "task_completed", task_id="b.sh", worker_id="cpu0", duration_ms=500.0, task_class="cpu")
    write(log, "task_completed", task_id="b.stranger", worker_id="gpu1", duration_ms=1000.0, task_class="llm")
    write(log, "task_failed", task_id="b.sh", task_class="cpu", error="x")
    write(log, "llm_loaded", worker_id="gpu0", model="qwen2.5:7b", load_s=12.5)
    write(log, "llm_load_failed", worker_id="gpu1", model="llama3:8b")
    write(log, "llm_unloading", worker_id="gpu0", model="qwen2.5:7b")
    write(log, "escalation_requested", task_id="b.x")
    write(log, "task_claimed", task_id="b.sh", worker_id="cpu0")  # not counted
    feed.update(LATER)
    t = feed.tallies
    assert {k: (h.n, h.total) for k, h in t.durations.items()} == {
        ("llm", "qwen2.5:7b"): (1, 2.0), ("cpu", NO_MODEL): (1, 0.5), ("llm", UNKNOWN): (1, 1.0)}
    assert t.tokens == {("qwen2.5:7b", "gpu0"): 120}
    assert t.failed == {"cpu": 1}
    assert t.loads == {("qwen2.5:7b", "gpu0"): 1} and t.load_seconds == {("qwen2.5:7b", "gpu0"): 12.5}
    assert t.load_failures == {("llama3:8b", "gpu1"): 1}
    assert t.unloads == {("qwen2.5:7b", "gpu0"): 1}
    assert t.escalations["requested"] == 1 and t.escalations["approved"] == 0
    feed.update(LATER)  # nothing new: nothing counted twice
    assert t.durations[("llm", "qwen2.5:7b")].n == 1


def test_torn_unfinished_and_rotated_logs(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    feed = EventFeed(path)  # no log yet: everything is new
    write(log, "task_failed", task_id="a", task_class="llm")
    with open(path, "ab") as fh:
        fh.write(b'{"timestamp":"x","event_type":"task_failed","task_cl\n')  # torn
        fh.write(b'{"timestamp":"2026-01-01T00:00:00Z","event_type":"task_failed","task_class":"cpu"')  # unfinished
    feed.update(LATER)
    assert feed.tallies.failed == {"llm": 1} and feed.tallies.skipped_lines == 1
    with open(path, "ab") as fh:
        fh.write(b"}\n")  # its newline arrives
    feed.update(LATER)
    assert feed.tallies.failed == {"llm": 1, "cpu": 1}
    path.rename(tmp_path / "events.jsonl.1")  # rotated: a new, shorter log is read from its start
    log2 = EventLog(path)
    write(log2, "task_failed", task_id="b", task_class="script")
    feed.update(LATER)
    assert feed.tallies.failed == {"llm": 1, "cpu": 1, "script": 1}


def test_a_backlog_is_read_over_several_scrapes(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    feed = EventFeed(log.path, read_budget=600)
    for i in range(20):
        write(log, "task_failed", task_id=f"t{i}", task_class="cpu")
    feed.update(LATER)
    first = feed.tallies.failed["cpu"]
    assert 0 < first < 20
    for _ in range(20):
        feed.update(LATER)
    assert feed.tallies.failed["cpu"] == 20


def test_metrics_config() -> None:
    assert parse_config("").metrics == MetricsConfig("127.0.0.1:9464")
    assert parse_config('[metrics]\nlisten = ""\n').metrics.address is None
    assert parse_config('[metrics]\nlisten = "[::1]:9100"\n').metrics.address == ("::1", 9100)
    for text, words in (('listen = "9464"', "host:port"), ('listen = "h:0"', "1 to 65535"),
                        ("listen = 9464", "must be a string"), ('port = 1', "unknown key")):
        with pytest.raises(ConfigError) as exc:
            parse_config(f"[rig]\nname = 'r'\n[metrics]\n{text}\n")
        assert words in str(exc.value) and "galaxy.toml:4: metrics." in str(exc.value), str(exc.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_endpoint_serves_and_a_busy_port_is_logged_not_fatal(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    port = free_port()
    cfg = GalaxyConfig(rig="r", metrics=MetricsConfig(f"127.0.0.1:{port}"))
    logged: list[tuple[str, dict]] = []
    server = start_metrics(cfg, paths, lambda: None, lambda msg, **kw: logged.append((msg, kw)))
    assert server is not None
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "galaxy_escalation_budget_usd 5.0" in body and "process_cpu_seconds_total" in body
        second = start_metrics(cfg, paths, lambda: None, lambda msg, **kw: logged.append((msg, kw)))
        assert second is None
        assert logged[-1][0].startswith("metrics endpoint not started") and "Address already in use" in logged[-1][1]["error"]
    finally:
        server.stop()
    assert start_metrics(GalaxyConfig(metrics=MetricsConfig("")), paths, lambda: None, lambda *a, **k: None) is None


def test_an_escalated_task_and_its_held_dependents_are_no_failures(tmp_path: Path) -> None:
    """Its worker records a failure (the file store fails its dependents in cascade), then the
    supervisor parks it (awaiting approval) at its next tick and holds the dependents again
    (``task_retried``): ``galaxy_tasks_failed`` counts none of them. A failure that stays one
    counts once it has been one for SETTLE_S."""
    log = EventLog(tmp_path / "events.jsonl")
    feed = EventFeed(log.path)
    at = 1_800_000_000.0
    log.emit("task_failed", at=at, task_id="esc", task_class="llm", error="requires an external model")
    log.emit("task_failed", at=at, task_id="esc-child", task_class="script", error="dependency esc failed: ...")
    log.emit("task_failed", at=at, task_id="bad", task_class="llm", error="CUDA out of memory")
    log.emit("task_failed", at=at + 1, task_id="sh", task_class="script", error="exit 1")
    feed.update(at + 1)  # the scrape came between the failure and the park
    assert feed.tallies.failed == {}
    log.emit("task_awaiting_approval", at=at + 1.5, task_id="esc", task_class="llm", escalation_id="esc-1")
    log.emit("task_retried", at=at + 1.5, task_id="esc-child", task_class="script")
    feed.update(at + 2)
    assert feed.tallies.failed == {}
    feed.update(at + SETTLE_S)
    assert feed.tallies.failed == {"llm": 1}  # "bad"; "sh" failed a second later
    feed.update(at + 10 * SETTLE_S)
    assert feed.tallies.failed == {"llm": 1, "script": 1}
