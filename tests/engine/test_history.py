"""The supervisor's history: bounded, aligned series per GPU and tokens/s per model, in state/history.json."""

from __future__ import annotations

import json
import os

import pytest

from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.history import HISTORY_VERSION, RigHistory, read_history, write_history
from engine.model import Task, TaskClass, TaskStatus, TaskType
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.schema import SchemaError
from engine.supervisor.history_keeper import HistoryKeeper
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.snapshot_builder import WorkerInfo
from engine.supervisor.states import WorkerRecord, WState
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.protocol import GpuSample
from engine.telemetry.sim_rig import SimulatedRig
from engine.workerstate import WorkerStatus


def gpu(index: int, util: float | None, temp: float = 50.0) -> GpuSample:
    return GpuSample(index=index, name=f"GPU {index}", util_pct=util, mem_used_mb=1000.0, mem_total_mb=6144.0,
                     temp_c=temp, power_w=80.0, power_limit_w=140.0)


def worker(name: str, pid: int, model: str | None, tps: float | None, task: str | None = "t1") -> WorkerInfo:
    st = WorkerStatus(worker_id=name, pid=pid, gpus=(0,), state="busy" if task else "idle", heartbeat_at=0.0,
                      current_task=task, tokens_per_s=tps, resident_model=model, residency="llm_busy")
    return WorkerInfo(group=GroupConfig(name, gpus=(0,)), record=WorkerRecord(state=WState.RUNNING), pid=pid,
                      status=st, endpoint=None)


def test_rings_are_bounded_and_cover_the_span():
    keeper = HistoryKeeper(sample_s=2.0, span_s=600.0)
    t = 0.0
    while t < 1500.0:  # 25 minutes of ticks, two a second
        keeper.observe(t, [gpu(0, 50.0)], [])
        t += 0.5
    h = keeper.view(t)
    assert len(h.times) == keeper.capacity == 301
    assert h.times[-1] - h.times[0] >= 600.0
    (g,) = h.gpus
    assert len(g.util_pct) == len(g.temp_c) == len(g.power_w) == len(g.mem_used_mb) == 301


def test_a_gpu_seen_later_is_padded_so_series_stay_aligned():
    keeper = HistoryKeeper(sample_s=2.0, span_s=60.0)
    keeper.observe(0.0, [gpu(0, 10.0)], [])
    keeper.observe(2.0, [gpu(0, 20.0), gpu(1, 90.0)], [])
    keeper.observe(4.0, [gpu(1, None)], [])  # GPU 0 not read this time; GPU 1's util n/a
    h = keeper.view(4.0)
    assert h.gpu(0).util_pct == (10.0, 20.0, None)
    assert h.gpu(1).util_pct == (None, 90.0, None)
    assert h.gpu(1).temp_c == (None, 50.0, 50.0)


def test_samples_are_taken_every_sample_s_not_every_tick():
    keeper = HistoryKeeper(sample_s=2.0, span_s=60.0)
    taken = [keeper.observe(t * 0.5, [gpu(0, 1.0)], []) for t in range(9)]  # 0 .. 4 s
    assert taken == [True, False, False, False, True, False, False, False, True]


def test_tokens_per_s_is_the_mean_over_the_ticks_a_model_was_generating():
    keeper = HistoryKeeper(sample_s=2.0, span_s=60.0)
    keeper.observe(0.0, [], [])
    keeper.observe(0.5, [], [worker("w0", 10, "qwen", 30.0), worker("w1", 11, "qwen", 10.0)])  # 40 summed
    keeper.observe(1.0, [], [worker("w0", 10, "qwen", 20.0), worker("w1", 11, "llama", 5.0)])
    keeper.observe(1.5, [], [worker("w0", 10, "qwen", 1.0, task=None)])  # idle: not counted
    keeper.observe(2.0, [], [])
    keeper.observe(4.0, [], [])
    h = keeper.view(4.0)
    rates = {m.model: m.tokens_per_s for m in h.models}
    assert rates == {"qwen": (None, 30.0, None), "llama": (None, 5.0, None)}


def test_a_model_whose_ring_is_all_gaps_is_dropped():
    keeper = HistoryKeeper(sample_s=1.0, span_s=3.0)
    keeper.observe(0.0, [], [])
    keeper.observe(0.5, [], [worker("w0", 10, "qwen", 30.0)])
    for t in range(1, 6):
        keeper.observe(float(t), [], [])
    assert keeper.view(6.0).models == ()


def test_history_file_round_trips_and_bad_files_are_named(tmp_path):
    keeper = HistoryKeeper(sample_s=2.0, span_s=60.0, pid=99)
    keeper.observe(0.0, [gpu(0, 10.0)], [worker("w0", 10, "qwen", 30.0)])
    keeper.observe(2.0, [gpu(0, 20.0)], [])
    path = tmp_path / "history.json"
    write_history(path, keeper.view(2.0))
    back = read_history(path)
    assert back == keeper.view(2.0) and back.supervisor_pid == 99
    assert read_history(tmp_path / "absent.json") is None
    path.write_text(json.dumps({"version": HISTORY_VERSION + 1}))
    with pytest.raises(SchemaError, match=r"history\.json: history version"):
        read_history(path)
    path.write_text("[" * 100_000)
    with pytest.raises(SchemaError, match=r"history\.json"):
        read_history(path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(SchemaError, match=r"fifo\.json: is a FIFO"):
        read_history(fifo)  # never blocks


def test_a_dashboard_attached_later_sees_the_supervisors_whole_history(tmp_path):
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="t", groups=(GroupConfig("w1", gpus=(0, 1)),),
                       thresholds=Thresholds(snapshot_interval_s=0.5), source=None, origin="test")
    queue = FileQueue(paths, use_inotify=False)
    rig = SimulatedRig.with_count(2, clock=clock)
    sup = Supervisor(cfg, paths, queue, rig, FakeLauncher(), simulated=True, pid=4242)
    try:
        sup.start(clock.now())
        rig.set_load(1, 100.0)
        for _ in range(1300):  # 650 s, over ten minutes
            clock.advance(0.5)
            sup.tick(clock.now())
        h = read_history(paths.state / "history.json")
        assert isinstance(h, RigHistory) and h.supervisor_pid == 4242
        assert h.times[-1] - h.times[0] >= 600.0
        hot = h.gpu(1)
        assert hot is not None and hot.temp_c[0] < hot.temp_c[-1]  # it warmed up under load: all of it is there
        assert all(v == 100.0 for v in hot.util_pct)
    finally:
        queue.close()


def llm_done(task_id: str, tokens: int, model: str = "qwen") -> Task:
    return Task(task_id=task_id, name=task_id, type=TaskType.LLM, task_class=TaskClass.LLM, model=model,
                status=TaskStatus.COMPLETE, result={"tokens_generated": tokens, "text": "x"})


def test_completed_tasks_give_throughput_when_no_live_rate_was_seen():
    keeper = HistoryKeeper(sample_s=2.0, span_s=60.0)
    old = [llm_done("old1", 999)]
    keeper.observe(0.0, [], [], old)  # before this supervisor: remembered, not counted
    keeper.observe(0.5, [], [], [llm_done("a", 100), *old])
    keeper.observe(1.0, [], [], [llm_done("b", 60), llm_done("a", 100), *old])  # "a" only once
    keeper.observe(2.0, [], [], [llm_done("b", 60), llm_done("a", 100)])
    keeper.observe(4.0, [], [], [llm_done("b", 60), llm_done("a", 100)])
    (m,) = keeper.view(4.0).models
    assert m.model == "qwen" and m.tokens_per_s == (None, 80.0, None)  # 160 tokens over the 2 s interval


def test_a_live_rate_wins_over_completions_in_the_same_interval():
    keeper = HistoryKeeper(sample_s=2.0, span_s=60.0)
    keeper.observe(0.0, [], [])
    keeper.observe(1.0, [], [worker("w0", 10, "qwen", 30.0)], [llm_done("a", 1000)])
    keeper.observe(2.0, [], [])
    assert keeper.view(2.0).models[0].tokens_per_s == (None, 30.0)
