"""A rig's operator commands: a Redis stream ``rig:<rig>:commands``, and a sorted set of the ids
seen (``commands:seen``) so a command resent after a lost reply is delivered once. Sending is
one script (seen? else remember and append); ``done`` deletes the entry (an unreadable one is
copied to ``commands:rejected`` with its reason, in the same MULTI)."""

from __future__ import annotations

import json

import redis

from engine.commands import Command
from engine.ids import check_command_target
from engine.schema import SchemaError
from engine.store.channels import IncomingCommand
from engine.store.redis.channels.base import answering, rig_key, stream_entries

SEEN_KEPT = 10_000  # ids remembered per rig (the newest); a resend comes seconds after the first
WAITING_KEPT = 10_000  # a rig whose supervisor is gone does not grow its stream without bound
REJECTED_KEPT = 1_000

_SEND = """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1e6, ARGV[1])
local n = redis.call('ZCARD', KEYS[2])
if n > tonumber(ARGV[3]) then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - tonumber(ARGV[3]) - 1) end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'cmd', ARGV[2])
return 1
"""


_WITHDRAW = """
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', tonumber(ARGV[2]))
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'id' and fields[i + 1] == ARGV[1] then
      redis.call('XDEL', KEYS[1], entry[1])
      return 1
    end
  end
end
return 0
"""


class RedisCommandChannel:
    def __init__(self, client: redis.Redis, prefix: str, rig: str) -> None:
        self.client = client
        self.rig = rig
        self.key = rig_key(prefix, rig, "commands")
        self.seen_key = rig_key(prefix, rig, "commands:seen")
        self.rejected_key = rig_key(prefix, rig, "commands:rejected")
        self._send = client.register_script(_SEND)
        self._withdraw = client.register_script(_WITHDRAW)

    def send(self, command: Command) -> None:
        check_command_target(command.kind.value, command.target)  # InvalidId (a ValueError) before any write
        with answering(f"a {command.kind.value} command for rig {self.rig}"):
            self._send(keys=[self.key, self.seen_key],
                       args=[command.command_id, json.dumps(command.to_dict()), SEEN_KEPT, WAITING_KEPT])

    def withdraw(self, command: Command) -> bool:
        """One script over the waiting commands (at most ``WAITING_KEPT``): delete the one with this id."""
        with answering(f"the withdrawal of a command for rig {self.rig}"):
            return int(self._withdraw(keys=[self.key], args=[command.command_id, WAITING_KEPT])) == 1

    def take(self, limit: int) -> list[IncomingCommand]:
        if limit <= 0:
            return []
        with answering(f"the commands of rig {self.rig}"):
            entries = self.client.xrange(self.key, count=limit)
        return [_incoming(entry_id, fields) for entry_id, fields in stream_entries(entries)]

    def done(self, item: IncomingCommand) -> None:
        with answering(f"a command of rig {self.rig}"):
            pipe = self.client.pipeline(transaction=True)
            if item.command is None or item.problem is not None:
                pipe.xadd(self.rejected_key, {"ref": item.ref, "reason": item.problem or "refused"},
                          maxlen=REJECTED_KEPT, approximate=True)
            pipe.xdel(self.key, item.ref)
            pipe.execute()


def _incoming(ref: str, fields: dict[str, str]) -> IncomingCommand:
    try:
        return IncomingCommand(ref, Command.from_dict(json.loads(fields.get("cmd", ""))))
    except (ValueError, SchemaError) as exc:  # JSONDecodeError is a ValueError
        return IncomingCommand(ref, None, f"not a valid command: {exc}")
    except RecursionError:
        return IncomingCommand(ref, None, "not a valid command: nested too deep")
