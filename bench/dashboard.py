"""Time until the dashboard's Tasks screen is interactive in headless Chromium, beside a
one-button notebook served by the same server.

``taskops serve`` runs a site with 100 tasks (varied schedules that do not fire while we
measure; ``taskops.testing.serve_site``). Beside it, in the site folder (the server's root),
a notebook holding one ipywidgets button, rendered by the same server's Voila at
``/voila/render/one_button.ipynb?token=...``. Chromium is Debian's, launched by Playwright as
RECIPES.md says.

Each page load uses a fresh browser context (no cache, no cookies) and is timed from
``page.goto`` until:

- the dashboard: a task name (``.taskops-task-name``) and a row's Run Now button
  (``.taskops-row-run``) are visible;
- the notebook: the button is visible.

Then, to check the page answers, the time from a click to its answer: the first row's Edit
opens the task editor (``.taskops-editor``); the button's handler relabels it. After each
load the page is closed and the server's kernels are shut down (``DELETE /api/kernels/<id>``),
so every load starts alike. Loads alternate between the two pages.
Target: the dashboard at most 1.3x the one-button notebook's time to interactive.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from bench.harness import Table, p50, p99, ratio, site_with_tasks
from bench.idle_cpu import idle_schedules
from taskops.testing import CHROMIUM, CHROMIUM_ARGS, Served, serve_site

TASKS = 100
TARGET = 1.3
TIMEOUT_MS = 120_000
NOTEBOOK = "one_button.ipynb"
BUTTON_CELL = """import ipywidgets as widgets

button = widgets.Button(description="Press me")
button.add_class("bench-button")
button.on_click(lambda b: setattr(b, "description", "Pressed"))
button"""

DASHBOARD = "dashboard (Tasks screen)"
BUTTON = "notebook with one button"


def notebook() -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": "button",
                    "metadata": {},
                    "outputs": [],
                    "source": BUTTON_CELL,
                }
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


def shut_down_kernels(served: Served) -> None:
    """Shut down every kernel of the server (Voila leaves a closed page's kernel running)."""
    headers = {"Authorization": f"token {served.token}"}
    request = urllib.request.Request(f"{served.url}/api/kernels", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        kernels = json.load(response)
    for kernel in kernels:
        delete = urllib.request.Request(
            f"{served.url}/api/kernels/{kernel['id']}", method="DELETE", headers=headers
        )
        with urllib.request.urlopen(delete, timeout=60):
            pass


def load(browser: Browser, served: Served, subject: str) -> tuple[float, float]:
    """(seconds to interactive, seconds from a click to its answer) of one page load."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        if subject == DASHBOARD:
            begin = time.perf_counter()
            page.goto(served.dashboard, wait_until="commit", timeout=TIMEOUT_MS)
            page.locator(".taskops-task-name").first.wait_for(timeout=TIMEOUT_MS)
            page.locator(".taskops-row-run").first.wait_for(timeout=TIMEOUT_MS)
            ready = time.perf_counter() - begin
            begin = time.perf_counter()
            page.locator(".taskops-row-edit").first.click()
            page.locator(".taskops-editor").first.wait_for(timeout=TIMEOUT_MS)
            answered = time.perf_counter() - begin
        else:
            begin = time.perf_counter()
            page.goto(
                f"{served.url}/voila/render/{NOTEBOOK}?token={served.token}",
                wait_until="commit",
                timeout=TIMEOUT_MS,
            )
            button = page.locator(".bench-button")
            button.wait_for(timeout=TIMEOUT_MS)
            ready = time.perf_counter() - begin
            begin = time.perf_counter()
            button.click()
            page.locator(".bench-button", has_text="Pressed").wait_for(timeout=TIMEOUT_MS)
            answered = time.perf_counter() - begin
        page.close()
        return ready, answered
    finally:
        context.close()
        shut_down_kernels(served)


def main(quick: bool) -> list[Table]:
    loads = 2 if quick else 7
    schedules = idle_schedules(TASKS, datetime.now(UTC))
    results: dict[str, tuple[list[float], list[float]]] = {
        DASHBOARD: ([], []),
        BUTTON: ([], []),
    }
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        root = Path(tmp)
        site = site_with_tasks(
            root / "site",
            [
                {
                    "name": f"Task{index:03d}",
                    "description": f"Benchmark task {index}",
                    "schedule": expression,
                    "scriptPath": "tasks/noop.sh",
                }
                for index, expression in enumerate(schedules)
            ],
            scripts={"tasks/noop.sh": "#!/bin/sh\nexit 0\n", NOTEBOOK: notebook()},
        )
        served = serve_site(root, site, timeout=300)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
                )
                try:
                    # one load of each first, not measured: Python's and the browser's
                    # first-use costs (bytecode caches, fonts)
                    for subject in (DASHBOARD, BUTTON):
                        load(browser, served, subject)
                    for _ in range(loads):
                        for subject in (DASHBOARD, BUTTON):
                            ready, answered = load(browser, served, subject)
                            results[subject][0].append(ready)
                            results[subject][1].append(answered)
                finally:
                    browser.close()
        finally:
            served.stop()

    button_ready = p50(results[BUTTON][0])
    table = Table(
        title="Dashboard: time until the Tasks screen is interactive in headless Chromium",
        columns=[
            "loads",
            "interactive s (median)",
            "p99 (max) s",
            "vs one-button notebook",
            "click answered ms (median)",
        ],
        notes=[
            f"Target: the dashboard at most {TARGET:g}x the one-button notebook's time to "
            f"interactive. {TASKS} tasks on the site; same server, same Voila; a fresh "
            "browser context and a fresh kernel per load (kernels shut down between loads), "
            "loads alternating after one unmeasured load of each. Click: the first row's "
            "Edit until the editor shows / the button until its label changes.",
        ],
    )
    for subject, (readies, answers) in results.items():
        table.add(
            subject,
            loads=len(readies),
            **{
                "interactive s (median)": p50(readies),
                "p99 (max) s": p99(readies),
                "vs one-button notebook": ratio(p50(readies), button_ready),
                "click answered ms (median)": p50(answers) * 1000,
            },
        )
    return [table]
