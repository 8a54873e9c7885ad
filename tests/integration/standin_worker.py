"""A stand-in worker (test double) that speaks the supervisor's file protocol, used until
the foundation's ``galaxy worker`` is available: it reads its control file before each
claim, writes its status file as heartbeat, claims from the real FileQueue, runs shell
tasks with its own environment, and on SIGTERM finishes its task and exits.

``STANDIN_CRASH_AT_START=<code>`` in its environment makes it exit at once (crash loop).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.workerstate import WorkerStatus, read_control, write_json_dataclass


def main() -> int:
    if os.environ.get("STANDIN_CRASH_AT_START"):
        return int(os.environ["STANDIN_CRASH_AT_START"])
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--worker-id", required=True)
    ap.add_argument("--gpu", default="")
    args, _ = ap.parse_known_args()
    paths = RigPaths(args.root)
    queue = FileQueue(paths, use_inotify=False, backoff_base_s=0.05, backoff_cap_s=0.1)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    gpus = tuple(int(g) for g in args.gpu.split(",") if g)
    done = 0
    seq = 0

    def status(state: str, task: str | None = None) -> None:
        write_json_dataclass(paths.worker_status(args.worker_id), WorkerStatus(
            worker_id=args.worker_id, pid=os.getpid(), gpus=gpus, state=state, heartbeat_at=time.time(),
            current_task=task, control_seq=seq, tasks_done=done))

    while not stop["flag"]:
        ctl = read_control(paths.worker_control(args.worker_id))
        seq = ctl.seq if ctl else 0
        mode = ctl.mode if ctl else "run"
        if mode == "drain":
            status("draining")
            return 0
        if mode == "pause" or (ctl and ctl.thermal_hold):
            status("paused" if mode == "pause" else "hot")
            time.sleep(0.05)
            continue
        task = queue.claim(args.worker_id, time.time(), lambda c, now: c, 30.0)
        if task is None:
            status("idle")
            time.sleep(0.05)
            continue
        status("busy", task.task_id)
        proc = subprocess.Popen(["bash", "-c", task.command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            status("busy", task.task_id)
            ctl = read_control(paths.worker_control(args.worker_id))
            seq = ctl.seq if ctl else seq
            time.sleep(0.05)
        out = proc.stdout.read().decode() if proc.stdout else ""
        if proc.returncode == 0:
            queue.complete(task.task_id, args.worker_id, {"output_tail": out}, time.time())
        else:
            queue.fail(task.task_id, args.worker_id, out[-200:], time.time(), return_code=proc.returncode)
        done += 1
    status("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
