"""``ops.tasks``: list, read and change tasks.

A task is either a **default** task (declared in a site's YAML; its script path is
read-only; edits are kept as per-field overrides, so every field not edited keeps following
the YAML; deleting hides it) or a **custom** task (made through the API or UI; kept whole
in the store; deleting removes it).
"""

from __future__ import annotations

import builtins
import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from taskops.cron import Schedule, load_timezone
from taskops.engine.engine import TaskDefinition
from taskops.engine.executor import job_name
from taskops.errors import Conflict, InvalidInput, NotFound, Problem, TaskopsError
from taskops.model import (
    GLOBAL_APP,
    MASK,
    BulkResult,
    Job,
    JobOwner,
    JobState,
    MisfirePolicy,
    SiteError,
    Task,
    TaskSpec,
    TaskStatus,
    iso,
)
from taskops.service.arguments import aware_time, whole_number
from taskops.service.jobs import FAILED_STATES, parse_states
from taskops.site import CatalogSnapshot, DefaultTask
from taskops.spec import (
    TERMINATION_FIELDS,
    apply_changes,
    normalize_changes,
    normalize_spec,
    to_spec,
)

if TYPE_CHECKING:
    from taskops.service.ops import TaskOps
    from taskops.store.store import TaskRunSummary

__all__ = ["TaskService"]


@lru_cache(maxsize=65536)
def _schedule(expression: str, timezone: str) -> Schedule:
    return Schedule.parse(expression, timezone)


class NextRuns:
    """The next fire time of each (expression, timezone), kept while it is still ahead.

    A next run computed at ``t0`` as ``n0`` is still the next run at any ``now`` with
    ``t0 <= now < n0`` (no fire time lies between), so listing 10,000 tasks asks croniter
    only for the schedules whose next run has passed. Shared by every ``as_user`` copy of
    a ``TaskOps``; bounded, so edited-away schedules do not pile up."""

    LIMIT = 100_000

    def __init__(self) -> None:
        # (expression, timezone) -> (t0, n0 in UTC, n0): a clock's now is UTC, and an
        # aware comparison across zones asks the zone for its offset each time (4 ms of
        # a list of 10,000 tasks)
        self._known: dict[tuple[str, str], tuple[datetime, datetime, datetime]] = {}

    def next_run(self, schedule: Schedule, now: datetime) -> datetime | None:
        """The next fire time after ``now``; the same object for as long as it stays the
        next one."""
        key = (schedule.expression, schedule.timezone)
        known = self._known.get(key)
        if known is not None and known[0] <= now < known[1]:
            return known[2]
        upcoming = schedule.next_run(start=now)
        if upcoming is not None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[key] = (now, upcoming.astimezone(UTC), upcoming)
        return upcoming


class TaskViews:
    """The last view of a site's tasks and what it was built from (shared by every
    ``as_user`` copy of a ``TaskOps``). A view is read, never changed, by its users."""

    def __init__(self) -> None:
        # one tuple, replaced whole: a reader in another thread never pairs a new key
        # with the view of the old one
        self._last: tuple[tuple[Any, ...] | None, Any] = (None, None)

    def get(self, key: tuple[Any, ...]) -> Any:
        last_key, view = self._last
        return view if key == last_key else None

    def latest(self) -> Any:
        """The last view put, whatever it was built from (None before the first)."""
        return self._last[1]

    def put(self, key: tuple[Any, ...], view: Any) -> None:
        self._last = (key, view)


class TaskJson:
    """Each task's JSON as the task list answers it (``Task.to_dict()`` encoded), by task
    id, with the view entry and the live values it was made from (shared by every
    ``as_user`` copy of a ``TaskOps``).

    Converting and encoding 10,000 tasks takes a tenth of a second or more on every
    ``GET /tasks``; with this, a list joins the kept bytes and encodes again only the tasks
    whose view entry is another one (see ``TaskService._build_view``) or whose live values
    changed (a job started or ended, a slot passed). Bounded, so the ids of deleted tasks
    do not pile up."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._known: dict[str, tuple[_Entry, _Live, bytes]] = {}

    def get(self, entry: _Entry, live: _Live) -> bytes:
        """``entry.json(live)``, kept."""
        known = self._known.get(entry.id)
        # nextRun by identity as well: in the hour a fall-back repeats, two wall times of
        # one zone compare equal an hour apart, and their offsets (in the JSON) differ.
        # NextRuns hands out the same object for as long as it stays the next run; the
        # store's times are UTC, where equal means the same text.
        if (
            known is not None
            and known[0] is entry
            and known[1].next_run is live.next_run
            and known[1] == live
        ):
            return known[2]
        data = entry.json(live)
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        self._known[entry.id] = (entry, live, data)
        return data


def _flatten_overrides(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Override fields of a spec: top-level keys, ``termination.<sub>`` per sub-field."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "termination":
            for sub, sub_value in value.items():
                flat[f"termination.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def _same_value(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down: 1, 1.0 and true are equal in Python,
    not in the YAML or the JSON a user sees."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _apply_overrides(spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    out["termination"] = dict(spec["termination"])
    for key, value in overrides.items():
        if key.startswith("termination."):
            sub = key.split(".", 1)[1]
            if sub in TERMINATION_FIELDS:
                out["termination"][sub] = value
        elif key in out:
            out[key] = value
    return out


_LIVE_FIELDS = ("status", "lastRun", "lastState", "nextRun")
"""The fields of a task's JSON that change while the task does not, in ``to_dict()``'s
order (where they stand together)."""


def _json(value: Any) -> str:
    """JSON text as the API answers it (``taskops.server.handlers.encode``)."""
    return json.dumps(value, default=str)


class _Live(NamedTuple):
    """What a task shows that changes while the task does not: a job of it starts or
    ends, a slot passes."""

    status: TaskStatus
    last_run: datetime | None
    last_state: JobState | None
    next_run: datetime | None

    def json(self) -> str:
        """The ``_LIVE_FIELDS`` of the task's JSON object, without its braces."""
        return _json(
            {
                "status": self.status.value,
                "lastRun": iso(self.last_run),
                "lastState": self.last_state.value if self.last_state else None,
                "nextRun": iso(self.next_run),
            }
        )[1:-1]


@dataclass(frozen=True, kw_only=True)
class _Entry:
    """One task as the service sees it: its effective spec and where it comes from.
    What is derived from it (its ``TaskSpec``, schedule and JSON) is made once and kept
    with it, also by the next view when that takes the entry over."""

    id: str
    app: str
    spec: dict[str, Any]
    timezone: str
    default: DefaultTask | None
    overridden: frozenset[str]
    created_at: datetime | None
    modified_at: datetime | None

    @functools.cached_property
    def task_spec(self) -> TaskSpec:
        return to_spec(self.spec)

    @functools.cached_property
    def schedule(self) -> Schedule:
        return _schedule(self.spec["schedule"], self.timezone)

    def task(self, live: _Live) -> Task:
        return Task(
            id=self.id,
            app=self.app,
            spec=self.task_spec,
            is_default=self.default is not None,
            status=live.status,
            schedule_text=self.schedule.describe(),
            timezone=self.timezone,
            next_run=live.next_run,
            last_run=live.last_run,
            last_state=live.last_state,
            created_at=self.created_at,
            modified_at=self.modified_at,
            overridden=self.overridden,
        )

    @functools.cached_property
    def _json_around_live(self) -> tuple[str, str]:
        """The task's JSON before and after its live fields: ``task(...).to_dict()``
        encoded, split where ``_LIVE_FIELDS`` stand."""
        fields = list(self.task(_Live(TaskStatus.ENABLED, None, None, None)).to_dict().items())
        start = [key for key, _ in fields].index(_LIVE_FIELDS[0])
        stop = start + len(_LIVE_FIELDS)
        head, tail = _json(dict(fields[:start]))[1:-1], _json(dict(fields[stop:]))[1:-1]
        return "{" + (head + ", " if head else ""), (", " + tail if tail else "") + "}"

    def json(self, live: _Live) -> bytes:
        """``task(live).to_dict()`` as JSON (UTF-8)."""
        before, after = self._json_around_live
        return (before + live.json() + after).encode()


@dataclass(frozen=True, kw_only=True)
class _View:
    entries: dict[str, _Entry]
    deleted_defaults: set[str]
    snapshot: CatalogSnapshot
    errors: list[SiteError]

    @functools.cached_property
    def ordered(self) -> list[_Entry]:
        """The entries in list order: global first, then by app and name (any case)."""
        return sorted(
            self.entries.values(),
            key=lambda e: (e.app != GLOBAL_APP, e.app.lower(), e.spec["name"].lower()),
        )


class TaskService:
    """``ops.tasks``: list, read and change tasks."""

    def __init__(self, ops: TaskOps) -> None:
        self._ops = ops

    # -- reading -----------------------------------------------------------------------------

    def _view(self) -> _View:
        """Every task as the site's files and the store define it now. Built again only
        when a file, the store's tasks or the settings file changed (10,000 tasks take a
        fifth of a second to build; after a change in the store, the entries taken over
        from the last view make it a few milliseconds)."""
        ops = self._ops
        snapshot = ops.catalog.snapshot()
        key = (snapshot, ops.store.tasks_revision(), ops._settings.error())
        cached: _View | None = ops.task_views.get(key)
        if cached is None:
            cached = self._build_view(snapshot, ops.task_views.latest())
            ops.task_views.put(key, cached)
        return cached

    def _build_view(self, snapshot: CatalogSnapshot, last: _View | None) -> _View:
        """The view of ``snapshot`` and the store. The entry of a default task without
        overrides read from the same YAML (the same ``DefaultTask``) as in ``last`` is
        taken over from it, with what was derived from it: one edit leaves the JSON of
        the other 9,999 tasks as it was. (Equal values would not do: ``1 == True``, and
        their JSON differs.)"""
        ops = self._ops
        errors = list(snapshot.errors)
        overrides = ops.store.overrides()
        deleted = ops.store.deleted_task_ids()
        entries: dict[str, _Entry] = {}
        for task_id, default in snapshot.tasks.items():
            if task_id in deleted:
                continue
            override = overrides.get(task_id)
            kept = last.entries.get(task_id) if last is not None else None
            if (
                override is None
                and kept is not None
                and kept.default is default
                and not kept.overridden
            ):
                entries[task_id] = kept
                continue
            spec = dict(default.spec)
            overridden: frozenset[str] = frozenset()
            modified = default.file_mtime
            if override is not None:
                try:
                    merged = _apply_overrides(spec, override.values)
                    spec = normalize_spec(merged, site_timezone=snapshot.timezone)
                    overridden = frozenset(override.values)
                    modified = max(modified, override.modified_at)
                except InvalidInput as exc:
                    errors.append(
                        SiteError(
                            file=str(ops.site.db_path),
                            app=default.app,
                            task=default.spec["name"],
                            message=f"runtime overrides ignored, they no longer fit: {exc}",
                        )
                    )
            entries[task_id] = _Entry(
                id=task_id,
                app=default.app,
                spec=spec,
                timezone=spec["timezone"] or snapshot.timezone,
                default=default,
                overridden=overridden,
                created_at=default.file_mtime,
                modified_at=modified,
            )
        for row in ops.store.custom_tasks():
            if row.id in entries:
                errors.append(
                    SiteError(
                        file=str(ops.site.db_path),
                        app=row.app,
                        task=row.name,
                        message="a default task of the same name now exists; the custom one "
                        "is hidden until it is renamed or the default is deleted",
                    )
                )
                continue
            entries[row.id] = _Entry(
                id=row.id,
                app=row.app,
                spec=row.spec,
                timezone=row.spec["timezone"] or snapshot.timezone,
                default=None,
                overridden=frozenset(),
                created_at=row.created_at,
                modified_at=row.modified_at,
            )
        settings_error = ops._settings.error()
        if settings_error:
            errors.append(
                SiteError(file=str(ops.site.settings_file), app=GLOBAL_APP, message=settings_error)
            )
        return _View(entries=entries, deleted_defaults=deleted, snapshot=snapshot, errors=errors)

    def _live(self, entry: _Entry, runs: Mapping[str, TaskRunSummary], now: datetime) -> _Live:
        """The task's status, last run and next run (from ``now``), ``runs`` being
        ``store.task_run_summaries()``."""
        if entry.spec["enabled"]:
            status = TaskStatus.ENABLED
            next_run = self._ops.next_runs.next_run(entry.schedule, now)
        else:
            status, next_run = TaskStatus.DISABLED, None
        summary = runs.get(entry.id)
        if summary is None:
            return _Live(status, None, None, next_run)
        if summary.running:
            status = TaskStatus.RUNNING
        return _Live(status, summary.last_run, summary.last_state, next_run)

    def _entry(self, view: _View, task_id: str) -> _Entry:
        if not isinstance(task_id, str) or task_id not in view.entries:
            raise NotFound(f"no task {task_id}")
        return view.entries[task_id]

    @staticmethod
    def _chosen(
        view: _View, app: str | None, enabled: bool | None, search: str | None
    ) -> builtins.list[_Entry]:
        """The entries in list order that ``list`` keeps for these filters (status aside)."""
        needle = search.strip().lower() if search else ""
        if app is None and enabled is None and not needle:
            return view.ordered
        return [
            entry
            for entry in view.ordered
            if (app is None or entry.app == app)
            and (enabled is None or entry.spec["enabled"] == enabled)
            and (
                not needle
                or needle in entry.spec["name"].lower()
                or needle in (entry.spec["description"] or "").lower()
            )
        ]

    def list(
        self,
        app: str | None = None,
        enabled: bool | None = None,
        status: str | TaskStatus | None = None,
        search: str | None = None,
    ) -> list[Task]:
        """Tasks sorted by app then name, filtered by app, enabled, status
        (``Enabled``/``Disabled``/``Running``, any case) and a case-insensitive text found in
        the name or description. Raises InvalidInput for an unknown status."""
        wanted_status = _parse_status(status) if status is not None else None
        view = self._view()
        runs = self._ops.store.task_run_summaries()
        now = self._ops.clock.now()
        tasks = []
        for entry in self._chosen(view, app, enabled, search):
            live = self._live(entry, runs, now)
            if wanted_status is None or live.status == wanted_status:
                tasks.append(entry.task(live))
        return tasks

    def list_json(
        self,
        app: str | None = None,
        enabled: bool | None = None,
        status: str | TaskStatus | None = None,
        search: str | None = None,
    ) -> bytes:
        """``{"tasks": [...], "count": n}`` as JSON (UTF-8), the tasks being those of
        ``list(app, enabled, status, search)`` as ``Task.to_dict()`` gives them: the answer
        of ``GET /tasks``. Each task's JSON is kept (``TaskJson``) and made again only when
        the task or its status, last run or next run changed. Raises InvalidInput for an
        unknown status."""
        wanted_status = _parse_status(status) if status is not None else None
        view = self._view()
        runs = self._ops.store.task_run_summaries()
        now = self._ops.clock.now()
        kept = self._ops.task_json
        parts = []
        for entry in self._chosen(view, app, enabled, search):
            live = self._live(entry, runs, now)
            if wanted_status is None or live.status == wanted_status:
                parts.append(kept.get(entry, live))
        return b'{"tasks": [' + b", ".join(parts) + b'], "count": %d}' % len(parts)

    def summary(self) -> dict[str, int]:
        """The Tasks screen's quick stats: ``total``, ``enabled``, ``running`` and
        ``failed24h`` (tasks with a Failed or Terminated run that ended in the last 24 h)."""
        tasks = self.list()
        since = self._ops.clock.now() - timedelta(hours=24)
        return {
            "total": len(tasks),
            "enabled": sum(1 for task in tasks if task.enabled),
            "running": sum(1 for task in tasks if task.status == TaskStatus.RUNNING),
            "failed24h": self._ops.store.count_tasks_with_jobs(
                states=FAILED_STATES, ended_since=since
            ),
        }

    def get(self, task_id: str) -> Task:
        """Raises NotFound."""
        entry = self._entry(self._view(), task_id)
        runs = self._ops.store.task_run_summaries()
        return entry.task(self._live(entry, runs, self._ops.clock.now()))

    def history(
        self,
        task_id: str,
        *,
        limit: int = 20,
        offset: int = 0,
        state: str | JobState | Iterable[str | JobState] | None = None,
    ) -> builtins.list[Job]:
        """The task's runs, newest first: at most ``limit`` (1 to 1000) after skipping
        ``offset``, only those in ``state`` (any case, one or several) when given.
        Raises NotFound, InvalidInput for a bad limit, offset or state."""
        whole_number(limit, "limit", low=1, high=1000)
        states = parse_states(state) if state is not None else None
        self._entry(self._view(), task_id)
        return self._ops.store.jobs_of_task(
            task_id, limit=limit, offset=whole_number(offset, "offset"), states=states
        )

    def preview_schedule(
        self,
        expression: str,
        timezone: str | None = None,
        *,
        count: int = 5,
        start: datetime | str | None = None,
    ) -> dict[str, Any]:
        """What a cron builder shows while the user types: ``{"valid", "expression",
        "timezone", "text", "nextRuns", "error", "problems"}``. ``nextRuns`` are the next
        ``count`` (0 to 100) fire times after ``start`` (an aware datetime or ISO text;
        default now) as ISO text in the schedule's timezone (default the site's). An
        invalid expression or timezone is not an error here: ``valid`` is False and
        ``error`` and ``problems`` (field -> message) say why. Raises InvalidInput for a
        bad ``count`` or ``start``."""
        whole_number(count, "count", high=100)
        begin = aware_time(start, "start") if start is not None else self._ops.clock.now()
        zone = self._ops.timezone if timezone is None or timezone == "" else timezone
        answer: dict[str, Any] = {"expression": expression, "timezone": zone}
        try:
            schedule = _schedule(expression, zone)
        except InvalidInput as exc:
            return {
                **answer,
                "valid": False,
                "text": None,
                "nextRuns": [],
                "error": exc.message,
                "problems": exc.fields(),
            }
        except TypeError:  # an unhashable expression or timezone (a list from JSON)
            return {
                **answer,
                "valid": False,
                "text": None,
                "nextRuns": [],
                "error": "schedule and timezone must be text",
                "problems": {},
            }
        try:
            runs = schedule.next_runs(count, start=begin)
        except OverflowError as exc:  # a start near year 1 or 9999
            raise InvalidInput(
                f"start is too close to the ends of the calendar: {iso(begin)}",
                problems=[Problem(field="start", message="out of range")],
            ) from exc
        return {
            **answer,
            "expression": schedule.expression,
            "valid": True,
            "text": schedule.describe(),
            "nextRuns": [iso(t) for t in runs],
            "error": None,
            "problems": {},
        }

    def export(self, task_id: str) -> dict[str, Any]:
        """The task's configuration with the YAML/JSON keys plus ``app``; secret values are
        masked. Raises NotFound."""
        task = self.get(task_id)
        return {"app": task.app, **task.spec.to_dict(mask=True)}

    def check_script(self, task_id: str) -> dict[str, Any]:
        """Whether the task's script exists and how it would run:
        ``{scriptPath, resolved, exists, runner, message}``. Raises NotFound."""
        view = self._view()
        entry = self._entry(view, task_id)
        path = self._ops.site.resolve_script(entry.app, entry.spec["scriptPath"])
        exists = path.is_file()
        if not exists:
            runner, message = None, f"no file at {path}"
        elif path.suffix == ".py":
            runner, message = "python", "found; runs with the Python runner"
        elif os.access(path, os.X_OK):
            runner, message = "executable", "found; runs as an executable"
        else:
            runner, message = None, "found, but it is neither a .py file nor executable"
        return {
            "scriptPath": entry.spec["scriptPath"],
            "resolved": str(path),
            "exists": exists,
            "runnable": runner is not None,
            "runner": runner,
            "message": message,
        }

    def scripts(self, app: str) -> builtins.list[str]:
        """The script paths a task of ``app`` could use (for a Browse list): the files
        under the app's ``tasks/`` folder, relative to the app's folder, sorted; hidden
        files and caches are left out. Raises InvalidInput for an unknown app."""
        folder = self._ops.site.app_dir(self._check_app(app)) / "tasks"
        if not folder.is_dir():
            return []
        found = []
        for path in folder.rglob("*"):
            relative = path.relative_to(folder.parent)
            if path.is_file() and not any(
                part.startswith(".") or part == "__pycache__" for part in relative.parts
            ):
                found.append(relative.as_posix())
        return sorted(found)

    def _command(self, entry: _Entry) -> dict[str, Any]:
        site = self._ops.site
        script = site.resolve_script(entry.app, entry.spec["scriptPath"])
        python = script.suffix == ".py"
        termination = entry.spec["termination"]
        return {
            "kind": "python" if python else "exec",
            "script": str(script),
            "argv": [] if python else [str(script)],
            "cwd": str(site.app_dir(entry.app)),
            "params": dict(entry.spec["parameters"]),
            "env": dict(entry.spec["environment"]),
            "maxRuntime": termination["maxRuntime"],
            "killOnTimeout": termination["killOnTimeout"],
            "task": entry.id,
            "app": entry.app,
        }

    def run(self, task_id: str) -> Job:
        """Run the task now (also when it is disabled): a job owned by ``Manual`` is queued
        in the store and the engine starts it within half a second. Raises NotFound, or
        Conflict when as many runs as ``maxInstances`` allows are queued or running."""
        with self._ops._audited("task.run", str(task_id)) as extra:
            entry = self._entry(self._view(), task_id)
            now = self._ops.clock.now()
            busy = self._ops.store.active_jobs_by_task(now=now).get(entry.id, 0)
            limit = entry.spec["maxInstances"]
            if busy >= limit:
                raise Conflict(
                    f"{task_id} is running already ({busy} of maxInstances {limit} queued or "
                    "running); stop that run first or raise maxInstances"
                )
            job_id = self._ops.store.insert_job(
                name=job_name("Task", entry.spec["name"], now, load_timezone(entry.timezone)),
                owner=JobOwner.MANUAL.value,
                state=JobState.QUEUED,
                queued_at=now,
                task_id=entry.id,
                app=entry.app,
                command=self._command(entry),
            )
            extra["jobId"] = job_id
        self._ops.engine.wake()
        return self._ops.store.get_job(job_id)

    def definitions(self) -> builtins.list[TaskDefinition]:
        """Every task as the engine runs it. A task whose script path no longer resolves
        inside the site is left out (the site errors say why)."""
        out = []
        for entry in self._view().entries.values():
            spec = entry.spec
            try:
                command = self._command(entry)
            except InvalidInput:
                continue
            termination = spec["termination"]
            out.append(
                TaskDefinition(
                    id=entry.id,
                    app=entry.app,
                    name=spec["name"],
                    enabled=spec["enabled"],
                    schedule=entry.schedule,
                    misfire=MisfirePolicy(spec["misfire"]),
                    max_instances=spec["maxInstances"],
                    max_failures=termination["maxFailures"],
                    command=command,
                )
            )
        return out

    # -- changing ----------------------------------------------------------------------------

    def create(self, spec: Mapping[str, Any]) -> Task:
        """A new custom task from ``spec`` (the YAML/JSON keys plus ``app``).
        Raises InvalidInput (bad or unknown fields, unknown app, path outside the site) or
        Conflict (the name is taken in that app)."""
        details = {"spec": dict(spec)} if isinstance(spec, Mapping) else {}
        target = f"{spec.get('app')}.{spec.get('name')}" if isinstance(spec, Mapping) else "?"
        with self._ops._audited("task.create", target, details):
            view = self._view()
            app = self._check_app(spec.get("app") if isinstance(spec, Mapping) else None)
            clean = normalize_spec(spec, site_timezone=view.snapshot.timezone, extra=("app",))
            self._ops.site.resolve_script(app, clean["scriptPath"])
            task_id = f"{app}.{clean['name']}"
            self._check_free(view, task_id)
            self._ops.store.insert_custom_task(
                task_id=task_id, app=app, name=clean["name"], spec=clean, now=self._ops.clock.now()
            )
        return self.get(task_id)

    def update(self, task_id: str, changes: Mapping[str, Any]) -> Task:
        """Change only the fields given. For a default task each changed field becomes an
        override (a value equal to the YAML's drops the override); its name and script path
        cannot change. A masked secret (``********``) keeps the current value. Raises
        NotFound, InvalidInput, Conflict (a rename to a taken name)."""
        return self._update(task_id, changes, action="task.update")

    def enable(self, task_id: str) -> Task:
        """Raises NotFound."""
        return self._update(task_id, {"enabled": True}, action="task.enable")

    def disable(self, task_id: str) -> Task:
        """Raises NotFound."""
        return self._update(task_id, {"enabled": False}, action="task.disable")

    def _update(
        self,
        task_id: str,
        changes: Mapping[str, Any],
        *,
        action: str,
        note: Mapping[str, Any] | None = None,
    ) -> Task:
        details: dict[str, Any] = {"changes": dict(changes)} if isinstance(changes, Mapping) else {}
        details.update(note or {})
        with self._ops._audited(action, str(task_id), details):
            view = self._view()
            entry = self._entry(view, task_id)
            tz = view.snapshot.timezone
            if isinstance(changes, Mapping):
                message = "the app of a task cannot change; copy it to the other app"
                self._check_same(changes, "app", entry.app, message)
                self._check_same(changes, "id", entry.id, "the id of a task cannot change")
            clean = normalize_changes(changes, site_timezone=tz, extra=("app", "id"))
            clean = _keep_masked(clean, entry.spec)
            merged = normalize_spec(apply_changes(entry.spec, clean), site_timezone=tz)
            self._ops.site.resolve_script(entry.app, merged["scriptPath"])
            now = self._ops.clock.now()
            if entry.default is not None:
                for field in ("name", "scriptPath"):
                    if merged[field] != entry.spec[field]:
                        raise InvalidInput(
                            f"{field} of a default task is read-only (it comes from "
                            f"{entry.default.file.name}); duplicate the task to change it",
                            problems=[Problem(field=field, message="read-only for default tasks")],
                        )
                yaml_flat = _flatten_overrides(entry.default.spec)
                wanted = _flatten_overrides(merged)
                changed = {k: v for k, v in wanted.items() if not _same_value(v, yaml_flat.get(k))}
                cleared = [k for k in yaml_flat if k not in changed]
                self._ops.store.set_overrides(task_id, values=changed, clear=cleared, now=now)
                return self.get(task_id)
            new_id = f"{entry.app}.{merged['name']}"
            if new_id != task_id:
                self._check_free(view, new_id)
            self._ops.store.update_custom_task(task_id, spec=merged, now=now, new_id=new_id)
        return self.get(new_id)

    def duplicate(self, task_id: str, name: str | None = None, schedule: str | None = None) -> Task:
        """A custom copy of the task in the same app, running the same script. Without a
        name it is called ``<name>_copy`` (``_copy2``, ...). Raises NotFound, InvalidInput,
        Conflict (the given name is taken)."""
        with self._ops._audited(
            "task.duplicate", str(task_id), {"name": name, "schedule": schedule}
        ) as extra:
            view = self._view()
            entry = self._entry(view, task_id)
            if name is None:
                name = self._free_name(view, entry.app, f"{entry.spec['name']}_copy")
            changes: dict[str, Any] = {"name": name}
            if schedule is not None:
                changes["schedule"] = schedule
            spec = normalize_spec(
                apply_changes(
                    entry.spec, normalize_changes(changes, site_timezone=view.snapshot.timezone)
                ),
                site_timezone=view.snapshot.timezone,
            )
            new_id = f"{entry.app}.{spec['name']}"
            self._check_free(view, new_id)
            self._ops.store.insert_custom_task(
                task_id=new_id,
                app=entry.app,
                name=spec["name"],
                spec=spec,
                now=self._ops.clock.now(),
            )
            extra["newId"] = new_id
        return self.get(new_id)

    def copy(self, task_id: str, target_app: str) -> Task:
        """A custom copy of the task in ``target_app`` under the same name; it runs the same
        script (its path rewritten to reach the original app's folder). Raises NotFound,
        InvalidInput (unknown or same app), Conflict (the name is taken there)."""
        with self._ops._audited("task.copy", str(task_id), {"targetApp": target_app}) as extra:
            view = self._view()
            entry = self._entry(view, task_id)
            app = self._check_app(target_app, field="targetApp")
            if app == entry.app:
                raise InvalidInput(
                    f"{task_id} is in {app} already; duplicate it instead",
                    problems=[Problem(field="targetApp", message="is the task's own app")],
                )
            site = self._ops.site
            script = site.resolve_script(entry.app, entry.spec["scriptPath"])
            spec = dict(entry.spec, scriptPath=site.script_path_for(app, script))
            new_id = f"{app}.{spec['name']}"
            self._check_free(view, new_id)
            self._ops.store.insert_custom_task(
                task_id=new_id, app=app, name=spec["name"], spec=spec, now=self._ops.clock.now()
            )
            extra["newId"] = new_id
        return self.get(new_id)

    def delete(self, task_id: str) -> None:
        """Remove a custom task; hide a default one (``restore`` brings it back).
        Raises NotFound."""
        with self._ops._audited("task.delete", str(task_id)) as extra:
            entry = self._entry(self._view(), task_id)
            if entry.default is not None:
                self._ops.store.mark_deleted(
                    task_id, now=self._ops.clock.now(), user=self._ops.user
                )
                extra["kind"] = "default (marked deleted)"
            else:
                self._ops.store.delete_custom_task(task_id)
                extra["kind"] = "custom (removed)"

    def restore(self, task_id: str) -> Task:
        """Bring back a deleted default task. Raises NotFound when there is none."""
        with self._ops._audited("task.restore", str(task_id)):
            view = self._view()
            if task_id not in view.deleted_defaults or task_id not in view.snapshot.tasks:
                raise NotFound(f"no deleted default task {task_id}")
            self._ops.store.unmark_deleted(task_id)
        return self.get(task_id)

    def deleted(self) -> builtins.list[str]:
        """Ids of the default tasks that are marked deleted."""
        view = self._view()
        return sorted(view.deleted_defaults & set(view.snapshot.tasks))

    def bulk_enable(self, ids: Iterable[str]) -> BulkResult:
        return self._bulk(ids, self.enable)

    def bulk_disable(self, ids: Iterable[str]) -> BulkResult:
        return self._bulk(ids, self.disable)

    def bulk_delete(self, ids: Iterable[str]) -> BulkResult:
        """Deletes custom tasks only: default tasks are skipped, and the result says so."""
        view = self._view()

        def delete_custom(task_id: str) -> None:
            entry = view.entries.get(task_id)
            if entry is not None and entry.default is not None:
                raise Conflict("a default task: disable it, or delete it on its own")
            self.delete(task_id)

        return self._bulk(ids, delete_custom)

    def _bulk(self, ids: Iterable[str], action: Callable[[str], object]) -> BulkResult:
        done: list[str] = []
        skipped: dict[str, str] = {}
        for task_id in dict.fromkeys(ids):
            try:
                action(task_id)
                done.append(task_id)
            except TaskopsError as exc:
                skipped[task_id] = exc.message
        return BulkResult(done=done, skipped=skipped)

    # -- checks ------------------------------------------------------------------------------

    def _check_app(self, app: Any, *, field: str = "app") -> str:
        apps = self._ops.site.apps()
        if not isinstance(app, str) or not app:
            raise InvalidInput(
                f"{field} is required (one of: {', '.join(apps)})",
                problems=[Problem(field=field, message="is required")],
            )
        if app not in apps:
            raise InvalidInput(
                f"unknown app {app!r} (known: {', '.join(apps)})",
                problems=[Problem(field=field, message=f"unknown app {app!r}")],
            )
        return app

    @staticmethod
    def _check_same(changes: Mapping[str, Any], key: str, current: str, message: str) -> None:
        if key in changes and changes[key] != current:
            raise InvalidInput(message, problems=[Problem(field=key, message=message)])

    def _check_free(self, view: _View, task_id: str) -> None:
        if task_id in view.entries:
            raise Conflict(f"a task {task_id} exists already")
        if task_id in view.deleted_defaults and task_id in view.snapshot.tasks:
            raise Conflict(
                f"{task_id} is a deleted default task: restore it, or choose another name"
            )

    def _free_name(self, view: _View, app: str, base: str) -> str:
        name, n = base, 1
        while f"{app}.{name}" in view.entries or f"{app}.{name}" in view.deleted_defaults:
            n += 1
            name = f"{base}{n}"
        return name


def _keep_masked(changes: dict[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """A form shows secrets as ``********``; sending that back means "keep the value"."""
    out = dict(changes)
    for field in ("parameters", "environment"):
        if field in out:
            old = current.get(field) or {}
            out[field] = {
                k: (old[k] if v == MASK and k in old else v) for k, v in out[field].items()
            }
    return out


def _parse_status(status: str | TaskStatus) -> TaskStatus:
    for candidate in TaskStatus:
        if str(status).lower() == candidate.value.lower():
            return candidate
    raise InvalidInput(
        f"unknown status {status!r} (known: {', '.join(s.value for s in TaskStatus)})",
        problems=[Problem(field="status", message="unknown status")],
    )
