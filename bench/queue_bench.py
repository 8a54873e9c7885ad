"""FileQueue benchmark: prints figures, asserts nothing.

    .venv/bin/python bench/queue_bench.py            # depth 20,000 (about a minute on 2 cores)
    .venv/bin/python bench/queue_bench.py --quick    # depth 2,000, a few seconds

Measures: enqueue/s; claim+complete/s with 1, 2, 4 worker processes in strict claim order
(the real ``FileQueue.claim`` with the real claim policy, no-op tasks); the same with one
of 4 workers SIGKILLed mid-run and a check that nothing was lost; huey's SqliteHuey on the
same machine in the same run; submit-to-claim latency p50/p99 through the real Worker loop
at low load; CPU use of an idle ``galaxy worker`` process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.events import EventLog  # noqa: E402
from engine.model import Task  # noqa: E402
from engine.paths import RigPaths  # noqa: E402
from engine.queue.filequeue import FileQueue  # noqa: E402
from engine.scheduling.policy import WorkerProfile, make_claim_policy  # noqa: E402

LEASE_S = 30.0
CONFLICTS: list[int] = []  # claims lost to another worker, per drain child


def _events(root: Path) -> EventLog:
    """The real event log: every figure here includes writing it, as a real worker does."""
    return EventLog(RigPaths(root).events)


def _tasks(n: int, prefix: str = "t") -> list[Task]:
    return [Task(task_id=f"{prefix}{i:06d}", name="noop", command="true", priority=1 + i % 10) for i in range(n)]


def _child(args: list[str]) -> int:
    """Child process modes: drain (claim+complete until empty), huey (dequeue+execute), latency."""
    mode, root, worker_id = args[0], Path(args[1]), args[2]
    if mode == "drain":
        q = FileQueue(RigPaths(root), events=_events(root))
        policy = make_claim_policy(WorkerProfile(worker_id))
        _ = q.index  # build the index (one listdir) before the start signal
        print("ready", flush=True)
        sys.stdin.readline()
        n = 0
        while True:
            now = time.time()
            t = q.claim(worker_id, now, policy, LEASE_S)
            if t is None:
                break
            q.complete(t.task_id, worker_id, {}, now)
            n += 1
        print(f"{q.claim_conflicts} {n}", flush=True)
        return 0
    if mode == "huey":
        huey = _huey(root)
        print("ready", flush=True)
        sys.stdin.readline()
        n = 0
        while (task := huey.dequeue()) is not None:
            huey.execute(task)
            n += 1
        print(n, flush=True)
        return 0
    if mode == "latency":
        return _latency_worker(root, worker_id)
    raise SystemExit(f"unknown child mode {mode}")


def _spawn(mode: str, root: Path, worker_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--child", mode, str(root), worker_id], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO)


def _run_children(mode: str, root: Path, workers: int, *, kill_at: tuple[int, ...] = (),
                  count_done=None) -> tuple[float, list[int | None]]:
    """Start ``workers`` children together; SIGKILL child k once ``count_done()`` reaches kill_at[k]."""
    procs = [_spawn(mode, root, f"w{k}") for k in range(workers)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for k, threshold in enumerate(kill_at):
        while count_done() < threshold:
            time.sleep(0.002)
        procs[k].send_signal(signal.SIGKILL)
    counts: list[int | None] = []
    for p in procs:
        out = p.stdout.read().strip()
        p.wait()
        last = out.splitlines()[-1].split() if out else []
        counts.append(int(last[-1]) if last else None)
        if len(last) == 2:
            CONFLICTS.append(int(last[0]))
    return time.perf_counter() - start, counts


# ---------------------------------------------------------------- FileQueue runs
def bench_enqueue(root: Path, n: int) -> float:
    q = FileQueue(RigPaths(root), events=_events(root))
    tasks = _tasks(n)
    start = time.perf_counter()
    for i in range(0, n, 1000):
        q.submit(tasks[i:i + 1000], time.time())
    return n / (time.perf_counter() - start)


def bench_drain(n: int, workers: int, base: Path) -> tuple[float, int]:
    root = base / f"drain{workers}"
    q = FileQueue(RigPaths(root), events=_events(root))
    q.submit(_tasks(n), time.time())
    q.close()
    CONFLICTS.clear()
    elapsed, counts = _run_children("drain", root, workers)
    assert sum(c or 0 for c in counts) == n, counts
    return n / elapsed, sum(CONFLICTS)


def bench_sigkill(n: int, base: Path) -> str:
    root = base / "sigkill"
    paths = RigPaths(root)
    q = FileQueue(paths, events=_events(root))
    q.submit(_tasks(n), time.time())
    ledger = paths.tasks / "ledger.log"

    def done() -> int:
        try:
            return ledger.stat().st_size // 30  # ~30 bytes a line: a rough progress gauge
        except FileNotFoundError:
            return 0

    elapsed, counts = _run_children("drain", root, 4, kill_at=(n // 4, n // 2), count_done=done)
    in_processing = len(os.listdir(paths.processing))
    mid_move = len([f for f in os.listdir(paths.tasks / ".tmp") if not f.endswith(".tmp")])
    # Every worker is gone now, so the janitor may take files left mid-move at once (orphan_age_s=0).
    q = FileQueue(paths, events=_events(root), orphan_age_s=0.0)
    q.reap_stale(time.time() + LEASE_S + 1)  # the killed workers' leases, expired "now"
    rerun = _drain_inline(q)
    complete = len([f for f in os.listdir(paths.complete) if f.endswith(".json")])
    recorded = [line.split()[3] for line in ledger.read_text().splitlines() if line.split()[1] == "C"]
    twice = len(recorded) - len(set(recorded))
    survivors = sum(c or 0 for c in counts[2:])
    return (f"4 workers, w0 and w1 SIGKILLed at ~{n // 4:,} and ~{n // 2:,} done; the 2 survivors drained "
            f"{survivors:,} ({survivors / elapsed:,.0f}/s); left in processing {in_processing} and mid-move "
            f"{mid_move}; after reap_stale(now + lease): re-run {rerun}; complete {complete:,}/{n:,}, lost {n - complete}, recorded twice "
            f"{twice}; queue {len(os.listdir(paths.queue))}, processing {len(os.listdir(paths.processing))}")


def _drain_inline(q: FileQueue) -> int:
    policy = make_claim_policy(WorkerProfile("rescuer"))
    n = 0
    while (t := q.claim("rescuer", time.time(), policy, LEASE_S)) is not None:
        q.complete(t.task_id, "rescuer", {}, time.time())
        n += 1
    return n


# ---------------------------------------------------------------- huey beside it
def _huey(root: Path):  # type: ignore[no-untyped-def]
    from huey import SqliteHuey

    huey = SqliteHuey("bench", filename=str(root / "huey.db"))

    @huey.task(name="noop")
    def noop(i: int) -> int:
        return i

    huey._bench_noop = noop  # type: ignore[attr-defined]
    return huey


def bench_huey(n: int, workers: int, base: Path) -> tuple[float, float] | None:
    try:
        import huey  # noqa: F401
    except ImportError:
        return None
    root = base / f"huey{workers}"
    root.mkdir(parents=True)
    h = _huey(root)
    start = time.perf_counter()
    for i in range(n):
        h._bench_noop(i)
    enq = n / (time.perf_counter() - start)
    elapsed, counts = _run_children("huey", root, workers)
    assert sum(c or 0 for c in counts) == n, counts
    return enq, n / elapsed


# ---------------------------------------------------------------- latency and idle CPU
def _latency_worker(root: Path, worker_id: str) -> int:
    from engine.clock import SystemClock
    from engine.handlers.base import HandlerResult
    from engine.handlers.registry import HandlerRegistry
    from engine.model import TaskType
    from engine.residency.protocol import NullResidency
    from engine.worker.loop import Worker, WorkerSettings
    from engine.worker.signals import install_stop_handlers

    lat: list[float] = []

    class Record:
        resident_model = None

        def run(self, task, ctx):  # type: ignore[no-untyped-def]
            lat.append(time.time() - task.params["t_submit"])
            return HandlerResult(result={})

        def release(self) -> None:
            return None

    paths = RigPaths(root)
    q = FileQueue(paths, events=_events(root))
    w = Worker(q, HandlerRegistry(instances={TaskType.SHELL: Record()}), NullResidency(), SystemClock(), paths,
               _events(root), worker_id, (), WorkerProfile(worker_id), WorkerSettings(housekeeping_s=3600))
    install_stop_handlers(w)
    print("ready", flush=True)
    w.run()
    print(" ".join(f"{x:.6f}" for x in lat), flush=True)
    return 0


def bench_latency(samples: int, base: Path) -> tuple[float, float, int]:
    root = base / "latency"
    paths = RigPaths(root)
    q = FileQueue(paths, events=_events(root))
    p = _spawn("latency", root, "lat")
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # let it reach its idle wait
    for i in range(samples):
        t = Task(task_id=f"l{i:05d}", name="lat", command="true", params={"t_submit": time.time()})
        q.submit([t], time.time())
        time.sleep(0.02)  # low load: one task every 20 ms
    deadline = time.time() + 30
    while len(os.listdir(paths.complete)) < samples and time.time() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=30)[0].strip().splitlines()[-1]
    lat = sorted(float(x) * 1000 for x in out.split())
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    return statistics.median(lat), p99, len(lat)


def bench_idle_cpu(seconds: float, base: Path) -> float:
    root = base / "idle"
    RigPaths(root).ensure()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker", "--worker-id",
                          "idle"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status = RigPaths(root).worker_status("idle")
        deadline = time.time() + 30
        while not status.exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        c0, t0 = _cpu_s(p.pid), time.perf_counter()
        time.sleep(seconds)
        c1, t1 = _cpu_s(p.pid), time.perf_counter()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    return 100.0 * (c1 - c0) / (t1 - t0)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- main
def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return _child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="depth 2,000 and short latency/idle runs")
    ap.add_argument("--depth", type=int, default=None)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--no-huey", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = ap.parse_args()
    n = args.depth or (2_000 if args.quick else 20_000)
    workers = [int(w) for w in args.workers.split(",")]
    base = Path(tempfile.mkdtemp(prefix="galaxy-qbench-"))
    print(f"FileQueue benchmark: depth {n:,}, {os.cpu_count()} CPUs, temp dir {base}")
    try:
        print(f"enqueue (submit in batches of 1,000): {bench_enqueue(base / 'enqueue', n):,.0f}/s")
        for w in workers:
            rate, conflicts = bench_drain(n, w, base)
            print(f"claim+complete, {w} worker process(es), strict order, depth {n:,}: {rate:,.0f}/s "
                  f"(claims lost to another worker: {conflicts:,})")
        print(f"SIGKILL run: {bench_sigkill(n, base)}")
        if not args.no_huey:
            for w in workers:
                res = bench_huey(n, w, base)
                if res is None:
                    print("huey not installed (pip install -e .[dev]); skipped")
                    break
                print(f"huey SqliteHuey, {w} consumer process(es): enqueue {res[0]:,.0f}/s, "
                      f"dequeue+execute {res[1]:,.0f}/s")
        p50, p99, count = bench_latency(50 if args.quick else 300, base)
        print(f"submit-to-claim latency through the Worker loop (inotify), low load, {count} tasks: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        print(f"idle galaxy worker CPU: {bench_idle_cpu(2.0 if args.quick else 10.0, base):.2f}% of one core")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
