"""What the supervisor's per-model demand learner (engine/supervisor/model_demand.py) costs a
tick: seeding from an existing log after a restart, a tick with nothing new, and a tick after
a burst of submissions. Real FileQueue and event log under a temporary root; prints figures.

    .venv/bin/python bench/model_demand_cost.py [--tasks 5000] [--burst 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from engine.model import Task, TaskClass
    from engine.paths import RigPaths
    from engine.queue.filequeue import FileQueue
    from engine.supervisor.model_demand import ModelDemand, QueueModelLookup
    from engine.worker.rigview import default_costs

    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--burst", type=int, default=1000)
    a = ap.parse_args()
    models = ("qwen2.5:7b", "tiny.en", "all-MiniLM-L6-v2")
    now = time.time() - 1800
    with tempfile.TemporaryDirectory() as tmp:
        paths = RigPaths(Path(tmp)).ensure()
        q = FileQueue(paths, use_inotify=False)
        tasks = [Task(task_id=f"t{i}", name="t", command="true", task_class=TaskClass.SCRIPT,
                      model=models[i % len(models)]) for i in range(a.tasks)]
        q.submit(tasks, now)
        done = 0
        while done < a.tasks // 2:
            t = q.claim("gpu0", now, lambda c, _n: c, 600.0)
            if t is None:
                break
            now += 0.3
            q.complete(t.task_id, "gpu0", {}, now)
            done += 1
        size_mb = paths.events.stat().st_size / 1e6

        def learner() -> ModelDemand:
            return ModelDemand(paths.events, QueueModelLookup(q, paths.queue), n_groups=5, priors=default_costs())

        d = learner()
        ticks, started = 0, time.perf_counter()
        while True:
            ticks += 1
            view = d.view(now)
            if sum(v.claimable for v in view.values()) >= a.tasks and not d._pending:
                break
            if ticks > 200:
                break
        seed_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(100):
            d.view(now)
        idle_ms = (time.perf_counter() - started) * 10
        q.submit([Task(task_id=f"b{i}", name="b", command="true", task_class=TaskClass.SCRIPT,
                       model=models[i % len(models)]) for i in range(a.burst)], now)
        started = time.perf_counter()
        d.view(now)
        burst_ms = (time.perf_counter() - started) * 1000
        q.close()
    print(f"log {size_mb:.1f} MB ({a.tasks} tasks submitted, {done} completed)")
    print(f"seed after a restart: {seed_s * 1000:.0f} ms over {ticks} tick(s)")
    print(f"tick with nothing new: {idle_ms:.3f} ms")
    print(f"tick after a burst of {a.burst} submissions: {burst_ms:.0f} ms")
    print("learned:", {m: (v.workers_busy, v.task_s, v.claimable) for m, v in view.items()})


if __name__ == "__main__":
    main()
