"""Commands as data: parsed whole before applying, refused with a reason, audited, acked."""

import json

from engine.audit import FileAuditLog
from engine.commands import CommandKind, FileCommandChannel, FileCommandSink, make_command
from engine.supervisor.command_processor import CommandProcessor, Outcome


def setup(tmp_path):
    proc = CommandProcessor(FileCommandChannel(tmp_path / "commands"), FileAuditLog(tmp_path / "audit.jsonl"))
    applied = []
    proc.register(CommandKind.PAUSE, lambda c, now: (applied.append(c.target), Outcome.ok("paused"))[1])
    return proc, applied, FileCommandSink(tmp_path / "commands")


def audit(tmp_path):
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def test_a_command_is_applied_acked_audited_and_removed(tmp_path):
    proc, applied, sink = setup(tmp_path)
    sink.send(make_command(CommandKind.PAUSE, "w1", source="cli me@host", now=5.0))
    (ack,) = proc.process(now=10.0)
    assert applied == ["w1"] and ack.outcome == "ok" and ack.source == "cli me@host" and ack.at == 10.0
    assert list((tmp_path / "commands").glob("*.json")) == []
    (line,) = audit(tmp_path)
    assert line["kind"] == "pause" and line["target"] == "w1" and line["outcome"] == "ok"
    assert line["source"] == "cli me@host" and line["at"].endswith("Z")
    assert proc.process(now=11.0) == []


def test_commands_apply_oldest_first(tmp_path):
    proc, applied, sink = setup(tmp_path)
    for i, target in enumerate(["a", "b", "c"]):
        sink.send(make_command(CommandKind.PAUSE, target, source="t", now=100.0 - i))
    proc.process(now=200.0)
    assert applied == ["c", "b", "a"]


def test_malformed_files_are_refused_moved_aside_and_never_applied(tmp_path):
    proc, applied, _ = setup(tmp_path)
    d = tmp_path / "commands"
    d.mkdir()
    (d / "001-half.json").write_text('{"command_id": "x", "kind": "pau')
    (d / "002-kind.json").write_text(json.dumps({"command_id": "y", "kind": "explode", "target": "w1"}))
    (d / "003-notarget.json").write_text(json.dumps({"command_id": "z", "kind": "pause"}))
    (d / ".004.json.tmp").write_text("{")  # an atomic write in progress: not looked at
    acks = proc.process(now=1.0)
    assert [a.outcome for a in acks] == ["refused"] * 3 and applied == []
    assert "not valid JSON" in acks[0].message
    assert "explode" in acks[1].message and "needs a target" in acks[2].message
    assert sorted(p.name for p in (d / "rejected").glob("*.json")) == ["001-half.json", "002-kind.json",
                                                                       "003-notarget.json"]
    assert (d / ".004.json.tmp").exists()
    assert [r["outcome"] for r in audit(tmp_path)] == ["refused"] * 3


def test_unregistered_kinds_are_refused_as_not_supported_yet(tmp_path):
    proc, _, sink = setup(tmp_path)
    sink.send(make_command(CommandKind.APPROVE, "esc1", source="tui"))
    (ack,) = proc.process(now=1.0)
    assert ack.outcome == "refused" and "not supported yet" in ack.message
    proc.register(CommandKind.APPROVE, lambda c, now: Outcome.ok("approved"))
    sink.send(make_command(CommandKind.APPROVE, "esc1", source="tui"))
    assert proc.process(now=2.0)[0].message == "approved"


def test_a_handler_that_raises_is_an_error_ack_not_a_crash(tmp_path):
    proc, _, sink = setup(tmp_path)

    def boom(c, now):
        raise RuntimeError("disk on fire")

    proc.register(CommandKind.CANCEL, boom)
    sink.send(make_command(CommandKind.CANCEL, "t1", source="t"))
    (ack,) = proc.process(now=1.0)
    assert ack.outcome == "error" and "disk on fire" in ack.message


def test_only_the_last_fifty_acks_are_kept(tmp_path):
    proc, _, sink = setup(tmp_path)
    for i in range(60):
        sink.send(make_command(CommandKind.PAUSE, f"w{i}", source="t", now=float(i)))
    proc.process(now=100.0)
    acks = proc.recent_acks()
    assert len(acks) == 50 and acks[-1].target == "w59"


def test_an_unreadable_command_file_is_refused_and_the_next_one_still_applies(tmp_path):
    proc, applied, sink = setup(tmp_path)
    d = tmp_path / "commands"
    (d / "000-dir.json").mkdir(parents=True)  # read_bytes raises IsADirectoryError, not a parse error
    sink.send(make_command(CommandKind.PAUSE, "w1", source="t", now=5.0))
    acks = proc.process(now=10.0)
    assert [a.outcome for a in acks] == ["refused", "ok"] and applied == ["w1"]
    assert "is a directory; only regular files are read" in acks[0].message
    assert (d / "rejected" / "000-dir.json").exists()


def test_an_unwritable_audit_log_does_not_stop_commands(tmp_path):
    proc = CommandProcessor(FileCommandChannel(tmp_path / "commands"), FileAuditLog(tmp_path / "audit.jsonl"))
    (tmp_path / "audit.jsonl").mkdir()  # opening it for append fails like a full or read-only disk would
    applied = []
    proc.register(CommandKind.PAUSE, lambda c, now: (applied.append(c.target), Outcome.ok("paused"))[1])
    FileCommandSink(tmp_path / "commands").send(make_command(CommandKind.PAUSE, "w1", source="t", now=5.0))
    (ack,) = proc.process(now=10.0)
    assert ack.outcome == "ok" and applied == ["w1"] and proc.audit_errors == 1
    assert proc.recent_acks() == (ack,)


def test_a_command_arriving_within_the_directory_timestamp_granularity_is_not_missed(tmp_path):
    """On a filesystem with 1 s timestamps two changes in the same second leave the directory's
    mtime unchanged (simulated with utime): the unchanged mtime must not hide the second command."""
    import os
    import time

    proc, applied, sink = setup(tmp_path)
    d = tmp_path / "commands"
    sink.send(make_command(CommandKind.PAUSE, "a", source="t", now=1.0))
    second = time.time_ns()  # "now", as a coarse clock would stamp both changes
    os.utime(d, ns=(second, second))
    proc.process(now=1.0)
    sink.send(make_command(CommandKind.PAUSE, "b", source="t", now=2.0))
    os.utime(d, ns=(second, second))  # same second as before: the timestamp did not move
    proc.process(now=2.0)
    assert applied == ["a", "b"]
