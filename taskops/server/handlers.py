"""The REST API: thin tornado handlers over the service.

Each handler parses its input (path, query, JSON body), calls one ``TaskOps`` operation in
a worker thread (the service blocks on SQLite, files and processes; the event loop never
does), and answers JSON. ``TaskopsHandler`` holds what they share: the ``system_admin``
check, the user the change is audited as, the parsing of query values and bodies, and the
one place where the exception tree of ``taskops.errors`` becomes 400/403/404/409.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.iostream import StreamClosedError

from taskops.errors import Conflict, Forbidden, InvalidInput, NotFound, TaskopsError
from taskops.server.auth import admin_refusal, audit_name

if TYPE_CHECKING:
    from taskops.server.app import ServerHost
    from taskops.service.ops import TaskOps

__all__ = ["API_BASE", "ApiError", "handlers"]

API_BASE = "/apps/WebHostTaskManagement/api/v1"

T = TypeVar("T")

LOGIN_REQUIRED = "authentication required: send 'Authorization: token <TOKEN>'"

NO_SITE = (
    "taskops has no site: start it with `taskops serve --site DIR`, or set "
    "TaskopsApp.site (or TASKOPS_SITE) for this server"
)
"""Why a route answers 503 when the extension serves no site."""

FOLLOW_POLL_SECONDS = 0.25
"""How often a followed output stream looks for new text."""

_STATUS_OF: list[tuple[type[TaskopsError], int]] = [
    (InvalidInput, 400),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
]


class ApiError(web.HTTPError):
    """An HTTP error with a JSON ``message`` (and, for bad input, ``problems``: field ->
    message)."""

    def __init__(self, status: int, message: str, problems: dict[str, str] | None = None):
        super().__init__(status)
        self.message = message
        self.problems = problems or {}

    @classmethod
    def from_error(cls, exc: TaskopsError) -> ApiError:
        status = next(code for kind, code in _STATUS_OF if isinstance(exc, kind))
        problems = exc.fields() if isinstance(exc, InvalidInput) else None
        return cls(status, exc.message, problems)


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, f"{field}: {message}", {field: message})


def _no_constant(name: str) -> Any:
    """``json.loads`` hook: NaN and Infinity are not JSON (RFC 8259)."""
    raise ValueError(f"{name} is not a JSON number")


MAX_BODY_DEPTH = 16
"""How deep a JSON body may nest (a task spec needs three levels): deeper ones are refused
before the service walks them recursively (the audit log masks secrets at any depth)."""


def _check_body_value(value: Any) -> None:
    """Raises ValueError for a parsed JSON body nested deeper than ``MAX_BODY_DEPTH``, or
    holding text that is no UTF-8: an escaped lone surrogate (``"\\ud800"``) parses, but
    nothing can store it."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")  # UnicodeEncodeError is a ValueError
        elif isinstance(item, dict | list):
            if depth > MAX_BODY_DEPTH:
                raise ValueError(f"it nests deeper than {MAX_BODY_DEPTH} levels")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _finite_float(text: str) -> float:
    """``json.loads`` hook: a number too large for a float (``1e400``) is refused, not
    read as infinity (which no JSON answer could carry back)."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def encode(value: Any) -> str:
    """The JSON text of an answer."""
    return json.dumps(value, default=str)


class TaskopsHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every API handler: authenticated, ``system_admin`` only, JSON errors."""

    @property
    def host(self) -> ServerHost:
        host: ServerHost | None = self.settings.get("taskops_host")
        if host is None:
            raise ApiError(503, NO_SITE)
        return host

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        user = self.current_user
        if not user:
            raise ApiError(403, LOGIN_REQUIRED)
        host = self.host  # 503 when no site is served, once the caller is known
        refusal = admin_refusal(user, host.roles, host.default_roles)
        if refusal:
            raise ApiError(403, refusal)
        self.ops: TaskOps = host.ops.as_user(audit_name(user))

    def check_xsrf_cookie(self) -> None:
        # jupyter-server checks XSRF right after the login, even when nobody logged in:
        # say what is missing (a login), not "'_xsrf' argument missing"
        if hasattr(self, "_jupyter_current_user") and not self.current_user:
            raise ApiError(403, LOGIN_REQUIRED)
        super().check_xsrf_cookie()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reply: dict[str, Any]
        if isinstance(exc, ApiError):
            reply = {"message": exc.message}
            if exc.problems:
                reply["problems"] = exc.problems
        elif isinstance(exc, web.HTTPError):
            reply = {"message": exc.log_message or self._reason}
        else:
            reply = {"message": "internal error: see the server's log"}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(reply))

    # -- calling the service ---------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the host's worker threads; TaskopsError -> ApiError."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.host.executor, lambda: fn(*args, **kwargs))
        except TaskopsError as exc:
            raise ApiError.from_error(exc) from exc

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(encode(value))

    async def reply_encoded(self, make: Callable[[], bytes]) -> None:
        """Answer 200 with the JSON that ``make()`` encodes in a worker thread, where its
        Etag is hashed too: tornado would hash the body on the event loop, and the 6 MB of
        10,000 tasks would hold up every other request meanwhile (hashlib lets go of the
        GIL for a big buffer). A request whose ``If-None-Match`` names that Etag gets 304
        without a body, as from tornado."""

        def made() -> tuple[bytes, str]:
            body = make()
            return body, f'"{hashlib.sha1(body).hexdigest()}"'

        body, etag = await self.call(made)
        self.set_header("Content-Type", "application/json")
        self.set_header("Etag", etag)
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
        else:
            self.finish(body)

    # -- parsing ---------------------------------------------------------------------------

    def query_text(self, name: str) -> str | None:
        value = self.get_query_argument(name, None)
        return value if value not in (None, "") else None

    def query_bool(self, name: str) -> bool | None:
        value = self.query_text(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise _bad(name, f"must be true or false, not {value!r}")

    def query_int(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        value = self.query_text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise _bad(name, f"must be a whole number, not {value!r}") from None
        if number < low or (high is not None and number > high):
            span = f"from {low} to {high}" if high is not None else f">= {low}"
            raise _bad(name, f"must be a whole number {span}, not {number}")
        return number

    def body(self, allowed: Iterable[str] | None = None, *, empty_ok: bool = False) -> Any:
        """The JSON body: an object whose keys are in ``allowed`` (any keys when None).
        Raises ApiError 400 for a body that is not UTF-8 JSON, not an object, or has an
        unknown key. An empty body is ``{}`` when ``empty_ok``."""
        raw = self.request.body
        if not raw.strip():
            if empty_ok:
                return {}
            raise ApiError(400, "a JSON object is required as the request body")
        try:
            value = json.loads(
                raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float
            )
        except (RecursionError, ValueError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        try:
            _check_body_value(value)
        except ValueError as exc:
            raise ApiError(400, f"the body is refused: {exc}") from None
        if not isinstance(value, dict):
            raise ApiError(400, f"the body must be a JSON object, not {type(value).__name__}")
        if allowed is not None:
            known = set(allowed)
            unknown = sorted(set(value) - known)
            if unknown:
                raise ApiError(
                    400,
                    f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                    dict.fromkeys(unknown, "unknown field"),
                )
        return value


# -- tasks ---------------------------------------------------------------------------------


class TasksHandler(TaskopsHandler):
    async def get(self) -> None:
        app, enabled = self.query_text("app"), self.query_bool("enabled")
        status, search = self.query_text("status"), self.query_text("search")
        await self.reply_encoded(lambda: self.ops.tasks.list_json(app, enabled, status, search))

    async def post(self) -> None:
        task = await self.call(self.ops.tasks.create, self.body())
        self.reply(task.to_dict(), 201)


class TaskHandler(TaskopsHandler):
    async def get(self, task_id: str) -> None:
        def read() -> dict[str, Any]:
            task = self.ops.tasks.get(task_id)
            history = self.ops.tasks.history(task_id, limit=20)
            return {**task.to_dict(), "history": [job.to_dict() for job in history]}

        self.reply(await self.call(read))

    async def put(self, task_id: str) -> None:
        task = await self.call(self.ops.tasks.update, task_id, self.body())
        self.reply(task.to_dict())

    async def delete(self, task_id: str) -> None:
        task = await self.call(self.ops.tasks.get, task_id)
        await self.call(self.ops.tasks.delete, task_id)
        how = "marked deleted (a default task; restore brings it back)"
        self.reply(
            {
                "message": f"task {task_id} {how if task.is_default else 'deleted'}",
                "id": task_id,
            }
        )


class TaskActionHandler(TaskopsHandler):
    """POST /tasks/:id/{enable,disable,duplicate,copy,run,restore}."""

    async def post(self, task_id: str, action: str) -> None:
        tasks = self.ops.tasks
        if action in ("enable", "disable", "restore"):
            self.body(allowed=(), empty_ok=True)
            task = await self.call(getattr(tasks, action), task_id)
            self.reply(task.to_dict())
        elif action == "duplicate":
            body = self.body(allowed=("name", "schedule"), empty_ok=True)
            task = await self.call(tasks.duplicate, task_id, body.get("name"), body.get("schedule"))
            self.reply(task.to_dict(), 201)
        elif action == "copy":
            body = self.body(allowed=("targetApp",))
            if "targetApp" not in body:
                raise _bad("targetApp", "is required")
            task = await self.call(tasks.copy, task_id, body["targetApp"])
            self.reply(task.to_dict(), 201)
        else:  # run
            self.body(allowed=(), empty_ok=True)
            job = await self.call(tasks.run, task_id)
            self.reply(job.to_dict(), 202)


class TaskHistoryHandler(TaskopsHandler):
    async def get(self, task_id: str) -> None:
        limit = self.query_int("limit", 50, low=1, high=1000)
        offset = self.query_int("offset", 0)
        state = self.query_text("status")
        jobs = await self.call(
            self.ops.tasks.history, task_id, limit=limit, offset=offset, state=state
        )
        self.reply({"history": [job.to_dict() for job in jobs], "limit": limit, "offset": offset})


class TaskExportHandler(TaskopsHandler):
    async def get(self, task_id: str) -> None:
        self.reply(await self.call(self.ops.tasks.export, task_id))


class TaskBulkHandler(TaskopsHandler):
    """POST /tasks/bulk ``{"action": "enable"|"disable"|"delete", "ids": [...]}``."""

    async def post(self) -> None:
        body = self.body(allowed=("action", "ids"))
        action, ids = body.get("action"), body.get("ids")
        if action not in ("enable", "disable", "delete"):
            raise _bad("action", "must be enable, disable or delete")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _bad("ids", "must be a list of task ids")
        result = await self.call(getattr(self.ops.tasks, f"bulk_{action}"), ids)
        self.reply(result.to_dict())


# -- jobs ----------------------------------------------------------------------------------


class JobsHandler(TaskopsHandler):
    async def get(self) -> None:
        state, owner = self.query_text("state"), self.query_text("owner")
        search, task = self.query_text("search"), self.query_text("task")
        limit = self.query_int("limit", 500, low=1, high=5000)
        offset = self.query_int("offset", 0)
        jobs = await self.call(
            self.ops.jobs.list, state, owner, search, task=task, limit=limit, offset=offset
        )
        self.reply({"jobs": [job.to_dict() for job in jobs], "count": len(jobs)})


class JobHandler(TaskopsHandler):
    async def get(self, job_id: str) -> None:
        def read() -> dict[str, Any]:
            job = self.ops.jobs.get(job_id)
            return {
                **job.to_dict(),
                "output": self.ops.jobs.tail(job.id, "stdout"),
                "errorOutput": self.ops.jobs.tail(job.id, "stderr"),
            }

        self.reply(await self.call(read))


class JobActionHandler(TaskopsHandler):
    """POST /jobs/:id/{stop,remove,restart}."""

    async def post(self, job_id: str, action: str) -> None:
        self.body(allowed=(), empty_ok=True)
        jobs = self.ops.jobs
        if action == "stop":
            job = await self.call(jobs.stop, job_id)
            self.reply({"message": f"job {job.id} is {job.state.value}", "job": job.to_dict()})
        elif action == "remove":
            await self.call(jobs.remove, job_id)
            self.reply({"message": f"job {job_id} removed", "id": int(job_id)})
        else:  # restart
            job = await self.call(jobs.restart, job_id)
            self.reply(job.to_dict(), 202)


class JobOutputHandler(TaskopsHandler):
    """GET /jobs/:id/output: one page ``{text, nextOffset, done, size}``, or with ``follow=true``
    a stream of such pages, one JSON object per line, until the job has ended."""

    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True  # stop following: nobody reads

    async def get(self, job_id: str) -> None:
        stream = self.query_text("stream") or "stdout"
        offset = self.query_int("offset", 0)
        follow = self.query_bool("follow") or False
        output = self.ops.jobs.output
        page = await self.call(output, job_id, stream, offset)
        if not follow:
            self.reply(page)
            return
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        try:
            first = True
            while True:
                if page["text"] or page["done"] or first:
                    self.write(json.dumps(page) + "\n")
                    await self.flush()
                    first = False
                if page["done"] or self._gone:
                    break
                offset = page["nextOffset"]
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
                page = await self.call(output, job_id, stream, offset)
        except StreamClosedError:
            return  # the client went away
        if not self._gone:
            self.finish()


# -- runspaces -----------------------------------------------------------------------------


class RunspacesHandler(TaskopsHandler):
    async def get(self) -> None:
        state, owner = self.query_text("state"), self.query_text("owner")
        kind = self.query_text("kind")
        min_age = self.query_text("minAge")  # the service reads the number
        include_closed = self.query_bool("includeClosed") or False
        spaces = await self.call(
            self.ops.runspaces.list,
            state,
            owner,
            min_age,
            kind=kind,
            include_closed=include_closed,
        )
        self.reply({"runspaces": [s.to_dict() for s in spaces], "count": len(spaces)})


class RunspaceHandler(TaskopsHandler):
    async def get(self, runspace_id: str) -> None:
        self.reply((await self.call(self.ops.runspaces.get, runspace_id)).to_dict())


class RunspaceCloseHandler(TaskopsHandler):
    async def post(self, runspace_id: str) -> None:
        body = self.body(allowed=("force", "confirmation"))
        if body.get("force") is not True:
            raise _bad("force", "must be true: a runspace can only be force-closed")
        confirmation = body.get("confirmation")
        if isinstance(confirmation, bool) or not isinstance(confirmation, str | int):
            raise _bad("confirmation", "must be the runspace id, typed again")
        space = await self.call(self.ops.runspaces.close, runspace_id, confirmation)
        self.reply({"message": f"runspace {space.id} closed", "runspace": space.to_dict()})


class RunspaceDiagnosticsHandler(TaskopsHandler):
    async def get(self, runspace_id: str) -> None:
        self.reply(await self.call(self.ops.runspaces.diagnostics, runspace_id))


class RunspaceMemoryHandler(TaskopsHandler):
    async def get(self, runspace_id: str) -> None:
        since = self.query_text("since")  # the service reads the time
        samples = await self.call(self.ops.runspaces.memory_history, runspace_id, since)
        self.reply({"samples": samples})


# -- the rest ------------------------------------------------------------------------------


class StatsHandler(TaskopsHandler):
    async def get(self) -> None:
        self.reply(await self.call(self.ops.summary))


class SettingsHandler(TaskopsHandler):
    async def get(self) -> None:
        settings = self.ops.settings
        self.reply(
            {
                "settings": await self.call(settings.get),
                "fields": await self.call(settings.describe),
            }
        )

    async def put(self) -> None:
        merged = await self.call(self.ops.settings.update, self.body())
        self.reply({"settings": merged})


class AppsHandler(TaskopsHandler):
    async def get(self) -> None:
        self.reply({"apps": await self.call(self.ops.apps)})


class AuditHandler(TaskopsHandler):
    async def get(self) -> None:
        entries = await self.call(
            self.ops.audit_entries,
            since=self.query_text("since"),
            action=self.query_text("action"),
            user=self.query_text("user"),
            target=self.query_text("target"),
            limit=self.query_int("limit", 100, low=1, high=1000),
            offset=self.query_int("offset", 0),
        )
        self.reply({"entries": entries})


class SchedulePreviewHandler(TaskopsHandler):
    async def get(self) -> None:
        expression = self.get_query_argument("expression", None)
        if expression is None:
            raise _bad("expression", "is required")
        preview = await self.call(
            self.ops.tasks.preview_schedule,
            expression,
            self.query_text("timezone"),
            count=self.query_int("count", 5, high=100),
            start=self.query_text("start"),
        )
        self.reply(preview)


class SiteErrorsHandler(TaskopsHandler):
    async def get(self) -> None:
        errors = await self.call(self.ops.site_errors)
        self.reply({"errors": [error.to_dict() for error in errors]})


class EngineHandler(TaskopsHandler):
    async def get(self) -> None:
        self.reply(await self.call(self.ops.engine.status))


class NotificationsHandler(TaskopsHandler):
    async def get(self) -> None:
        after = self.query_int("after", 0)
        limit = self.query_int("limit", 100, low=1, high=1000)
        notes = await self.call(self.ops.notifications.list, after, limit)
        self.reply({"notifications": [note.to_dict() for note in notes]})


class OpenApiHandler(TaskopsHandler):
    async def get(self) -> None:
        from taskops.server.openapi import openapi_document  # built on demand only

        self.reply(openapi_document(self.base_url))


class NoRouteHandler(TaskopsHandler):
    """Any other path under the API: a JSON 404 (after the same login and role check)."""

    def _no_route(self, *args: Any, **kwargs: Any) -> None:
        raise ApiError(404, f"no such route: {self.request.method} {self.request.path}")

    get = post = put = delete = patch = _no_route


_TASK = r"(?P<task_id>[^/]+)"
_JOB = r"(?P<job_id>[^/]+)"
_RUNSPACE = r"(?P<runspace_id>[^/]+)"


def handlers() -> list[tuple[str, type[TaskopsHandler]]]:
    """The routes, relative to the server's base URL."""
    routes: list[tuple[str, type[TaskopsHandler]]] = [
        ("/tasks", TasksHandler),
        ("/tasks/bulk", TaskBulkHandler),
        (f"/tasks/{_TASK}", TaskHandler),
        (
            f"/tasks/{_TASK}/(?P<action>enable|disable|duplicate|copy|run|restore)",
            TaskActionHandler,
        ),
        (f"/tasks/{_TASK}/history", TaskHistoryHandler),
        (f"/tasks/{_TASK}/export", TaskExportHandler),
        ("/jobs", JobsHandler),
        (f"/jobs/{_JOB}", JobHandler),
        (f"/jobs/{_JOB}/(?P<action>stop|remove|restart)", JobActionHandler),
        (f"/jobs/{_JOB}/output", JobOutputHandler),
        ("/runspaces", RunspacesHandler),
        (f"/runspaces/{_RUNSPACE}", RunspaceHandler),
        (f"/runspaces/{_RUNSPACE}/close", RunspaceCloseHandler),
        (f"/runspaces/{_RUNSPACE}/diagnostics", RunspaceDiagnosticsHandler),
        (f"/runspaces/{_RUNSPACE}/memory", RunspaceMemoryHandler),
        ("/stats", StatsHandler),
        ("/settings", SettingsHandler),
        ("/apps", AppsHandler),
        ("/audit", AuditHandler),
        ("/schedule/preview", SchedulePreviewHandler),
        ("/site/errors", SiteErrorsHandler),
        ("/engine", EngineHandler),
        ("/notifications", NotificationsHandler),
        ("/openapi.json", OpenApiHandler),
    ]
    return [
        *((API_BASE + path + "/?", handler) for path, handler in routes),
        (API_BASE + "(?:/.*)?", NoRouteHandler),
    ]
