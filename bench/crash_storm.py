"""Crash storm: a dependency-heavy batch drained by the real rig while workers, the
supervisor and the whole rig are SIGKILLed at random. Prints figures, asserts nothing.

    nice -n 10 .venv/bin/python bench/crash_storm.py                    # 5,000 tasks, two runs
    nice -n 10 .venv/bin/python bench/crash_storm.py --tasks 300 --seed 2   # a quick look

The rig is ``galaxy supervise --sim --gpus 4`` (4 real ``galaxy worker`` processes, the
real FileQueue); this process plays systemd: it restarts the supervisor whenever it died.
Tasks come in chains of 5 and fan-ins (8 leaves and a join); each runs a shell command with
a child meant to outlive its shell (``sleep 30 &``) that the task itself kills after a few
milliseconds, so a task killed with its worker leaves a process behind unless the rig kills
its group. Figures (each count must be 0): tasks lost (not complete at the end), completed
twice (``task_completed`` events or ledger lines per task), dependents still held at the
end, task processes still alive after their task was offered again or the rig stopped,
and the drain time against the same batch without kills.

How leftovers are seen: this process is the rig's child subreaper, so a task process whose
worker died is re-parented here; it counts when it is still alive after its task has no
claim of a dead worker any more (the queue was read before /proc).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.model import Task  # noqa: E402
from engine.paths import RigPaths  # noqa: E402
from engine.proctable import HostProcessTable  # noqa: E402
from engine.queue.filequeue import FileQueue  # noqa: E402
from engine.queue.ledger import COMPLETE  # noqa: E402
from engine.queue.names import parse_processing_name  # noqa: E402

MARK = "GALAXY_CRASH_STORM"
TASK_CMD = "sleep 30 & c=$!; sleep {s}; kill $c; wait"
TABLE = HostProcessTable()


def build_tasks(n: int, rng: random.Random, sleep_s: float) -> list[Task]:
    """Chains of 5 and fan-ins (8 leaves + 1 join), about half the tasks each."""
    tasks: list[Task] = []
    cmd = TASK_CMD.format(s=sleep_s)
    group = 0
    while len(tasks) < n:
        left = n - len(tasks)
        if rng.random() < 0.5 and left >= 2:
            ids = [f"c{group}.{i}" for i in range(min(5, left))]
            tasks += [Task(task_id=t, name="chain", command=cmd, max_retries=10,
                           depends_on=(ids[i - 1],) if i else ()) for i, t in enumerate(ids)]
        else:
            leaves = [f"f{group}.{i}" for i in range(min(8, left - 1) if left > 1 else 1)]
            tasks += [Task(task_id=t, name="leaf", command=cmd, max_retries=10) for t in leaves]
            if left > len(leaves):
                tasks.append(Task(task_id=f"f{group}.join", name="join", command=cmd, max_retries=10,
                                  depends_on=tuple(leaves)))
        group += 1
    return tasks


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _ppid(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
        fields = raw[raw.rfind(b")") + 2:].split()
        return None if fields[0] == b"Z" else int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Rig:
    root: Path
    run_id: str
    log: Path
    supervisor: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    kills: Counter[str] = field(default_factory=Counter)

    def start(self) -> None:
        env = dict(os.environ, **{MARK: self.run_id})
        with open(self.log, "ab") as log:
            self.supervisor = subprocess.Popen(
                [sys.executable, "-m", "engine.cli.main", "--root", str(self.root), "--config",
                 str(self.root / "none.toml"), "supervise", "--sim", "--gpus", "4", "--tick", "0.1"],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def alive(self) -> bool:
        return self.supervisor is not None and self.supervisor.poll() is None

    def ensure_running(self) -> None:
        if not self.alive():
            self.restarts += 1
            self.start()

    def ours(self) -> list[tuple[int, dict[str, str]]]:
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                env = _environ(int(name))
                if env.get(MARK) == self.run_id:
                    out.append((int(name), env))
        return out

    def workers(self) -> list[int]:
        sup = self.supervisor.pid if self.supervisor else -1
        return [pid for pid, env in self.ours() if "GALAXY_TASK_ID" not in env and pid != sup
                and b"worker" in _cmdline(pid)]

    def kill(self, kind: str, rng: random.Random) -> None:
        workers = self.workers()
        if kind == "worker" and workers:
            victims = [rng.choice(workers)]
        elif kind in ("supervisor", "rig") and self.alive():
            assert self.supervisor is not None
            victims = [self.supervisor.pid] + (workers if kind == "rig" else [])
        else:
            return
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        # Dead before we look again: a task whose worker is dying but not yet dead must not
        # look like one whose worker died and was cleaned up after.
        while any(TABLE.start_ticks(pid) is not None for pid in victims):
            time.sleep(0.005)
        self.kills[kind] += 1

    def stop(self) -> None:
        if self.alive():
            assert self.supervisor is not None
            self.supervisor.send_signal(signal.SIGTERM)
            try:
                self.supervisor.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
                self.supervisor.wait()


def reap_children() -> None:
    """We are the subreaper: collect whatever was re-parented here and exited."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def claimed_by_the_dead(paths: RigPaths) -> set[str]:
    """Tasks still held by a gone worker process (processing/, or grabbed in .tmp/ mid-move)."""
    out = set()
    for name in os.listdir(paths.processing):
        pn = parse_processing_name(name)
        if pn is not None and TABLE.instance_alive(pn.instance) is False:
            out.add(pn.task_id)
    for name in os.listdir(paths.tasks / ".tmp"):
        out.add(name.split("+", 1)[0])
    return out


def leftover_task_processes(rig: Rig, paths: RigPaths, seen: set[int], verbose: bool) -> None:
    """Task processes re-parented here (their worker died) whose task was offered again."""
    pending = claimed_by_the_dead(paths)  # the queue first, then /proc: no false alarm from the order
    me = os.getpid()
    for pid, env in rig.ours():
        task_id = env.get("GALAXY_TASK_ID")
        if task_id and _ppid(pid) in (me, 1) and task_id not in pending and pid not in seen:
            seen.add(pid)
            if verbose:
                where = [f"{d}/{n}" for d in ("queue", "processing", "delayed", "complete", "failed", ".tmp")
                         for n in os.listdir(paths.tasks / d) if task_id in n]
                print(f"leftover pid {pid} pgid {os.getpgid(pid)} of {task_id}: {where}", file=sys.stderr)


def run(n: int, seed: int, kills: bool, sleep_s: float, mean_gap_s: float, timeout_s: float,
        keep: bool, verbose: bool = False) -> dict[str, object]:
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="crash-storm-"))
    root = tmp / "shared"
    paths = RigPaths(root).ensure()
    queue = FileQueue(paths, use_inotify=False)
    tasks = build_tasks(n, rng, sleep_s)
    queue.submit(tasks, time.time())
    rig = Rig(root, f"{seed}-{os.getpid()}-{int(kills)}", tmp / "supervisor.log")
    leaks: set[int] = set()
    started = time.monotonic()
    rig.start()
    next_kill = started + rng.expovariate(1.0 / mean_gap_s)
    done = 0
    while time.monotonic() - started < timeout_s:
        reap_children()
        rig.ensure_running()
        done = len(os.listdir(paths.complete)) + len(os.listdir(paths.failed))
        if done >= len(tasks):
            break
        if kills and time.monotonic() >= next_kill:
            kind = rng.choices(("worker", "supervisor", "rig"), (0.7, 0.15, 0.15))[0]
            rig.kill(kind, rng)
            if verbose:
                print(f"{time.monotonic() - started:7.1f} s: kill {kind}", file=sys.stderr)
            next_kill = time.monotonic() + rng.expovariate(1.0 / mean_gap_s)
        leftover_task_processes(rig, paths, leaks, verbose)
        time.sleep(0.2)
    drain_s = time.monotonic() - started
    rig.stop()
    reap_children()
    leaks |= {pid for pid, env in rig.ours() if "GALAXY_TASK_ID" in env}  # anything of a task after the rig stopped
    completed: Counter[str] = Counter()
    for line in paths.events.read_text(errors="replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "task_completed":
            completed[ev.get("task_id")] += 1
    ledger = Counter(parts[3] for parts in map(str.split, (paths.tasks / "ledger.log").read_text().splitlines())
                     if len(parts) >= 4 and parts[1] == COMPLETE)
    complete_ids = {n[:-5] for n in os.listdir(paths.complete) if n.endswith(".json")}
    figures: dict[str, object] = {
        "tasks": len(tasks), "drain_s": round(drain_s, 1), "finished": done >= len(tasks),
        "lost": len(tasks) - len(complete_ids) - len(os.listdir(paths.failed)),
        "failed": len(os.listdir(paths.failed)),
        "completed_twice": sum(1 for c in completed.values() if c > 1) + sum(1 for c in ledger.values() if c > 1),
        "held_at_end": sum(1 for name in os.listdir(paths.held) if name.endswith(".json")),
        "task_processes_alive_after_worker_died": len(leaks),
        "kills": dict(rig.kills), "supervisor_restarts": rig.restarts,
    }
    queue.close()
    for pid in leaks:  # never leave our leftovers behind
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if keep:
        figures["root"] = str(tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sleep", type=float, default=0.01, help="seconds each task sleeps")
    ap.add_argument("--kill-every", type=float, default=8.0, help="mean seconds between kills")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up a run after this many seconds")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run without kills")
    ap.add_argument("--keep", action="store_true", help="keep the rig roots (paths printed)")
    ap.add_argument("--verbose", action="store_true", help="name each leftover task process as it is seen")
    args = ap.parse_args()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: a dead worker's task processes come to us
    base = None if args.no_baseline else run(args.tasks, args.seed, False, args.sleep, args.kill_every,
                                             args.timeout, args.keep)
    storm = run(args.tasks, args.seed, True, args.sleep, args.kill_every, args.timeout, args.keep, args.verbose)
    if base is not None:
        print(f"without kills: {json.dumps(base)}")
    print(f"crash storm:   {json.dumps(storm)}")
    print(f"tasks lost {storm['lost']}, completed twice {storm['completed_twice']}, dependents held at the end "
          f"{storm['held_at_end']}, task processes alive after their worker died "
          f"{storm['task_processes_alive_after_worker_died']}, failed {storm['failed']}")
    kills = storm["kills"]
    assert isinstance(kills, dict)
    print(f"kills: {sum(kills.values())} ({', '.join(f'{k} {v}' for k, v in sorted(kills.items()))}); "
          f"drain {storm['drain_s']} s" + (f" against {base['drain_s']} s without kills" if base else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
