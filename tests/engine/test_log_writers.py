"""A symlink or FIFO planted at a log path (events, audit, ledger, process logs, a worker's .out)
never redirects or blocks its writer: the line is lost and counted with a reason naming the
path (or the log goes to stderr), and the writer goes on. Rotation never truncates a link's target."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time

import pytest

from engine import safeio
from engine.audit import FileAuditLog
from engine.event_types import EventType
from engine.events import EventLog, FileEventStream, tail_events
from engine.logsetup import EventsRotator, rotate_if_over, rotated_rest, setup_logging
from engine.queue.fsops import REAL_FS, WriteError
from engine.supervisor.launcher import LaunchSpec, SubprocessLauncher


def _plant_link(path, tmp_path):
    """A symlink at ``path`` to a file outside the root that must stay untouched."""
    outside = tmp_path / "outside" / "victim.txt"
    outside.parent.mkdir()
    outside.write_text("untouched\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, path)
    return outside


def _fifo_with_reader(path):
    """A FIFO at ``path`` with a reader, so a plain open for writing would succeed and write into it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


def _nothing_written(reader: int) -> bool:
    try:
        return os.read(reader, 4096) == b""
    except BlockingIOError:
        return True


def test_an_event_log_symlink_is_not_followed_and_the_writer_goes_on(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"
    outside = _plant_link(path, tmp_path)
    stream = FileEventStream(path)
    log = EventLog(path, stream=stream)
    log.emit(EventType.TASK_COMPLETED, task_id="t1")
    assert outside.read_text() == "untouched\n"
    assert log.write_errors == 1 and str(path) in stream.last_error and "symlink" in stream.last_error
    os.unlink(path)
    log.emit(EventType.TASK_COMPLETED, task_id="t2")  # the refused descriptor was dropped: this one reopens
    log.emit(EventType.TASK_COMPLETED, task_id="t3")
    assert [e["task_id"] for e in tail_events(path)] == ["t2", "t3"]
    assert stream.last_error == ""


def test_an_event_log_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"
    reader = _fifo_with_reader(path)
    try:
        stream = FileEventStream(path)
        log = EventLog(path, stream=stream)
        log.emit(EventType.TASK_COMPLETED, task_id="t1")
        assert _nothing_written(reader)
        assert log.write_errors == 1 and "is a FIFO" in stream.last_error
    finally:
        os.close(reader)
    log.emit(EventType.TASK_COMPLETED, task_id="t2")  # no reader now: the open itself must not block
    assert log.write_errors == 2 and str(path) in stream.last_error


def test_a_log_replaced_by_a_symlink_while_open_is_not_followed(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"
    stream = FileEventStream(path)
    log = EventLog(path, stream=stream)
    log.emit(EventType.TASK_COMPLETED, task_id="t1")
    os.unlink(path)
    outside = _plant_link(path, tmp_path)
    stream._checked_at = float("-inf")  # the periodic "still the named file?" check is due
    log.emit(EventType.TASK_COMPLETED, task_id="t2")
    assert outside.read_text() == "untouched\n" and log.write_errors == 1


def test_tail_events_of_a_fifo_returns_nothing_at_once(tmp_path):
    path = tmp_path / "events.jsonl"
    os.mkfifo(path)  # no writer: a blocking open for reading would wait forever
    assert tail_events(path) == []


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_the_escalation_audit_log_refuses_a_planted_file(tmp_path, kind):
    path = tmp_path / "logs" / "audit.jsonl"
    audit = FileAuditLog(path)
    if kind == "symlink":
        outside = _plant_link(path, tmp_path)
        audit({"kind": "escalation_decision", "escalation_id": "e1"})
        assert outside.read_text() == "untouched\n"
    else:
        reader = _fifo_with_reader(path)
        try:
            audit({"kind": "escalation_decision", "escalation_id": "e1"})
            assert _nothing_written(reader)
        finally:
            os.close(reader)
    assert audit.errors == 1 and str(path) in audit.last_error
    os.unlink(path)
    audit({"kind": "escalation_decision", "escalation_id": "e2"})
    assert [json.loads(line)["escalation_id"] for line in path.read_text().splitlines()] == ["e2"]


def test_a_ledger_append_through_a_planted_symlink_is_a_write_error_naming_the_file(tmp_path):
    path = tmp_path / "tasks" / "ledger.log"
    outside = _plant_link(path, tmp_path)
    with pytest.raises(WriteError) as info:
        REAL_FS.append_line(path, b"x C 1 t1\n")
    assert str(path) in str(info.value)
    assert outside.read_text() == "untouched\n"


def test_open_append_creates_a_regular_file_and_refuses_a_directory(tmp_path):
    fd = safeio.open_append(tmp_path / "new.log")
    os.close(fd)
    assert (tmp_path / "new.log").is_file()
    (tmp_path / "dir.log").mkdir()
    with pytest.raises(safeio.RefusedLogError, match=r"dir\.log"):
        safeio.open_append(tmp_path / "dir.log")


# ---------------------------------------------------------------- process logs (logsetup, launcher)
@pytest.fixture
def _restore_root_logger():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)


def test_a_process_log_planted_as_a_symlink_sends_the_log_to_stderr(tmp_path, _restore_root_logger):
    path = tmp_path / "logs" / "supervisor.log"
    outside = _plant_link(path, tmp_path)
    err = io.StringIO()
    handler = setup_logging(log_file=path, stream=err)
    logging.getLogger("galaxy.test").warning("hello")
    assert outside.read_text() == "untouched\n"
    assert isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    assert "log file refused" in err.getvalue() and str(path) in err.getvalue() and "hello" in err.getvalue()


def test_a_process_log_planted_as_a_fifo_is_refused_without_blocking(tmp_path, _restore_root_logger):
    path = tmp_path / "w.log"
    reader = _fifo_with_reader(path)  # with a reader a plain open succeeds; without one it blocks forever
    try:
        err = io.StringIO()
        setup_logging(log_file=path, stream=err)
        logging.getLogger("galaxy.test").warning("hello")
        assert _nothing_written(reader)
        assert "is a FIFO" in err.getvalue() and "hello" in err.getvalue()
    finally:
        os.close(reader)


def test_rotating_never_truncates_what_a_planted_link_points_at(tmp_path):
    outside = tmp_path / "outside" / "precious.txt"
    outside.parent.mkdir()
    outside.write_text("x" * 5000)
    link = tmp_path / "worker.out"
    os.symlink(outside, link)
    assert rotate_if_over(link, 1000, 0) is False  # 0 backups would truncate in place
    rotator = EventsRotator(link, 1000, 0)
    assert rotator.tick(0.0) is False
    assert outside.read_text() == "x" * 5000


def test_rotated_rest_of_a_planted_fifo_is_empty_at_once(tmp_path):
    events = tmp_path / "events.jsonl"
    os.mkfifo(tmp_path / "events.jsonl.1")  # no writer: a blocking open would wait forever
    assert rotated_rest(events, 1, 0) == b""


def test_a_worker_log_planted_as_a_symlink_is_not_followed_and_the_worker_runs(tmp_path):
    path = tmp_path / "logs" / "workers" / "g0.out"
    outside = _plant_link(path, tmp_path)
    spec = LaunchSpec(worker_id="g0", argv=(sys.executable, "-c", "print('worker says hi')"),
                      env=dict(os.environ), log_path=path)
    handle = SubprocessLauncher().spawn(spec)
    deadline = time.monotonic() + 60
    while handle.poll() is None:
        assert time.monotonic() < deadline, "the worker did not run"
        time.sleep(0.02)
    assert handle.poll() == 0 and outside.read_text() == "untouched\n"


def test_the_supervisor_alerts_while_event_or_audit_lines_are_lost_and_goes_on(tmp_path):
    from engine.clock import FakeClock
    from engine.config import GalaxyConfig, GroupConfig, Thresholds
    from engine.paths import RigPaths
    from engine.queue.filequeue import FileQueue
    from engine.snapshot import read_snapshot
    from engine.supervisor.launcher import FakeLauncher
    from engine.supervisor.supervisor import Supervisor
    from engine.telemetry.sim_rig import SimulatedRig

    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    outside = _plant_link(paths.events, tmp_path)
    cfg = GalaxyConfig(rig="t", groups=(GroupConfig("w1", gpus=(0,)),), source=None, origin="test",
                       thresholds=Thresholds(snapshot_interval_s=0.5, alert_clear_s=30.0))
    queue = FileQueue(paths, use_inotify=False)
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(1, clock=clock), FakeLauncher(), simulated=True,
                     pid=4242)
    try:
        sup.start(clock.now())
        for _ in range(3):
            sup.channels.events.append('{"timestamp":"2026-01-01T00:00:00Z","event_type":"x"}')
            clock.advance(0.5)
            sup.tick(clock.now())
        snap = read_snapshot(paths.snapshot)
        assert snap is not None
        [alert] = [a for a in snap.alerts if a.key == "events_write"]
        assert str(paths.events) in alert.message and "lines lost" in alert.message
        assert outside.read_text() == "untouched\n"
    finally:
        queue.close()
