"""Task queues: the protocol the worker and supervisor use, and its implementations."""

from engine.queue.protocol import Candidate, QueueCounts, TaskQueue, WaitingTask

__all__ = ["Candidate", "QueueCounts", "TaskQueue", "WaitingTask"]
