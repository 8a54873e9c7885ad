"""A running shell task's output streams: the handler reports its output tail while the command
runs, a real worker publishes it in its status file, and `galaxy task show` (and --follow) print
it. The commands wait on gate files, so "still running" is a fact of the test, not a timing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from queue_helpers import T0, make_queue, task
from worker_doubles import RecordingResidency

from engine.cli.cmd_task import follow
from engine.cli.main import main
from engine.clock import SystemClock
from engine.events import EventLog
from engine.handlers.base import TaskContext
from engine.handlers.registry import HandlerRegistry
from engine.handlers.shell import ShellHandler
from engine.model import Task, TaskStatus
from engine.scheduling.policy import WorkerProfile
from engine.task_report import load_report, new_output
from engine.textsafe import terminal_safe
from engine.worker.loop import Worker, WorkerSettings
from engine.workerstate import read_status


def _until(cond, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def _gated(tmp_path: Path) -> tuple[str, Path, Path]:
    """Prints 'first', waits for go1, prints 'second', waits for go2, prints 'third'."""
    go1, go2 = tmp_path / "go1", tmp_path / "go2"
    wait = "until [ -e {} ]; do sleep 0.02; done"
    return (f"echo first; {wait.format(go1)}; echo second; {wait.format(go2)}; echo third", go1, go2)


def test_the_shell_handler_reports_its_growing_output_while_the_command_runs(tmp_path: Path) -> None:
    command, go1, go2 = _gated(tmp_path)
    reports: list[str | None] = []
    ctx = TaskContext(worker_id="w1", gpu_ids=(), env={}, workdir=str(tmp_path), deadline=time.time() + 60,
                      report_progress=lambda text, tps: reports.append(text))
    done: list[str] = []
    runner = threading.Thread(target=lambda: done.append(
        ShellHandler(tail_every_s=0.05).run(Task(task_id="t", name="t", command=command), ctx).output_tail))
    runner.start()
    try:
        _until(lambda: reports and reports[-1] == "first\n", "the first line reported")
        assert runner.is_alive()
        go1.touch()
        _until(lambda: reports[-1] == "first\nsecond\n", "the tail grew")
        assert runner.is_alive() and not done
    finally:
        go1.touch()
        go2.touch()
        runner.join(timeout=30)
    assert done == ["first\nsecond\nthird\n"]
    assert len(reports) == len(set(reports)), "a tail is reported only when the output grew"


def test_a_real_worker_streams_a_shell_tasks_tail_to_its_status_and_task_show(tmp_path: Path, capsys) -> None:
    command, go1, go2 = _gated(tmp_path)
    q = make_queue(tmp_path)
    q.submit([task("live", name="job[intro]", command=command, max_retries=0)], T0)
    worker = Worker(q, HandlerRegistry(), RecordingResidency(), SystemClock(), q.paths, EventLog(q.paths.events),
                    "w1", (0,), WorkerProfile("w1"), WorkerSettings(exit_when_idle=True, housekeeping_s=0.0))
    thread = threading.Thread(target=worker.run)
    thread.start()

    def progress() -> str:
        status = read_status(q.paths.worker_status("w1"))
        return (status.progress or "") if status is not None and status.current_task == "live" else ""

    try:
        _until(lambda: progress() == "first\n", "the worker's status carries the first line")
        assert main(["--root", str(tmp_path), "task", "show", "live"]) == 0
        out = capsys.readouterr().out
        assert "state  running" in out and out.endswith("output tail (live):\n  first\n")
        go1.touch()
        _until(lambda: progress() == "first\nsecond\n", "the status tail grows while the task runs")
        assert q.get("live").status is TaskStatus.PROCESSING  # go2 is not there: it cannot have ended
        report = load_report(q, q.paths, "live")
        assert report is not None and report.output_live and report.output_tail == "first\nsecond\n"
        assert follow(report, lambda: load_report(q, q.paths, "live"), lambda s: _release(go2), every_s=0.0) == 0
        out = capsys.readouterr().out
        assert out.count("first\n") == 1 and out.count("second\n") == 1 and "third" in out and "-- complete" in out
    finally:
        go1.touch()
        go2.touch()
        thread.join(timeout=30)
    assert q.get("live").status is TaskStatus.COMPLETE
    assert main(["--root", str(tmp_path), "task", "show", "live", "--follow"]) == 0  # ended: prints, returns
    assert "first\nsecond\nthird\n" in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "task", "show", "live", "--follow", "--json"]) == 2
    q.close()


def _release(gate: Path) -> None:
    gate.touch()
    time.sleep(0.05)


def test_a_sliding_tail_adds_only_what_is_new_and_says_when_it_lost_some() -> None:
    lines = "".join(f"line {i:04d}\n" for i in range(400))
    old, new = lines[1000:3000], lines[1100:3100]
    assert new_output(old, new) == (lines[3000:3100], False)
    assert new_output("", "abc") == ("abc", False) and new_output("abc", "abc") == ("", False)
    assert new_output(lines[:2000], lines[2500:4500]) == (lines[2500:4500], True)


def test_output_is_shown_without_terminal_escapes() -> None:
    raw = "\x1b[31mred\x1b[0m [bold]x[/]\r\n10%\r20%\x07\x1b]0;title\x07done\x00"
    assert terminal_safe(raw) == "red [bold]x[/]\n10%\n20%\ufffddone\ufffd"
