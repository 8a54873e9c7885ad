"""``galaxy cluster ...``, ``galaxy escalations``, ``galaxy approve``, ``galaxy deny``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.usage import help_and_fail
from engine.escalation.store import EscalationState
from engine.event_types import EventType
from engine.paths import RigPaths
from engine.textsafe import one_line, terminal_safe

if TYPE_CHECKING:
    from engine.escalation.manager import EscalationManager
    from engine.routing.nodes import EscalationConfig, RoutingConfig
    from engine.snapshot import CommandAck, Snapshot
    from engine.store.open import Channels
from engine.routing.breaker import BreakerState

ACK_WAIT_S = 15.0


def _config_path(args: argparse.Namespace) -> Path:
    explicit = getattr(args, "config", None)
    return Path(explicit or os.environ.get("GALAXY_CONFIG", "galaxy.toml"))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = sub.add_parser("cluster", help="LLM nodes and tiers: status, add, remove, test")
    csub = cluster.add_subparsers(dest="cluster_cmd", metavar="ACTION")
    st = csub.add_parser("status", help="nodes, tier, model, health, latency, load, breaker")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    add = csub.add_parser("add", help="add a [[node]] to galaxy.toml")
    add.add_argument("name")
    add.add_argument("--endpoint", required=True)
    add.add_argument("--backend", choices=["ollama", "openai", "anthropic"], default="ollama")
    add.add_argument("--model", required=True)
    add.add_argument("--tier", type=int, required=True)
    add.add_argument("--context-window", type=int, default=8192)
    add.add_argument("--max-concurrency", type=int, default=1)
    add.add_argument("--auth-env", default=None, help="environment variable that holds the token/key")
    add.add_argument("--external", action="store_true", help="a cloud node: used only after approval")
    add.add_argument("--price-in", type=float, default=0.0, help="USD per million input tokens")
    add.add_argument("--price-out", type=float, default=0.0, help="USD per million output tokens")
    add.set_defaults(func=cmd_add)
    rm = csub.add_parser("remove", help="remove a node from galaxy.toml")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)
    test = csub.add_parser("test", help="health-check every local node now")
    test.add_argument("--json", action="store_true")
    test.set_defaults(func=cmd_test)
    route = csub.add_parser("route", help="show where a prompt would go (sends nothing)")
    route.add_argument("prompt")
    route.add_argument("--tier", type=int, default=None)
    route.add_argument("--json", action="store_true", help="the decision as JSON")
    route.set_defaults(func=cmd_route)
    brk = csub.add_parser("breaker", help="reset a node's circuit breaker, or force it open (maintenance)")
    brk.add_argument("name")
    brk.add_argument("action", choices=["reset", "open"])
    brk.set_defaults(func=cmd_breaker)
    cluster.set_defaults(func=help_and_fail(cluster))

    esc = sub.add_parser("escalations", help="escalations awaiting approval, with payload and cost")
    esc.add_argument("--all", action="store_true", help="include decided ones")
    esc.add_argument("--json", action="store_true")
    esc.set_defaults(func=cmd_escalations)
    ap = sub.add_parser("approve", help="approve an escalation (only then is anything sent)")
    ap.add_argument("escalation_id")
    ap.add_argument("--override-budget", action="store_true")
    ap.add_argument("--leave-for-supervisor", action="store_true",
                    help="without a supervisor: record the approval only; the next supervisor sends it once")
    ap.add_argument("--wait", type=float, default=ACK_WAIT_S,
                    help="seconds to wait for a running supervisor's ack before withdrawing the command")
    ap.set_defaults(func=cmd_approve)
    dn = sub.add_parser("deny", help="deny an escalation")
    dn.add_argument("escalation_id")
    dn.add_argument("--reason", required=True)
    dn.add_argument("--wait", type=float, default=ACK_WAIT_S,
                    help="seconds to wait for a running supervisor's ack before withdrawing the command")
    dn.set_defaults(func=cmd_deny)


def _load(args: argparse.Namespace) -> tuple[RoutingConfig, EscalationConfig]:
    from engine.routing.nodes import NodeConfigError, load_routing

    try:
        return load_routing(_config_path(args))
    except NodeConfigError as exc:
        raise SystemExit(f"galaxy: {exc}") from None


def _channels(args: argparse.Namespace) -> Channels:
    """The configured store's channels, opened once per command (engine.cli.store_channels)."""
    from engine.cli.store_channels import StoreOpenError, open_cli_channels

    opened = getattr(args, "store_channels", None)
    if opened is None:
        try:
            opened = open_cli_channels(args)
        except StoreOpenError as exc:
            raise SystemExit(f"galaxy: {exc}") from None
        args.store_channels = opened
    return opened


def _live_snapshot(args: argparse.Namespace) -> Snapshot | None:
    from engine.cli.store_channels import latest_snapshot

    try:
        snap = latest_snapshot(_channels(args))
    except Exception:  # noqa: BLE001 - a broken snapshot just means "no live view"
        return None
    if snap is None or time.time() - snap.taken_at > 5:
        return None
    return snap


def cmd_status(args: argparse.Namespace) -> int:
    routing, _ = _load(args)
    snap = _live_snapshot(args)
    rows: list[dict[str, Any]]
    if snap is not None and snap.nodes:
        rows = [dict(n.__dict__) for n in snap.nodes]
        origin = "live (from the supervisor's snapshot)"
    else:
        rows = [_row(n, None) for n in routing.nodes]
        origin = "from galaxy.toml (no supervisor running: health not checked; run `galaxy cluster test`)"
    return _print_nodes(rows, origin, args.json)


def _row(n: Any, st: Any) -> dict[str, Any]:
    return {"name": n.name, "tier": n.tier, "backend": n.backend, "endpoint": n.endpoint, "model": n.model,
            "external": n.external, "healthy": None if st is None else st.healthy,
            "latency_ms": None if st is None else st.latency_ms, "load": 0 if st is None else st.in_flight,
            "breaker": BreakerState.CLOSED if st is None else st.breaker.state,
            "detail": "" if st is None else st.detail}


def _print_nodes(rows: list[dict[str, Any]], origin: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"origin": origin, "nodes": rows}, indent=2))
        return 0
    if not rows:
        print("no nodes configured: add one with `galaxy cluster add NAME --endpoint URL --model M --tier N`")
        return 0
    print(origin)
    print(f"{'NODE':<16}{'TIER':>4}  {'BACKEND':<10}{'MODEL':<22}{'HEALTH':<9}{'LATENCY':>9}{'LOAD':>5}  BREAKER")
    for r in sorted(rows, key=lambda r: (r["tier"], r["name"])):
        health = "external" if r.get("external") else {True: "ok", False: "DOWN", None: "n/a"}[r["healthy"]]
        lat = "n/a" if r.get("latency_ms") is None else f"{r['latency_ms']:.0f} ms"
        print(f"{r['name']:<16}{r['tier']:>4}  {r['backend']:<10}{r['model'][:21]:<22}{health:<9}{lat:>9}"
              f"{r.get('load', 0):>5}  {r.get('breaker', 'closed')}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from engine.routing.nodes import NodeConfig, NodeConfigError, _node_from, append_node

    try:
        node = _node_from({"name": args.name, "endpoint": args.endpoint, "backend": args.backend,
                           "model": args.model, "tier": args.tier, "context_window": args.context_window,
                           "max_concurrency": args.max_concurrency, "auth_env": args.auth_env,
                           "external": args.external, "price_in_per_mtok": args.price_in,
                           "price_out_per_mtok": args.price_out}, "galaxy cluster add")
        append_node(_config_path(args), node)
    except NodeConfigError as exc:
        print(f"galaxy: {exc}")
        return 1
    assert isinstance(node, NodeConfig)
    print(f"added node {node.name} (tier {node.tier}, {node.backend} {node.model}) to {_config_path(args)}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from engine.routing.nodes import NodeConfigError, remove_node

    path = _config_path(args)
    try:
        removed = path.exists() and remove_node(path, args.name)
    except NodeConfigError as exc:  # a FIFO, device or oversize file at the config's name
        print(f"galaxy: {exc}")
        return 1
    if not removed:
        print(f"galaxy: no node named {args.name!r} in {path}")
        return 1
    print(f"removed node {args.name} from {path}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from engine.routing.backends import backend_for
    from engine.routing.router import Router
    from engine.routing.snapshot_router import nodes_from_views

    routing, _ = _load(args)
    snap = _live_snapshot(args)
    if snap is not None:  # the rig's own GPU groups are nodes too (their endpoints are only known live)
        known = {n.name for n in routing.nodes}
        routing = replace(routing, nodes=routing.nodes + tuple(n for n in nodes_from_views(snap.nodes)
                                                               if n.name not in known))
    router = Router(routing, backend_for)
    states = router.check_health()
    rows = [_row(n, states.get(n.name)) for n in routing.nodes]
    _print_nodes(rows, "health checked now", args.json)
    return 0 if all(r["healthy"] or r["external"] for r in rows) else 1


def cmd_route(args: argparse.Namespace) -> int:
    from engine.routing.backends import backend_for
    from engine.routing.complexity import LlmRequest
    from engine.routing.router import Router

    routing, _ = _load(args)
    router = Router(routing, backend_for)
    decision = router.decide(LlmRequest(prompt=args.prompt, tier=args.tier))
    if getattr(args, "json", False):
        import dataclasses

        print(json.dumps({**dataclasses.asdict(decision), "summary": router.describe(decision)}, indent=2))
        return 0
    print(router.describe(decision))
    return 0


# ---- escalations ----
def _manager(args: argparse.Namespace) -> EscalationManager:
    from engine.escalation.service import build_manager

    routing, esc_cfg = _load(args)
    paths = RigPaths(args.root).ensure()

    def answered(e: Any) -> None:
        from engine.cli.store_queue import open_cli_queue

        queue = open_cli_queue(args)  # the store's queue: the task may wait in Redis
        try:
            queue.resolve_failed(e.task_id, {"text": e.answer, "escalation_id": e.escalation_id,
                                             "served_by": f"{e.provider} ({e.model})", "tokens_in": e.tokens_in,
                                             "tokens_out": e.tokens_out, "cost_usd": e.cost_usd,
                                             "advice_only": True}, time.time())
        finally:
            queue.close()

    def back_to_failed(reason: Callable[[Any], str], event: EventType) -> Callable[[Any], None]:
        def move(e: Any) -> None:  # the task waited in tasks/awaiting/: failed/, from where retry runs it
            from engine.cli.store_queue import open_cli_queue

            queue = open_cli_queue(args)
            try:
                if queue.awaiting.get(e.task_id) is not None:
                    queue.awaiting.fail(e.task_id, reason(e), time.time(), event=event)
            finally:
                queue.close()
        return move

    from engine.queue.awaiting import denial_reason

    channels = _channels(args)
    return build_manager(paths, routing, esc_cfg, on_answer=answered, store=channels.escalations,
                         audit=channels.audit,
                         on_denied=back_to_failed(lambda e: denial_reason(e.decided_by, e.deny_reason),
                                                  EventType.TASK_ESCALATION_DENIED),
                         on_failed=back_to_failed(lambda e: f"escalation {e.escalation_id} failed: {e.error}",
                                                  EventType.TASK_ESCALATION_FAILED))


def cmd_escalations(args: argparse.Namespace) -> int:
    from engine.escalation.service import cost_summary, preview_of

    m = _manager(args)
    now = time.time()
    rows = m.store.all() if args.all else m.pending()
    if args.json:
        print(json.dumps({"costs": cost_summary(m, now), "escalations": [
            {"escalation_id": e.escalation_id, "task_id": e.task_id, "state": e.state, "reason": e.reason,
             "provider": e.provider, "model": e.model, "est_input_tokens": e.est_input_tokens,
             "est_cost_usd": e.est_cost_usd, "expires_at": e.expires_at, "payload": e.payload,
             "answer": e.answer, "cost_usd": e.cost_usd, "deny_reason": e.deny_reason,
             "decided_by": e.decided_by, "decided_at": e.decided_at} for e in rows]}, indent=2))
        return 0
    c = cost_summary(m, now)
    print(f"budget today ({c['today']}): spent ${c['spent_usd']:.4f} of ${c['budget_usd']:.2f}, "
          f"left ${c['left_usd']:.4f}")
    if not rows:
        print("no escalations pending")
        return 0
    for e in rows:
        left = "" if e.expires_at is None or e.state != EscalationState.PENDING else f", expires in {max(0, e.expires_at - now):.0f}s"
        print(f"\n{e.escalation_id}  [{e.state}]  task {e.task_id}  -> {e.provider} ({e.model}){left}")
        print(f"  why: {one_line(e.reason)}")
        if e.decided_by or e.state == EscalationState.EXPIRED:
            from engine.escalation.decisions import clock_text

            print(f"  decided: {e.state} by {e.decided_by or 'expiry'} at {clock_text(e.decided_at)}"
                  + (f": {one_line(e.deny_reason)}" if e.deny_reason else ""))
        print(f"  estimate: ~{e.est_input_tokens} input tokens, up to ${e.est_cost_usd:.4f}")
        if e.state == EscalationState.PENDING:
            print("  would send exactly:")
            print("    " + terminal_safe(preview_of(e)).replace("\n", "\n    "))
    return 0


def _supervisor_live(args: argparse.Namespace) -> bool:
    from engine.cli.store_channels import supervisor_running

    return supervisor_running(_channels(args), RigPaths(args.root), time.time()) and \
        _live_snapshot(args) is not None


def _wait_ack(args: argparse.Namespace, command_id: str, seconds: float) -> CommandAck | None:
    from engine.cli.store_channels import wait_ack

    return wait_ack(_channels(args), command_id, seconds, poll_s=0.2)


def _send_command(args: argparse.Namespace, kind: str, target: str, *, withdraw: bool = False,
                  **cmd_args: Any) -> int | None:
    """With a live supervisor the command goes through its channel (and its audit log); None
    when no supervisor runs. ``withdraw``: when no ack comes, unlink the command file; if
    that succeeds the supervisor never applies it and the caller decides here (None); if the
    file is gone already the supervisor took it, and what it decided is reported."""
    from engine.commands import CommandKind, default_source, make_command

    if not _supervisor_live(args):
        return None
    cmd = make_command(CommandKind(kind), target, source=default_source("cli"), **cmd_args)
    sink = _channels(args).commands
    sink.send(cmd)
    wait = float(getattr(args, "wait", ACK_WAIT_S))
    ack = _wait_ack(args, cmd.command_id, wait)
    if ack is None and withdraw:
        if not sink.withdraw(cmd):
            ack = _wait_ack(args, cmd.command_id, max(wait, ACK_WAIT_S))  # taken: its ack is on the way
        else:
            print(f"the supervisor did not answer in {wait:g} s; the command was withdrawn "
                  "(it will not be applied) and this CLI decides instead", file=sys.stderr)
            return None
    if ack is None:
        print(f"sent {kind} {target}; the supervisor took it but has not acknowledged it yet "
              "(see `galaxy escalations --all`)" if withdraw else
              f"sent {kind} {target}; the supervisor has not acknowledged it yet (see `galaxy escalations --all`)")
        return 1
    print(f"{ack.outcome}: {ack.message}")
    return 0 if ack.outcome == "ok" else 1


def cmd_breaker(args: argparse.Namespace) -> int:
    kind = "breaker_reset" if args.action == "reset" else "breaker_open"
    rc = _send_command(args, kind, args.name)
    if rc is None:
        print("galaxy: no supervisor is running; breakers live in the supervisor (start it with `galaxy up`)")
        return 3
    return rc


def cmd_approve(args: argparse.Namespace) -> int:
    """One decision, whoever races: through the supervisor when one runs (it decides in its
    tick and sends), else here under the escalation's lock, then sent from here or left for
    the next supervisor (``--leave-for-supervisor``), which sends it exactly once."""
    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.commands import default_source
    from engine.escalation.manager import BudgetExceeded, EscalationStateError
    from engine.escalation.providers import ProviderError
    from engine.ids import IdKind

    if bad_id(IdKind.ESCALATION, args.escalation_id):
        return BAD_ID_EXIT
    rc = _send_command(args, "approve", args.escalation_id, withdraw=True, override_budget=args.override_budget)
    if rc is not None:
        return rc
    m = _manager(args)
    by = default_source("cli")
    now = time.time()
    try:
        e = m.decide_approve(args.escalation_id, now, by, override_budget=args.override_budget)
    except (KeyError, EscalationStateError, BudgetExceeded) as exc:
        print(f"galaxy: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "leave_for_supervisor", False):
        print(f"approved {e.escalation_id} by {by}; no supervisor is running: recorded for the next "
              "supervisor to send (exactly once)")
        return 0
    try:
        out = m.send_approved(e.escalation_id, now, by=by)
    except ProviderError as exc:
        print(f"galaxy: {exc}", file=sys.stderr)
        return 1
    if out is None:
        print(f"approved {e.escalation_id} by {by}; another process is sending it")
        return 0
    print(f"approved {e.escalation_id} by {by}; no supervisor is running, so this CLI sent it: {out.message}")
    return 0 if out.escalation.state == EscalationState.ANSWERED else 1


def cmd_deny(args: argparse.Namespace) -> int:
    from engine.cli.idcheck import BAD_ID_EXIT, bad_id
    from engine.commands import default_source
    from engine.escalation.manager import EscalationStateError
    from engine.ids import IdKind

    if bad_id(IdKind.ESCALATION, args.escalation_id):
        return BAD_ID_EXIT
    rc = _send_command(args, "deny", args.escalation_id, withdraw=True, reason=args.reason)
    if rc is not None:
        return rc
    m = _manager(args)
    try:
        out = m.deny(args.escalation_id, time.time(), by=default_source("cli"), reason=args.reason)
    except (KeyError, EscalationStateError, ValueError) as exc:
        print(f"galaxy: {exc}", file=sys.stderr)
        return 1
    print(out.message)
    return 0
