"""The escalation records' contract (``EscalationRecords``), for the file store and Redis.

Records are shared by every handle; a decision is a compare-and-set that exactly one of any
number of racing deciders wins, and each loser is handed the winner's record (so the operator
is told who decided, and when); one process at a time holds a record's send; pruning removes
only settled records older than the cut, never a pending one.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from engine.escalation.decisions import AlreadyDecided
from engine.escalation.manager import EscalationManager
from engine.escalation.pricing import CostLedger
from engine.escalation.store import APPROVED, DENIED, PENDING, SENT, Escalation, transition
from engine.routing.nodes import EscalationConfig
from engine.store.open import Channels
from tests.conformance.channel_stores import ChannelStore, channel_store_fixture  # noqa: F401
from tests.support.redis_server import redis_server  # noqa: F401

T0 = 1_700_000_000.0


def _esc(n: int, task: str = "b1.t", at: float = T0) -> Escalation:
    return Escalation(escalation_id=f"esc-{n:04d}", task_id=task, state=PENDING, reason="failed locally 2 times",
                      provider="cloud", model="big", payload={"messages": [{"role": "user", "content": "hi"}]},
                      est_input_tokens=10, est_cost_usd=0.01, created_at=at, expires_at=at + 3600,
                      history=(f"{at:.3f} created",))


def test_records_are_shared_and_listed_oldest_first(channel_store: ChannelStore) -> None:
    a, b = channel_store.open(), channel_store.open()
    a.escalations.save(_esc(2, "b1.x", T0 + 5))
    a.escalations.save(_esc(1, "b1.y", T0))
    a.escalations.save(_esc(3, "b1.x", T0 + 9))
    assert b.escalations.get("esc-0001") == _esc(1, "b1.y", T0)
    assert [e.escalation_id for e in b.escalations.all()] == ["esc-0001", "esc-0002", "esc-0003"]
    assert [e.escalation_id for e in b.escalations.for_task("b1.x")] == ["esc-0002", "esc-0003"]
    assert b.escalations.get("esc-9999") is None
    assert b.escalations.get("../../etc/passwd") is None  # a bad id is "no such escalation", never a path


def test_compare_and_set_writes_only_from_the_expected_state(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    e = _esc(1)
    ch.escalations.save(e)
    approved = transition(e, APPROVED, T0 + 1, "by tui ann@rig", decided_at=T0 + 1, decided_by="tui ann@rig")
    won = ch.escalations.compare_and_set(approved, PENDING)
    assert won.written and won.current == approved
    denied = transition(e, DENIED, T0 + 2, "by cli bob@rig", decided_at=T0 + 2, decided_by="cli bob@rig",
                        deny_reason="no")
    lost = channel_store.open().escalations.compare_and_set(denied, PENDING)
    assert not lost.written and lost.current == approved  # the loser is handed the winner's record
    assert ch.escalations.get(e.escalation_id) == approved
    missing = ch.escalations.compare_and_set(replace(approved, escalation_id="esc-0404"), PENDING)
    assert not missing.written and missing.current is None


def test_of_many_racing_deciders_exactly_one_wins(channel_store: ChannelStore) -> None:
    e = _esc(1)
    channel_store.open().escalations.save(e)
    handles = [channel_store.open() for _ in range(8)]
    results: list[tuple[int, bool, str | None]] = []
    start = threading.Barrier(len(handles))

    def decide(i: int, ch: Channels) -> None:
        who = f"tui op{i}@rig"
        new = transition(e, APPROVED if i % 2 else DENIED, T0 + 1, f"by {who}", decided_at=T0 + 1, decided_by=who)
        start.wait()
        r = ch.escalations.compare_and_set(new, PENDING)
        results.append((i, r.written, r.current.decided_by if r.current else None))

    threads = [threading.Thread(target=decide, args=(i, ch)) for i, ch in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, written, _ in results if written]
    assert len(winners) == 1 and len(results) == 8
    assert {by for _, written, by in results if not written} == {f"tui op{winners[0]}@rig"}


def _manager(ch: Channels, root: Path) -> EscalationManager:
    return EscalationManager(ch.escalations, {}, {}, CostLedger(root / "cost.jsonl"), EscalationConfig(),
                             audit=ch.audit.append)


def test_the_manager_tells_the_loser_who_decided_and_audits_once(channel_store: ChannelStore,
                                                                 tmp_path: Path) -> None:
    a, b = channel_store.open(), channel_store.open()
    a.escalations.save(_esc(1))
    first, second = _manager(a, tmp_path), _manager(b, tmp_path)
    first.decide_approve("esc-0001", T0 + 1, "tui ann@rig")
    with pytest.raises(AlreadyDecided, match="was already approved by tui ann@rig"):
        second.deny("esc-0001", T0 + 2, "cli bob@rig", "too dear")
    decisions = [r for r in channel_store.open().audit.read(50) if r.get("kind") == "escalation_decision"]
    assert [(r["transition"], r["by"]) for r in decisions] == [("approved", "tui ann@rig")]


def test_one_process_at_a_time_holds_a_send(channel_store: ChannelStore) -> None:
    a, b = channel_store.open(), channel_store.open()
    a.escalations.save(_esc(1))
    hold = a.escalations.hold_sending("esc-0001", 60.0)
    assert hold is not None
    if channel_store.kind == "redis":  # file locks exclude other processes, not this one's other handles
        assert b.escalations.hold_sending("esc-0001", 60.0) is None
    hold.release()
    again = b.escalations.hold_sending("esc-0001", 60.0)
    assert again is not None
    again.release()


def test_prune_removes_only_settled_records_older_than_the_cut(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    old_pending, old_sent, new_denied = _esc(1, at=T0), _esc(2, at=T0), _esc(3, at=T0)
    ch.escalations.save(old_pending)
    ch.escalations.save(transition(transition(old_sent, APPROVED, T0 + 1), SENT, T0 + 2))
    ch.escalations.save(transition(new_denied, DENIED, T0 + 500, deny_reason="no"))
    removed = channel_store.open().escalations.prune(older_than=T0 + 100)
    assert removed == ["esc-0002"]
    assert [e.escalation_id for e in ch.escalations.all()] == ["esc-0001", "esc-0003"]
