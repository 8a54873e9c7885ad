"""``galaxy store migrate`` (engine/cli/cmd_store.py, engine/store/migrate.py) against a real
redis-server: a file root's waiting, held, delayed and failed tasks go to Redis and back to another
root with their ids, priorities, retry counts, attempts and dependencies; completed parents are
copied so held tasks still resolve; a claim in the source refuses the move and writes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.model import TaskStatus
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.protocol import Candidate, ClaimPolicy, Place, RigQueue
from engine.store.redis.client import connect
from engine.store.redis.queue import RedisQueue
from tests.conformance.queue_contract_helpers import task
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401

NOW = 1_800_000_000.0


def pick(task_id: str) -> ClaimPolicy:
    def policy(candidates: Sequence[Candidate], now: float) -> Sequence[Candidate]:
        return [c for c in candidates if c.task_id == task_id]
    return policy


def take(q: RigQueue, task_id: str, now: float) -> None:
    got = q.claim("w1", now, pick(task_id), 30.0)
    assert got is not None and got.task_id == task_id


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> tuple[Path, str]:  # noqa: F811
    """A galaxy.toml naming the Redis (cluster of its own) and a clean environment."""
    cluster = "mig" + uuid.uuid4().hex[:8]
    config = tmp_path / "galaxy.toml"
    config.write_text(f'[store]\nurl = "{redis_server.url}"\ncluster = "{cluster}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("GALAXY_STORE", "GALAXY_ROOT", "GALAXY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return config, cluster


def migrate(root: Path, config: Path, *to: str) -> tuple[int, dict[str, object]]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["--root", str(root), "--config", str(config), "store", "migrate", "--json", *to])
    return rc, json.loads(buf.getvalue())


def fill(q: FileQueue) -> None:
    """done (complete) <- kid (held, also on wait) <- grand (held); wait (queue); later (delayed,
    1 retry); bad (failed)."""
    q.submit([task("done", priority=9), task("later", priority=8, max_retries=3), task("bad", priority=7),
              task("wait", priority=3), task("kid", depends_on=("done", "wait")), task("grand", depends_on=("kid",))],
             NOW)
    take(q, "done", NOW)
    q.complete("done", "w1", {"answer": 42}, NOW + 1)
    take(q, "later", NOW + 2)
    q.fail("later", "w1", "transient", NOW + 3)
    take(q, "bad", NOW + 4)
    q.fail("bad", "w1", "boom", NOW + 5, retryable=False)


def assert_carried(q: RigQueue) -> None:
    assert q.where("done") is Place.COMPLETE
    done = q.get("done")
    assert done is not None and done.result is not None and done.result.get("answer") == 42
    assert q.where("kid") is Place.HELD and q.where("grand") is Place.HELD
    assert q.where("wait") is Place.QUEUE and q.where("later") is Place.DELAYED  # the rest of its backoff
    later = q.get("later")
    assert later is not None and later.retry_count == 1 and later.priority == 8 and later.max_retries == 3
    assert later.not_before is not None and later.not_before > NOW + 3
    assert q.next_due() == pytest.approx(later.not_before, abs=0.01)
    assert [a.error for a in later.attempts] == ["transient"]
    bad = q.get("bad")
    assert bad is not None and bad.status is TaskStatus.FAILED and bad.error == "boom"  # as it failed
    assert [a.error for a in bad.attempts] == ["boom"] and bad.depends_on == ()
    kid = q.get("kid")
    assert kid is not None and kid.depends_on == ("done", "wait")


def test_file_to_redis_to_file_keeps_every_task_and_its_dependencies(
        tmp_path: Path, cli_env: tuple[Path, str], redis_server: RedisServer,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, cluster = cli_env
    a = tmp_path / "rig-a"
    source = FileQueue(RigPaths(a), use_inotify=False)
    fill(source)
    source.close()

    monkeypatch.setenv("GALAXY_STORE", "file")  # the source is rig-a's files; the target the config's Redis
    rc, out = migrate(a, config, "--to", redis_server.url)
    assert rc == 0, out
    assert out["moved"] == {"queue": 1, "held": 2, "delayed": 1, "failed": 1, "complete_parents_copied": 1}
    client = connect(redis_server.url)
    red = RedisQueue(client, cluster)
    try:
        assert_carried(red)
    finally:
        red.close()
    left = FileQueue(RigPaths(a), use_inotify=False)
    try:  # the moved tasks are gone from the source; its completed task stays
        for place in (Place.QUEUE, Place.HELD, Place.DELAYED, Place.FAILED):
            assert left.ids_in(place) == []
        assert left.where("wait") is None and left.where("bad") is None
        assert left.where("done") is Place.COMPLETE and left.counts().total(Place.FAILED) == 0
    finally:
        left.close()

    monkeypatch.delenv("GALAXY_STORE")  # now the source is the Redis the config names
    rc, out = migrate(a, config, "--to", f"file:{a}")  # back into the root they came from
    assert rc == 0, out
    assert out["complete_parents_already_there"] == 1  # "done" never left
    back = FileQueue(RigPaths(a), use_inotify=False)
    try:
        assert_carried(back)
        for tid in ("wait", "kid", "grand"):  # the dependencies resolve in the new store
            take(back, tid, NOW + 10)
            back.complete(tid, "w1", {}, NOW + 11)
        assert back.where("grand") is Place.COMPLETE
        assert back.retry("bad", NOW + 12)
        assert back.where("bad") is Place.QUEUE
    finally:
        back.close()
    red = RedisQueue(client, cluster)
    try:
        for place in (Place.QUEUE, Place.HELD, Place.DELAYED, Place.FAILED):
            assert red.ids_in(place) == []
        assert red.where("done") is Place.COMPLETE  # the copied parent stays, as complete tasks do
    finally:
        red.close()
        client.close()


def test_a_claim_in_the_source_refuses_and_writes_nothing(
        tmp_path: Path, cli_env: tuple[Path, str], redis_server: RedisServer,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, cluster = cli_env
    a = tmp_path / "rig-a"
    source = FileQueue(RigPaths(a), use_inotify=False)
    source.submit([task("run"), task("other", priority=9)], NOW)
    take(source, "run", NOW)
    source.close()
    monkeypatch.setenv("GALAXY_STORE", "file")
    rc, out = migrate(a, config, "--to", redis_server.url)
    assert rc == 1
    assert "run (worker w1)" in str(out["refused"]) and "galaxy down" in str(out["refused"])
    client = connect(redis_server.url)
    red = RedisQueue(client, cluster)
    try:
        assert red.where("other") is None and red.where("run") is None
    finally:
        red.close()
        client.close()
    kept = FileQueue(RigPaths(a), use_inotify=False)
    try:
        assert kept.where("other") is Place.QUEUE and kept.where("run") is Place.PROCESSING
    finally:
        kept.close()


def test_a_live_supervisor_or_a_task_awaiting_approval_refuses(
        tmp_path: Path, cli_env: tuple[Path, str], redis_server: RedisServer,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.supervisor.pidfile import PidFile

    config, cluster = cli_env
    a = tmp_path / "rig-a"
    paths = RigPaths(a)
    source = FileQueue(paths, use_inotify=False)
    source.submit([task("parked", priority=9), task("other")], NOW)
    monkeypatch.setenv("GALAXY_STORE", "file")
    pid = PidFile(paths.supervisor_pid)
    pid.acquire()
    try:
        rc, out = migrate(a, config, "--to", redis_server.url)
    finally:
        pid.release()
    assert rc == 1 and "a supervisor runs on the source" in str(out["refused"])
    take(source, "parked", NOW)
    source.fail("parked", "w1", "boom", NOW, retryable=False)
    assert source.awaiting.park("parked", "esc-1", NOW)
    source.close()
    rc, out = migrate(a, config, "--to", redis_server.url)
    assert rc == 1 and "parked" in str(out["refused"]) and "approve or deny" in str(out["refused"])
    client = connect(redis_server.url)
    red = RedisQueue(client, cluster)
    try:
        assert red.where("other") is None
    finally:
        red.close()
        client.close()
