"""Every ``event_type`` a line of ``logs/events.jsonl`` can carry: one definition.

Writers pass these to ``EventLog.emit``; readers (metrics feed, model demand, the dashboard's
Events view) compare against them. A StrEnum, so the JSON lines hold the same plain strings
as before and old logs read the same.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class EventType(StrEnum):
    # a task's life (engine.queue)
    TASK_SUBMITTED = "task_submitted"
    TASK_HELD = "task_held"  # waits for its dependencies
    TASK_RELEASED = "task_released"  # its dependencies are done
    TASK_CLAIMED = "task_claimed"
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_RETRY_SCHEDULED = "task_retry_scheduled"
    TASK_PROMOTED = "task_promoted"  # a delayed retry is due
    TASK_FAILED = "task_failed"
    TASK_LOST = "task_lost"  # its worker's lease ran out
    TASK_REQUEUED = "task_requeued"
    TASK_HANDED_BACK = "task_handed_back"
    TASK_CANCELLED = "task_cancelled"
    TASK_RETRIED = "task_retried"
    TASK_INVALID = "task_invalid"
    TASK_FIXED = "task_fixed"
    TASK_AWAITING_APPROVAL = "task_awaiting_approval"
    TASK_ESCALATION_DENIED = "task_escalation_denied"
    TASK_ESCALATION_FAILED = "task_escalation_failed"
    TASK_MIGRATED = "task_migrated"  # arrived from another store (galaxy store migrate); ``place`` says where
    DUPLICATE_COMPLETION = "duplicate_completion"
    DUPLICATE_CLAIM_DROPPED = "duplicate_claim_dropped"
    LATE_RESULT_DISCARDED = "late_result_discarded"
    # a worker's life (engine.worker)
    WORKER_STARTED = "worker_started"
    WORKER_STOPPED = "worker_stopped"
    WORKER_PAUSED = "worker_paused"
    WORKER_RESUMED = "worker_resumed"
    WORKER_DRAINING = "worker_draining"
    WORKER_ERROR = "worker_error"
    # the store (Redis) as a process sees it (engine.worker.outage, the supervisor)
    STORE_UNREACHABLE = "store_unreachable"
    STORE_RECOVERED = "store_recovered"
    # models on a card (engine.residency)
    LLM_LOADING = "llm_loading"
    LLM_LOADED = "llm_loaded"
    LLM_LOAD_FAILED = "llm_load_failed"
    LLM_LOST = "llm_lost"
    LLM_UNLOADING = "llm_unloading"
    LLM_UNLOAD_ERROR = "llm_unload_error"
    MODEL_UNLOADED = "model_unloaded"
    SCRIPT_RELEASED = "script_released"
    FORCE_UNLOAD = "force_unload"
    FORCE_UNLOAD_DEFERRED = "force_unload_deferred"
    FORCE_UNLOAD_FAILED = "force_unload_failed"
    VRAM_FREED = "vram_freed"
    VRAM_NOT_FREED = "vram_not_freed"
    GPU_RECOVERED = "gpu_recovered"
    CPU_FALLBACK = "cpu_fallback"
    BACKEND_UNREACHABLE = "backend_unreachable"
    # routing and escalation (engine.routing, engine.escalation)
    ROUTE_FAILED = "route_failed"
    BREAKER_CHANGED = "breaker_changed"
    ESCALATION_REQUESTED = "escalation_requested"
    ESCALATION_APPROVED = "escalation_approved"
    ESCALATION_DENIED = "escalation_denied"
    ESCALATION_EXPIRED = "escalation_expired"
    ESCALATION_ANSWERED = "escalation_answered"
    ESCALATION_FAILED = "escalation_failed"
    ESCALATION_SEND_FAILED = "escalation_send_failed"
    ESCALATION_UNAVAILABLE = "escalation_unavailable"
    ESCALATION_REJECTED = "escalation_rejected"  # a bad record, moved to rejected/
    ESCALATIONS_PRUNED = "escalations_pruned"


OnEvent = Callable[[EventType, dict[str, object]], None]
"""How routing and escalation report an event (the supervisor logs it and writes it to the event log)."""
