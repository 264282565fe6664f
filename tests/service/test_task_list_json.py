"""``ops.tasks.list_json()``, the answer of ``GET /tasks``: the same bytes as encoding
``ops.tasks.list()``, for every filter, and current after every kind of change although
each task's JSON is kept between lists (``TaskJson``) and views take over unchanged
entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

import taskops
from taskops.model import JobState
from taskops.testing import FakeClock, make_site

TASKS: dict[str, list[dict[str, Any]]] = {
    "global": [
        {
            "name": "Cleanup",
            "description": "Clean up old data",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/cleanup.py",
            "parameters": {"RETENTION_DAYS": 30, "SHARE": 0.5},
            "environment": {"DATA_PATH": "data", "API_TOKEN": "s3cr3t-value"},
        },
        {
            "name": "Heartbeat",
            "description": "Say the site is alive",
            "schedule": "*/15 * * * *",
            "scriptPath": "tasks/heartbeat.py",
            "enabled": False,
        },
    ],
    "vault": [
        {
            "name": "VaultBackup",
            "description": "Sichert den Tresor (Schlüssel)",
            "schedule": "*/15 * * * *",
            "timezone": "Europe/Berlin",
            "scriptPath": "tasks/backup.py",
            "parameters": {"COPIES": 1},
        },
    ],
}

START = datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", TASKS, timezone="UTC")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ops(site: Path, clock: FakeClock) -> Iterator[taskops.TaskOps]:
    with taskops.open_site(site, user="alice", clock=clock) as opened:
        opened.tasks.create(
            {
                "app": "vault",
                "name": "Rotate",
                "description": "Rotate keys ✓",
                "schedule": "0 4 * * *",
                "scriptPath": "tasks/backup.py",
                "parameters": {"KEEP": 1},
            }
        )
        yield opened


def answer(ops: taskops.TaskOps, **filters: Any) -> dict[str, Any]:
    """``list_json(**filters)``, checked to be the bytes of ``list(**filters)`` encoded as
    the API encodes an answer, then parsed."""
    body = ops.tasks.list_json(**filters)
    tasks = ops.tasks.list(**filters)
    expected = {"tasks": [task.to_dict() for task in tasks], "count": len(tasks)}
    assert body == json.dumps(expected, default=str).encode()
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def listed(ops: taskops.TaskOps, **filters: Any) -> dict[str, dict[str, Any]]:
    return {task["id"]: task for task in answer(ops, **filters)["tasks"]}


def test_the_answer_is_the_list_encoded_for_every_filter(ops: taskops.TaskOps) -> None:
    everything = answer(ops)
    assert [t["id"] for t in everything["tasks"]] == [
        "global.Cleanup",
        "global.Heartbeat",
        "vault.Rotate",
        "vault.VaultBackup",
    ]
    assert everything["count"] == 4
    cleanup = everything["tasks"][0]
    assert cleanup["parameters"] == {"RETENTION_DAYS": 30, "SHARE": 0.5}
    assert cleanup["environment"]["API_TOKEN"] != "s3cr3t-value"
    assert cleanup["nextRun"] == "2026-01-17T03:00:00+00:00"
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"app": "vault"}, ["vault.Rotate", "vault.VaultBackup"]),
        ({"app": "nowhere"}, []),
        ({"enabled": False}, ["global.Heartbeat"]),
        ({"enabled": True, "app": "global"}, ["global.Cleanup"]),
        ({"status": "disabled"}, ["global.Heartbeat"]),
        ({"status": "Running"}, []),
        ({"search": "SCHLÜSSEL"}, ["vault.VaultBackup"]),
        ({"search": "rotate"}, ["vault.Rotate"]),
        ({"search": "  "}, [t["id"] for t in everything["tasks"]]),
    ]
    for filters, ids in cases:
        assert [t["id"] for t in answer(ops, **filters)["tasks"]] == ids, filters
    with pytest.raises(taskops.InvalidInput, match="unknown status"):
        ops.tasks.list_json(status="Sleeping")


def test_an_edit_shows_in_the_next_answer(ops: taskops.TaskOps, site: Path) -> None:
    before = listed(ops)
    ops.tasks.update("global.Cleanup", {"description": "Clean up older data"})
    after = listed(ops)
    assert after["global.Cleanup"]["description"] == "Clean up older data"
    assert after["global.Cleanup"]["overridden"] == ["description"]
    assert {k: v for k, v in after.items() if k != "global.Cleanup"} == {
        k: v for k, v in before.items() if k != "global.Cleanup"
    }

    ops.tasks.update("global.Cleanup", {"schedule": "30 14 * * *"})
    cleanup = listed(ops)["global.Cleanup"]
    assert cleanup["schedule"] == "30 14 * * *"
    assert cleanup["scheduleText"] == "At 02:30 PM"
    assert cleanup["nextRun"] == "2026-01-16T14:30:00+00:00"

    # values equal in Python but not in JSON (1 == True) must not keep the old JSON
    ops.tasks.update("vault.Rotate", {"parameters": {"KEEP": True}})
    assert listed(ops)["vault.Rotate"]["parameters"]["KEEP"] is True

    # the YAML changes under a running site: the next answer follows it
    document = yaml.safe_load((site / "config" / "tasks.yaml").read_text())
    document["tasks"][1]["description"] = "Say that the site is alive and well"
    (site / "config" / "tasks.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    heartbeat = listed(ops)["global.Heartbeat"]
    assert heartbeat["description"] == "Say that the site is alive and well"


def test_enabling_and_disabling_show_in_status_next_run_and_filters(
    ops: taskops.TaskOps,
) -> None:
    listed(ops)
    ops.tasks.disable("global.Cleanup")
    cleanup = listed(ops)["global.Cleanup"]
    assert (cleanup["enabled"], cleanup["status"], cleanup["nextRun"]) == (False, "Disabled", None)
    assert "global.Cleanup" in listed(ops, enabled=False)
    assert "global.Cleanup" in listed(ops, status="disabled")
    ops.tasks.enable("global.Cleanup")
    cleanup = listed(ops)["global.Cleanup"]
    assert (cleanup["enabled"], cleanup["status"]) == (True, "Enabled")
    assert cleanup["nextRun"] == "2026-01-17T03:00:00+00:00"
    assert "global.Cleanup" not in listed(ops, enabled=False)


def test_jobs_starting_and_ending_show_in_status_and_last_run(ops: taskops.TaskOps) -> None:
    assert listed(ops)["vault.Rotate"]["lastRun"] is None
    started = START - timedelta(minutes=1)
    job_id = ops.store.insert_job(
        name="Task_Rotate_20260116_140430",
        owner="Manual",
        state=JobState.RUNNING,
        queued_at=started,
        task_id="vault.Rotate",
        started_at=started,
    )
    rotate = listed(ops)["vault.Rotate"]
    assert (rotate["status"], rotate["lastState"]) == ("Running", "Running")
    assert rotate["lastRun"] == "2026-01-16T14:04:30+00:00"
    assert list(listed(ops, status="running")) == ["vault.Rotate"]

    ops.store.finish_job(
        job_id,
        state=JobState.FAILED,
        ended_at=START,
        exit_code=1,
        error="RuntimeError: no key",
        output_bytes=0,
    )
    rotate = listed(ops)["vault.Rotate"]
    assert (rotate["status"], rotate["lastState"]) == ("Enabled", "Failed")
    assert rotate["lastRun"] == "2026-01-16T14:04:30+00:00"
    assert listed(ops, status="running") == {}


def test_next_run_moves_on_when_its_slot_passes(ops: taskops.TaskOps, clock: FakeClock) -> None:
    assert listed(ops)["vault.VaultBackup"]["nextRun"] == "2026-01-16T15:15:00+01:00"
    clock.advance(minutes=9)  # 14:14:30 UTC, still before it
    assert listed(ops)["vault.VaultBackup"]["nextRun"] == "2026-01-16T15:15:00+01:00"
    clock.advance(seconds=30)  # 14:15:00 UTC: that slot is due, the next one is ahead
    assert listed(ops)["vault.VaultBackup"]["nextRun"] == "2026-01-16T15:30:00+01:00"
    clock.set(START)  # set back: right again
    assert listed(ops)["vault.VaultBackup"]["nextRun"] == "2026-01-16T15:15:00+01:00"


def test_next_run_keeps_its_offset_in_the_hour_a_fall_back_repeats(
    ops: taskops.TaskOps, clock: FakeClock
) -> None:
    """02:15 CEST and 02:15 CET compare equal in Python (one zone, fold aside), an hour
    apart; the answer must not keep the first one's JSON for the second."""
    clock.set(datetime(2026, 10, 25, 0, 10, tzinfo=UTC))  # 02:10 CEST
    assert listed(ops)["vault.VaultBackup"]["nextRun"] == "2026-10-25T02:15:00+02:00"
    clock.set(datetime(2026, 10, 25, 1, 10, tzinfo=UTC))  # 02:10 CET, the hour again
    assert listed(ops)["vault.VaultBackup"]["nextRun"] == "2026-10-25T02:15:00+01:00"


def test_created_deleted_and_restored_tasks_come_and_go(ops: taskops.TaskOps) -> None:
    listed(ops)
    ops.tasks.duplicate("global.Cleanup", name="Cleanup2")
    assert listed(ops)["global.Cleanup2"]["isDefault"] is False
    ops.tasks.delete("global.Cleanup2")
    ops.tasks.delete("global.Cleanup")
    assert not {"global.Cleanup", "global.Cleanup2"} & set(listed(ops))
    ops.tasks.restore("global.Cleanup")
    assert listed(ops)["global.Cleanup"]["isDefault"] is True
    assert answer(ops)["count"] == 4
