"""galaxy submit / status / retry / cancel, in-process through the real argument parser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from queue_helpers import make_queue, policy

from engine.cli.main import main
from engine.events import EventLog, tail_events
from engine.model import TaskStatus

REPO = Path(__file__).resolve().parents[2]


def _run(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


def test_submit_json_then_status_and_json_status(tmp_path, capsys):
    root = tmp_path / "rig"
    spec = tmp_path / "tasks.json"
    spec.write_text(json.dumps([
        {"task_id": "a", "name": "first", "command": "echo a", "task_class": "cpu", "priority": 8},
        {"task_id": "b", "name": "second", "command": "whisper x.wav", "depends_on": ["a"]},
    ]))
    assert _run(root, "submit", str(spec)) == 0
    out = capsys.readouterr().out
    assert "submitted 2 task(s): 1 queued, 1 waiting on dependencies" in out
    assert "inferred 'script'" in out  # the auto-fix is shown, not hidden
    assert _run(root, "status") == 0
    out = capsys.readouterr().out
    assert "held: 1" in out and "queue: 1" in out and "dependency pending: a" in out
    assert _run(root, "status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["queue"] == {"cpu": 1} and data["counts"]["held"] == {"script": 1}
    assert {w["task_id"]: w["reason"] for w in data["waiting"]}["b"] == "dependency pending: a"
    assert data["workers"] is None  # no supervisor snapshot


def test_submit_rejects_bad_json_with_file_name_and_queues_nothing(tmp_path, capsys):
    root = tmp_path / "rig"
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps([{"task_id": "ok", "name": "x", "command": "true"},
                                {"task_id": "a/b", "name": "y", "command": "true"}]))
    assert _run(root, "submit", str(spec)) == 1
    err = capsys.readouterr().err
    assert f"{spec}[1]" in err and "not safe as a file name" in err
    assert make_queue(root).counts().total("queue") == 0


def test_submit_plan_found_under_the_root_plans_directory(tmp_path, capsys, monkeypatch):
    root = tmp_path / "rig"
    (root / "plans").mkdir(parents=True)
    shutil.copy(REPO / "shared" / "plans" / "hello.md", root / "plans" / "hello.md")
    monkeypatch.chdir(tmp_path)
    assert _run(root, "submit", "hello.md") == 0
    assert "submitted 5 task(s): 1 queued, 4 waiting on dependencies" in capsys.readouterr().out
    assert _run(root, "submit", "plans/nope.md") == 1


def test_submit_broken_plan_prints_each_error_with_its_line(tmp_path, capsys):
    plan = tmp_path / "broken.md"
    plan.write_text("# Broken\n\n## a\n\n- command: `true`\n- depends_on: ghost\n")
    assert _run(tmp_path / "rig", "submit", str(plan)) == 1
    err = capsys.readouterr().err
    assert f"{plan}:6:" in err and "ghost" in err


def test_retry_and_cancel(tmp_path, capsys):
    root = tmp_path / "rig"
    q = make_queue(root)
    spec = tmp_path / "t.json"
    spec.write_text(json.dumps([{"task_id": "r1", "name": "r", "command": "false", "task_class": "cpu", "priority": 9},
                                {"task_id": "c1", "name": "c", "command": "true", "task_class": "cpu"}]))
    assert _run(root, "submit", str(spec)) == 0
    t = q.claim("w1", 1e9, policy(), 30)
    q.fail(t.task_id, "w1", "exit code 1", 1e9, retryable=False)
    assert _run(root, "cancel", "c1", "--reason", "no longer needed") == 0
    assert _run(root, "cancel", "c1") == 1
    assert "cannot cancel" in capsys.readouterr().err
    assert _run(root, "status") == 0
    out = capsys.readouterr().out
    assert "cancelled: no longer needed" in out and "exit code 1" in out
    assert _run(root, "retry", "r1") == 0
    assert q.get("r1").status is TaskStatus.PENDING
    assert _run(root, "retry", "--all-failed") == 0
    assert "retried 1 task(s): c1" in capsys.readouterr().out
    assert _run(root, "retry", "nope") == 1


def test_event_log_lines_and_tail(tmp_path):
    log = EventLog(tmp_path / "logs" / "events.jsonl", {"gpu_id": 2})
    log.emit("task_completed", at=1_700_000_000.0, task_id="t1", worker_id="w1", duration_ms=12.345,
             tokens_generated=40, error="x" * 500, task_class="llm")
    (tmp_path / "logs" / "events.jsonl").open("ab").write(b"{torn line\n")
    log.bind(worker_id="w9").emit("worker_started", at=1_700_000_001.0)
    events = tail_events(tmp_path / "logs" / "events.jsonl", 10)
    assert [e["event_type"] for e in events] == ["task_completed", "worker_started"]
    first = events[0]
    assert first["timestamp"] == "2023-11-14T22:13:20.000Z" and first["gpu_id"] == 2
    assert first["duration_ms"] == 12.3 and first["tokens_generated"] == 40 and len(first["error"]) == 200
    assert first["task_class"] == "llm" and events[1]["worker_id"] == "w9"
    assert log.tail(1) == [events[1]]


def test_worker_refuses_bad_arguments_with_a_clear_message(tmp_path, capsys):
    assert _run(tmp_path / "rig", "worker", "--worker-id", "../evil") == 2
    assert "worker id '../evil'" in capsys.readouterr().err
    assert _run(tmp_path / "rig", "worker", "--gpu", "one") == 2
    assert "--gpu takes indices" in capsys.readouterr().err


def test_status_shows_workers_from_a_fresh_snapshot_only(tmp_path, capsys):
    import time

    from engine.paths import RigPaths
    from engine.snapshot import SNAPSHOT_VERSION, Snapshot, WorkerView, write_snapshot

    root = tmp_path / "rig"
    paths = RigPaths(root).ensure()
    worker = WorkerView(worker_id="gpu1", gpus=(1,), state="running", current_task="t9")

    def snap(taken_at: float) -> Snapshot:
        return Snapshot(version=SNAPSHOT_VERSION, seq=1, taken_at=taken_at, rig="test", simulated=True,
                        telemetry_status="simulated rig", workers=(worker,))

    write_snapshot(paths.snapshot, snap(time.time()))
    assert _run(root, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["workers"][0]["current_task"] == "t9"
    write_snapshot(paths.snapshot, snap(time.time() - 3600))  # the supervisor is long gone
    assert _run(root, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["workers"] is None


def test_submit_of_an_unreadable_path_names_it_and_queues_nothing(tmp_path, capsys):
    root = tmp_path / "rig"
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"task_id": "ok", "name": "x", "command": "true"}))
    folder = tmp_path / "tasks.json"
    folder.mkdir()  # exists, but reading it raises IsADirectoryError
    assert _run(root, "submit", str(good), str(folder)) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "nothing was queued" in err
    assert make_queue(root).counts().total("queue") == 0


def test_status_prints_task_text_as_one_safe_line_each(tmp_path, capsys):
    """A task's name and error are data: terminal escapes in them (a title change, a clear screen,
    colours from a failed command's stderr) must not reach the operator's terminal, and a
    multi-line error stays on its task's line."""
    root = tmp_path / "rig"
    q = make_queue(root)
    spec = tmp_path / "t.json"
    spec.write_text(json.dumps([
        {"task_id": "e1", "name": "evil\u001b]0;owned\u0007\u001b[2J", "command": "false", "task_class": "cpu"},
        {"task_id": "w1", "name": "later", "command": "true", "task_class": "cpu", "depends_on": ["x1"]},
        {"task_id": "x1", "name": "slow\u001b[31m", "command": "true", "task_class": "cpu", "priority": 1}]))
    assert _run(root, "submit", str(spec)) == 0
    t = q.claim("w1", 1e9, policy(), 30)
    assert t is not None and t.task_id == "e1"
    q.fail(t.task_id, "w1", "exit code 1: \u001b[31mboom\u001b[0m\nsecond line\r\nthird\n", 1e9, retryable=False)
    running = q.claim("w2", 1e9, policy(), 30)
    assert running is not None and running.task_id == "x1"
    capsys.readouterr()
    assert _run(root, "status") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert out.split("running:\n", 1)[1].splitlines()[0].split() == ["x1", "w2", "slow"]
    failed = out.split("failed:\n", 1)[1].splitlines()
    assert failed[0].split() == ["e1", "exit", "code", "1:", "boom", "|", "second", "line", "|", "third"]
