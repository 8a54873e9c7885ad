"""What an ``llm`` task reads and writes around the model call.

``params.input`` (a file) and ``params.context`` (text) are untrusted data: they go in a
tagged ``<untrusted_data>`` section apart from the trusted instructions, as the field
notes recommend, so a transcript that says "ignore previous instructions" stays data.
``params.output`` receives the answer. Every answer is logged to the training-samples
log (redacted; nothing at all for ``sensitive`` tasks).
"""

from __future__ import annotations

import re
from pathlib import Path

from engine import safeio
from engine.atomic import atomic_write_bytes
from engine.escalation.prompt import build_prompt
from engine.escalation.training_log import TrainingSampleLog
from engine.handlers.base import TaskContext, TaskFailure
from engine.model import Task

MAX_INPUT_BYTES = 2_000_000
LOW_CONFIDENCE_RE = re.compile(r"\bLOW[_ -]CONFIDENCE\b", re.I)
"""A prompt may ask the model to say LOW_CONFIDENCE when unsure; the cloud tier then offers escalation."""
DEFAULT_SYSTEM = "You are a careful assistant on a local GPU rig. Answer the task."


def _resolve(workdir: str, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(workdir) / p


def llm_prompt(task: Task, workdir: str) -> tuple[str | None, str]:
    """(system, prompt) for the backend, with untrusted data tagged when there is any."""
    prompt = task.params.get("prompt", task.command)
    if not isinstance(prompt, str) or not prompt.strip():
        raise TaskFailure("an llm task needs params.prompt (a non-empty string)", retryable=False)
    system = task.params.get("system")
    if system is not None and not isinstance(system, str):
        raise TaskFailure(f"params.system must be a string, got {type(system).__name__}", retryable=False)
    untrusted: list[str] = []
    source = task.params.get("input")
    if source is not None:
        if not isinstance(source, str) or not source:
            raise TaskFailure("params.input must be a file path", retryable=False)
        path = _resolve(workdir, source)
        try:  # the bounded reader: a FIFO or device given as input fails the task, never hangs the worker
            untrusted.append(safeio.read_bytes(path, MAX_INPUT_BYTES, follow_symlinks=True)
                             .decode("utf-8", errors="replace"))
        except safeio.UnsafeFileError as exc:
            raise TaskFailure(f"params.input {exc.path} {exc.reason}", retryable=False) from None
        except FileNotFoundError:
            raise TaskFailure(f"params.input {path} does not exist (did the task that writes it run?)",
                              retryable=True) from None
        except OSError as exc:
            raise TaskFailure(f"cannot read params.input {path}: {exc}", retryable=False) from None
    context = task.params.get("context")
    if isinstance(context, str) and context.strip():
        untrusted.append(context)
    if not untrusted:
        return system, prompt
    tagged = build_prompt(instructions=system or DEFAULT_SYSTEM, task=prompt, untrusted="\n\n".join(untrusted))
    return tagged.system, tagged.user


def write_output(workdir: str, path: str, text: str) -> Path:
    out = _resolve(workdir, path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, text.encode())
    except OSError as exc:
        raise TaskFailure(f"cannot write params.output {out}: {exc}", retryable=False) from None
    return out


def record_sample(ctx: TaskContext, task: Task, system: str | None, prompt: str, response: str, outcome: str,
                  served_by: str, tokens_per_s: float | None, at: float) -> None:
    path = ctx.extras.get("training_log")
    if not path:
        return
    try:
        TrainingSampleLog(Path(path)).record(task, prompt=(f"{system}\n\n" if system else "") + prompt,
                                             response=response, outcome=outcome, at=at,
                                             served_by=served_by, tokens_per_s=tokens_per_s)
    except OSError:
        pass  # the log is for later training; never fail a task over it
