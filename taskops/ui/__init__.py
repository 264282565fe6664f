"""The taskops dashboard as ipywidgets: the whole app (``Dashboard``) and each screen alone.

Every screen takes the site's ``TaskOps`` and talks to it only. Imports are lazy so that a
Voila page (a new kernel each time) pays only for what it shows.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskops.ui.cron_builder import CronBuilder
    from taskops.ui.feedback import Alerts
    from taskops.ui.jobs import JobDetail, JobList
    from taskops.ui.page import dashboard_page
    from taskops.ui.runspaces import RunspaceDetail, RunspaceList
    from taskops.ui.settings_form import SettingsForm
    from taskops.ui.shell import Dashboard, dashboard
    from taskops.ui.task_detail import TaskDetail
    from taskops.ui.task_editor import TaskEditor
    from taskops.ui.task_list import TaskList

__all__ = [
    "Alerts",
    "CronBuilder",
    "Dashboard",
    "JobDetail",
    "JobList",
    "RunspaceDetail",
    "RunspaceList",
    "SettingsForm",
    "TaskDetail",
    "TaskEditor",
    "TaskList",
    "dashboard",
    "dashboard_page",
]

_WHERE = {
    "Alerts": "taskops.ui.feedback",
    "CronBuilder": "taskops.ui.cron_builder",
    "Dashboard": "taskops.ui.shell",
    "JobDetail": "taskops.ui.jobs",
    "JobList": "taskops.ui.jobs",
    "RunspaceDetail": "taskops.ui.runspaces",
    "RunspaceList": "taskops.ui.runspaces",
    "SettingsForm": "taskops.ui.settings_form",
    "TaskDetail": "taskops.ui.task_detail",
    "TaskEditor": "taskops.ui.task_editor",
    "TaskList": "taskops.ui.task_list",
    "dashboard": "taskops.ui.shell",
    "dashboard_page": "taskops.ui.page",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'taskops.ui' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
