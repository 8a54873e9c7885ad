"""A real supervisor (``galaxy supervise --sim``) whose galaxy.toml names a Redis store: its
snapshot, the operator's commands and their audit go through the cluster's Redis keys, not the
shared root; the CLI finds the rig by its name; a second rig's handle sees it and its STALE time."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from engine.config import load_config
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.snapshot import parse_published
from engine.store.open_queue import open_config_queue
from engine.store.redis.channels import redis_channels
from engine.store.redis.client import connect
from tests.support.redis_server import redis_server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def wait_for(cond, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for: {what}")


def test_a_supervisor_on_the_redis_store_publishes_and_obeys_through_redis(tmp_path: Path,
                                                                           request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    cluster = "e2e" + uuid.uuid4().hex[:8]
    config = tmp_path / "galaxy.toml"
    config.write_text(f'[rig]\nname = "rig-a"\n[store]\nurl = "{server.url}"\ncluster = "{cluster}"\n')
    root = tmp_path / "shared"
    base = [sys.executable, "-m", "engine.cli.main", "--root", str(root), "--config", str(config)]
    other_rig = redis_channels(connect(server.url), cluster, "rig-b")  # what another rig's processes see
    proc = subprocess.Popen([*base, "supervise", "--sim", "--gpus", "2", "--tick", "0.1"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def running() -> bool:
            got = other_rig.snapshots.latest("rig-a")
            snap = parse_published(got) if got is not None else None
            return snap is not None and [w.worker_id for w in snap.workers] == ["gpu0", "gpu1"] \
                and all(w.state == "running" for w in snap.workers)

        wait_for(running, "rig-a's workers running, seen through Redis")
        assert other_rig.snapshots.rigs() == ["rig-a"]
        assert not (root / "state" / "snapshot.json").exists()  # nothing of it in the shared root

        restart = subprocess.run([*base, "restart", "gpu1", "--wait", "30"], cwd=REPO, capture_output=True, text=True,
                                 timeout=60, check=False)
        assert restart.returncode == 0 and "restart gpu1: ok" in restart.stdout, restart.stdout + restart.stderr
        refused = subprocess.run([*base, "pause", "nosuch", "--wait", "30"], cwd=REPO, capture_output=True, text=True,
                                 timeout=60, check=False)
        assert refused.returncode == 1 and "no worker named 'nosuch'" in refused.stdout
        audit = other_rig.audit.read(50)
        assert [(a["kind"], a["outcome"]) for a in audit] == [("restart", "ok"), ("pause", "refused")]
        assert all(str(a["source"]).startswith("cli ") for a in audit)
        assert not (root / "logs" / "audit.jsonl").exists()

        queue = open_config_queue(load_config(config), RigPaths(root), environ={})
        try:
            queue.submit([Task(task_id="e2e.t1", name="t1", command="true", task_class=TaskClass.SCRIPT)],
                         time.time())
        finally:
            queue.close()

        def finished() -> list[dict[str, object]]:
            return [e for e in other_rig.events.tail(200)
                    if e.get("task_id") == "e2e.t1" and e.get("event_type") == "task_completed"]

        (done,) = wait_for(finished, "e2e.t1 completed, its event in the cluster's stream")
        assert done["rig"] == "rig-a"  # a shared stream says which rig each line comes from
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    last = other_rig.snapshots.latest("rig-a")
    assert last is not None
    assert last.is_stale(time.time() + 30, stale_after_s=10)  # nobody publishes for it any more
    other_rig.close()
