"""Fuzz: arbitrary bytes (and arbitrary JSON / plan / TOML shapes) into every reader of outside
input raise nothing but that reader's validation error. A fixed, derandomized example budget
keeps this fast and the same on every run."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.audit import FileAuditLog
from engine.commands import Command, FileCommandChannel, read_command_file
from engine.config import ConfigError, load_config, parse_config
from engine.escalation.store import Escalation, EscalationStore
from engine.model import Task, TaskValidationError
from engine.plans import PlanError, load_plan, parse_plan_text
from engine.queue.taskfile import read_task_file
from engine.schema import SchemaError, from_plain
from engine.supervisor.command_processor import CommandProcessor

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(JSON_SCALARS, lambda kids: st.lists(kids, max_size=4) |
                    st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=6)


def _fields_dict(names: list[str]) -> st.SearchStrategy[dict]:
    """Objects using the real field names with arbitrary values: reaches past the first check."""
    return st.dictionaries(st.sampled_from(names), JSON, max_size=len(names))


TASK_FIELDS = ["task_id", "name", "type", "command", "params", "task_class", "executor", "model", "batch_id",
               "depends_on", "priority", "status", "created_at", "retry_count", "max_retries", "not_before",
               "lease_owner", "lease_expires", "timeout_s", "source", "attempts", "result", "error",
               "fix_applied", "tier", "requires_external", "sensitive", "plan"]
COMMAND_FIELDS = ["command_id", "kind", "target", "args", "source", "issued_at"]
ESCALATION_FIELDS = list(Escalation.__dataclass_fields__)

BYTES = st.binary(max_size=3000) | JSON.map(lambda v: json.dumps(v).encode())


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _write(scratch: Path, name: str, data: bytes) -> Path:
    path = scratch / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- task files
@FUZZ
@given(data=BYTES | _fields_dict(TASK_FIELDS).map(lambda d: json.dumps(d).encode()))
def test_task_reader_raises_only_task_validation_errors(scratch, data):
    path = _write(scratch, "t.json", data)
    try:
        read_task_file(path, where="queue/t.json")
    except TaskValidationError as exc:
        assert "queue/t.json" in str(exc)


@FUZZ
@given(d=_fields_dict(TASK_FIELDS) | st.fixed_dictionaries(
    {"task_id": st.text(min_size=1, max_size=10), "name": st.text(max_size=5), "command": st.text(max_size=5)},
    optional={k: JSON for k in TASK_FIELDS if k not in ("task_id", "name", "command")}))
def test_task_schema_raises_only_task_validation_errors(d):
    try:
        Task.from_dict(d, where="x")  # the schema itself, not only the reader's catch-all
    except TaskValidationError:
        pass


# ---------------------------------------------------------------- plans
PLAN_LINES = st.sampled_from([
    "# Title", "## task", "## other task", "- class: cpu", "- class: llm", "- model: m", "- priority: 5",
    "- priority: x", "- depends_on: task", "- depends_on: other task", "- depends_on: nope", "- for_each: a, b",
    "- for_each: ", "- timeout: 60s", "- timeout: -1", "- command: `echo hi`", "- type: transcribe",
    "- input: {item}", "```sh", "```", "echo {item} {batch}", "- retries: 2", "", "text", "- : ", "{", "}",
    "- for_each: glob:*.wav", "- type: llm", "- prompt: say {item}", "- sensitive: yes", "- executor: cloud",
])
PLAN_TEXT = st.lists(PLAN_LINES | st.text(max_size=30), max_size=25).map("\n".join)


@FUZZ
@given(text=PLAN_TEXT | st.text(max_size=500))
def test_plan_parser_raises_only_plan_errors(scratch, text):
    try:
        parse_plan_text(text, filename="p.md", now=1e9, base_dir=scratch)
    except PlanError as exc:
        assert all(e.startswith("p.md:") for e in exc.errors)


@FUZZ
@given(data=st.binary(max_size=2000) | PLAN_TEXT.map(str.encode))
def test_plan_loader_raises_only_plan_errors(scratch, data):
    try:
        load_plan(_write(scratch, "p.md", data), now=1e9)
    except PlanError:
        pass


# ---------------------------------------------------------------- galaxy.toml
TOML_LINES = st.sampled_from([
    "[[group]]", 'name = "g1"', 'name = "g 1"', "gpus = [0]", "gpus = [0, 0]", "gpus = -1", 'gpus = "0"',
    'role = "brain"', 'backend = "openai"', 'backend = "x"', 'endpoint = "http://h:1"', "[thresholds]",
    "restart_backoff_s = 5", 'restart_backoff_s = "5"', "temp_hot_c = -3", "[routing]", "[[node]]",
    'model = "m"', "tier = 1", "external = true", "[escalation]", "budget_usd = -1", "retention_days = 7",
    'rig = "r"', "[sim]", "x = [[1], {a = 1}]", "", "# c", "[group]", "models = { a = 1 }",
    'preferred_classes = ["cpu"]', 'preferred_classes = "cpu"', "max_tasks = 1e400", "[[group]]\n[[group]]",
])
TOML_TEXT = st.lists(TOML_LINES | st.text(alphabet=string.printable, max_size=20), max_size=20).map("\n".join)


@FUZZ
@given(text=TOML_TEXT | st.text(max_size=300))
def test_config_parser_raises_only_config_errors(text):
    try:
        parse_config(text, gpu_count=2)
    except ConfigError:
        pass


@FUZZ
@given(data=st.binary(max_size=2000) | TOML_TEXT.map(str.encode))
def test_config_loader_raises_only_config_errors(scratch, data):
    try:
        load_config(_write(scratch, "galaxy.toml", data), gpu_count=2)
    except ConfigError:
        pass


# ---------------------------------------------------------------- the command channel
@FUZZ
@given(data=BYTES | _fields_dict(COMMAND_FIELDS).map(lambda d: json.dumps(d).encode()))
def test_command_reader_raises_only_schema_errors(scratch, data):
    try:
        read_command_file(_write(scratch, "c.json", data))
    except SchemaError:
        pass


@FUZZ
@given(d=_fields_dict(COMMAND_FIELDS))
def test_command_schema_raises_only_schema_errors(d):
    try:
        Command.from_dict(d)
    except SchemaError:
        pass


@FUZZ
@given(data=BYTES | _fields_dict(COMMAND_FIELDS).map(lambda d: json.dumps(d).encode()))
def test_the_command_processor_acks_every_file_and_never_raises(scratch, data):
    cmds = scratch / "commands"
    cmds.mkdir(exist_ok=True)
    (cmds / "001-x.json").write_bytes(data)
    proc = CommandProcessor(FileCommandChannel(cmds), FileAuditLog(scratch / "audit.jsonl"))
    [ack] = proc.process(now=1.0)
    assert ack.outcome in ("refused", "error", "ok")
    assert not (cmds / "001-x.json").exists()


# ---------------------------------------------------------------- escalation records
@FUZZ
@given(data=BYTES | _fields_dict(ESCALATION_FIELDS).map(lambda d: json.dumps(d).encode()))
def test_escalation_store_never_raises_on_a_record(scratch, data):
    store = EscalationStore(scratch / "esc")
    _write(scratch / "esc", "e1.json", data)
    e = store.get("e1")
    assert e is None or e.escalation_id is not None
    store.all()


@FUZZ
@given(d=_fields_dict(ESCALATION_FIELDS))
def test_escalation_schema_raises_only_schema_errors(d):
    try:
        from_plain(Escalation, d)
    except SchemaError:
        pass
