"""Files in the shared root that the engine reads by name (the cost ledger, the queue's ledger,
the intent journal's commit files and logs) are read as regular files only: a FIFO, a device or
a planted link never blocks a reader, is never followed, and never fills memory."""

from __future__ import annotations

import os

from queue_helpers import T0, make_queue, task

from engine.escalation.manager import EscalationManager
from engine.escalation.pricing import MAX_COST_LEDGER_BYTES, CostLedger
from engine.escalation.store import EscalationStore
from engine.paths import RigPaths
from engine.queue.journal import Intent, _lines_after
from engine.routing.nodes import EscalationConfig


def _manager(paths: RigPaths, ledger: CostLedger) -> EscalationManager:
    return EscalationManager(EscalationStore(paths.escalations), {}, {}, ledger,
                             EscalationConfig(daily_budget_usd=5.0))


def test_a_cost_ledger_fifo_is_refused_at_once_and_no_budget_is_left(tmp_path):
    paths = RigPaths(tmp_path).ensure()
    path = paths.logs / "cost_ledger.jsonl"
    os.mkfifo(path)  # no writer: a blocking open would hang every budget check
    ledger = CostLedger(path)
    m = _manager(paths, ledger)
    assert ledger.entries() == [] and str(path) in ledger.last_error and "FIFO" in ledger.last_error
    assert m.budget_left(T0) == 0.0  # what was spent is unknown: fail closed


def test_a_cost_ledger_over_its_limit_fails_closed(tmp_path):
    paths = RigPaths(tmp_path).ensure()
    path = paths.logs / "cost_ledger.jsonl"
    with open(path, "wb") as fh:
        fh.truncate(MAX_COST_LEDGER_BYTES + 1)  # sparse
    m = _manager(paths, CostLedger(path))
    assert m.budget_left(T0) == 0.0


def test_a_readable_cost_ledger_still_counts(tmp_path):
    paths = RigPaths(tmp_path).ensure()
    ledger = CostLedger(paths.logs / "cost_ledger.jsonl")
    ledger.record(at=T0, escalation_id="e1", task_id="t1", provider="p", model="m", tokens_in=1, tokens_out=1,
                  cost_usd=1.25)
    assert _manager(paths, ledger).budget_left(T0) == 3.75 and ledger.last_error == ""


def test_a_cost_ledger_planted_as_a_symlink_is_not_written_through(tmp_path):
    paths = RigPaths(tmp_path).ensure()
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    os.symlink(outside, paths.logs / "cost_ledger.jsonl")
    ledger = CostLedger(paths.logs / "cost_ledger.jsonl")
    try:
        ledger.record(at=T0, escalation_id="e1", task_id="t1", provider="p", model="m", tokens_in=1,
                      tokens_out=1, cost_usd=1.0)
    except OSError as exc:
        assert "symlink" in str(exc)
    else:
        raise AssertionError("a cost line was written through a planted link")
    assert outside.read_text() == "untouched\n"


def test_queue_counts_with_a_fifo_at_the_ledger_return_at_once(tmp_path):
    q = make_queue(tmp_path)
    q.submit([task("a")], T0)
    ledger = q.paths.tasks / "ledger.log"
    if ledger.exists():
        ledger.unlink()
    os.mkfifo(ledger)
    counts = q.counts()
    assert counts.by_state["queue"] == {"cpu": 1}
    assert q.recent("complete", 5) == []


def test_recovery_never_opens_a_fifo_planted_at_a_commit_or_log_name(tmp_path):
    q = make_queue(tmp_path)
    commit = q.paths.complete / "x.json"
    os.mkfifo(commit)
    intent = Intent("complete", "x", T0, commit=q.journal.rel(commit), commit_digest="0" * 64)
    assert q.journal.committed(intent) is False
    log = tmp_path / "fifo.log"
    os.mkfifo(log)
    assert _lines_after(log, 0, 0, lambda raw: None) == set()


def test_a_shell_tasks_output_replaced_by_a_fifo_tails_as_nothing_at_once(tmp_path):
    from engine.handlers.shell import _tail

    out = tmp_path / "galaxy-t1.out"
    os.mkfifo(out)  # the task's own command can do this to its output file
    assert _tail(str(out), 100) == ""


def test_a_config_fifo_is_refused_at_once_by_peek_and_by_cluster_remove(tmp_path, capsys):
    import pytest

    from engine.cli.main import main
    from engine.config_locate import peek_rig_root
    from engine.routing.nodes import NodeConfigError, remove_node

    cfg = tmp_path / "galaxy.toml"
    os.mkfifo(cfg)
    assert peek_rig_root(cfg) is None
    with pytest.raises(NodeConfigError, match="FIFO"):
        remove_node(cfg, "n1")
    assert main(["--config", str(cfg), "cluster", "remove", "n1"]) == 1
    assert "FIFO" in capsys.readouterr().out


def test_the_metrics_feed_never_opens_a_fifo_swapped_in_for_the_event_log(tmp_path):
    from engine.metrics.feed import EventFeed

    events = tmp_path / "events.jsonl"
    events.write_text('{"timestamp":"2026-01-01T00:00:00Z","event_type":"task_submitted","task_id":"a"}\n')
    feed = EventFeed(events)  # remembers where the log ended; seeds from before that on the first update
    events.unlink()
    os.mkfifo(events)
    feed.update(T0 + 60)  # returns at once: the FIFO is refused, the counts stay as they were


def test_galaxy_up_log_tail_of_a_fifo_is_empty_at_once(tmp_path):
    from engine.cli.cmd_tui import _log_tail

    os.mkfifo(tmp_path / "supervisor.out")
    assert _log_tail(tmp_path / "supervisor.out") == ""
    (tmp_path / "supervisor.log").write_text("".join(f"line {i}\n" for i in range(100)))
    assert _log_tail(tmp_path / "supervisor.log", 3) == "line 97\nline 98\nline 99"


def test_a_pid_file_planted_as_a_link_is_never_truncated_through(tmp_path):
    import pytest

    from engine.supervisor.pidfile import PidFile, UnsafePidFile

    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    pid_path = tmp_path / "state" / "supervisor.pid"
    pid_path.parent.mkdir()
    os.symlink(outside, pid_path)
    with pytest.raises(UnsafePidFile, match="is a symlink"):
        PidFile(pid_path).acquire(pid=4242)
    assert outside.read_text() == "keep me\n"
    pid_path.unlink()
    os.mkfifo(pid_path)
    with pytest.raises(UnsafePidFile, match="not a regular file"):
        PidFile(pid_path).acquire(pid=4242)


def test_the_training_log_and_queue_markers_never_write_through_a_planted_link(tmp_path):
    import pytest

    from engine.escalation.training_log import TrainingSampleLog
    from engine.queue.fsops import REAL_FS, WriteError

    outside = tmp_path / "outside"
    outside.mkdir()
    log = tmp_path / "training.jsonl"
    os.symlink(outside / "stolen.jsonl", log)  # dangling: a plain O_CREAT would create it outside
    with pytest.raises(OSError, match="symlink"):
        TrainingSampleLog(log).record(task("t1"), prompt="p", response="r", outcome="ok", at=T0)
    marker = tmp_path / "marker"
    os.symlink(outside / "made.txt", marker)
    with pytest.raises(WriteError):
        REAL_FS.touch(marker)
    assert os.listdir(outside) == []


def _bad_command_dir(tmp_path):
    commands = tmp_path / "commands"
    commands.mkdir()
    (commands / "000-bad.json").write_text("{not json")
    return commands


def test_a_rejected_commands_reason_is_never_written_through_a_planted_link(tmp_path):
    from engine.audit import FileAuditLog
    from engine.commands import FileCommandChannel
    from engine.supervisor.command_processor import CommandProcessor

    commands = _bad_command_dir(tmp_path)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    (commands / "rejected").mkdir()
    os.symlink(outside, commands / "rejected" / "000-bad.json.reason.txt")
    proc = CommandProcessor(FileCommandChannel(commands), FileAuditLog(tmp_path / "audit.jsonl"))
    [ack] = proc.process(now=10.0)
    assert ack.outcome == "refused" and outside.read_text() == "keep me\n"
    assert "JSON" in (commands / "rejected" / "000-bad.json.reason.txt").read_text()  # a file of its own now


def test_a_rejected_folder_that_is_a_link_out_of_the_root_receives_nothing(tmp_path):
    from engine.audit import FileAuditLog
    from engine.commands import FileCommandChannel
    from engine.escalation.store import EscalationStore
    from engine.supervisor.command_processor import CommandProcessor

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    commands = _bad_command_dir(tmp_path)
    os.symlink(elsewhere, commands / "rejected")
    proc = CommandProcessor(FileCommandChannel(commands), FileAuditLog(tmp_path / "audit.jsonl"))
    [ack] = proc.process(now=10.0)
    assert ack.outcome == "refused" and proc.process(now=11.0) == []  # refused once, not re-read
    esc = tmp_path / "esc"
    esc.mkdir()
    (esc / "e1.json").write_text("{not json")
    os.symlink(elsewhere, esc / "rejected")
    store = EscalationStore(esc)
    assert store.get("e1") is None
    assert os.listdir(elsewhere) == []


def test_a_state_marker_is_never_written_through_a_link_planted_at_a_temp_name(tmp_path):
    from engine.service import MARKER, read_marker, write_marker

    state = tmp_path / "state"
    state.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    os.symlink(outside, state / f".{MARKER}.tmp")  # the fixed temp name the marker was once written through
    write_marker(state, MARKER, {"unit": "galaxy.service"})
    assert outside.read_text() == "keep me\n"
    assert read_marker(state, MARKER) == {"unit": "galaxy.service"}
