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
