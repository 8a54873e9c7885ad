"""The metrics collector on a canned snapshot: exact series, labels and values; "n/a" fields
give no series; one-hot enums export every state; the text passes ``promtool check metrics``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.metrics.collector import RESIDENCY_STATES, WORKER_STATES, GalaxyCollector
from engine.metrics.feed import DURATION_BUCKETS, Histogram, Tallies
from engine.snapshot import AlertView, EscalationView, GpuView, NodeView, QueueView, Snapshot, TaskView, WorkerView

GPU0 = {"rig": "lab", "gpu": "0", "uuid": "GPU-aaaa", "name": "GeForce GTX 1060 6GB"}
GPU1 = {"rig": "lab", "gpu": "1", "uuid": "", "name": "GeForce GTX 1060 6GB"}


def canned() -> Snapshot:
    return Snapshot(
        version=1, seq=7, taken_at=1_800_000_000.5, rig="lab", simulated=False, telemetry_status="nvml ok",
        supervisor_pid=42, started_at=1_799_999_000.0,
        gpus=(GpuView(index=0, name="GeForce GTX 1060 6GB", uuid="GPU-aaaa", util_pct=97.0, mem_used_mb=4096.0,
                      mem_total_mb=6144.0, mem_galaxy_mb=4000.0, temp_c=71.0, power_w=120.5, power_limit_w=140.0,
                      fan_pct=55.0, clock_sm_mhz=1800.0, clock_mem_mhz=4000.0, residency="llm_busy",
                      resident_model="qwen2.5:7b", worker_id="gpu0"),
              GpuView(index=1, name="GeForce GTX 1060 6GB", util_pct=None, mem_used_mb=None, mem_total_mb=6144.0,
                      temp_c=None, power_w=None, residency="idle", thermal_hold=True, degraded="VRAM not freed")),
        workers=(WorkerView(worker_id="gpu0", gpus=(0,), state="running", current_task="b.t1", tokens_per_s=31.5,
                            resident_model="qwen2.5:7b", restarts=2, last_heartbeat=1_800_000_000.0),
                 WorkerView(worker_id="gpu1", gpus=(1,), state="backoff", restarts=0)),
        queue=QueueView(counts={"queue": {"llm": 12, "cpu": 3}, "processing": {"llm": 1}, "failed": {"cpu": 2},
                                "awaiting": {"llm": 1}}),
        running=(TaskView(task_id="b.t1", name="t1", task_class="llm", status="processing", model="qwen2.5:7b"),),
        alerts=(AlertView(key="gpu_hot:0", severity="warning", message="hot", since=1.0),),
        escalations=(EscalationView(escalation_id="e1", task_id="b.t9", state="pending", reason="r", provider="p",
                                    model="m", est_input_tokens=10, est_cost_usd=0.01, budget_left_usd=4.0,
                                    created_at=1.0, expires_at=None, preview="x"),),
        nodes=(NodeView(name="gpu0", tier=0, backend="ollama", endpoint="http://127.0.0.1:11434", model="qwen2.5:7b",
                        healthy=True, latency_ms=25.0, load=1, breaker="closed"),
               NodeView(name="big", tier=1, backend="openai", endpoint="http://10.0.0.2:8000", model="llama3:70b",
                        healthy=False, latency_ms=None, load=0, breaker="open", breaker_failures=5)),
    )


def scrape(snap: Snapshot | None, tallies: Tallies | None = None, **kw) -> dict[tuple[str, frozenset], float]:
    registry = CollectorRegistry(auto_describe=False)

    class Feed:  # the collector's use of a feed: remember models, update, tallies
        def __init__(self, t: Tallies) -> None:
            self.tallies, self.remembered = t, []

        def remember_all(self, pairs) -> None:
            self.remembered += list(pairs)

        def update(self, now: float) -> None:
            return None

    registry.register(GalaxyCollector(lambda: snap, Feed(tallies) if tallies is not None else None, **kw))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def key(metric: str, /, **labels: str) -> tuple[str, frozenset]:
    return metric, frozenset(labels.items())


def test_gpu_series_exact() -> None:
    m = scrape(canned())
    assert m[key("galaxy_gpu_memory_used_bytes", **GPU0)] == 4096 * 1024 * 1024
    assert m[key("galaxy_gpu_memory_total_bytes", **GPU0)] == 6144 * 1024 * 1024
    assert m[key("galaxy_gpu_utilization_percent", **GPU0)] == 97.0
    assert m[key("galaxy_gpu_temperature_celsius", **GPU0)] == 71.0
    assert m[key("galaxy_gpu_power_watts", **GPU0)] == 120.5
    assert m[key("galaxy_gpu_power_limit_watts", **GPU0)] == 140.0
    assert m[key("galaxy_gpu_fan_speed_percent", **GPU0)] == 55.0
    assert m[key("galaxy_gpu_sm_clock_hertz", **GPU0)] == 1.8e9
    assert m[key("galaxy_gpu_resident_model", **GPU0, model="qwen2.5:7b")] == 1.0
    # n/a from NVML is no series, never a made-up zero; GPU 1 has no resident model
    for name in ("galaxy_gpu_utilization_percent", "galaxy_gpu_temperature_celsius", "galaxy_gpu_power_watts",
                 "galaxy_gpu_memory_used_bytes", "galaxy_gpu_fan_speed_percent"):
        assert key(name, **GPU1) not in m, name
    assert m[key("galaxy_gpu_memory_total_bytes", **GPU1)] == 6144 * 1024 * 1024
    assert not [k for k in m if k[0] == "galaxy_gpu_resident_model" and ("gpu", "1") in k[1]]
    assert m[key("galaxy_gpu_thermal_hold", **GPU1)] == 1.0 and m[key("galaxy_gpu_thermal_hold", **GPU0)] == 0.0
    assert m[key("galaxy_gpu_degraded", **GPU1)] == 1.0


def test_enums_are_one_hot_over_every_state() -> None:
    m = scrape(canned())
    res0 = {dict(k[1])["state"]: v for k, v in m.items()
            if k[0] == "galaxy_gpu_residency_state" and ("gpu", "0") in k[1]}
    assert res0 == {s: (1.0 if s == "llm_busy" else 0.0) for s in RESIDENCY_STATES}
    w1 = {dict(k[1])["state"]: v for k, v in m.items() if k[0] == "galaxy_worker_state" and ("worker", "gpu1") in k[1]}
    assert w1 == {s: (1.0 if s == "backoff" else 0.0) for s in WORKER_STATES}
    assert m[key("galaxy_node_breaker_state", node="big", state="open")] == 1.0
    assert m[key("galaxy_node_breaker_state", node="big", state="closed")] == 0.0
    assert m[key("galaxy_node_breaker_state", node="big", state="half_open")] == 0.0


def test_queue_workers_nodes_escalations() -> None:
    m = scrape(canned(), spent_today=lambda now: 1.25, budget_usd=5.0)
    assert m[key("galaxy_queue_tasks", state="queue", **{"class": "llm"})] == 12
    assert m[key("galaxy_queue_tasks", state="queue", **{"class": "cpu"})] == 3
    assert m[key("galaxy_queue_tasks", state="awaiting", **{"class": "llm"})] == 1
    assert m[key("galaxy_queue_tasks", state="held", **{"class": "script"})] == 0  # every state x class, always
    assert len([k for k in m if k[0] == "galaxy_queue_tasks"]) == 7 * 4
    assert m[key("galaxy_worker_restarts_total", worker="gpu0")] == 2
    assert m[key("galaxy_worker_busy", worker="gpu0")] == 1 and m[key("galaxy_worker_busy", worker="gpu1")] == 0
    assert m[key("galaxy_tokens_per_second", model="qwen2.5:7b", node="gpu0")] == 31.5
    assert [k for k in m if k[0] == "galaxy_tokens_per_second"] == [key("galaxy_tokens_per_second",
                                                                         model="qwen2.5:7b", node="gpu0")]
    assert m[key("galaxy_node_healthy", node="big")] == 0.0
    assert m[key("galaxy_node_latency_seconds", node="gpu0")] == 0.025
    assert key("galaxy_node_latency_seconds", node="big") not in m
    assert m[key("galaxy_node_breaker_failures", node="big")] == 5
    assert m[key("galaxy_escalations", state="pending")] == 1 and m[key("galaxy_escalations", state="sent")] == 0
    assert m[key("galaxy_escalation_cost_today_usd")] == 1.25 and m[key("galaxy_escalation_budget_usd")] == 5.0
    assert m[key("galaxy_alerts", severity="warning")] == 1 and m[key("galaxy_alerts", severity="critical")] == 0
    assert m[key("galaxy_rig_info", rig="lab", simulated="false")] == 1
    assert m[key("galaxy_snapshot_timestamp_seconds")] == 1_800_000_000.5


def tallies() -> Tallies:
    t = Tallies()
    h = Histogram(DURATION_BUCKETS)
    for v in (0.2, 3.0, 3.0, 7000.0):
        h.observe(v)
    t.durations[("llm", "qwen2.5:7b")] = h
    t.tokens[("qwen2.5:7b", "gpu0")] = 900
    t.loads[("qwen2.5:7b", "gpu0")] = 1
    t.load_seconds[("qwen2.5:7b", "gpu0")] = 4.0
    t.unloads[("qwen2.5:7b", "gpu0")] = 1
    t.load_failures[("llama3:8b", "gpu1")] = 1
    t.failed["cpu"] = 2
    t.escalations["approved"] = 1
    return t


def test_event_tallies_become_histograms_and_counters() -> None:
    m = scrape(canned(), tallies())
    lab = {"class": "llm", "model": "qwen2.5:7b"}
    buckets = {dict(k[1])["le"]: v for k, v in m.items() if k[0] == "galaxy_task_duration_seconds_bucket"}
    assert buckets["0.5"] == 1 and buckets["2.5"] == 1 and buckets["5.0"] == 3 and buckets["3600.0"] == 3
    assert buckets["+Inf"] == 4
    assert m[key("galaxy_task_duration_seconds_count", **lab)] == 4
    assert m[key("galaxy_task_duration_seconds_sum", **lab)] == pytest.approx(7006.2)
    assert m[key("galaxy_tokens_generated_total", model="qwen2.5:7b", node="gpu0")] == 900
    assert m[key("galaxy_model_loads_total", model="qwen2.5:7b", node="gpu0")] == 1
    assert m[key("galaxy_model_load_seconds_total", model="qwen2.5:7b", node="gpu0")] == 4.0
    assert m[key("galaxy_model_unloads_total", model="qwen2.5:7b", node="gpu0")] == 1
    assert m[key("galaxy_tasks_failed_total", **{"class": "cpu"})] == 2
    assert m[key("galaxy_tasks_failed_total", **{"class": "llm"})] == 0
    assert m[key("galaxy_escalation_events_total", event="approved")] == 1
    assert m[key("galaxy_escalation_events_total", event="denied")] == 0


def test_no_snapshot_yet_still_answers() -> None:
    m = scrape(None, Tallies())
    assert not [k for k in m if k[0].startswith("galaxy_gpu_")]
    assert m[key("galaxy_metrics_event_lines_skipped_total")] == 0


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package 'prometheus'; scripts/test.sh installs it)")
def test_promtool_check_metrics_passes() -> None:
    registry = CollectorRegistry(auto_describe=False)

    class Feed:
        tallies = tallies()

        def remember_all(self, pairs) -> None:
            list(pairs)

        def update(self, now: float) -> None:
            return None

    registry.register(GalaxyCollector(canned, Feed(), spent_today=lambda now: 0.5, budget_usd=5.0))  # type: ignore[arg-type]
    text = generate_latest(registry)
    assert b"galaxy_gpu_memory_used_bytes" in text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60, check=False)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()[-2000:]
    assert not r.stdout.strip() and not r.stderr.strip(), (r.stdout + r.stderr).decode()  # no lint warnings either


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-galaxy.json"


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    return [re.sub(r"\$\{?\w+\}?", ".*", e) for e in exprs]  # Grafana variables: match anything


def test_dashboard_uses_only_our_metric_names() -> None:
    exported = {name for name, _labels in scrape(canned(), tallies(), spent_today=lambda now: 0.0, budget_usd=5.0)}
    used = {m for e in dashboard_exprs() for m in re.findall(r"\bgalaxy_[a-z_]+", e)}
    assert len(used) > 30
    assert used <= exported, sorted(used - exported)


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package 'prometheus'; scripts/test.sh installs it)")
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e}
                                                        for i, e in enumerate(dashboard_exprs())]}]}
    path = tmp_path / "rules.json"  # YAML is a superset of JSON: promtool reads it
    path.write_text(json.dumps(rules))
    r = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
