"""A real ``redis-server`` for tests and benchmarks: 127.0.0.1, a free port, its own data directory.

Configured as docs/cluster.md recommends (appendonly yes, appendfsync everysec, maxmemory-policy
noeviction). ``RedisServer`` starts it and waits until it answers PING; ``stop()`` ends it (and
only it). ``redis_server`` is a module-scoped pytest fixture; it skips with the reason when the
binary is absent (scripts/test.sh installs Debian's ``redis-server``, so CI runs these tests).

Use it from a test module with ``from tests.support.redis_server import redis_server  # noqa: F401``
or call ``start_redis(tmp_dir)`` directly.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 20.0


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PortTaken(RuntimeError):
    pass


class RedisServer:
    """One redis-server process owned by a test (or a benchmark)."""

    def __init__(self, data_dir: Path, *, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log = self.data_dir / "redis.log"
        self._binary = binary
        self._extra = extra
        for attempt in range(3):
            try:
                self._start()
                return
            except PortTaken:
                if port is not None or attempt == 2:
                    raise
                self.port = free_port()  # another process took the free port in between: another one

    def _start(self) -> None:
        args = [self._binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
                "--save", "", "--daemonize", "no", "--logfile", str(self.log), "--protected-mode", "yes",
                *self._extra]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                if "Address already in use" in err + log:
                    self.stop()
                    raise PortTaken(f"port {self.port} is in use")
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}: "
                                   f"{err.strip()} {log.strip()}")
            try:
                if self.ping():
                    return
            except PortTaken:
                self.stop()
                raise
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {START_TIMEOUT_S:.0f} s")

    def ping(self) -> bool:
        """Does OUR server answer on the port (not another one that holds it)?"""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"INFO server\r\n")
                data = b""
                while b"process_id:" not in data or not data.split(b"process_id:", 1)[1].count(b"\r\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        return False
                    data += chunk
                pid = int(data.split(b"process_id:", 1)[1].split(b"\r\n", 1)[0])
                if pid != self.proc.pid:
                    raise PortTaken(f"port {self.port} is served by another redis-server (pid {pid})")
            # ours; ready once it serves commands: INFO answers while the AOF is replayed, PING says -LOADING
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except (OSError, ValueError):
            return False

    def restart(self) -> None:
        """Start the same server again (same port, same data directory: the AOF is replayed)."""
        self.stop()
        self._start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_redis(data_dir: Path | None = None) -> RedisServer:
    return RedisServer(data_dir or Path(tempfile.mkdtemp(prefix="galaxy-redis-")))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs Debian's redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()
