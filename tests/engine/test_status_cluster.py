"""``galaxy status`` on a shared store (a real redis-server) covers every rig: each rig live or
STALE with its supervisor and its workers, the workers of the live rigs (each naming its rig), and
this rig's supervisor on top."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.store.redis.channels import redis_channels
from engine.store.redis.client import connect
from engine.store.redis.queue import RedisQueue
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401
from tests.support.rig_snapshots import publish, rig_snapshot


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> tuple[Path, Path]:  # noqa: F811
    """Three rigs on one Redis: ``lab`` (this host, live, 2 GPUs), ``gaming`` (live, 1 GPU, busy) and
    ``mac`` (its supervisor stopped publishing a minute ago)."""
    name = "st" + uuid.uuid4().hex[:8]
    config = tmp_path / "galaxy.toml"
    config.write_text(f'[store]\nurl = "{redis_server.url}"\ncluster = "{name}"\n\n[rig]\nname = "lab"\n')
    root = tmp_path / "root"
    RigPaths(root).tasks.mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in ("GALAXY_STORE", "GALAXY_ROOT", "GALAXY_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    channels = redis_channels(connect(redis_server.url), name, "lab")
    now = time.time()
    publish(channels.snapshots, rig_snapshot("lab", now, gpus=2, pid=100), now)
    publish(channels.snapshots, rig_snapshot("gaming", now, gpus=1, pid=200, busy="t-7"), now)
    publish(channels.snapshots, rig_snapshot("mac", now - 60, gpus=1, pid=300), now - 60)
    channels.close()
    queue = RedisQueue(connect(redis_server.url), name)  # work pinned to the silent rig waits for it
    queue.submit([Task(task_id="for-mac", name="for mac", command="true", task_class=TaskClass.CPU, rig="mac")], now)
    queue.close()
    return root, config


def status(root: Path, config: Path, *flags: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["--root", str(root), "--config", str(config), "status", *flags]) == 0
    return buf.getvalue()


def test_status_json_covers_every_rig(cluster: tuple[Path, Path]) -> None:
    data = json.loads(status(*cluster, "--json"))
    rigs = {r["rig"]: r for r in data["rigs"]}
    assert sorted(rigs) == ["gaming", "lab", "mac"]
    assert not rigs["lab"]["stale"] and rigs["lab"]["supervisor"]["pid"] == 100 and rigs["lab"]["gpus"] == 2
    assert [w["worker_id"] for w in rigs["lab"]["workers"]] == ["gpu0", "gpu1"]
    assert rigs["gaming"]["workers"][0]["current_task"] == "t-7"
    assert rigs["mac"]["stale"] and rigs["mac"]["workers"] is None and rigs["mac"]["supervisor"]["pid"] == 300
    # every live rig's workers, each naming its rig (names repeat across rigs); this rig's supervisor on top
    assert sorted((w["rig"], w["worker_id"]) for w in data["workers"]) == [
        ("gaming", "gpu0"), ("lab", "gpu0"), ("lab", "gpu1")]
    assert data["supervisor"]["pid"] == 100 and data["supervisor"]["fresh"]
    (waiting,) = data["waiting"]
    assert waiting["task_id"] == "for-mac" and waiting["reason"] == "pinned to rig mac (no live supervisor there)"


def test_status_text_lists_each_rig_with_its_workers(cluster: tuple[Path, Path]) -> None:
    text = status(*cluster)
    assert "supervisor pid 100, up 1h02m05s" in text
    lines = text.splitlines()
    at = {line.strip().split(":")[0]: i for i, line in enumerate(lines) if line.startswith("  ") and ": " in line}
    assert lines[at["gaming"]].strip().startswith("gaming: live, 1 GPU(s); supervisor pid 200")
    assert lines[at["gaming"] + 1].split() == ["gpu0", "gpus", "[0]", "running", "t-7"]
    assert lines[at["mac"]].strip().startswith("mac: STALE (last snapshot 60s ago")
    assert lines[at["lab"] + 2].split()[0] == "gpu1"


def test_a_worker_verb_goes_to_the_named_rigs_supervisor(cluster: tuple[Path, Path], redis_server: RedisServer,  # noqa: F811
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root, config = cluster
    rc = main(["--root", str(root), "--config", str(config), "pause", "gpu0", "--rig", "gaming", "--wait", "0.3"])
    assert rc == 3 and "no ack within" in capsys.readouterr().out  # live by its snapshot; nobody answers here
    name = config.read_text().split('cluster = "')[1].split('"')[0]
    channels = redis_channels(connect(redis_server.url), name, "lab")
    try:
        taken = {rig: [(i.command.kind.value, i.command.target) for i in channels.commands_for(rig).take(10)
                       if i.command is not None] for rig in ("gaming", "lab")}
    finally:
        channels.close()
    assert taken == {"gaming": [("pause", "gpu0")], "lab": []}


def test_a_worker_verb_for_another_rig_on_the_file_store_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("GALAXY_STORE", "GALAXY_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    RigPaths(tmp_path).tasks.mkdir(parents=True)
    assert main(["--root", str(tmp_path), "pause", "w0", "--rig", "elsewhere", "--wait", "0"]) == 2
    assert "the file store holds one rig" in capsys.readouterr().err


def test_a_running_task_names_the_rig_whose_worker_holds_it(cluster: tuple[Path, Path],
                                                             redis_server: RedisServer) -> None:  # noqa: F811
    """Every rig has a gpu0: ``status`` says whose (gaming's snapshot shows its gpu0 on t-7)."""
    from engine.scheduling.policy import WorkerProfile, make_claim_policy

    root, config = cluster
    name = config.read_text().split('cluster = "')[1].split('"')[0]
    queue = RedisQueue(connect(redis_server.url), name)
    queue.submit([Task(task_id="t-7", name="seven", command="true", task_class=TaskClass.CPU, priority=9)], time.time())
    claimed = queue.claim("gpu0", time.time(), make_claim_policy(WorkerProfile("gpu0")), 60.0)
    queue.close()
    assert claimed is not None and claimed.task_id == "t-7"
    (running,) = json.loads(status(root, config, "--json"))["running"]
    assert (running["task_id"], running["worker_id"], running["rig"]) == ("t-7", "gpu0", "gaming")
    text = status(root, config)
    assert text.split("running:\n")[1].splitlines()[0].split()[:2] == ["t-7", "gpu0@gaming"]
