"""``TaskOps``: every operation of the console on one site, its validation, its audit line.

The only place with business rules. The UI, the REST handlers and the CLI call this and
nothing below it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from taskops.audit import ACTIONS, AuditLog
from taskops.clock import Clock, SystemClock
from taskops.errors import InvalidInput, Problem, TaskopsError
from taskops.model import RunspaceKind, SiteError
from taskops.service.arguments import aware_time, whole_number
from taskops.service.engine import EngineService
from taskops.service.jobs import JobService
from taskops.service.notifications import NotificationService
from taskops.service.runspaces import RunspaceCloser, RunspaceService
from taskops.service.settings import SettingsService
from taskops.service.tasks import NextRuns, TaskService, TaskViews
from taskops.settings import Settings
from taskops.site import Catalog, Site
from taskops.store import Store

__all__ = ["TaskOps", "open_site"]


class TaskOps:
    """Operations on one site. Open with ``taskops.open_site(path)``.

    ``ops.tasks``, ``ops.jobs``, ``ops.runspaces``, ``ops.settings`` and ``ops.engine``
    hold the operations; ``ops.site_errors()`` lists
    what is wrong in the site's files. Changes are made as ``ops.user`` and audited.
    """

    def __init__(
        self,
        site: Site,
        *,
        store: Store | None = None,
        user: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.site = site
        self.store = store or Store.for_sqlite(site.db_path)
        self.user = user or _default_user()
        self.clock: Clock = clock or SystemClock()
        self.catalog = Catalog(site)
        self._settings = Settings(site.settings_file)
        self.audit_log = AuditLog(site.audit_log)
        self._runspace_closers: dict[RunspaceKind, RunspaceCloser] = {}
        self.next_runs = NextRuns()
        self.task_views = TaskViews()
        self.tasks = TaskService(self)
        self.settings = SettingsService(self)
        self.jobs = JobService(self)
        self.engine = EngineService(self)
        self.notifications = NotificationService(self)
        self.runspaces = RunspaceService(self)

    def __repr__(self) -> str:
        return f"TaskOps({str(self.site.root)!r}, user={self.user!r})"

    def __enter__(self) -> TaskOps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the engine of this process, if one was started (its jobs are stopped), and
        close the store."""
        self.engine.stop()
        self.store.close()

    def as_user(self, user: str) -> TaskOps:
        """The same site, store and clock, acting (and audited) as ``user``."""
        other = TaskOps.__new__(TaskOps)
        other.__dict__.update(self.__dict__)
        other.user = user
        other.tasks = TaskService(other)
        other.settings = SettingsService(other)
        other.jobs = JobService(other)
        other.runspaces = RunspaceService(other)
        return other

    def apps(self) -> list[str]:
        """``global`` and every app of the site."""
        return self.site.apps()

    def site_errors(self) -> list[SiteError]:
        """Problems in the site's files: YAML, task fields, settings overrides."""
        return self.tasks._view().errors

    def summary(self) -> dict[str, dict[str, Any]]:
        """The quick stats of each screen: ``tasks``, ``jobs``, ``runspaces`` (see the
        ``summary()`` of each) and ``engine`` (whether one holds the site's lease)."""
        return {
            "tasks": self.tasks.summary(),
            "jobs": self.jobs.summary(),
            "runspaces": self.runspaces.summary(),
            "engine": self.engine.status(),
        }

    def audit_entries(
        self,
        *,
        since: datetime | str | None = None,
        action: str | None = None,
        user: str | None = None,
        target: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Audit records newest first (``time, user, action, target, details, result`` and
        ``error`` on failure), filtered by ``since`` (an aware datetime or ISO text), an
        exact ``action``, ``user`` and ``target``; at most ``limit`` (1 to 1000) after
        skipping ``offset``. Raises InvalidInput for an unknown action, a ``since`` without
        a timezone or a bad limit or offset."""
        if action is not None and action not in ACTIONS:
            raise InvalidInput(
                f"unknown audit action {action!r} (known: {', '.join(sorted(ACTIONS))})",
                problems=[Problem(field="action", message="unknown action")],
            )
        after = aware_time(since, "since") if since is not None else None
        whole_number(limit, "limit", low=1, high=1000)
        whole_number(offset, "offset")
        chosen: list[dict[str, Any]] = []
        for record in self.audit_log.records():
            if action is not None and record.get("action") != action:
                continue
            if user is not None and record.get("user") != user:
                continue
            if target is not None and record.get("target") != target:
                continue
            if after is not None and not _at_or_after(record.get("time"), after):
                continue
            chosen.append(record)
        chosen.reverse()
        return chosen[offset : offset + limit]

    @property
    def timezone(self) -> str:
        """The site's timezone: a schedule without one of its own runs in it."""
        return self.catalog.snapshot().timezone

    # -- audit -----------------------------------------------------------------------------

    @contextmanager
    def _audited(
        self, action: str, target: str, details: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Write one audit line for the block: success, or failure with the error message.
        The block may add to the yielded dict; it goes into ``details``."""
        extra: dict[str, Any] = {}
        try:
            yield extra
        except TaskopsError as exc:
            self.audit_log.append(
                time=self.clock.now(),
                user=self.user,
                action=action,
                target=target,
                details={**(details or {}), **extra},
                result="failure",
                error=exc.message,
            )
            raise
        self.audit_log.append(
            time=self.clock.now(),
            user=self.user,
            action=action,
            target=target,
            details={**(details or {}), **extra},
        )


def _at_or_after(text: Any, since: datetime) -> bool:
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return False
    return when.tzinfo is not None and when >= since


def _default_user() -> str:
    """``$TASKOPS_USER`` (set for a dashboard's kernel: the user who opened the page), else
    the account running this process."""
    if os.environ.get("TASKOPS_USER"):
        return os.environ["TASKOPS_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def open_site(
    path: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    store_url: str | None = None,
    user: str | None = None,
    clock: Clock | None = None,
) -> TaskOps:
    """Open the site at ``path`` (default: ``$TASKOPS_SITE``). The store is
    ``<data>/taskops.db`` unless ``store_url`` (or ``$TASKOPS_STORE_URL``) names another.
    Raises InvalidInput when there is no such folder."""
    if path is None:
        path = os.environ.get("TASKOPS_SITE")
        if not path:
            raise InvalidInput(
                "no site given: pass a path or set TASKOPS_SITE",
                problems=[Problem(field="site", message="no site given")],
            )
    site = Site(path, data_dir=data_dir or os.environ.get("TASKOPS_DATA_DIR") or None)
    url = store_url or os.environ.get("TASKOPS_STORE_URL")
    store = Store(url) if url else Store.for_sqlite(site.db_path)
    return TaskOps(site, store=store, user=user, clock=clock)
