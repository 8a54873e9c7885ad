"""The Redis queue's state transitions a worker and its supervisor drive, each one Lua script (atomic:
Redis runs nothing else meanwhile): submit, the lane heads, claim, heartbeat, complete, fail, release,
reap and promote. Every script starts with the shared prelude (engine/store/redis/lua_prelude.py: the
argument convention and the key layout); the operator's and upkeep scripts are in lua_operator.py.
``SCRIPTS`` registers them all by name (``RedisQueue.run``).
"""

from __future__ import annotations

from engine.store.redis.lua_operator import OPERATOR_SCRIPTS
from engine.store.redis.lua_prelude import PRELUDE

SUBMIT = PRELUDE + r"""
-- arg(1): JSON list of {id, cls, lane, maxr, retry, deps, att (attempt JSONs)}; arg(2): submit request id;
-- arg(2 + i): task i's JSON
local meta = cjson.decode(arg(1))
local sreq = arg(2)
if #meta > 0 and redis.call('HGET', tk(meta[1].id), 'sreq') == sreq then
  return finish({ok = 1, replayed = 1})
end
local problems = batch_problems(meta)
if #problems > 0 then return cjson.encode({ok = 0, problems = problems}) end
for i, m in ipairs(meta) do
  redis.call('HSET', tk(m.id), 'j', arg(2 + i), 'st', 'new', 'cls', m.cls, 'lane', m.lane, 'maxr', m.maxr,
             'retry', m.retry, 'deps', cjson.encode(m.deps), 'sreq', sreq)
  redis.call('ZREM', P .. 'pruned', m.id)  -- an id pruned before names this new task now
  for _, a in ipairs(m.att or {}) do redis.call('RPUSH', P .. 'a:' .. m.id, a) end
end
local states = {}
for _, m in ipairs(meta) do
  if redis.call('HGET', tk(m.id), 'st') == 'new' then states[m.id] = settle(m.id, 'new')
  else states[m.id] = redis.call('HGET', tk(m.id), 'st') end
end
return finish({ok = 1, states = states}, {ok = 1, replayed = 1})
"""

HEADS = PRELUDE + r"""
-- the head of every non-empty lane, and the wake counter
return cjson.encode({hd = heads_now(), ver = redis.call('GET', P .. 'ver') or '0'})
"""

CLAIM = PRELUDE + r"""
-- arg: lane, expected head id, worker id, owner token, lease us, the wake counter of the caller's view
-- of the lane heads, the claiming process's instance, and same_enq. Taken only if that view still
-- holds for this choice: nothing became claimable since (other lanes may only have lost their heads)
-- and the lane's head is still that task; or, when the caller passes same_enq (its policy chose this
-- lane whatever its depth), the lane's head is another task of the same lane enqueued at that very
-- time: the same candidate for the policy but its id. Else nothing is taken and the answer carries
-- the heads as they are now, for the policy to choose again.
local lane, want, worker, token, lease, seen, inst, same_enq =
  arg(1), arg(2), arg(3), arg(4), tonumber(arg(5)), arg(6), arg(7), arg(8)
local wk = P .. 'wk:' .. worker  -- this worker's last claim: 'TOKEN ID' (one key per worker id)
local last = redis.call('GET', wk)
if last and string.sub(last, 1, #token + 1) == token .. ' ' then
  local id = string.sub(last, #token + 2)
  local r = redis.call('HMGET', tk(id), 'st', 'tok', 'exp', 'clm')
  if r[1] == 'processing' and r[2] == token then  -- this very claim, resent after its reply was lost
    return finish({ok = 1, id = id, exp = r[3], clm = r[4], replayed = 1,
                   f = redis.call('HGETALL', tk(id)), a = redis.call('LRANGE', P .. 'a:' .. id, 0, -1)})
  end
end
local lk = P .. 'lane:' .. lane
local head = redis.call('ZRANGE', lk, 0, 0, 'WITHSCORES')
local ver = redis.call('GET', P .. 'ver') or '0'
if ver ~= seen or not head[1] or (head[1] ~= want and (same_enq == '' or tonumber(head[2]) ~= tonumber(same_enq))) then
  lane_changed(lane)  -- (a stale entry in hd, as a cluster's older galaxy leaves it, is mended here)
  return finish({ok = 0, hd = heads_now(), ver = ver})
end
want = head[1]
local h = tk(want)
redis.call('ZREM', lk, want)
if redis.call('ZCARD', lk) == 0 then redis.call('SREM', P .. 'lanes', lane) end
lane_changed(lane)
local exp = NOW + lease
redis.call('HSET', h, 'st', 'processing', 'own', worker, 'tok', token, 'ltok', token, 'clm', f(NOW), 'exp', f(exp),
           'inst', inst)
redis.call('ZADD', P .. 'proc', f(exp), want)
redis.call('SET', wk, token .. ' ' .. want)
move(string.match(lane, '^[^|]*'), 'queue', 'processing')  -- a lane key starts with its tasks' class
return finish({ok = 1, id = want, exp = f(exp), clm = f(NOW),
               f = redis.call('HGETALL', h), a = redis.call('LRANGE', P .. 'a:' .. want, 0, -1)})
"""

HEARTBEAT = PRELUDE + r"""
-- arg(1): lease us; then pairs (id, token): one answer (1 held, 0 not) per pair, one call per worker
local lease = tonumber(arg(1))
local out = {}
local i = 2
while arg(i) do
  local id, token = arg(i), arg(i + 1)
  local r = redis.call('HMGET', tk(id), 'st', 'tok')
  if r[1] == 'processing' and r[2] == token then
    local exp = f(NOW + lease)
    redis.call('HSET', tk(id), 'exp', exp)
    redis.call('ZADD', P .. 'proc', exp, id)
    table.insert(out, exp)
  else
    table.insert(out, '')
  end
  i = i + 2
end
return finish({ok = 1, exp = out})
"""

_OWNED = r"""
local function owned(id, token, worker)
  -- 'ok' when token holds the claim (or, with no token, when worker owns it: a release on behalf of a
  -- dead owner); 'done' when this token's claim was finished already (a resend); else the state
  -- (and the task's class, read with them)
  local r = redis.call('HMGET', tk(id), 'st', 'tok', 'fin', 'own', 'cls')
  if not r[1] then return 'unknown' end
  if r[1] == 'processing' and r[2] == token then return 'ok', r[5] end
  if token == '' and worker and r[1] == 'processing' and r[4] == worker then return 'ok' end
  if r[3] == token then return 'done' end
  return r[1]
end
"""

COMPLETE = PRELUDE + _OWNED + r"""
-- arg: id, token, result JSON, attempt JSON
local id, token = arg(1), arg(2)
local o, cls = owned(id, token)
if o == 'done' then  -- this very completion, resent after its reply was lost: what it did, once more
  local rel = redis.call('HGET', tk(id), 'frel')
  return finish({ok = 0, state = o, released = rel and cjson.decode(rel) or nil})
end
if o ~= 'ok' then return finish({ok = 0, state = o}) end
local h = tk(id)
leave(id, 'processing')
redis.call('HSET', h, 'st', 'complete', 'res', arg(3), 'fin', token, 'since', f(NOW))
redis.call('HDEL', h, 'own', 'tok', 'exp', 'err')
redis.call('RPUSH', P .. 'a:' .. id, arg(4))
move(cls, 'processing', 'complete')
remember('complete', id)
redis.call('ZADD', P .. 'done', f(NOW), id)
local released = release_dependents(id)
if #released > 0 then redis.call('HSET', h, 'frel', cjson.encode(released)) end
if woke then publish_wake() end  -- now, so the counter handed back below already counts this change
-- the lane heads as they are now: the worker's next claim offers them to its policy without a read
return finish({ok = 1, released = released, hd = heads_now(), ver = redis.call('GET', P .. 'ver') or '0'})
"""

FAIL = PRELUDE + _OWNED + r"""
-- arg: id, token, mode ('delay' | 'final' | 'await'), error text, attempt JSON, backoff us (delay), final
-- reason; 'await': failed for good but it qualifies for escalation: awaiting approval with no escalation
-- yet (the cloud tier raises one and attaches it), never failed, its dependents still held
local id, token, mode = arg(1), arg(2), arg(3)
local o = owned(id, token)
if o == 'done' then  -- this very failure, resent after its reply was lost: when its retry is due, if still
  return finish({ok = 0, state = o, due = redis.call('HGET', tk(id), 'due') or nil})
end
if o ~= 'ok' then return finish({ok = 0, state = o}) end
local h = tk(id)
redis.call('RPUSH', P .. 'a:' .. id, arg(5))
redis.call('HSET', h, 'fin', token)
if mode == 'delay' then
  leave(id, 'processing')
  local due = NOW + tonumber(arg(6))
  redis.call('HSET', h, 'st', 'delayed', 'due', f(due), 'err', arg(4), 'retry', redis.call('HGET', h, 'retry') + 1)
  redis.call('HDEL', h, 'own', 'tok', 'exp')
  redis.call('ZADD', P .. 'delayed', f(due), id)
  move(redis.call('HGET', h, 'cls'), 'processing', 'delayed')
  woke = true  -- an idle worker's next_due changed
  return finish({ok = 1, due = f(due)})
end
if mode == 'await' then
  leave(id, 'processing')
  redis.call('HSET', h, 'st', 'awaiting', 'esc', '', 'err', arg(7), 'since', f(NOW))
  redis.call('HDEL', h, 'own', 'tok', 'exp')
  redis.call('ZADD', P .. 'awaiting', f(NOW), id)
  move(redis.call('HGET', h, 'cls'), 'processing', 'awaiting')
  return finish({ok = 1, awaiting = 1})
end
fail_final(id, arg(7), nil, nil, nil)
return finish({ok = 1, failed = 1})
"""

RELEASE = PRELUDE + _OWNED + r"""
-- arg: id, token ('' for the owner's worker id: the supervisor hands back a dead process's claim),
-- attempt JSON, worker id: back to its lane in its old place, no retry charged
local id, token = arg(1), arg(2)
local o = owned(id, token, arg(4))
if o ~= 'ok' then return finish({ok = 0, state = o}) end
local h = tk(id)
leave(id, 'processing')
local r = redis.call('HMGET', h, 'own', 'clm')
if arg(3) ~= '' then redis.call('RPUSH', P .. 'a:' .. id, arg(3))
else attempt(id, r[1] or arg(4), tonumber(r[2] or f(NOW)), 'released', arg(5)) end
if token ~= '' then redis.call('HSET', h, 'fin', token) end
enqueue(id, tonumber(redis.call('HGET', h, 'enq')), 'processing')
return finish({ok = 1})
"""

REAP = PRELUDE + r"""
-- arg(1): batch size: expired leases (by this script's clock) back to the queue, or failed at max retries
local ids = redis.call('ZRANGEBYSCORE', P .. 'proc', '-inf', '(' .. f(NOW), 'LIMIT', 0, tonumber(arg(1)))
local out = {}
for _, id in ipairs(ids) do
  local h = tk(id)
  local r = redis.call('HMGET', h, 'own', 'clm', 'retry', 'maxr')
  local worker, retry, maxr = r[1] or '?', tonumber(r[3] or '0'), tonumber(r[4] or '0')
  attempt(id, worker, tonumber(r[2] or f(NOW)), 'lost', 'lease expired: worker ' .. worker .. ' stopped heartbeating')
  if retry < maxr then
    leave(id, 'processing')
    redis.call('HSET', h, 'retry', retry + 1, 'err', 'lease expired on ' .. worker)
    enqueue(id, NOW, 'processing')
    table.insert(out, {id, worker, 'queue', retry + 1})
  else
    fail_final(id, 'lease expired ' .. (retry + 1) .. ' times (worker lost); gave up', nil, nil, nil)
    table.insert(out, {id, worker, 'failed', retry})
  end
end
return finish({ok = 1, reaped = out})
"""

PROMOTE = PRELUDE + r"""
-- arg(1): batch size: tasks whose backoff has passed go back to their lane
local ids = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', f(NOW), 'LIMIT', 0, tonumber(arg(1)))
for _, id in ipairs(ids) do
  leave(id, 'delayed')
  enqueue(id, NOW, 'delayed')
end
return finish({ok = 1, ids = ids})
"""


SCRIPTS: dict[str, str] = {
    "submit": SUBMIT, "heads": HEADS, "claim": CLAIM, "heartbeat": HEARTBEAT, "complete": COMPLETE,
    "fail": FAIL, "release": RELEASE, "reap": REAP, "promote": PROMOTE, **OPERATOR_SCRIPTS,
}
