"""Shell tasks: ``bash -c`` in its own process group, so a timeout or a stop kills the
whole tree (a python script and everything it started), not just bash.

Captures return code, elapsed seconds and the tail of the combined output. Output goes
to a temp file rather than a pipe, so a chatty command never blocks on a full pipe and
memory stays flat whatever it prints.
"""

from __future__ import annotations

import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time

from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.model import ERROR_SNIPPET_CHARS, OUTPUT_TAIL_CHARS, Task

POLL_S = 0.1
KILL_GRACE_S = 3.0


def _tail(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - limit * 4))
            return fh.read().decode(errors="replace")[-limit:]
    except OSError:
        return ""


_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
_DIE_WITH_WORKER: tuple[str, ...] = (_SETPRIV, "--pdeathsig", "KILL") if _SETPRIV else ()
"""A task runs in its own session (so a timeout can kill its whole group); without this a
worker that is SIGKILLed would leave the task running on the GPU, holding VRAM, while the
queue hands it to another worker. ``setpriv --pdeathsig`` (util-linux) makes the shell die
with its worker; a simple command that bash execs in place dies with it too."""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group, then SIGKILL whatever is left after a short grace."""
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


class ShellHandler:
    """Runs ``task.command``; raises TaskFailure (retryable) on non-zero exit or timeout."""

    def __init__(self, shell: str = "/bin/bash", poll_s: float = POLL_S) -> None:
        self.shell = shell
        self.poll_s = poll_s

    @property
    def resident_model(self) -> str | None:
        return None

    def release(self) -> None:
        return None

    def run(self, task: Task, ctx: TaskContext) -> HandlerResult:
        if not task.command.strip():
            raise TaskFailure("shell task has an empty command", retryable=False)
        if shutil.which(self.shell) is None:  # setpriv would report it only as an exit code
            raise TaskFailure(f"cannot start {self.shell}: no such executable", retryable=False)
        env = dict(ctx.env)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in ctx.gpu_ids)
        env["GALAXY_TASK_ID"] = task.task_id
        workdir = ctx.workdir if ctx.workdir and os.path.isdir(ctx.workdir) else None
        out = tempfile.NamedTemporaryFile(prefix=f"galaxy-{task.task_id[:40]}-", suffix=".out", delete=False)
        started = time.monotonic()
        timeout_at = started + task.timeout_s
        try:
            try:
                proc = subprocess.Popen([*_DIE_WITH_WORKER, self.shell, "-c", task.command], stdin=subprocess.DEVNULL,
                                        stdout=out,
                                        stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
            except OSError as exc:  # no such shell, a command too long for execve: retrying cannot help
                raise TaskFailure(f"cannot start {self.shell}: {exc}", retryable=False) from None
            finally:
                out.close()
            stopped = timed_out = False
            while True:
                try:
                    rc = proc.wait(timeout=self.poll_s)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() >= timeout_at:
                    timed_out = True
                elif ctx.should_stop():
                    stopped = True
                if timed_out or stopped:
                    _kill_group(proc)
                    rc = proc.returncode if proc.returncode is not None else -9
                    break
            elapsed = time.monotonic() - started
            tail = _tail(out.name, OUTPUT_TAIL_CHARS)
        finally:
            try:
                os.unlink(out.name)
            except OSError:
                pass
        if timed_out:
            raise TaskFailure(f"timed out after {task.timeout_s:g}s; output: {tail[-ERROR_SNIPPET_CHARS:]}",
                              return_code=rc, output_tail=tail)
        if stopped:
            raise TaskFailure("stopped before it finished", return_code=rc, output_tail=tail)
        if rc != 0:
            snippet = tail[-ERROR_SNIPPET_CHARS:] or "(no output)"
            raise TaskFailure(f"exit code {rc}: {snippet}", return_code=rc, output_tail=tail)
        return HandlerResult(
            result={"return_code": rc, "elapsed_s": round(elapsed, 3), "output_tail": tail,
                    "output_lines": tail.count("\n")},
            output_tail=tail,
        )
