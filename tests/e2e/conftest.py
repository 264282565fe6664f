"""What the browser tests share: a ``taskops serve`` of a fresh demo site per module, the
folder for screenshots, and a page with the dashboard open."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from taskops.demo import create_demo_site
from taskops.testing import Served, serve_site

PAGE_LOAD = 90_000  # ms: a Voila page starts a kernel (several seconds on 2 cores)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``taskops serve`` on a fresh demo site, refreshing the dashboard every second."""
    root = tmp_path_factory.mktemp("e2e")
    site = root / "demo"
    create_demo_site(site)
    server = serve_site(root, site)
    status, _ = server.request("PUT", "/settings", {"autoRefreshInterval": 1})
    assert status == 200
    yield server
    server.stop()
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<basetemp>/screens/``: look at what the tests saw."""
    folder = tmp_path_factory.getbasetemp() / "screens"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def open_dashboard(browser_context: BrowserContext, served: Served) -> Callable[[], Page]:
    """Opens the dashboard in a new page and waits until the Tasks screen shows."""

    def opened() -> Page:
        page = browser_context.new_page()
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(served.dashboard)
        page.wait_for_selector(".taskops-task-name", timeout=PAGE_LOAD)
        return page

    return opened
