"""What a key would do, decided from the snapshot before anything is sent (pure, testable).

The force-unload rules mirror the worker's (engine/residency/manager.py ``force_unload``):
an LLM generating on the card is cut off at once; a model still loading, or a script task
holding its model, keeps running and the unload waits for it to end.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.snapshot import GpuView, WorkerView

STOPPED_STATES = ("stopped", "fatal", "backoff")
"""Worker states with no process to command: ``s`` sends ``resume``, which spawns it (states.py)."""
CANCELLABLE = ("queued", "waiting", "pending", "blocked", "running", "processing", "awaiting", "awaiting_approval")
DEFERRED = ("booting_llm", "booting_script", "script_busy")


@dataclass(frozen=True)
class UnloadPlan:
    nothing: bool  # True: there is nothing to unload; send nothing, say ``text``
    text: str
    question: str | None = None  # None with nothing=False: send at once (a model, no task)


def unload_plan(worker: WorkerView | None, gpu: GpuView | None) -> UnloadPlan:
    if worker is None:
        return UnloadPlan(True, "no worker on this card")
    if worker.state in STOPPED_STATES:
        return UnloadPlan(True, f"worker is {worker.state}: nothing is loaded")
    model = worker.resident_model or (gpu.resident_model if gpu else None)
    residency = worker.residency if worker.residency != "idle" or gpu is None else gpu.residency
    if not model and residency in ("idle", "unloading"):
        return UnloadPlan(True, "no model is resident: nothing to unload")
    what = model or "its model"
    where = f"GPU {gpu.index}" if gpu is not None else worker.worker_id
    task = worker.task_name or worker.current_task
    if residency == "llm_busy" and task:
        return UnloadPlan(False, "", f"Force-unload {what} from {where} now?\nTask {task} is generating on it: it is "
                                     "interrupted (this attempt fails; it is retried if it has tries left).")
    if residency in DEFERRED:
        running = f"Task {task} keeps running; " if task else ""
        step = "loading" if residency.startswith("booting") else "running its task"
        return UnloadPlan(False, "", f"Unload {what} from {where}?\nThe card is {step}: {running}the unload "
                                     "waits for that to end, then frees the card. Nothing is interrupted.")
    if task:  # a task that holds no model of this card (cpu work on a gpu worker)
        return UnloadPlan(False, "", f"Unload {what} from {where}?\nTask {task} does not use it and keeps running.")
    return UnloadPlan(False, f"unload {what}")
