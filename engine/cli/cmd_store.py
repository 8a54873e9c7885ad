"""``galaxy store migrate --to redis://HOST:PORT/DB | file:PATH``: move a rig's tasks to another store.

The source is the configured store (galaxy.toml's ``[store]`` or ``$GALAXY_STORE``: the file root,
or the configured Redis cluster). Refused while a supervisor or a worker runs on it. What moves and
how: engine/store/migrate.py. Exit 0 when moved, 1 when refused (nothing written), 2 when a store
is misconfigured or does not answer, 3 when the target did not take the tasks (it takes them all
or none; the source is then untouched) or tasks changed in the source meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from engine.cli.store_channels import StoreOpenError, report_store_error
from engine.paths import RigPaths
from engine.queue.protocol import RigQueue
from engine.store.rigs_view import RIG_STALE_S
from engine.store.settings import StoreConfig, name_problem, redact_url, url_problem


def register(sub: Any) -> None:
    p = sub.add_parser("store", help="the store that holds the rig's tasks (file root or Redis)")
    verbs = p.add_subparsers(dest="store_command", metavar="VERB")
    m = verbs.add_parser("migrate", help="move waiting, held, delayed and failed tasks to another store "
                                         "(refused while workers or a supervisor run)")
    m.add_argument("--to", required=True, metavar="TARGET",
                   help="redis://HOST:PORT/DB (or rediss://, unix://) or file:PATH (another rig root)")
    m.add_argument("--cluster", default=None,
                   help="the target's cluster name on Redis (default: this config's [store] cluster)")
    m.add_argument("--keep-source", action="store_true",
                   help="leave the moved tasks in the source too (default: remove them there once the "
                        "target holds them all)")
    m.add_argument("--json", action="store_true", help="one JSON object on stdout")
    m.set_defaults(func=run_migrate)
    verbs.required = True


def _target(args: argparse.Namespace, source: StoreConfig) -> tuple[StoreConfig, RigPaths, str]:
    """The target store, the paths its queue opens on, and its name for people."""
    to = str(args.to)
    if to.startswith("file:"):
        raw = to[len("file:"):]
        if not raw:
            raise StoreOpenError("--to file:PATH names no path")
        root = Path(raw).expanduser().resolve()
        return StoreConfig(None, source.cluster, "--to"), RigPaths(root), f"file:{root}"
    why = url_problem(to)
    if why is not None:
        raise StoreOpenError(f"--to: {why} (or file:PATH for a rig root)")
    cluster = args.cluster or source.cluster
    why = name_problem("cluster", cluster)
    if why is not None:
        raise StoreOpenError(f"--cluster: {why}")
    return StoreConfig(to, cluster, "--to"), RigPaths(args.root), f"{redact_url(to)} cluster {cluster!r}"


def _live_supervisors(args: argparse.Namespace, now: float) -> list[str]:
    """Who runs on the source: the pid file's supervisor (file store), rigs publishing lately (Redis)."""
    from engine.cli.store_queue import cli_config
    from engine.store.open import open_channels
    from engine.store.settings import StoreKind
    from engine.supervisor.pidfile import running_supervisor_pid

    paths = RigPaths(args.root)
    channels = open_channels(cli_config(args), paths)
    try:
        if channels.kind is StoreKind.FILE:
            pid = running_supervisor_pid(paths.supervisor_pid)
            return [f"pid {pid} ({paths.supervisor_pid})"] if pid is not None else []
        live = []
        for rig in channels.snapshots.rigs():
            snap = channels.snapshots.latest(rig)
            if snap is not None and not snap.is_stale(now, RIG_STALE_S):
                live.append(f"rig {rig}")
        return live
    finally:
        channels.close()


def run_migrate(args: argparse.Namespace) -> int:
    from engine.cli.store_queue import cli_config, open_cli_queue
    from engine.store.open_queue import open_queue
    from engine.store.settings import effective_store

    now = time.time()
    try:
        source_store = effective_store(cli_config(args).store, os.environ)
        target_store, target_paths, target_name = _target(args, source_store)
        source_name = (f"file:{Path(args.root).resolve()}" if source_store.url is None
                       else f"{redact_url(source_store.url)} cluster {source_store.cluster!r}")
        if source_name == target_name:
            raise StoreOpenError(f"--to names the store the tasks are in already ({source_name})")
        live = _live_supervisors(args, now)
        source = open_cli_queue(args)
    except (StoreOpenError, ValueError, OSError) as exc:
        return _store_error(args, exc if isinstance(exc, StoreOpenError) else StoreOpenError(f"store: {exc}"))
    try:
        try:
            target = open_queue(target_store, target_paths, use_inotify=False)
        except (ValueError, RuntimeError, OSError) as exc:
            return _store_error(args, StoreOpenError(f"target {target_name}: {exc}"))
        try:
            return _migrate(args, source, target, source_name, target_name, live, now)
        finally:
            _close(target)
    finally:
        _close(source)


def _close(q: RigQueue) -> None:
    q.close()


def _migrate(args: argparse.Namespace, source: RigQueue, target: RigQueue, source_name: str, target_name: str,
             live: list[str], now: float) -> int:
    from engine.store import migrate

    out: dict[str, Any] = {"source": source_name, "target": target_name}
    try:
        m = migrate.plan(source, target, live)
    except migrate.MigrationRefused as exc:
        return _answer(args, {**out, "ok": False, "refused": str(exc)}, f"galaxy: migrate refused: {exc}", 1)
    except OSError as exc:
        return _store_error(args, StoreOpenError(f"store: {exc}"))
    out["moved"] = m.summary()
    out["complete_parents_already_there"] = len(m.parents_known)
    try:
        migrate.write(m, target, now)
        problems = migrate.check(m, target)
    except (RuntimeError, ValueError, OSError) as exc:
        msg = (f"the target {target_name} did not take the tasks: {exc}. The source is untouched; the target "
               "takes them in one step (all or none): see `galaxy status` on it")
        return _answer(args, {**out, "ok": False, "error": msg}, f"galaxy: migrate: {msg}", 3)
    if problems:
        msg = f"the target does not hold everything, the source is untouched: {'; '.join(problems[:20])}"
        return _answer(args, {**out, "ok": False, "error": msg}, f"galaxy: migrate: {msg}", 3)
    out["source_removed"] = [] if args.keep_source else migrate.retire(m, source, time.time(), target_name)
    out["ok"] = True
    out["source_left"] = [] if args.keep_source else migrate.left_behind(m, out["source_removed"])
    if out["source_left"]:  # a supervisor started on the source meanwhile: these are in both stores now
        out["ok"] = False
        msg = (f"moved to {target_name}, but {len(out['source_left'])} task(s) changed in the source meanwhile "
               f"(a worker claimed them?) and are in both stores: {', '.join(out['source_left'][:20])}; "
               "cancel them in one of the two")
        return _answer(args, {**out, "error": msg}, f"galaxy: migrate: {msg}", 3)
    moved = ", ".join(f"{n} {k}" for k, n in out["moved"].items())
    text = (f"moved to {target_name}: {moved}"
            + ("; the source keeps them (--keep-source)" if args.keep_source
               else f"; {len(out['source_removed'])} task(s) removed from the source"))
    return _answer(args, out, text, 0)


def _store_error(args: argparse.Namespace, exc: StoreOpenError) -> int:
    """Exit 2 naming the store; with --json also ``{"ok": false, "error": ...}`` on stdout."""
    if args.json:
        print(json.dumps({"ok": False, "error": str(exc)}, indent=2, sort_keys=True))
    return report_store_error(exc)


def _answer(args: argparse.Namespace, data: dict[str, Any], text: str, code: int) -> int:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(text, file=sys.stderr if code else sys.stdout)
    return code
