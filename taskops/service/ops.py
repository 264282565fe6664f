"""``TaskOps``: every operation of the console on one site, its validation, its audit line.

The only place with business rules. The UI, the REST handlers and the CLI call this and
nothing below it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskops.audit import ACTIONS, AuditLog
from taskops.clock import Clock, SystemClock
from taskops.errors import InvalidInput, Problem, TaskopsError
from taskops.model import JobState, RunspaceKind, SiteError
from taskops.service.arguments import aware_time, whole_number
from taskops.service.engine import EngineService
from taskops.service.jobs import JobService
from taskops.service.notifications import NotificationService
from taskops.service.runspaces import RunspaceCloser, RunspaceService
from taskops.service.settings import SettingsService
from taskops.service.tasks import NextRuns, TaskJson, TaskService, TaskViews
from taskops.settings import Settings
from taskops.site import Catalog, Site
from taskops.store import Store

if TYPE_CHECKING:
    import pandas as pd

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
        self.task_json = TaskJson()
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

    # -- history as frames -----------------------------------------------------------------

    def history(
        self,
        task: str | None = None,
        app: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        state: str | JobState | Iterable[str | JobState] | None = None,
    ) -> pd.DataFrame:
        """One row per job (removed ones too: they are history), oldest first by its time
        (the start, or the queue time of a job that never started), then by id.

        Filters, all done in the database: ``task`` (a task id), ``app``, ``since``
        (inclusive) and ``until`` (exclusive) on that time (aware datetimes or ISO text
        with an offset), ``state`` (one or several, any case).

        Columns, in this order (``taskops.service.history.HISTORY_COLUMNS``):

        - ``job_id`` int64;
        - ``task_id``, ``app``, ``owner``, ``name``: object (text; ``task_id`` is None for
          an ad-hoc job);
        - ``state``: categorical of every ``JobState`` value, in enum order;
        - ``scheduled_for``, ``queued_at``, ``started_at``, ``ended_at``:
          ``datetime64[us, <site timezone>]`` (``ops.timezone``), NaT when unset;
        - ``duration``: ``timedelta64[us]``, ``ended_at - started_at``, NaT until the job
          has ended (or when it never started);
        - ``exit_code``: ``Int64`` (``<NA>`` when none); ``error``: object (text or None);
          ``output_bytes``: ``Int64``.

        No match gives an empty frame with the same columns and dtypes. Raises InvalidInput
        for a ``task`` or ``app`` that is not text, a time without a timezone, ``until``
        not after ``since``, or an unknown state."""
        from taskops.service.history import history_frame  # pandas loads on first use

        return history_frame(self, task=task, app=app, since=since, until=until, state=state)

    def stats(
        self, days: int = 7, by: str | None = "task", task: str | None = None
    ) -> pd.DataFrame:
        """Runs per group and calendar day of the site's timezone, for the ``days`` days
        ending with today (``ops.clock``), oldest day first.

        A run counts once it has ended, on the day it started; ``Failed`` and
        ``Terminated`` runs are failures, a ``Stopped`` run is a run but neither success
        nor failure.

        ``by="task"``: a ``task_id`` column first, one row per task that has a run in the
        window and day (days without runs included), tasks sorted by id, ad-hoc jobs
        under ``task_id`` None, last. ``by="app"``: the same per ``app``. ``by=None``: one
        row per day over every run (the days are there even without runs).

        ``task`` (a task id) counts the runs of that task only, chosen in the database;
        with ``by=None`` the frame has every day of the window even when the task had no
        run (the task detail's chart).

        Then the columns ``day`` (``datetime.date``), ``runs``, ``successes``,
        ``failures`` (int64), ``success_rate`` (``successes / runs``, float64 in 0..1),
        ``mean_duration`` and ``p95_duration`` (seconds from start to end, float64; the
        95th percentile is linear between the nearest ranks, like ``numpy.quantile``);
        the last three are NaN on a day without runs.

        Raises InvalidInput for ``days`` not a whole number from 1 to 3660, any other
        ``by``, or a ``task`` that is not text."""
        from taskops.service.history import stats_frame  # pandas loads on first use

        return stats_frame(self, days=days, by=by, task=task)

    def audit(self, since: datetime | str | None = None) -> pd.DataFrame:
        """The audit log, oldest first; with ``since`` (an aware datetime or ISO text),
        the records at or after it.

        Columns: ``time`` (``datetime64[us, <site timezone>]``; NaT for a record whose
        time cannot be read), ``user``, ``action``, ``target``, ``result`` (``success``
        or ``failure``), ``error`` (the message of a failure, else None) and ``details``
        (a dict, secrets masked): all object. Raises InvalidInput for a ``since`` without
        a timezone."""
        from taskops.service.history import audit_frame  # pandas loads on first use

        return audit_frame(self, since=since)

    def runspace_samples(
        self, runspace_id: int | str, since: datetime | str | None = None
    ) -> pd.DataFrame:
        """The memory and thread history of a runspace, oldest first; with ``since`` (an
        aware datetime or ISO text), the samples at or after it.

        Columns: ``time`` (``datetime64[us, <site timezone>]``), ``memory_mb`` (float64,
        NaN when it could not be read) and ``threads`` (``Int64``, ``<NA>`` when unknown).
        Raises NotFound for an unknown runspace, InvalidInput for a ``since`` without a
        timezone."""
        from taskops.service.history import runspace_sample_frame  # pandas loads on first use

        return runspace_sample_frame(self, runspace_id, since=since)

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
