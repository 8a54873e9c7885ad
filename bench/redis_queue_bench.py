"""Redis store benchmark: prints figures, asserts nothing. Starts its own redis-server
(tests/support/redis_server.py: 127.0.0.1, free port, appendonly yes, appendfsync everysec).

    .venv/bin/python bench/redis_queue_bench.py            # depth 20,000 and 100,000 (a few minutes)
    .venv/bin/python bench/redis_queue_bench.py --quick    # small depths, a few seconds
    .venv/bin/python bench/redis_queue_bench.py --latency 5   # submit-to-claim only, 5 runs of 300

Measures, in one run: enqueue/s (batches of 1,000); claim+complete/s with 1, 2 and 4 worker
processes at depth 20,000 (the real ``RedisQueue.claim`` with the real claim policy, no-op tasks,
10 priority lanes as bench/queue_bench.py uses, the real event log on local disk), with each
process's CPU from the start signal on; once more with 4 workers writing their events to Redis's
stream, as a rig on the Redis store does; the same for RQ (``rq`` SimpleWorker, burst mode, no-op
jobs) and for the file store (bench/queue_bench.py's drain); submit-to-claim latency p50/p99
through ``wait_for_change`` (pub/sub wake) at low load, and of it the part from the wake (the idle
worker's wait returning) to the claimed task; the cost of one claim+complete at depth 100 and
100,000 (and the commands Redis ran for it).

Targets (issue 14): >= 8,000 claims+completions/s with 4 workers, >= 2x RQ in the same run,
p99 < 5 ms, flat cost with depth.

Figures before the night's work, 2026-12-07 17:48 UTC, ``--compare-n 5000`` on a quiet 2-core
machine (load average 2.7 falling), real redis-server 7.0 (worker CPU then included start-up):

    enqueue: 5,660 tasks/s (batches of 1,000)
    redis claim+complete, 1 / 2 / 4 worker(s): 581 / 958 / 1,042 per s      depth 20,000
        (CPU per task: workers 1,090 / 1,160 / 1,404 us, redis-server 557 / 424 / 417 us)
    rq (SimpleWorker, burst), 1 / 2 / 4 worker(s), depth 5,000: 151 / 215 / 239 jobs/s
    file store claim+complete, 1 / 2 / 4 worker(s), depth 5,000: 831 / 1,600 / 1,297 per s
    submit-to-claim (pub/sub wake, idle worker): p50 5.68 ms, p99 10.90 ms
    claim+complete at depth 100: 1,945 us, 34 Redis commands; at depth 100,000: 1,662 us, 34 commands

The night's changes (one kept subscription per idle worker; the scripts on one kept connection,
engine/store/redis/scripts.py; 31 commands instead of 34), this script run on the code before and
after them alternately, twice, 18:56-19:33 UTC, the 2 cores shared with other helpers' runs (load
average 4.5-6.3), so the rates follow the load; CPU per task follows it less:

                                   before (2 runs)              after (2 runs)
    claim+complete 1 / 2 / 4 w     424/323/349, 488/364/373     578/678/618, 275/396/550 per s
    CPU per task, 4 workers        workers 1,559 / 1,664 us     workers 1,028 / 1,157 us
                                   redis-server 502 / 513 us    redis-server 410 / 455 us
    4 w, events to Redis's stream  304 / 452 per s              589 / 472 per s
    submit-to-claim p50            4.68 / 7.99 ms               2.75 / 4.79 ms
    submit-to-claim p99            8.02 / 23.70 ms              8.36 / 28.75 ms (the load's)
    commands per claim+complete    34 at depth 100 and 100,000  31 at both

At load 1.7-1.9 (19:33-19:36), the submit-to-claim part alone (``bench_latency``, 300 samples),
before and after alternately 4 times: p50 5.57 / 4.83 / 4.66 / 4.08 -> 3.18 / 2.99 / 2.47 / 2.67 ms,
p99 12.9 / 6.3 / 9.5 / 15.8 -> 15.8 / 5.1 / 6.1 / 9.3 ms (from the wake to the claimed task, p50
2.3-3.1 -> 1.1-1.3 ms); one worker in-process at 10 lanes, CPU per claim+complete (least of 3):
client 761 / 838 -> 551 / 676 us, redis-server 337 / 394 -> 330 / 432 us (the same within noise).

Against the targets: >= 2x RQ met (RQ ran at 46-204 jobs/s in the same runs); flat with depth
met (31 commands at 100 and at 100,000); p99 < 5 ms not shown (on 2 loaded cores the submitter,
the worker and redis-server wait for each other's turn; a wake is now one message read, then the
heads read and the claim: two round trips); 8,000/s with 4 workers NOT reachable on 2 cores:
claims/s <= cores / (worker + server CPU per task) and <= 1 / (server CPU per task), so with
1.0-1.2 ms + 0.4-0.46 ms per task two cores give at most ~1,400-1,600/s and one Redis core
~2,200-2,400/s on this VM, where an empty EVALSHA alone costs redis-server ~45 us and the client
~60 us of CPU. 8,000/s needs under 250 us of CPU per task in all: a machine with cheap round trips
(bare metal) and 4+ fast cores (docs/cluster.md, "Speed", has the arithmetic; an estimate, not
measured).

After the night's work, 2026-12-07 19:50 UTC, ``--compare-n 5000`` at eb92699
on the quiet 2-core machine (load average 0.8 falling, nothing else running):

    enqueue: 5,721 tasks/s (batches of 1,000)
    redis claim+complete, 1 / 2 / 4 worker(s): 800 / 1,253 / 1,611 per s    depth 20,000
        (CPU per task: workers 730 / 771 / 766 us, redis-server 469 / 372 / 302 us)
    redis claim+complete, 4 workers, events to Redis's stream: 923 per s
        (CPU per task: workers 1,412 us, redis-server 479 us)
    rq (SimpleWorker, burst), 1 / 2 / 4 worker(s), depth 5,000: 107 / 60 / 283 jobs/s
    file store claim+complete, 1 / 2 / 4 worker(s), depth 5,000: 1,038 / 1,985 / 1,684 per s
    submit-to-claim (pub/sub wake, idle worker): p50 3.05 ms, p99 4.98 ms
    claim+complete at depth 100: 1,049 us, 31 Redis commands; at depth 100,000: 1,297 us, 31 commands

The submit-to-claim part alone (``bench_latency``, 300 samples, a fresh redis-server each), five
times right after (20:12, load 0.9): p50 3.41 / 3.28 / 3.18 / 3.33 / 3.59 ms, p99 6.52 / 6.99 /
5.29 / 5.83 / 6.25 ms. So: >= 2x RQ met (5.7-21x; RQ's own figures jump between runs), flat with
depth met, p99 < 5 ms NOT met (4.98 once, 5.3-7.0 in the five runs after), 8,000/s with 4 workers
NOT met (1,611/s; at 766 + 302 us of CPU per task two cores top out near 1,900/s).

Late night (21:05-23:10 UTC): submit to claim was six process wake-ups (submitter -> Redis -> the
idle worker's wake -> heads read -> Redis -> claim -> Redis -> worker); it is four: a wake carries
the lane heads of the lanes its script queued tasks in, and the worker claims with one script
(644f564). Every head is kept in one hash, ``hd``, so a completion, a heads read or a conflict reads
them with one HGETALL, not SMEMBERS + 2 calls a lane (ae82a2b, committed with another helper's
change by a shared index; checked against SMEMBERS lanes since 2026-12-07 22:20): 33 commands
per claim+complete at any number of lanes (was 31 at one lane, ~48 at the drains' 10). The waker reads its connection directly (309fc81: poll to the
wait's return p50 0.44 -> 0.33 ms in a step probe) and a claim's candidates are cached (f5f028c:
~100 -> ~18 us for 10 lanes, hot). Measured by alternating ``git archive`` copies of 6c655b9
(before) and the new code on the 2 cores shared with other helpers' benchmarks (load in brackets):

    --redis-only, before/after/before/after, 21:40-21:50 (load 1.5-8; the after copy without f5f028c):
    claim+complete 1 / 2 / 4 w      886/864/758, 633/715/614 -> 913/839/568, 729/709/563 per s
    CPU per task, 1 / 2 / 4 w       workers 632/823/1,034, 704/904/1,205 -> 654/800/1,184, 639/804/1,132 us
                                    redis-server 411/403/404, 466/442/475 -> 403/382/454, 395/374/424 us
    4 w, events to Redis's stream   532, 441 -> 508, 531 per s
    one worker in-process, 3,000 tasks, 10 lanes, 3 alternations (load 2.4-3.5): client user CPU
    630/603/607 -> 587/580/693 us, redis-server 434/410/416 -> 404/388/469 us per claim+complete
    redis-server time inside EVALSHA for a heads read at 10 lanes (least of 7 rounds): ~100 -> ~35 us

    submit-to-claim, 1,000 submissions, before/after twice, 22:00 (load 3.2-3.9, before bdfa5cb):
    p50 3.75 / 3.99 -> 3.62 / 3.59 ms, p99 22.7 / 23.0 -> 21.5 / 21.1 ms (the load's; from the wake to
    the claimed task p50 1.24-1.28 ms); again at bdfa5cb, 22:13 (load 3.8 falling to 2.2):
    p50 3.68 / 3.65 -> 3.11 / 2.90 ms, p99 14.9 / 17.6 -> 55.1 / 14.8 ms (wake to claimed p50 1.04-1.09)
    redis-server time inside EVALSHA per claim+complete, one worker, 10 lanes, 500 tasks, three
    alternations at bdfa5cb (load 2.7-3.0): 365 / 284 / 258 -> 293 / 264 / 208 us
    (a heads read 81 / 94 / 71 -> 36 / 47 / 33 us)
The rates and p99 follow the other helpers' load more than the code; the counted figures do not:
two process wake-ups fewer per idle claim, commands per claim+complete flat in lanes, and the
arithmetic of docs/cluster.md "Speed" unchanged (cores / (worker + server CPU per task)).

Quiet machine at the final code, 2026-12-07 22:36-22:39 UTC (nothing else running; load 2.0-2.2
from the bench itself), ``--compare-n 5000`` then ``--latency 5``:

    enqueue: 6,575 tasks/s (batches of 1,000)
    redis claim+complete, 1 / 2 / 4 worker(s): 1,043 / 1,465 / 1,726 per s    depth 20,000
        (CPU per task: workers 590 / 665 / 711 us, redis-server 367 / 318 / 284 us)
    redis claim+complete, 4 workers, events to Redis's stream: 1,322 per s (workers 962 us, redis 335 us)
    rq (SimpleWorker, burst), 1 / 2 / 4 worker(s), depth 5,000: 244 / 334 / 295 jobs/s
    file store claim+complete, 1 / 2 / 4 worker(s), depth 5,000: 982 / 1,867 / 1,766 per s
    submit-to-claim: p50 2.36 ms, p99 3.06 ms; then five --latency runs: p50 2.38-2.53 ms,
        p99 3.33-3.67 ms (wake to claimed task p50 0.91-0.96 ms, p99 1.44-1.61 ms)
    claim+complete at depth 100: 1,061 us, 33 commands; at depth 100,000: 893 us, 33 commands

Against the targets: p99 < 5 ms met (3.06-3.67 ms in six runs), >= 2x RQ met (4.3-5.8x), flat with
depth met (33 commands at both depths), 8,000/s with 4 workers NOT met (1,726/s; at 711 + 284 us of
CPU per task two cores top out near 2,000/s; docs/cluster.md "Speed").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from engine.events import EventLog  # noqa: E402
from engine.model import Task  # noqa: E402
from engine.scheduling.policy import WorkerProfile, make_claim_policy  # noqa: E402
from engine.store.redis.client import connect  # noqa: E402
from engine.store.redis.queue import RedisQueue  # noqa: E402

LEASE_S = 30.0


def noop(i: int) -> int:
    """The RQ job (imported by RQ's workers as redis_queue_bench.noop)."""
    return i


def _tasks(n: int, prefix: str = "t") -> list[Task]:
    return [Task(task_id=f"{prefix}{i:06d}", name="noop", command="true", priority=1 + i % 10) for i in range(n)]


def _queue(url: str, cluster: str, events_dir: Path | None = None, *, redis_events: bool = False) -> RedisQueue:
    """The queue a worker uses; its events to a file under ``events_dir``, or with ``redis_events`` to the
    cluster's event stream in Redis, as a rig on the Redis store writes them (engine/store/open_queue.py)."""
    if redis_events:
        from engine.store.redis.channels.events import RedisEventStream
        from engine.store.redis.client import key_prefix

        stream = RedisEventStream(connect(url), key_prefix(cluster))
        return RedisQueue(connect(url), cluster, events=EventLog(Path(os.devnull), stream=stream))
    events = EventLog(events_dir / "events.jsonl") if events_dir is not None else None
    return RedisQueue(connect(url), cluster, events=events)


# ---------------------------------------------------------------- child processes
def _child(args: list[str]) -> int:
    mode, url, cluster, worker_id, events_dir = args
    if mode in ("drain", "drain-redis-events"):
        q = _queue(url, cluster, Path(events_dir), redis_events=mode == "drain-redis-events")
        policy = make_claim_policy(WorkerProfile(worker_id))
        q.heads()  # connect and load the scripts before the start signal
        print("ready", flush=True)
        sys.stdin.readline()
        cpu0 = time.process_time()  # (the start-up before it is not the tasks' cost)
        n = 0
        while True:
            now = time.time()
            t = q.claim(worker_id, now, policy, LEASE_S)
            if t is None:
                break
            q.complete(t.task_id, worker_id, {}, now)
            n += 1
        print(f"{q.claim_conflicts} {n} {time.process_time() - cpu0}", flush=True)
        return 0
    if mode == "rq":
        from rq import Queue, SimpleWorker

        conn = connect(url)
        conn_raw = conn.__class__.from_url(url)  # RQ wants bytes responses
        w = SimpleWorker([Queue(cluster, connection=conn_raw)], connection=conn_raw)
        print("ready", flush=True)
        sys.stdin.readline()
        w.work(burst=True, logging_level="ERROR")
        print("done", flush=True)
        return 0
    if mode == "latency":
        q = _queue(url, cluster, Path(events_dir))
        policy = make_claim_policy(WorkerProfile(worker_id))
        print("ready", flush=True)
        delays: list[tuple[float, float]] = []  # (submit to claimed, submit to the wait's return)
        woke = 0.0
        while True:
            t = q.claim(worker_id, time.time(), policy, LEASE_S)
            if t is None:
                q.wait_for_change(1.0)
                woke = time.time()
                continue
            got = time.time()
            q.complete(t.task_id, worker_id, {}, got)
            if t.task_id == "stop":
                break
            sent = float(t.params["sent"])
            delays.append((got - sent, woke - sent if woke > sent else got - sent))
        print(json.dumps(delays), flush=True)
        return 0
    raise SystemExit(f"unknown child mode {mode}")


def _spawn(mode: str, url: str, cluster: str, worker_id: str, events_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--child", mode, url, cluster, worker_id, str(events_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)


def _run_children(mode: str, url: str, cluster: str, workers: int, events_dir: Path) -> tuple[float, list[str]]:
    procs = [_spawn(mode, url, cluster, f"w{k}", events_dir) for k in range(workers)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = []
    for p in procs:
        assert p.stdout is not None
        outs.append(p.stdout.read().strip().splitlines()[-1])
        p.wait()
    return time.perf_counter() - start, outs


# ---------------------------------------------------------------- runs
def bench_enqueue(url: str, n: int, events_dir: Path) -> float:
    q = _queue(url, "enqueue", events_dir)
    tasks = _tasks(n)
    start = time.perf_counter()
    for i in range(0, n, 1000):
        q.submit(tasks[i:i + 1000], time.time())
    return n / (time.perf_counter() - start)


def bench_drain(url: str, n: int, workers: int, events_dir: Path, *,
                redis_events: bool = False) -> tuple[float, int, float, float]:
    """(claims+completions per second, conflicts, worker CPU us per task, redis-server CPU us per task)."""
    cluster = f"drain{workers}{'r' if redis_events else ''}"
    q = _queue(url, cluster, events_dir)
    tasks = _tasks(n)
    for i in range(0, n, 1000):
        q.submit(tasks[i:i + 1000], time.time())
    server_cpu = _server_cpu(q)
    elapsed, outs = _run_children("drain-redis-events" if redis_events else "drain", url, cluster, workers,
                                  events_dir)
    server_cpu = _server_cpu(q) - server_cpu
    conflicts = sum(int(o.split()[0]) for o in outs)
    done = sum(int(o.split()[1]) for o in outs)
    client_cpu = sum(float(o.split()[2]) for o in outs)  # from the start signal on
    counts = q.counts()
    assert done == n and counts.total("complete") == n and counts.total("queue") == 0, (done, counts)
    return n / elapsed, conflicts, client_cpu / n * 1e6, server_cpu / n * 1e6


def _server_cpu(q: RedisQueue) -> float:
    info = q.r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def bench_rq(url: str, n: int, workers: int, events_dir: Path) -> float | None:
    try:
        from rq import Queue
    except ImportError:
        return None
    import redis

    name = f"rq{workers}"
    rq_q = Queue(name, connection=redis.Redis.from_url(url))
    for i in range(0, n, 1000):
        rq_q.enqueue_many([Queue.prepare_data("redis_queue_bench.noop", args=(j,)) for j in range(i, min(n, i + 1000))])
    elapsed, _ = _run_children("rq", url, name, workers, events_dir)
    done = rq_q.finished_job_registry.count
    assert done == n and len(rq_q) == 0, (done, n)
    return n / elapsed


def bench_file(n: int, workers: int, base: Path) -> float:
    import queue_bench  # bench/queue_bench.py: the file store's own drain, same tasks and policy

    rate, _ = queue_bench.bench_drain(n, workers, base)
    return rate


def bench_latency(url: str, samples: int, events_dir: Path) -> tuple[float, float, float, float]:
    """Submit-to-claim p50 and p99, and of it from the wake (the idle worker's wait returning) to the
    claimed task p50 and p99, in ms."""
    q = _queue(url, "latency", events_dir)
    proc = _spawn("latency", url, "latency", "wl", events_dir)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    for i in range(samples):
        q.submit([Task(task_id=f"l{i:05d}", name="noop", command="true", params={"sent": time.time()})], time.time())
        time.sleep(0.02)
    q.submit([Task(task_id="stop", name="stop", command="true", params={"sent": time.time()})], time.time())
    rows = json.loads(proc.stdout.read().strip().splitlines()[-1])
    proc.wait()
    total = sorted(r[0] for r in rows)
    after_wake = sorted(r[0] - r[1] for r in rows)

    def p(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * q))] * 1000

    return statistics.median(total) * 1000, p(total, 0.99), statistics.median(after_wake) * 1000, p(after_wake, 0.99)


def _print_latency(url: str, samples: int, events_dir: Path) -> None:
    p50, p99, wake50, wake99 = bench_latency(url, samples, events_dir)
    print(f"submit-to-claim (pub/sub wake, idle worker): p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"(from the wake to the claimed task: p50 {wake50:.2f} ms, p99 {wake99:.2f} ms; {samples} submissions)")


def bench_depth(url: str, depth: int, events_dir: Path) -> tuple[float, int]:
    """Microseconds per claim+complete, and Redis commands per claim+complete, at ``depth``."""
    cluster = f"depth{depth}"
    q = _queue(url, cluster, events_dir)
    tasks = [Task(task_id=f"d{i:06d}", name="noop", command="true", priority=5) for i in range(depth)]
    for i in range(0, len(tasks), 2000):
        q.submit(tasks[i:i + 2000], time.time())
    policy = make_claim_policy(WorkerProfile("wd"))
    rounds = min(50, depth // 2)  # the depth stays about what it says
    stats_before = _commands(q)
    start = time.perf_counter()
    for _ in range(rounds):
        t = q.claim("wd", time.time(), policy, LEASE_S)
        assert t is not None
        q.complete(t.task_id, "wd", {}, time.time())
    elapsed = time.perf_counter() - start
    return elapsed / rounds * 1e6, (_commands(q) - stats_before - 2) // rounds  # (the two INFO calls)


def _commands(q: RedisQueue) -> int:
    stats = q.r.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values() if isinstance(v, dict))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="depth 2,000 and 10,000")
    ap.add_argument("--compare-n", type=int, default=0,
                    help="tasks for the RQ and file-store drains (default: the same depth as Redis's)")
    ap.add_argument("--redis-only", action="store_true", help="enqueue and the Redis drains only")
    ap.add_argument("--latency", type=int, default=0, metavar="RUNS",
                    help="only submit-to-claim, RUNS times (300 submissions each, a fresh redis-server each)")
    ap.add_argument("--child", nargs=5)
    args = ap.parse_args()
    if args.child:
        return _child(args.child)
    from tests.support.redis_server import start_redis

    if args.latency:
        for _ in range(args.latency):
            base = Path(tempfile.mkdtemp(prefix="galaxy-redis-bench-"))
            server = start_redis(base / "redis")
            try:
                (base / "events").mkdir()
                _print_latency(server.url, 300, base / "events")
            finally:
                server.stop()
                shutil.rmtree(base, ignore_errors=True)
        return 0
    n = 2_000 if args.quick else 20_000
    deep = 10_000 if args.quick else 100_000
    m = args.compare_n or n
    base = Path(tempfile.mkdtemp(prefix="galaxy-redis-bench-"))
    server = start_redis(base / "redis")
    events_dir = base / "events"
    events_dir.mkdir()
    try:
        print(f"redis-server {server.url} (appendonly yes, appendfsync everysec); {os.cpu_count()} CPUs; depth {n}")
        print(f"enqueue: {bench_enqueue(server.url, n, events_dir):,.0f} tasks/s (batches of 1,000)")
        for workers in (1, 2, 4):
            rate, conflicts, client_us, server_us = bench_drain(server.url, n, workers, events_dir)
            print(f"redis claim+complete, {workers} worker(s): {rate:,.0f}/s ({conflicts} claim conflicts; CPU per "
                  f"task: workers {client_us:,.0f} us, redis-server {server_us:,.0f} us)")
        rate, _, client_us, server_us = bench_drain(server.url, n, 4, events_dir, redis_events=True)
        print(f"redis claim+complete, 4 workers, events to Redis's stream as a rig writes them: {rate:,.0f}/s "
              f"(CPU per task: workers {client_us:,.0f} us, redis-server {server_us:,.0f} us)")
        if args.redis_only:
            return 0
        for workers in (1, 2, 4):
            rq_rate = bench_rq(server.url, m, workers, events_dir)
            print(f"rq (SimpleWorker, burst), {workers} worker(s), depth {m:,}: "
                  + (f"{rq_rate:,.0f} jobs/s" if rq_rate else "rq not installed"))
        for workers in (1, 2, 4):
            print(f"file store claim+complete, {workers} worker(s), depth {m:,}: {bench_file(m, workers, base):,.0f}/s")
        _print_latency(server.url, 100 if args.quick else 300, events_dir)
        for depth in (100, deep):
            us_per, cmds = bench_depth(server.url, depth, events_dir)
            print(f"claim+complete at depth {depth:,}: {us_per:,.0f} us each, {cmds} Redis commands each")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)  # its AOF and event logs: hundreds of MB after a full run
    return 0


if __name__ == "__main__":
    sys.exit(main())
