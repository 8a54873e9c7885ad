"""Store faults on a real redis-server, with real worker processes (tests/support/redis_fault_worker.py):
``kill -9`` of redis-server mid-run and a restart, connections killed (``CLIENT KILL``, and a relay
that drops the reply of claim and complete scripts after they ran), ``DEBUG SLEEP`` longer than the
workers' socket timeout, and a worker SIGSTOPped past its lease then resumed.

Each ends with every task complete and recorded once: one completion in the store's counts per
task, one successful attempt on each task. Waits poll the store with generous deadlines; nothing
asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from engine.events import tail_events
from engine.model import Task, TaskClass, TaskStatus
from engine.paths import RigPaths
from engine.queue.protocol import Place
from engine.store.redis.client import connect
from engine.store.redis.queue import RedisQueue
from engine.workerstate import read_status
from tests.support.redis_server import RedisServer, redis_server_binary
from tests.support.reply_cutter import ReplyCutter

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "faults"
DEADLINE_S = 240.0
KILL_ROUNDS = 25

pytestmark = pytest.mark.skipif(redis_server_binary() is None,
                                reason="redis-server is not installed (scripts/test.sh installs it)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path / "redis", extra=("--enable-debug-command", "yes"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def store(server: RedisServer) -> Iterator[RedisQueue]:
    """The test's own handle (a long socket timeout: it must outwait DEBUG SLEEP)."""
    q = RedisQueue(connect(server.url, socket_timeout_s=60.0), CLUSTER)
    yield q
    q.close()


class Workers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, worker_id: str, url: str, *, lease_s: float = 3.0, socket_timeout_s: float = 1.0) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        out = open(self.root / f"{worker_id}.out", "wb")  # the child keeps its own copy
        self.procs[worker_id] = subprocess.Popen(
            [sys.executable, "-m", "tests.support.redis_fault_worker", url, CLUSTER, str(self.root), worker_id,
             str(lease_s), str(socket_timeout_s)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        log = self.root / f"{worker_id}.out"
        proc = self.procs[worker_id]
        until(lambda: f"fault worker {worker_id} ready" in log.read_text() or proc.poll() is not None,
              f"worker {worker_id} started")  # the faults begin once it has opened its queue
        assert proc.poll() is None, f"worker {worker_id} exited: {log.read_text()[-2000:]}"

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path / "rig")
    RigPaths(w.root).ensure()
    try:
        yield w
    finally:
        w.stop_all()


def until(cond: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except (OSError, redis.RedisError):
            pass  # the store is away (or loading): ask again
        assert time.monotonic() < deadline, f"not reached within {timeout:.0f} s: {what}"
        time.sleep(0.1)


def events(root: Path, kind: str) -> list[dict[str, object]]:
    return [e for e in tail_events(RigPaths(root).events, 1_000_000) if e["event_type"] == kind]


def submit(q: RedisQueue, n: int, *, command: str = "sleep 0.02", chains: bool = True) -> list[str]:
    """n tasks; with ``chains`` every third one waits for the one before it (release under faults)."""
    tasks = []
    for i in range(n):
        deps = (f"f{i - 1:04d}",) if chains and i % 3 == 2 else ()
        tasks.append(Task(f"f{i:04d}", f"f{i:04d}", command=command, task_class=TaskClass.CPU, depends_on=deps,
                          max_retries=10))
    q.submit(tasks, time.time())
    return [t.task_id for t in tasks]


def completed(q: RedisQueue) -> int:
    return sum(q.counts().by_state[Place.COMPLETE.value].values())


def assert_each_completed_once(q: RedisQueue, ids: list[str]) -> None:
    """0 lost, 0 completed twice: every task complete, one success each, the counts agree."""
    lost = [i for i in ids if q.where(i) is not Place.COMPLETE]
    assert lost == [], f"not complete: {lost[:10]}"
    for task_id in ids:
        task = q.get(task_id)
        assert task is not None and task.status is TaskStatus.COMPLETE
        oks = [a for a in task.attempts if a.outcome == "ok"]
        assert len(oks) == 1, f"{task_id} completed {len(oks)} times: {task.attempts}"
    assert completed(q) == len(ids)


def test_kill_9_of_redis_mid_run_then_restart(server: RedisServer, store: RedisQueue, workers: Workers) -> None:
    ids = submit(store, 150)
    for w in ("wa", "wb"):
        workers.start(w, server.url)
    until(lambda: completed(store) >= 20, "20 tasks done before the crash")
    server.proc.kill()  # kill -9: no shutdown, no final AOF rewrite
    server.proc.wait(timeout=30)
    until(lambda: {e["worker_id"] for e in events(workers.root, "store_unreachable")} >= {"wa", "wb"},
          "both workers noticed the store is gone")
    server.restart()  # same port, same data directory: the AOF is replayed
    until(lambda: completed(store) == len(ids), "every task done after the restart")
    until(lambda: {e["worker_id"] for e in events(workers.root, "store_recovered")} >= {"wa", "wb"},
          "both workers saw the store answer again")
    assert_each_completed_once(store, ids)
    assert all(p.poll() is None for p in workers.procs.values()), "a worker died during the outage"


def test_killed_connections_and_lost_replies_after_claim_and_complete(server: RedisServer, store: RedisQueue,
                                                                      workers: Workers) -> None:
    cutter = ReplyCutter(server.port, {"claim": 6, "complete": 6})
    admin = connect(server.url, socket_timeout_s=30.0)
    stop = threading.Event()

    def kill_clients() -> None:  # CLIENT KILL of every other connection, KILL_ROUNDS times
        for _ in range(KILL_ROUNDS):
            if stop.wait(0.3):
                return
            try:
                admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes")
            except redis.RedisError:
                pass

    try:
        ids = submit(store, 150)
        for w in ("wa", "wb"):
            workers.start(w, cutter.url)
        killer = threading.Thread(target=kill_clients, daemon=True)
        killer.start()
        killer.join(timeout=KILL_ROUNDS * 0.3 + 60)  # a bounded number of rounds: progress between them
        until(lambda: completed(store) == len(ids), "every task done")
        assert cutter.cut == {"claim": 6, "complete": 6}  # each one's reply was lost after the script ran
        assert_each_completed_once(store, ids)
        logged = sorted(str(e["task_id"]) for e in events(workers.root, "task_completed"))
        assert logged == sorted(ids)  # one task_completed each, also where the completion's reply was lost
    finally:
        stop.set()
        workers.stop_all()
        cutter.close()
        admin.close()


def test_debug_sleep_longer_than_the_socket_timeout(server: RedisServer, store: RedisQueue,
                                                    workers: Workers) -> None:
    ids = submit(store, 120)
    for w in ("wa", "wb"):
        workers.start(w, server.url, socket_timeout_s=0.5)
    admin = connect(server.url, socket_timeout_s=60.0)
    try:
        for done_before in (10, 40, 70):
            until(lambda n=done_before: completed(store) >= n, f"{done_before} tasks done")
            admin.execute_command("DEBUG", "SLEEP", "2.5")  # the server answers no one for 2.5 s
        until(lambda: completed(store) == len(ids), "every task done")
        assert_each_completed_once(store, ids)
    finally:
        admin.close()


def test_a_worker_stopped_past_its_lease_records_nothing_when_it_resumes(server: RedisServer, store: RedisQueue,
                                                                         workers: Workers, tmp_path: Path) -> None:
    go = tmp_path / "go"
    store.submit([Task("slow", "slow", command=f"until [ -e {go} ]; do sleep 0.05; done", task_class=TaskClass.CPU,
                       max_retries=10)], time.time())
    workers.start("wa", server.url, lease_s=2.0)
    until(lambda: [c.worker_id for c in store.claims()] == ["wa"], "wa holds the task")
    stopped = workers.procs["wa"]
    stopped.send_signal(signal.SIGSTOP)
    go.touch()  # wa's task can end now, but wa cannot record it: it is stopped
    try:
        workers.start("wb", server.url, lease_s=2.0)
        until(lambda: store.where("slow") is Place.COMPLETE, "wb reaps the lease and runs the task")
    finally:
        stopped.send_signal(signal.SIGCONT)
    refused = ("duplicate_completion", "late_result_discarded")
    until(lambda: any(e.get("task_id") == "slow" and e.get("worker_id") == "wa"
                      for kind in refused for e in events(workers.root, kind)),
          "wa's late outcome refused after it resumed")
    assert_each_completed_once(store, ["slow"])
    task = store.get("slow")
    assert task is not None and [a.worker_id for a in task.attempts if a.outcome == "ok"] == ["wb"]
    assert len(events(workers.root, "task_completed")) == 1


def test_a_result_finished_while_redis_is_down_is_kept_and_recorded_once(server: RedisServer, store: RedisQueue,
                                                                         workers: Workers, tmp_path: Path) -> None:
    mark, go = tmp_path / "ran", tmp_path / "go"
    store.submit([Task("kept", "kept", command=f"until [ -e {go} ]; do sleep 0.05; done; echo x >> {mark}",
                       task_class=TaskClass.CPU)], time.time())
    workers.start("wa", server.url, lease_s=60.0)
    until(lambda: [c.worker_id for c in store.claims()] == ["wa"], "wa holds the task")
    server.proc.kill()
    server.proc.wait(timeout=30)
    go.touch()  # the task ends while Redis is down
    status_path = RigPaths(workers.root).worker_status("wa")

    def kept() -> bool:
        st = read_status(status_path)
        return mark.exists() and st is not None and st.current_task is None and st.tasks_done == 0

    until(kept, "wa finished the task and keeps its result")
    server.restart()
    until(lambda: store.where("kept") is Place.COMPLETE, "the kept result recorded after the restart")
    until(lambda: (st := read_status(status_path)) is not None and st.tasks_done == 1, "wa counts it done")
    assert_each_completed_once(store, ["kept"])
    assert mark.read_text() == "x\n"  # ran once: the result was kept, not the task run again
    assert len(events(workers.root, "store_unreachable")) == 1 and len(events(workers.root, "store_recovered")) == 1
