"""Markdown plans: what a person writes by hand, turned into validated Tasks.

See docs/plan-format.md. ``galaxy submit`` and ``galaxy plan check`` both go through
``load_plan``, so a plan that checks clean is exactly what gets queued.
"""

from engine.plans.build import load_plan, new_batch_id, parse_plan_text, plan_notes, resolve_plan_path, task_id_for
from engine.plans.errors import PlanError

__all__ = ["PlanError", "load_plan", "new_batch_id", "parse_plan_text", "plan_notes", "resolve_plan_path",
           "task_id_for"]
