"""One worker process on a RedisQueue, for the store fault tests (tests/store/test_redis_faults.py).

``python -m tests.support.redis_fault_worker URL CLUSTER ROOT WORKER_ID LEASE_S SOCKET_TIMEOUT_S``
runs the real worker loop (engine.worker.loop.Worker, shell tasks, no GPU) on its own Redis client
until SIGTERM; its events go to ROOT's event log. Short leases and a short socket timeout make the
faults show within seconds; the retry policy is the worker's own with a small cap.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.clock import SystemClock
from engine.events import EventLog
from engine.handlers.registry import HandlerRegistry
from engine.paths import RigPaths
from engine.residency.protocol import NullResidency
from engine.scheduling.policy import WorkerProfile
from engine.store.outage import RetryPolicy, StoreOutage
from engine.store.redis.client import connect
from engine.store.redis.queue import RedisQueue
from engine.worker.loop import Worker, WorkerSettings
from engine.worker.signals import install_stop_handlers


def main(argv: list[str]) -> int:
    url, cluster, root, worker_id, lease_s, timeout_s = argv
    paths = RigPaths(Path(root)).ensure()
    events = EventLog(paths.events, {"pid_role": "fault-worker"})
    queue = RedisQueue(connect(url, socket_timeout_s=float(timeout_s)), cluster, events=events, retries=1)
    settings = WorkerSettings(lease_s=float(lease_s), housekeeping_s=0.5, status_every_s=0.5, idle_wait_s=1.0,
                              poll_s=0.2, stop_grace_s=10.0)
    worker = Worker(queue, HandlerRegistry(), NullResidency(), SystemClock(), paths, events, worker_id, (),
                    WorkerProfile(worker_id), settings, outage=StoreOutage(RetryPolicy(base_s=0.2, cap_s=1.0)))
    install_stop_handlers(worker)
    print(f"fault worker {worker_id} ready", flush=True)
    worker.run()
    queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
