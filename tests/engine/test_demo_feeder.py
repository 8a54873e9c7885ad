"""The live demo's feeder: a steady mixed stream, bounded by what waits, with failures and escalations."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter

from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.sim.cloud_api import SIM_CLOUD_KEY, SimulatedCloudApi
from engine.sim.demo import DemoFeeder, DemoSettings


def test_stream_is_steady_mixed_and_stops_when_work_piles_up(tmp_path):
    q = FileQueue(RigPaths(tmp_path / "shared").ensure(), use_inotify=False)
    try:
        feeder = DemoFeeder(q, DemoSettings(tasks_per_min=60.0, max_waiting=25, escalation_every_s=20.0), seed=1)
        ids = []
        for t in range(41):  # 40 s, nothing drains the queue
            ids += feeder.tick(1000.0 + t)
        counts = q.counts()
        waiting = counts.total("queue") + counts.total("delayed")
        assert 25 <= waiting <= 27  # the cap, plus the escalations that always go in
        assert len(ids) == waiting
    finally:
        q.close()


def test_generated_work_mixes_classes_failures_and_escalations():
    class Sink:
        def __init__(self) -> None:
            self.tasks: list = []

        def submit(self, tasks, now):
            self.tasks += tasks
            return [t.task_id for t in tasks]

        def counts(self):
            from engine.queue.protocol import QueueCounts
            return QueueCounts()

    sink = Sink()
    feeder = DemoFeeder(sink, DemoSettings(tasks_per_min=120.0, max_waiting=10**6, escalation_every_s=60.0), seed=3)
    for t in range(601):  # ten minutes
        feeder.tick(float(t))
    by_class = Counter(t.task_class.value for t in sink.tasks)
    assert set(by_class) == {"cpu", "script", "llm"}
    assert 1100 <= len(sink.tasks) <= 1300  # 2 a second, steady
    failing = [t for t in sink.tasks if "exit 3" in t.command]
    assert 0.02 * len(sink.tasks) < len(failing) < 0.12 * len(sink.tasks)
    assert {t.name.split("[")[0] for t in failing} == {"export"}  # fan-out names: the alert groups them
    external = [t for t in sink.tasks if t.requires_external]
    assert 9 <= len(external) <= 11
    assert len({t.task_id for t in sink.tasks}) == len(sink.tasks)


def test_a_broken_plan_is_logged_and_the_stream_goes_on():
    logs = []

    def plan(now):
        raise ValueError("video.md:3: for_each matched no file")

    class Sink:
        def submit(self, tasks, now):
            return [t.task_id for t in tasks]

        def counts(self):
            from engine.queue.protocol import QueueCounts
            return QueueCounts()

    feeder = DemoFeeder(Sink(), plan=plan, log=lambda msg, **kw: logs.append((msg, kw)))
    assert feeder.tick(0.0)
    assert feeder.errors == 1 and logs[0][0] == "demo: example plan not submitted"


def test_simulated_cloud_answers_the_messages_api_on_loopback_only():
    api = SimulatedCloudApi().start()
    try:
        assert api.url.startswith("http://127.0.0.1:")
        body = json.dumps({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi there"}]})
        req = urllib.request.Request(api.url + "/v1/messages", data=body.encode(), method="POST",
                                     headers={"x-api-key": SIM_CLOUD_KEY, "anthropic-version": "2023-06-01",
                                              "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            data = json.loads(resp.read())
        assert data["content"][0]["type"] == "text" and data["usage"]["input_tokens"] == 2
        bad = urllib.request.Request(api.url + "/v1/messages", data=body.encode(), method="POST",
                                     headers={"x-api-key": "wrong", "anthropic-version": "2023-06-01"})
        try:
            urllib.request.urlopen(bad, timeout=5)
            raise AssertionError("a wrong key must be refused")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        assert api.requests == 1
    finally:
        api.stop()
    assert not [t for t in threading.enumerate() if t.name == "sim-cloud"]
