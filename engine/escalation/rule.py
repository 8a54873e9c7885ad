"""Which tasks a worker parks for escalation when they fail for good (``TaskQueue.fail(escalate=)``).

Awaiting approval is its own state from the task's failure on: the worker that records the last
failed attempt of a task that qualifies puts it in awaiting (never failed/, its dependents held)
instead of the supervisor moving it out of failed/ a tick later. The supervisor, whose cloud tier
has providers, hands the rule to its workers in their environment; the cloud tier raises the
escalation and attaches it. A worker started without it fails such tasks as before and the
cloud tier parks them from failed/.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.model import Task
from engine.queue.protocol import EscalationRule

ENV_ESCALATE_AFTER = "GALAXY_ESCALATE_AFTER"
"""The ``[escalation] after_local_failures`` of a rig whose cloud tier has providers; unset: no escalation."""


def escalation_env(after_local_failures: int | None) -> dict[str, str]:
    """The workers' environment for the rule; ``None``: escalation is off (no provider)."""
    return {} if after_local_failures is None else {ENV_ESCALATE_AFTER: str(after_local_failures)}


def rule_from_env(environ: Mapping[str, str]) -> EscalationRule | None:
    """The worker's rule, from what its supervisor put in its environment (None: off, or not a number)."""
    raw = environ.get(ENV_ESCALATE_AFTER, "")
    try:
        after = int(raw)
    except ValueError:
        return None
    if after < 0:
        return None

    def escalates(task: Task) -> str | None:
        from engine.escalation.service import should_escalate  # only on a final failure: workers start light
        from engine.routing.nodes import EscalationConfig

        return should_escalate(task, EscalationConfig(after_local_failures=after))

    return escalates
