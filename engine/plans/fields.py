"""The keys a plan may use, what each accepts, and where it lands in the Task.

One table drives parsing, "unknown key" suggestions, which keys a defaults list may set,
and which keys apply to which task type, so the docs and the checks cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.model import Executor, TaskClass, TaskType
from engine.plans.errors import suggest

ALL_TYPES = frozenset(TaskType)
EXECUTORS = tuple(e.value for e in Executor)  # worker, brain, any (engine.model.Executor)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?$", re.I)


class ValueProblem(ValueError):
    """A value cannot be used; the message says what is expected."""


Parser = Callable[[str, list[str] | None], Any]


def _scalar(key: str, value: str, items: list[str] | None) -> str:
    if items is not None:
        raise ValueProblem(f"{key} takes one value, not a list")
    if not value:
        raise ValueProblem(f"{key} needs a value")
    return value


def parse_text(key: str) -> Parser:
    return lambda v, items: _scalar(key, v, items)


def parse_list(key: str) -> Parser:
    def parse(value: str, items: list[str] | None) -> list[str]:
        if items is not None:
            out = [i for i in items if i]
        else:
            inner = value[1:-1] if value.startswith("[") and value.endswith("]") else value
            out = [p.strip() for p in inner.split(",") if p.strip()]
        if not out:
            raise ValueProblem(f"{key} needs at least one entry (comma separated, or one '  - item' per line)")
        return out
    return parse


def parse_int(key: str, low: int, high: int | None = None) -> Parser:
    def parse(value: str, items: list[str] | None) -> int:
        raw = _scalar(key, value, items)
        try:
            n = int(raw)
        except ValueError:
            raise ValueProblem(f"{key} must be a whole number, got {raw!r}") from None
        if n < low or (high is not None and n > high):
            span = f"{low}-{high}" if high is not None else f">= {low}"
            raise ValueProblem(f"{key} must be {span}, got {n}")
        return n
    return parse


def parse_float(key: str, low: float, high: float) -> Parser:
    def parse(value: str, items: list[str] | None) -> float:
        raw = _scalar(key, value, items)
        try:
            x = float(raw)
        except ValueError:
            raise ValueProblem(f"{key} must be a number, got {raw!r}") from None
        if not low <= x <= high:
            raise ValueProblem(f"{key} must be between {low:g} and {high:g}, got {x:g}")
        return x
    return parse


def parse_bool(key: str) -> Parser:
    def parse(value: str, items: list[str] | None) -> bool:
        raw = _scalar(key, value, items).lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ValueProblem(f"{key} must be yes or no (true/false), got {raw!r}")
    return parse


def parse_duration(key: str) -> Parser:
    """Seconds, or a number with s/m/h: '90', '90s', '30m', '2h'."""
    def parse(value: str, items: list[str] | None) -> float:
        raw = _scalar(key, value, items)
        m = _DURATION.match(raw.strip())
        if not m:
            raise ValueProblem(f"{key} must be seconds or a duration like 90s, 30m, 2h; got {raw!r}")
        unit = (m.group(2) or "s").lower()[0]
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit]
        if seconds <= 0:
            raise ValueProblem(f"{key} must be more than 0, got {raw!r}")
        return seconds
    return parse


def parse_choice(key: str, choices: tuple[str, ...]) -> Parser:
    def parse(value: str, items: list[str] | None) -> str:
        raw = _scalar(key, value, items).lower()
        if raw not in choices:
            raise ValueProblem(f"{key} {raw!r} is not one of {', '.join(choices)}{suggest(raw, choices)}")
        return raw
    return parse


@dataclass(frozen=True)
class KeySpec:
    """One plan key. ``target`` is 'task.<field>', 'param.<name>', 'option.<name>' (LLM options,
    under params.options) or 'plan.<name>' (used by the parser itself)."""

    name: str
    parse: Parser
    target: str
    types: frozenset[TaskType] = ALL_TYPES  # task types it applies to
    in_task: bool = True  # allowed under a '## task' heading
    in_defaults: bool = True  # allowed in the list before the first task
    help: str = ""


_TYPES = tuple(t.value for t in TaskType)
_CLASSES = tuple(c.value for c in TaskClass)
_LLM = frozenset({TaskType.LLM})

SPECS: dict[str, KeySpec] = {s.name: s for s in (
    KeySpec("type", parse_choice("type", _TYPES), "task.type", help="shell (default), llm, transcribe, embed, load_llm, unload_llm"),
    KeySpec("class", parse_choice("class", _CLASSES), "task.task_class", help="cpu, script, llm (resource is for load_llm/unload_llm)"),
    KeySpec("command", parse_text("command"), "task.command", frozenset({TaskType.SHELL}), in_defaults=False,
            help="the shell command (or a ```sh block)"),
    KeySpec("model", parse_text("model"), "task.model", help="the model the task needs resident"),
    KeySpec("priority", parse_int("priority", 1, 10), "task.priority", help="1-10, higher first; default 5"),
    KeySpec("depends_on", parse_list("depends_on"), "task.depends_on", in_defaults=False,
            help="task names, comma separated"),
    KeySpec("timeout", parse_duration("timeout"), "task.timeout_s", help="seconds or 90s/30m/2h; default 1800 s"),
    KeySpec("max_retries", parse_int("max_retries", 0, 100), "task.max_retries", help="default 3"),
    KeySpec("tier", parse_int("tier", 0), "task.tier", help="routing tier for llm work (0 = smallest local)"),
    KeySpec("requires_external", parse_bool("requires_external"), "task.requires_external",
            help="yes: needs the external (cloud) tier, with operator approval"),
    KeySpec("sensitive", parse_bool("sensitive"), "task.sensitive", help="yes: never logged in full, never sent out"),
    KeySpec("executor", parse_choice("executor", EXECUTORS), "task.executor", help="worker (default), brain, any"),
    KeySpec("rig", parse_text("rig"), "task.rig",
            help="the rig whose workers run it (default: the submitting rig); any: any rig's workers"),
    KeySpec("for_each", parse_list("for_each"), "plan.for_each", in_defaults=False,
            help="items or globs: one task per item"),
    KeySpec("prompt", parse_text("prompt"), "param.prompt", _LLM, in_defaults=False, help="or a ```prompt block"),
    KeySpec("system", parse_text("system"), "param.system", _LLM, help="system prompt, or a ```system block"),
    KeySpec("max_tokens", parse_int("max_tokens", 1), "option.num_predict", _LLM,
            help="stored as params.options.num_predict (Ollama's name; the OpenAI backend maps it)"),
    KeySpec("temperature", parse_float("temperature", 0.0, 2.0), "option.temperature", _LLM,
            help="stored as params.options.temperature"),
    KeySpec("audio", parse_text("audio"), "param.audio", frozenset({TaskType.TRANSCRIBE}), in_defaults=False),
    KeySpec("language", parse_text("language"), "param.language", frozenset({TaskType.TRANSCRIBE})),
    KeySpec("texts", parse_list("texts"), "param.texts", frozenset({TaskType.EMBED}), in_defaults=False,
            help="texts to embed, or a ```texts block (one per line)"),
    KeySpec("beam_size", parse_int("beam_size", 1, 20), "param.beam_size", frozenset({TaskType.TRANSCRIBE})),
    KeySpec("compute_type", parse_text("compute_type"), "param.compute_type", frozenset({TaskType.TRANSCRIBE})),
    KeySpec("input", parse_text("input"), "param.input", frozenset({TaskType.EMBED, TaskType.LLM}), in_defaults=False,
            help="embed: a file of texts (one per line, or a JSON list); llm: a file the model reads as data"),
    KeySpec("batch_size", parse_int("batch_size", 1), "param.batch_size", frozenset({TaskType.EMBED})),
    KeySpec("normalize", parse_bool("normalize"), "param.normalize", frozenset({TaskType.EMBED})),
    KeySpec("output", parse_text("output"), "param.output", in_defaults=False, help="where the result is written"),
    KeySpec("batch", parse_text("batch"), "plan.batch", in_task=False, help="batch name (default: the plan's file name)"),
    KeySpec("llm_model", parse_text("llm_model"), "plan.model", _LLM, in_task=False),
    KeySpec("transcribe_model", parse_text("transcribe_model"), "plan.model", frozenset({TaskType.TRANSCRIBE}), in_task=False),
    KeySpec("embed_model", parse_text("embed_model"), "plan.model", frozenset({TaskType.EMBED}), in_task=False),
)}

ALIASES = {"task_class": "class", "timeout_s": "timeout", "depends": "depends_on", "needs": "depends_on"}

TASK_KEYS = tuple(k for k, s in SPECS.items() if s.in_task)
DEFAULT_KEYS = tuple(k for k, s in SPECS.items() if s.in_defaults)

CODE_BLOCK_KINDS: dict[str, str] = {
    "sh": "command", "bash": "command", "shell": "command", "zsh": "command",
    "prompt": "prompt", "system": "system", "texts": "texts",
}
"""A fenced block's language tag and the key it fills; an untagged block fills the
type's main key (command for shell, prompt for llm, texts for embed)."""

MAIN_BLOCK_KEY = {TaskType.SHELL: "command", TaskType.LLM: "prompt", TaskType.EMBED: "texts"}


def resolve_key(key: str) -> str:
    return ALIASES.get(key, key)
