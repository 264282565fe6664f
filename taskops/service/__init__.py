"""The service layer: ``TaskOps`` and its parts (``ops.tasks``, ``ops.settings``, ...).

The only place with business rules. The UI, the REST handlers and the CLI call this and
nothing below it.
"""

from taskops.audit import ACTIONS as AUDIT_ACTIONS
from taskops.engine.notify import KINDS as NOTIFICATION_KINDS
from taskops.service.engine import EngineService
from taskops.service.jobs import JobService
from taskops.service.ops import TaskOps, open_site
from taskops.service.runspaces import RunspaceService
from taskops.service.settings import SettingsService
from taskops.service.tasks import TaskService

__all__ = [
    "AUDIT_ACTIONS",
    "NOTIFICATION_KINDS",
    "EngineService",
    "JobService",
    "RunspaceService",
    "SettingsService",
    "TaskOps",
    "TaskService",
    "open_site",
]
