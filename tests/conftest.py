"""Fixtures that build a temporary site with real files and a real SQLite store, and the
headless Chromium that browser tests drive (``browser``, ``browser_context``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import taskops
from taskops.demo import create_demo_site
from taskops.testing import CHROMIUM, CHROMIUM_ARGS, FakeClock, make_site

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

STANDARD_TASKS: dict[str, list[dict[str, Any]]] = {
    "global": [
        {
            "name": "Cleanup",
            "description": "Clean up old data",
            "schedule": "0 3 * * *",
            "scriptPath": "tasks/cleanup.py",
            "parameters": {"RETENTION_DAYS": 30},
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
    "WebHostMetrics": [
        {
            "name": "MetricsCollection",
            "description": "Collect server metrics",
            "schedule": "* * * * * */15",
            "scriptPath": "tasks/collect.py",
        },
        {
            "name": "MetricsCsvCleanup",
            "description": "Rotate metric CSV files",
            "schedule": "0 2 * * *",
            "timezone": "Europe/Berlin",
            "scriptPath": "tasks/csv_cleanup.py",
        },
    ],
    "vault": [
        {
            "name": "VaultBackup",
            "description": "Back up the vault",
            "schedule": "30 1 * * *",
            "scriptPath": "tasks/backup.py",
            "termination": {"maxRuntime": 60, "maxFailures": 2},
        },
    ],
}

START = datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", STANDARD_TASKS, timezone="UTC")


@pytest.fixture
def ops(site_dir: Path, clock: FakeClock) -> Iterator[taskops.TaskOps]:
    with taskops.open_site(site_dir, user="alice", clock=clock) as opened:
        yield opened


@pytest.fixture
def demo_site(tmp_path: Path) -> Path:
    """A fresh copy of the demo site."""
    site = tmp_path / "demo"
    create_demo_site(site)
    return site


@pytest.fixture
def demo_ops(demo_site: Path) -> Iterator[taskops.TaskOps]:
    """The demo site opened as alice (no engine)."""
    with taskops.open_site(demo_site, user="alice") as opened:
        yield opened


# -- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_session() -> Iterator[tuple[Browser, asyncio.AbstractEventLoop | None]]:
    """Headless Chromium driven by Playwright, launched once for the whole session, and the
    event loop of Playwright's sync API. Tests use it through ``browser``.

    Fails (never skips) when Chromium is missing: the browser tests are part of the suite.

    Between its calls, Playwright's sync API leaves its loop marked as the thread's running
    loop. Left so, it would break every later test that runs a loop of its own
    (``asyncio.run``, pytest-jupyter's servers): so the mark is removed here and put back
    only while a test holds ``browser``."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get update && apt-get install -y chromium; .ci/run does it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        loop = asyncio._get_running_loop()
        asyncio._set_running_loop(None)
        try:
            yield launched, loop
        finally:
            asyncio._set_running_loop(loop)  # Playwright's own calls need it back
            launched.close()


@pytest.fixture
def browser(
    browser_session: tuple[Browser, asyncio.AbstractEventLoop | None],
) -> Iterator[Browser]:
    """The session's headless Chromium (``browser_session``), usable in this test."""
    launched, loop = browser_session
    asyncio._set_running_loop(loop)
    try:
        yield launched
    finally:
        asyncio._set_running_loop(None)


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for one test, closed after it."""
    context = browser.new_context()
    yield context
    context.close()
