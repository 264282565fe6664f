"""Notifications: a failure, a timeout or an auto-disable, as the engine sees them happen.

When the ``enableNotifications`` setting is on, each becomes a record in the store (the
dashboard shows them) and, when ``notificationWebhook`` is set, a JSON POST to that URL. The
POST is made by one background thread, so a slow or dead receiver never delays a job; what
became of it is written back to the record (``delivery``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from taskops.clock import Clock, SystemClock
from taskops.model import Notification
from taskops.store import Store

__all__ = ["KINDS", "Notifier"]

KINDS = frozenset({"failure", "timeout", "auto_disable"})

_log = logging.getLogger("taskops.engine")


class Notifier:
    """Records notifications and delivers them to the webhook. ``settings`` returns the
    current settings (read on every notification, so changes apply at once)."""

    def __init__(
        self,
        store: Store,
        settings: Callable[[], Mapping[str, Any]],
        *,
        clock: Clock | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock or SystemClock()
        self._timeout = timeout
        self._queue: queue.Queue[tuple[Notification, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def notify(
        self, kind: str, message: str, *, task_id: str | None = None, job_id: int | None = None
    ) -> Notification | None:
        """Record one notification (and queue its webhook POST); None when notifications
        are off."""
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}")
        settings = self._settings()
        if not settings.get("enableNotifications", True):
            return None
        now = self._clock.now()
        note_id = self._store.add_notification(
            time=now, kind=kind, message=message, task_id=task_id, job_id=job_id
        )
        note = Notification(
            id=note_id, time=now, kind=kind, message=message, task_id=task_id, job_id=job_id
        )
        url = str(settings.get("notificationWebhook") or "")
        if url:
            self._ensure_thread()
            self._queue.put((note, url))
        return note

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._deliver_all, name="taskops-webhook", daemon=True
                )
                self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop the thread."""
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    def _deliver_all(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            note, url = item
            delivery = self._post(note, url)
            try:
                self._store.set_notification_delivery(note.id, delivery)
            except Exception:  # the store may be closing; the POST itself happened
                _log.exception("could not record the delivery of notification %s", note.id)

    def _post(self, note: Notification, url: str) -> str:
        body = json.dumps({"source": "taskops", **note.to_dict()}).encode("utf-8")
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                return f"delivered: HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            _log.warning("webhook answered HTTP %s for notification %s", exc.code, note.id)
            return f"failed: HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            _log.warning("webhook POST failed for notification %s: %s", note.id, reason)
            return f"failed: {reason}"
