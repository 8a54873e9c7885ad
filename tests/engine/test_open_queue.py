"""One opener for the task queue (engine/store/open_queue.py): the file queue without a store url,
a RedisQueue on a real redis-server with one; workers follow their supervisor's environment; a
Redis that does not answer or may evict keys is refused naming it; ``galaxy submit`` of a plan on a
shared store pins its tasks to the submitting rig."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engine.config import default_config
from engine.model import TaskStatus
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.store.open_queue import open_config_queue, open_queue, open_queue_from_env, open_queued_source
from engine.store.redis.client import StoreConfigError, connect
from engine.store.redis.queue import RedisQueue
from engine.store.settings import StoreConfig
from tests.support.redis_server import free_port, redis_server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def test_no_url_is_the_file_queue_as_before(tmp_path: Path) -> None:
    paths = RigPaths(tmp_path / "shared")
    q = open_queue(StoreConfig(), paths)
    try:
        assert isinstance(q, FileQueue)
    finally:
        q.close()
    q = open_queue_from_env(paths, {})  # a worker started by hand: the root's files
    try:
        assert isinstance(q, FileQueue)
    finally:
        q.close()
    q = open_config_queue(default_config(0), paths, {"GALAXY_STORE": "file"})
    try:
        assert isinstance(q, FileQueue)
    finally:
        q.close()


def test_a_url_is_the_clusters_redis_queue_for_every_process(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    cluster = "oq" + uuid.uuid4().hex[:8]
    paths = RigPaths(tmp_path / "shared")
    env = {"GALAXY_STORE": server.url, "GALAXY_STORE_CLUSTER": cluster, "GALAXY_RIG": "rig-a"}
    supervisor = open_config_queue(default_config(0), paths, {"GALAXY_STORE": server.url})
    worker = open_queue_from_env(paths, env)
    listing = None
    try:
        assert isinstance(worker, RedisQueue) and worker.cluster == cluster
        assert isinstance(supervisor, RedisQueue) and supervisor.cluster == "galaxy"  # galaxy.toml's default
        from engine.model import Task

        worker.submit([Task.from_dict({"task_id": "t1", "name": "t1", "command": "true", "task_class": "cpu"})], 1.0)
        again = open_queue(StoreConfig(server.url, cluster), paths)
        try:
            got = again.get("t1")
            assert got is not None and got.status is TaskStatus.PENDING  # one store, seen from another handle
        finally:
            again.close()
        listing = open_queued_source(StoreConfig(server.url, cluster), paths)
        assert listing is not None and [r.task_id for r in listing.page().rows] == ["t1"]
        assert not (paths.queue / "t1.json").exists() and not list(paths.queue.glob("*t1*"))
    finally:
        worker.close()
        supervisor.close()
        if listing is not None:
            listing.close()


def test_a_redis_that_does_not_answer_or_may_evict_is_refused_naming_it(tmp_path: Path,
                                                                       request: pytest.FixtureRequest) -> None:
    paths = RigPaths(tmp_path / "shared")
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(ConnectionError, match=r"Redis redis://127\.0\.0\.1:\d+/0 \(cluster 'galaxy'\)"):
        open_queue(StoreConfig(url), paths)
    server = request.getfixturevalue("redis_server")
    client = connect(server.url)
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(StoreConfigError, match="allkeys-lru"):
            open_queue(StoreConfig(server.url), paths)
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()


def test_galaxy_submit_pins_a_plan_to_the_submitting_rig_on_a_shared_store(tmp_path: Path,
                                                                           request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    cluster = "pin" + uuid.uuid4().hex[:8]
    config = tmp_path / "galaxy.toml"
    config.write_text(f'[rig]\nname = "lab-server"\n[store]\nurl = "{server.url}"\ncluster = "{cluster}"\n')
    plan = tmp_path / "p.md"
    plan.write_text("# p\n## here\n- command: echo here\n## anywhere\n- command: echo anywhere\n- rig: any\n")
    done = subprocess.run([sys.executable, "-m", "engine.cli.main", "--root", str(tmp_path / "shared"), "--config",
                           str(config), "submit", str(plan)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    client = connect(server.url)
    q = RedisQueue(client, cluster)
    try:
        rigs = {w.name: w.rig for w in q.oldest_waiting(0.0, 10)}
        assert rigs == {"here": "lab-server", "anywhere": None}
    finally:
        q.close()
        client.close()
