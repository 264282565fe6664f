"""The OpenAPI document: valid OpenAPI 3.0.3, and in step with what it describes (the
routes and methods of the handlers, the spec fields, the settings, the audit actions, the
JSON of the domain objects). ``test_fuzz.py`` checks the answers of a real server
against it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from openapi_spec_validator import validate

from taskops.model import (
    Availability,
    BulkResult,
    Job,
    JobState,
    Notification,
    Runspace,
    RunspaceKind,
    RunspaceState,
    SiteError,
    Task,
    TaskSpec,
    TaskStatus,
)
from taskops.server.handlers import API_BASE, handlers
from taskops.server.openapi import openapi_document
from taskops.settings import SETTINGS
from taskops.spec import SPEC_FIELDS, TERMINATION_FIELDS

METHODS = ("get", "put", "post", "delete")
NOW = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def properties(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The properties of a component schema, an ``allOf`` merged."""
    schema = schema_of(document, name)
    out: dict[str, Any] = {}
    for part in schema.get("allOf", [schema]):
        if "$ref" in part:
            out.update(properties(document, part["$ref"].rsplit("/", 1)[1]))
        else:
            out.update(part.get("properties", {}))
    return out


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def documented_routes() -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route and method the handlers serve."""
    out = set()
    for pattern, handler in handlers():
        if not pattern.endswith("/?"):
            continue  # the catch-all that answers 404 for any other path under the API
        path = pattern.removeprefix(API_BASE).removesuffix("/?")
        path = re.sub(
            r"\(\?P<(\w+)_id>\[\^/\]\+\)",
            lambda m: "{" + re.sub(r"_(\w)", lambda c: c[1].upper(), m[1]) + "Id}",
            path,
        )
        actions = re.search(r"\(\?P<action>([\w|]+)\)", path)
        paths = (
            [path[: actions.start()] + a + path[actions.end() :] for a in actions[1].split("|")]
            if actions
            else [path]
        )
        for method in METHODS:
            if method in vars(handler):
                out.update((method, p) for p in paths)
    return out


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.0.3"
    validate(document)


def test_every_route_and_method_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented == documented_routes()


def test_every_operation_has_an_id_a_summary_and_its_errors(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    for method, path, op in operations(document):
        assert op["summary"] and "\n" not in op["summary"], (method, path)
        codes = set(op["responses"])
        assert codes & {"200", "201", "202"}, (method, path)
        assert "403" in codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if op.get("parameters") or "requestBody" in op:
            assert "400" in codes, (method, path)


def test_the_server_is_the_base_url_joined_with_the_api_base() -> None:
    assert openapi_document()["servers"] == [{"url": API_BASE}]
    assert openapi_document("/user/alice/")["servers"] == [{"url": "/user/alice" + API_BASE}]
    url = "http://127.0.0.1:8765/"
    assert openapi_document(url)["servers"] == [{"url": "http://127.0.0.1:8765" + API_BASE}]


def test_the_token_is_required_everywhere(document: dict[str, Any]) -> None:
    assert document["security"] == [{"token": []}]
    scheme = document["components"]["securitySchemes"]["token"]
    assert scheme["type"] == "apiKey"
    assert (scheme["in"], scheme["name"]) == ("header", "Authorization")
    assert "token <TOKEN>" in scheme["description"]


def test_query_bounds_are_those_of_the_handlers(document: dict[str, Any]) -> None:
    def query(path: str, name: str) -> dict[str, Any]:
        params = document["paths"][path]["get"]["parameters"]
        schema: dict[str, Any] = next(p["schema"] for p in params if p["name"] == name)
        return schema

    assert query("/jobs", "limit") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5000,
        "default": 500,
    }
    assert query("/tasks/{taskId}/history", "limit")["maximum"] == 1000
    assert query("/schedule/preview", "count")["maximum"] == 100
    assert query("/runspaces", "minAge") == {"type": "number", "minimum": 0}
    assert query("/tasks", "enabled") == {"type": "boolean"}
    assert query("/audit", "since") == {"type": "string", "format": "date-time"}


def test_the_task_spec_fields_are_those_the_service_takes(document: dict[str, Any]) -> None:
    create = schema_of(document, "TaskCreate")
    assert set(create["properties"]) == {*SPEC_FIELDS, "app"}
    assert set(create["required"]) == {"app", "name", "schedule", "scriptPath"}
    assert set(properties(document, "TaskChanges")) == {*SPEC_FIELDS, "app", "id"}
    termination = create["properties"]["termination"]["properties"]
    assert tuple(termination) == TERMINATION_FIELDS
    assert set(properties(document, "TaskExport")) == {*SPEC_FIELDS, "app"}


def test_the_settings_are_those_of_the_site(document: dict[str, Any]) -> None:
    kinds = {int: "integer", float: "number", bool: "boolean", str: "string"}
    settings = properties(document, "Settings")
    assert list(settings) == list(SETTINGS)
    assert properties(document, "SettingsChanges") == settings
    for key, spec in SETTINGS.items():
        schema = settings[key]
        assert schema["type"] == kinds[spec.kind], key
        assert schema.get("minimum") == spec.low, key
        assert schema.get("maximum") == spec.high, key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (
            "Task",
            Task(
                id="global.Echo",
                app="global",
                spec=TaskSpec(name="Echo", schedule="0 3 * * *", script_path="echo.sh"),
                is_default=True,
                status=TaskStatus.ENABLED,
                schedule_text="At 03:00 AM",
                timezone="UTC",
                next_run=NOW,
                last_run=None,
                last_state=JobState.FAILED,
                created_at=NOW,
                modified_at=None,
            ),
        ),
        (
            "Job",
            Job(
                id=1,
                name="Task_Echo_20250330_120000",
                state=JobState.COMPLETED,
                owner="Manual",
                task_id="global.Echo",
                app="global",
                scheduled_for=None,
                queued_at=NOW,
                started_at=NOW,
                ended_at=NOW,
                exit_code=0,
                error=None,
                progress=None,
                progress_message=None,
                output_bytes=10,
            ),
        ),
        (
            "Runspace",
            Runspace(
                id=1,
                kind=RunspaceKind.WORKER,
                pid=42,
                host="here",
                state=RunspaceState.OPENED,
                availability=Availability.BUSY,
                owner="TaskEngine",
                app="global",
                task_id="global.Echo",
                job_id=1,
                purpose=None,
                created_at=NOW,
                closed_at=None,
                exit_code=None,
                age_seconds=1.5,
                thread_count=None,
                memory_mb=None,
                handle_count=None,
                sampled_at=None,
            ),
        ),
        (
            "Notification",
            Notification(id=1, time=NOW, kind="failure", message="m", task_id=None, job_id=None),
        ),
        ("SiteError", SiteError(file="f", app="global", message="m")),
        ("BulkResult", BulkResult(done=["a"], skipped={"b": "why"})),
    ],
)
def test_object_schemas_name_every_field_of_the_json(
    document: dict[str, Any], name: str, value: Any
) -> None:
    fields = value.to_dict()
    schema = schema_of(document, name)
    assert set(schema["properties"]) == set(fields)
    assert set(schema["required"]) == set(fields)


async def test_the_server_serves_the_document(api: Any, jp_base_url: str) -> None:
    status, body = await api("GET", "/openapi.json")
    assert status == 200
    assert body == openapi_document(jp_base_url)
