"""The live demo's work: a steady, mixed stream for a simulated rig (``galaxy up --sim --demo``).

Why: a newcomer who runs ``make run`` should see a working rig (cards switching between
LLM and script work, tasks finishing, a few failing and raising the repeated-failure
alert, now and then an escalation waiting for approval), not a run that finished a
minute ago. The feeder runs inside the supervisor process (``galaxy supervise --demo``),
so ``galaxy down`` stops it with the rig.

``tick(now)`` is pure apart from ``queue.submit``: time is a parameter, randomness a seeded
``random.Random``. It tops the queue up at ``tasks_per_min`` while fewer than
``max_waiting`` tasks wait (the demo never piles up work faster than the rig drains it),
and submits the example plan every ``plan_every_s`` when one is given.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.model import Task
from engine.queue.protocol import QueueCounts

LLM_MODEL = "qwen2.5:7b"
PROMPTS = (
    "Summarise in two sentences why a GPU throttles at 83 C.",
    "Write a haiku about a queue that never starves.",
    "List three checks before loading a 7B model on a 6 GB card.",
    "Explain exponential backoff with jitter to a new operator.",
    "Name two reasons a worker's heartbeat can go silent.",
)
ESCALATION_PROMPT = ("Review this deployment checklist for gaps a local 7B model might miss: "
                     "staged rollout, rollback plan, alert thresholds, on-call handover.")
FAILURE = "echo 'error: upstream export returned HTTP 503 (simulated)' >&2; exit 3"


class DemoQueue(Protocol):
    def submit(self, tasks: Sequence[Task], now: float) -> list[str]: ...

    def counts(self) -> QueueCounts: ...


@dataclass(frozen=True)
class DemoSettings:
    tasks_per_min: float = 60.0
    failure_share: float = 0.06  # of generated tasks: fail every attempt (one retry)
    escalation_every_s: float = 300.0  # an llm task that needs the (simulated) cloud model
    max_waiting: int = 30  # queued + delayed tasks above which nothing new is submitted
    plan_every_s: float = 900.0
    task_s: tuple[float, float] = (1.0, 6.0)  # run time of generated shell work: 3-4 of 5 cards busy


def _waiting(counts: QueueCounts) -> int:
    return counts.total("queue") + counts.total("delayed")


class DemoFeeder:
    def __init__(self, queue: DemoQueue, settings: DemoSettings = DemoSettings(), *, seed: int = 7,
                 run_id: str = "demo", plan: Callable[[float], list[Task]] | None = None,
                 log: Callable[..., None] | None = None) -> None:
        self.queue, self.settings, self.plan, self.log = queue, settings, plan, log
        self.rng = random.Random(seed)
        self.run_id = run_id
        self.seq = 0
        self.submitted = 0
        self.errors = 0
        self._credit = 0.0
        self._last: float | None = None
        self._next_escalation: float | None = None
        self._next_plan: float | None = None

    def tick(self, now: float) -> list[str]:
        """Submit what is due at ``now``; returns the new task ids."""
        s = self.settings
        if self._last is None:
            self._last = now
            self._next_escalation = now + min(30.0, s.escalation_every_s)  # the first one soon
            self._next_plan = now
            self._credit = 1.0
        self._credit = min(self._credit + (now - self._last) * s.tasks_per_min / 60.0, 10.0)
        self._last = now
        tasks: list[Task] = []
        if self.plan is not None and self._next_plan is not None and now >= self._next_plan:
            self._next_plan = now + s.plan_every_s
            tasks += self._plan_tasks(now)
        waiting = _waiting(self.queue.counts())
        while self._credit >= 1.0 and waiting + len(tasks) < s.max_waiting:
            self._credit -= 1.0
            tasks.append(self._generated(now))
        if self._next_escalation is not None and now >= self._next_escalation:
            self._next_escalation = now + s.escalation_every_s
            tasks.append(self._escalation(now))
        if not tasks:
            return []
        ids = self.queue.submit(tasks, now)
        self.submitted += len(ids)
        return ids

    def _plan_tasks(self, now: float) -> list[Task]:
        try:
            return list(self.plan(now)) if self.plan is not None else []
        except Exception as exc:  # noqa: BLE001 - a broken example plan must not stop the stream
            self.errors += 1
            if self.log is not None:
                self.log("demo: example plan not submitted", error=str(exc)[:300])
            return []

    def _task(self, name: str, now: float, **fields: Any) -> Task:
        self.seq += 1
        data: dict[str, Any] = {"task_id": f"{self.run_id}.{self.seq:06d}", "name": name, "source": "demo",
                                "batch_id": self.run_id, "created_at": now, **fields}
        return Task.from_dict(data)

    def _generated(self, now: float) -> Task:
        r = self.rng.random()
        lo, hi = self.settings.task_s
        secs = round(self.rng.uniform(lo, hi), 1)
        n = self.seq + 1
        if r < self.settings.failure_share:
            key = f"part-{n % 4}"
            return self._task(f"export[{key}]", now, command=FAILURE, task_class="cpu", max_retries=1, priority=4)
        if r < 0.40:
            return self._task(f"summarise-{n}", now, type="llm", task_class="llm", model=LLM_MODEL,
                              params={"prompt": self.rng.choice(PROMPTS), "max_tokens": self.rng.choice((64, 128))},
                              priority=5)
        if r < 0.70:
            clip = f"clip-{n % 12:02d}"
            return self._task(f"thumbnails[{clip}]", now, task_class="script", priority=5,
                              command=f"sleep {secs}; echo '{clip}: 24 thumbnails'")
        return self._task(f"etl-{n}", now, task_class="cpu", priority=6,
                          command=f"sleep {secs}; echo 'rows: {self.rng.randint(100, 9999)}'")

    def _escalation(self, now: float) -> Task:
        return self._task(f"review-{self.seq + 1}", now, type="llm", task_class="llm", model=LLM_MODEL,
                          requires_external=True, params={"prompt": ESCALATION_PROMPT, "max_tokens": 256},
                          priority=7, max_retries=0)
