"""ShellHandler edge cases that need no worker around it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.handlers.base import TaskContext, TaskFailure
from engine.handlers.shell import ShellHandler
from engine.model import Task, TaskClass, TaskType


def test_a_shell_that_cannot_start_fails_the_task_for_good_and_leaks_no_file(tmp_path: Path) -> None:
    task = Task(task_id="t-sh", name="echo", type=TaskType.SHELL, task_class=TaskClass.CPU, command="echo hi")
    ctx = TaskContext(worker_id="w1", gpu_ids=(), env={}, workdir=str(tmp_path), deadline=time.time() + 60)
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(TaskFailure, match="cannot start /no/such/bash") as info:
        ShellHandler(shell="/no/such/bash").run(task, ctx)
    assert info.value.retryable is False
    assert len(os.listdir("/proc/self/fd")) == fds_before, "the output temp file must be closed"


@pytest.mark.skipif(not os.path.exists("/usr/bin/setpriv") or not os.path.isdir("/proc"),
                    reason="needs util-linux setpriv (Linux)")
def test_a_task_dies_with_its_worker_instead_of_holding_the_gpu(tmp_path: Path) -> None:
    """A SIGKILLed worker must not leave its task running (and its VRAM held) while the
    queue hands the task to another worker."""
    import signal
    import subprocess
    import sys

    pidfile = tmp_path / "task.pid"
    script = (
        "import time\n"
        "from engine.handlers.base import TaskContext\n"
        "from engine.handlers.shell import ShellHandler\n"
        "from engine.model import Task\n"
        f"t = Task(task_id='long', name='long', command='echo $$ > {pidfile}; exec sleep 300')\n"
        f"ctx = TaskContext(worker_id='w', gpu_ids=(), env={{}}, workdir='{tmp_path}', deadline=time.time() + 600)\n"
        "ShellHandler().run(t, ctx)\n")
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "task did not start"
        time.sleep(0.05)
    task_pid = int(pidfile.read_text())
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{task_pid}").exists() and "Z" not in _state(task_pid):
        assert time.monotonic() < deadline, "the task outlived its SIGKILLed worker"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def _ctx(tmp_path: Path, on_group=lambda pgid, out: None) -> TaskContext:
    return TaskContext(worker_id="w1", gpu_ids=(), env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                       workdir=str(tmp_path), deadline=time.time() + 60, on_process_group=on_group)


def test_the_command_runs_only_after_its_process_group_is_recorded(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    seen: list[tuple[int, bool, bool]] = []

    def on_group(pgid: int, out_path: str) -> None:
        time.sleep(0.3)  # a slow disk: the command must still wait
        seen.append((pgid, marker.exists(), os.path.exists(out_path)))

    task = Task(task_id="gated", name="g", command=f"touch {marker}; echo $$ $(cut -d' ' -f5 /proc/$$/stat)")
    result = ShellHandler().run(task, _ctx(tmp_path, on_group))
    [(pgid, ran_before, out_existed)] = seen
    assert not ran_before and out_existed and marker.exists()
    pid, group = map(int, result.output_tail.split())
    assert pid == pgid and group == pgid  # the shell that ran the command leads the recorded group


def test_a_group_that_cannot_be_recorded_never_runs_its_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    def on_group(pgid: int, out_path: str) -> None:
        raise OSError(28, "No space left on device")

    task = Task(task_id="unrecorded", name="u", command=f"touch {marker}")
    with pytest.raises(TaskFailure, match="could not record the task's process group"):
        ShellHandler().run(task, _ctx(tmp_path, on_group))
    assert not marker.exists()


def test_what_a_task_leaves_running_in_its_group_is_killed_when_it_ends(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    task = Task(task_id="leaves", name="l", command=f"sleep 300 & echo $! > {pidfile}")
    ShellHandler().run(task, _ctx(tmp_path))
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and _state(child) != "Z":
        assert time.monotonic() < deadline, "the task's background child outlived the task"
        time.sleep(0.02)
