"""From scanned Markdown sections to checked task drafts (one per '## name', before fan-out).

Every problem is added to the collector with the line of the key (or heading) at fault;
a draft with problems is still returned so later checks (dependencies, cycles) can run
and report in the same pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.model import DEFAULT_CLASS_FOR_TYPE, TaskClass, TaskType
from engine.plans.errors import ErrorCollector, suggest
from engine.plans.fields import (
    CODE_BLOCK_KINDS,
    DEFAULT_KEYS,
    MAIN_BLOCK_KEY,
    SPECS,
    TASK_KEYS,
    ValueProblem,
    resolve_key,
)
from engine.plans.markdown import Field, PlanDocument, Section

_RESOURCE_TYPES = {TaskType.LOAD_LLM, TaskType.UNLOAD_LLM}
REQUIRED_KEY = {
    TaskType.SHELL: ("command", "a shell task needs a command: '- command: ...' or a ```sh block"),
    TaskType.LLM: ("prompt", "an llm task needs a prompt: '- prompt: ...' or a ```prompt block"),
    TaskType.TRANSCRIBE: ("audio", "a transcribe task needs '- audio: <file>'"),
    TaskType.LOAD_LLM: ("model", "a load_llm task needs '- model: <name>'"),
    TaskType.UNLOAD_LLM: ("model", "an unload_llm task needs '- model: <name>'"),
}


def slug(text: str) -> str:
    """File-name-safe, lower case: 'Transcribe clips' -> 'transcribe-clips'."""
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-_")


@dataclass
class Value:
    value: Any
    line: int


@dataclass
class Defaults:
    values: dict[str, Value] = field(default_factory=dict)

    def get(self, key: str) -> Value | None:
        return self.values.get(key)


@dataclass
class Draft:
    """One '## name' section, checked, with each value's line."""

    name: str
    line: int
    type: TaskType
    values: dict[str, Value] = field(default_factory=dict)
    misspelt: set[str] = field(default_factory=set)

    def line_of(self, key: str) -> int:
        v = self.values.get(key)
        return v.line if v else self.line


def _parse_field(f: Field, key: str, errors: ErrorCollector) -> Any | None:
    items = [text for text, _ in f.items] if f.items is not None else None
    try:
        return SPECS[key].parse(f.value, items)
    except ValueProblem as exc:
        errors.add(f.line, str(exc))
        return None


def read_defaults(doc: PlanDocument, errors: ErrorCollector) -> Defaults:
    defaults = Defaults()
    for f in doc.defaults:
        key = resolve_key(f.key)
        spec = SPECS.get(key)
        if spec is None:
            errors.add(f.line, f"unknown key {f.raw_key!r} in the plan's defaults{suggest(key, DEFAULT_KEYS)}")
            continue
        if not spec.in_defaults:
            errors.add(f.line, f"{key!r} cannot be a plan-wide default; set it under each '## task'")
            continue
        if key in defaults.values:
            errors.add(f.line, f"{key!r} is given twice (first on line {defaults.values[key].line})")
            continue
        parsed = _parse_field(f, key, errors)
        if parsed is not None:
            defaults.values[key] = Value(parsed, f.line)
    return defaults


def _check_name(section: Section, errors: ErrorCollector) -> bool:
    if not section.name:
        errors.add(section.line, "a task heading needs a name: '## transcribe'")
        return False
    bad = sorted(set(section.name) & set("[],"))
    if bad:
        errors.add(section.line, f"task name {section.name!r} must not contain {' '.join(bad)} "
                                 "(brackets name for_each items, commas separate depends_on)")
        return False
    if not slug(section.name):
        errors.add(section.line, f"task name {section.name!r} needs at least one letter or digit")
        return False
    return True


def _block_key(info: str, ttype: TaskType) -> str | None:
    if info:
        return CODE_BLOCK_KINDS.get(info)
    return MAIN_BLOCK_KEY.get(ttype)


def read_section(section: Section, defaults: Defaults, errors: ErrorCollector) -> Draft | None:
    if not _check_name(section, errors):
        return None
    values: dict[str, Value] = {}
    misspelt: set[str] = set()  # keys an unknown key probably meant: not also reported missing
    for f in section.fields:
        key = resolve_key(f.key)
        spec = SPECS.get(key)
        if spec is None:
            hint = suggest(key, TASK_KEYS)
            errors.add(f.line, f"unknown key {f.raw_key!r}{hint}")
            if hint:
                misspelt.add(hint.split("'")[1])
            continue
        if not spec.in_task:
            errors.add(f.line, f"{key!r} belongs in the plan's defaults list, before the first '## task'")
            continue
        if key in values:
            errors.add(f.line, f"{key!r} is given twice in task {section.name!r} (first on line {values[key].line})")
            continue
        parsed = _parse_field(f, key, errors)
        values[key] = Value(parsed, f.line)  # kept even when bad, so 'missing' is not reported too

    type_value = values.get("type") or defaults.get("type")
    ttype = TaskType(type_value.value) if type_value and type_value.value else TaskType.SHELL

    for block in section.blocks:
        block_key = _block_key(block.info, ttype)
        if block_key is None:
            kinds = ", ".join(sorted(set(CODE_BLOCK_KINDS)))
            what = f"code block kind {block.info!r}" if block.info else f"an untagged code block in a {ttype.value} task"
            errors.add(block.line, f"{what} is not used: tag it as one of {kinds}")
            continue
        if block_key in values:
            errors.add(block.line, f"{block_key} is given twice in task {section.name!r} (also on line {values[block_key].line})")
            continue
        text = block.text.strip("\n")
        if not text.strip():
            errors.add(block.line, f"the {block_key} code block is empty")
            values[block_key] = Value(None, block.line)
            continue
        values[block_key] = Value([ln.strip() for ln in text.splitlines() if ln.strip()] if block_key == "texts" else text,
                            block.line)

    draft = Draft(section.name, section.line, ttype, values, misspelt)
    _apply_defaults(draft, defaults)
    type_is_bad = "type" in values and values["type"].value is None
    if not type_is_bad:  # a bad type was reported; guessing which keys apply would only add noise
        _check_applicability(draft, errors)
        _check_required(draft, errors)
    return draft


def _check_applicability(draft: Draft, errors: ErrorCollector) -> None:
    for key, value in draft.values.items():
        spec = SPECS[key]
        if draft.type not in spec.types:
            kinds = "/".join(sorted(t.value for t in spec.types))
            errors.add(value.line, f"{key!r} does not apply to a {draft.type.value} task (it is for {kinds} tasks)")
    cls = draft.values.get("class")
    if cls and cls.value:
        if draft.type in _RESOURCE_TYPES and cls.value != TaskClass.RESOURCE.value:
            errors.add(cls.line, f"a {draft.type.value} task is always class resource; remove 'class'")
        elif draft.type not in _RESOURCE_TYPES and cls.value == TaskClass.RESOURCE.value:
            errors.add(cls.line, "class resource is reserved for load_llm/unload_llm tasks "
                                 "(the scheduler inserts them); use cpu, script or llm")


def _apply_defaults(draft: Draft, defaults: Defaults) -> None:
    for key, value in defaults.values.items():
        spec = SPECS[key]
        if draft.type not in spec.types:
            continue
        if spec.target == "plan.model":
            draft.values.setdefault("model", value)
        elif key == "class":
            if draft.type not in DEFAULT_CLASS_FOR_TYPE:  # typed tasks have a fixed natural class
                draft.values.setdefault(key, value)
        elif spec.in_task and key != "type":
            draft.values.setdefault(key, value)


def _check_required(draft: Draft, errors: ErrorCollector) -> None:
    if draft.type is TaskType.EMBED:
        has_texts, has_input = "texts" in draft.values, "input" in draft.values
        if not has_texts and not has_input and not draft.misspelt & {"texts", "input"}:
            errors.add(draft.line, "an embed task needs '- texts: ...', a ```texts block, or '- input: <file>'")
        elif has_texts and has_input:
            errors.add(draft.values["input"].line, "an embed task takes texts or input, not both")
        return
    key, message = REQUIRED_KEY[draft.type]
    if key not in draft.values and key not in draft.misspelt:
        errors.add(draft.line, f"task {draft.name!r}: {message}")
