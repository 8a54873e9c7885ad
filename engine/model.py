"""The task record: the field notes' schema plus what correctness needs.

A task is validated on every read (``Task.from_dict``); a bad file raises
``TaskValidationError`` naming the field, so the queue can move it to failed/ with
the reason instead of crashing a worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from engine.ids import IdKind, is_valid_id
from engine.store.settings import name_problem

MAX_TASK_FILE_BYTES = 1_000_000
"""Bigger task files are refused unread (a 50 MB task file is an error, not a task)."""

DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MAX_RETRIES = 3
ERROR_SNIPPET_CHARS = 200
OUTPUT_TAIL_CHARS = 2000



class TaskClass(StrEnum):
    CPU = "cpu"
    SCRIPT = "script"
    LLM = "llm"
    RESOURCE = "resource"


class TaskStatus(StrEnum):
    HELD = "held"  # waiting on dependencies (shared/brain/private_tasks)
    PENDING = "pending"  # in queue/ (or delayed/ while in backoff)
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"  # in tasks/awaiting/: its escalation waits for an operator


class TaskType(StrEnum):
    SHELL = "shell"
    LLM = "llm"
    TRANSCRIBE = "transcribe"
    EMBED = "embed"
    LOAD_LLM = "load_llm"
    UNLOAD_LLM = "unload_llm"


class Executor(StrEnum):
    """Which role of group may run a task (a group's ``role`` is worker or brain)."""

    WORKER = "worker"
    BRAIN = "brain"
    ANY = "any"


SCRIPT_TYPES = (TaskType.TRANSCRIBE, TaskType.EMBED)
"""Types whose handler and model a worker must have: the queue name records them for claims."""


DEFAULT_CLASS_FOR_TYPE: dict[TaskType, TaskClass] = {
    TaskType.LLM: TaskClass.LLM,
    TaskType.TRANSCRIBE: TaskClass.SCRIPT,
    TaskType.EMBED: TaskClass.SCRIPT,
    TaskType.LOAD_LLM: TaskClass.RESOURCE,
    TaskType.UNLOAD_LLM: TaskClass.RESOURCE,
}


class TaskValidationError(ValueError):
    """A task definition is wrong. ``field`` names the offending key when there is one."""

    def __init__(self, message: str, *, field: str | None = None, where: str | None = None) -> None:
        self.field = field
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{message}")



def new_task_id() -> str:
    return uuid.uuid4().hex[:16]


def is_safe_task_id(task_id: object) -> bool:
    """Safe as a file name: no separators, no '..', no leading dot or dash (engine.ids)."""
    return is_valid_id(IdKind.TASK, task_id)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: object, field_name: str) -> float | None:
    """Accept ISO8601 strings (as the notes store them) or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TaskValidationError(f"{field_name} must be a time, got {value!r}", field=field_name)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise TaskValidationError(f"{field_name} is not an ISO8601 time: {value!r}", field=field_name) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    raise TaskValidationError(f"{field_name} must be a time, got {type(value).__name__}", field=field_name)


def infer_task_class(command: str) -> TaskClass:
    """The field notes' auto-fix rule for a missing task_class, from command keywords."""
    text = command.lower()
    if any(k in text for k in ("whisper", "transcrib", "embed", "cuda", "gpu")):
        return TaskClass.SCRIPT
    if any(k in text for k in ("ollama", "generate", "llm")):
        return TaskClass.LLM
    return TaskClass.CPU


def worker_at(worker_id: str | None, rig: str | None) -> str:
    """How a worker is named to the operator: ``gpu0``, or ``gpu0@lab`` on a store several rigs
    share (worker names repeat across rigs); ``-`` for none."""
    if not worker_id:
        return "-"
    return f"{worker_id}@{rig}" if rig else worker_id


@dataclass(frozen=True)
class Attempt:
    """One try at running a task; the history explains every retry."""

    number: int
    worker_id: str
    started_at: float
    ended_at: float | None = None
    outcome: str = "running"  # running | ok | error | timeout | lost | released | cancelled
    return_code: int | None = None
    error: str | None = None  # last ERROR_SNIPPET_CHARS of the error output
    rig: str | None = None
    """The rig the worker ran on, on a store shared by several rigs (worker names repeat across rigs)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "number": self.number,
            "worker_id": self.worker_id,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "outcome": self.outcome,
            "return_code": self.return_code,
            "error": self.error,
        }
        if self.rig is not None:  # a single rig's files stay as they were
            out["rig"] = self.rig
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attempt:
        if not isinstance(d, Mapping):
            raise TaskValidationError("each attempt must be an object", field="attempts")
        started = parse_time(d.get("started_at"), "attempts.started_at")
        return cls(
            number=int(d.get("number", 0)),
            worker_id=str(d.get("worker_id", "")),
            started_at=started if started is not None else 0.0,
            ended_at=parse_time(d.get("ended_at"), "attempts.ended_at"),
            outcome=str(d.get("outcome", "running")),
            return_code=d.get("return_code") if isinstance(d.get("return_code"), int) else None,
            error=d.get("error") if isinstance(d.get("error"), str) else None,
            rig=d.get("rig") if isinstance(d.get("rig"), str) and d.get("rig") else None,
        )


@dataclass(frozen=True)
class Task:
    task_id: str
    name: str
    type: TaskType = TaskType.SHELL
    command: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    """Kind-specific inputs: prompt/system (llm), audio (transcribe), texts/input (embed)."""
    task_class: TaskClass = TaskClass.CPU
    executor: str = "worker"  # worker | brain | any
    model: str | None = None
    """The model the task needs resident (LLM name, whisper or embedding model); drives residency."""
    batch_id: str = ""
    depends_on: tuple[str, ...] = ()
    priority: int = 5
    status: TaskStatus = TaskStatus.PENDING
    created_at: float = 0.0
    retry_count: int = 0
    max_retries: int = DEFAULT_MAX_RETRIES
    not_before: float | None = None
    lease_owner: str | None = None
    lease_expires: float | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    source: str = "cli"
    attempts: tuple[Attempt, ...] = ()
    result: dict[str, Any] | None = None
    error: str | None = None
    fix_applied: str | None = None
    tier: int | None = None
    requires_external: bool = False
    sensitive: bool = False
    plan: str | None = None  # the plan file (and line) this task came from
    rig: str | None = None
    """The rig whose workers alone may claim it (its inputs and outputs are paths on that rig's disk);
    None: any rig's ("rig": "any"). A plan pins its tasks to the submitting rig (docs/cluster.md)."""

    # ---- derived ----
    @property
    def affinity(self) -> str:
        """Residency bucket: tasks with the same key can run back to back without a model swap."""
        return f"{self.task_class.value}:{self.model or ''}"

    def with_changes(self, **changes: Any) -> Task:
        return replace(self, **changes)

    # ---- (de)serialisation ----
    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "batch_id": self.batch_id,
            "name": self.name,
            "type": self.type.value,
            "command": self.command,
            "params": self.params,
            "task_class": self.task_class.value,
            "executor": self.executor,
            "model": self.model,
            "depends_on": list(self.depends_on),
            "priority": self.priority,
            "status": self.status.value,
            "created_at": iso(self.created_at),
            "retry_count": self.retry_count,
            "max_retries": self.max_retries,
            "not_before": iso(self.not_before),
            "lease_owner": self.lease_owner,
            "lease_expires": iso(self.lease_expires),
            "timeout_s": self.timeout_s,
            "source": self.source,
            "attempts": [a.to_dict() for a in self.attempts],
            "result": self.result,
            "error": self.error,
            "fix_applied": self.fix_applied,
            "tier": self.tier,
            "requires_external": self.requires_external,
            "sensitive": self.sensitive,
            "plan": self.plan,
            **({"rig": self.rig} if self.rig is not None else {}),  # absent when any: older readers refuse keys
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str | None = None, autofix: bool = True) -> Task:
        """Validate and build. ``where`` (a file name, a plan line) prefixes every error.

        With ``autofix``, a missing task_class is inferred from the command as the field
        notes' rule says and recorded in ``fix_applied``; every other problem raises.
        """
        try:
            return _task_from_dict(d, autofix=autofix)
        except TaskValidationError as exc:
            if where and not exc.where:
                raise TaskValidationError(exc.args[0], field=exc.field, where=where) from None
            raise


_KNOWN_KEYS = {f.name for f in fields(Task)}


def _req_str(d: Mapping[str, Any], key: str) -> str:
    if key not in d:
        raise TaskValidationError(f"missing required field {key!r}", field=key)
    v = d[key]
    if not isinstance(v, str) or not v.strip():
        raise TaskValidationError(f"{key} must be a non-empty string, got {v!r}", field=key)
    return v


def _opt(d: Mapping[str, Any], key: str, typ: type | tuple[type, ...], default: Any) -> Any:
    v = d.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) and typ in (int, float, (int, float)):
        raise TaskValidationError(f"{key} must be a number, got {v!r}", field=key)
    if not isinstance(v, typ):
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise TaskValidationError(f"{key} must be {tname}, got {type(v).__name__} {v!r}", field=key)
    return v


ANY_RIG = "any"


def _rig(d: Mapping[str, Any]) -> str | None:
    """``rig``: a rig name pins the task to that rig's workers; absent, null or "any": any rig's."""
    raw = _opt(d, "rig", str, None)
    if raw is None or raw.strip().lower() == ANY_RIG:
        return None
    why = name_problem("rig", raw)
    if why is not None:
        raise TaskValidationError(f"{why}; or \"any\" for any rig's workers", field="rig")
    return str(raw)


def _task_from_dict(d: object, *, autofix: bool) -> Task:
    if not isinstance(d, Mapping):
        raise TaskValidationError(f"a task must be a JSON object, got {type(d).__name__}")
    unknown = set(d) - _KNOWN_KEYS
    if unknown:
        raise TaskValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])

    task_id = d.get("task_id")
    if not is_safe_task_id(task_id):
        raise TaskValidationError(
            f"task_id {task_id!r} is not safe as a file name (letters, digits, '_', '-', '.'; "
            "no '/', no '..', at most 128 characters)", field="task_id")
    name = _req_str(d, "name")

    try:
        ttype = TaskType(d.get("type", "shell"))
    except ValueError:
        raise TaskValidationError(
            f"type {d.get('type')!r} is not one of {', '.join(t.value for t in TaskType)}", field="type") from None

    command = _opt(d, "command", str, "")
    params = _opt(d, "params", dict, {})
    if ttype is TaskType.SHELL and not command.strip():
        raise TaskValidationError("a shell task needs a non-empty command", field="command")

    fix_applied = _opt(d, "fix_applied", str, None)
    raw_class = d.get("task_class")
    if raw_class is None or raw_class == "":
        if ttype in DEFAULT_CLASS_FOR_TYPE:
            task_class = DEFAULT_CLASS_FOR_TYPE[ttype]
        elif autofix:
            task_class = infer_task_class(command)
            fix_applied = f"task_class missing; inferred {task_class.value!r} from the command's keywords"
        else:
            raise TaskValidationError("missing required field 'task_class'", field="task_class")
    else:
        try:
            task_class = TaskClass(raw_class)
        except ValueError:
            raise TaskValidationError(
                f"task_class {raw_class!r} is not one of cpu, script, llm, resource", field="task_class") from None

    priority = _opt(d, "priority", int, 5)
    if not 1 <= priority <= 10:
        raise TaskValidationError(f"priority must be 1-10, got {priority}", field="priority")

    depends_on = _opt(d, "depends_on", list, [])
    for dep in depends_on:
        if not is_safe_task_id(dep):
            raise TaskValidationError(f"depends_on entry {dep!r} is not a valid task id", field="depends_on")

    try:
        status = TaskStatus(d.get("status", "pending"))
    except ValueError:
        raise TaskValidationError(f"status {d.get('status')!r} is not a known status", field="status") from None

    timeout_s = float(_opt(d, "timeout_s", (int, float), DEFAULT_TIMEOUT_S))
    if timeout_s <= 0:
        raise TaskValidationError(f"timeout_s must be positive, got {timeout_s}", field="timeout_s")
    retry_count = _opt(d, "retry_count", int, 0)
    max_retries = _opt(d, "max_retries", int, DEFAULT_MAX_RETRIES)
    if retry_count < 0 or max_retries < 0:
        raise TaskValidationError("retry_count and max_retries must be >= 0", field="retry_count")

    attempts_raw = _opt(d, "attempts", list, [])
    tier = d.get("tier")
    if tier is not None and (isinstance(tier, bool) or not isinstance(tier, int) or tier < 0):
        raise TaskValidationError(f"tier must be a non-negative integer, got {tier!r}", field="tier")
    model = _opt(d, "model", str, None)
    result = _opt(d, "result", dict, None)
    raw_executor = _opt(d, "executor", str, "worker")
    try:
        executor = Executor(raw_executor)
    except ValueError:
        raise TaskValidationError(f"executor {raw_executor!r} is not one of worker, brain, any",
                                  field="executor") from None

    return Task(
        task_id=task_id,  # type: ignore[arg-type]
        rig=_rig(d),
        name=name,
        type=ttype,
        command=command,
        params=dict(params),
        task_class=task_class,
        executor=executor,
        model=model or None,
        batch_id=_opt(d, "batch_id", str, ""),
        depends_on=tuple(depends_on),
        priority=priority,
        status=status,
        created_at=parse_time(d.get("created_at"), "created_at") or 0.0,
        retry_count=retry_count,
        max_retries=max_retries,
        not_before=parse_time(d.get("not_before"), "not_before"),
        lease_owner=_opt(d, "lease_owner", str, None),
        lease_expires=parse_time(d.get("lease_expires"), "lease_expires"),
        timeout_s=timeout_s,
        source=_opt(d, "source", str, "cli"),
        attempts=tuple(Attempt.from_dict(a) for a in attempts_raw),
        result=result,
        error=_opt(d, "error", str, None),
        fix_applied=fix_applied,
        tier=tier,
        requires_external=bool(_opt(d, "requires_external", bool, False)),
        sensitive=bool(_opt(d, "sensitive", bool, False)),
        plan=_opt(d, "plan", str, None),
    )
