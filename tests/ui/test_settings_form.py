"""The Settings screen as widgets, on a real temporary site: type, click, and check what the
service holds and what the overrides file on disk says."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

import taskops
from taskops.settings import packaged_defaults
from taskops.ui.settings_form import SettingsForm

KEYS = [
    "taskHistoryRetention",
    "maxConcurrentTasks",
    "enableNotifications",
    "notificationWebhook",
    "defaultTaskTimeout",
    "autoRefreshInterval",
    "runspaceMemoryWarning",
    "runspaceAgeWarning",
]


def record_updates(ops: taskops.TaskOps, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``changes`` the form sends to ``ops.settings.update`` (which still runs)."""
    sent: list[dict[str, Any]] = []
    real = ops.settings.update

    def update(changes: Mapping[str, Any]) -> dict[str, Any]:
        sent.append(dict(changes))
        return real(changes)

    monkeypatch.setattr(ops.settings, "update", update)
    return sent


def reopened(site_dir: Path) -> dict[str, Any]:
    """The settings as a new process opening the site reads them."""
    with taskops.open_site(site_dir) as other:
        return other.settings.get()


def test_every_setting_shows_its_value_default_and_meaning(ops: taskops.TaskOps) -> None:
    ops.settings.update({"maxConcurrentTasks": 4, "enableNotifications": False})
    form = SettingsForm(ops)
    assert list(form.inputs) == KEYS
    settings = ops.settings.get()
    assert form.inputs["maxConcurrentTasks"].value == "4"
    assert form.inputs["autoRefreshInterval"].value == "5"  # not "5.0"
    assert form.inputs["notificationWebhook"].value == ""
    assert form.inputs["enableNotifications"].value is False
    assert isinstance(form.inputs["enableNotifications"], widgets.Checkbox)
    assert form.values() == settings
    for key in KEYS:
        assert f"taskops-setting-{key}" in form.inputs[key]._dom_classes
        assert form.errors[key].value == ""
        assert f"taskops-settings-error-{key}" in form.errors[key]._dom_classes
    assert not form.dirty and form.changes() == {}
    text = widgets_text(form)
    assert "default: 10" in text and "default: 86400" in text and "default: (empty)" in text
    assert "Jobs that may run at once" in text and "(seconds)" in text
    assert "without a restart" in form.note.value and form.file_warning.value == ""
    assert "taskops-settings" in form._dom_classes
    assert form.save_button.button_style == "primary"


def widgets_text(widget: widgets.Widget) -> str:
    """The HTML of every HTML widget inside ``widget``."""
    if isinstance(widget, widgets.HTML):
        return str(widget.value)
    return " ".join(widgets_text(child) for child in getattr(widget, "children", ()))


def test_save_writes_only_the_changed_values(
    ops: taskops.TaskOps, site_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_updates(ops, monkeypatch)
    saved: list[dict[str, Any]] = []
    form = SettingsForm(ops, on_saved=saved.append)
    form.inputs["autoRefreshInterval"].value = "1"
    form.inputs["runspaceMemoryWarning"].value = " 50 "
    assert form.dirty
    form.save_button.click()
    assert sent == [{"autoRefreshInterval": 1.0, "runspaceMemoryWarning": 50.0}]
    assert form.alerts.messages[0] == (
        "success",
        "Saved settings: autoRefreshInterval 1, runspaceMemoryWarning 50",
    )
    written = json.loads(ops.site.settings_file.read_text("utf-8"))
    assert written == {"autoRefreshInterval": 1.0, "runspaceMemoryWarning": 50.0}
    again = reopened(site_dir)
    assert again["autoRefreshInterval"] == 1 and again["runspaceMemoryWarning"] == 50
    assert again["maxConcurrentTasks"] == packaged_defaults()["maxConcurrentTasks"]
    assert saved == [ops.settings.get()]
    assert not form.dirty and form.inputs["runspaceMemoryWarning"].value == "50"
    # a checkbox and a text setting, saved the same way; nothing changed sends nothing
    form.inputs["enableNotifications"].value = False
    form.inputs["notificationWebhook"].value = "https://hooks.example.com/taskops"
    form.save_button.click()
    assert sent[-1] == {
        "enableNotifications": False,
        "notificationWebhook": "https://hooks.example.com/taskops",
    }
    assert reopened(site_dir)["notificationWebhook"] == "https://hooks.example.com/taskops"
    form.save_button.click()
    assert len(sent) == 2 and form.alerts.messages[0] == ("info", "No changes to save")


@pytest.mark.parametrize(
    ("key", "typed", "message"),
    [
        ("maxConcurrentTasks", "abc", "must be a number, not str &#x27;abc&#x27;"),
        ("defaultTaskTimeout", "1.5", "must be a whole number, not 1.5"),
        ("autoRefreshInterval", "0.1", "must be at least 0.5, not 0.1"),
        ("runspaceAgeWarning", "", "must be a number, not str &#x27;&#x27;"),
        ("notificationWebhook", "hooks.example.com", "must be an http:// or https:// URL"),
    ],
)
def test_a_bad_value_shows_the_services_message_and_saves_nothing(
    ops: taskops.TaskOps, site_dir: Path, key: str, typed: str, message: str
) -> None:
    ops.settings.update({"maxConcurrentTasks": 4})
    file_before = ops.site.settings_file.read_bytes()
    settings_before = ops.settings.get()
    form = SettingsForm(ops)
    form.inputs["taskHistoryRetention"].value = "7"  # valid, but refused along with the bad one
    form.inputs[key].value = typed
    form.save_button.click()
    assert message in form.errors[key].value
    assert all(form.errors[other].value == "" for other in KEYS if other != key)
    kind, text = form.alerts.messages[0]
    assert kind == "error" and text.startswith(f"{key}: ")
    assert ops.site.settings_file.read_bytes() == file_before
    assert ops.settings.get() == settings_before == reopened(site_dir)
    assert form.inputs[key].value == typed and form.inputs["taskHistoryRetention"].value == "7"
    assert form.dirty
    # fixed, it saves, and the error goes
    form.inputs[key].value = "https://hooks.example.com" if key == "notificationWebhook" else "9"
    form.save_button.click()
    assert form.alerts.messages[0][0] == "success" and form.errors[key].value == ""
    assert reopened(site_dir)["taskHistoryRetention"] == 7


def test_reset_fills_the_defaults_and_save_applies_them(
    ops: taskops.TaskOps, site_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops.settings.update({"maxConcurrentTasks": 4, "enableNotifications": False})
    sent = record_updates(ops, monkeypatch)
    form = SettingsForm(ops)
    form.reset_button.click()
    assert form.inputs["maxConcurrentTasks"].value == "10"
    assert form.inputs["enableNotifications"].value is True
    assert form.dirty and sent == []  # nothing saved yet
    assert reopened(site_dir)["maxConcurrentTasks"] == 4
    form.save_button.click()
    assert sent == [{"maxConcurrentTasks": 10, "enableNotifications": True}]
    assert json.loads(ops.site.settings_file.read_text("utf-8")) == {}
    assert reopened(site_dir) == ops.settings.get() == {key: form.defaults[key] for key in KEYS}


def test_reload_drops_edits_and_reads_what_changed_elsewhere(
    ops: taskops.TaskOps, site_dir: Path
) -> None:
    form = SettingsForm(ops)
    form.inputs["maxConcurrentTasks"].value = "abc"
    form.save_button.click()
    assert form.errors["maxConcurrentTasks"].value
    with taskops.open_site(site_dir) as other:  # another process saves
        other.settings.update({"runspaceAgeWarning": 3600})
    form.reload_button.click()
    assert form.inputs["maxConcurrentTasks"].value == "10"
    assert form.inputs["runspaceAgeWarning"].value == "3600"
    assert not form.dirty and form.errors["maxConcurrentTasks"].value == ""


def test_refresh_keeps_unsaved_edits_and_save_keeps_changes_made_elsewhere(
    ops: taskops.TaskOps, site_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_updates(ops, monkeypatch)
    form = SettingsForm(ops)
    form.inputs["taskHistoryRetention"].value = "14"
    with taskops.open_site(site_dir) as other:
        other.settings.update({"runspaceAgeWarning": 3600})
    form.refresh()
    assert form.inputs["taskHistoryRetention"].value == "14"
    assert form.inputs["runspaceAgeWarning"].value == "86400"  # the form is left as it was
    form.save_button.click()
    assert sent == [{"taskHistoryRetention": 14}]
    assert form.inputs["runspaceAgeWarning"].value == "3600"
    assert reopened(site_dir)["runspaceAgeWarning"] == 3600
    # with no edits, a refresh shows what changed elsewhere
    with taskops.open_site(site_dir) as other:
        other.settings.update({"maxConcurrentTasks": 3})
    form.refresh()
    assert form.inputs["maxConcurrentTasks"].value == "3" and not form.dirty


def test_a_broken_settings_file_shows_as_a_warning_and_save_replaces_it(
    ops: taskops.TaskOps, site_dir: Path
) -> None:
    ops.site.settings_file.parent.mkdir(parents=True, exist_ok=True)
    ops.site.settings_file.write_text("{not json", "utf-8")
    form = SettingsForm(ops)
    assert "app.json" in form.file_warning.value and "defaults apply" in form.file_warning.value
    assert form.inputs["maxConcurrentTasks"].value == "10"
    form.inputs["maxConcurrentTasks"].value = "6"
    form.save_button.click()
    assert form.file_warning.value == ""
    assert json.loads(ops.site.settings_file.read_text("utf-8")) == {"maxConcurrentTasks": 6}
    assert reopened(site_dir)["maxConcurrentTasks"] == 6


def test_an_unexpected_error_shows_in_the_alerts(
    ops: taskops.TaskOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_changes: Mapping[str, Any]) -> dict[str, Any]:
        raise OSError("disk full")

    form = SettingsForm(ops)
    monkeypatch.setattr(ops.settings, "update", broken)
    form.inputs["maxConcurrentTasks"].value = "6"
    form.save_button.click()
    assert form.alerts.messages[0] == ("error", "unexpected error: OSError: disk full")
    assert form.inputs["maxConcurrentTasks"].value == "6" and form.dirty
