"""The task service on a real site folder and a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

import taskops
from taskops.errors import Conflict, InvalidInput, NotFound
from taskops.model import MASK, JobState, TaskStatus
from taskops.testing import FakeClock

ALL_IDS = [
    "global.Cleanup",
    "global.Heartbeat",
    "vault.VaultBackup",
    "WebHostMetrics.MetricsCollection",
    "WebHostMetrics.MetricsCsvCleanup",
]


def custom(**fields: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "app": "vault",
        "name": "Rotate",
        "schedule": "0 4 * * *",
        "scriptPath": "tasks/backup.py",
    }
    spec.update(fields)
    return spec


def last_audit(ops: taskops.TaskOps) -> dict[str, object]:
    return list(ops.audit_log.records())[-1]


# -- reading ---------------------------------------------------------------------------------


def test_list_merges_global_and_app_tasks_sorted(ops: taskops.TaskOps) -> None:
    tasks = ops.tasks.list()
    assert [t.id for t in tasks] == ALL_IDS
    assert all(t.is_default for t in tasks)
    assert ops.site_errors() == []


def test_next_run_follows_schedule_and_timezone(ops: taskops.TaskOps) -> None:
    # The fake clock stands at 2026-01-16 14:05:30 UTC.
    cleanup = ops.tasks.get("global.Cleanup")
    assert cleanup.next_run == datetime(2026, 1, 17, 3, 0, tzinfo=UTC)
    assert cleanup.schedule_text == "At 03:00 AM"
    berlin = ops.tasks.get("WebHostMetrics.MetricsCsvCleanup")
    assert berlin.timezone == "Europe/Berlin"
    assert berlin.next_run is not None
    assert berlin.next_run.astimezone(UTC) == datetime(2026, 1, 17, 1, 0, tzinfo=UTC)
    every15s = ops.tasks.get("WebHostMetrics.MetricsCollection")
    assert every15s.next_run == datetime(2026, 1, 16, 14, 5, 45, tzinfo=UTC)


def test_disabled_task_has_no_next_run(ops: taskops.TaskOps) -> None:
    heartbeat = ops.tasks.get("global.Heartbeat")
    assert heartbeat.status is TaskStatus.DISABLED
    assert heartbeat.next_run is None


def test_filters(ops: taskops.TaskOps) -> None:
    assert [t.id for t in ops.tasks.list(app="vault")] == ["vault.VaultBackup"]
    assert [t.id for t in ops.tasks.list(enabled=False)] == ["global.Heartbeat"]
    assert [t.id for t in ops.tasks.list(status="disabled")] == ["global.Heartbeat"]
    assert len(ops.tasks.list(status="Enabled")) == 4
    # Text search looks at the name and the description, ignoring case.
    assert [t.id for t in ops.tasks.list(search="METRIC")] == [
        "WebHostMetrics.MetricsCollection",
        "WebHostMetrics.MetricsCsvCleanup",
    ]
    assert [t.id for t in ops.tasks.list(search="alive")] == ["global.Heartbeat"]
    with pytest.raises(InvalidInput, match="unknown status"):
        ops.tasks.list(status="Sleeping")


def test_unknown_task_is_not_found(ops: taskops.TaskOps) -> None:
    with pytest.raises(NotFound):
        ops.tasks.get("vault.Nope")
    with pytest.raises(NotFound):
        ops.tasks.enable("vault.Nope")


def test_running_status_and_last_run_come_from_jobs(ops: taskops.TaskOps) -> None:
    t0 = datetime(2026, 1, 16, 13, 0, tzinfo=UTC)
    ops.store.insert_job(
        name="Task_VaultBackup_20260116_130000",
        owner="TaskEngine",
        state=JobState.FAILED,
        queued_at=t0,
        task_id="vault.VaultBackup",
        started_at=t0,
        ended_at=t0 + timedelta(seconds=5),
        scheduled_for=t0,
        exit_code=1,
        error="RuntimeError: disk full",
    )
    backup = ops.tasks.get("vault.VaultBackup")
    assert backup.last_run == t0
    assert backup.last_state is JobState.FAILED
    assert backup.status is TaskStatus.ENABLED
    t1 = t0 + timedelta(hours=1)
    ops.store.insert_job(
        name="Task_VaultBackup_20260116_140000",
        owner="Manual",
        state=JobState.RUNNING,
        queued_at=t1,
        task_id="vault.VaultBackup",
        started_at=t1,
    )
    backup = ops.tasks.get("vault.VaultBackup")
    assert backup.status is TaskStatus.RUNNING
    assert backup.last_run == t1
    assert [t.id for t in ops.tasks.list(status="Running")] == ["vault.VaultBackup"]
    assert [j.name for j in ops.tasks.history("vault.VaultBackup")] == [
        "Task_VaultBackup_20260116_140000",
        "Task_VaultBackup_20260116_130000",
    ]


def test_to_dict_has_the_json_contract_and_masks_secrets(ops: taskops.TaskOps) -> None:
    data = ops.tasks.get("global.Cleanup").to_dict()
    for key in (
        "id",
        "name",
        "description",
        "app",
        "schedule",
        "scheduleText",
        "timezone",
        "scriptPath",
        "enabled",
        "parameters",
        "environment",
        "termination",
        "isDefault",
        "status",
        "lastRun",
        "nextRun",
        "createdAt",
        "modifiedAt",
    ):
        assert key in data
    assert data["environment"] == {"DATA_PATH": "data", "API_TOKEN": MASK}
    assert data["termination"] == {"maxRuntime": None, "maxFailures": 3, "killOnTimeout": True}
    assert data["nextRun"] == "2026-01-17T03:00:00+00:00"
    assert "s3cr3t" not in json.dumps(data)


def test_check_script(ops: taskops.TaskOps, site_dir: Path) -> None:
    found = ops.tasks.check_script("global.Cleanup")
    assert found["exists"] and found["runner"] == "python"
    (site_dir / "tasks" / "cleanup.py").unlink()
    missing = ops.tasks.check_script("global.Cleanup")
    assert not missing["exists"] and "no file" in missing["message"]


def test_next_run_stays_right_as_the_clock_moves(ops: taskops.TaskOps, clock: FakeClock) -> None:
    """Next runs are kept between listings while still ahead; they must move on as the
    clock passes them, and be right again when the clock is set back."""
    every15s = {t.id: t for t in ops.tasks.list()}["WebHostMetrics.MetricsCollection"]
    assert every15s.next_run == datetime(2026, 1, 16, 14, 5, 45, tzinfo=UTC)
    clock.advance(10)  # 14:05:40: still before the next run
    assert ops.tasks.get(every15s.id).next_run == datetime(2026, 1, 16, 14, 5, 45, tzinfo=UTC)
    clock.advance(5)  # 14:05:45: that run is due now, the next one is 15 s later
    assert ops.tasks.get(every15s.id).next_run == datetime(2026, 1, 16, 14, 6, 0, tzinfo=UTC)
    clock.set(datetime(2026, 1, 16, 13, 0, 1, tzinfo=UTC))
    assert ops.tasks.get(every15s.id).next_run == datetime(2026, 1, 16, 13, 0, 15, tzinfo=UTC)
    ops.tasks.update(every15s.id, {"schedule": "0 * * * *"})  # a new schedule: its own
    assert ops.tasks.get(every15s.id).next_run == datetime(2026, 1, 16, 14, 0, tzinfo=UTC)


def test_scripts_lists_the_files_a_task_of_an_app_could_run(
    ops: taskops.TaskOps, site_dir: Path
) -> None:
    tasks_dir = site_dir / "apps" / "vault" / "tasks"
    (tasks_dir / "sub").mkdir()
    (tasks_dir / "sub" / "rotate.sh").write_text("#!/bin/sh\n")
    (tasks_dir / ".hidden.py").write_text("")
    (tasks_dir / "__pycache__").mkdir()
    (tasks_dir / "__pycache__" / "backup.cpython-311.pyc").write_bytes(b"")
    assert ops.tasks.scripts("vault") == ["tasks/backup.py", "tasks/sub/rotate.sh"]
    assert ops.tasks.scripts("global") == ["tasks/cleanup.py", "tasks/heartbeat.py"]
    with pytest.raises(InvalidInput, match="unknown app"):
        ops.tasks.scripts("nope")


# -- create -----------------------------------------------------------------------------------


def test_create_custom_task_persists(ops: taskops.TaskOps, site_dir: Path) -> None:
    task = ops.tasks.create(custom(description="Rotate keys", parameters={"KEEP": 3}))
    assert task.id == "vault.Rotate" and not task.is_default
    assert task.created_at == ops.clock.now()
    with taskops.open_site(site_dir) as again:
        reread = again.tasks.get("vault.Rotate")
        assert reread.spec.parameters == {"KEEP": 3}
        assert reread.spec.description == "Rotate keys"
    record = last_audit(ops)
    assert record["action"] == "task.create"
    assert record["user"] == "alice"
    assert record["target"] == "vault.Rotate"
    assert record["result"] == "success"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"schedule": "61 * * * *"}, "schedule", "minute"),
        ({"schedule": "* * * *"}, "schedule", "5"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"name": "bad name!"}, "name", "not a valid name"),
        ({"color": "red"}, "color", "unknown field"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"termination": {"maxRuntime": -1}}, "termination.maxRuntime", "between"),
        ({"termination": {"maxRunTime": 5}}, "termination.maxRunTime", "unknown field"),
        ({"parameters": {"A": [1, 2]}}, "parameters.A", "string, number or boolean"),
        ({"scriptPath": "../../../etc/passwd"}, "scriptPath", "outside the site"),
        ({"scriptPath": "/etc/passwd"}, "scriptPath", "relative"),
        ({"app": "nowhere"}, "app", "unknown app"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(
    ops: taskops.TaskOps, fields: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        ops.tasks.create(custom(**fields))
    assert words.lower() in str(caught.value).lower()
    assert field in caught.value.fields() or caught.value.fields() == {}
    if caught.value.problems:
        assert field in caught.value.fields()
    assert ops.store.custom_tasks() == []
    record = last_audit(ops)
    assert record["action"] == "task.create" and record["result"] == "failure"


def test_create_reports_every_problem_at_once(ops: taskops.TaskOps) -> None:
    with pytest.raises(InvalidInput) as caught:
        ops.tasks.create(custom(schedule="nope", enabled=3, extra=1))
    assert set(caught.value.fields()) == {"schedule", "enabled", "extra"}


def test_create_refuses_symlink_out_of_the_site(
    ops: taskops.TaskOps, site_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def run(ctx): pass\n")
    (site_dir / "apps" / "vault" / "tasks" / "link.py").symlink_to(outside)
    with pytest.raises(InvalidInput, match="outside the site"):
        ops.tasks.create(custom(scriptPath="tasks/link.py"))


def test_create_allows_dotdot_inside_the_site(ops: taskops.TaskOps) -> None:
    task = ops.tasks.create(custom(scriptPath="../../tasks/cleanup.py"))
    assert task.spec.script_path == "../../tasks/cleanup.py"


def test_create_conflicts_with_existing_names(ops: taskops.TaskOps) -> None:
    ops.tasks.create(custom())
    with pytest.raises(Conflict):
        ops.tasks.create(custom())
    with pytest.raises(Conflict):
        ops.tasks.create(custom(name="VaultBackup"))


# -- update, enable, disable ------------------------------------------------------------------


def test_editing_a_default_task_overrides_only_that_field(
    ops: taskops.TaskOps, site_dir: Path
) -> None:
    task = ops.tasks.update("vault.VaultBackup", {"schedule": "45 2 * * *"})
    assert task.spec.schedule == "45 2 * * *"
    assert task.overridden == {"schedule"}
    # The YAML changes later: every field not overridden follows it.
    path = site_dir / "apps" / "vault" / "config" / "tasks.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["tasks"][0]["description"] = "Back up the vault, nightly"
    doc["tasks"][0]["schedule"] = "0 0 * * *"
    path.write_text(yaml.safe_dump(doc))
    task = ops.tasks.get("vault.VaultBackup")
    assert task.spec.description == "Back up the vault, nightly"
    assert task.spec.schedule == "45 2 * * *"


def test_setting_a_field_back_to_the_yaml_value_drops_the_override(ops: taskops.TaskOps) -> None:
    ops.tasks.update("vault.VaultBackup", {"termination": {"maxRuntime": 120}})
    task = ops.tasks.get("vault.VaultBackup")
    assert task.spec.termination.max_runtime == 120
    assert task.spec.termination.max_failures == 2
    assert task.overridden == {"termination.maxRuntime"}
    task = ops.tasks.update("vault.VaultBackup", {"termination": {"maxRuntime": 60}})
    assert task.overridden == frozenset()


def test_a_value_of_another_type_is_a_change_even_when_python_calls_it_equal(
    ops: taskops.TaskOps,
) -> None:
    """1, 1.0 and true are equal in Python, not in the YAML or the JSON a user sees."""
    task = ops.tasks.update("global.Cleanup", {"parameters": {"RETENTION_DAYS": True}})
    assert task.spec.parameters == {"RETENTION_DAYS": True}
    assert task.spec.parameters["RETENTION_DAYS"] is True
    assert task.overridden == {"parameters"}
    task = ops.tasks.update("global.Cleanup", {"parameters": {"RETENTION_DAYS": 30.0}})
    assert type(task.spec.parameters["RETENTION_DAYS"]) is float
    assert ops.tasks.get("global.Cleanup").overridden == {"parameters"}
    task = ops.tasks.update("global.Cleanup", {"parameters": {"RETENTION_DAYS": 30}})
    assert type(task.spec.parameters["RETENTION_DAYS"]) is int
    assert task.overridden == frozenset()  # the YAML's value again: no override


def test_default_task_script_path_and_name_are_read_only(ops: taskops.TaskOps) -> None:
    with pytest.raises(InvalidInput, match="read-only"):
        ops.tasks.update("vault.VaultBackup", {"scriptPath": "tasks/other.py"})
    with pytest.raises(InvalidInput, match="read-only"):
        ops.tasks.update("vault.VaultBackup", {"name": "Renamed"})
    # An edit form sends every field back: unchanged values are fine.
    task = ops.tasks.update(
        "vault.VaultBackup",
        {"name": "VaultBackup", "scriptPath": "tasks/backup.py", "description": "x"},
    )
    assert task.spec.description == "x"


def test_update_refuses_bad_input_and_keeps_the_task(ops: taskops.TaskOps) -> None:
    before = ops.tasks.get("global.Cleanup")
    with pytest.raises(InvalidInput):
        ops.tasks.update("global.Cleanup", {"schedule": "0 25 * * *"})
    with pytest.raises(InvalidInput):
        ops.tasks.update("global.Cleanup", {})
    with pytest.raises(InvalidInput, match="app"):
        ops.tasks.update("global.Cleanup", {"app": "vault"})
    assert ops.tasks.get("global.Cleanup") == before


def test_masked_secret_sent_back_keeps_its_value(ops: taskops.TaskOps) -> None:
    shown = ops.tasks.get("global.Cleanup").to_dict()["environment"]
    task = ops.tasks.update("global.Cleanup", {"environment": {**shown, "EXTRA": "1"}})
    assert task.spec.environment == {"DATA_PATH": "data", "API_TOKEN": "s3cr3t-value", "EXTRA": "1"}
    assert "s3cr3t" not in ops.audit_log.path.read_text()


def test_rename_custom_task_moves_its_history(ops: taskops.TaskOps) -> None:
    ops.tasks.create(custom())
    now = ops.clock.now()
    ops.store.insert_job(
        name="Task_Rotate_x",
        owner="Manual",
        state=JobState.COMPLETED,
        queued_at=now,
        task_id="vault.Rotate",
        started_at=now,
        ended_at=now,
    )
    task = ops.tasks.update("vault.Rotate", {"name": "RotateKeys"})
    assert task.id == "vault.RotateKeys"
    assert [j.name for j in ops.tasks.history("vault.RotateKeys")] == ["Task_Rotate_x"]
    with pytest.raises(NotFound):
        ops.tasks.get("vault.Rotate")
    with pytest.raises(Conflict):
        ops.tasks.update("vault.RotateKeys", {"name": "VaultBackup"})


def test_enable_and_disable(ops: taskops.TaskOps) -> None:
    task = ops.tasks.enable("global.Heartbeat")
    assert task.status is TaskStatus.ENABLED and task.next_run is not None
    assert task.overridden == {"enabled"}
    assert last_audit(ops)["action"] == "task.enable"
    task = ops.tasks.disable("global.Heartbeat")
    assert task.status is TaskStatus.DISABLED and task.overridden == frozenset()
    assert last_audit(ops)["action"] == "task.disable"
    ops.tasks.create(custom())
    assert ops.tasks.disable("vault.Rotate").enabled is False


# -- duplicate, copy, export -----------------------------------------------------------------


def test_duplicate(ops: taskops.TaskOps) -> None:
    first = ops.tasks.duplicate("vault.VaultBackup")
    second = ops.tasks.duplicate("vault.VaultBackup")
    assert (first.id, second.id) == ("vault.VaultBackup_copy", "vault.VaultBackup_copy2")
    assert not first.is_default
    assert first.spec.script_path == "tasks/backup.py"
    assert first.spec.termination.max_failures == 2
    hourly = ops.tasks.duplicate("vault.VaultBackup", name="HourlyBackup", schedule="0 * * * *")
    assert hourly.spec.schedule == "0 * * * *"
    assert last_audit(ops)["details"]["newId"] == "vault.HourlyBackup"
    with pytest.raises(Conflict):
        ops.tasks.duplicate("vault.VaultBackup", name="HourlyBackup")
    with pytest.raises(InvalidInput):
        ops.tasks.duplicate("vault.VaultBackup", name="Other", schedule="every day")


def test_copy_to_another_app_runs_the_same_script(ops: taskops.TaskOps, site_dir: Path) -> None:
    copied = ops.tasks.copy("global.Cleanup", "vault")
    assert copied.id == "vault.Cleanup" and copied.app == "vault"
    assert copied.spec.script_path == "../../tasks/cleanup.py"
    assert (
        ops.site.resolve_script("vault", copied.spec.script_path)
        == (site_dir / "tasks" / "cleanup.py").resolve()
    )
    back = ops.tasks.copy("vault.VaultBackup", "global")
    assert back.spec.script_path == "apps/vault/tasks/backup.py"
    with pytest.raises(Conflict):
        ops.tasks.copy("global.Cleanup", "vault")
    with pytest.raises(InvalidInput, match="duplicate"):
        ops.tasks.copy("global.Cleanup", "global")
    with pytest.raises(InvalidInput, match="unknown app"):
        ops.tasks.copy("global.Cleanup", "Nowhere")


def test_export_is_masked_json_that_can_be_created_again(ops: taskops.TaskOps) -> None:
    exported = ops.tasks.export("global.Cleanup")
    assert exported["app"] == "global"
    assert exported["environment"]["API_TOKEN"] == MASK
    json.dumps(exported)
    exported.update(name="CleanupAgain")
    assert ops.tasks.create(exported).id == "global.CleanupAgain"


# -- delete, restore, bulk --------------------------------------------------------------------


def test_delete_default_marks_it_deleted_and_restore_brings_it_back(ops: taskops.TaskOps) -> None:
    ops.tasks.delete("vault.VaultBackup")
    assert "vault.VaultBackup" not in [t.id for t in ops.tasks.list()]
    assert ops.tasks.deleted() == ["vault.VaultBackup"]
    with pytest.raises(Conflict, match="restore"):
        ops.tasks.create(custom(name="VaultBackup"))
    assert ops.tasks.restore("vault.VaultBackup").id == "vault.VaultBackup"
    with pytest.raises(NotFound):
        ops.tasks.restore("vault.VaultBackup")


def test_delete_custom_removes_it(ops: taskops.TaskOps) -> None:
    ops.tasks.create(custom())
    ops.tasks.delete("vault.Rotate")
    assert ops.store.custom_tasks() == []
    assert last_audit(ops)["details"]["kind"] == "custom (removed)"
    with pytest.raises(NotFound):
        ops.tasks.delete("vault.Rotate")


def test_bulk_actions_say_what_they_skipped(ops: taskops.TaskOps) -> None:
    ops.tasks.create(custom())
    ops.tasks.create(custom(name="Rotate2"))
    result = ops.tasks.bulk_delete(
        ["vault.Rotate", "vault.VaultBackup", "vault.Rotate2", "vault.Nope"]
    )
    assert result.done == ["vault.Rotate", "vault.Rotate2"]
    assert set(result.skipped) == {"vault.VaultBackup", "vault.Nope"}
    assert "default task" in result.skipped["vault.VaultBackup"]
    assert "vault.VaultBackup" in [t.id for t in ops.tasks.list()]
    result = ops.tasks.bulk_disable(["global.Cleanup", "vault.VaultBackup"])
    assert result.done == ["global.Cleanup", "vault.VaultBackup"] and not result.skipped
    assert ops.tasks.list(enabled=True) == [
        ops.tasks.get(i)
        for i in ("WebHostMetrics.MetricsCollection", "WebHostMetrics.MetricsCsvCleanup")
    ]
    result = ops.tasks.bulk_enable(["global.Cleanup", "x.y"])
    assert result.done == ["global.Cleanup"] and "x.y" in result.skipped


# -- audit ------------------------------------------------------------------------------------


def test_every_change_appends_one_json_line(ops: taskops.TaskOps) -> None:
    ops.tasks.disable("global.Cleanup")
    ops.tasks.enable("global.Cleanup")
    ops.tasks.create(custom(environment={"DB_PASSWORD": "hunter2"}))
    ops.tasks.duplicate("vault.Rotate")
    ops.tasks.copy("vault.Rotate", "global")
    ops.tasks.update("vault.Rotate", {"description": "d"})
    ops.tasks.delete("vault.Rotate_copy")
    with pytest.raises(NotFound):
        ops.tasks.delete("vault.Nope")
    lines = ops.audit_log.path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["action"] for r in records] == [
        "task.disable",
        "task.enable",
        "task.create",
        "task.duplicate",
        "task.copy",
        "task.update",
        "task.delete",
        "task.delete",
    ]
    for record in records:
        assert set(record) >= {"time", "user", "action", "target", "details", "result"}
        assert record["user"] == "alice"
    assert records[-1]["result"] == "failure" and "no task" in records[-1]["error"]
    assert "hunter2" not in ops.audit_log.path.read_text()


def test_as_user_audits_as_that_user(ops: taskops.TaskOps) -> None:
    ops.as_user("bob").tasks.disable("global.Cleanup")
    assert last_audit(ops)["user"] == "bob"
    assert ops.user == "alice"
