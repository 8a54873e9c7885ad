"""``galaxy submit | worker | status | retry | cancel``: the queue from the command line.

Every operation here is safe from any process at any time (the queue's moves are renames
and its multi-file changes take the deps lock), so they work with or without a running
supervisor.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.logsetup import add_log_level_arg
from engine.model import worker_at
from engine.paths import RigPaths
from engine.textsafe import one_line, terminal_safe

if TYPE_CHECKING:
    from engine.model import Task
    from engine.queue.protocol import RigQueue


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("submit", help="queue a Markdown plan or a task .json file",
                       description="Queue a plan (plan.md) or task file(s) (.json: one task object or a list). "
                                   "A relative plan path that does not exist is also looked for under <root>/plans/.")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--source", default=None, help="who submitted it (default: cli user@host)")
    p.set_defaults(func=run_submit)

    w = sub.add_parser("worker", help="run one worker in the foreground (what the supervisor spawns)")
    w.add_argument("--gpu", action="append", default=[], help="GPU index; repeat or comma-separate (--gpu 1,3)")
    w.add_argument("--worker-id", default=None, help="default: gpu<N>[-<M>] or cpu")
    w.add_argument("--classes", default=None, help="only these task classes (e.g. llm,script)")
    w.add_argument("--prefer", default=None, help="prefer these classes (e.g. script)")
    w.add_argument("--executor", default="worker", help="role of this worker (worker | brain)")
    w.add_argument("--endpoint", default=None, help="LLM server URL for this GPU group")
    w.add_argument("--backend", default="none", choices=("ollama", "openai", "router", "none"))
    w.add_argument("--lease", type=float, default=60.0, help="lease seconds (heartbeat every third)")
    w.add_argument("--grace", type=float, default=30.0, help="seconds a running task gets after SIGTERM")
    w.add_argument("--models", default=None,
                   help='the group\'s models table as JSON, e.g. \'{"transcribe": "tiny.en"}\' '
                        "(default: $GALAXY_WORKER_MODELS; galaxy.toml's [group.models] via the supervisor)")
    w.add_argument("--log-file", type=Path, default=None,
                   help="JSON log lines to this file, rotated by size (default: $GALAXY_LOG_FILE, else stderr)")
    add_log_level_arg(w)
    w.add_argument("--max-tasks", type=int, default=None, help=argparse.SUPPRESS)
    w.add_argument("--exit-when-idle", action="store_true", help=argparse.SUPPRESS)
    w.set_defaults(func=run_worker)

    s = sub.add_parser("status", help="queue counts, oldest waiting and why, failures with reasons")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--limit", type=int, default=10)
    s.set_defaults(func=run_status)

    r = sub.add_parser("retry", help="put a failed task (and the dependents it took down) back in the queue")
    r.add_argument("task_id", nargs="?")
    r.add_argument("--all-failed", action="store_true")
    r.set_defaults(func=run_retry)

    c = sub.add_parser("cancel", help="cancel a waiting or running task (it goes to failed/)")
    c.add_argument("task_id")
    c.add_argument("--reason", default="cancelled by operator")
    c.set_defaults(func=run_cancel)


def _queue(args: argparse.Namespace, *, use_inotify: bool = False) -> RigQueue:
    """The queue of the store galaxy.toml or $GALAXY_STORE names (the file store by default);
    exit 2 naming the problem when it cannot be opened."""
    from engine.cli.store_channels import StoreOpenError
    from engine.cli.store_queue import open_cli_queue

    try:
        return open_cli_queue(args, use_inotify=use_inotify)
    except StoreOpenError as exc:
        print(f"galaxy: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _submitting_rig(args: argparse.Namespace) -> str | None:
    """The rig a plan's tasks are pinned to by default: this rig, on a store several rigs share
    (their paths are on its disk); None on the file store (one rig: nothing to pin, files unchanged)."""
    import os

    from engine.cli.store_channels import StoreOpenError
    from engine.cli.store_queue import cli_config
    from engine.store.settings import effective_store

    try:
        config = cli_config(args)
        return config.rig if effective_store(config.store, os.environ).url is not None else None
    except (StoreOpenError, ValueError):
        return None  # opening the queue says what is wrong


def _source(args: argparse.Namespace) -> str:
    if getattr(args, "source", None):
        return str(args.source)
    from engine.commands import default_source

    return default_source("cli")


# ------------------------------------------------------------------ submit
def load_task_json(path: Path, *, now: float, source: str) -> list[Task]:
    from engine import safeio
    from engine.model import MAX_TASK_FILE_BYTES, Task

    try:  # the bounded reader: a regular file (a link you made is followed), size, UTF-8, depth
        data = safeio.read_json(path, MAX_TASK_FILE_BYTES, follow_symlinks=True)
    except safeio.UnsafeFileError as exc:  # a directory, a FIFO, too big, too deep: named, nothing queued
        raise SubmitRefused([f"{path}: {exc.reason}"]) from None
    items = data if isinstance(data, list) else [data]
    tasks = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(data, list) else str(path)
        if isinstance(item, dict):
            item = {**item}
            item.setdefault("source", source)
            if "task_id" not in item:
                from engine.model import new_task_id

                item["task_id"] = new_task_id()
        tasks.append(Task.from_dict(item, where=where))
    return tasks


class SubmitRefused(Exception):
    """Nothing was queued; ``lines`` say why (each naming file and line where known)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _load_plan(path: Path, root: Path, now: float, source: str, rig: str | None = None) -> list[Task]:
    try:
        from engine.plans import PlanError, load_plan
    except ImportError:
        raise SubmitRefused([f"{path}: Markdown plans are not supported in this build; submit task JSON"]) from None
    try:
        from engine.plans import resolve_plan_path

        path = resolve_plan_path(path, root)
    except ImportError:
        if not path.exists() and not path.is_absolute() and (root / path).exists():
            path = root / path
    if not path.exists() and not path.is_absolute() and (root / "plans" / path).exists():
        path = root / "plans" / path
    try:
        return load_plan(path, now=now, source=source, rig=rig)
    except PlanError as exc:
        raise SubmitRefused(list(exc.errors)) from None


def run_submit(args: argparse.Namespace) -> int:
    from engine.model import TaskValidationError

    now = time.time()
    source = _source(args)
    tasks = []
    rig = _submitting_rig(args) if any(p.suffix.lower() in (".md", ".markdown") for p in args.files) else None
    try:
        for path in args.files:
            try:
                if path.suffix.lower() in (".md", ".markdown"):
                    tasks.extend(_load_plan(path, args.root, now, source, rig))
                else:
                    if not path.exists():
                        print(f"{path}: no such file", file=sys.stderr)
                        return 1
                    tasks.extend(load_task_json(path, now=now, source=source))
            except OSError as exc:  # a directory, no permission: name it instead of a traceback
                raise SubmitRefused([f"{path}: cannot read it: {exc.strerror or exc}"]) from None
        q = _queue(args, use_inotify=True)
        try:
            ids = q.submit(tasks, now)
        finally:
            q.close()
    except TaskValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SubmitRefused as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        print("nothing was queued", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, read-only root: the submission is all or nothing (engine.queue.submit)
        from engine.queue.fsops import as_write_error

        print(f"error: {as_write_error(exc, exc.filename or args.root)}; nothing was queued", file=sys.stderr)
        return 1
    held = sum(1 for t in tasks if t.depends_on)
    for t in tasks:
        if t.fix_applied:
            print(f"note: {t.plan or t.task_id}: {t.fix_applied}")
    print(f"submitted {len(ids)} task(s): {len(ids) - held} queued, {held} waiting on dependencies")
    for task_id in ids[:20]:
        print(f"  {task_id}")
    if len(ids) > 20:
        print(f"  ... and {len(ids) - 20} more")
    return 0


# ------------------------------------------------------------------ worker
def _gpus(values: list[str]) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        for part in str(v).split(","):
            if part.strip():
                out.append(int(part))
    return tuple(out)


MODELS_ENV = "GALAXY_WORKER_MODELS"


def models_from_text(text: str | None) -> dict[str, str]:
    """The group's models table (kind or name -> model name or path) from its JSON form."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError('must be a JSON object of strings, e.g. {"transcribe": "tiny.en"}')
    return dict(data)


def run_worker(args: argparse.Namespace) -> int:
    """Parse and check the arguments; the worker itself is engine.worker.main.run_worker."""
    import os

    from engine.model import TaskClass
    from engine.queue.names import is_safe_worker_id
    from engine.worker.loop import classes_from_text
    from engine.worker.main import WorkerLaunch
    from engine.worker.main import run_worker as run_worker_process

    try:
        gpus = _gpus(args.gpu)
        allowed = classes_from_text(args.classes) or tuple(TaskClass)
        preferred = classes_from_text(args.prefer)
    except ValueError as exc:
        print(f"galaxy worker: {exc} (--gpu takes indices like 1 or 1,3; classes are cpu, script, llm, resource)",
              file=sys.stderr)
        return 2
    worker_id = args.worker_id or (("gpu" + "-".join(map(str, gpus))) if gpus else "cpu")
    try:
        models = models_from_text(args.models if args.models is not None else os.environ.get(MODELS_ENV))
    except ValueError as exc:
        print(f"galaxy worker: --models / ${MODELS_ENV}: {exc}", file=sys.stderr)
        return 2
    if not is_safe_worker_id(worker_id):
        print(f"galaxy worker: worker id {worker_id!r} must be letters, digits, '_', '-', '.' (max 64)",
              file=sys.stderr)
        return 2
    log = _worker_logging(args, worker_id)
    launch = WorkerLaunch(root=Path(args.root), worker_id=worker_id, gpus=gpus, allowed=allowed, preferred=preferred,
                          models=models, backend=args.backend, endpoint=args.endpoint, executor=args.executor,
                          lease_s=args.lease, grace_s=args.grace, max_tasks=args.max_tasks,
                          exit_when_idle=args.exit_when_idle)
    return run_worker_process(launch, log)


def _worker_logging(args: argparse.Namespace, worker_id: str) -> logging.Logger:
    """The worker's own rotated JSON log (the supervisor names it in $GALAXY_LOG_FILE), else stderr."""
    import os

    from engine.logsetup import LOG_FILE_ENV, LOG_LEVEL_ENV, LogConfig, setup_logging

    log_file = args.log_file or (Path(os.environ[LOG_FILE_ENV]) if os.environ.get(LOG_FILE_ENV) else None)
    level = args.log_level or os.environ.get(LOG_LEVEL_ENV) or "info"
    try:
        cfg = LogConfig(max_mb=float(os.environ.get("GALAXY_LOG_MAX_MB", "10")),
                        backups=int(os.environ.get("GALAXY_LOG_BACKUPS", "5")))
    except ValueError:
        cfg = LogConfig()
    setup_logging(level=level, log_file=log_file, config=cfg)
    return logging.getLogger(f"galaxy.worker.{worker_id}")


# ------------------------------------------------------------------ status
def run_status(args: argparse.Namespace) -> int:
    if not RigPaths(args.root).tasks.is_dir():
        print(f"galaxy: no rig at {args.root} (no tasks/ folder): check --root or $GALAXY_ROOT; "
              "`galaxy submit` or `galaxy up` creates it", file=sys.stderr)
        return 2
    now = time.time()
    from engine.cli.status_data import read_cluster, status_data

    data = status_data(args.root, now, args.limit, _queue(args), read_cluster(args, now))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    totals = data["totals"]
    print(f"galaxy queue at {data['root']}")
    sup = data["supervisor"]
    if sup is not None and sup["fresh"]:
        up = sup["uptime_s"]
        print(f"supervisor pid {sup['pid']}, up {_uptime(up) if up is not None else '?'}")
    elif sup is not None:
        print(f"supervisor: no snapshot for {now - sup['snapshot_at']:.0f}s (last from pid {sup['pid']})")
    print("  " + "  ".join(f"{state}: {totals.get(state, 0)}" for state in
                           ("held", "delayed", "queue", "processing", "complete", "failed", "awaiting")))
    for state, by in data["counts"].items():
        if by:
            print(f"  {state:<11}" + ", ".join(f"{cls} {n}" for cls, n in sorted(by.items())))
    if data.get("rigs"):
        _print_rigs(data["rigs"])
    elif data["workers"] is not None:
        print("workers:")
        for w in data["workers"]:
            print(f"  {w['worker_id']:<12} gpus {w['gpus']}  {w['state']:<9} {w['current_task'] or ''}")
    if data["model_demand"]:
        print("model demand (last hour):")
        for model, d in sorted(data["model_demand"].items()):
            run = f"{d['task_s']:.1f} s typical ({d['task_s_samples']} runs)" if d["task_s"] is not None else \
                "run time not learned yet"
            print(f"  {terminal_safe(model):<24} {d['workers_busy']:.2f} workers busy, {d['claimable']} tasks arrived, {run}")
    rows = data["running"] + data["waiting"] + data["failed"]
    width = min(60, max([len(r["task_id"]) for r in rows] or [10]))
    if data["running"]:
        print("running:")
        for r in data["running"]:
            print(f"  {r['task_id']:<{width}}  {worker_at(r['worker_id'], r.get('rig')):<12} {one_line(r['name'])}")
    if data["orphaned"]:
        print("claimed by a worker process that is gone (handed back when the supervisor runs):")
        for r in data["orphaned"]:
            print(f"  {r['task_id']:<{width}}  {r['worker_id'] or '':<12} {one_line(r['name'])}")
    if data["waiting"]:
        print("oldest waiting:")
        for w in data["waiting"]:
            print(f"  {w['task_id']:<{width}}  {w['waiting_s']:>7.0f}s  {one_line(w['reason'])}")
    if data["failed"]:
        print("failed:")
        for f in data["failed"]:
            print(f"  {f['task_id']:<{width}}  {one_line(f['error'])}")
    if data["awaiting_approval"]:
        print("awaiting approval (not failed; `galaxy escalations` to decide):")
        for a in data["awaiting_approval"]:
            print(f"  {a['task_id']:<{width}}  {a['escalation_id'] or '?'}  after: {one_line(a['error'])}")
    return 0


def _print_rigs(rigs: list[dict[str, Any]]) -> None:
    """Each rig of a shared store: live or STALE, its supervisor, then its workers."""
    print(f"rigs ({len(rigs)}):")
    for r in rigs:
        sup = r["supervisor"]
        who = f"supervisor pid {sup['pid']}" if sup is not None else "no supervisor snapshot"
        if sup is not None and sup["uptime_s"] is not None and not r["stale"]:
            who += f", up {_uptime(sup['uptime_s'])}"
        age = f"{r['age_s']:.0f}s ago" if r["age_s"] is not None else "never"
        state = f"STALE (last snapshot {age}: its claims are reaped by the others when their leases end)" \
            if r["stale"] else f"live, {r['gpus']} GPU(s)"
        print(f"  {r['rig']}: {state}; {who}" + (f"; {r['problem']}" if r["problem"] else ""))
        for w in r["workers"] or []:
            print(f"    {w['worker_id']:<12} gpus {w['gpus']}  {w['state']:<9} {w['current_task'] or ''}")


def _uptime(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    return (f"{days}d " if days else "") + f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


# ------------------------------------------------------------------ retry / cancel
def run_retry(args: argparse.Namespace) -> int:
    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.ids import IdKind

    if args.task_id and not args.all_failed and bad_id(IdKind.TASK, args.task_id):
        return BAD_ID_EXIT  # before the queue (and its folders) is even opened
    if not args.task_id and not args.all_failed:
        print("give a task id or --all-failed", file=sys.stderr)
        return 2
    q = _queue(args)
    now = time.time()
    try:
        if args.all_failed:
            ids = q.retry_all_failed(now)
            print(f"retried {len(ids)} task(s)" + (": " + ", ".join(ids[:20]) if ids else ""))
            return 0
        verdict = q.retry(args.task_id, now)  # the supervisor's retry command says the same
    finally:
        q.close()
    if verdict:
        print(f"{args.task_id} is back in the queue")
        return 0
    print(f"cannot retry: {verdict.message}", file=sys.stderr)
    return 1


def run_cancel(args: argparse.Namespace) -> int:
    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.ids import IdKind

    if bad_id(IdKind.TASK, args.task_id):
        return BAD_ID_EXIT
    q = _queue(args)
    try:
        verdict = q.cancel(args.task_id, time.time(), args.reason)
    finally:
        q.close()
    if verdict:
        print(f"{args.task_id} cancelled")
        return 0
    print(f"cannot cancel: {verdict.message}", file=sys.stderr)
    return 1
