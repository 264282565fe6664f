"""Settings: packaged defaults, validated overrides in <data>/config/app.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import taskops
from taskops.errors import InvalidInput
from taskops.settings import SETTINGS

SEED_DEFAULTS = {
    "taskHistoryRetention": 30,
    "maxConcurrentTasks": 10,
    "enableNotifications": True,
    "defaultTaskTimeout": 600,
    "autoRefreshInterval": 5,
    "runspaceMemoryWarning": 100,
    "runspaceAgeWarning": 86400,
}
# Added by taskops: where notifications are POSTed (empty: nowhere).
DEFAULTS = {**SEED_DEFAULTS, "notificationWebhook": ""}


def test_packaged_defaults_are_the_seeds(ops: taskops.TaskOps) -> None:
    assert ops.settings.get() == DEFAULTS
    assert set(SETTINGS) == set(DEFAULTS)
    described = ops.settings.describe()
    assert {d["key"] for d in described} == set(DEFAULTS)
    assert all(d["meaning"] for d in described)


def test_update_saves_overrides_seen_by_another_process(
    ops: taskops.TaskOps, site_dir: Path
) -> None:
    merged = ops.settings.update({"maxConcurrentTasks": 4, "autoRefreshInterval": 2})
    assert merged["maxConcurrentTasks"] == 4 and merged["autoRefreshInterval"] == 2
    saved = json.loads((site_dir / "data" / "config" / "app.json").read_text())
    assert saved == {"maxConcurrentTasks": 4, "autoRefreshInterval": 2}
    with taskops.open_site(site_dir) as other:
        assert other.settings.get()["maxConcurrentTasks"] == 4
        other.settings.update({"enableNotifications": False})
    assert ops.settings.get()["enableNotifications"] is False
    # Back to the default value: the override goes away.
    ops.settings.update({"maxConcurrentTasks": 10})
    saved = json.loads((site_dir / "data" / "config" / "app.json").read_text())
    assert "maxConcurrentTasks" not in saved
    record = list(ops.audit_log.records())[-1]
    assert record["action"] == "settings.update" and record["result"] == "success"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"colour": "blue"}, "colour", "unknown setting"),
        ({"maxConcurrentTasks": "10"}, "maxConcurrentTasks", "must be a number"),
        ({"maxConcurrentTasks": True}, "maxConcurrentTasks", "must be a number"),
        ({"maxConcurrentTasks": 2.5}, "maxConcurrentTasks", "whole number"),
        ({"maxConcurrentTasks": 0}, "maxConcurrentTasks", "at least 1"),
        ({"enableNotifications": 1}, "enableNotifications", "true or false"),
        ({"autoRefreshInterval": 0.1}, "autoRefreshInterval", "at least 0.5"),
        ({"taskHistoryRetention": None}, "taskHistoryRetention", "must be a number"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_written(
    ops: taskops.TaskOps, site_dir: Path, changes: dict[str, object], field: str, words: str
) -> None:
    ops.settings.update({"defaultTaskTimeout": 300})
    before = (site_dir / "data" / "config" / "app.json").read_bytes()
    with pytest.raises(InvalidInput) as caught:
        ops.settings.update(changes)
    assert field in caught.value.fields()
    assert words in caught.value.fields()[field]
    assert (site_dir / "data" / "config" / "app.json").read_bytes() == before
    assert ops.settings.get()["defaultTaskTimeout"] == 300
    assert list(ops.audit_log.records())[-1]["result"] == "failure"


def test_broken_overrides_file_falls_back_to_defaults_and_says_so(
    ops: taskops.TaskOps, site_dir: Path
) -> None:
    path = site_dir / "data" / "config" / "app.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert ops.settings.get() == DEFAULTS
    (error,) = ops.site_errors()
    assert "app.json" in error.file and "defaults apply" in error.message
    path.write_text(json.dumps({"maxConcurrentTasks": "many"}))
    assert ops.settings.get() == DEFAULTS
    assert "maxConcurrentTasks" in ops.site_errors()[0].message
    ops.settings.update({"maxConcurrentTasks": 3})
    assert ops.site_errors() == []


def test_webhook_must_be_an_http_url(ops: taskops.TaskOps) -> None:
    with pytest.raises(InvalidInput, match="notificationWebhook"):
        ops.settings.update({"notificationWebhook": "ftp://example.org/x"})
    with pytest.raises(InvalidInput, match="must be a string"):
        ops.settings.update({"notificationWebhook": 5})
    assert ops.settings.get()["notificationWebhook"] == ""
    saved = ops.settings.update({"notificationWebhook": " http://127.0.0.1:9/hook "})
    assert saved["notificationWebhook"] == "http://127.0.0.1:9/hook"
