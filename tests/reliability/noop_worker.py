"""A real worker process with a no-op shell handler: exercises the queue, not bash.

Usage: python tests/reliability/noop_worker.py ROOT WORKER_ID
Prints the number of tasks it ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.clock import SystemClock
from engine.events import EventLog
from engine.handlers.base import HandlerResult
from engine.handlers.registry import HandlerRegistry
from engine.model import TaskType
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.residency.protocol import NullResidency
from engine.scheduling.policy import WorkerProfile
from engine.worker.loop import Worker, WorkerSettings
from engine.worker.signals import install_stop_handlers


class Noop:
    resident_model = None

    def run(self, task, ctx):  # type: ignore[no-untyped-def]
        return HandlerResult(result={"by": ctx.worker_id})

    def release(self) -> None:
        return None


def main() -> int:
    root, worker_id = Path(sys.argv[1]), sys.argv[2]
    paths = RigPaths(root)
    events = EventLog(paths.events)
    queue = FileQueue(paths, events=events)
    worker = Worker(queue, HandlerRegistry(instances={TaskType.SHELL: Noop()}), NullResidency(), SystemClock(),
                    paths, events, worker_id, (), WorkerProfile(worker_id),
                    WorkerSettings(exit_when_idle=True, housekeeping_s=3600))
    install_stop_handlers(worker)
    print(worker.run(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
