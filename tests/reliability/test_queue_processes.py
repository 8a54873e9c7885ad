"""Real worker processes against one queue directory: exactly-once, SIGKILL, SIGTERM.

No sleeps for timing: waits poll for a condition with a generous deadline, and lease
expiry is driven by calling ``reap_stale`` with an explicit ``now``.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.events import EventLog, tail_events
from engine.model import Task, TaskClass, TaskStatus
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.scheduling.policy import WorkerProfile, make_claim_policy

REPO = Path(__file__).resolve().parents[2]
NOOP_WORKER = Path(__file__).with_name("noop_worker.py")


def make_queue(root: Path, **kwargs) -> FileQueue:
    paths = RigPaths(root).ensure()
    return FileQueue(paths, events=EventLog(paths.events), **kwargs)


def task(task_id: str, **kw) -> Task:
    return Task(task_id=task_id, name=kw.pop("name", task_id), command=kw.pop("command", "true"),
                task_class=TaskClass.CPU, **kw)


def _galaxy(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _until(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_four_worker_processes_drain_2000_tasks_exactly_once(tmp_path):
    q = make_queue(tmp_path)
    n = 2000
    q.submit([task(f"t{i:05d}", priority=1 + i % 10) for i in range(n)], time.time())
    procs = [subprocess.Popen([sys.executable, str(NOOP_WORKER), str(tmp_path), f"w{k}"], stdout=subprocess.PIPE,
                              text=True) for k in range(4)]
    ran = [int(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert sum(ran) == n
    assert all(p.returncode == 0 for p in procs)
    completed = [e["task_id"] for e in tail_events(q.paths.events, 10 * n, max_bytes=1 << 26)
                 if e["event_type"] == "task_completed"]
    assert len(completed) == n and len(set(completed)) == n
    assert len(os.listdir(q.paths.complete)) == n
    assert not os.listdir(q.paths.queue) and not os.listdir(q.paths.processing)
    assert q.counts().by_state["complete"] == {"cpu": n}
    per_task = collections.Counter(len(q.get(f"t{i:05d}").attempts) for i in range(0, n, 97))
    assert set(per_task) == {1}


def test_sigkilled_worker_task_returns_after_lease_and_completes_elsewhere(tmp_path):
    q = make_queue(tmp_path)
    marker, pidfile = tmp_path / "ran-once", tmp_path / "task.pid"
    cmd = f"if [ -e {marker} ]; then echo second run; exit 0; fi; touch {marker}; echo $$ > {pidfile}; exec sleep 120"
    q.submit([task("victim", command=cmd)], time.time())
    first = _galaxy(tmp_path, "worker", "--worker-id", "doomed", "--lease", "60")
    try:
        _until(lambda: pidfile.exists() and pidfile.read_text().strip())
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the orphaned task
            except (ProcessLookupError, ValueError):
                pass
    running = q.get("victim")
    assert running.status is TaskStatus.PROCESSING and running.lease_owner == "doomed"
    assert q.reap_stale(time.time()) == []  # lease still valid
    assert q.reap_stale(time.time() + 61) == ["victim"]
    second = _galaxy(tmp_path, "worker", "--worker-id", "rescuer", "--exit-when-idle")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    done = q.get("victim")
    assert done.status is TaskStatus.COMPLETE and done.retry_count == 1
    assert [(a.worker_id, a.outcome) for a in done.attempts] == [("doomed", "lost"), ("rescuer", "ok")]
    assert "second run" in done.result["output_tail"]


def test_sigterm_hands_back_the_running_task_and_exits(tmp_path):
    q = make_queue(tmp_path)
    pidfile = tmp_path / "task.pid"
    q.submit([task("held-up", command=f"echo $$ > {pidfile}; exec sleep 120")], time.time())
    worker = _galaxy(tmp_path, "worker", "--worker-id", "w-term", "--grace", "0.2")
    try:
        _until(lambda: pidfile.exists() and pidfile.read_text().strip())
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, out
    back = q.get("held-up")
    assert back.status is TaskStatus.PENDING and back.retry_count == 0
    assert back.attempts[-1].outcome == "released" and "SIGTERM" in back.attempts[-1].error
    task_pid = int(pidfile.read_text())
    _until(lambda: not os.path.exists(f"/proc/{task_pid}")
           or open(f"/proc/{task_pid}/stat").read().split()[2] == "Z")


def test_sigkill_during_a_busy_drain_loses_nothing_and_records_nothing_twice(tmp_path):
    q = make_queue(tmp_path, orphan_age_s=0.0)
    n = 1500
    q.submit([task(f"k{i:05d}") for i in range(n)], time.time())
    ledger = q.paths.tasks / "ledger.log"
    procs = [subprocess.Popen([sys.executable, str(NOOP_WORKER), str(tmp_path), f"w{k}"], stdout=subprocess.PIPE,
                              text=True) for k in range(4)]
    _until(lambda: ledger.exists() and ledger.read_text().count("\n") >= n // 5)
    procs[0].send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate(timeout=300)
    assert procs[0].returncode == -signal.SIGKILL
    # The dead worker's claim (in processing/ or caught mid-move in .tmp/) comes back once its lease is over.
    q.reap_stale(time.time() + 3600)
    pol = make_claim_policy(WorkerProfile("rescuer"))
    while (t := q.claim("rescuer", time.time(), pol, 30)) is not None:
        q.complete(t.task_id, "rescuer", {}, time.time())
    recorded = [line.split()[3] for line in ledger.read_text().splitlines() if line.split()[1] == "C"]
    assert len(recorded) == n and len(set(recorded)) == n
    assert len(os.listdir(q.paths.complete)) == n
    assert not os.listdir(q.paths.queue) and not os.listdir(q.paths.processing)
    assert not [f for f in os.listdir(q.tmp) if not f.endswith(".tmp")]
