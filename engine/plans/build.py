"""parse_plan_text / load_plan: a Markdown plan in, validated Tasks out, or every error at once."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

from engine import safeio
from engine.model import MAX_TASK_FILE_BYTES, Task, TaskValidationError, is_safe_task_id
from engine.plans.errors import ErrorCollector, PlanError
from engine.plans.expand import Instance, build_groups, check_unique, find_cycles, resolve_dependencies, substitute
from engine.plans.fields import SPECS
from engine.plans.markdown import scan
from engine.plans.sections import Draft, read_defaults, read_section, slug

MAX_ID_CHARS = 128
# Task.from_dict's field names -> the plan key whose line to blame
_FIELD_TO_KEY = {"task_class": "class", "timeout_s": "timeout", "params": "prompt"}


def new_batch_id(name: str, now: float) -> str:
    """'video-20261122-110240-3fa9': readable in a directory listing, unique per submission."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{(slug(name) or 'plan')[:40]}-{stamp}-{uuid.uuid4().hex[:4]}"


def task_id_for(batch_id: str, id_part: str) -> str:
    """Stable for a batch and name; shortened with a hash when it would pass 128 characters."""
    task_id = f"{batch_id}.{id_part}"
    if len(task_id) <= MAX_ID_CHARS:
        return task_id
    digest = hashlib.sha1(task_id.encode()).hexdigest()[:10]
    return f"{task_id[:MAX_ID_CHARS - 11]}-{digest}"


def parse_plan_text(text: str, *, filename: str, now: float, source: str = "cli",
                    batch_id: str | None = None, base_dir: Path | None = None, rig: str | None = None) -> list[Task]:
    """Validate a plan and build its tasks (in plan order), or raise PlanError with every problem.

    ``base_dir`` is where for_each globs are looked up and what ``{plan_dir}`` means
    (default: the current directory). ``batch_id`` is generated when not given. ``rig``, the
    submitting rig, pins every task without a ``rig`` key: its paths are on that rig's disk.
    """
    errors = ErrorCollector(filename)
    base = (base_dir or Path.cwd()).resolve()
    doc = scan(text.removeprefix("\ufeff"), errors)  # editors on Windows may add a BOM
    defaults = read_defaults(doc, errors)
    if not doc.sections:
        errors.add(1, "the plan has no tasks: each task is a '## name' heading followed by '- key: value' lines")
        raise PlanError(errors.errors)
    drafts = [d for d in (read_section(s, defaults, errors) for s in doc.sections) if d is not None]

    if batch_id is None:
        batch_value = defaults.get("batch")
        batch_id = new_batch_id(batch_value.value if batch_value else Path(filename).stem, now)
    elif not is_safe_task_id(batch_id):
        raise ValueError(f"batch id {batch_id!r} is not safe as a file name")

    groups = build_groups(drafts, base, batch_id, errors)
    check_unique(groups, errors)
    graph = resolve_dependencies(groups, errors)
    find_cycles(graph, {g.draft.name: g.draft.line_of("depends_on") for g in groups}, errors)
    errors.raise_if_any()

    ids = {inst.name: task_id_for(batch_id, inst.id_part) for g in groups for inst in g.instances}
    tasks: list[Task] = []
    for g in groups:
        for inst in g.instances:
            task = _build_task(inst, ids, batch_id, filename, now, source, errors, rig)
            if task is not None:
                tasks.append(task)
    errors.raise_if_any()
    return tasks


def _text(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return substitute(value, variables)
    if isinstance(value, list):
        return [substitute(v, variables) if isinstance(v, str) else v for v in value]
    return value


def _task_dict(inst: Instance, ids: dict[str, str], batch_id: str, where: str,
               now: float, source: str, rig: str | None = None) -> dict[str, Any]:
    draft: Draft = inst.draft
    d: dict[str, Any] = {
        "task_id": ids[inst.name],
        "batch_id": batch_id,
        "name": inst.name,
        "type": draft.type.value,
        "depends_on": [ids[n] for n in dict.fromkeys(inst.depends_on)],
        "created_at": now,
        "source": source,
        "plan": where,
        "params": {},
    }
    if rig is not None:
        d["rig"] = rig  # a plan's `rig` key (a name, or any) replaces it below
    for key, value in draft.values.items():
        target = SPECS[key].target
        if target.startswith("task.") and key not in ("type", "depends_on"):
            d[target[5:]] = _text(value.value, inst.variables)
        elif target.startswith("param."):
            d["params"][target[6:]] = _text(value.value, inst.variables)
        elif target.startswith("option."):
            d["params"].setdefault("options", {})[target[7:]] = value.value
    return d


def _build_task(inst: Instance, ids: dict[str, str], batch_id: str, filename: str, now: float,
                source: str, errors: ErrorCollector, rig: str | None = None) -> Task | None:
    where = f"{filename}:{inst.draft.line}"
    try:
        return Task.from_dict(_task_dict(inst, ids, batch_id, where, now, source, rig), where=where)
    except TaskValidationError as exc:
        message = str(exc)
        if message.startswith(f"{where}: "):
            message = message[len(where) + 2:]
        key = _FIELD_TO_KEY.get(exc.field or "", exc.field or "")
        errors.add(inst.draft.line_of(key), f"task {inst.name!r}: {message}")
        return None


def load_plan(path: Path, *, now: float, source: str = "cli", batch_id: str | None = None,
              rig: str | None = None) -> list[Task]:
    """Read and validate a plan file; for_each globs and {plan_dir} are relative to its folder.
    ``rig`` (the submitting rig) pins the tasks that do not say ``rig``."""
    path = Path(path)
    filename = str(path)
    try:  # the bounded reader: a regular file (a link the operator made is followed), size-checked
        data = safeio.read_bytes(path, MAX_TASK_FILE_BYTES, follow_symlinks=True)
    except safeio.UnsafeFileError as exc:
        raise PlanError([f"{filename}:1: plan file {exc.reason}"]) from None
    except OSError as exc:
        raise PlanError([f"{filename}:1: cannot read plan: {exc.strerror or exc}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PlanError([f"{filename}:{line}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_plan_text(text, filename=filename, now=now, source=source, batch_id=batch_id,
                           base_dir=path.parent, rig=rig)


def resolve_plan_path(path: Path, root: Path) -> Path:
    """The file as given if it exists, else relative to the rig's shared root, so
    ``galaxy submit plans/video.md`` finds ``shared/plans/video.md`` from the repo root."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    under_root = Path(root) / path
    return under_root if under_root.exists() else path


def plan_notes(tasks: list[Task]) -> list[str]:
    """'file:line: note: ...' for each auto-fix applied (once per plan line and message)."""
    notes: dict[tuple[str, str], None] = {}
    for t in tasks:
        if t.fix_applied:
            base = t.name.split("[", 1)[0]
            notes[(t.plan or "", f"task {base!r}: {t.fix_applied}")] = None
    return [f"{where}: note: {msg}" for where, msg in notes]
