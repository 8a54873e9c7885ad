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
