"""The Tasks screens end to end: headless Chromium on the dashboard of a running
``taskops serve`` of the demo site (its engine running), checked against the REST API.

Screenshots go to ``<basetemp>/screens/`` (pytest's ``--basetemp``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from taskops.testing import Served, wait_for

pytestmark = pytest.mark.slow

ACT = 15_000  # ms: one click's round trip to the kernel and back


def task(served: Served, task_id: str) -> dict[str, object]:
    status, body = served.request("GET", f"/tasks/{task_id}")
    assert status == 200, body
    return dict(body)


def row_names(page: Page) -> list[str]:
    return page.locator(".taskops-task-table .taskops-task-name").all_inner_texts()


def name_link(page: Page, task_id: str) -> str:
    return f'.taskops-task-name[data-task="{task_id}"]'


def test_list_shows_stats_filters_sorts_and_explains_schedules(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    page = open_dashboard()
    expect(page.locator(".taskops-title")).to_have_text("Task Management")
    expect(page.locator(".taskops-nav-jobs")).to_be_visible()
    expect(page.locator(".taskops-stat-total .taskops-stat-value")).to_have_text("9")
    expect(page.locator(".taskops-stat-enabled .taskops-stat-value")).to_have_text("8")
    page.screenshot(path=str(screens / "tasks-list.png"))

    names = page.locator(".taskops-task-table .taskops-task-name")
    page.select_option(".taskops-filter-app select", "vault")
    expect(names).to_have_text(["VaultBackup", "VaultKeyRotation"], timeout=ACT)
    page.select_option(".taskops-filter-app select", "All")
    page.select_option(".taskops-filter-status select", "Disabled")
    expect(names).to_have_text(["DiskUsageReport"], timeout=ACT)
    page.select_option(".taskops-filter-status select", "All")
    expect(names).to_have_count(9, timeout=ACT)
    page.fill(".taskops-search input", "gzip")
    expect(names).to_have_text(["LogRotation"], timeout=ACT)
    page.fill(".taskops-search input", "")
    expect(names).to_have_count(9, timeout=ACT)

    header = page.locator(".taskops-task-table th", has_text="Name")
    header.click()  # ascending
    header.click()  # descending
    expect(names.first).to_have_text("VaultKeyRotation", timeout=ACT)
    shown = row_names(page)
    assert shown == sorted(shown, key=str.lower, reverse=True)

    page.hover('.taskops-schedule[data-task="vault.VaultKeyRotation"]')
    tooltip = page.locator(".v-tooltip .v-overlay__content", has_text="At 02:30 AM")
    expect(tooltip).to_be_visible()
    page.screenshot(path=str(screens / "tasks-sorted-tooltip.png"))


def test_detail_cron_builder_saves_a_schedule_and_refuses_an_invalid_one(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    page = open_dashboard()
    page.click(name_link(page, "WebHostMetrics.MetricsCsvCleanup"))
    expect(page.locator(".taskops-detail-heading")).to_contain_text("MetricsCsvCleanup")
    page.get_by_role("tab", name="Schedule").click()
    page.fill(".taskops-cron-minute input", "0")
    page.fill(".taskops-cron-hour input", "*/6")
    expect(page.locator(".taskops-cron-expression input")).to_have_value("0 */6 * * *")
    expect(page.locator(".taskops-cron-text")).to_contain_text("every 6 hours", ignore_case=True)
    expect(page.locator(".taskops-cron-next li")).to_have_count(5)
    page.screenshot(path=str(screens / "detail-schedule.png"))
    page.click(".taskops-detail-save-schedule")
    wait_for(
        lambda: task(served, "WebHostMetrics.MetricsCsvCleanup")["schedule"] == "0 */6 * * *",
        timeout=15,
        what="the new schedule to be saved",
    )
    expect(page.locator(".taskops-alert-success").first).to_contain_text("Saved the schedule")

    page.fill(".taskops-cron-minute input", "61")
    expect(page.locator(".taskops-cron-error")).to_contain_text("minute", ignore_case=True)
    page.click(".taskops-detail-save-schedule")
    expect(page.locator(".taskops-detail-schedule-error")).not_to_be_empty(timeout=ACT)
    expect(page.locator(".taskops-alert-error").first).to_be_visible()
    page.screenshot(path=str(screens / "detail-invalid-cron.png"))
    assert task(served, "WebHostMetrics.MetricsCsvCleanup")["schedule"] == "0 */6 * * *"


def test_detail_exports_the_configuration_as_json(
    served: Served, open_dashboard: Callable[[], Page], tmp_path: Path
) -> None:
    page = open_dashboard()
    page.click(name_link(page, "vault.VaultKeyRotation"))
    expect(page.locator(".taskops-detail-heading")).to_contain_text("VaultKeyRotation")
    with page.expect_download(timeout=ACT) as download:
        page.locator(".taskops-detail-export button").click()
    assert download.value.suggested_filename == "vault.VaultKeyRotation.json"
    saved = tmp_path / "export.json"
    download.value.save_as(saved)
    exported = json.loads(saved.read_text())
    assert exported["app"] == "vault" and exported["schedule"] == "30 2 * * *"
    assert exported["environment"] == {"VAULT_TOKEN": "********"}  # never the secret


def test_run_now_shows_the_task_running(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    page = open_dashboard()
    page.click(name_link(page, "global.SearchReindex"))  # takes minutes: it stays Running
    expect(page.locator(".taskops-detail-heading")).to_contain_text("SearchReindex")
    page.click(".taskops-detail-run")
    expect(page.locator(".taskops-detail-heading")).to_contain_text("Running", timeout=30_000)
    page.screenshot(path=str(screens / "detail-running.png"))
    page.click(".taskops-detail-back")
    status = page.locator('.taskops-status[data-task="global.SearchReindex"]')
    expect(status).to_have_text("Running", timeout=ACT)
    expect(page.locator(".taskops-stat-running .taskops-stat-value")).not_to_have_text("0")
    page.screenshot(path=str(screens / "list-running.png"))
    _, jobs = served.request("GET", "/jobs?state=Running")
    for job in jobs["jobs"]:
        if job["taskId"] == "global.SearchReindex":
            served.request("POST", f"/jobs/{job['id']}/stop")
    expect(status).not_to_have_text("Running", timeout=30_000)


def test_the_row_buttons_edit_and_ask_before_deleting(
    served: Served, open_dashboard: Callable[[], Page]
) -> None:
    page = open_dashboard()
    page.click('.taskops-row-edit[data-task="vault.VaultKeyRotation"]')
    expect(page.locator(".taskops-editor-name input")).to_have_value("VaultKeyRotation")
    page.click(".taskops-editor-cancel")
    expect(page.locator(".taskops-editor-dialog")).to_be_hidden(timeout=ACT)
    page.click('.taskops-row-delete[data-task="global.SearchReindex"]')
    expect(page.locator(".taskops-confirm-text")).to_contain_text("SearchReindex", timeout=ACT)
    page.click(".taskops-confirm-no")
    assert task(served, "global.SearchReindex")["name"] == "SearchReindex"  # not deleted


def test_duplicate_and_bulk_disable(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    page = open_dashboard()
    page.click('.taskops-row-duplicate[data-task="vault.VaultBackup"]')
    expect(page.locator(".taskops-duplicate-name input")).to_have_value("VaultBackup_copy")
    page.fill(".taskops-duplicate-name input", "VaultBackupHourly")
    page.fill(".taskops-duplicate-schedule input", "0 * * * *")
    expect(page.locator(".taskops-duplicate-schedule-text")).to_contain_text("Every hour")
    page.click(".taskops-duplicate-save")
    expect(page.locator(name_link(page, "vault.VaultBackupHourly"))).to_be_visible(timeout=ACT)
    copy = task(served, "vault.VaultBackupHourly")
    assert copy["schedule"] == "0 * * * *" and copy["isDefault"] is False

    for task_id in ("global.HealthCheck", "global.LogRotation"):
        row = page.locator(".taskops-task-table tr").filter(
            has=page.locator(name_link(page, task_id))
        )
        row.locator("input[type=checkbox]").check()
    expect(page.locator(".taskops-selection")).to_contain_text("2 checked", timeout=ACT)
    page.click(".taskops-bulk-disable")
    for task_id in ("global.HealthCheck", "global.LogRotation"):
        expect(page.locator(f'.taskops-status[data-task="{task_id}"]')).to_have_text(
            "Disabled", timeout=ACT
        )
        assert task(served, task_id)["enabled"] is False
    expect(page.locator(".taskops-alert-success").first).to_contain_text("Disabled 2 task(s)")
    page.screenshot(path=str(screens / "bulk-disabled.png"))


def test_new_task_dialog_refuses_an_invalid_cron_and_keeps_the_input(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    page = open_dashboard()
    page.click(".taskops-new-task")
    dialog = page.locator(".taskops-editor-dialog")
    expect(dialog).to_be_visible()
    page.fill(".taskops-editor-name input", "NightlyExport")
    page.select_option(".taskops-editor-app select", "vault")
    page.fill(".taskops-editor-script-path input", "tasks/backup_vault.py")
    page.fill(".taskops-editor .taskops-cron-expression input", "0 3 * * 8")
    page.click(".taskops-editor-save")
    expect(page.locator(".taskops-error-schedule")).not_to_be_empty(timeout=ACT)
    expect(dialog).to_be_visible()
    expect(page.locator(".taskops-editor-name input")).to_have_value("NightlyExport")
    page.screenshot(path=str(screens / "editor-invalid-cron.png"))
    status, _ = served.request("GET", "/tasks/vault.NightlyExport")
    assert status == 404  # nothing saved

    page.fill(".taskops-editor .taskops-cron-expression input", "0 3 * * 6")
    page.click(".taskops-editor-save")
    expect(dialog).to_be_hidden(timeout=ACT)
    expect(page.locator(name_link(page, "vault.NightlyExport"))).to_be_visible(timeout=ACT)
    assert task(served, "vault.NightlyExport")["schedule"] == "0 3 * * 6"
