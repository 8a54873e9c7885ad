"""The host's process table: process instances and task process groups.

Why instances: a pid alone is reused, so a claim names its process as
``PID.START.BOOT.HOST`` (the start time in clock ticks since boot from ``/proc/PID/stat``,
8 hex digits of the kernel's boot id and of the host name); anyone on the same host can
then tell whether that very process still lives, a process of an earlier boot is known
dead, and a pid from another host sharing the root is never looked up here. Why groups: a task's shell and everything it
starts share one process group; killing the group is the only way to stop a compound
command's children once the worker that started them is gone.

``HostProcessTable`` reads ``/proc`` (Linux); ``FakeProcessTable`` is the in-repo double.
Elsewhere liveness is unknown (``None``) and callers fall back to lease expiry.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Protocol

_PROC = "/proc"
KILL_WAIT_S = 2.0  # how long kill_group waits for the group's members to be gone


@dataclass(frozen=True)
class Instance:
    pid: int
    start: int
    boot: str = ""  # "" when unknown: then the instance counts as this boot's
    host: str = ""  # "" when unknown: then the instance counts as this host's

    def token(self) -> str:
        return ".".join(x for x in (str(self.pid), str(self.start), self.boot, self.host) if x)


def parse_instance(token: str) -> Instance | None:
    """``"PID.START[.BOOT[.HOST]]"`` -> Instance; None for a legacy "", a random nonce, junk."""
    parts = token.split(".")
    if not 2 <= len(parts) <= 4 or not all(p.isdigit() for p in parts[:2]) or len(parts[0]) > 10 \
            or len(parts[1]) > 20 or not all(p.isalnum() and len(p) <= 16 for p in parts[2:]):
        return None
    return Instance(int(parts[0]), int(parts[1]), *parts[2:])


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _boot_id() -> str:
    try:
        with open(f"{_PROC}/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return _short_hash(fh.read().strip())
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and ')')."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            raw = fh.read(4096)
    except OSError:
        return None
    end = raw.rfind(b")")
    return raw[end + 2:].decode("ascii", "replace").split() if end > 0 else None


class ProcessTable(Protocol):
    def start_ticks(self, pid: int) -> int | None:
        """The process's start time (clock ticks since boot); None when it does not exist."""
        ...

    def instance_of(self, pid: int) -> str | None:
        """The token naming process ``pid`` now; None when it does not exist."""
        ...

    def instance_alive(self, instance: str) -> bool | None:
        """Is the process named by ``instance`` still running? None when this host cannot tell
        (another host's, a legacy or random token)."""
        ...

    def is_local(self, instance: str) -> bool:
        """Made on this host in this boot, so its pids (and process groups) mean something here."""
        ...

    def group_members(self, pgid: int) -> list[int]:
        """Live (not zombie) processes in process group ``pgid``."""
        ...

    def kill_group(self, pgid: int, leader_start: int | None) -> list[int]:
        """SIGKILL group ``pgid`` if it is the one whose leader started at ``leader_start``,
        and wait (briefly) until its members are gone. Returns the pids still alive."""
        ...


class HostProcessTable:
    """The real table, from /proc (Linux)."""

    def __init__(self, kill_wait_s: float = KILL_WAIT_S) -> None:
        self.kill_wait_s = kill_wait_s
        self.available = os.path.isdir(f"{_PROC}/self")
        self.boot = _boot_id()
        self.host = _short_hash(socket.gethostname())

    def instance_of(self, pid: int) -> str | None:
        start = self.start_ticks(pid)
        return None if start is None else Instance(pid, start, self.boot, self.host).token()

    def is_local(self, instance: str) -> bool:
        inst = parse_instance(instance)
        return inst is not None and self.available and inst.host in ("", self.host) and inst.boot in ("", self.boot)

    def start_ticks(self, pid: int) -> int | None:
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 20:
            return None
        if fields[0] == "Z":
            return None  # a zombie runs nothing: for every caller here it is gone
        try:
            return int(fields[19])  # field 22 of stat(5); fields here start at field 3
        except ValueError:
            return None

    def instance_alive(self, instance: str) -> bool | None:
        inst = parse_instance(instance)
        if inst is None or not self.available or inst.host not in ("", self.host):
            return None
        if inst.boot not in ("", self.boot):
            return False  # this host, an earlier boot: long gone
        return self.start_ticks(inst.pid) == inst.start

    def group_members(self, pgid: int) -> list[int]:
        out: list[int] = []
        try:
            names = os.listdir(_PROC)
        except OSError:
            return out
        for name in names:
            if not name.isdigit():
                continue
            fields = _stat_fields(int(name))
            if fields and len(fields) > 2 and fields[0] != "Z" and fields[2] == str(pgid):
                out.append(int(name))
        return out

    def kill_group(self, pgid: int, leader_start: int | None) -> list[int]:
        if pgid <= 1 or pgid == os.getpgrp():
            return []  # never our own group, never init's
        start = self.start_ticks(pgid)
        if start is not None and leader_start is not None and start != leader_start:
            # Another process now has this pid; the kernel reuses a pid only once no process
            # has it as its group, so our group is already empty.
            return []
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return []
        deadline = time.monotonic() + self.kill_wait_s
        while True:
            alive = self.group_members(pgid)
            if not alive or time.monotonic() >= deadline:
                return alive
            time.sleep(0.01)


_current: tuple[int, str] | None = None


def current_instance(table: ProcessTable | None = None) -> str:
    """This process's instance token (recomputed after a fork)."""
    global _current
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        token = (table or HostProcessTable()).instance_of(pid)
        # Without /proc: a random nonce, unique but not checkable (liveness falls back to leases).
        _current = (pid, token or f"{pid}.r{secrets.token_hex(6)}")
    return _current[1]


@dataclass
class FakeProcessTable:
    """The double: processes are (pid -> start, pgid); killing a group removes its members."""

    procs: dict[int, tuple[int, int]] = field(default_factory=dict)
    killed_groups: list[int] = field(default_factory=list)
    foreign_hosts: frozenset[str] = frozenset({"other"})  # "PID.START.BOOT.other": another host's process

    def add(self, pid: int, start: int, pgid: int | None = None) -> str:
        self.procs[pid] = (start, pid if pgid is None else pgid)
        return f"{pid}.{start}"

    def start_ticks(self, pid: int) -> int | None:
        p = self.procs.get(pid)
        return p[0] if p else None

    def instance_of(self, pid: int) -> str | None:
        start = self.start_ticks(pid)
        return None if start is None else f"{pid}.{start}"

    def instance_alive(self, instance: str) -> bool | None:
        inst = parse_instance(instance)
        if inst is None or inst.host in self.foreign_hosts:
            return None
        return self.start_ticks(inst.pid) == inst.start

    def is_local(self, instance: str) -> bool:
        inst = parse_instance(instance)
        return inst is not None and inst.host not in self.foreign_hosts

    def group_members(self, pgid: int) -> list[int]:
        return sorted(pid for pid, (_, g) in self.procs.items() if g == pgid)

    def kill_group(self, pgid: int, leader_start: int | None) -> list[int]:
        start = self.start_ticks(pgid)
        if start is not None and leader_start is not None and start != leader_start:
            return []
        members = self.group_members(pgid)
        if members:
            self.killed_groups.append(pgid)
        for pid in members:
            del self.procs[pid]
        return []
