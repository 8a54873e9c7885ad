"""The task detail screen moved to ``task_detail.py`` (it is live now); kept for old imports."""

from __future__ import annotations

from galaxy_tui.screens.task_detail import TaskDetailScreen, view_content

__all__ = ["TaskDetailScreen", "view_content"]
