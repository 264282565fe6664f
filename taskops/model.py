"""Domain objects: frozen, keyword-only dataclasses and ``str`` enums.

Every object that leaves the service is one of these. ``to_dict()`` gives the JSON shape of
DESIGN.md §3 (camelCase keys, ISO 8601 times with offset, secret values masked).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "GLOBAL_APP",
    "MASK",
    "NAME_PATTERN",
    "Availability",
    "BulkResult",
    "Job",
    "JobOwner",
    "JobState",
    "MisfirePolicy",
    "Notification",
    "Runspace",
    "RunspaceKind",
    "RunspaceState",
    "SiteError",
    "Task",
    "TaskSpec",
    "TaskStatus",
    "Termination",
    "is_secret_key",
    "iso",
    "mask_secrets",
]

GLOBAL_APP = "global"
"""The app name of the site-wide tasks in ``config/tasks.yaml``."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
"""Task and app names: a letter or digit, then letters, digits, ``_`` and ``-``."""

MASK = "********"
_SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


MAX_ID = 2**63 - 1
"""The largest id or offset a store holds (a signed 64-bit integer)."""


def parse_id(value: object) -> int | None:
    """An id (or count) from an int or a text of ASCII digits, within ``0..MAX_ID``; None
    for anything else (a bool, ``"²"``, a number past what a store holds)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            return None
        value = int(text)
    if isinstance(value, int) and 0 <= value <= MAX_ID:
        return value
    return None


def is_secret_key(key: str) -> bool:
    """True when a key looks like it holds a secret (``*PASSWORD*``, ``*SECRET*``, ...)."""
    return bool(_SECRET_KEY.search(key))


def mask_secrets(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with the value of every secret-looking key replaced by ``MASK``."""
    return {k: (MASK if is_secret_key(k) else v) for k, v in values.items()}


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return value.isoformat() if value is not None else None


class TaskStatus(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    RUNNING = "Running"


class JobState(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"
    TERMINATED = "Terminated"

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class JobOwner(StrEnum):
    """Who started a job; an app name is an owner too (jobs started by an app's code)."""

    TASK_ENGINE = "TaskEngine"
    MANUAL = "Manual"
    APP_INIT = "AppInit"


class RunspaceState(StrEnum):
    OPENING = "Opening"
    OPENED = "Opened"
    CLOSING = "Closing"
    CLOSED = "Closed"
    BROKEN = "Broken"

    @property
    def live(self) -> bool:
        return self in (RunspaceState.OPENING, RunspaceState.OPENED, RunspaceState.CLOSING)


class Availability(StrEnum):
    AVAILABLE = "Available"
    BUSY = "Busy"
    NONE = "None"
    REMOTE = "Remote"


class RunspaceKind(StrEnum):
    ENGINE = "engine"
    WORKER = "worker"
    KERNEL = "kernel"


class MisfirePolicy(StrEnum):
    """What a task does with slots missed while no engine ran."""

    SKIP = "skip"
    ONCE = "once"


@dataclass(frozen=True, kw_only=True)
class Termination:
    """When a job of a task is stopped, and when the task gives up.

    ``max_runtime`` None means the site's ``defaultTaskTimeout`` setting.
    """

    max_runtime: int | None = None
    max_failures: int = 3
    kill_on_timeout: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "maxRuntime": self.max_runtime,
            "maxFailures": self.max_failures,
            "killOnTimeout": self.kill_on_timeout,
        }


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """A task's configuration, as written in YAML or sent to the API (already validated)."""

    name: str
    schedule: str
    script_path: str
    description: str = ""
    timezone: str | None = None
    enabled: bool = True
    parameters: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    termination: Termination = field(default_factory=Termination)
    misfire: MisfirePolicy = MisfirePolicy.SKIP
    max_instances: int = 1

    def to_dict(self, *, mask: bool = True) -> dict[str, Any]:
        """The YAML/JSON keys of this spec; secret environment values masked unless told.
        A new dict each time (the masked one is made once per spec)."""
        if not mask:
            return self._as_dict(mask=False)
        masked = self._masked
        return {
            **masked,
            "parameters": dict(masked["parameters"]),
            "environment": dict(masked["environment"]),
            "termination": dict(masked["termination"]),
        }

    @functools.cached_property
    def _masked(self) -> dict[str, Any]:
        return self._as_dict(mask=True)

    def _as_dict(self, *, mask: bool) -> dict[str, Any]:
        env = dict(self.environment)
        return {
            "name": self.name,
            "description": self.description,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "scriptPath": self.script_path,
            "enabled": self.enabled,
            "parameters": mask_secrets(self.parameters) if mask else dict(self.parameters),
            "environment": mask_secrets(env) if mask else env,
            "termination": self.termination.to_dict(),
            "misfire": self.misfire.value,
            "maxInstances": self.max_instances,
        }


@dataclass(frozen=True, kw_only=True)
class Task:
    """A task as the console shows it: its effective spec plus where it comes from and state."""

    id: str
    app: str
    spec: TaskSpec
    is_default: bool
    status: TaskStatus
    schedule_text: str
    timezone: str
    next_run: datetime | None
    last_run: datetime | None
    last_state: JobState | None
    created_at: datetime | None
    modified_at: datetime | None
    overridden: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def enabled(self) -> bool:
        return self.spec.enabled

    def to_dict(self) -> dict[str, Any]:
        """The task's JSON (DESIGN.md §3), secrets masked."""
        spec = self.spec.to_dict(mask=True)
        return {
            "id": self.id,
            "name": spec["name"],
            "description": spec["description"],
            "app": self.app,
            "schedule": spec["schedule"],
            "scheduleText": self.schedule_text,
            "timezone": self.timezone,
            "scriptPath": spec["scriptPath"],
            "enabled": spec["enabled"],
            "parameters": spec["parameters"],
            "environment": spec["environment"],
            "termination": spec["termination"],
            "misfire": spec["misfire"],
            "maxInstances": spec["maxInstances"],
            "isDefault": self.is_default,
            "overridden": sorted(self.overridden),
            "status": self.status.value,
            "lastRun": iso(self.last_run),
            "lastState": self.last_state.value if self.last_state else None,
            "nextRun": iso(self.next_run),
            "createdAt": iso(self.created_at),
            "modifiedAt": iso(self.modified_at),
        }


@dataclass(frozen=True, kw_only=True)
class Job:
    """One execution: of a task (scheduled or run now) or of an ad-hoc command.

    ``script``, ``parameters`` and ``environment`` are the job's context as it was started
    (secret values masked); ``over_time`` is set when it ran past its maximum runtime and was
    left running; ``stop_reason`` says who or what stopped or terminated it.
    """

    id: int
    name: str
    state: JobState
    owner: str
    task_id: str | None
    app: str | None
    scheduled_for: datetime | None
    queued_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    error: str | None
    progress: float | None
    progress_message: str | None
    output_bytes: int | None
    script: str | None = None
    command: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    max_runtime: int | None = None
    over_time: bool = False
    stop_reason: str | None = None
    pid: int | None = None
    runspace_id: int | None = None
    removed: bool = False

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def elapsed_seconds(self, now: datetime) -> float | None:
        """Seconds run so far (the duration once ended)."""
        if self.started_at is None:
            return None
        return ((self.ended_at or now) - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            "owner": self.owner,
            "taskId": self.task_id,
            "app": self.app,
            "scheduledFor": iso(self.scheduled_for),
            "queuedAt": iso(self.queued_at),
            "startedAt": iso(self.started_at),
            "endedAt": iso(self.ended_at),
            "durationSeconds": self.duration_seconds,
            "exitCode": self.exit_code,
            "error": self.error,
            "progress": self.progress,
            "progressMessage": self.progress_message,
            "outputBytes": self.output_bytes,
            "script": self.script,
            "command": list(self.command),
            "parameters": mask_secrets(self.parameters),
            "environment": mask_secrets(self.environment),
            "maxRuntime": self.max_runtime,
            "overTime": self.over_time,
            "stopReason": self.stop_reason,
            "pid": self.pid,
            "runspaceId": self.runspace_id,
            "removed": self.removed,
        }


@dataclass(frozen=True, kw_only=True)
class Runspace:
    """A live execution environment backed by an OS process: the engine, a job's worker or a
    Jupyter kernel. Resource numbers are from the last sample; None means unknown (never
    sampled, or the process could not be read), not zero."""

    id: int
    kind: RunspaceKind
    pid: int | None
    host: str
    state: RunspaceState
    availability: Availability
    owner: str
    app: str | None
    task_id: str | None
    job_id: int | None
    purpose: str | None
    created_at: datetime
    closed_at: datetime | None
    exit_code: int | None
    age_seconds: float
    thread_count: int | None
    memory_mb: float | None
    handle_count: int | None
    sampled_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "pid": self.pid,
            "host": self.host,
            "state": self.state.value,
            "availability": self.availability.value,
            "owner": self.owner,
            "app": self.app,
            "taskId": self.task_id,
            "jobId": self.job_id,
            "purpose": self.purpose,
            "createdAt": iso(self.created_at),
            "closedAt": iso(self.closed_at),
            "exitCode": self.exit_code,
            "ageSeconds": self.age_seconds,
            "threadCount": self.thread_count,
            "memoryMB": self.memory_mb,
            "handleCount": self.handle_count,
            "sampledAt": iso(self.sampled_at),
        }


@dataclass(frozen=True, kw_only=True)
class Notification:
    """Something an operator should see as it happens: ``kind`` is ``failure``, ``timeout``
    or ``auto_disable``. ``delivery`` says what became of the webhook POST, if any."""

    id: int
    time: datetime
    kind: str
    message: str
    task_id: str | None
    job_id: int | None
    delivery: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": iso(self.time),
            "kind": self.kind,
            "message": self.message,
            "taskId": self.task_id,
            "jobId": self.job_id,
            "delivery": self.delivery,
        }


@dataclass(frozen=True, kw_only=True)
class SiteError:
    """A problem found while reading the site: the file, and where known the task and field."""

    file: str
    app: str
    message: str
    task: str | None = None
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "app": self.app,
            "task": self.task,
            "field": self.field,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = self.file
        if self.task:
            where += f", task {self.task}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class BulkResult:
    """What a bulk action did: the ids it changed and, for the others, why not."""

    done: list[str]
    skipped: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"done": list(self.done), "skipped": dict(self.skipped)}
