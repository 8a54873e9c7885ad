"""Hostile ids never reach the filesystem (issue 11, item 3).

Every entry point that takes an id (CLI verbs, the queue's operator methods, the escalation
store and manager, the command channel, the dashboard's sink) is run with ids built to
escape the root. A sentinel folder beside the root holds a valid-looking task, escalation
and control file at every depth those ids aim for. Proof that nothing outside the root was
touched is double: a Python audit hook records every open/rename/remove/rmdir/mkdir/listdir/
utime on a path inside the sentinel, and its tree (names, sizes, mtimes, bytes) is unchanged.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from queue_helpers import T0, make_queue, task

from engine.audit import FileAuditLog
from engine.cli.main import main
from engine.commands import Command, CommandKind, FileCommandChannel, FileCommandSink
from engine.escalation.manager import EscalationManager, UnknownEscalation
from engine.escalation.pricing import CostLedger
from engine.escalation.store import EscalationStore
from engine.ids import IdKind, InvalidId, check_id, id_problem
from engine.model import TaskStatus
from engine.paths import RigPaths
from engine.routing.nodes import EscalationConfig
from engine.supervisor.command_processor import CommandProcessor, Outcome

_WATCH: dict[str, object] = {"dir": None, "hits": []}
_AUDITED = {"open", "os.rename", "os.replace", "os.remove", "os.unlink", "os.rmdir", "os.mkdir", "os.listdir",
            "os.scandir", "os.utime", "os.chmod", "os.truncate", "os.link", "os.symlink", "shutil.rmtree",
            "shutil.move", "shutil.copyfile"}


def _hook(event: str, args: tuple) -> None:
    watched = _WATCH["dir"]
    if watched is None or event not in _AUDITED:
        return
    for a in args[:2]:
        if isinstance(a, (str, bytes, os.PathLike)):
            p = os.path.abspath(os.fsdecode(a))
            if p == watched or p.startswith(str(watched) + os.sep):
                _WATCH["hits"].append((event, p))  # type: ignore[union-attr]


sys.addaudithook(_hook)  # permanent for the process; inert while _WATCH["dir"] is None

HOSTILE_BASE = ["..", "../x", "/etc/passwd", "a/b", "", "\x00", "x\x00y", "x" * 300, "tâche", "ü/../x",
                ".hidden", "a+b", "ok\n", "-rf", "a\\b", "a..b", "..."]


def _hostile(outside: Path) -> list[str]:
    aimed = ["../" * k + "outside/evil" for k in range(1, 7)]
    return HOSTILE_BASE + aimed + [str(outside / "evil"), str(outside)]


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                             p.read_bytes() if p.is_file() else None)
    return out


@pytest.fixture
def rig(tmp_path):
    """root = tmp/rig; sentinel = tmp/outside with bait every hostile id could reach."""
    root, outside = tmp_path / "rig", tmp_path / "outside"
    paths = RigPaths(root).ensure()
    bait = json.dumps(task("evil", status=TaskStatus.FAILED, error="bait").to_dict()).encode()
    for d in [outside, *(outside / sub for sub in ("evil", "tasks/failed", "x", "etc"))]:
        d.mkdir(parents=True, exist_ok=True)
        for name in ("evil.json", "x.json", "evil.control.json", "passwd.json", "evil.status.json"):
            (d / name).write_bytes(bait)
    (outside / "evil" / "t1").write_text("")  # a cascade marker a bad id could remove
    old = T0 - 86_400
    for p in outside.rglob("*"):
        os.utime(p, (old, old))
    return paths, outside


@pytest.fixture
def watch(rig):
    _, outside = rig
    before = _tree(outside)
    _WATCH["dir"], _WATCH["hits"] = str(outside), []
    yield _WATCH["hits"]
    _WATCH["dir"] = None
    assert _tree(outside) == before, "something outside the root changed"


def _manager(paths: RigPaths) -> EscalationManager:
    return EscalationManager(EscalationStore(paths.escalations), {}, {}, CostLedger(paths.logs / "cost.jsonl"),
                             EscalationConfig())


def test_the_watch_can_fail(rig):
    """The audit hook sees a read outside the root (so an empty hit list means something)."""
    _, outside = rig
    _WATCH["dir"], _WATCH["hits"] = str(outside), []
    try:
        (outside / "x" / ".." / "evil.json").read_bytes()
        hits = list(_WATCH["hits"])  # type: ignore[call-overload]
    finally:
        _WATCH["dir"] = None
    assert hits == [("open", str(outside / "evil.json"))]


def test_every_id_kind_names_the_rule_broken():
    for kind in IdKind:
        for bad in ["../x", "/etc/passwd", "a/b", "..", "", "\x00", "é", ".hidden", "a+b", "ok\n",
                    "x" * 200]:
            with pytest.raises(InvalidId) as exc:
                check_id(kind, bad)
            assert str(exc.value).startswith(f"{kind.value} id ") and " is not valid: " in str(exc.value)
        assert check_id(kind, "gpu0-a_1.b") == "gpu0-a_1.b"
    assert str(InvalidId(IdKind.TASK, "../x", id_problem(IdKind.TASK, "../x") or "")) == \
        "task id '../x' is not valid: it contains a path separator"
    assert "control character" in (id_problem(IdKind.TASK, "ok\n") or "")  # '$' would have let it through


def test_cli_verbs_refuse_hostile_ids_before_any_path(rig, watch, capsys, monkeypatch, tmp_path):
    paths, outside = rig
    monkeypatch.setenv("GALAXY_CONFIG", str(tmp_path / "none.toml"))
    verbs = [["retry"], ["cancel"], ["approve"], ["deny", "--reason", "no"], ["task", "show"], ["task", "show", "--json"],
             *([v] for v in ("pause", "resume", "drain", "restart", "unload"))]
    for bad in _hostile(outside):
        if bad == "":
            continue  # `retry ""` is "give a task id"; covered by the API tests below
        for verb in verbs:
            argv = ["--root", str(paths.root), verb[0], *verb[1:], "--", bad]
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert " id " in err and "is not valid" in err, (argv, err)
    assert list(paths.commands.glob("*.json")) == []  # no command file was even written
    assert watch == []


def test_cli_still_reaches_the_queue_with_a_valid_id(rig, watch, capsys):
    paths, _ = rig
    q = make_queue(paths.root)
    q.submit([task("ok1")], T0)
    assert main(["--root", str(paths.root), "cancel", "ok1"]) == 0
    assert main(["--root", str(paths.root), "retry", "ok1"]) == 0
    assert "back in the queue" in capsys.readouterr().out
    assert watch == []


def test_queue_and_escalation_apis_refuse_hostile_ids(rig, watch):
    paths, outside = rig
    q = make_queue(paths.root)
    m = _manager(paths)
    for bad in _hostile(outside):
        for verdict in (q.retry(bad, T0), q.cancel(bad, T0, "x"), q.resolve_failed(bad, {"text": "x"}, T0)):
            assert not verdict and "is not valid" in verdict.message
        assert q.get(bad) is None
        assert m.store.get(bad) is None
        with pytest.raises(UnknownEscalation):
            m.approve(bad, T0, by="test")
        with pytest.raises(UnknownEscalation):
            m.deny(bad, T0, by="test", reason="no")
    assert q.retry_all_failed(T0) == []
    assert watch == []


def test_command_channel_refuses_hostile_targets_before_any_handler(rig, watch):
    paths, outside = rig
    q = make_queue(paths.root)
    m = _manager(paths)
    called: list[tuple[str, str | None]] = []

    def worker_handler(cmd: Command, now: float) -> Outcome:  # what the supervisor does with a worker id
        called.append((cmd.kind.value, cmd.target))
        paths.worker_control(cmd.target or "").write_text("{}")
        return Outcome.ok("written")

    def queue_handler(cmd: Command, now: float) -> Outcome:
        called.append((cmd.kind.value, cmd.target))
        fn = q.retry if cmd.kind is CommandKind.RETRY else (lambda t, n: q.cancel(t, n, "x"))
        return Outcome.ok("ok") if fn(cmd.target or "", now) else Outcome.refused("no")

    def esc_handler(cmd: Command, now: float) -> Outcome:
        called.append((cmd.kind.value, cmd.target))
        m.deny(cmd.target or "", now, by="t", reason="r")
        return Outcome.ok("denied")

    proc = CommandProcessor(FileCommandChannel(paths.commands), FileAuditLog(paths.audit))
    for kind in ("pause", "resume", "drain", "restart", "unload"):
        proc.register(kind, worker_handler)
    for kind in ("retry", "cancel"):
        proc.register(kind, queue_handler)
    for kind in ("approve", "deny"):
        proc.register(kind, esc_handler)
    sink = FileCommandSink(paths.commands)
    n = 0
    for bad in _hostile(outside):
        if bad == "":
            continue  # an empty target is refused whole ("needs a target")
        for kind in ("pause", "resume", "drain", "restart", "unload", "retry", "cancel", "approve", "deny"):
            cmd = Command(command_id=f"c{n:04d}", kind=CommandKind(kind), target=bad, args={"reason": "r"},
                          source="test", issued_at=T0)
            with pytest.raises(InvalidId):
                sink.send(cmd)  # the dashboard's sink refuses it first
            (paths.commands / f"{n:06d}-c.json").write_text(json.dumps(cmd.to_dict()))  # a hand-written file
            n += 1
    acks = []
    while batch := proc.process(T0):
        acks += batch
    assert len(acks) == n and called == []
    assert all(a.outcome == "refused" and " id " in a.message and "is not valid" in a.message for a in acks)
    audit = [json.loads(line) for line in paths.audit.read_text().splitlines()]
    assert len(audit) == n and all(r["outcome"] == "refused" for r in audit)
    # the same channel does reach the handler with a valid id (the test can fail)
    sink.send(Command(command_id="good", kind=CommandKind.PAUSE, target="gpu0", source="test", issued_at=T0))
    proc.channel._dir_mtime_ns = None  # type: ignore[attr-defined]
    assert [a.outcome for a in proc.process(T0)] == ["ok"] and called == [("pause", "gpu0")]
    assert watch == []


def test_plan_derived_ids_are_safe_or_refused(rig, watch):
    """Names, for_each items and batch names from a plan become ids: each is a valid task id."""
    from engine.plans import PlanError
    from engine.plans.build import parse_plan_text

    paths, _outside = rig
    text = ("- batch: ../../outside/evil\n\n## ../../outside/evil\n\n- class: cpu\n- command: `true`\n\n"
            "## /etc/passwd\n\n- class: cpu\n- for_each: ../x, a/b, .hidden, a+b, tâche\n- command: `echo {item}`\n")
    try:
        tasks = parse_plan_text(text, filename="hostile.md", now=T0)
    except PlanError:
        tasks = []
    assert all(id_problem(IdKind.TASK, t.task_id) is None for t in tasks)
    assert all(id_problem(IdKind.TASK, d) is None for t in tasks for d in t.depends_on)
    if tasks:
        make_queue(paths.root).submit(tasks, T0)
    assert watch == []


def test_an_escalation_record_with_hostile_ids_is_quarantined_not_followed(rig, watch):
    """A hand-edited record in the shared store: its ids never become paths."""
    paths, _ = rig
    m = _manager(paths)
    good = {"escalation_id": "esc-1", "task_id": "t1", "state": "pending", "reason": "r", "provider": "p",
            "model": "m", "payload": {}, "est_input_tokens": 1, "est_cost_usd": 0.0, "created_at": T0,
            "expires_at": None}
    for n, changes in enumerate([{"task_id": "../../../outside/evil"}, {"escalation_id": "../../../outside/evil"},
                                 {"task_id": "ok\n"}]):
        name = f"esc-{n + 2}"
        rec = {**good, "escalation_id": name, **changes}
        (paths.escalations / f"{name}.json").write_text(json.dumps(rec))
        assert m.store.get(name) is None
        assert (paths.escalations / "rejected" / f"{name}.json").exists()
    (paths.escalations / "esc-1.json").write_text(json.dumps(good))
    assert [e.escalation_id for e in m.store.all()] == ["esc-1"]
    assert not make_queue(paths.root).awaiting.park("../../../outside/evil", "esc-2", T0)
    assert watch == []
