"""Inputs at the edges (found by the API fuzz) get a clear error through the Python API too,
never an exception from SQLite, urllib or datetime."""

from __future__ import annotations

import json

import pytest

import taskops
from taskops.model import MAX_ID, parse_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        (" 12 ", 12),
        (str(MAX_ID), MAX_ID),
        (MAX_ID + 1, None),
        (str(MAX_ID + 1), None),
        ("9" * 400, None),
        ("²", None),  # a digit to str.isdigit, not to int()
        ("-1", None),
        (-1, None),
        (True, None),
        (1.0, None),
    ],
)
def test_parse_id(value: object, expected: int | None) -> None:
    assert parse_id(value) == expected


@pytest.mark.parametrize("bad", [2**63, "²", "99999999999999999999"])
def test_ids_past_the_store_are_not_found(ops: taskops.TaskOps, bad: object) -> None:
    with pytest.raises(taskops.NotFound):
        ops.jobs.get(bad)  # type: ignore[arg-type]
    with pytest.raises(taskops.NotFound):
        ops.runspaces.get(bad)  # type: ignore[arg-type]


def test_offsets_past_the_store_are_invalid(ops: taskops.TaskOps) -> None:
    with pytest.raises(taskops.InvalidInput, match="offset"):
        ops.jobs.list(offset=2**63)
    with pytest.raises(taskops.InvalidInput, match="offset"):
        ops.tasks.history("global.Cleanup", offset=2**63)
    with pytest.raises(taskops.InvalidInput, match="after_id"):
        ops.notifications.list(after_id=2**63)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"notificationWebhook": "http://[::1"}, "notificationWebhook"),
        ({"autoRefreshInterval": float("nan")}, "autoRefreshInterval"),
        ({"runspaceMemoryWarning": float("inf")}, "runspaceMemoryWarning"),
    ],
)
def test_settings_refuse_broken_urls_and_non_finite_numbers(
    ops: taskops.TaskOps, changes: dict[str, object], field: str
) -> None:
    before = ops.settings.get()
    with pytest.raises(taskops.InvalidInput) as caught:
        ops.settings.update(changes)
    assert field in caught.value.fields()
    assert ops.settings.get() == before


def test_schedule_preview_at_the_end_of_the_calendar(ops: taskops.TaskOps) -> None:
    with pytest.raises(taskops.InvalidInput, match="start"):
        ops.tasks.preview_schedule("* * * * *", start="0001-01-01T00:00:00+14:00")
    with pytest.raises(taskops.InvalidInput, match="start"):
        ops.tasks.preview_schedule("* * * * *", start="tomorrow")


def test_a_lone_surrogate_is_audited_as_its_json_escape(ops: taskops.TaskOps) -> None:
    with pytest.raises(taskops.InvalidInput):
        ops.tasks.create({"app": "global", "name": "A\ud800", "schedule": "* * * * *"})
    line = ops.site.audit_log.read_bytes().splitlines()[-1]
    record = json.loads(line)
    assert record["action"] == "task.create" and record["result"] == "failure"
    assert b"\\ud800" in line  # the JSON escape, read back as the same text
    assert "A\ud800" in json.dumps(record, ensure_ascii=False)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_task_parameters_must_be_finite_numbers(ops: taskops.TaskOps, number: float) -> None:
    spec = {"app": "global", "name": "Nan", "schedule": "* * * * *", "scriptPath": "tasks/a.py"}
    with pytest.raises(taskops.InvalidInput) as caught:
        ops.tasks.create({**spec, "parameters": {"LIMIT": number}})
    assert "parameters.LIMIT" in caught.value.fields()
    with pytest.raises(taskops.NotFound):
        ops.tasks.get("global.Nan")
