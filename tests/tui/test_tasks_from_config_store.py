"""``galaxy attach --config X``: the Tasks view lists queued tasks from the store X names (a real
redis-server), not from the store galaxy.toml would be found by (here: none, the root's files)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from taskkit import T0, busy
from tuikit import wait_ready

from engine.commands import RecordingCommandSink
from engine.model import Task, TaskClass
from engine.paths import RigPaths
from engine.store.redis.client import connect
from engine.store.redis.queue import RedisQueue
from galaxy_tui.app import GalaxyApp
from galaxy_tui.source import CannedSnapshotSource
from galaxy_tui.widgets.tasks import TasksTable
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401


def test_queued_rows_come_from_the_store_of_the_given_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             redis_server: RedisServer) -> None:  # noqa: F811
    for var in ("GALAXY_STORE", "GALAXY_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./galaxy.toml: located, the store would be the root's files
    cluster = "tc" + uuid.uuid4().hex[:8]
    config = tmp_path / "elsewhere" / "galaxy.toml"
    config.parent.mkdir()
    config.write_text(f'[store]\nurl = "{redis_server.url}"\ncluster = "{cluster}"\n')
    root = tmp_path / "root"
    RigPaths(root).tasks.mkdir(parents=True)
    q = RedisQueue(connect(redis_server.url), cluster)
    ids = [f"r.q{i}" for i in range(3)]
    q.submit([Task(task_id=t, name=t, command="true", task_class=TaskClass.CPU) for t in ids], T0 - 60)
    q.close()
    snap = busy(3)
    app = GalaxyApp(CannedSnapshotSource([snap]), RecordingCommandSink(), clock=lambda: snap.taken_at, root=root,
                    config_path=config)

    async def go() -> list[str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            table = app.query_one(TasksTable)
            for _ in range(300):
                if table.queued_page_data is not None:
                    break
                await app.workers.wait_for_complete()
                await pilot.pause(0.02)
            return [k for k in table.row_keys if k.startswith("r.q")]

    assert asyncio.run(go()) == ids
