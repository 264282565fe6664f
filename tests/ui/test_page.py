"""The dashboard page's placeholder (``taskops.ui.dashboard_page``): in a kernel's event loop
it returns before the site is opened and fills in from that loop; outside one it returns
the dashboard; a site that cannot open shows why."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ipywidgets as widgets
import pytest

import taskops.ui.page as page_module
from taskops.ui import Dashboard, dashboard_page

T = TypeVar("T")


async def eventually(condition: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Await ``condition`` returning something truthy, letting the loop run meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := condition()):
        if loop.time() > deadline:
            raise TimeoutError("the page did not fill in")
        await asyncio.sleep(0.01)
    return value


def shown(page: widgets.VBox) -> Any:
    (child,) = page.children
    return child


def test_in_a_running_loop_the_page_returns_at_once_and_the_loop_builds_the_dashboard(
    demo_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared_on: list[threading.Thread] = []
    built_on: list[threading.Thread] = []
    prepare, build = page_module._prepare, page_module._dashboard

    def prepare_recorded(site: Any, options: dict[str, Any]) -> Any:
        prepared_on.append(threading.current_thread())
        return prepare(site, options)

    def build_recorded(ops: Any) -> Dashboard:
        built_on.append(threading.current_thread())
        return build(ops)

    monkeypatch.setattr(page_module, "_prepare", prepare_recorded)
    monkeypatch.setattr(page_module, "_dashboard", build_recorded)

    async def scenario() -> Dashboard:
        page = dashboard_page(demo_site, user="alice")
        # the loop has not run yet: whatever the thread has done, the page still waits
        assert "Loading the dashboard" in shown(page).value
        assert "taskops-page" in page._dom_classes
        return await eventually(lambda: isinstance(shown(page), Dashboard) and shown(page))

    board = asyncio.run(scenario())
    try:
        # the site is opened on a thread of its own, the widgets are made on the loop's
        assert [t.name for t in prepared_on] == ["taskops-dashboard-page"]
        assert built_on == [threading.main_thread()]
        tasks = board.screens["tasks"]
        assert {row["id"] for row in tasks.table.items} >= {"global.HealthCheck"}  # type: ignore[attr-defined]
        assert board.ops.user == "alice"
    finally:
        board.ops.close()


def test_without_a_loop_the_page_holds_the_dashboard_when_returned(demo_site: Path) -> None:
    board = shown(dashboard_page(demo_site))
    assert isinstance(board, Dashboard)
    board.ops.close()


def test_a_site_that_cannot_open_shows_why_in_the_page(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-site"

    async def scenario() -> widgets.HTML:
        page = dashboard_page(missing)
        return await eventually(
            lambda: "taskops-page-error" in shown(page)._dom_classes and shown(page)
        )

    for error in (asyncio.run(scenario()), shown(dashboard_page(missing))):
        assert "The dashboard could not open" in error.value
        assert "no-such-site" in error.value


def test_a_dashboard_that_cannot_be_built_shows_why_and_closes_its_site(
    demo_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    closed: list[Any] = []

    def broken(ops: Any) -> Dashboard:
        opened.append(ops)
        monkeypatch.setattr(ops, "close", lambda: closed.append(ops))
        raise RuntimeError("the screens broke")

    monkeypatch.setattr(page_module, "_dashboard", broken)
    error = shown(dashboard_page(demo_site))
    assert "taskops-page-error" in error._dom_classes
    assert "the screens broke" in error.value
    assert closed == opened and len(opened) == 1
    opened[0].store.close()
