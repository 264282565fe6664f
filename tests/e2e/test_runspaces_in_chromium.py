"""The Runspaces screens end to end: headless Chromium on the dashboard of a running
``taskops serve`` of the demo site. A long job's worker is inspected, its memory graph
drawn, the memory threshold lowered in Settings (the row turns orange), and the worker
force-closed by typing its id. Screenshots go to ``<basetemp>/screens/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from taskops.testing import Served, wait_for

pytestmark = pytest.mark.slow

ACT = 15_000  # ms: one click's round trip to the kernel and back


def test_inspect_a_worker_lower_the_threshold_and_force_close_it(
    served: Served, open_dashboard: Callable[[], Page], screens: Path
) -> None:
    status, job = served.request("POST", "/tasks/global.SearchReindex/run")
    assert status == 202, job
    space_id = wait_for(
        lambda: served.request("GET", f"/jobs/{job['id']}")[1]["runspaceId"],
        timeout=30,
        what="the job's worker runspace",
    )
    wait_for(
        lambda: served.request("GET", f"/runspaces/{space_id}")[1]["memoryMB"],
        timeout=30,
        what="the worker's first sample",
    )
    page = open_dashboard()
    page.click(".taskops-nav-runspaces")
    row = page.locator(f'.taskops-runspace-table tr[data-runspace="{space_id}"]')
    expect(row).to_be_visible(timeout=ACT)
    expect(row).to_contain_text("Opened")
    expect(row).not_to_contain_class("taskops-runspace-hungry")  # a small worker, 100 MB limit
    expect(page.locator(".taskops-stat-total .taskops-stat-value")).not_to_have_text("0")
    page.screenshot(path=str(screens / "runspaces-list.png"))

    # a threshold changed in Settings applies to the list at once
    page.click(".taskops-settings-button")
    page.fill(".taskops-setting-runspaceMemoryWarning input", "1")
    page.click(".taskops-settings-save")
    expect(page.locator(".taskops-alert-success").first).to_contain_text(
        "runspaceMemoryWarning 1", timeout=ACT
    )
    page.click(".taskops-nav-runspaces")
    expect(row).to_contain_class("taskops-runspace-hungry", timeout=ACT)
    page.screenshot(path=str(screens / "runspaces-hungry.png"))

    page.click(f'.taskops-runspace-id[data-runspace="{space_id}"]')
    expect(page.locator(".taskops-runspace-heading")).to_contain_text(str(space_id), timeout=ACT)
    chart = page.locator(".taskops-runspace-memory-chart .main-svg").first
    expect(chart).to_be_visible(timeout=30_000)
    expect(page.locator(".taskops-runspace-owner")).to_contain_text(job["name"])
    inspected = page.locator(".taskops-runspace-diagnostics")
    expect(inspected).to_contain_text("Working directory", timeout=ACT)
    expect(inspected).to_contain_text("libpython")  # a module the worker has mapped
    expect(inspected).to_contain_text("forked by the engine")
    page.click(".taskops-runspace-env-keys summary")
    expect(inspected).to_contain_text("TASKOPS_JOB_ID")  # the job's, not the fork server's
    page.screenshot(path=str(screens / "runspace-detail.png"), full_page=True)

    page.click(".taskops-runspace-force-close")
    dialog = page.locator(".taskops-force-close")
    expect(dialog).to_contain_text("WARNING: This action is DANGEROUS")
    expect(dialog).to_contain_text("Crash associated jobs")
    confirm = page.locator(".taskops-force-close-confirm")
    expect(confirm).to_be_disabled()
    page.fill(".taskops-force-close-id input", str(space_id + 1000))  # a wrong id
    page.locator(".taskops-force-close-id input").press("Tab")
    expect(confirm).to_be_disabled()
    page.screenshot(path=str(screens / "force-close-wrong-id.png"))
    page.fill(".taskops-force-close-id input", str(space_id))
    expect(confirm).to_be_enabled(timeout=ACT)
    confirm.click()
    expect(dialog).to_be_hidden(timeout=30_000)
    expect(page.locator(".taskops-runspace-heading")).to_contain_text("Closed", timeout=ACT)
    page.screenshot(path=str(screens / "runspace-force-closed.png"))
    assert served.request("GET", f"/runspaces/{space_id}")[1]["state"] == "Closed"
    wait_for(
        lambda: served.request("GET", f"/jobs/{job['id']}")[1]["state"] == "Stopped",
        timeout=30,
        what="the worker's job to be recorded Stopped",
    )
    audit = served.request("GET", "/audit?action=runspace.close")[1]
    assert audit["entries"][0]["target"] == f"runspace:{space_id}"
