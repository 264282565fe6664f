"""The dashboard page at ``/apps/WebHostTaskManagement/``: behind the login and the
``system_admin`` role, rendered by Voila from the packaged (or repository) notebook, shown
in headless Chromium; and the culling of the kernels that closed pages leave behind.

In-process servers (``jp_fetch``) check the refusals; ``taskops serve`` subprocesses and
Chromium check the page itself."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from conftest import (
    ADMIN_TOKEN,
    OTHER_TOKEN,
    build_site,
    identity_config,
    start_served,
)

from taskops.server.dashboard import DASHBOARD_ROUTE, dashboard_notebook
from taskops.testing import Served, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

slow = pytest.mark.slow

PAGE_TIMEOUT_MS = 90_000
"""A Voila page starts a kernel and runs the notebook: several seconds on 2 cores."""

# for jp_fetch, which joins them to the server's base URL (a trailing "/" stays)
ROUTE_PARTS = DASHBOARD_ROUTE.lstrip("/").split("/", 1)


def get_page(url: str, *, timeout: float = 120) -> tuple[int, str, str]:
    """(status, final URL after redirects, body) of a GET without any Authorization
    header; never raises for an HTTP error status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.geturl(), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.geturl(), exc.read().decode()


def kernels(served: Served) -> dict[str, dict[str, Any]]:
    """The server's kernels (jupyter-server's ``GET /api/kernels``) by id."""
    request = urllib.request.Request(served.url + "/api/kernels")
    request.add_header("Authorization", f"token {served.token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return {kernel["id"]: kernel for kernel in json.loads(response.read())}


def log_tail(served: Served, chars: int = 4000) -> str:
    return "server log (tail):\n" + served.log.read_text(errors="replace")[-chars:]


# -- the notebook ----------------------------------------------------------------------------


def test_the_notebook_is_found_in_the_repository_of_an_editable_install() -> None:
    # this checkout is installed editable: the packaged copy is only in a wheel
    found = dashboard_notebook()
    assert found == Path(__file__).resolve().parents[2] / "dashboards" / "taskops.ipynb"
    notebook = json.loads(found.read_text())
    assert any("taskops.ui" in "".join(cell["source"]) for cell in notebook["cells"])


# -- refusals, in-process --------------------------------------------------------------------


async def fetch_page(jp_fetch: Any, token: str | None) -> Any:
    # an empty Authorization header keeps jp_fetch from adding the server's own token
    return await jp_fetch(
        *ROUTE_PARTS,
        params={"token": token} if token else {},
        headers={"Authorization": ""},
        raise_error=False,
        follow_redirects=False,
    )


async def test_without_a_login_the_page_sends_to_the_login_page(
    jp_fetch: Any, jp_base_url: str
) -> None:
    response = await fetch_page(jp_fetch, None)
    assert response.code == 302
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.path.endswith("/login")
    (back,) = urllib.parse.parse_qs(location.query)["next"]
    base = urllib.parse.unquote(jp_base_url).rstrip("/")
    assert urllib.parse.unquote(back) == base + DASHBOARD_ROUTE


async def test_a_user_without_the_role_gets_a_403_page(jp_fetch: Any) -> None:
    response = await fetch_page(jp_fetch, OTHER_TOKEN)
    assert response.code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    assert "user &#x27;bob&#x27; does not hold the system_admin role" in response.body.decode()


async def test_without_voila_loaded_the_page_says_so(jp_fetch: Any, jp_serverapp: Any) -> None:
    # the in-process server loads only the taskops extension
    assert "voila_jinja2_env" not in jp_serverapp.web_app.settings
    response = await fetch_page(jp_fetch, ADMIN_TOKEN)
    assert response.code == 503
    assert "Voila" in response.body.decode()


@pytest.mark.parametrize("identity", ["no-site"])
async def test_without_a_site_the_page_says_so(jp_fetch: Any, jp_serverapp: Any) -> None:
    response = await fetch_page(jp_fetch, jp_serverapp.identity_provider.token)
    assert response.code == 503
    assert "taskops has no site" in response.body.decode()


# -- the page, from `taskops serve` ----------------------------------------------------------


@slow
def test_the_page_needs_the_login_and_the_role_and_runs_in_the_site(served: Served) -> None:
    page = served.url + DASHBOARD_ROUTE
    status, final, body = get_page(page)
    assert status == 200 and urllib.parse.urlsplit(final).path == "/login", (status, final)
    assert "taskops-dashboard" not in body

    status, _, body = get_page(f"{page}?token={OTHER_TOKEN}")
    assert status == 403 and "system_admin" in body, body

    before = set(kernels(served))
    status, final, body = get_page(f"{page}?token={ADMIN_TOKEN}")
    assert status == 200, f"{status} {body[-2000:]}\n{log_tail(served)}"
    assert urllib.parse.urlsplit(final).path == DASHBOARD_ROUTE
    assert "voila" in body
    # the dashboard cell ran without an error and left its widget for the browser: the
    # page's placeholder, which the dashboard fills once built (tests/ui/test_page.py)
    assert "application/vnd.jupyter.widget-view+json" in body, body[-3000:]
    assert "Loading the dashboard" in body, body[-3000:]
    assert "There was an error when executing cell" not in body, body[-3000:]

    # its kernel: started in the site folder, listed as the dashboard's runspace
    (kernel_id,) = set(kernels(served)) - before

    def runspace() -> dict[str, Any] | None:
        spaces = served.request("GET", "/runspaces?kind=kernel")[1]["runspaces"]
        return next((s for s in spaces if kernel_id in (s["purpose"] or "")), None)

    space = wait_for(runspace, timeout=20, what=f"kernel {kernel_id} as a runspace")
    assert space["owner"] == "voila:dashboard"
    assert Path(psutil.Process(space["pid"]).cwd()) == served.site.resolve()

    # the server's default page is the dashboard: the login URL `taskops serve` prints
    # lands there
    status, final, _ = get_page(f"{served.url}/?token={ADMIN_TOKEN}")
    assert status == 200 and urllib.parse.urlsplit(final).path == DASHBOARD_ROUTE


def open_dashboard(context: BrowserContext, served: Served) -> Page:
    page = context.new_page()
    page.goto(f"{served.url}{DASHBOARD_ROUTE}?token={ADMIN_TOKEN}", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector(".taskops-dashboard", timeout=PAGE_TIMEOUT_MS)
    return page


@slow
def test_the_dashboard_shows_in_chromium(served: Served, browser_context: BrowserContext) -> None:
    page = open_dashboard(browser_context, served)
    assert page.locator(".taskops-dashboard").first.is_visible()
    assert urllib.parse.urlsplit(page.url).path == DASHBOARD_ROUTE


@slow
def test_changes_made_in_the_dashboard_are_audited_as_its_user(
    served: Served, browser_context: BrowserContext
) -> None:
    page = open_dashboard(browser_context, served)
    button = '.taskops-row-disable[data-task="global.LogRotation"]'
    page.wait_for_selector(button, timeout=PAGE_TIMEOUT_MS)
    page.click(button)
    try:
        entry = wait_for(
            lambda: served.request("GET", "/audit?action=task.disable&target=global.LogRotation")[
                1
            ]["entries"],
            timeout=15,
            what="the audit line of the dashboard's change",
        )[0]
        assert entry["user"] == "alice" and entry["result"] == "success"
    finally:
        served.request("POST", "/tasks/global.LogRotation/enable")


@slow
def test_closed_pages_kernels_are_culled_and_open_pages_kept(
    tmp_path: Path, browser_context: BrowserContext
) -> None:
    idle, interval = 4, 1
    site = build_site(tmp_path / "site")
    served = start_served(
        tmp_path, site, config=identity_config(), args=("--kernel-idle-timeout", str(idle))
    )
    try:
        assert kernels(served) == {}
        kept = open_dashboard(browser_context, served)
        (kept_id,) = kernels(served)
        # the culler starts with the first kernel
        assert (
            f"Culling kernels with idle durations > {idle} seconds at {interval} second"
            in served.log.read_text()
        ), log_tail(served)
        closed = open_dashboard(browser_context, served)
        (closed_id,) = set(kernels(served)) - {kept_id}

        # both pages hold a websocket to their kernel
        def connected() -> bool:
            now = kernels(served)
            return all(now[k]["connections"] >= 1 for k in (kept_id, closed_id))

        wait_for(connected, timeout=30, what="both pages to connect to their kernels")

        # closing a page (without its unload handler: Voila's shutdown call fails anyway,
        # voila #1458) leaves its kernel to the culler
        closed.close()

        def only_the_open_pages_left() -> bool:
            now = kernels(served)
            assert kept_id in now, f"the open page's kernel was culled\n{log_tail(served)}"
            return set(now) == {kept_id}

        wait_for(
            only_the_open_pages_left,
            timeout=30,
            what=f"the closed page's kernel {closed_id} to be culled",
        )
        gone = time.monotonic()
        pattern = rf"Culling '\w+' kernel '\w+' \({closed_id}\) with 0 connections"
        assert re.search(pattern, served.log.read_text()), log_tail(served)

        # the open page's kernel outlives the idle timeout (and a few culls) after that
        def outlived() -> bool:
            now = kernels(served)
            assert kept_id in now, f"the open page's kernel was culled\n{log_tail(served)}"
            assert now[kept_id]["connections"] >= 1
            return time.monotonic() - gone > idle + 2 * interval

        wait_for(outlived, timeout=idle + 10, what="the idle timeout to pass")
        assert set(kernels(served)) == {kept_id}
        assert kept.locator(".taskops-dashboard").first.is_visible()
        assert f"({kept_id})" not in served.log.read_text()
    finally:
        served.stop()
