"""The command channel's contract (``CommandChannel``), for the file store and Redis.

Commands for a rig are taken oldest first by that rig's supervisor, stay waiting until ``done``
(a supervisor that dies mid-way takes them again), and are applied once: a resend of the same
command id, before or after it was applied, is not handed out again. Rigs' channels are apart;
an unreadable command is handed out with its problem (to be refused), never crashes the taker.
"""

from __future__ import annotations

import pytest

from engine.commands import Command, CommandKind, make_command
from engine.ids import InvalidId
from engine.store.channels import IncomingCommand
from tests.conformance.channel_stores import RIG, ChannelStore, channel_store_fixture  # noqa: F401
from tests.support.redis_server import redis_server  # noqa: F401

T0 = 1_700_000_000.0


def _cmd(i: int, kind: CommandKind = CommandKind.PAUSE, target: str | None = "gpu0") -> Command:
    return make_command(kind, target, source="cli bob@rig", now=T0 + i)


def _ids(items: list[IncomingCommand]) -> list[str]:
    return [i.command.command_id for i in items if i.command is not None]


def test_commands_are_taken_oldest_first_and_whole(channel_store: ChannelStore) -> None:
    sender, supervisor = channel_store.open(), channel_store.open()
    sent = [_cmd(i) for i in range(5)] + [_cmd(5, CommandKind.DENY, "esc-1")]
    sent[-1] = Command(sent[-1].command_id, CommandKind.DENY, "esc-1", {"reason": "too dear"}, "tui ann@rig", T0 + 5)
    for c in sent:
        sender.commands_for(RIG).send(c)
    got = supervisor.commands.take(100)
    assert _ids(got) == [c.command_id for c in sent]
    assert got[-1].command == sent[-1] and all(i.problem is None for i in got)


def test_a_command_stays_until_done_and_is_never_handed_out_after(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    a, b = _cmd(1), _cmd(2)
    ch.commands.send(a)
    ch.commands.send(b)
    first = ch.commands.take(1)
    assert _ids(first) == [a.command_id]
    assert _ids(channel_store.open().commands.take(10)) == [a.command_id, b.command_id]  # a restarted taker
    ch.commands.done(first[0])
    again = ch.commands.take(10)
    assert _ids(again) == [b.command_id]
    ch.commands.done(again[0])
    assert ch.commands.take(10) == []


def test_a_resend_after_a_lost_reply_is_applied_once(channel_store: ChannelStore) -> None:
    sender, supervisor = channel_store.open(), channel_store.open()
    c = _cmd(1)
    sender.commands.send(c)
    sender.commands.send(c)  # resent before it was applied
    (item,) = supervisor.commands.take(10)
    supervisor.commands.done(item)
    sender.commands.send(c)  # resent after it was applied
    assert supervisor.commands.take(10) == []


def test_each_rig_takes_only_its_own_commands(channel_store: ChannelStore) -> None:
    if channel_store.kind == "file":
        pytest.skip("the file store is one rig per shared root: another rig has no supervisor here")
    a, b = channel_store.open("rig-a"), channel_store.open("rig-b")
    ca, cb = _cmd(1), _cmd(2)
    a.commands_for("rig-b").send(cb)
    b.commands_for("rig-a").send(ca)
    assert _ids(a.commands.take(10)) == [ca.command_id]
    assert _ids(b.commands.take(10)) == [cb.command_id]


def test_a_bad_target_is_refused_before_anything_is_sent(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    with pytest.raises(InvalidId):
        ch.commands.send(Command("c1", CommandKind.PAUSE, "../../etc", {}, "t", T0))
    assert ch.commands.take(10) == []


def test_an_unreadable_command_is_handed_out_with_its_problem_then_set_aside(channel_store: ChannelStore) -> None:
    ch = channel_store.open()
    _plant_garbage(channel_store, ch)
    good = _cmd(9)
    ch.commands.send(good)
    items = ch.commands.take(10)
    bad = [i for i in items if i.command is None]
    assert len(bad) == 1 and bad[0].problem and "valid" in bad[0].problem
    for i in items:
        ch.commands.done(i)
    assert ch.commands.take(10) == []


def _plant_garbage(store: ChannelStore, ch: object) -> None:
    """A command no sender of ours would write (a foreign or corrupted entry)."""
    if store.kind == "file":
        d = store.root / "state" / "commands"
        d.mkdir(parents=True, exist_ok=True)
        (d / "00000000000000000001-junk.json").write_text('{"kind": "nonsense"}')
    else:
        from engine.store.redis.channels.commands import RedisCommandChannel

        commands = ch.commands  # type: ignore[attr-defined]
        assert isinstance(commands, RedisCommandChannel)
        commands.client.xadd(commands.key, {"id": "junk", "cmd": '{"kind": "nonsense"}'})


def test_a_command_still_waiting_can_be_withdrawn_and_is_then_never_applied(channel_store: ChannelStore) -> None:
    sender, supervisor = channel_store.open(), channel_store.open()
    keep, take_back = _cmd(1), _cmd(2)
    sender.commands.send(keep)
    sender.commands.send(take_back)
    assert sender.commands.withdraw(take_back) is True
    assert sender.commands.withdraw(take_back) is False  # gone already
    (item,) = supervisor.commands.take(10)
    assert item.command == keep
    supervisor.commands.done(item)
    assert sender.commands.withdraw(keep) is False  # applied: too late to take it back
