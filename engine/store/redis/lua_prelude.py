"""What every Redis queue script starts with: the argument convention, the key layout, and the shared
Lua functions (moves between states, settling dependencies, cascades, the reply and its wake).
The scripts themselves: engine/store/redis/lua.py (a worker's transitions) and lua_operator.py.

Every script starts with ``PRELUDE`` and answers through its ``finish``. ARGV[1] is the key prefix
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
  hd          hash L -> 'HEAD_ID ENQ_US DEPTH' of every non-empty lane, kept by each script that changes a
              lane (so every head is one HGETALL); a read that finds it naming other lanes than lanes
              (data written before it was kept) rebuilds it from them
  proc        zset id -> lease deadline (us); delayed: id -> due (us); held: id -> since (us);
              failed / awaiting: id -> since (us)
  deps:ID     set of held ids that wait on ID; cascade:ROOT: set of ids failed because ROOT failed
  n:STATE     hash class -> number of tasks in STATE (complete: completions ever, pruned ones too);
              recent:complete / recent:failed: capped lists
  done        zset id -> completion time (us): the completed records, oldest first, for PRUNE
  pruned      zset id -> completion time (us) of the newest pruned ids (capped): a dependency on one is
              met, as on a complete task, though its record is gone
  ver         counter bumped whenever something becomes claimable, its new value published on ``wake``
              as ``v<ver> HEADS``, HEADS the lanes the script queued tasks in with their entries in hd,
              as a flat JSON list (omitted past 16 lanes; engine/store/redis/waker.py);
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
local touched, touched_list = {}, {}  -- the lanes this script queued tasks in: their heads go with the wake
local WAKE_HEADS_MAX = 16
local changed, changed_list = {}, {}  -- the lanes whose head or depth this script changed: kept in hd at the end
local head_of = {}  -- lane -> its entry in hd ('ID ENQ DEPTH', '' when empty) as this script last wrote it
local function lane_changed(lane)
  if not changed[lane] then changed[lane] = true; table.insert(changed_list, lane) end
end
local function refresh_heads()
  -- hd: lane -> 'ID ENQ DEPTH' of every non-empty lane, so reading every head is one HGETALL
  for _, lane in ipairs(changed_list) do
    local lk = P .. 'lane:' .. lane
    local head = redis.call('ZRANGE', lk, 0, 0, 'WITHSCORES')
    if head[1] then
      head_of[lane] = head[1] .. ' ' .. head[2] .. ' ' .. redis.call('ZCARD', lk)
      redis.call('HSET', P .. 'hd', lane, head_of[lane])
    else
      head_of[lane] = ''
      redis.call('HDEL', P .. 'hd', lane)
      redis.call('SREM', P .. 'lanes', lane)
    end
  end
  changed, changed_list = {}, {}
end
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
    lane_changed(lane)
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
  if not touched[lane] then touched[lane] = true; table.insert(touched_list, lane) end
  lane_changed(lane)
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
  -- the head of every non-empty lane, flat: lane, 'ID ENQ DEPTH', ... (hd). When hd does not name
  -- exactly the lanes in lanes (data written before hd was kept, or by a galaxy that does not keep it)
  -- it is rebuilt from them: bounded by the kinds of work waiting, as every read of the heads was
  -- before. A stale entry of a lane it names is mended by the claim it misleads (CLAIM).
  refresh_heads()
  local flat = redis.call('HGETALL', P .. 'hd')
  local lanes = redis.call('SMEMBERS', P .. 'lanes')
  if #flat == 2 * #lanes then
    local named = {}
    for i = 1, #flat, 2 do named[flat[i]] = true end
    local whole = true
    for _, lane in ipairs(lanes) do
      if not named[lane] then whole = false; break end
    end
    if whole then return flat end
  end
  redis.call('DEL', P .. 'hd')
  for _, lane in ipairs(lanes) do lane_changed(lane) end
  refresh_heads()
  return redis.call('HGETALL', P .. 'hd')
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
local function publish_wake()
  -- 'v' .. the new ver, then the heads of the lanes this script queued tasks in, as heads_now gives them
  -- (lane, 'ID ENQ DEPTH' or '' for one empty again): a worker whose view is the previous ver applies
  -- them and claims without reading the heads (waker.py). Past WAKE_HEADS_MAX lanes, the counter alone.
  refresh_heads()
  local msg = 'v' .. f(redis.call('INCR', P .. 'ver'))
  if #touched_list <= WAKE_HEADS_MAX then
    local hs = {}
    for _, lane in ipairs(touched_list) do
      table.insert(hs, lane); table.insert(hs, head_of[lane] or '')
    end
    msg = msg .. ' ' .. (#hs > 0 and cjson.encode(hs) or '[]')
  end
  redis.call('PUBLISH', P .. 'wake', msg)
  woke = false
  touched, touched_list = {}, {}
end
local function finish(out, keep)
  -- keep: the small reply stored under the request id (defaults to out)
  refresh_heads()
  local s = cjson.encode(out)
  if REQ ~= '' then redis.call('SET', P .. 'req:' .. REQ, keep and cjson.encode(keep) or s, 'PX', ARGV[4]) end
  if woke then publish_wake() end
  if failed_changed then redis.call('INCR', P .. 'fver') end
  return s
end
"""
