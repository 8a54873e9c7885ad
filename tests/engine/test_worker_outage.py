"""A worker while its store does not answer: the retry policy, the kept result, paused claims, one
log line per change (engine/worker/outage.py, engine/worker/loop.py). The store's failures come
from a double around a real FileQueue; the fault tests on a real redis-server are in
tests/store/test_redis_faults.py."""

from __future__ import annotations

import itertools
import threading

from queue_helpers import T0, events_of, make_queue, task
from worker_doubles import NoopHandler, RecordingResidency

from engine.clock import FakeClock
from engine.events import EventLog
from engine.handlers.registry import HandlerRegistry
from engine.model import TaskStatus, TaskType
from engine.queue.protocol import StoreUnavailable
from engine.scheduling.policy import WorkerProfile
from engine.store.outage import RetryPolicy, StoreOutage, describe
from engine.worker.heartbeat import LeaseKeeper
from engine.worker.loop import Worker, WorkerSettings


def test_retry_delay_doubles_up_to_its_cap() -> None:
    p = RetryPolicy(base_s=0.5, cap_s=5.0)
    assert [p.delay_s(n) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert p.delay_s(10_000) == 5.0


def test_outage_changes_are_reported_once_each() -> None:
    o = StoreOutage(RetryPolicy(base_s=1.0, cap_s=8.0))
    assert o.due(T0) and not o.down
    down = o.failed(T0, "ConnectionError: refused")
    assert down is not None and down.down and down.since == T0
    assert o.failed(T0 + 1, "again") is None and o.failed(T0 + 3, "again") is None
    assert o.failures == 3 and not o.due(T0 + 6) and o.due(T0 + 7) and o.wait_s(T0 + 5) == 2.0
    assert "store unreachable since" in describe(down, T0)
    up = o.answered(T0 + 10)
    assert up is not None and not up.down and up.since == T0 and up.failures == 3
    assert "answers again" in describe(up, T0 + 10)
    assert o.answered(T0 + 11) is None and o.due(T0 + 11) and not o.down


class _Outage:
    """The store double: a real FileQueue whose named calls raise StoreUnavailable while ``down``
    (the first ``down`` calls of each); the worker's waits advance the fake clock."""

    def __init__(self, inner, clock: FakeClock, fail: dict[str, int]) -> None:
        self.inner = inner
        self.clock = clock
        self.fail = dict(fail)
        self.calls: dict[str, list[float]] = {}

    def _maybe_fail(self, name: str) -> None:
        self.calls.setdefault(name, []).append(self.clock.now())
        if self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            raise StoreUnavailable(f"Redis did not answer {name}: Connection refused")

    def claim(self, *args, **kwargs):
        self._maybe_fail("claim")
        return self.inner.claim(*args, **kwargs)

    def complete(self, *args, **kwargs):
        self._maybe_fail("complete")
        return self.inner.complete(*args, **kwargs)

    def heartbeat(self, *args, **kwargs):
        self._maybe_fail("heartbeat")
        return self.inner.heartbeat(*args, **kwargs)

    def wait_for_change(self, timeout_s: float, *, wake_fd=None) -> bool:
        self.clock.advance(max(timeout_s, 0.01))
        return False

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _worker(q, clock, **settings) -> Worker:
    settings.setdefault("exit_when_idle", True)
    settings.setdefault("housekeeping_s", 0.0)
    return Worker(q, HandlerRegistry(instances={TaskType.SHELL: NoopHandler()}), RecordingResidency(), clock,
                  q.paths, EventLog(q.paths.events), "w1", (), WorkerProfile("w1"), WorkerSettings(**settings),
                  outage=StoreOutage(RetryPolicy(base_s=1.0, cap_s=4.0)))


def test_a_result_is_kept_while_the_store_is_away_and_recorded_once(tmp_path) -> None:
    inner = make_queue(tmp_path)
    inner.submit([task("kept"), task("next")], T0)
    clock = FakeClock(T0)
    q = _Outage(inner, clock, {"complete": 4})
    w = _worker(q, clock)
    assert w.run() == 2
    assert inner.get("kept").status is TaskStatus.COMPLETE and inner.get("next").status is TaskStatus.COMPLETE
    assert len(events_of(tmp_path, "task_completed")) == 2 and w.tasks_done == 2
    tries = q.calls["complete"]
    assert len(tries) == 6  # 4 refused + kept's recording + next's
    gaps = [b - a for a, b in itertools.pairwise(tries[:4])]
    assert gaps[0] >= 1.0 and gaps[1] >= 2.0 and gaps[2] >= 4.0  # backoff, at most the cap's 4 s apart
    assert q.calls["claim"][1] >= tries[4]  # nothing else claimed while the result waited
    down, up = events_of(tmp_path, "store_unreachable"), events_of(tmp_path, "store_recovered")
    assert len(down) == 1 and len(up) == 1 and up[0]["failures"] == 4
    assert events_of(tmp_path, "worker_error") == []


def test_claims_pause_with_backoff_and_resume(tmp_path) -> None:
    inner = make_queue(tmp_path)
    inner.submit([task("later")], T0)
    clock = FakeClock(T0)
    q = _Outage(inner, clock, {"claim": 3})
    w = _worker(q, clock)
    assert w.run() == 1
    assert inner.get("later").status is TaskStatus.COMPLETE
    claims = q.calls["claim"]
    assert claims[1] - claims[0] >= 1.0 and claims[2] - claims[1] >= 2.0 and claims[3] - claims[2] >= 4.0
    assert len(events_of(tmp_path, "store_unreachable")) == 1 and len(events_of(tmp_path, "store_recovered")) == 1
    assert events_of(tmp_path, "worker_error") == []


def test_a_stopping_worker_gives_up_a_result_it_cannot_record_and_says_so(tmp_path) -> None:
    inner = make_queue(tmp_path)
    inner.submit([task("unrecorded")], T0)
    clock = FakeClock(T0)
    q = _Outage(inner, clock, {"complete": 10**6})
    w = _worker(q, clock, stop_grace_s=0.2, max_tasks=1, exit_when_idle=False)

    def stop_when_kept() -> None:
        while w._pending is None and thread.is_alive():
            threading.Event().wait(0.01)
        w.request_stop("SIGTERM")

    thread = threading.Thread(target=w.run)
    thread.start()
    stop_when_kept()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert inner.get("unrecorded").status is TaskStatus.PROCESSING  # its lease ends; it runs again
    errors = events_of(tmp_path, "worker_error")
    assert len(errors) == 1 and "result of unrecorded not recorded" in errors[0]["error"]


def test_a_heartbeat_the_store_does_not_answer_keeps_the_task() -> None:
    seen: list[object] = []

    class Away:
        def heartbeat(self, task_id, worker_id, now, lease_s) -> bool:
            raise StoreUnavailable("Redis did not answer heartbeat")

    keeper = LeaseKeeper(Away(), FakeClock(T0), "t", "w1", 60.0, 0.01, status_every_s=0.01, on_store=seen.append)
    with keeper:
        deadline = threading.Event()
        for _ in range(2000):
            if len(seen) >= 3:
                break
            deadline.wait(0.01)
    assert len(seen) >= 3 and all(isinstance(e, StoreUnavailable) for e in seen)
    assert not keeper.lost
