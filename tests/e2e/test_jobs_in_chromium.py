"""The Jobs and Settings screens end to end: headless Chromium on the dashboard of a
running ``taskops serve`` of the demo site (its engine running), checked against the REST
API. Screenshots go to ``<basetemp>/screens/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from taskops.testing import Served

pytestmark = pytest.mark.slow

ACT = 15_000  # ms: one click's round trip to the kernel and back


def job_state(served: Served, job_id: int) -> str:
    status, body = served.request("GET", f"/jobs/{job_id}")
    assert status == 200, body
    return str(body["state"])


def test_watch_a_long_job_and_stop_it_through_the_dialog(
    served: Served, open_dashboard: Callable[[], Page], screens: Path, tmp_path: Path
) -> None:
    status, job = served.request("POST", "/tasks/global.SearchReindex/run")
    assert status == 202, job
    job_id = job["id"]
    page = open_dashboard()
    page.click(".taskops-nav-jobs")
    # only the screen shown has a timer in the page: a hidden screen does not refresh
    expect(page.locator(".taskops-jobs .taskops-ticker")).to_have_count(1, timeout=ACT)
    expect(page.locator(".taskops-tasks .taskops-ticker")).to_have_count(0)
    state = page.locator(f'.taskops-job-state[data-job="{job_id}"]')
    expect(state).to_have_text("Running", timeout=30_000)
    expect(page.locator(f'.taskops-job-progress[data-job="{job_id}"]')).to_be_visible(timeout=ACT)
    elapsed = page.locator(f'.taskops-job-elapsed[data-job="{job_id}"]')
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first, timeout=ACT)  # it ticks while the job runs
    expect(page.locator(".taskops-stat-running .taskops-stat-value")).to_have_text("1")
    page.screenshot(path=str(screens / "jobs-list-running.png"))

    page.click(f'.taskops-job-name[data-job="{job_id}"]')
    expect(page.locator(".taskops-job-heading")).to_contain_text(f"Job {job_id}")
    output = page.locator(".taskops-job-stdout")
    expect(output).to_contain_text("step 1/36", timeout=ACT)
    expect(output).to_contain_text("step 2/36", timeout=30_000)  # written 5 s later
    expect(page.locator(".taskops-job-context")).to_contain_text("global.SearchReindex")
    page.screenshot(path=str(screens / "job-output-streaming.png"))

    page.click(".taskops-job-stop-button")
    dialog = page.locator(".taskops-confirm")
    expect(dialog).to_contain_text("Confirm Stop Job")
    expect(dialog).to_contain_text(f"Job: {job['name']}")
    expect(dialog).to_contain_text("State: Running")
    expect(dialog).to_contain_text("Elapsed:")
    page.screenshot(path=str(screens / "job-stop-dialog.png"))
    page.click(".taskops-confirm-yes")
    expect(page.locator(".taskops-job-heading")).to_contain_text("Stopped", timeout=30_000)
    assert job_state(served, job_id) == "Stopped"
    expect(page.locator(".taskops-job-remove-button")).to_be_visible()
    page.screenshot(path=str(screens / "job-stopped.png"))
    with page.expect_download(timeout=ACT) as download:
        page.locator(".taskops-job-download button").click()
    assert download.value.suggested_filename == f"job-{job_id}.log"
    log = tmp_path / "job.log"
    download.value.save_as(log)
    assert "step 1/36" in log.read_text()

    page.click(".taskops-job-back")
    expect(state).to_have_text("Stopped", timeout=ACT)
    page.click(f'.taskops-job-remove[data-job="{job_id}"]')
    expect(state).to_have_count(0, timeout=ACT)
    assert served.request("GET", f"/jobs/{job_id}")[1]["removed"] is True


def test_a_failure_shows_as_it_happens(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    page = open_dashboard()
    status, _ = served.request(
        "PUT", "/tasks/vault.VaultBackup", {"parameters": {"FAILURE_RATE": 1}}
    )
    assert status == 200
    status, job = served.request("POST", "/tasks/vault.VaultBackup/run")
    assert status == 202, job
    alert = page.locator(".taskops-alert-error", has_text=f"job {job['id']} of vault.VaultBackup")
    expect(alert).to_be_visible(timeout=30_000)
    expect(alert).to_contain_text("Failed:")
    page.screenshot(path=str(screens / "notification-failure.png"))


def test_settings_are_validated_saved_and_applied(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    page = open_dashboard()
    ticker = page.locator(".taskops-tasks .taskops-ticker")
    expect(ticker).to_have_attribute("data-interval", "1")  # the fixture's setting
    page.click(".taskops-settings-button")
    interval = page.locator(".taskops-setting-autoRefreshInterval input")
    expect(interval).to_have_value("1")
    page.screenshot(path=str(screens / "settings.png"))

    interval.fill("0.1")  # below the minimum of 0.5
    page.fill(".taskops-setting-maxConcurrentTasks input", "4")
    page.click(".taskops-settings-save")
    expect(page.locator(".taskops-settings-error-autoRefreshInterval")).to_contain_text(
        "at least 0.5", timeout=ACT
    )
    expect(interval).to_have_value("0.1")  # the input stays
    settings = served.request("GET", "/settings")[1]["settings"]
    assert settings["autoRefreshInterval"] == 1 and settings["maxConcurrentTasks"] == 10
    page.screenshot(path=str(screens / "settings-refused.png"))

    interval.fill("2")
    page.click(".taskops-settings-save")
    expect(page.locator(".taskops-alert-success").first).to_contain_text(
        "Saved settings", timeout=ACT
    )
    settings = served.request("GET", "/settings")[1]["settings"]
    assert settings["autoRefreshInterval"] == 2 and settings["maxConcurrentTasks"] == 4
    # the open screens keep time by the new interval at once: the browser's timer changed
    page.click(".taskops-nav-tasks")
    expect(ticker).to_have_attribute("data-interval", "2", timeout=ACT)
