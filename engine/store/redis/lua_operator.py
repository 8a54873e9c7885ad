"""The Redis queue's operator and upkeep transitions, each one Lua script: cancel, retry, resolve, park
and unpark (escalations), forget, prune of completed records, and restore (``galaxy store migrate``).
They start with the shared prelude (engine/store/redis/lua_prelude.py); a worker's transitions are in
lua.py, which registers both sets.
"""

from __future__ import annotations

from engine.store.redis.lua_prelude import PRELUDE

CANCEL = PRELUDE + r"""
-- arg: id, reason: a waiting, held, delayed or running task to failed; its dependents in cascade
local id, reason = arg(1), arg(2)
local h = tk(id)
local r = redis.call('HMGET', h, 'st', 'own', 'clm')
local st = r[1]
if st == 'awaiting' then return finish({ok = 0, state = st}) end
if st ~= 'queue' and st ~= 'held' and st ~= 'delayed' and st ~= 'processing' then
  return finish({ok = 0, state = st or 'unknown'})
end
if st == 'processing' then attempt(id, r[2], NOW, 'cancelled', reason) end
fail_final(id, 'cancelled: ' .. reason, nil, nil, nil)
return finish({ok = 1, state = st, worker = r[2] or ''})
"""

FORGET = PRELUDE + r"""
-- arg: id: a failed task removed for good (galaxy store migrate moved it): record, attempts, count
local id = arg(1)
local h = tk(id)
local r = redis.call('HMGET', h, 'st', 'cls', 'root')
if r[1] ~= 'failed' then return finish({ok = 0, state = r[1] or 'unknown'}) end
leave(id, 'failed')
count('failed', r[2], -1)
redis.call('LREM', P .. 'recent:failed', 0, id)
if r[3] then redis.call('SREM', P .. 'cascade:' .. r[3], id) end
redis.call('DEL', h, P .. 'a:' .. id, P .. 'cascade:' .. id, P .. 'deps:' .. id)
return finish({ok = 1})
"""

RETRY = PRELUDE + r"""
-- arg: id: a failed task back (fresh: retries reset), and the dependents its failure took down
local id = arg(1)
local h = tk(id)
local st = redis.call('HGET', h, 'st')
if st ~= 'failed' then return finish({ok = 0, state = st or 'unknown'}) end
for _, d in ipairs(cjson.decode(redis.call('HGET', h, 'deps') or '[]')) do
  if d ~= id and redis.call('HGET', tk(d), 'st') == 'failed' then return finish({ok = 0, dep = d}) end
end
leave(id, 'failed')
redis.call('HSET', h, 'retry', '0')
redis.call('HDEL', h, 'err', 'res', 'root', 'due')
local now_st = settle(id, 'failed')
local back = restore_cascade(id)
return finish({ok = 1, state = now_st, restored = back})
"""

RESOLVE = PRELUDE + r"""
-- arg: id, result JSON, attempt JSON or '': a failed or awaiting task completed with a result found
-- elsewhere; the dependents its failure took down are judged again (and released, it being complete)
local id = arg(1)
local h = tk(id)
local st = redis.call('HGET', h, 'st')
if st == 'complete' then return finish({ok = 0, state = st}) end
if st ~= 'failed' and st ~= 'awaiting' then return finish({ok = 0, state = st or 'unknown'}) end
leave(id, st)
redis.call('HSET', h, 'st', 'complete', 'res', arg(2), 'since', f(NOW))
redis.call('HDEL', h, 'err', 'root', 'esc', 'own', 'tok', 'exp', 'due')
if arg(3) ~= '' then redis.call('RPUSH', P .. 'a:' .. id, arg(3)) end
move(redis.call('HGET', h, 'cls'), st, 'complete')
remember('complete', id)
redis.call('ZADD', P .. 'done', f(NOW), id)
local back = restore_cascade(id)
local released = release_dependents(id)
return finish({ok = 1, restored = back, released = released})
"""

PARK = PRELUDE + r"""
-- arg: id, escalation id: a failed task waits for an operator's decision; its cascade is held again
local id, esc = arg(1), arg(2)
local h = tk(id)
local st = redis.call('HGET', h, 'st')
if st == 'awaiting' then return finish({ok = 1, already = 1}) end
if st ~= 'failed' then return finish({ok = 0, state = st or 'unknown'}) end
leave(id, 'failed')
redis.call('HSET', h, 'st', 'awaiting', 'esc', esc, 'since', f(NOW))
redis.call('HDEL', h, 'root')
redis.call('ZADD', P .. 'awaiting', f(NOW), id)
move(redis.call('HGET', h, 'cls'), 'failed', 'awaiting')
local back = restore_cascade(id)
return finish({ok = 1, restored = back})
"""

ATTACH = PRELUDE + r"""
-- arg: id, escalation id: a task its worker parked at its failure (no escalation yet) gets the one the
-- cloud tier raised; the same one again is a no-op, another one is refused
local id, esc = arg(1), arg(2)
local h = tk(id)
local r = redis.call('HMGET', h, 'st', 'esc')
if r[1] ~= 'awaiting' then return finish({ok = 0, state = r[1] or 'unknown'}) end
if r[2] == esc then return finish({ok = 1, already = 1}) end
if r[2] and r[2] ~= '' then return finish({ok = 0, state = 'awaiting', esc = r[2]}) end
redis.call('HSET', h, 'esc', esc)
return finish({ok = 1})
"""

UNPARK = PRELUDE + r"""
-- arg: id, mode ('fail' | 'local'), reason: an awaiting task back to failed (dependents cascade) or
-- to the queue with its retries reset (its dependents keep waiting on it)
local id, mode = arg(1), arg(2)
local h = tk(id)
local st = redis.call('HGET', h, 'st')
if st ~= 'awaiting' then return finish({ok = 0, state = st or 'unknown'}) end
if mode == 'fail' then
  fail_final(id, arg(3), nil, nil, nil)
  return finish({ok = 1, state = 'failed'})
end
leave(id, 'awaiting')
redis.call('HSET', h, 'retry', '0')
redis.call('HDEL', h, 'err', 'res', 'esc')
local now_st = settle(id, 'awaiting')
return finish({ok = 1, state = now_st})
"""

PRUNE = PRELUDE + r"""
-- arg: keep us, batch size, pruned ids kept: the records of tasks completed more than keep ago
-- ([store] keep_completed_s), oldest first, at most a batch: task, result, attempts removed for good.
-- Their ids go to 'pruned' (the newest arg(3) kept), so a dependency on one still counts as met.
local cutoff = NOW - tonumber(arg(1))
local ids = redis.call('ZRANGEBYSCORE', P .. 'done', '-inf', '(' .. f(cutoff), 'LIMIT', 0, tonumber(arg(2)))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', P .. 'done', id)
  local r = redis.call('HMGET', tk(id), 'st', 'since')
  if r[1] == 'complete' then
    redis.call('DEL', tk(id), P .. 'a:' .. id, P .. 'deps:' .. id, P .. 'cascade:' .. id)
    redis.call('ZADD', P .. 'pruned', r[2] or f(NOW), id)
    table.insert(out, id)
  end
end
if #out > 0 then redis.call('ZREMRANGEBYRANK', P .. 'pruned', 0, -(tonumber(arg(3)) + 1)) end
return finish({ok = 1, pruned = out, more = #ids == tonumber(arg(2)) and 1 or 0})
"""

RESTORE = PRELUDE + r"""
-- arg(1): JSON list of {id, cls, lane, maxr, retry, deps, att (attempt JSONs), st (queue|held|delayed|failed|
-- complete: where it lands), due (us, delayed), err, res (result JSON or '')}; arg(1 + i): task i's JSON.
-- Tasks moved from another store (galaxy store migrate), all or none; an id already known is refused.
local meta = cjson.decode(arg(1))
local problems = batch_problems(meta)
if #problems > 0 then return cjson.encode({ok = 0, problems = problems}) end
for i, m in ipairs(meta) do
  local h = tk(m.id)
  redis.call('HSET', h, 'j', arg(1 + i), 'st', 'new', 'cls', m.cls, 'lane', m.lane, 'maxr', m.maxr,
             'retry', m.retry, 'deps', cjson.encode(m.deps))
  if m.err ~= '' then redis.call('HSET', h, 'err', m.err) end
  if m.res ~= '' then redis.call('HSET', h, 'res', m.res) end
  redis.call('ZREM', P .. 'pruned', m.id)
  for _, a in ipairs(m.att) do redis.call('RPUSH', P .. 'a:' .. m.id, a) end
end
-- finished ones first: a held task is then judged on the parents restored with it
for _, m in ipairs(meta) do
  if m.st == 'complete' or m.st == 'failed' then
    redis.call('HSET', tk(m.id), 'st', m.st, 'since', f(NOW))
    redis.call('ZADD', P .. (m.st == 'complete' and 'done' or 'failed'), f(NOW), m.id)
    if m.st == 'failed' then failed_changed = true end
    count(m.st, m.cls, 1)
    remember(m.st, m.id)
  end
end
local states = {}
for _, m in ipairs(meta) do
  if m.st == 'delayed' then
    redis.call('HSET', tk(m.id), 'st', 'delayed', 'due', m.due)
    redis.call('ZADD', P .. 'delayed', m.due, m.id)
    count('delayed', m.cls, 1)
    woke = true  -- an idle worker's next_due changed
    states[m.id] = 'delayed'
  elseif m.st == 'queue' or m.st == 'held' then
    states[m.id] = settle(m.id, 'new')
  else
    states[m.id] = m.st
  end
end
return finish({ok = 1, states = states}, {ok = 1, replayed = 1})
"""


OPERATOR_SCRIPTS: dict[str, str] = {
    "cancel": CANCEL, "retry": RETRY, "resolve": RESOLVE, "park": PARK, "unpark": UNPARK, "forget": FORGET,
    "prune": PRUNE, "restore": RESTORE, "attach": ATTACH,
}
