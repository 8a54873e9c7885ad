"""The Redis queue's state transitions, each one Lua script (atomic: Redis runs nothing else meanwhile).

Every script starts with ``PRELUDE`` and ends with ``EPILOGUE``. ARGV[1] is the key prefix
(``galaxy:{cluster}:``), ARGV[2] the caller's ``now`` in microseconds or "" for Redis's own clock
(``TIME``: leases and backoff are then judged by the server, not by any worker's clock), ARGV[3] a
request id ("" for none), ARGV[4] its time to live in ms; the script's own arguments follow
(``arg(1)`` is ARGV[5]). A script with a request id stores its (small) reply under ``req:ID``, so
the same command resent after a lost reply answers the stored reply instead of applying twice.
Claims and finishes are also idempotent through the claim's owner token (see queue.py).

Keys (P = prefix):
  t:ID        hash: j (task JSON as submitted), st (queue|processing|delayed|held|awaiting|complete|failed),
              cls, lane, maxr, retry, deps (JSON list), enq (claimable since, us), own, tok (current
              owner token), ltok (token of the last claim), clm, exp (lease deadline, us), due, waits,
              err, res (JSON), root (cascade root), esc (escalation id), sreq (submit request id),
              fin (token of the claim that finished it), frel (JSON list: the dependents its completion
              released, answered again to a resent completion so its events are still written once)
  a:ID        list of attempt JSON objects
  lane:L      zset of claimable ids by enqueue time; lanes: set of non-empty lane keys L
  proc        zset id -> lease deadline (us); delayed: id -> due (us); held: id -> since (us);
              failed / awaiting: id -> since (us)
  deps:ID     set of held ids that wait on ID; cascade:ROOT: set of ids failed because ROOT failed
  n:STATE     hash class -> number of tasks in STATE (complete: completions ever, pruned ones too);
              recent:complete / recent:failed: capped lists
  done        zset id -> completion time (us): the completed records, oldest first, for PRUNE
  pruned      zset id -> completion time (us) of the newest pruned ids (capped): a dependency on one is
              met, as on a complete task, though its record is gone
  ver         counter bumped whenever something becomes claimable, its new value published on ``wake``
              as ``v<ver>`` (engine/store/redis/waker.py);
  fver        counter bumped whenever tasks enter or leave failed
No script scans: each touches its own task, one lane, its dependents, or a bounded batch.
"""

from __future__ import annotations

PRELUDE = r"""
local P = ARGV[1]
local REQ = ARGV[3]
if REQ ~= '' then
  local prev = redis.call('GET', P .. 'req:' .. REQ)
  if prev then return prev end
end
local function arg(i) return ARGV[4 + i] end
local function f(n) return string.format('%d', n) end
local NOW
if ARGV[2] ~= '' then NOW = tonumber(ARGV[2]) else
  local t = redis.call('TIME'); NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local woke = false
local failed_changed = false
local RECENT_CAP = 1000
local function tk(id) return P .. 't:' .. id end
local function count(state, cls, d)
  if state and state ~= '' and state ~= 'new' then redis.call('HINCRBY', P .. 'n:' .. state, cls, d) end
end
local function move(cls, from, to) count(from, cls, -1); count(to, cls, 1) end
local function remember(state, id)
  local k = P .. 'recent:' .. state
  redis.call('LPUSH', k, id); redis.call('LTRIM', k, 0, RECENT_CAP - 1)
end
local function leave(id, st)
  -- take id out of the structure of its state st (the hash's st is set by the caller)
  if st == 'queue' then
    local lane = redis.call('HGET', tk(id), 'lane')
    local lk = P .. 'lane:' .. lane
    redis.call('ZREM', lk, id)
    if redis.call('ZCARD', lk) == 0 then redis.call('SREM', P .. 'lanes', lane) end
  elseif st == 'processing' then redis.call('ZREM', P .. 'proc', id)
  elseif st == 'delayed' then redis.call('ZREM', P .. 'delayed', id)
  elseif st == 'held' then redis.call('ZREM', P .. 'held', id)
  elseif st == 'failed' then redis.call('ZREM', P .. 'failed', id); failed_changed = true
  elseif st == 'awaiting' then redis.call('ZREM', P .. 'awaiting', id)
  end
end
local function enqueue(id, enq, from)
  local h = tk(id)
  local lane = redis.call('HGET', h, 'lane')
  local cls = redis.call('HGET', h, 'cls')
  redis.call('ZADD', P .. 'lane:' .. lane, f(enq), id)
  redis.call('SADD', P .. 'lanes', lane)
  redis.call('HSET', h, 'st', 'queue', 'enq', f(enq))
  redis.call('HDEL', h, 'own', 'tok', 'exp', 'due', 'waits', 'since')
  move(cls, from, 'queue')
  woke = true
end
local function attempt(id, worker, started_us, outcome, err)
  local k = P .. 'a:' .. id
  local a = {number = redis.call('LLEN', k) + 1, worker_id = worker, started_at = started_us / 1000000,
             ended_at = NOW / 1000000, outcome = outcome, error = err}
  redis.call('RPUSH', k, cjson.encode(a))
end
local function root_of(dep)
  -- the first failure behind failed task dep, and its reason (as FileQueue's settle says it)
  local r = redis.call('HMGET', tk(dep), 'root', 'err')
  local root = r[1] or dep
  local reason = r[2] or 'failed'
  if root ~= dep and string.sub(reason, 1, 11) == 'dependency ' then
    local at = string.find(reason, ': ', 1, true)
    if at then reason = string.sub(reason, at + 2) end
  end
  return root, reason
end
local cascade
local function fail_final(id, reason, root, via, root_reason)
  -- id leaves its state for failed; root (nil: itself) is the first failure behind it
  local h = tk(id)
  local st = redis.call('HGET', h, 'st')
  local cls = redis.call('HGET', h, 'cls')
  leave(id, st)
  redis.call('HSET', h, 'st', 'failed', 'err', reason, 'since', f(NOW))
  redis.call('HDEL', h, 'own', 'tok', 'exp', 'due', 'waits', 'esc')
  if root then
    redis.call('HSET', h, 'root', root,
               'res', cjson.encode({cascade_root = root, failed_dependency = via}))
    redis.call('SADD', P .. 'cascade:' .. root, id)
  else
    redis.call('HDEL', h, 'root')
  end
  redis.call('ZADD', P .. 'failed', f(NOW), id)
  failed_changed = true
  move(cls, st, 'failed')
  remember('failed', id)
  cascade(id, root or id, root_reason or reason)
end
cascade = function(start, root, root_reason)
  -- fail, transitively, the held tasks waiting on start: their dependents are theirs to fail in turn
  local dk = P .. 'deps:' .. start
  local ds = redis.call('SMEMBERS', dk)
  redis.call('DEL', dk)
  for _, d in ipairs(ds) do
    if redis.call('HGET', tk(d), 'st') == 'held' then
      local why = 'dependency ' .. root .. ' failed: ' .. root_reason
      if start ~= root then why = 'dependency ' .. root .. ' failed (via ' .. start .. '): ' .. root_reason end
      fail_final(d, why, root, start, root_reason)
    end
  end
end
local function settle(id, from)
  -- a task whose dependencies are to be judged now: queued, held (waiting on the unfinished ones)
  -- or failed in cascade when one has failed; returns its new state
  local h = tk(id)
  local deps = cjson.decode(redis.call('HGET', h, 'deps') or '[]')
  local waiting = {}
  for _, d in ipairs(deps) do
    local s = redis.call('HGET', tk(d), 'st')
    if s == 'failed' then
      local root, why = root_of(d)
      redis.call('HSET', h, 'st', from)
      local reason = 'dependency ' .. root .. ' failed: ' .. why
      if d ~= root then reason = 'dependency ' .. root .. ' failed (via ' .. d .. '): ' .. why end
      fail_final(id, reason, root, d, why)
      return 'failed'
    end
    if s ~= 'complete' and not (not s and redis.call('ZSCORE', P .. 'pruned', d)) then
      table.insert(waiting, d)  -- neither complete nor completed and pruned since
    end
  end
  if #waiting == 0 then
    redis.call('HSET', h, 'st', from)
    leave(id, from)
    enqueue(id, NOW, from)
    return 'queue'
  end
  leave(id, from)
  for _, d in ipairs(waiting) do redis.call('SADD', P .. 'deps:' .. d, id) end
  redis.call('HSET', h, 'st', 'held', 'waits', #waiting, 'since', f(NOW))
  redis.call('HDEL', h, 'own', 'tok', 'exp', 'due', 'enq')
  redis.call('ZADD', P .. 'held', f(NOW), id)
  move(redis.call('HGET', h, 'cls'), from, 'held')
  return 'held'
end
local function release_dependents(id)
  -- id is complete: each held task waiting on it has one dependency fewer; at none it is queued
  local dk = P .. 'deps:' .. id
  local ds = redis.call('SMEMBERS', dk)
  if #ds > 0 then redis.call('DEL', dk) end
  local released = {}
  for _, d in ipairs(ds) do
    local h = tk(d)
    if redis.call('HGET', h, 'st') == 'held' then
      if redis.call('HINCRBY', h, 'waits', -1) <= 0 then
        leave(d, 'held')
        enqueue(d, NOW, 'held')
        table.insert(released, d)
      end
    end
  end
  return released
end
local function restore_cascade(root)
  -- the dependents that failed only because root did: judged again (held, queued or failed anew)
  local ck = P .. 'cascade:' .. root
  local ids = redis.call('SMEMBERS', ck)
  redis.call('DEL', ck)
  local back = {}
  for _, d in ipairs(ids) do
    local r = redis.call('HMGET', tk(d), 'st', 'root')
    if r[1] == 'failed' and r[2] == root then
      leave(d, 'failed')
      redis.call('HSET', tk(d), 'st', 'restoring', 'retry', '0')
      redis.call('HDEL', tk(d), 'err', 'res', 'root')
      count('failed', redis.call('HGET', tk(d), 'cls'), -1)
      table.insert(back, d)
    end
  end
  for _, d in ipairs(back) do
    if redis.call('HGET', tk(d), 'st') == 'restoring' then settle(d, 'new') end
  end
  return back
end
local function heads_now()
  -- the head of every non-empty lane: {lane, id, enqueue us, depth} (bounded by the kinds of work)
  local out = {}
  for _, lane in ipairs(redis.call('SMEMBERS', P .. 'lanes')) do
    local lk = P .. 'lane:' .. lane
    local head = redis.call('ZRANGE', lk, 0, 0, 'WITHSCORES')
    if head[1] then table.insert(out, {lane, head[1], head[2], redis.call('ZCARD', lk)}) end
  end
  return out
end
local function batch_problems(meta)
  -- a new batch (submit, restore): every id unknown here, every dependency in it or known (or pruned)
  local batch = {}
  for _, m in ipairs(meta) do batch[m.id] = true end
  local problems = {}
  for _, m in ipairs(meta) do
    local st = redis.call('HGET', tk(m.id), 'st')
    if st then table.insert(problems, 'task ' .. m.id .. ': id already exists (' .. st .. ')') end
    for _, d in ipairs(m.deps) do
      if not batch[d] and redis.call('EXISTS', tk(d)) == 0 and not redis.call('ZSCORE', P .. 'pruned', d) then
        table.insert(problems, 'task ' .. m.id .. ": unknown dependency '" .. d .. "'")
      end
    end
  end
  return problems
end
local function finish(out, keep)
  -- keep: the small reply stored under the request id (defaults to out)
  local s = cjson.encode(out)
  if REQ ~= '' then redis.call('SET', P .. 'req:' .. REQ, keep and cjson.encode(keep) or s, 'PX', ARGV[4]) end
  if woke then
    redis.call('PUBLISH', P .. 'wake', 'v' .. f(redis.call('INCR', P .. 'ver')))
  end
  if failed_changed then redis.call('INCR', P .. 'fver') end
  return s
end
"""

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
return cjson.encode({heads = heads_now(), ver = redis.call('GET', P .. 'ver') or '0'})
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
  return finish({ok = 0, heads = heads_now(), ver = ver})
end
want = head[1]
local h = tk(want)
redis.call('ZREM', lk, want)
if redis.call('ZCARD', lk) == 0 then redis.call('SREM', P .. 'lanes', lane) end
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
if woke then  -- wake the others now, so the counter handed back below already counts this change
  redis.call('PUBLISH', P .. 'wake', 'v' .. f(redis.call('INCR', P .. 'ver')))
  woke = false
end
-- the lane heads as they are now: the worker's next claim offers them to its policy without a read
return finish({ok = 1, released = released, heads = heads_now(), ver = redis.call('GET', P .. 'ver') or '0'})
"""

FAIL = PRELUDE + _OWNED + r"""
-- arg: id, token, mode ('delay' | 'final'), error text, attempt JSON, backoff us (delay), final reason
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

SCRIPTS: dict[str, str] = {
    "submit": SUBMIT, "heads": HEADS, "claim": CLAIM, "heartbeat": HEARTBEAT, "complete": COMPLETE,
    "fail": FAIL, "release": RELEASE, "reap": REAP, "promote": PROMOTE, "cancel": CANCEL, "retry": RETRY,
    "resolve": RESOLVE, "park": PARK, "unpark": UNPARK, "forget": FORGET, "prune": PRUNE,
    "restore": RESTORE,
}
