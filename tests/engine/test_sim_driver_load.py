"""The simulated rig's load follows what each worker runs: GPU work loads its card, CPU work does not."""

from __future__ import annotations

from engine.clock import FakeClock
from engine.config import GroupConfig
from engine.supervisor.sim_driver import BUSY_UTIL_PCT, SimRigDriver
from engine.supervisor.snapshot_builder import WorkerInfo
from engine.supervisor.states import WorkerRecord, WState
from engine.telemetry.sim_rig import SimulatedRig
from engine.workerstate import WorkerStatus


def busy_with(name: str, gpu: int, task_class: str | None) -> WorkerInfo:
    st = WorkerStatus(worker_id=name, pid=100 + gpu, gpus=(gpu,), state="busy" if task_class else "idle",
                      heartbeat_at=0.0, current_task="t" if task_class else None, task_class=task_class)
    return WorkerInfo(group=GroupConfig(name, gpus=(gpu,)), record=WorkerRecord(state=WState.RUNNING), pid=100 + gpu,
                      status=st, endpoint=None)


def test_cpu_tasks_leave_the_card_idle_and_gpu_tasks_load_it():
    rig = SimulatedRig.with_count(4, clock=FakeClock(0.0))
    driver = SimRigDriver(rig)
    driver.drive([busy_with("w0", 0, "cpu"), busy_with("w1", 1, "script"), busy_with("w2", 2, "llm"),
                  busy_with("w3", 3, None)], 0.0)
    assert [rig.load(i) for i in range(4)] == [0.0, BUSY_UTIL_PCT, BUSY_UTIL_PCT, 0.0]
