"""The OpenAPI 3.0.3 document of the REST API, served at ``<API_BASE>/openapi.json``.

A plain data structure built by small functions, one per part: the schemas of what the API
answers (``Task``, ``Job``, ``Runspace``, ...) and takes (``TaskCreate``, ``TaskChanges``,
...), then one operation per route and method of ``taskops.server.handlers``. Whatever a
handler parses (query values and their bounds, bodies, status codes) is written here again
by hand; ``tests/server/test_openapi.py`` compares the two where it can (the routes, the
spec fields, the settings, the audit actions), and the fuzz test sends the server what this
document allows and checks its answers against it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from taskops.model import (
    NAME_PATTERN,
    Availability,
    JobState,
    MisfirePolicy,
    RunspaceKind,
    RunspaceState,
    TaskStatus,
)
from taskops.server.handlers import API_BASE
from taskops.service import AUDIT_ACTIONS, NOTIFICATION_KINDS

__all__ = [
    "API_VERSION",
    "OPENAPI_VERSION",
    "openapi_document",
]

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
"""The version of the API (the ``v1`` of its base path), not of the package."""

Schema = dict[str, Any]

_MAX_RUNTIME = 31 * 86400
"""The largest ``termination.maxRuntime`` (and ``defaultTaskTimeout``): 31 days."""

# Settings and audit actions are written out here: the server layer does not import
# taskops.settings or taskops.audit (tests/server/test_openapi.py checks they still match).
_SETTINGS: list[tuple[str, Schema, str]] = [
    (
        "taskHistoryRetention",
        {"type": "integer", "minimum": 1, "maximum": 3650},
        "Days to keep job history and output; older runs are deleted.",
    ),
    (
        "maxConcurrentTasks",
        {"type": "integer", "minimum": 1, "maximum": 1000},
        "Jobs that may run at once; the rest wait as Queued, first in first out.",
    ),
    (
        "enableNotifications",
        {"type": "boolean"},
        "Show failures, timeouts and auto-disabled tasks as they happen.",
    ),
    (
        "notificationWebhook",
        {"type": "string"},
        "An http(s) URL that receives each notification as a JSON POST; empty: none.",
    ),
    (
        "defaultTaskTimeout",
        {"type": "integer", "minimum": 1, "maximum": _MAX_RUNTIME},
        "Max runtime (seconds) of a task that sets none of its own.",
    ),
    (
        "autoRefreshInterval",
        {"type": "number", "minimum": 0.5, "maximum": 3600},
        "Seconds between two refreshes of running jobs and runspaces in the dashboard.",
    ),
    (
        "runspaceMemoryWarning",
        {"type": "number", "minimum": 1, "maximum": 1_000_000},
        "Runspaces using more memory than this (MB) are highlighted in orange.",
    ),
    (
        "runspaceAgeWarning",
        {"type": "integer", "minimum": 1, "maximum": 10 * 365 * 86400},
        "Runspaces older than this (seconds) are highlighted in yellow.",
    ),
]


# -- schema helpers --------------------------------------------------------------------------


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """``schema`` or null. A ``$ref`` cannot take siblings in OpenAPI 3.0: it is wrapped."""
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    out = {**schema, "nullable": True}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]  # OpenAPI 3.0.3: null must be in the enum too
    return out


def _string(description: str = "", **extra: Any) -> Schema:
    return _described({"type": "string", **extra}, description)


def _integer(description: str = "", **extra: Any) -> Schema:
    return _described({"type": "integer", **extra}, description)


def _number(description: str = "", **extra: Any) -> Schema:
    return _described({"type": "number", **extra}, description)


def _boolean(description: str = "") -> Schema:
    return _described({"type": "boolean"}, description)


def _time(description: str = "") -> Schema:
    return _string(description, format="date-time")


def _enum(values: list[str], description: str = "") -> Schema:
    return _string(description, enum=values)


def _only(value: bool, description: str) -> Schema:
    """A boolean that must be ``value``."""
    return _described({"type": "boolean", "enum": [value]}, description)


def _array(items: Schema, description: str = "") -> Schema:
    return _described({"type": "array", "items": items}, description)


def _map(values: Schema, description: str = "") -> Schema:
    """An object of any keys, each holding ``values``."""
    return _described({"type": "object", "additionalProperties": values}, description)


def _object(
    properties: dict[str, Schema],
    *,
    required: list[str] | None = None,
    description: str = "",
    closed: bool = False,
) -> Schema:
    """An object with ``properties``; all of them required unless ``required`` says which.
    ``closed``: other keys are refused (request bodies)."""
    schema: Schema = {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }
    if not schema["required"]:
        del schema["required"]
    if closed:
        schema["additionalProperties"] = False
    return _described(schema, description)


def _extends(base: str, properties: dict[str, Schema], description: str = "") -> Schema:
    return _described({"allOf": [_ref(base), _object(properties)]}, description)


def _described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description} if description else schema


def _values_of(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


# -- components ------------------------------------------------------------------------------


def _variables(*, stringify: bool) -> Schema:
    kinds: list[Schema] = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
    what = "kept as given" if not stringify else "turned into strings"
    return _nullable(
        _map(
            {"oneOf": kinds},
            "Names (letters, digits and '_', not starting with a digit) to strings, numbers "
            f"or booleans ({what}); null means none.",
        )
    )


def _spec_properties() -> dict[str, Schema]:
    """The task spec as the API takes it (the YAML keys; see ``taskops.spec``)."""
    termination = _object(
        {
            "maxRuntime": _nullable(
                _integer(
                    "Seconds; null: the defaultTaskTimeout setting.",
                    minimum=1,
                    maximum=_MAX_RUNTIME,
                )
            ),
            "maxFailures": _integer(
                "Failures in a row before the task is disabled; 0: never.", minimum=0, maximum=1000
            ),
            "killOnTimeout": _boolean("Kill a job past maxRuntime (else it is only flagged)."),
        },
        required=[],
        closed=True,
        description="Only the sub-fields given change; null means the defaults.",
    )
    return {
        "name": _string(
            "Unique in its app.", pattern=NAME_PATTERN.pattern, minLength=1, maxLength=100
        ),
        "description": _nullable(_string(maxLength=2000)),
        "schedule": _string(
            "Cron: 5 fields, or 6 with seconds last, or @daily, @hourly...", minLength=1
        ),
        "timezone": _nullable(_string("An IANA name; null: the site's timezone.")),
        "scriptPath": _string(
            "Relative to the app folder (the site folder for global); must stay in the site.",
            minLength=1,
        ),
        "enabled": _boolean(),
        "parameters": _variables(stringify=False),
        "environment": _variables(stringify=True),
        "termination": _nullable(termination),
        "misfire": _enum(_values_of(MisfirePolicy), "What to do with slots missed while down."),
        "maxInstances": _integer(
            "Runs that may be queued or running at once.", minimum=1, maximum=100
        ),
    }


def _task_schemas() -> dict[str, Schema]:
    spec = _spec_properties()
    termination_out = _object(
        {
            "maxRuntime": _nullable(_integer()),
            "maxFailures": _integer(),
            "killOnTimeout": _boolean(),
        }
    )
    variables_out = _map({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]})
    secret_note = "Values of keys like *PASSWORD*, *SECRET*, *TOKEN*, *KEY* are masked."
    task = _object(
        {
            "id": _string("<app>.<name>"),
            "name": _string(),
            "description": _string(),
            "app": _string(),
            "schedule": _string(),
            "scheduleText": _string("The schedule in words."),
            "timezone": _string("The timezone the schedule runs in."),
            "scriptPath": _string(),
            "enabled": _boolean(),
            "parameters": _described(variables_out, secret_note),
            "environment": _map({"type": "string"}, secret_note),
            "termination": termination_out,
            "misfire": _enum(_values_of(MisfirePolicy)),
            "maxInstances": _integer(),
            "isDefault": _boolean("Declared in the site's YAML (else made in the UI or API)."),
            "overridden": _array(_string(), "Fields of a default task changed at runtime."),
            "status": _enum(_values_of(TaskStatus)),
            "lastRun": _nullable(_time()),
            "lastState": _nullable(_enum(_values_of(JobState))),
            "nextRun": _nullable(_time("Null while disabled.")),
            "createdAt": _nullable(_time()),
            "modifiedAt": _nullable(_time()),
        },
        description="A task: its effective spec, where it comes from, and its state.",
    )
    export = _object(
        {
            "app": _string(),
            "name": _string(),
            "description": _string(),
            "schedule": _string(),
            "timezone": _nullable(_string()),
            "scriptPath": _string(),
            "enabled": _boolean(),
            "parameters": _described(variables_out, secret_note),
            "environment": _map({"type": "string"}, secret_note),
            "termination": termination_out,
            "misfire": _enum(_values_of(MisfirePolicy)),
            "maxInstances": _integer(),
        },
        description="A task's configuration with the YAML keys plus app.",
    )
    create_properties = {"app": _string("`global` or an app of the site.", minLength=1), **spec}
    changes_properties = {
        **spec,
        "app": _string("Accepted only when equal to the task's app."),
        "id": _string("Accepted only when equal to the task's id."),
    }
    return {
        "Task": task,
        "TaskDetail": _extends(
            "Task", {"history": _array(_ref("Job"), "Recent runs, newest first.")}
        ),
        "TaskList": _object({"tasks": _array(_ref("Task")), "count": _integer(minimum=0)}),
        "TaskExport": export,
        "TaskCreate": _object(
            create_properties,
            required=["app", "name", "schedule", "scriptPath"],
            closed=True,
            description="A new custom task; fields left out take their defaults.",
        ),
        "TaskChanges": {
            **_object(
                changes_properties,
                required=[],
                closed=True,
                description="Only the fields to change. A masked secret (********) keeps "
                "its value. The name and script path of a default task are read-only.",
            ),
            "minProperties": 1,
        },
        "TaskDuplicate": _object(
            {
                "name": _nullable(spec["name"]),
                "schedule": _nullable(spec["schedule"]),
            },
            required=[],
            closed=True,
            description="Without a name the copy is called <name>_copy (_copy2, ...).",
        ),
        "TaskCopy": _object(
            {"targetApp": _string("Another app of the site, or global.", minLength=1)},
            closed=True,
        ),
        "TaskDeleted": _object({"message": _string(), "id": _string()}),
        "TaskHistory": _object(
            {
                "history": _array(_ref("Job")),
                "limit": _integer(minimum=1),
                "offset": _integer(minimum=0),
            }
        ),
        "BulkAction": _object(
            {
                "action": _enum(["enable", "disable", "delete"], "delete skips default tasks."),
                "ids": _array(_string(), "Task ids."),
            },
            closed=True,
        ),
        "BulkResult": _object(
            {
                "done": _array(_string(), "The ids changed."),
                "skipped": _map(_string(), "Id -> why it was not changed."),
            }
        ),
    }


def _job_schemas() -> dict[str, Schema]:
    job = _object(
        {
            "id": _integer(),
            "name": _string("Task_<name>_<yyyyMMdd_HHmmss> (the slot time, else the start)."),
            "state": _enum(_values_of(JobState)),
            "owner": _string("TaskEngine, Manual, AppInit or an app name."),
            "taskId": _nullable(_string()),
            "app": _nullable(_string()),
            "scheduledFor": _nullable(_time()),
            "queuedAt": _time(),
            "startedAt": _nullable(_time()),
            "endedAt": _nullable(_time()),
            "durationSeconds": _nullable(_number()),
            "exitCode": _nullable(_integer()),
            "error": _nullable(_string()),
            "progress": _nullable(_number()),
            "progressMessage": _nullable(_string()),
            "outputBytes": _nullable(_integer()),
            "script": _nullable(_string()),
            "command": _array(_string()),
            "parameters": _map({}, "Secret values masked."),
            "environment": _map({"type": "string"}, "Secret values masked."),
            "maxRuntime": _nullable(_integer()),
            "overTime": _boolean("Ran past its maximum runtime and was left running."),
            "stopReason": _nullable(_string()),
            "pid": _nullable(_integer()),
            "runspaceId": _nullable(_integer()),
            "removed": _boolean(),
        },
        description="One execution of a task, or of an ad-hoc command.",
    )
    return {
        "Job": job,
        "JobDetail": _extends(
            "Job",
            {
                "output": _string("The tail of stdout."),
                "errorOutput": _string("The tail of stderr."),
            },
        ),
        "JobList": _object({"jobs": _array(_ref("Job")), "count": _integer(minimum=0)}),
        "JobStopped": _object({"message": _string(), "job": _ref("Job")}),
        "JobRemoved": _object({"message": _string(), "id": _integer()}),
        "OutputPage": _object(
            {
                "text": _string(),
                "nextOffset": _integer("Where the next page starts (bytes).", minimum=0),
                "done": _boolean("The job has ended and everything was read."),
                "size": _integer("The stream's size in bytes when it was read.", minimum=0),
            },
            description="One page of a job's output.",
        ),
    }


def _runspace_schemas() -> dict[str, Schema]:
    runspace = _object(
        {
            "id": _integer(),
            "kind": _enum(_values_of(RunspaceKind)),
            "pid": _nullable(_integer()),
            "host": _string(),
            "state": _enum(_values_of(RunspaceState)),
            "availability": _enum(_values_of(Availability)),
            "owner": _string(),
            "app": _nullable(_string()),
            "taskId": _nullable(_string()),
            "jobId": _nullable(_integer()),
            "purpose": _nullable(_string()),
            "createdAt": _time(),
            "closedAt": _nullable(_time()),
            "exitCode": _nullable(_integer()),
            "ageSeconds": _number(minimum=0),
            "threadCount": _nullable(_integer()),
            "memoryMB": _nullable(_number()),
            "handleCount": _nullable(_integer()),
            "sampledAt": _nullable(_time()),
        },
        description="An execution environment backed by an OS process (resource numbers "
        "from the last sample; null: unknown).",
    )
    megabytes = _nullable(_number())
    diagnostics = _extends(
        "Runspace",
        {
            "commandLine": _nullable(_array(_string())),
            "cwd": _nullable(_string()),
            "environment": _nullable(_map({"type": "string"}, "Secret values masked.")),
            "openFiles": _nullable(_integer()),
            "memory": _object({"rssMB": megabytes, "vmsMB": megabytes, "ussMB": megabytes}),
            "status": _nullable(_string()),
            "children": _nullable(_integer()),
            "modules": _nullable(
                _array(_string(), "Files the process has mapped: its libraries and executable.")
            ),
            "forked": _boolean(
                "A job's worker forked by the engine's fork server: its command line is the "
                "server's; environment is the one its job runs with."
            ),
            "processCreatedAt": _time(),
            "diagnosedAt": _time(),
        },
        "The runspace with its process read now (null: not readable).",
    )
    return {
        "Runspace": runspace,
        "RunspaceList": _object(
            {"runspaces": _array(_ref("Runspace")), "count": _integer(minimum=0)}
        ),
        "RunspaceClose": _object(
            {
                "force": _only(True, "Must be true: a runspace is only force-closed."),
                "confirmation": {
                    "oneOf": [{"type": "string"}, {"type": "integer"}],
                    "description": "The runspace id, typed again.",
                },
            },
            closed=True,
        ),
        "RunspaceClosed": _object({"message": _string(), "runspace": _ref("Runspace")}),
        "RunspaceDiagnostics": diagnostics,
        "MemorySample": _object(
            {
                "time": _time(),
                "memoryMB": _nullable(_number()),
                "threads": _nullable(_integer()),
            }
        ),
        "MemoryHistory": _object({"samples": _array(_ref("MemorySample"), "Oldest first.")}),
    }


def _other_schemas() -> dict[str, Schema]:
    settings = {key: _described(schema, meaning) for key, schema, meaning in _SETTINGS}
    any_value: Schema = {"description": "Any JSON value."}
    return {
        "Error": _object(
            {
                "message": _string("What went wrong, for a person."),
                "problems": _map(_string(), "Field -> what is wrong with it (bad input)."),
            },
            required=["message"],
        ),
        "Settings": _object(settings, description="Every setting (defaults with overrides)."),
        "SettingsChanges": _object(
            settings,
            required=[],
            closed=True,
            description="The settings to change; a value equal to the default drops its override.",
        ),
        "SettingField": _object(
            {
                "key": _string(),
                "value": any_value,
                "default": any_value,
                "unit": _string(),
                "meaning": _string(),
                "type": _enum(["int", "float", "bool", "str"]),
                "min": _nullable(_number()),
                "max": _nullable(_number()),
            }
        ),
        "SettingsView": _object(
            {"settings": _ref("Settings"), "fields": _array(_ref("SettingField"))}
        ),
        "SettingsSaved": _object({"settings": _ref("Settings")}),
        "Apps": _object({"apps": _array(_string(), "global, then every app of the site.")}),
        "AuditEntry": _object(
            {
                "time": _time(),
                "user": _string(),
                "action": _enum(sorted(AUDIT_ACTIONS)),
                "target": _string(),
                "details": _map(any_value),
                "result": _enum(["success", "failure"]),
                "error": _string("Why it failed."),
            },
            required=["time", "user", "action", "target", "details", "result"],
            description="One line of the audit log.",
        ),
        "AuditEntries": _object({"entries": _array(_ref("AuditEntry"), "Newest first.")}),
        "SchedulePreview": _object(
            {
                "valid": _boolean(),
                "expression": _string(),
                "timezone": _string(),
                "text": _nullable(_string("The schedule in words.")),
                "nextRuns": _array(_time()),
                "error": _nullable(_string()),
                "problems": _map(_string(), "Field -> what is wrong with it."),
            },
            description="What a cron builder shows while the user types; an invalid "
            "expression is valid=false, not an error.",
        ),
        "Stats": _object(
            {
                "tasks": _object(
                    {
                        "total": _integer(),
                        "enabled": _integer(),
                        "running": _integer(),
                        "failed24h": _integer("Tasks with a failed run in the last 24 h."),
                    }
                ),
                "jobs": _object(
                    {
                        "total": _integer(),
                        "running": _integer(),
                        "queued": _integer(),
                        "completedLastHour": _integer(),
                        "failedLastHour": _integer(),
                    }
                ),
                "runspaces": _object(
                    {
                        "total": _integer("Live runspaces."),
                        "opened": _integer(),
                        "busy": _integer(),
                        "broken": _integer("In the last day."),
                        "totalMemoryMB": _number(),
                    }
                ),
                "engine": _ref("EngineStatus"),
            },
            description="The quick stats of each screen.",
        ),
        "SiteError": _object(
            {
                "file": _string(),
                "app": _string(),
                "task": _nullable(_string()),
                "field": _nullable(_string()),
                "message": _string(),
            },
            description="A problem found while reading the site's files.",
        ),
        "SiteErrors": _object({"errors": _array(_ref("SiteError"))}),
        "EngineStatus": _object(
            {
                "running": _boolean("Some engine holds a live lease on the site."),
                "holder": _nullable(_string()),
                "host": _nullable(_string()),
                "pid": _nullable(_integer()),
                "heartbeatAt": _nullable(_time()),
                "expiresAt": _nullable(_time()),
                "local": _boolean("The engine runs in the server's process."),
                "message": _string(),
            }
        ),
        "Notification": _object(
            {
                "id": _integer(),
                "time": _time(),
                "kind": _enum(sorted(NOTIFICATION_KINDS)),
                "message": _string(),
                "taskId": _nullable(_string()),
                "jobId": _nullable(_integer()),
                "delivery": _nullable(_string("What became of the webhook POST.")),
            }
        ),
        "Notifications": _object({"notifications": _array(_ref("Notification"), "Newest first.")}),
    }


def _schemas() -> dict[str, Schema]:
    return {**_task_schemas(), **_job_schemas(), **_runspace_schemas(), **_other_schemas()}


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad input: a query value, path or body field (see problems)."),
    403: ("Forbidden", "Not logged in, or without the system_admin role."),
    404: ("NotFound", "No such task, job, runspace or app."),
    409: ("Conflict", "Well formed, but clashes with the current state."),
    503: ("NoSite", "The server has no taskops site configured."),
}


def _responses() -> dict[str, Any]:
    return {name: _reply(text, _ref("Error")) for name, text in _ERRORS.values()}


# -- operations ------------------------------------------------------------------------------


def _reply(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _parameter(
    where: str, name: str, schema: Schema, description: str, example: Any
) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }
    return parameter if example is None else {**parameter, "example": example}


def _query(name: str, schema: Schema, description: str, example: Any = None) -> dict[str, Any]:
    return _parameter("query", name, schema, description, example)


def _path(name: str, schema: Schema, description: str, example: Any) -> dict[str, Any]:
    return _parameter("path", name, schema, description, example)


def _body(
    schema: Schema, *, required: bool = True, description: str = "", example: Any = None
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    body: dict[str, Any] = {"required": required, "content": {"application/json": media}}
    return _described(body, description)


def _no_body() -> dict[str, Any]:
    return _body(
        {"type": "object", "maxProperties": 0},
        required=False,
        description="Nothing, or an empty object.",
    )


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: tuple[int, str, Schema] | tuple[int, dict[str, Any]],
    *,
    errors: tuple[int, ...] = (),
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """One operation answering ``ok`` (status, description, schema; or status and a whole
    response object) or ``errors``; 403 (and 503 on a server without a site) may answer any
    of them."""
    response = _reply(ok[1], ok[2]) if len(ok) == 3 else ok[1]
    responses: dict[str, Any] = {str(ok[0]): response}
    for code in sorted({*errors, 403, 503}):
        responses[str(code)] = {"$ref": f"#/components/responses/{_ERRORS[code][0]}"}
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = responses
    return operation


def _task_id() -> dict[str, Any]:
    return _path("taskId", _string(minLength=1), "The task id, <app>.<name>.", "global.HealthCheck")


def _job_id() -> dict[str, Any]:
    return _path("jobId", _integer(minimum=0), "The job id.", 1)


def _runspace_id() -> dict[str, Any]:
    return _path("runspaceId", _integer(minimum=0), "The runspace id.", 1)


def _limit(default: int, high: int) -> dict[str, Any]:
    return _query(
        "limit",
        _integer(minimum=1, maximum=high, default=default),
        f"At most this many (default {default}).",
    )


def _offset() -> dict[str, Any]:
    return _query("offset", _integer(minimum=0, default=0), "Skip this many first.")


def _task_paths() -> dict[str, dict[str, Any]]:
    task = (200, "The task.", _ref("Task"))
    created = (201, "The new task.", _ref("Task"))
    job_states = _enum(_values_of(JobState), "A job state, any case.")
    paths: dict[str, dict[str, Any]] = {
        "/tasks": {
            "get": _operation(
                "listTasks",
                "List tasks, sorted by app then name.",
                "tasks",
                (200, "The tasks.", _ref("TaskList")),
                errors=(400,),
                parameters=[
                    _query("app", _string(), "Only the tasks of this app."),
                    _query("enabled", _boolean(), "Only enabled (true) or disabled tasks."),
                    _query(
                        "status", _enum(_values_of(TaskStatus), "Any case."), "Only this status."
                    ),
                    _query("search", _string(), "A text in the name or description, any case."),
                ],
            ),
            "post": _operation(
                "createTask",
                "Create a custom task.",
                "tasks",
                created,
                errors=(400, 409),
                body=_body(
                    _ref("TaskCreate"),
                    example={
                        "app": "vault",
                        "name": "VaultBackupNightly",
                        "description": "A full backup every night",
                        "schedule": "0 1 * * *",
                        "timezone": "Europe/Berlin",
                        "scriptPath": "tasks/backup_vault.py",
                        "parameters": {"KEEP_BACKUPS": 14, "FAILURE_RATE": 0},
                        "environment": {"VAULT_TOKEN": "s3cr3t"},
                        "termination": {"maxRuntime": 300, "maxFailures": 2},
                        "misfire": "once",
                    },
                ),
            ),
        },
        "/tasks/bulk": {
            "post": _operation(
                "bulkTasks",
                "Enable, disable or delete several tasks.",
                "tasks",
                (200, "What was done, and what was skipped and why.", _ref("BulkResult")),
                errors=(400,),
                body=_body(
                    _ref("BulkAction"),
                    example={"action": "disable", "ids": ["global.LogRotation", "vault.Nope"]},
                ),
            )
        },
        "/tasks/{taskId}": {
            "parameters": [_task_id()],
            "get": _operation(
                "getTask",
                "Read a task with its recent runs.",
                "tasks",
                (200, "The task and its history.", _ref("TaskDetail")),
                errors=(404,),
            ),
            "put": _operation(
                "updateTask",
                "Change some fields of a task.",
                "tasks",
                task,
                errors=(400, 404, 409),
                body=_body(
                    _ref("TaskChanges"),
                    example={"schedule": "*/10 * * * * 0", "termination": {"maxRuntime": 20}},
                ),
            ),
            "delete": _operation(
                "deleteTask",
                "Delete a custom task, or mark a default task deleted.",
                "tasks",
                (200, "What became of it.", _ref("TaskDeleted")),
                errors=(404,),
            ),
        },
    }
    for action, summary in (
        ("enable", "Enable a task."),
        ("disable", "Disable a task."),
        ("restore", "Bring back a deleted default task."),
    ):
        paths[f"/tasks/{{taskId}}/{action}"] = {
            "parameters": [_task_id()],
            "post": _operation(
                f"{action}Task",
                summary,
                "tasks",
                task,
                errors=(400, 404),
                body=_no_body(),
            ),
        }
    paths["/tasks/{taskId}/duplicate"] = {
        "parameters": [_task_id()],
        "post": _operation(
            "duplicateTask",
            "Copy a task within its app, as a custom task.",
            "tasks",
            created,
            errors=(400, 404, 409),
            body=_body(
                _ref("TaskDuplicate"),
                required=False,
                example={"name": "HealthCheckHourly", "schedule": "@hourly"},
            ),
        ),
    }
    paths["/tasks/{taskId}/copy"] = {
        "parameters": [_task_id()],
        "post": _operation(
            "copyTask",
            "Copy a task to another app, as a custom task.",
            "tasks",
            created,
            errors=(400, 404, 409),
            body=_body(_ref("TaskCopy"), example={"targetApp": "vault"}),
        ),
    }
    paths["/tasks/{taskId}/run"] = {
        "parameters": [_task_id()],
        "post": _operation(
            "runTask",
            "Run a task now (queued for the engine).",
            "tasks",
            (202, "The queued job.", _ref("Job")),
            errors=(400, 404, 409),
            body=_no_body(),
        ),
    }
    paths["/tasks/{taskId}/history"] = {
        "parameters": [_task_id()],
        "get": _operation(
            "getTaskHistory",
            "Page through a task's runs, newest first.",
            "tasks",
            (200, "One page of runs.", _ref("TaskHistory")),
            errors=(400, 404),
            parameters=[
                _limit(50, 1000),
                _offset(),
                _query("status", job_states, "Only this state."),
            ],
        ),
    }
    paths["/tasks/{taskId}/export"] = {
        "parameters": [_task_id()],
        "get": _operation(
            "exportTask",
            "Export a task's configuration (secrets masked).",
            "tasks",
            (200, "The configuration.", _ref("TaskExport")),
            errors=(404,),
        ),
    }
    return paths


def _job_paths() -> dict[str, dict[str, Any]]:
    job_states = _enum(_values_of(JobState), "Any case.")
    output_page: dict[str, Any] = {
        "description": "One page of output; with follow=true, pages as newline-delimited "
        "JSON until the job has ended.",
        "content": {
            "application/json": {"schema": _ref("OutputPage")},
            "application/x-ndjson": {"schema": _ref("OutputPage")},
        },
    }
    output = _operation(
        "getJobOutput",
        "Read (or follow) a job's stdout or stderr.",
        "jobs",
        (200, output_page),
        errors=(400, 404),
        parameters=[
            _query(
                "stream", _enum(["stdout", "stderr"], "Default stdout."), "Which stream.", "stdout"
            ),
            _query("offset", _integer(minimum=0, default=0), "The byte to start at.", 0),
            _query("follow", _boolean(), "Stream pages until the job has ended.", True),
        ],
    )
    paths: dict[str, dict[str, Any]] = {
        "/jobs": {
            "get": _operation(
                "listJobs",
                "List jobs, newest first.",
                "jobs",
                (200, "The jobs.", _ref("JobList")),
                errors=(400,),
                parameters=[
                    _query("state", job_states, "Only this state."),
                    _query("owner", _string(), "Only this owner, any case."),
                    _query("search", _string(), "A text in the name or task id."),
                    _query("task", _string(), "Only the jobs of this task id."),
                    _limit(500, 5000),
                    _offset(),
                ],
            )
        },
        "/jobs/{jobId}": {
            "parameters": [_job_id()],
            "get": _operation(
                "getJob",
                "Read a job with the tail of its output.",
                "jobs",
                (200, "The job.", _ref("JobDetail")),
                errors=(404,),
            ),
        },
        "/jobs/{jobId}/output": {"parameters": [_job_id()], "get": output},
        "/jobs/{jobId}/stop": {
            "parameters": [_job_id()],
            "post": _operation(
                "stopJob",
                "Stop a queued or running job (waits a few seconds for its end).",
                "jobs",
                (200, "The job as it is after.", _ref("JobStopped")),
                errors=(400, 404, 409),
                body=_no_body(),
            ),
        },
        "/jobs/{jobId}/remove": {
            "parameters": [_job_id()],
            "post": _operation(
                "removeJob",
                "Remove a finished job from the jobs list.",
                "jobs",
                (200, "Removed.", _ref("JobRemoved")),
                errors=(400, 404, 409),
                body=_no_body(),
            ),
        },
        "/jobs/{jobId}/restart": {
            "parameters": [_job_id()],
            "post": _operation(
                "restartJob",
                "Run the task of a failed job again.",
                "jobs",
                (202, "The new queued job.", _ref("Job")),
                errors=(400, 404, 409),
                body=_no_body(),
            ),
        },
    }
    return paths


def _runspace_paths() -> dict[str, dict[str, Any]]:
    return {
        "/runspaces": {
            "get": _operation(
                "listRunspaces",
                "List the live runspaces (and recently closed ones on request).",
                "runspaces",
                (200, "The runspaces.", _ref("RunspaceList")),
                errors=(400,),
                parameters=[
                    _query(
                        "state", _enum(_values_of(RunspaceState), "Any case."), "Only this state."
                    ),
                    _query("owner", _string(), "Only this owner, any case."),
                    _query("kind", _enum(_values_of(RunspaceKind), "Any case."), "Only this kind."),
                    _query("minAge", _number(minimum=0), "Only those at least this old (seconds)."),
                    _query("includeClosed", _boolean(), "Also those closed in the last day."),
                ],
            )
        },
        "/runspaces/{runspaceId}": {
            "parameters": [_runspace_id()],
            "get": _operation(
                "getRunspace",
                "Read a runspace.",
                "runspaces",
                (200, "The runspace.", _ref("Runspace")),
                errors=(404,),
            ),
        },
        "/runspaces/{runspaceId}/close": {
            "parameters": [_runspace_id()],
            "post": _operation(
                "closeRunspace",
                "Force-close a runspace (ends its process).",
                "runspaces",
                (200, "Closed.", _ref("RunspaceClosed")),
                errors=(400, 404, 409),
                body=_body(_ref("RunspaceClose"), example={"force": True, "confirmation": "1"}),
                description="409 for a wrong confirmation, the engine's runspace, a remote "
                "one, or a process that is gone.",
            ),
        },
        "/runspaces/{runspaceId}/diagnostics": {
            "parameters": [_runspace_id()],
            "get": _operation(
                "getRunspaceDiagnostics",
                "Read a runspace's process now.",
                "runspaces",
                (200, "The diagnostics.", _ref("RunspaceDiagnostics")),
                errors=(404, 409),
            ),
        },
        "/runspaces/{runspaceId}/memory": {
            "parameters": [_runspace_id()],
            "get": _operation(
                "getRunspaceMemory",
                "Read a runspace's memory samples, oldest first.",
                "runspaces",
                (200, "The samples.", _ref("MemoryHistory")),
                errors=(400, 404),
                parameters=[
                    _query("since", _time(), "Only samples after this time (with offset).")
                ],
            ),
        },
    }


def _other_paths() -> dict[str, dict[str, Any]]:
    def get(
        operation_id: str, summary: str, schema: str, tag: str = "site", **extra: Any
    ) -> dict[str, Any]:
        return {
            "get": _operation(operation_id, summary, tag, (200, summary, _ref(schema)), **extra)
        }

    settings = get(
        "getSettings", "Read the settings with their descriptions.", "SettingsView", "settings"
    )
    settings["put"] = _operation(
        "updateSettings",
        "Change some settings.",
        "settings",
        (200, "The settings after the change.", _ref("SettingsSaved")),
        errors=(400,),
        body=_body(
            _ref("SettingsChanges"),
            example={"maxConcurrentTasks": 4, "autoRefreshInterval": 2.5},
        ),
    )
    preview = get(
        "previewSchedule",
        "Describe a cron expression and list its next runs.",
        "SchedulePreview",
        errors=(400,),
        parameters=[
            {
                **_query("expression", _string(), "The cron expression.", "30 2 * * 1-5"),
                "required": True,
            },
            _query(
                "timezone", _string(), "An IANA timezone (default: the site's).", "Europe/Berlin"
            ),
            _query("count", _integer(minimum=0, maximum=100, default=5), "How many next runs.", 3),
            _query(
                "start",
                _time(),
                "Count from this time (default: now).",
                "2025-03-28T12:00:00+01:00",
            ),
        ],
    )
    audit = get(
        "listAuditEntries",
        "Read the audit log, newest first.",
        "AuditEntries",
        errors=(400,),
        parameters=[
            _query("since", _time(), "Only entries at or after this time (with offset)."),
            _query("action", _enum(sorted(AUDIT_ACTIONS)), "Only this action."),
            _query("user", _string(), "Only this user."),
            _query("target", _string(), "Only this target."),
            _limit(100, 1000),
            _offset(),
        ],
    )
    notifications = get(
        "listNotifications",
        "List notifications, newest first.",
        "Notifications",
        errors=(400,),
        parameters=[
            _query("after", _integer(minimum=0, default=0), "Only those newer than this id."),
            _limit(100, 1000),
        ],
    )
    openapi = {
        "get": _operation(
            "getOpenApi",
            "This document.",
            "site",
            (200, "The OpenAPI document.", {"type": "object"}),
        )
    }
    return {
        "/stats": get("getStats", "Read the quick stats of every screen.", "Stats"),
        "/settings": settings,
        "/apps": get("listApps", "List the apps of the site.", "Apps"),
        "/audit": audit,
        "/schedule/preview": preview,
        "/site/errors": get(
            "listSiteErrors", "List the problems in the site's files.", "SiteErrors"
        ),
        "/engine": get("getEngine", "Tell whether an engine runs the site.", "EngineStatus"),
        "/notifications": notifications,
        "/openapi.json": openapi,
    }


# -- the document ----------------------------------------------------------------------------


def openapi_document(base_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the API served under ``base_url`` (the server's base
    URL: a path such as ``/`` or ``/user/alice/``, or a whole URL). Paths are relative to
    its only server, ``<base_url><API_BASE>``. A new document on every call (nothing in it
    is shared, so a caller may change it)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "taskops REST API",
            "version": API_VERSION,
            "description": "Scheduled tasks, live jobs and runspaces of one taskops site. "
            "JSON in camelCase; times are ISO 8601 with offset. Every route requires the "
            "system_admin role. Errors answer a JSON object with a message.",
        },
        "servers": [{"url": base_url.rstrip("/") + API_BASE}],
        "security": [{"token": []}],
        "tags": [
            {"name": "tasks", "description": "Scheduled tasks (default and custom)."},
            {"name": "jobs", "description": "Runs of tasks and ad-hoc commands."},
            {"name": "runspaces", "description": "Processes that run the work."},
            {"name": "settings", "description": "The site's settings."},
            {"name": "site", "description": "Stats, audit, engine and the site itself."},
        ],
        "paths": {**_task_paths(), **_job_paths(), **_runspace_paths(), **_other_paths()},
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The server's token, sent as `token <TOKEN>`.",
                }
            },
        },
    }
