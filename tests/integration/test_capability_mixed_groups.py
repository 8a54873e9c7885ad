"""Claims match capabilities on a CPU box with mixed groups: one group serves a REAL
llama.cpp server (``backend = "openai"``, SmolLM2-135M), one does script work only
(``backend = "none"``). Real supervisor, real ``galaxy worker`` subprocesses, the real
FileQueue and a Markdown plan. The script group must never claim an llm task (before the
fix it took them whenever idle and failed them, taking their dependents down); an llm task
for a model no worker serves waits with that reason and is never failed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from engine.cli.status_data import status_data
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.model import Task, TaskClass, TaskType
from engine.paths import RigPaths
from engine.plans.build import load_plan
from engine.queue.filequeue import FileQueue
from engine.snapshot import read_snapshot
from engine.supervisor.launcher import SubprocessLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.detect import NoGpuProbe

if TYPE_CHECKING:
    from tests.integration.conftest import LlamaServer

pytestmark = pytest.mark.models

TH = Thresholds(restart_backoff_s=0.05, restart_backoff_max_s=0.2, snapshot_interval_s=0.05, shutdown_grace_s=10.0)
LLM_TASKS = 4
SCRIPT_TASKS = 3

PLAN = """\
# mixed work

- batch: mixed
- llm_model: smollm2

{llm}
{script}
## after
Script work that needs every answer first: a cascade would take it down.

- class: script
- depends_on: {asks}
- command: echo all answered
"""
LLM_SECTION = """\
## ask{i}

- type: llm
- max_tokens: 8
- temperature: 0

```prompt
Name one colour.
```
"""
SCRIPT_SECTION = """\
## sleep{i}

- class: script
- command: sleep 0.3; echo slept {i}
"""


def until(sup: Supervisor, cond: Callable[[], Any], what: str, timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.tick(time.time())
        got = cond()
        if got:
            return got
        time.sleep(0.05)  # polling the rig, not timing anything
    pytest.fail(f"timed out waiting for: {what}")


def test_the_script_group_never_claims_llm_work_and_the_plan_completes(
        tmp_path: Path, llama_server: LlamaServer) -> None:
    paths = RigPaths(tmp_path / "shared").ensure()
    queue = FileQueue(paths, use_inotify=False, backoff_base_s=0.05, backoff_cap_s=0.1)
    groups = (GroupConfig("llama", backend="openai", endpoint=llama_server.base_url, models={"llm": "smollm2"}),
              GroupConfig("scripts", backend="none", preferred_classes=("script",)))
    cfg = GalaxyConfig(rig="cpu-box", groups=groups, thresholds=TH, source=None, origin="test")
    sup = Supervisor(cfg, paths, queue, NoGpuProbe(), SubprocessLauncher(), simulated=False)
    plan_path = tmp_path / "mixed.md"
    plan_path.write_text(PLAN.format(llm="\n".join(LLM_SECTION.format(i=i) for i in range(LLM_TASKS)),
                                     script="\n".join(SCRIPT_SECTION.format(i=i) for i in range(SCRIPT_TASKS)),
                                     asks=", ".join(f"ask{i}" for i in range(LLM_TASKS))))
    now = time.time()
    tasks = load_plan(plan_path, now=now)
    # and one llm task for a model nobody serves: it must wait, named, and never fail
    orphan = Task(task_id="mixed.orphan", name="orphan", type=TaskType.LLM, task_class=TaskClass.LLM,
                  model="qwen2.5:7b", params={"prompt": "hi"}, created_at=now)
    queue.submit([*tasks, orphan], now)
    sup.start(time.time())
    try:
        ids = [t.task_id for t in tasks]
        until(sup, lambda: all((t := queue.get(i)) is not None and t.status.value in ("complete", "failed")
                               for i in ids), "every plan task finishes")
        done = {i: queue.get(i) for i in ids}
        assert all(t is not None and t.status.value == "complete" for t in done.values()), \
            {i: (t.status.value, t.error) for i, t in done.items() if t is not None}
        llm = [t for t in done.values() if t is not None and t.task_class is TaskClass.LLM]
        assert len(llm) == LLM_TASKS
        for t in llm:
            assert {a.worker_id for a in t.attempts} == {"llama"}, (t.task_id, t.attempts)
            assert t.result and t.result.get("text") is not None
        # the events agree: the script group started no llm task, ever
        events = [json.loads(line) for line in paths.events.read_text().splitlines() if line.strip()]
        started = [(e.get("task_id"), e.get("worker_id")) for e in events if e.get("event_type") == "task_started"]
        assert not [s for s in started if s[1] == "scripts" and s[0] in {t.task_id for t in llm}]
        assert ("mixed.orphan", "llama") not in started and ("mixed.orphan", "scripts") not in started
        assert any(w == "scripts" for _, w in started), "the script group did run script work"

        waiting = until(sup, lambda: {w["task_id"]: w for w in status_data(paths.root, time.time())["waiting"]}
                        .get("mixed.orphan"), "status lists the orphan")
        assert waiting["reason"] == "no worker serves model qwen2.5:7b"
        snap = read_snapshot(paths.snapshot)
        assert snap is not None
        assert {w.worker_id: (w.llm_backend, w.llm_models) for w in snap.workers} == \
            {"llama": ("openai", ("smollm2",)), "scripts": ("none", None)}
        view = {w.task_id: w for w in snap.queue.waiting}.get("mixed.orphan")
        assert view is not None and view.reason == "no worker serves model qwen2.5:7b"
        orphan_now = queue.get("mixed.orphan")
        assert orphan_now is not None and orphan_now.status.value == "pending" and not orphan_now.attempts
    finally:
        sup.begin_shutdown(time.time())
        until(sup, sup.all_stopped, "all workers stopped", timeout=60.0)
        sup.finish_shutdown(time.time())
        queue.close()
