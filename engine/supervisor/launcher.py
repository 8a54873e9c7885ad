"""Starting worker processes: the ``ProcessLauncher`` protocol, the real subprocess
launcher, and an in-repo double.

The field notes are emphatic that ``CUDA_VISIBLE_DEVICES`` and ``LD_LIBRARY_PATH`` must be
set before Python starts (CUDA libraries read them at import time), so they go into the
child's environment here, never into ``os.environ`` of a running worker.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from engine import safeio
from engine.config import GroupConfig
from engine.proctable import FakeProcessTable, HostProcessTable

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LaunchSpec:
    worker_id: str
    argv: tuple[str, ...]
    env: dict[str, str]
    log_path: Path | None = None  # stdout+stderr of the child; None discards them
    cwd: Path | None = None


class ProcessHandle(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def instance(self) -> str | None:
        """The process instance its claims carry (engine.proctable); None when unknown."""
        ...

    def poll(self) -> int | None:
        """The exit code once the process has exited (negative: killed by that signal)."""
        ...

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM): the worker finishes or hands back its task."""
        ...

    def kill(self) -> None: ...


class ProcessLauncher(Protocol):
    def spawn(self, spec: LaunchSpec) -> ProcessHandle: ...


def worker_env(group: GroupConfig, base: Mapping[str, str] | None = None, *,
               lease_s: float | None = None, store: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the parent's, plus the group's GPUs and libraries.

    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes CUDA number cards as NVML and nvidia-smi do;
    without it "GPU 1" in galaxy.toml may be a different card inside the worker.
    """
    env = dict(os.environ if base is None else base)
    env.update(group.env)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["CUDA_VISIBLE_DEVICES"] = group.cuda_visible_devices
    if group.ld_library_path:
        prev = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = group.ld_library_path + (f":{prev}" if prev else "")
    py_path = env.get("PYTHONPATH")
    if str(_REPO_ROOT) not in (py_path or "").split(os.pathsep):
        env["PYTHONPATH"] = str(_REPO_ROOT) + (os.pathsep + py_path if py_path else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["GALAXY_WORKER_ROLE"] = group.role
    env["GALAXY_PREFERRED_CLASSES"] = ",".join(group.preferred_classes)
    if lease_s is not None:
        env["GALAXY_LEASE_S"] = f"{lease_s:g}"
    if group.models:
        env["GALAXY_WORKER_MODELS"] = models_json(group)
    env.update(store or {})  # the supervisor's store, cluster and rig name (engine.store.open.store_env)
    return env


def models_json(group: GroupConfig) -> str:
    """The group's ``models`` table (kind or name -> model name or path) as compact JSON."""
    return json.dumps(dict(group.models), sort_keys=True, separators=(",", ":"))


def worker_argv(group: GroupConfig, root: Path, *, endpoint: str | None = None, backend: str | None = None,
                lease_s: float | None = None, grace_s: float | None = None,
                python: str | None = None) -> tuple[str, ...]:
    """``python -m engine.cli.main --root ROOT worker --worker-id ID --gpu 0,3 ...`` (galaxy worker's flags).

    Role, preferred classes, lease and the group's ``models`` table are also in the
    environment (``worker_env``) for workers that are not ``galaxy worker``."""
    argv = [python or sys.executable, "-m", "engine.cli.main", "--root", str(root), "worker",
            "--worker-id", group.name]
    if group.gpus:
        argv += ["--gpu", ",".join(str(g) for g in group.gpus)]
    if group.preferred_classes:
        argv += ["--prefer", ",".join(group.preferred_classes)]
    argv += ["--executor", group.role]
    be = backend or group.backend
    ep = endpoint or group.endpoint
    if be == "router":
        argv += ["--backend", "router"]  # routes across the nodes the snapshot publishes
    elif be != "none" and ep:
        argv += ["--backend", be, "--endpoint", ep]
    if lease_s is not None:
        argv += ["--lease", f"{lease_s:g}"]
    if grace_s is not None:
        argv += ["--grace", f"{grace_s:g}"]
    if group.models:
        argv += ["--models", models_json(group)]
    return tuple(argv)


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if the supervisor dies, so no orphan keeps claiming."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _PopenHandle:
    def __init__(self, proc: subprocess.Popen[bytes], log: IO[bytes] | None) -> None:
        self._proc, self._log = proc, log
        self._instance = HostProcessTable().instance_of(proc.pid)  # start time is set at fork: valid now

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def instance(self) -> str | None:
        return self._instance

    def poll(self) -> int | None:
        code = self._proc.poll()
        if code is not None and self._log is not None:
            self._log.close()
            self._log = None
        return code

    def terminate(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()


class SubprocessLauncher:
    """Real child processes, stdout/stderr appended to the worker's log file."""

    def spawn(self, spec: LaunchSpec) -> ProcessHandle:
        log: IO[bytes] | None = None
        if spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            try:  # never through a symlink or into a FIFO planted at the name (safeio.open_append)
                fd = safeio.open_append(spec.log_path)
            except safeio.RefusedLogError as exc:  # the worker still runs; its output is discarded
                logging.getLogger(__name__).warning("worker output discarded: %s", exc)
            else:
                os.set_blocking(fd, True)
                log = os.fdopen(fd, "ab")
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        proc = subprocess.Popen(list(spec.argv), env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                                stdout=log if log else subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=preexec)
        return _PopenHandle(proc, log)


# ---------------------------------------------------------------- test double

@dataclass
class FakeProcess:
    """A process that exits when told to; records the signals it was sent."""

    pid: int
    spec: LaunchSpec
    exit_code: int | None = None
    signals: list[str] = field(default_factory=list)
    exit_on_terminate: int | None = 0  # None: ignores SIGTERM (a stuck worker)
    instance: str | None = None
    table: FakeProcessTable | None = None  # when given, the process lives in it until it exits

    def poll(self) -> int | None:
        return self.exit_code

    def terminate(self) -> None:
        self.signals.append("TERM")
        if self.exit_code is None and self.exit_on_terminate is not None:
            self.exit(self.exit_on_terminate)

    def kill(self) -> None:
        self.signals.append("KILL")
        if self.exit_code is None:
            self.exit(-9)

    def exit(self, code: int) -> None:
        self.exit_code = code
        if self.table is not None:
            self.table.procs.pop(self.pid, None)


class FakeLauncher:
    """Records every spawn and hands back ``FakeProcess`` objects the test drives."""

    def __init__(self, first_pid: int = 40_000, table: FakeProcessTable | None = None) -> None:
        self.spawned: list[FakeProcess] = []
        self._next = first_pid
        self.table = table

    def spawn(self, spec: LaunchSpec) -> ProcessHandle:
        self._next += 1
        instance = self.table.add(self._next, start=7) if self.table is not None else None
        proc = FakeProcess(pid=self._next, spec=spec, instance=instance, table=self.table)
        self.spawned.append(proc)
        return proc

    def for_worker(self, worker_id: str) -> Sequence[FakeProcess]:
        return [p for p in self.spawned if p.spec.worker_id == worker_id]
