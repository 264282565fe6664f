"""The Tasks screens as widgets, without a browser: build them on a temporary demo site,
click, and check the service's state (the same site a browser would change)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import ipywidgets.widgets.widget as widget_module
import pytest

import taskops
from taskops.model import JobState, TaskStatus
from taskops.testing import FakeClock, make_site, wait_for
from taskops.ui import Dashboard, TaskList
from taskops.ui.feedback import Alerts
from taskops.ui.screen import SEARCH_PAUSE, Debounced
from taskops.ui.task_detail import TABS


def ids(screen: TaskList) -> list[str]:
    return [row["id"] for row in screen.table.items]


def live_widgets() -> int:
    return len(widget_module._instances)


# -- the list ------------------------------------------------------------------------------


def test_quick_stats_and_rows_match_the_service(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    summary = demo_ops.tasks.summary()
    shown = {key: widget.value for key, widget in screen.stat_values.items()}
    for key, value in summary.items():
        assert f">{value}<" in shown[key], (key, shown[key])
    assert screen.table.total == len(demo_ops.tasks.list()) == 9
    row = next(r for r in screen.table.items if r["id"] == "vault.VaultKeyRotation")
    assert row["schedule"] == "30 2 * * *"
    assert row["scheduleText"].startswith("At 02:30")
    assert row["status"] == "Enabled"
    assert row["nextRun"] != "—" and row["lastRun"] == "—"
    disabled = next(r for r in screen.table.items if r["id"] == "global.DiskUsageReport")
    assert disabled["status"] == "Disabled" and disabled["nextRun"] == "—"


def test_filters_by_app_status_and_text(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    screen.app_filter.value = "vault"
    assert ids(screen) == ["vault.VaultBackup", "vault.VaultKeyRotation"]
    screen.app_filter.value = "All"
    screen.status_filter.value = "Disabled"
    assert ids(screen) == ["global.DiskUsageReport"]
    screen.status_filter.value = "All"
    screen.search.value = "GZIP"  # in LogRotation's description, any case
    assert ids(screen) == ["global.LogRotation"]
    screen.search.value = "metrics"
    assert set(ids(screen)) >= {"WebHostMetrics.MetricsCollection", "global.HealthCheck"}
    screen.search.value = "no such thing"
    assert ids(screen) == [] and screen.table.total == 0


def test_sorts_by_any_column(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    screen.table.vue_options(
        {"page": 1, "itemsPerPage": 25, "sortBy": [{"key": "name", "order": "desc"}]}
    )
    names = [row["name"] for row in screen.table.items]
    assert names == sorted(names, key=str.lower, reverse=True)
    screen.table.vue_options(
        {"page": 1, "itemsPerPage": 25, "sortBy": [{"key": "nextRun", "order": "asc"}]}
    )
    assert screen.table.items[-1]["nextRun"] == "—"  # no next run (disabled) sorts last
    screen.table.vue_options(
        {"page": 1, "itemsPerPage": 25, "sortBy": [{"key": "app", "order": "asc"}]}
    )
    apps = [row["app"] for row in screen.table.items]
    assert apps == sorted(apps, key=str.lower)


def test_ten_thousand_tasks_cost_one_page_of_rows(tmp_path: Path) -> None:
    """The table holds one page; paging and sorting happen in Python, and the number of
    widgets does not grow with the number of tasks."""

    def build(count: int) -> tuple[TaskList, int]:
        tasks = [
            {"name": f"T{i:05d}", "schedule": f"{i % 60} * * * *", "scriptPath": "tasks/t.py"}
            for i in range(count)
        ]
        site = make_site(tmp_path / f"site{count}", {"global": tasks}, timezone="UTC")
        ops = taskops.open_site(site)
        before = live_widgets()
        screen = TaskList(ops)
        return screen, live_widgets() - before

    _small, small_widgets = build(10)
    big, big_widgets = build(10_000)
    assert big.table.total == 10_000
    assert len(big.table.items) == 25
    assert big_widgets == small_widgets
    big.table.vue_options(
        {"page": 400, "itemsPerPage": 25, "sortBy": [{"key": "name", "order": "desc"}]}
    )
    assert [row["name"] for row in big.table.items][:2] == ["T00024", "T00023"]
    big.table.vue_options({"page": 9999, "itemsPerPage": 100, "sortBy": []})
    assert big.table.page == 100  # clamped to the last page
    assert big.table.items[-1]["name"] == "T09999"


def test_a_tick_shows_what_changed_elsewhere_in_the_screen_shown(
    demo_ops: taskops.TaskOps,
) -> None:
    screen = TaskList(demo_ops)
    screen.ticker.interval = 0  # no tick is dropped as too soon
    demo_ops.tasks.disable("vault.VaultBackup")  # say, through the API or another page
    screen.ticker.tick()
    row = next(r for r in screen.table.items if r["id"] == "vault.VaultBackup")
    assert row["status"] == "Disabled"
    assert ">7<" in screen.stat_values["enabled"].value
    detail = open_detail(screen, "vault.VaultBackup")
    demo_ops.tasks.enable("vault.VaultBackup")
    screen.ticker.tick()
    assert "Enabled" in detail.heading.value and detail.enabled_toggle.value is True
    # a new refresh interval applies without a restart
    demo_ops.settings.update({"autoRefreshInterval": 2})
    detail.back_button.click()
    assert screen.ticker.interval == 2


# -- row actions ---------------------------------------------------------------------------


def test_row_actions_change_the_service_and_show_at_once(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    screen.table.vue_act({"action": "disable", "id": "vault.VaultBackup"})
    assert not demo_ops.tasks.get("vault.VaultBackup").enabled
    row = next(r for r in screen.table.items if r["id"] == "vault.VaultBackup")
    assert row["status"] == "Disabled" and not row["enabled"]
    assert ("success", "Disabled vault.VaultBackup") in screen.alerts.messages
    screen.table.vue_act({"action": "enable", "id": "vault.VaultBackup"})
    assert demo_ops.tasks.get("vault.VaultBackup").enabled

    screen.table.vue_act({"action": "run", "id": "global.DiskUsageReport"})
    jobs = demo_ops.jobs.list(task="global.DiskUsageReport")
    assert len(jobs) == 1 and jobs[0].owner == "Manual"
    kind, text = screen.alerts.messages[0]
    assert kind == "success" and f"job {jobs[0].id}" in text
    # a second run while the first waits is refused; the error shows in the alerts
    screen.table.vue_act({"action": "run", "id": "global.DiskUsageReport"})
    kind, text = screen.alerts.messages[0]
    assert kind == "error" and "running already" in text
    assert len(demo_ops.jobs.list(task="global.DiskUsageReport")) == 1


def test_duplicate_through_its_dialog(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    screen.table.vue_act({"action": "duplicate", "id": "vault.VaultKeyRotation"})
    dialog = screen.duplicator
    assert dialog.shown and dialog.name.value == "VaultKeyRotation_copy"
    assert dialog.schedule.value == "30 2 * * *"
    dialog.schedule.value = "61 2 * * *"
    assert "61" in dialog.schedule_text.value or "minute" in dialog.schedule_text.value.lower()
    dialog.duplicate_button.click()
    assert dialog.shown and "schedule" not in dialog.name_error.value
    assert dialog.schedule_error.value  # shown next to the field, nothing saved
    assert "vault.VaultKeyRotation_copy" not in [t.id for t in demo_ops.tasks.list()]
    dialog.schedule.value = "0 4 * * 1"
    dialog.name.value = "WeeklyRotation"
    dialog.duplicate_button.click()
    assert not dialog.shown
    copy = demo_ops.tasks.get("vault.WeeklyRotation")
    assert copy.spec.schedule == "0 4 * * 1" and not copy.is_default
    assert copy.spec.environment["VAULT_TOKEN"] == "demo-vault-token-2f6c1a"  # the real secret
    assert "vault.WeeklyRotation" in ids(screen)


def test_delete_asks_first_and_treats_default_and_custom_tasks_apart(
    demo_ops: taskops.TaskOps,
) -> None:
    demo_ops.tasks.duplicate("global.HealthCheck", name="Mine")
    screen = TaskList(demo_ops)
    screen.table.vue_act({"action": "delete", "id": "global.Mine"})
    assert screen.confirm.shown and "custom task" in screen.confirm.text.value
    screen.confirm.cancel_button.click()
    assert not screen.confirm.shown and "global.Mine" in ids(screen)
    screen.table.vue_act({"action": "delete", "id": "global.Mine"})
    screen.confirm.confirm_button.click()
    assert "global.Mine" not in [t.id for t in demo_ops.tasks.list()]
    screen.table.vue_act({"action": "delete", "id": "global.HealthCheck"})
    assert "can be restored" in screen.confirm.text.value
    screen.confirm.confirm_button.click()
    assert demo_ops.tasks.deleted() == ["global.HealthCheck"]
    assert "global.HealthCheck" not in ids(screen)
    # a deleted default task can be brought back from the list
    assert screen.restore_box.layout.display == "flex"
    assert screen.deleted_choice.options == ("global.HealthCheck",)
    screen.restore_button.click()
    assert demo_ops.tasks.deleted() == [] and "global.HealthCheck" in ids(screen)
    assert screen.restore_box.layout.display == "none"


def test_bulk_actions_on_checked_rows(demo_ops: taskops.TaskOps) -> None:
    custom = demo_ops.tasks.duplicate("vault.VaultBackup", name="Extra")
    screen = TaskList(demo_ops)
    assert screen.bulk_disable_button.disabled
    screen.table.selected = ["vault.VaultBackup", "global.LogRotation"]
    assert not screen.bulk_disable_button.disabled
    assert "2 checked" in screen.selection_label.value
    screen.bulk_disable_button.click()
    assert not demo_ops.tasks.get("vault.VaultBackup").enabled
    assert not demo_ops.tasks.get("global.LogRotation").enabled
    assert screen.table.selected == [] and screen.bulk_disable_button.disabled
    assert screen.alerts.messages[0][0] == "success"

    screen.table.selected = ["vault.VaultBackup", custom.id]
    screen.bulk_delete_button.click()
    assert screen.confirm.shown
    screen.confirm.confirm_button.click()
    assert custom.id not in [t.id for t in demo_ops.tasks.list()]
    assert "vault.VaultBackup" in [t.id for t in demo_ops.tasks.list()]
    warning = next(text for kind, text in screen.alerts.messages if kind == "warning")
    assert "Skipped 1" in warning and "vault.VaultBackup" in warning


# -- the editor ----------------------------------------------------------------------------


def test_new_task_is_created_from_the_form(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    screen.new_button.click()
    editor = screen.editor
    assert editor.shown and editor.title == "New Task"
    editor.name.value = "NightlyReport"
    editor.description.value = "Report at night"
    editor.app.value = "vault"
    assert "tasks/backup_vault.py" in editor.script_path.options  # the Browse list
    editor.script_path.value = "tasks/backup_vault.py"
    editor.schedule.set("15 1 * * *")
    editor.parameters.add_row("KEEP", "7")
    editor.environment.add_row("API_TOKEN", "t0ps3cret")
    editor.max_runtime.value = "90"
    editor.save_button.click()
    assert not editor.shown, editor.form_error.value
    task = demo_ops.tasks.get("vault.NightlyReport")
    assert task.spec.schedule == "15 1 * * *"
    assert task.spec.parameters == {"KEEP": 7}
    assert task.spec.environment == {"API_TOKEN": "t0ps3cret"}
    assert task.spec.termination.max_runtime == 90
    assert "vault.NightlyReport" in [t.id for t in demo_ops.tasks.list()]
    assert "vault.NightlyReport" in ids(screen) or screen.table.total == 10


def test_invalid_input_shows_by_its_field_saves_nothing_and_keeps_the_input(
    demo_ops: taskops.TaskOps,
) -> None:
    screen = TaskList(demo_ops)
    screen.new_button.click()
    editor = screen.editor
    editor.name.value = "bad name!"
    editor.schedule.set("99 * * * *")
    editor.script_path.value = "../../outside.py"
    editor.max_failures.value = "many"
    before = [t.id for t in demo_ops.tasks.list()]
    editor.save_button.click()
    assert editor.shown
    assert editor.errors["name"].value
    assert editor.errors["schedule"].value
    assert editor.errors["termination.maxFailures"].value
    assert [t.id for t in demo_ops.tasks.list()] == before
    assert editor.name.value == "bad name!" and editor.max_failures.value == "many"
    assert screen.alerts.messages[0][0] == "error"
    # a name that is taken is a conflict, shown by the name
    editor.name.value = "HealthCheck"
    editor.app.value = "global"
    editor.schedule.set("0 * * * *")
    editor.script_path.value = "tasks/health_check.py"
    editor.max_failures.value = "3"
    editor.save_button.click()
    assert editor.shown and "exists already" in editor.errors["name"].value


def test_edit_a_default_task_keeps_name_and_script_and_sends_only_changes(
    demo_ops: taskops.TaskOps,
) -> None:
    screen = TaskList(demo_ops)
    screen.table.vue_act({"action": "edit", "id": "vault.VaultKeyRotation"})
    editor = screen.editor
    assert editor.shown and editor.name.disabled and editor.script_path.disabled
    # the secret is masked in the form, and saving the mask keeps the real value
    token_row = editor.environment.rows.children[0]
    assert token_row.children[1].value == "********"
    assert isinstance(token_row.children[1], widgets.Password)
    editor.description.value = "Rotate the signing key"
    editor.save_button.click()
    assert not editor.shown
    task = demo_ops.tasks.get("vault.VaultKeyRotation")
    assert task.spec.description == "Rotate the signing key"
    assert task.overridden == {"description"}
    assert task.spec.environment["VAULT_TOKEN"] == "demo-vault-token-2f6c1a"


# -- the detail ----------------------------------------------------------------------------


def open_detail(screen: TaskList, task_id: str) -> Any:
    screen.table.vue_open(task_id)
    assert screen.detail in screen.children and screen.list_view not in screen.children
    return screen.detail


def test_detail_shows_the_task_and_back_returns_to_the_list(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    screen.app_filter.value = "vault"
    detail = open_detail(screen, "vault.VaultKeyRotation")
    assert "VaultKeyRotation" in detail.heading.value and "Enabled" in detail.heading.value
    assert "api-signing-key" not in detail.overview.value  # parameters live in their tab
    assert "At 02:30" in detail.overview.value
    assert detail.script_path.disabled  # a default task's script path is read-only
    values = {
        row.children[0].value: row.children[1].value for row in detail.environment.rows.children
    }
    assert values == {"VAULT_TOKEN": "********"}
    detail.back_button.click()
    assert screen.list_view in screen.children
    assert ids(screen) == ["vault.VaultBackup", "vault.VaultKeyRotation"]  # filter kept


def test_detail_schedule_builder_saves_or_refuses(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    detail = open_detail(screen, "WebHostMetrics.MetricsCsvCleanup")
    detail.cron.set("0 */6 * * *", "Europe/Berlin")
    detail.save_schedule_button.click()
    task = demo_ops.tasks.get("WebHostMetrics.MetricsCsvCleanup")
    assert task.spec.schedule == "0 */6 * * *" and task.timezone == "Europe/Berlin"
    assert "0 */6 * * *" in detail.overview.value
    detail.cron.set("0 25 * * *")
    detail.save_schedule_button.click()
    assert detail.schedule_error.value
    assert demo_ops.tasks.get("WebHostMetrics.MetricsCsvCleanup").spec.schedule == "0 */6 * * *"


def test_detail_enable_toggle_script_test_and_termination(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    detail = open_detail(screen, "global.DiskUsageReport")
    assert detail.enabled_toggle.value is False
    detail.enabled_toggle.value = True
    assert demo_ops.tasks.get("global.DiskUsageReport").enabled
    assert "Enabled" in detail.heading.value
    detail.test_button.click()
    assert "taskops-test-ok" in detail.test_result.value
    detail.max_runtime.value = "abc"
    detail.save_termination_button.click()
    assert "maxRuntime" in detail.termination_error.value
    assert demo_ops.tasks.get("global.DiskUsageReport").spec.termination.max_runtime == 120
    detail.max_runtime.value = "300"
    detail.kill_on_timeout.value = False
    detail.save_termination_button.click()
    termination = demo_ops.tasks.get("global.DiskUsageReport").spec.termination
    assert termination.max_runtime == 300 and termination.kill_on_timeout is False


def test_detail_parameters_keep_masked_secrets(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    detail = open_detail(screen, "vault.VaultKeyRotation")
    detail.parameters.add_row("EXTRA", "true")
    detail.save_script_button.click()
    task = demo_ops.tasks.get("vault.VaultKeyRotation")
    assert task.spec.parameters["EXTRA"] is True
    assert task.spec.parameters["KEEP_VERSIONS"] == 3  # untouched values keep their type
    assert task.spec.environment["VAULT_TOKEN"] == "demo-vault-token-2f6c1a"
    detail.parameters.add_row("EXTRA", "again")
    detail.save_script_button.click()
    assert "twice" in detail.script_error.value


def test_detail_export_copy_and_delete(demo_ops: taskops.TaskOps) -> None:
    screen = TaskList(demo_ops)
    detail = open_detail(screen, "vault.VaultKeyRotation")
    filename, data = detail.export_button.prepare()
    exported = json.loads(data)
    assert filename == "vault.VaultKeyRotation.json"
    assert exported["app"] == "vault" and exported["environment"]["VAULT_TOKEN"] == "********"
    assert b"demo-vault-token" not in data
    detail.copy_target.value = "global"
    detail.copy_button.click()
    copied = demo_ops.tasks.get("global.VaultKeyRotation")
    assert demo_ops.tasks.check_script(copied.id)["exists"]
    detail = open_detail(screen, "global.VaultKeyRotation")
    detail.delete_button.click()
    screen.confirm.confirm_button.click()
    assert "global.VaultKeyRotation" not in [t.id for t in demo_ops.tasks.list()]
    assert screen.list_view in screen.children


def test_detail_chart_counts_every_run_of_the_last_7_days(
    ops: taskops.TaskOps, clock: FakeClock
) -> None:
    """The Execution History tab draws ``ops.stats`` of the task: all its runs of the 7
    days (more than the 1,000 the chart once read), drawn when the tab is first shown and
    again when a run ends."""
    today = clock.now().replace(hour=0, minute=0, second=0)
    yesterday = today - timedelta(days=1)

    def ran(start: datetime, state: JobState, task_id: str = "global.Cleanup") -> dict[str, Any]:
        return {
            "name": f"Task_{task_id}",
            "owner": "TaskEngine",
            "state": state,
            "queued_at": start,
            "task_id": task_id,
            "app": task_id.split(".")[0],
            "started_at": start,
            "ended_at": start + timedelta(seconds=4),
        }

    ops.store.insert_jobs(
        [ran(today + timedelta(seconds=20 * n), JobState.COMPLETED) for n in range(1100)]
        + [ran(today + timedelta(hours=7), JobState.FAILED)]
        + [ran(yesterday + timedelta(hours=n), JobState.STOPPED) for n in range(2)]
        + [ran(today, JobState.FAILED, "vault.VaultBackup")]  # another task's
        + [ran(today - timedelta(days=7), JobState.FAILED)]  # before the 7 days
    )
    screen = TaskList(ops)
    detail = open_detail(screen, "global.Cleanup")
    assert detail._figure is None  # drawn when its tab is shown
    detail.tabs.selected_index = TABS.index("Execution History")
    figure = detail._figure
    assert figure is not None and figure in detail.chart.children
    succeeded, failed, stopped, rate = figure.data
    assert list(succeeded.x) == [f"2026-01-{day}" for day in range(10, 17)]
    assert list(succeeded.y) == [0] * 6 + [1100]
    assert list(failed.y) == [0] * 6 + [1]
    assert list(stopped.y) == [0] * 5 + [2, 0]
    assert rate.y[-1] == pytest.approx(1100 / 1101 * 100)
    assert figure.layout.title.text == "Last 7 days"
    history_tab = detail.tabs.children[TABS.index("Execution History")]
    assert list(history_tab.children) == [detail.chart, detail.history]  # no "at most" note

    ops.store.insert_jobs([ran(today + timedelta(hours=8), JobState.FAILED)])
    detail.refresh()
    assert detail._figure is figure  # the same widget, new data
    assert list(figure.data[1].y) == [0] * 6 + [2]


@pytest.mark.slow
def test_run_now_shows_running_then_the_history_and_chart(demo_ops: taskops.TaskOps) -> None:
    """With an engine in this process: Run Now, see Running in the list and the detail,
    stop it, and see the run in the history table and the chart."""
    demo_ops.tasks.update("global.SearchReindex", {"parameters": {"STEPS": 200}})
    for task in demo_ops.tasks.list():
        if task.id != "global.SearchReindex":
            demo_ops.tasks.disable(task.id)
    demo_ops.engine.start()
    screen = TaskList(demo_ops)
    detail = open_detail(screen, "global.SearchReindex")
    detail.run_button.click()

    def running() -> bool:
        screen.ticker.tick()
        return "Running" in detail.heading.value

    wait_for(running, timeout=20, what="the task to show Running")
    detail.back_button.click()
    row = next(r for r in screen.table.items if r["id"] == "global.SearchReindex")
    assert row["status"] == TaskStatus.RUNNING.value
    assert ">1<" in screen.stat_values["running"].value
    job = demo_ops.jobs.list(task="global.SearchReindex")[0]
    demo_ops.jobs.stop(job.id)
    detail = open_detail(screen, "global.SearchReindex")
    assert detail.history.items[0]["id"] == job.id
    assert detail.history.items[0]["state"] == JobState.STOPPED.value
    detail.tabs.selected_index = 4
    figure = detail._figure
    assert figure is not None
    assert [trace.name for trace in figure.data][:3] == ["Succeeded", "Failed", "Stopped"]
    assert sum(figure.data[2].y) >= 1  # the stopped run


# -- the shell -----------------------------------------------------------------------------


def test_dashboard_shell_switches_sections_and_says_when_no_engine_runs(
    demo_ops: taskops.TaskOps,
) -> None:
    board = Dashboard(demo_ops)
    assert isinstance(board.screens["tasks"], TaskList)
    assert "No engine" in board.engine_state.value
    warnings = [text for kind, text in board.alerts.messages if kind == "warning"]
    assert len(warnings) == 1 and "no engine is running" in warnings[0]
    board.ticker.tick()  # said once, not again on every check
    assert [text for kind, text in board.alerts.messages if kind == "warning"] == warnings
    board.nav.current = "jobs"
    assert board.content.children[0] is board.screens["jobs"]
    board.settings_button.click()
    settings = board.screens["settings"]
    assert board.content.children[0] is settings
    keys = list(settings.inputs)  # type: ignore[attr-defined]
    assert keys == [item["key"] for item in demo_ops.settings.describe()]
    assert "autoRefreshInterval" in keys
    assert board.nav.current == "settings"  # no menu entry is marked
    board.nav.current = "jobs"  # the section shown before Settings opens again
    assert board.content.children[0] is board.screens["jobs"]
    board.nav.current = "tasks"
    assert board.content.children[0] is board.screens["tasks"]


def test_saved_settings_apply_to_the_open_screens_at_once(demo_ops: taskops.TaskOps) -> None:
    board = Dashboard(demo_ops)
    board.nav.current = "jobs"
    board.settings_button.click()
    form = board.screens["settings"]
    form.inputs["autoRefreshInterval"].value = "0.5"  # type: ignore[attr-defined]
    form.save_button.click()  # type: ignore[attr-defined]
    assert demo_ops.settings.get()["autoRefreshInterval"] == 0.5
    for section in ("tasks", "jobs"):
        assert board.screens[section].ticker.interval == 0.5, section  # type: ignore[attr-defined]
    assert board.notification_ticker.interval == 0.5


def test_dashboard_shows_problems_of_the_site_files(demo_site: Path) -> None:
    (demo_site / "apps" / "vault" / "config" / "tasks.yaml").write_text("tasks: [unclosed\n")
    board = taskops.ui.dashboard(demo_site)
    assert "problem(s) in the site's files" in board.site_problems.value
    assert "vault" in board.site_problems.value
    screen = board.screens["tasks"]
    assert "global.HealthCheck" in ids(screen)  # one broken app hides only its own tasks
    board.ops.close()


def test_errors_of_callbacks_go_to_the_alerts(demo_ops: taskops.TaskOps) -> None:
    alerts = Alerts()
    screen = TaskList(demo_ops, alerts=alerts)
    screen.table.vue_act({"action": "enable", "id": "global.NoSuchTask"})
    assert alerts.messages[0] == ("error", "no task global.NoSuchTask")
    screen.table.vue_act({"action": "explode", "id": "global.HealthCheck"})
    kind, text = alerts.messages[0]
    assert kind == "error" and "unexpected error" in text and "explode" in text


def test_the_search_box_filters_once_typing_pauses_in_a_kernel(
    demo_ops: taskops.TaskOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kernel (an asyncio loop runs the widgets' messages) the keystrokes of one word
    filter the list once, with the whole word, SEARCH_PAUSE after the last."""
    screen = TaskList(demo_ops)
    queries: list[str | None] = []
    list_tasks = demo_ops.tasks.list

    def counted(*args: Any, **kwargs: Any) -> Any:
        if "search" in kwargs:  # the screen's query (the quick stats list all tasks too)
            queries.append(kwargs["search"])
        return list_tasks(*args, **kwargs)

    monkeypatch.setattr(demo_ops.tasks, "list", counted)

    async def type_word() -> None:
        for typed in ("g", "gz", "gzi", "gzip"):
            screen.search.value = typed
        assert queries == []  # nothing yet: the pause has not passed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not queries and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(3 * SEARCH_PAUSE)  # a second filtering would come by now

    asyncio.run(type_word())
    assert queries == ["gzip"]
    assert ids(screen) == ["global.LogRotation"]


def test_debounced_calls_at_once_without_a_loop_and_once_after_a_pause_with_one() -> None:
    calls: list[float] = []
    debounced = Debounced(lambda: calls.append(time.monotonic()), delay=0.1)
    debounced()
    debounced()
    assert len(calls) == 2  # no running loop (a script): at once, every time

    calls.clear()

    async def three_quick_calls() -> float:
        for _ in range(3):
            debounced()
        last = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not calls and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # a second call would come by now
        return last

    last = asyncio.run(three_quick_calls())
    assert len(calls) == 1
    assert calls[0] - last >= 0.1
