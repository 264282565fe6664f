"""``ops.notifications``: failures, timeouts and auto-disables, as the engine recorded them
(only while the ``enableNotifications`` setting is on)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from taskops.model import Notification
from taskops.service.arguments import whole_number

if TYPE_CHECKING:
    from taskops.service.ops import TaskOps

__all__ = ["NotificationService"]


class NotificationService:
    """``ops.notifications``."""

    def __init__(self, ops: TaskOps) -> None:
        self._ops = ops

    def list(self, after_id: int = 0, limit: int = 100) -> builtins.list[Notification]:
        """Notifications newer than ``after_id`` (for polling: pass the newest id seen),
        newest first, at most ``limit``. Raises InvalidInput for a negative or non-integer
        id or limit."""
        for field, value in (("after_id", after_id), ("limit", limit)):
            whole_number(value, field)
        return self._ops.store.notifications(after_id=after_id, limit=limit)
