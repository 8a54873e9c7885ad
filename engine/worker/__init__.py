"""The worker process: claims tasks for one GPU group and runs them (``galaxy worker``)."""

from engine.worker.loop import Worker, WorkerSettings

__all__ = ["Worker", "WorkerSettings"]
