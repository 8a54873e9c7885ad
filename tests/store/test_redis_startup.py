"""Starting while Redis is down: a worker or supervisor waits (one line per try, a backoff from 1 s to
30 s) and starts when Redis answers; SIGTERM while it waits exits cleanly; only a store that is wrong
(a refused password, a Redis that may evict keys) exits at once (engine/store/startup.py).

The waiting policy is checked on a fake clock. The processes are real (``galaxy worker``, ``galaxy
supervise --sim``) on a real redis-server that is started only after they said they wait. The server
listens on a unix socket made for the test, so no other process can take its address in between (a
free TCP port could be). Waits poll with generous deadlines; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from engine.clock import FakeClock
from engine.model import Task, TaskClass, TaskStatus
from engine.paths import RigPaths
from engine.queue.protocol import StoreUnavailable
from engine.store.outage import RetryPolicy
from engine.store.redis.client import StoreConfigError, check_server, connect
from engine.store.redis.queue import RedisQueue
from engine.store.startup import STARTUP_RETRY, open_when_answering
from tests.support.redis_server import RedisServer, free_port, redis_server_binary

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 120.0
CLUSTER = "startup"

needs_redis = pytest.mark.skipif(redis_server_binary() is None,
                                 reason="redis-server is not installed (scripts/test.sh installs it)")


# ---------------------------------------------------------------- the policy, on a fake clock

class Flaky:
    """An opener that finds the store away ``down`` times, then opens it."""

    def __init__(self, down: int, clock: FakeClock) -> None:
        self.down = down
        self.clock = clock
        self.tried_at: list[float] = []

    def __call__(self) -> str:
        self.tried_at.append(self.clock.now())
        if len(self.tried_at) <= self.down:
            raise StoreUnavailable("Redis did not answer at redis://h:6379/0: Connection refused")
        return "opened"


def test_the_wait_backs_off_from_1_s_to_30_s_and_says_each_try() -> None:
    clock = FakeClock(1_700_000_000.0)
    opener, said = Flaky(8, clock), []
    got = open_when_answering(opener, where="redis://h:6379/0", clock=clock, say=said.append, stop=lambda: False)
    assert got == "opened"
    gaps = [round(b - a, 6) for a, b in zip(opener.tried_at, opener.tried_at[1:], strict=False)]
    assert gaps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert len(said) == 9
    assert said[0].startswith("store redis://h:6379/0 unreachable since ") and "retrying in 1 s (try 1)" in said[0]
    assert "retrying in 30 s (try 8)" in said[7] and "Connection refused" in said[7]
    assert said[8].startswith("store answers again") and said[8].endswith("; starting")
    assert [STARTUP_RETRY.delay_s(n) for n in (1, 5, 6, 50)] == [1.0, 16.0, 30.0, 30.0]


def test_a_store_that_answers_at_once_says_nothing() -> None:
    clock, said = FakeClock(), []
    assert open_when_answering(Flaky(0, clock), where="x", clock=clock, say=said.append, stop=lambda: False) == "opened"
    assert said == []


def test_a_configuration_error_is_not_waited_for() -> None:
    clock, calls = FakeClock(), []

    def wrong() -> str:
        calls.append(clock.now())
        raise StoreConfigError("Redis at x has maxmemory-policy 'allkeys-lru'")

    with pytest.raises(StoreConfigError, match="allkeys-lru"):
        open_when_answering(wrong, where="x", clock=clock, say=lambda _: None, stop=lambda: False)
    assert len(calls) == 1


def test_a_stop_while_waiting_returns_none() -> None:
    clock = FakeClock()
    opener = Flaky(1_000, clock)
    stop_at = clock.now() + 45.0
    got = open_when_answering(opener, where="x", clock=clock, say=lambda _: None, stop=lambda: clock.now() >= stop_at,
                              policy=RetryPolicy(base_s=1.0, cap_s=30.0))
    assert got is None
    assert clock.now() - stop_at < 0.25 + 1e-9  # it looked at stop between short sleeps, not after a whole delay
    assert len(opener.tried_at) == 6  # 0, 1, 3, 7, 15, 31 s: the next try (61 s) never came


def with_password(data: Path, password: str) -> RedisServer:
    """A server that asks for ``password`` (set once it answers: RedisServer's readiness check has none)."""
    server = RedisServer(data)
    client = connect(server.url)
    client.config_set("requirepass", password)
    client.close()
    return server


# ---------------------------------------------------------------- telling "down" from "wrong" on the real server

@needs_redis
def test_check_server_tells_a_server_that_is_down_from_one_that_is_wrong(tmp_path: Path) -> None:
    down = connect(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=2.0)
    with pytest.raises(StoreUnavailable, match=r"Redis did not answer at there"):
        check_server(down, where="there")
    server = with_password(tmp_path / "redis", "right-secret")
    try:
        wrong = connect(f"redis://:wrong-secret@127.0.0.1:{server.port}/0", socket_timeout_s=5.0)
        with pytest.raises(StoreConfigError, match="refused galaxy's credentials"):
            check_server(wrong, where="there")
        none = connect(server.url, socket_timeout_s=5.0)  # no password at all
        with pytest.raises(StoreConfigError, match="refused galaxy's credentials"):
            check_server(none, where="there")
        right = connect(f"redis://:right-secret@127.0.0.1:{server.port}/0", socket_timeout_s=5.0)
        check_server(right, where="there")
        right.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(StoreConfigError, match="allkeys-lru"):
            check_server(right, where="there")
        for client in (wrong, none, right):
            client.close()
    finally:
        server.stop()
        down.close()


# ---------------------------------------------------------------- real processes started before Redis

@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for the unix socket (a socket path must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gx-sock-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def until(cond: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        assert proc.poll() is None, f"exited ({proc.returncode}) while waiting for {what}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not reached within {DEADLINE_S:.0f} s: {what}: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"did not exit after SIGTERM: {log.read_text()[-3000:]}")


def start(args: list[str], log: Path, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALAXY_")}  # only what the test says
    env.update(extra_env, PYTHONPATH=str(REPO))
    with log.open("wb") as out:  # a file, not a pipe nobody drains while it runs
        return subprocess.Popen([sys.executable, "-m", "engine.cli.main", *args], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def start_redis_on(sock: Path, data: Path) -> RedisServer:
    return RedisServer(data, extra=("--unixsocket", str(sock), "--unixsocketperm", "700"))


def run_one_task(sock: Path, cluster: str, marker: Path) -> tuple[RedisQueue, str]:
    q = RedisQueue(connect(f"unix://{sock}"), cluster)
    q.submit([Task("after-start", "after-start", command=f"touch {marker}", task_class=TaskClass.CPU)], time.time())
    return q, "after-start"


def completed(q: RedisQueue, task_id: str) -> bool:
    try:
        task = q.get(task_id)
    except (OSError, redis.RedisError):
        return False
    return task is not None and task.status is TaskStatus.COMPLETE


def tear_down(proc: subprocess.Popen[bytes], q: RedisQueue | None, server: RedisServer | None) -> None:
    """Whatever a test left: the process killed, the queue's connection and the server closed."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    if q is not None:
        q.close()
        q.r.close()
    if server is not None:
        server.stop()


@needs_redis
def test_a_worker_started_while_redis_is_down_waits_then_claims(tmp_path: Path, sock_dir: Path) -> None:
    sock, log, marker = sock_dir / "redis.sock", tmp_path / "worker.log", tmp_path / "ran"
    cluster = CLUSTER + uuid.uuid4().hex[:8]
    proc = start(["--root", str(tmp_path / "shared"), "worker", "--worker-id", "w1", "--lease", "20"], log,
                 {"GALAXY_STORE": f"unix://{sock}", "GALAXY_STORE_CLUSTER": cluster, "GALAXY_RIG": "rig-a"})
    server = None
    q = None
    try:
        until(lambda: "unreachable since" in log.read_text(), "the worker says it waits", proc, log)
        assert f"store unix://{sock} unreachable since" in log.read_text() and "retrying in" in log.read_text()
        server = start_redis_on(sock, tmp_path / "redis")
        q, task_id = run_one_task(sock, cluster, marker)
        until(lambda: completed(q, task_id), "the worker claims and completes the task", proc, log)
        assert marker.exists()
        assert "store answers again" in log.read_text()
        assert stop(proc, log) == 0
    finally:
        tear_down(proc, q, server)


def test_sigterm_while_a_worker_waits_for_its_store_exits_cleanly(tmp_path: Path, sock_dir: Path) -> None:
    log = tmp_path / "worker.log"
    proc = start(["--root", str(tmp_path / "shared"), "worker", "--worker-id", "w1"], log,
                 {"GALAXY_STORE": f"unix://{sock_dir / 'none.sock'}", "GALAXY_RIG": "rig-a"})
    try:
        until(lambda: "unreachable since" in log.read_text(), "the worker says it waits", proc, log)
        assert stop(proc, log) == 0
        assert "worker w1 stopped (SIGTERM) before its store answered" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def supervisor_config(tmp_path: Path, url: str, cluster: str) -> Path:
    path = tmp_path / "galaxy.toml"
    path.write_text(f'[rig]\nname = "rig-a"\n[store]\nurl = "{url}"\ncluster = "{cluster}"\n'
                    '[[group]]\nname = "gpu0"\ngpus = [0]\n')
    return path


@needs_redis
def test_a_supervisor_started_while_redis_is_down_waits_then_its_workers_claim(tmp_path: Path,
                                                                                sock_dir: Path) -> None:
    sock, log, marker = sock_dir / "redis.sock", tmp_path / "supervisor.log", tmp_path / "ran"
    cluster = CLUSTER + uuid.uuid4().hex[:8]
    config = supervisor_config(tmp_path, f"unix://{sock}", cluster)
    proc = start(["--root", str(tmp_path / "shared"), "--config", str(config), "supervise", "--sim", "--gpus", "1",
                  "--tick", "0.2"], log, {})
    server = None
    q = None
    try:
        until(lambda: "unreachable since" in log.read_text(), "the supervisor says it waits", proc, log)
        server = start_redis_on(sock, tmp_path / "redis")
        q, task_id = run_one_task(sock, cluster, marker)
        until(lambda: completed(q, task_id), "a worker of the supervisor claims and completes the task", proc, log)
        assert marker.exists()
        assert stop(proc, log) == 0
    finally:
        tear_down(proc, q, server)


def test_sigterm_while_a_supervisor_waits_exits_cleanly_and_frees_its_pid_file(tmp_path: Path,
                                                                                sock_dir: Path) -> None:
    log = tmp_path / "supervisor.log"
    config = supervisor_config(tmp_path, f"unix://{sock_dir / 'none.sock'}", CLUSTER)
    root = tmp_path / "shared"
    proc = start(["--root", str(root), "--config", str(config), "supervise", "--sim", "--gpus", "1"], log, {})
    try:
        until(lambda: "unreachable since" in log.read_text(), "the supervisor says it waits", proc, log)
        assert stop(proc, log) == 0
        assert "supervisor stopped before its store answered" in log.read_text()
        assert not RigPaths(root).supervisor_pid.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@needs_redis
def test_a_supervisor_on_a_redis_that_refuses_its_password_exits_at_once(tmp_path: Path) -> None:
    server = with_password(tmp_path / "redis", "right-secret")
    try:
        config = supervisor_config(tmp_path, f"redis://:wrong-secret@127.0.0.1:{server.port}/0", CLUSTER)
        done = subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(tmp_path / "shared"), "--config",
                               str(config), "supervise", "--sim", "--gpus", "1"], cwd=REPO, capture_output=True,
                              text=True, timeout=DEADLINE_S, check=False,
                              env={k: v for k, v in os.environ.items() if k != "GALAXY_STORE"})
        assert done.returncode == 2, done.stdout + done.stderr
        assert "refused galaxy's credentials" in done.stderr and "wrong-secret" not in done.stderr
        assert "unreachable" not in done.stdout + done.stderr
    finally:
        server.stop()


def test_galaxy_up_while_the_store_is_down_says_the_supervisor_waits_and_down_stops_it(tmp_path: Path,
                                                                                      sock_dir: Path) -> None:
    config = supervisor_config(tmp_path, f"unix://{sock_dir / 'none.sock'}", CLUSTER)
    root = tmp_path / "shared"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALAXY_")} | {"PYTHONPATH": str(REPO)}
    galaxy = [sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(config)]
    up = subprocess.run([*galaxy, "up", "--sim", "--gpus", "1", "--no-dashboard"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    pid_file = RigPaths(root).supervisor_pid
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "is up and waits for its store" in up.stderr and "none.sock" in up.stderr
        assert pid_file.exists()
        down = subprocess.run([*galaxy, "down", "--wait", "20"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=DEADLINE_S, check=False)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped" in down.stdout and not pid_file.exists()
    finally:
        if pid_file.exists():  # never leave a supervisor behind
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
