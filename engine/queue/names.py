"""File names that carry a task's sort key, so nobody has to open a file to order the queue.

Separator ``+`` never occurs in a task id, a worker id (both ``[A-Za-z0-9_.-]``) or a
percent-quoted model name, so every name splits unambiguously.

    queue/      PP+class+model+ENQ_US+task_id[+TYPE.EXECUTOR].json   PP = 10 - priority (00 sorts first)
    processing/ task_id+class+worker_id+CLAIM_US+LEASE_MS+INSTANCE.json   (owner, first lease and the
                claiming process's instance, engine.instance; names without INSTANCE, written before it
                existed, still parse with instance "")
    delayed/    DUE_US+PP+class+model+task_id[+TYPE.EXECUTOR].json   (due time first: sorted = due order)
    held/       SINCE_US+class+task_id.json                 (dependencies pending)
    complete/, failed/   task_id.json

The optional last field of queue/ and delayed/ names says what a claim must match beyond
class and model (engine.scheduling.capability): the task's type and executor, written only
for script types (transcribe, embed) or an executor other than ``worker``; a name without
it (every name written before it existed) means type unknown, executor ``worker``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from engine.model import (
    SCRIPT_TYPES,
    Executor,
    Task,
    TaskClass,
    TaskType,
    is_safe_task_id,
)

SEP = "+"
SUFFIX = ".json"
MAX_MODEL_CHARS = 64
_WORKER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INSTANCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_safe_instance(instance: str) -> bool:
    """A process instance token (``engine.instance``): never contains SEP."""
    return bool(_INSTANCE_RE.match(instance))


def is_safe_worker_id(worker_id: str) -> bool:
    """One rule for worker ids everywhere (engine.ids): a trailing newline is refused too."""
    from engine.ids import IdKind, is_valid_id

    return is_valid_id(IdKind.WORKER, worker_id)


def us(t: float) -> int:
    return round(t * 1_000_000)


def quote_model(model: str | None) -> str:
    return quote(model or "", safe="")


def model_fits_name(model: str | None) -> bool:
    return len(quote_model(model)) <= MAX_MODEL_CHARS * 3


def _prio_key(priority: int) -> str:
    return f"{10 - priority:02d}"


def _cls(raw: str) -> TaskClass:
    return TaskClass(raw)


def needs_token(kind: TaskType | None, executor: Executor) -> str:
    """The optional last name field: "" (not written) for a worker task of no script type."""
    if executor is Executor.WORKER and kind not in SCRIPT_TYPES:
        return ""
    return f"{kind.value if kind else TaskType.SHELL.value}.{executor.value}"


def parse_needs(token: str) -> tuple[TaskType, Executor]:
    """ValueError for anything ``needs_token`` does not write."""
    kind, dot, executor = token.partition(".")
    if not dot:
        raise ValueError(f"not TYPE.EXECUTOR: {token!r}")
    return TaskType(kind), Executor(executor)


def task_needs(task: Task) -> tuple[TaskType | None, Executor]:
    """(kind, executor) of a task as its queue name records them (kind None when not written)."""
    executor = Executor(task.executor)
    return (task.type if needs_token(task.type, executor) else None), executor


@dataclass(frozen=True)
class QueueName:
    priority: int
    task_class: TaskClass
    model: str | None
    enqueued_us: int
    task_id: str
    kind: TaskType | None = None  # the task's type; None in names that do not record it
    executor: Executor = Executor.WORKER

    @classmethod
    def for_task(cls, task: Task, enqueued_us: int) -> QueueName:
        kind, executor = task_needs(task)
        return cls(task.priority, task.task_class, task.model, enqueued_us, task.task_id, kind, executor)

    @property
    def needs(self) -> str:
        return needs_token(self.kind, self.executor)

    @property
    def lane(self) -> tuple[str, str, int, str]:
        """Tasks a worker may take interchangeably: a brain-only head never hides worker tasks."""
        return (self.task_class.value, self.model or "", self.priority, self.needs)

    def render(self) -> str:
        fields = [_prio_key(self.priority), self.task_class.value, quote_model(self.model),
                  f"{self.enqueued_us:017d}", self.task_id]
        return SEP.join(fields + ([self.needs] if self.needs else [])) + SUFFIX


def _fields(name: str, count: int) -> list[str] | None:
    """The SEP-separated fields of a name we wrote, or None for anything else."""
    if not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split(SEP)
    return parts if len(parts) == count else None


def parse_queue_name(name: str) -> QueueName | None:
    """None for names we did not write (a file dropped in by hand): the queue adopts those."""
    parts = _fields(name, 5) or _fields(name, 6)
    if parts is None:
        return None
    pp, cls, model_q, enq, task_id = parts[:5]
    try:
        priority = 10 - int(pp)
        kind, executor = parse_needs(parts[5]) if len(parts) == 6 else (None, Executor.WORKER)
        qn = QueueName(priority, _cls(cls), unquote(model_q) or None, int(enq), task_id, kind, executor)
    except ValueError:
        return None
    if not 1 <= priority <= 10 or not is_safe_task_id(task_id):
        return None
    return qn


@dataclass(frozen=True)
class ProcessingName:
    task_id: str
    task_class: TaskClass
    worker_id: str
    claimed_us: int
    lease_ms: int
    instance: str = ""  # the claiming process (pid.start); "" in names written before instances

    @property
    def first_expiry(self) -> float:
        return self.claimed_us / 1e6 + self.lease_ms / 1e3

    @property
    def claimed_at(self) -> float:
        return self.claimed_us / 1e6

    def render(self) -> str:
        fields = [self.task_id, self.task_class.value, self.worker_id, str(self.claimed_us), str(self.lease_ms)]
        if self.instance:
            if not is_safe_instance(self.instance):
                raise ValueError(f"process instance {self.instance!r} must be letters, digits, '_', '-', '.'")
            fields.append(self.instance)
        return SEP.join(fields) + SUFFIX


def parse_processing_name(name: str) -> ProcessingName | None:
    parts = _fields(name, 6) or _fields(name, 5)
    if parts is None:
        return None
    instance = parts[5] if len(parts) == 6 else ""
    if len(parts) == 6 and not is_safe_instance(instance):
        return None
    try:
        return ProcessingName(parts[0], _cls(parts[1]), parts[2], int(parts[3]), int(parts[4]), instance)
    except ValueError:
        return None


@dataclass(frozen=True)
class DelayedName:
    due_us: int
    priority: int
    task_class: TaskClass
    model: str | None
    task_id: str
    kind: TaskType | None = None
    executor: Executor = Executor.WORKER

    @classmethod
    def for_task(cls, task: Task, due_us: int) -> DelayedName:
        kind, executor = task_needs(task)
        return cls(due_us, task.priority, task.task_class, task.model, task.task_id, kind, executor)

    def render(self) -> str:
        fields = [f"{self.due_us:017d}", _prio_key(self.priority), self.task_class.value,
                  quote_model(self.model), self.task_id]
        needs = needs_token(self.kind, self.executor)
        return SEP.join(fields + ([needs] if needs else [])) + SUFFIX

    def queue_name(self, enqueued_us: int) -> QueueName:
        return QueueName(self.priority, self.task_class, self.model, enqueued_us, self.task_id, self.kind,
                         self.executor)


def parse_delayed_name(name: str) -> DelayedName | None:
    parts = _fields(name, 5) or _fields(name, 6)
    if parts is None:
        return None
    try:
        kind, executor = parse_needs(parts[5]) if len(parts) == 6 else (None, Executor.WORKER)
        return DelayedName(int(parts[0]), 10 - int(parts[1]), _cls(parts[2]), unquote(parts[3]) or None, parts[4],
                           kind, executor)
    except ValueError:
        return None


@dataclass(frozen=True)
class HeldName:
    since_us: int
    task_class: TaskClass
    task_id: str

    def render(self) -> str:
        return SEP.join((f"{self.since_us:017d}", self.task_class.value, self.task_id)) + SUFFIX


def parse_held_name(name: str) -> HeldName | None:
    parts = _fields(name, 3)
    if parts is None:
        return None
    try:
        return HeldName(int(parts[0]), _cls(parts[1]), parts[2])
    except ValueError:
        return None
