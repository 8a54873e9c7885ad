"""Claims match capabilities: which waiting work a worker can run at all.

A worker that claims work it cannot do fails it at once (not retryable), takes its
dependents down in cascade, and a retry sends it straight back to the same fate. So the
claim policy drops such candidates before ordering (``cannot_run``), and "why does this
wait" names the missing capability when no live worker has it (``wait_reason``).

Pure functions of (what a candidate needs, what a worker has). What a worker has is known
at its start from its group's config: the LLM backend, the model an OpenAI-compatible
server was started with (``models.llm``), the task classes it takes, its group's role
(worker or brain) and the script handlers and models it can load (``ScriptSupport``). What
the queue knows of a candidate without opening its file is in its name: class, model, and
for script types or a non-worker executor the type and executor (engine.queue.names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from engine.model import Executor, TaskClass, TaskType
from engine.queue.protocol import WaitingTask
from engine.scheduling.script_support import ScriptSupport, support_for

LLM_BACKENDS = ("ollama", "openai", "router")
SERVER_MANAGED = ("openai",)  # the server loads its one model at start; it cannot load another


@dataclass(frozen=True)
class WorkerCapabilities:
    """What one worker can run; from its group's ``backend``, ``models`` and classes."""

    llm_backend: str = "none"  # ollama | openai | router | none
    llm_models: frozenset[str] | None = None
    """Models its LLM backend serves; None means any (Ollama loads what it has, a router routes)."""
    classes: frozenset[TaskClass] = field(default_factory=lambda: frozenset(TaskClass))
    role: Executor = Executor.WORKER
    """Its group's role (worker or brain): a task's ``executor`` must allow it."""
    script: ScriptSupport | None = field(default=None, compare=False)
    """Which transcribe/embed handlers and models it can load; None means any (simulator, tests)."""
    rig: str | None = None
    """The rig it runs on: a task pinned to another rig is not for it; None: judged on no rig (tests)."""


def role_of(role: str | None) -> Executor:
    """A group's ``role`` (or ``--executor``) as an Executor; an unknown one counts as worker."""
    try:
        found = Executor(role or "worker")
    except ValueError:
        return Executor.WORKER
    return Executor.WORKER if found is Executor.ANY else found


def capabilities_of(backend: str | None, models: Mapping[str, str] | None,
                    classes: Iterable[TaskClass] | None = None, *, role: str | None = None,
                    script: ScriptSupport | None = None, rig: str | None = None) -> WorkerCapabilities:
    """A group's (or ``galaxy worker``'s flags') capabilities. An OpenAI-compatible server
    serves the model named by ``models.llm``; without one we cannot know, so any. Script
    work is judged on this host (``script``, default: shared per ``models`` table)."""
    kind = backend or "none"
    llm = (models or {}).get("llm")
    served = frozenset({llm}) if kind in SERVER_MANAGED and llm else None
    return WorkerCapabilities(llm_backend=kind, llm_models=served,
                              classes=frozenset(classes) if classes is not None else frozenset(TaskClass),
                              role=role_of(role), script=script or support_for(models or {}), rig=rig)


def role_allows(executor: Executor, role: Executor) -> bool:
    """``brain`` tasks go to brain groups only; worker tasks go to any group, because the brain
    helps with worker tasks (the field notes' layout), and ``any`` says so explicitly."""
    return executor is not Executor.BRAIN or role is Executor.BRAIN


def pinned_elsewhere(rig: str | None, caps: WorkerCapabilities) -> bool:
    """The task is pinned to a rig this worker is not on (its paths are on that rig's disk)."""
    return rig is not None and caps.rig is not None and rig != caps.rig


def cannot_run(task_class: TaskClass, model: str | None, caps: WorkerCapabilities, *,
               kind: TaskType | None = None, executor: Executor = Executor.WORKER,
               rig: str | None = None) -> str | None:
    """None when a worker with ``caps`` can run this work; else why not, as said of that worker.
    ``kind`` and ``executor`` are what the task's queue name records (None/worker when it does not),
    ``rig`` the rig it is pinned to (None: any)."""
    if pinned_elsewhere(rig, caps):
        return f"is on rig {caps.rig}; the task is pinned to rig {rig}"
    if not role_allows(executor, caps.role):
        return f"is a {caps.role.value} worker; the task's executor is {executor.value}"
    if task_class not in caps.classes:
        return f"does not take class {task_class.value}"
    if task_class in (TaskClass.LLM, TaskClass.RESOURCE):
        if caps.llm_backend not in LLM_BACKENDS:
            return "has no LLM backend (backend = none)"
        if task_class is TaskClass.LLM and caps.llm_models is not None and model not in caps.llm_models:
            return f"its server serves {', '.join(sorted(caps.llm_models))}, not {model}"
    if kind is not None and caps.script is not None:
        return caps.script.why_not(kind, model)
    return None


def wait_reason(task_class: TaskClass, model: str | None, workers: Iterable[WorkerCapabilities], *,
                kind: TaskType | None = None, executor: Executor = Executor.WORKER,
                rig: str | None = None) -> str | None:
    """Why none of ``workers`` can run this work ("no worker serves model M", "no brain worker
    is running", "pinned to rig X"); None when one can, or when no worker is known (nothing to judge by)."""
    caps = list(workers)
    if not caps or any(cannot_run(task_class, model, c, kind=kind, executor=executor, rig=rig) is None
                       for c in caps):
        return None
    if all(pinned_elsewhere(rig, c) for c in caps):
        return f"pinned to rig {rig} (no live worker there)"
    caps = [c for c in caps if not pinned_elsewhere(rig, c)]
    allowed = [c for c in caps if role_allows(executor, c.role)]
    if not allowed:
        return "no brain worker is running (the task's executor is brain)"
    takers = [c for c in allowed if task_class in c.classes]
    if not takers:
        return f"no worker takes class {task_class.value}"
    if task_class in (TaskClass.LLM, TaskClass.RESOURCE):
        return f"no worker serves model {model}" if model else "no worker has an LLM backend"
    for c in takers:
        why = c.script.why_not(kind, model) if kind is not None and c.script is not None else None
        if why:
            return f"no worker can run this {kind.value if kind else ''} task: it {why}"
    return "no worker can run it"


def effective_backend(backend: str | None, endpoint: str | None) -> str:
    """The backend a group's worker really gets: the launcher passes one only with an
    endpoint (``router`` needs none), so an endpoint-less ``ollama`` group has none."""
    if backend == "router":
        return "router"
    return backend if backend in LLM_BACKENDS and endpoint else "none"


def waiting_reason(w: WaitingTask, workers: Sequence[WorkerCapabilities]) -> str | None:
    """``wait_reason`` for a claimable waiting task (None for one held by a dependency or backoff)."""
    if w.reason.startswith(("dependency", "backoff")):
        return None
    try:
        return wait_reason(TaskClass(w.task_class), w.model, workers, kind=TaskType(w.kind) if w.kind else None,
                           executor=Executor(w.executor), rig=w.rig)
    except ValueError:  # a class, type or executor this version does not know: keep the queue's reason
        return None


def explain_unrunnable(waiting: Sequence[WaitingTask], workers: Sequence[WorkerCapabilities]) -> list[WaitingTask]:
    """``waiting`` with "no worker serves model M" where none of ``workers`` (the live ones)
    can run a claimable task; dependency and backoff reasons are kept."""
    out = []
    for w in waiting:
        why = waiting_reason(w, workers)
        out.append(replace(w, reason=why) if why else w)
    return out
