"""Claims match capabilities: which waiting work a worker can run at all.

A worker that claims work it cannot do fails it at once (not retryable), takes its
dependents down in cascade, and a retry sends it straight back to the same fate. So the
claim policy drops such candidates before ordering (``cannot_run``), and "why does this
wait" names the missing capability when no live worker has it (``wait_reason``).

Pure functions of (what a candidate needs, what a worker has). What a worker has is known
at its start from its group's config: the LLM backend, the model an OpenAI-compatible
server was started with (``models.llm``), the task classes it takes. What the queue knows
of a candidate without opening its file is its class and model (the lane), so script work
is matched by class only: a transcribe/embed task whose model a worker cannot resolve
still fails there as a definition error (docs/scheduling.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from engine.model import TaskClass
from engine.queue.protocol import WaitingTask

LLM_BACKENDS = ("ollama", "openai", "router")
SERVER_MANAGED = ("openai",)  # the server loads its one model at start; it cannot load another


@dataclass(frozen=True)
class WorkerCapabilities:
    """What one worker can run; from its group's ``backend``, ``models`` and classes."""

    llm_backend: str = "none"  # ollama | openai | router | none
    llm_models: frozenset[str] | None = None
    """Models its LLM backend serves; None means any (Ollama loads what it has, a router routes)."""
    classes: frozenset[TaskClass] = field(default_factory=lambda: frozenset(TaskClass))


def capabilities_of(backend: str | None, models: Mapping[str, str] | None,
                    classes: Iterable[TaskClass] | None = None) -> WorkerCapabilities:
    """A group's (or ``galaxy worker``'s flags') capabilities. An OpenAI-compatible server
    serves the model named by ``models.llm``; without one we cannot know, so any."""
    kind = backend or "none"
    llm = (models or {}).get("llm")
    served = frozenset({llm}) if kind in SERVER_MANAGED and llm else None
    return WorkerCapabilities(llm_backend=kind, llm_models=served,
                              classes=frozenset(classes) if classes is not None else frozenset(TaskClass))


def cannot_run(task_class: TaskClass, model: str | None, caps: WorkerCapabilities) -> str | None:
    """None when a worker with ``caps`` can run this work; else why not, as said of that worker."""
    if task_class not in caps.classes:
        return f"does not take class {task_class.value}"
    if task_class in (TaskClass.LLM, TaskClass.RESOURCE):
        if caps.llm_backend not in LLM_BACKENDS:
            return "has no LLM backend (backend = none)"
        if task_class is TaskClass.LLM and caps.llm_models is not None and model not in caps.llm_models:
            return f"its server serves {', '.join(sorted(caps.llm_models))}, not {model}"
    return None


def wait_reason(task_class: TaskClass, model: str | None, workers: Iterable[WorkerCapabilities]) -> str | None:
    """Why none of ``workers`` can run this work ("no worker serves model M"); None when one
    can, or when no worker is known (nothing to judge by)."""
    caps = list(workers)
    if not caps or any(cannot_run(task_class, model, c) is None for c in caps):
        return None
    if not any(task_class in c.classes for c in caps):
        return f"no worker takes class {task_class.value}"
    return f"no worker serves model {model}" if model else "no worker has an LLM backend"


def effective_backend(backend: str | None, endpoint: str | None) -> str:
    """The backend a group's worker really gets: the launcher passes one only with an
    endpoint (``router`` needs none), so an endpoint-less ``ollama`` group has none."""
    if backend == "router":
        return "router"
    return backend if backend in LLM_BACKENDS and endpoint else "none"


def explain_unrunnable(waiting: Sequence[WaitingTask], workers: Sequence[WorkerCapabilities]) -> list[WaitingTask]:
    """``waiting`` with "no worker serves model M" where none of ``workers`` (the live ones)
    can run a claimable task; dependency and backoff reasons are kept."""
    out = []
    for w in waiting:
        why = None
        if not w.reason.startswith(("dependency", "backoff")):
            try:
                why = wait_reason(TaskClass(w.task_class), w.model, workers)
            except ValueError:  # a class this version does not know: leave the queue's reason
                why = None
        out.append(replace(w, reason=why) if why else w)
    return out
