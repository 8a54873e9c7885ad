"""RedisQueue: the queue protocols (engine.queue.protocol.RigQueue) over one Redis, for several rigs.

Every state transition is one Lua script (engine.store.redis.lua), so Redis applies it whole or not
at all, and no other client sees it half done. A claim is read-then-take: one script returns the
head of every lane (cost grows with the kinds of work waiting, never with depth), the claim policy
picks one, and a second script takes that lane's head only if it still is that task (else it
answers the lane's new head and the policy chooses again).

Each claim gets an owner token; heartbeat, complete, fail and release carry it and are refused
when it is no longer the task's current claim (reaped, cancelled, claimed again), so a worker that
stopped past its lease records nothing. A command resent after a lost reply applies once: a claim
or finish by its token (the script recognises its own claim or finish), a submit by its request id
on the tasks, the operator actions by request ids kept ``request_ttl_s``. With ``QueueClock.SERVER``
(the default) leases and backoff are judged by Redis's clock (``TIME``), not by any worker's.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import redis

from engine.event_types import EventType
from engine.model import ERROR_SNIPPET_CHARS, Attempt, Task, TaskStatus, TaskValidationError, is_safe_task_id
from engine.proctable import current_instance
from engine.queue.protocol import (
    DONE,
    AwaitingStore,
    ClaimPolicy,
    ClaimView,
    EscalationRule,
    Place,
    QueueCounts,
    QueuedSource,
    Refusal,
    RigQueue,
    Verdict,
    WaitingTask,
)
from engine.queue.protocol import StoreUnavailable as StoreUnavailable  # declared there; channels import it here
from engine.store.redis import codec, replies, views
from engine.store.redis.awaiting import RedisAwaiting
from engine.store.redis.client import key_prefix, require_no_eviction
from engine.store.redis.codec import new_request_id as new_request_id  # one place; tests import it here
from engine.store.redis.lua import SCRIPTS
from engine.store.redis.restore import restore_batch
from engine.store.redis.scripts import KeptConnection, ScriptCalls
from engine.store.redis.unavailable import store_call
from engine.store.redis.waker import RedisWaker

DEFAULT_BACKOFF_BASE_S = 10.0
DEFAULT_BACKOFF_CAP_S = 600.0
BATCH = 200  # tasks one reap or promote script moves at most
MAX_BATCHES = 50  # per reap_stale / promote_due call
CLAIM_TRIES = 1000
CONTENDED_CLAIMS = 64
"""After a conflict, this many claims ask the policy a second time whether the lane's next task of
the same age would be the same choice (``replies.same_enq``); an uncontended worker does not pay for it."""
PRUNED_KEPT = 1_000_000
"""Ids of pruned completed tasks remembered (about 80 bytes each): a dependency on one of them is met;
one pruned longer ago than the newest million is an unknown id, as one never submitted."""
MAX_TASK_BYTES = 1 << 20  # as a task file (engine/safeio.py): a submit with a bigger task is refused


class QueueClock(StrEnum):
    """Whose clock judges leases, backoff and enqueue times."""

    SERVER = "server"  # Redis's TIME: one clock for every rig (production)
    CALLER = "caller"  # the ``now`` each call passes (simulations, tests with a fake clock)


class EventSink(Protocol):
    def emit(self, event_type: EventType, *, at: float | None = None, task_id: str | None = None,
             worker_id: str | None = None, error: str | None = None, **extra: Any) -> None: ...


class NoEvents:
    def emit(self, event_type: EventType, *, at: float | None = None, task_id: str | None = None,
             worker_id: str | None = None, error: str | None = None, **extra: Any) -> None:
        return None


@dataclass
class _Claim:
    token: str
    worker_id: str
    task: Task
    claimed_at: float


class RedisQueue:
    def __init__(self, client: redis.Redis, cluster: str = "main", *, events: EventSink | None = None,
                 clock: QueueClock = QueueClock.SERVER, rng: random.Random | None = None,
                 backoff_base_s: float = DEFAULT_BACKOFF_BASE_S, backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
                 request_ttl_s: float = 600.0, retries: int = 6, check_eviction: bool = True,
                 scripts: ScriptCalls | None = None, rig: str | None = None) -> None:
        self.r = client
        self.rig = rig
        """This process's rig: written into the attempts it records (worker names repeat across rigs)."""
        self._direct = KeptConnection(client)  # connects on its first call only
        self.calls: ScriptCalls = scripts if scripts is not None else self._direct
        """Where the transition scripts go (one kept connection, engine/store/redis/scripts.py)."""
        self.cluster = cluster
        self.prefix = key_prefix(cluster)
        if check_eviction:
            require_no_eviction(client, where=f"cluster {cluster!r}")
        self.events: EventSink = events if events is not None else NoEvents()
        self.clock = clock
        self.rng = rng or random.Random()
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.request_ttl_ms = str(int(request_ttl_s * 1000))
        self.retries = retries
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}  # (for their sha)
        self._ver_key = self.key("ver")
        self._claims: dict[str, _Claim] = {}
        self._heads: tuple[dict[str, tuple[str, float, int]], str] | None = None
        """Lane heads and wake counter from this process's last completion: the next claim offers
        them to its policy without reading them again; the claim script refuses a view that is no
        longer true (something became claimable since, or the chosen head was taken)."""
        self.claim_conflicts = 0  # claims that found their lane's head taken by another worker
        self._contended = 0  # claims left that offer the same-candidate substitution (after a conflict)
        self.waker = RedisWaker(client, self.prefix)
        self.awaiting: AwaitingStore = RedisAwaiting(self)

    # ------------------------------------------------------------------ plumbing
    def key(self, suffix: str) -> str:
        return self.prefix + suffix

    def run(self, script: str, now: float, args: Sequence[str | int], *, request_id: str = "") -> dict[str, Any]:
        """Run one transition script; resent with the same arguments after a lost reply. With a
        ``request_id`` the reply is kept ``request_ttl_s``: a resend answers it instead of applying twice."""
        argv: list[str | int] = [self.prefix, "" if self.clock is QueueClock.SERVER else str(codec.us(now)),
                                 request_id, self.request_ttl_ms, *args]
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                raw = self._eval(script, argv)
                out = json.loads(raw)
                if not isinstance(out, dict):
                    raise TypeError(f"script {script} answered {raw!r}")
                return out
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                last = exc
                self.waker.lost()  # its connection may be as dead as this one: the next wait opens another
                if attempt < self.retries:
                    time.sleep(min(2.0, 0.05 * (2 ** attempt)))
        raise StoreUnavailable(f"Redis did not answer {script} for cluster {self.cluster!r}: {last}")

    def _eval(self, script: str, argv: Sequence[str | int]) -> Any:
        sha = self._scripts[script].sha
        try:
            return self.calls.evalsha(sha, 1, self._ver_key, *argv)
        except redis.exceptions.NoScriptError:  # a restarted or another Redis: load it, same sha
            self.calls.script_load(SCRIPTS[script])
            return self.calls.evalsha(sha, 1, self._ver_key, *argv)

    def close(self) -> None:
        self.waker.close()
        self._direct.close()

    # ---- QueueWaker ----
    def wait_for_change(self, timeout_s: float, *, wake_fd: int | None = None) -> bool:
        return self.waker.wait(timeout_s, wake_fd=wake_fd)

    def wakes_on_change(self) -> bool:
        return True

    @store_call
    def next_due(self) -> float | None:
        first = self.r.zrange(self.key("delayed"), 0, 0, withscores=True)
        return float(first[0][1]) / 1e6 if first else None

    def watch(self, path: Path, names: frozenset[str] | None = None) -> None:
        self.waker.watch(path, names)

    def backoff_s(self, retry_number: int) -> float:
        """Exponential backoff with jitter: base * 2^(n-1), capped, times a factor in [0.5, 1.5)."""
        raw = min(self.backoff_cap_s, self.backoff_base_s * (2.0 ** max(0, retry_number - 1)))
        return raw * (0.5 + self.rng.random())

    # ------------------------------------------------------------------ submit
    def submit(self, tasks: Sequence[Task], now: float) -> list[str]:
        """All-or-nothing: every id, dependency and duplicate is checked (in Python, then in the
        script against Redis) before anything is written; one script writes the whole batch."""
        ids = [t.task_id for t in tasks]
        problems: list[str] = []
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            problems.append(f"duplicate task id(s) in this submission: {', '.join(dupes)}")
        for t in tasks:
            if not is_safe_task_id(t.task_id):
                problems.append(f"task id {t.task_id!r} is not valid")
            if t.task_id in t.depends_on:
                problems.append(f"task {t.task_id}: depends on itself")
        pending = [t.with_changes(status=TaskStatus.PENDING, lease_owner=None, lease_expires=None, result=None,
                                  attempts=(), error=None, created_at=t.created_at or now) for t in tasks]
        encoded = [codec.encode_task(t) for t in pending]
        problems += [f"task {t.task_id}: larger than {MAX_TASK_BYTES:,} bytes as JSON"
                     for t, raw in zip(tasks, encoded) if len(raw) > MAX_TASK_BYTES]
        if problems:
            raise TaskValidationError("; ".join(problems))
        if not tasks:
            return []
        meta = [{"id": t.task_id, "cls": t.task_class.value, "lane": codec.lane_key(t), "maxr": t.max_retries,
                 "retry": t.retry_count, "deps": list(t.depends_on),
                 "att": [json.dumps(a.to_dict()) for a in t.attempts]} for t in tasks]  # history kept (a migration)
        reply = self.run("submit", now, [json.dumps(meta), uuid.uuid4().hex, *encoded])
        if not reply.get("ok"):
            raise TaskValidationError("; ".join(str(p) for p in reply.get("problems") or []))
        states = reply.get("states") or {}
        for t in tasks:
            st = states.get(t.task_id, "queue")
            kind = EventType.TASK_HELD if st == "held" else EventType.TASK_SUBMITTED
            self.events.emit(kind, at=now, task_id=t.task_id, model=t.model, task_class=t.task_class.value)
            if t.fix_applied:
                self.events.emit(EventType.TASK_FIXED, at=now, task_id=t.task_id, fix_applied=t.fix_applied)
        return ids

    # ------------------------------------------------------------------ claim
    def heads(self) -> tuple[dict[str, tuple[str, float, int]], str]:
        """lane -> (head id, enqueue us, depth), and the wake counter, in one read."""
        return replies.heads_of(self.run("heads", 0.0, []))

    def claim(self, worker_id: str, now: float, policy: ClaimPolicy, lease_s: float) -> Task | None:
        kept, self._heads = self._heads, None
        if kept is None:
            kept = self.waker.view()  # the heads the wakes since the last claim's read carried
        heads, ver = kept if kept is not None else self.heads()
        self.waker.seen(ver, heads)
        lease_us = str(max(1, codec.us(lease_s)))
        for _ in range(CLAIM_TRIES):
            lane_of = {head[0]: lane for lane, head in heads.items()}
            offered = [codec.candidate(lane, *head) for lane, head in heads.items()]
            ranked = policy(offered, now) if offered else []
            if not ranked:
                if kept is None:
                    return None
                kept = None  # nothing fit the kept view: read the heads as they are now before saying so
                heads, ver = self.heads()
                self.waker.seen(ver, heads)
                continue
            top = ranked[0]
            lane = lane_of[top.task_id]
            token = uuid.uuid4().hex
            same = replies.same_enq(policy, top, offered, heads[lane], now) if self._contended > 0 else ""
            self._contended = max(0, self._contended - 1)
            reply = self.run("claim", now, [lane, top.task_id, worker_id, token, lease_us, ver, current_instance(),
                                            same])
            if reply.get("ok"):
                task = self._claimed(reply, worker_id, token, now)
                if task is not None:
                    return task
                heads, ver = self.heads()
                self.waker.seen(ver, heads)
                continue
            self.claim_conflicts += 1
            self._contended = CONTENDED_CLAIMS
            kept = None  # the script answered the heads as they are now: nothing fitting them is final
            heads, ver = replies.heads_of(reply)
            self.waker.seen(ver, heads)
        return None

    def _claimed(self, reply: dict[str, Any], worker_id: str, token: str, now: float) -> Task | None:
        task_id = str(reply["id"])
        flat = reply.get("f") or []
        fields = {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
        attempts = [str(a) for a in (reply.get("a") or [])]
        try:
            task = codec.decode_task(task_id, fields, attempts, where=f"redis {self.key('t:' + task_id)}")
        except TaskValidationError as exc:  # a record someone else wrote: failed with the reason, once
            self.run("fail", now, [task_id, token, "final", str(exc), json.dumps(
                Attempt(1, worker_id, now, now, "error", None, str(exc)[-ERROR_SNIPPET_CHARS:], self.rig).to_dict()),
                "0", f"invalid task record: {exc}"])
            self.events.emit(EventType.TASK_INVALID, at=now, task_id=task_id, error=str(exc))
            return None
        claimed_at = int(reply["clm"]) / 1e6
        self._claims[task_id] = _Claim(token, worker_id, task, claimed_at)
        self.events.emit(EventType.TASK_CLAIMED, at=now, task_id=task_id, worker_id=worker_id,
                         task_class=task.task_class.value, retry_count=task.retry_count)
        return task  # read after the claim's own write: processing, owned by worker_id, its lease's deadline

    def owner_token(self, task_id: str) -> str | None:
        """This process's owner token for a claim it holds (None: it holds none)."""
        c = self._claims.get(task_id)
        return c.token if c else None

    # ------------------------------------------------------------------ leases
    def heartbeat(self, task_id: str, worker_id: str, now: float, lease_s: float) -> bool:
        return self.heartbeat_many([(task_id, worker_id)], now, lease_s).get(task_id, False)

    def heartbeat_many(self, claims: Sequence[tuple[str, str]], now: float, lease_s: float) -> dict[str, bool]:
        """Extend every listed (task id, worker id) claim in one call; False for those no longer held."""
        out: dict[str, bool] = {}
        args: list[str | int] = [str(max(1, codec.us(lease_s)))]
        asked: list[str] = []
        for task_id, worker_id in claims:
            c = self._claims.get(task_id)
            if c is None or c.worker_id != worker_id:
                out[task_id] = False
                continue
            args += [task_id, c.token]
            asked.append(task_id)
        if asked:
            reply = self.run("heartbeat", now, args)
            for task_id, exp in zip(asked, reply.get("exp") or [], strict=False):
                out[task_id] = bool(exp)
        return out

    def _take_claim(self, task_id: str, worker_id: str) -> _Claim | None:
        c = self._claims.get(task_id)
        return c if c is not None and c.worker_id == worker_id else None

    def _attempt(self, c: _Claim, now: float, outcome: str, *, error: str | None = None,
                 return_code: int | None = None) -> Attempt:
        return Attempt(number=len(c.task.attempts) + 1, worker_id=c.worker_id, started_at=c.claimed_at, ended_at=now,
                       outcome=outcome, return_code=return_code,
                       error=error[-ERROR_SNIPPET_CHARS:] if error else None, rig=self.rig)

    def _refused(self, task_id: str, worker_id: str, now: float, what: str, state: str,
                 error: str | None = None) -> None:
        kind = EventType.DUPLICATE_COMPLETION if state == "complete" else EventType.LATE_RESULT_DISCARDED
        self.events.emit(kind, at=now, task_id=task_id, worker_id=worker_id, error=error,
                         reason=f"worker {what} the task without holding its claim; task is now {state}")

    # ------------------------------------------------------------------ outcomes
    def complete(self, task_id: str, worker_id: str, result: dict[str, Any], now: float) -> None:
        c = self._take_claim(task_id, worker_id)
        if c is None:
            self._refused(task_id, worker_id, now, "completed", self._state(task_id))
            return
        rc = result.get("return_code") if isinstance(result.get("return_code"), int) else None
        reply = self.run("complete", now, [task_id, c.token, json.dumps(result),
                                           json.dumps(self._attempt(c, now, "ok", return_code=rc).to_dict())])
        self._claims.pop(task_id, None)
        if not reply.get("ok") and not replies.applied_earlier(reply):
            self._refused(task_id, worker_id, now, "completed", str(reply.get("state")))
            return
        if "hd" in reply:
            self._heads = replies.heads_of(reply)
        tokens = result.get("tokens_generated")
        self.events.emit(EventType.TASK_COMPLETED, at=now, task_id=task_id, worker_id=worker_id,
                         duration_ms=(now - c.claimed_at) * 1000.0,
                         tokens_generated=tokens if isinstance(tokens, int) else None,
                         task_class=c.task.task_class.value, retry_count=c.task.retry_count, return_code=rc,
                         fix_applied=c.task.fix_applied)
        self._released(reply, now)

    def _released(self, reply: dict[str, Any], now: float) -> None:
        for dep in reply.get("released") or []:
            self.events.emit(EventType.TASK_RELEASED, at=now, task_id=str(dep))

    def fail(self, task_id: str, worker_id: str, error: str, now: float, *, retryable: bool = True,
             return_code: int | None = None, escalate: EscalationRule | None = None) -> None:
        c = self._take_claim(task_id, worker_id)
        if c is None:
            self._refused(task_id, worker_id, now, "failed", self._state(task_id), error)
            return
        outcome = "timeout" if "timed out" in error else "error"
        tried = self._attempt(c, now, outcome, error=error, return_code=return_code)
        attempt = json.dumps(tried.to_dict())
        snippet = error[-ERROR_SNIPPET_CHARS:]
        task = c.task
        extra: dict[str, Any]
        if retryable and task.retry_count < task.max_retries:
            n = task.retry_count + 1
            backoff = self.backoff_s(n)
            reply = self.run("fail", now, [task_id, c.token, "delay", snippet, attempt, str(codec.us(backoff)), ""])
            event, extra = EventType.TASK_RETRY_SCHEDULED, {"retry_count": n, "not_before": now + backoff}
        else:
            why = snippet if not retryable else f"{snippet} (gave up after {task.retry_count + 1} attempts)"
            last = task.with_changes(attempts=task.attempts + (tried,), error=why)
            escalation = escalate(last) if escalate is not None else None
            mode = "final" if escalation is None else "await"
            reply = self.run("fail", now, [task_id, c.token, mode, snippet, attempt, "0", why])
            event, extra = EventType.TASK_FAILED, {"retry_count": task.retry_count}
            if escalation is not None:  # waits for an operator from its failure on: no failure event
                event, extra = EventType.TASK_AWAITING_APPROVAL, {"reason": escalation}
        self._claims.pop(task_id, None)
        if not reply.get("ok") and not replies.applied_earlier(reply):
            self._refused(task_id, worker_id, now, "failed", str(reply.get("state")), error)
            return
        if event is EventType.TASK_RETRY_SCHEDULED and not reply.get("ok") and reply.get("due"):
            extra["not_before"] = int(reply["due"]) / 1e6  # the due time the earlier try set
        self.events.emit(event, at=now, task_id=task_id, worker_id=worker_id, error=snippet,
                         duration_ms=(now - c.claimed_at) * 1000.0, return_code=return_code,
                         task_class=task.task_class.value, **extra)

    def release(self, task_id: str, worker_id: str, now: float, reason: str) -> None:
        """Hand back untouched. Without this process's token (the supervisor handing back the claim of
        a worker process that is gone) the claim must still be ``worker_id``'s."""
        c = self._take_claim(task_id, worker_id)
        if c is None:
            reply = self.run("release", now, [task_id, "", "", worker_id, reason])
        else:
            handed_back = json.dumps(self._attempt(c, now, "released", error=reason).to_dict())
            reply = self.run("release", now, [task_id, c.token, handed_back, worker_id, reason])
        self._claims.pop(task_id, None)
        if reply.get("ok") or replies.applied_earlier(reply):
            self.events.emit(EventType.TASK_HANDED_BACK, at=now, task_id=task_id, worker_id=worker_id, reason=reason)

    # ------------------------------------------------------------------ housekeeping
    def reap_stale(self, now: float) -> list[str]:
        out: list[str] = []
        for _ in range(MAX_BATCHES):
            reaped = self.run("reap", now, [BATCH]).get("reaped") or []
            for task_id, worker, where, retry in reaped:
                out.append(str(task_id))
                if where == "queue":
                    self.events.emit(EventType.TASK_LOST, at=now, task_id=str(task_id), worker_id=str(worker),
                                     retry_count=int(retry), error="lease expired; returned to the queue")
                else:
                    self.events.emit(EventType.TASK_FAILED, at=now, task_id=str(task_id), worker_id=str(worker),
                                     retry_count=int(retry), error="lease expired too often (worker lost); gave up")
            if len(reaped) < BATCH:
                break
        return out

    def promote_due(self, now: float) -> list[str]:
        out: list[str] = []
        for _ in range(MAX_BATCHES):
            ids = [str(i) for i in self.run("promote", now, [BATCH]).get("ids") or []]
            for task_id in ids:
                self.events.emit(EventType.TASK_PROMOTED, at=now, task_id=task_id)
            out += ids
            if len(ids) < BATCH:
                break
        return out

    def prune_completed(self, now: float, keep_s: float, *, pruned_kept: int = PRUNED_KEPT) -> list[str]:
        """Remove the records of tasks completed more than ``keep_s`` ago (by the queue's clock), oldest
        first, in batches of ``BATCH`` (at most ``MAX_BATCHES`` a call): no scan, an index by completion
        time. A dependency on a pruned task still counts as met while its id is among the newest
        ``pruned_kept`` pruned ones. The ids pruned."""
        out: list[str] = []
        for _ in range(MAX_BATCHES):
            reply = self.run("prune", now, [str(max(0, codec.us(keep_s))), BATCH, max(0, pruned_kept)])
            out += [str(i) for i in reply.get("pruned") or []]
            if not reply.get("more"):
                break
        return out

    # ------------------------------------------------------------------ operator actions
    def retry(self, task_id: str, now: float) -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.run("retry", now, [task_id], request_id=new_request_id())
        if reply.get("ok"):
            self.events.emit(EventType.TASK_RETRIED, at=now, task_id=task_id)
            return DONE
        if reply.get("dep"):
            dep = reply["dep"]
            return Verdict.refused(Refusal.DEPENDENCY_FAILED, f"dependency {dep} has failed; retry {dep} instead")
        if reply.get("state") == "awaiting":
            return Verdict.refused(Refusal.AWAITING_APPROVAL, self.awaiting.refusal(task_id) or
                                   f"{task_id} is awaiting approval of its escalation; approve or deny it first")
        return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not in failed/")

    @store_call
    def retry_all_failed(self, now: float) -> list[str]:
        ids = [str(i) for i in self.r.zrange(self.key("failed"), 0, -1)]
        return [i for i in ids if self.retry(i, now)]

    def cancel(self, task_id: str, now: float, reason: str) -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.run("cancel", now, [task_id, reason], request_id=new_request_id())
        if reply.get("ok"):
            worker = str(reply.get("worker") or "") or None
            self.events.emit(EventType.TASK_CANCELLED, at=now, task_id=task_id, worker_id=worker,
                             error=f"cancelled: {reason}")
            return DONE
        if reply.get("state") == "awaiting":
            return Verdict.refused(Refusal.AWAITING_APPROVAL, f"{task_id} is awaiting approval of its escalation; "
                                   "`galaxy deny ESCALATION --reason ...` fails it instead")
        return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not waiting or running (already finished, or unknown)")

    def restore(self, tasks: Sequence[Task], now: float) -> list[str]:
        return restore_batch(self, tasks, now)

    def forget_failed(self, task_id: str, now: float) -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.run("forget", now, [task_id], request_id=new_request_id())
        if reply.get("ok"):
            return DONE
        return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not failed (state {reply.get('state')}): "
                               "only a failed task can be forgotten")

    def resolve_failed(self, task_id: str, result: dict[str, Any], now: float,
                       note: str = "escalation") -> Verdict:
        if not is_safe_task_id(task_id):
            return Verdict.refused(Refusal.INVALID_ID, f"task id {task_id!r} is not valid")
        reply = self.run("resolve", now, [task_id, json.dumps(result), ""], request_id=new_request_id())
        if reply.get("ok"):
            self.events.emit(EventType.TASK_COMPLETED, at=now, task_id=task_id, resolved_by=note)
            self._released(reply, now)
            return DONE
        if reply.get("state") == "complete":
            return Verdict.refused(Refusal.ALREADY_COMPLETE, f"{task_id} is already complete")
        return Verdict.refused(Refusal.NOT_FOUND, f"{task_id} is not in failed/")

    # ------------------------------------------------------------------ views
    @store_call
    def _state(self, task_id: str) -> str:
        st = self.r.hget(self.key(f"t:{task_id}"), "st")
        return str(st) if st else "unknown"

    @store_call
    def get(self, task_id: str) -> Task | None:
        return views.get(self, task_id)

    @store_call
    def where(self, task_id: str) -> Place | None:
        if not is_safe_task_id(task_id):
            return None
        return codec.PLACE_OF.get(self._state(task_id))

    @store_call
    def claim_of(self, task_id: str) -> ClaimView | None:
        if not is_safe_task_id(task_id):
            return None
        return views.claim_of(self, task_id)

    @store_call
    def claims(self, worker_id: str | None = None) -> list[ClaimView]:
        """Every live claim (expired or not): one entry per running task, so bounded by the workers."""
        return views.claims(self, worker_id)

    @store_call
    def ids_in(self, place: Place) -> list[str]:
        """From the place's own set (every lane's zset for the queue): a walk, for operators only."""
        return views.ids_in(self, place)

    @store_call
    def failed_stamp(self) -> int | None:
        raw = self.r.get(self.key("fver"))
        return int(raw) if raw else 0

    @store_call
    def counts(self) -> QueueCounts:
        return views.counts(self)

    def lister(self) -> QueuedSource:
        """Pages of the claimable tasks in claim order (the dashboard's Tasks view)."""
        from engine.store.redis.listing import RedisQueueLister

        return RedisQueueLister(self)

    @store_call
    def oldest_waiting(self, now: float, limit: int) -> list[WaitingTask]:
        return views.oldest_waiting(self, now, limit)

    @store_call
    def recent(self, state: str, limit: int) -> list[Task]:
        return views.recent(self, state, limit)


def _is_a_rig_queue(q: RedisQueue) -> RigQueue:
    """mypy checks here that RedisQueue has every capability the protocols declare."""
    return q
