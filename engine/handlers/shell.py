"""Shell tasks: ``bash -c`` in its own process group, so a timeout, a stop or the end of
the task kills the whole tree (a python script and everything it started), not just bash.

The group is the task: what the command leaves running in it when its shell exits is
killed too, and the worker records the group before the command runs, so a dead worker's
task is killed by whoever finds the worker gone (engine.taskgroups). A process that leaves
the group on purpose (``setsid``) is outside this guarantee.

Captures return code, elapsed seconds and the tail of the combined output. Output goes
to a temp file rather than a pipe, so a chatty command never blocks on a full pipe and
memory stays flat whatever it prints. While the command runs, the thread that waits on it
reads the file's last bytes (bounded) at most every ``TAIL_EVERY_S`` when it grew and hands
them to ``ctx.report_progress``: the dashboard and ``galaxy task show`` stream them live.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from engine import safeio
from engine.fdwait import readable
from engine.handlers.base import HandlerResult, TaskContext, TaskFailure
from engine.model import ERROR_SNIPPET_CHARS, OUTPUT_TAIL_CHARS, Task

POLL_S = 0.1
TAIL_EVERY_S = 0.75  # live output tail; above the worker's own publish limit, so none is dropped
KILL_GRACE_S = 3.0
OUT_PREFIX, OUT_SUFFIX = "galaxy-", ".out"  # engine.taskgroups removes only files named so


def _tail(path: str, limit: int) -> str:
    """The end of the task's output file; "" if the task replaced it with a FIFO or a link (never blocks)."""
    try:
        with os.fdopen(safeio.open_regular(path, 1 << 62), "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - limit * 4))
            return fh.read().decode(errors="replace")[-limit:]
    except (OSError, safeio.UnsafeFileError):
        return ""


_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
_DIE_WITH_WORKER: tuple[str, ...] = (_SETPRIV, "--pdeathsig", "KILL") if _SETPRIV else ()
"""``setpriv --pdeathsig`` (util-linux) makes the task's first shell die with its worker.
Its children do not get that signal; they are reached through the process group, which the
worker records before the command runs (``TaskContext.on_process_group``)."""

_GATE = 'IFS= read -r _ || exit 111; exec "$0" -c "$1" </dev/null'
"""The shell waits for one line on stdin before it runs the task's command: the worker writes
it only after the group is recorded, so no process of the task ever runs unrecorded. If the
worker dies first, the pipe closes (or pdeathsig fires) and nothing of the task has run."""


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Exit:
    """Waits for the leader's exit without reaping it: while it is an unreaped zombie its pid
    (the group id) cannot be reused, so a last ``killpg`` reaches only the task's leftovers."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self.fd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.fd = None

    def wait(self, timeout_s: float) -> bool:
        if self.fd is not None:
            return bool(readable([self.fd], timeout_s))
        deadline = time.monotonic() + timeout_s
        delay = 0.0005
        while True:
            if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _kill_group(pgid: int, leader: _Exit) -> None:
    """SIGTERM the group, then SIGKILL it after a short grace (or at once if the leader went)."""
    _signal_group(pgid, signal.SIGTERM)
    leader.wait(KILL_GRACE_S)
    _signal_group(pgid, signal.SIGKILL)
    leader.wait(5.0)


def _end(proc: subprocess.Popen[bytes], leader: _Exit) -> int:
    """The leader has exited: kill what it left running in its group, then reap it."""
    _signal_group(proc.pid, signal.SIGKILL)
    leader.close()
    return proc.wait()


class _LiveTail:
    """Reports the growing output's tail while the command runs: one ``stat`` per interval,
    and a bounded read (``_tail``) only when the file grew since the last report."""

    def __init__(self, path: str, ctx: TaskContext, every_s: float) -> None:
        self.path, self.ctx, self.every_s = path, ctx, every_s
        self.size = 0
        self.errors = 0
        self.last = time.monotonic()

    def maybe_report(self) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return
        if size == self.size:
            return
        self.size = size
        try:
            self.ctx.report_progress(_tail(self.path, OUTPUT_TAIL_CHARS), None)
        except Exception:  # noqa: BLE001 - the live tail is advisory: the task and its group go on
            self.errors += 1


class ShellHandler:
    """Runs ``task.command``; raises TaskFailure (retryable) on non-zero exit or timeout."""

    def __init__(self, shell: str = "/bin/bash", poll_s: float = POLL_S, tail_every_s: float = TAIL_EVERY_S) -> None:
        self.shell = shell
        self.poll_s = poll_s
        self.tail_every_s = tail_every_s

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
        out = tempfile.NamedTemporaryFile(prefix=f"{OUT_PREFIX}{task.task_id[:40]}-", suffix=OUT_SUFFIX, delete=False)
        started = time.monotonic()
        timeout_at = started + task.timeout_s
        try:
            try:
                proc = subprocess.Popen([*_DIE_WITH_WORKER, self.shell, "-c", _GATE, self.shell, task.command],
                                        stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env,
                                        cwd=workdir, start_new_session=True)
            except OSError as exc:  # no such shell, a command too long for execve: retrying cannot help
                raise TaskFailure(f"cannot start {self.shell}: {exc}", retryable=False) from None
            finally:
                out.close()
            leader = _Exit(proc.pid)
            rc, timed_out, stopped = self._supervise(proc, leader, ctx, out.name, timeout_at)
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

    def _supervise(self, proc: subprocess.Popen[bytes], leader: _Exit, ctx: TaskContext, out_path: str,
                   timeout_at: float) -> tuple[int, bool, bool]:
        """Record the group, open the gate, wait; returns (rc, timed_out, stopped)."""
        assert proc.stdin is not None
        try:
            ctx.on_process_group(proc.pid, out_path)
        except Exception as exc:  # noqa: BLE001 - an unrecorded group must not run the command
            proc.stdin.close()
            _kill_group(proc.pid, leader)
            _end(proc, leader)
            raise TaskFailure(f"could not record the task's process group: {type(exc).__name__}: {exc}") from None
        try:
            proc.stdin.write(b"go\n")
            proc.stdin.close()
        except OSError:  # the shell is already gone (killed from outside): its exit code says so
            pass
        timed_out = stopped = False
        live = _LiveTail(out_path, ctx, self.tail_every_s)
        while not leader.wait(self.poll_s):
            live.maybe_report()
            if time.monotonic() >= timeout_at:
                timed_out = True
            elif ctx.should_stop():
                stopped = True
            if timed_out or stopped:
                _kill_group(proc.pid, leader)
                break
        return _end(proc, leader), timed_out, stopped
