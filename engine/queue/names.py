"""File names that carry a task's sort key, so nobody has to open a file to order the queue.

Separator ``+`` never occurs in a task id, a worker id (both ``[A-Za-z0-9_.-]``) or a
percent-quoted model name, so every name splits unambiguously.

    queue/      PP+class+model+ENQ_US+task_id.json         PP = 10 - priority (00 sorts first)
    processing/ task_id+class+worker_id+CLAIM_US+LEASE_MS+INSTANCE.json   (owner, first lease and the
                claiming process's instance, engine.instance; names without INSTANCE, written before it
                existed, still parse with instance "")
    delayed/    DUE_US+PP+class+model+task_id.json          (due time first: sorted = due order)
    held/       SINCE_US+class+task_id.json                 (dependencies pending)
    complete/, failed/   task_id.json
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from engine.model import TaskClass, is_safe_task_id

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
    return int(round(t * 1_000_000))


def quote_model(model: str | None) -> str:
    return quote(model or "", safe="")


def model_fits_name(model: str | None) -> bool:
    return len(quote_model(model)) <= MAX_MODEL_CHARS * 3


def _prio_key(priority: int) -> str:
    return f"{10 - priority:02d}"


def _cls(raw: str) -> TaskClass:
    return TaskClass(raw)


@dataclass(frozen=True)
class QueueName:
    priority: int
    task_class: TaskClass
    model: str | None
    enqueued_us: int
    task_id: str

    @property
    def lane(self) -> tuple[str, str, int]:
        return (self.task_class.value, self.model or "", self.priority)

    def render(self) -> str:
        return SEP.join((_prio_key(self.priority), self.task_class.value, quote_model(self.model),
                         f"{self.enqueued_us:017d}", self.task_id)) + SUFFIX


def _fields(name: str, count: int) -> list[str] | None:
    """The SEP-separated fields of a name we wrote, or None for anything else."""
    if not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split(SEP)
    return parts if len(parts) == count else None


def parse_queue_name(name: str) -> QueueName | None:
    """None for names we did not write (a file dropped in by hand): the queue adopts those."""
    parts = _fields(name, 5)
    if parts is None:
        return None
    pp, cls, model_q, enq, task_id = parts
    try:
        priority = 10 - int(pp)
        qn = QueueName(priority, _cls(cls), unquote(model_q) or None, int(enq), task_id)
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

    def render(self) -> str:
        return SEP.join((f"{self.due_us:017d}", _prio_key(self.priority), self.task_class.value,
                         quote_model(self.model), self.task_id)) + SUFFIX

    def queue_name(self, enqueued_us: int) -> QueueName:
        return QueueName(self.priority, self.task_class, self.model, enqueued_us, self.task_id)


def parse_delayed_name(name: str) -> DelayedName | None:
    parts = _fields(name, 5)
    if parts is None:
        return None
    try:
        return DelayedName(int(parts[0]), 10 - int(parts[1]), _cls(parts[2]), unquote(parts[3]) or None, parts[4])
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
