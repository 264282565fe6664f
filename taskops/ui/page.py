"""``dashboard_page()``: the dashboard as the Voila page shows it, built behind a placeholder
so that the page does not wait for it.

Voila sends the page's scripts only once the notebook's cells have run, and the browser
then spends a second or more loading them. A cell that builds the dashboard itself makes
the browser wait for the imports, the site's files and the first queries (~1 s on two
slow cores). ``dashboard_page()`` returns at once with a placeholder. A thread of the
kernel does the imports and opens the site while the browser loads its scripts; then the
dashboard is built on the kernel's event loop (widgets are not thread-safe) and replaces
the placeholder. By the time the page asks the kernel for its widgets, it is usually
there.

This module imports only ipywidgets: everything else is imported by the thread.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from taskops.service import TaskOps
    from taskops.ui.shell import Dashboard

__all__ = ["dashboard_page"]

log = logging.getLogger("taskops.ui")

LOADING = (
    '<div class="taskops-loading" style="padding:8px; color:#666">'
    "Loading the dashboard&hellip;</div>"
)


def dashboard_page(site: Any = None, **options: Any) -> widgets.VBox:
    """A box that shows "Loading the dashboard…" and then the dashboard of ``site`` (a
    path; default ``$TASKOPS_SITE``; ``options`` go to ``taskops.open_site``), as
    ``taskops.ui.dashboard`` builds it.

    In a kernel (an asyncio loop runs) it returns before the site is opened. Outside one,
    the box already holds the dashboard when it is returned. If the site cannot be opened
    or the dashboard not built, the box shows why (classes ``taskops-page-error``) and the
    error is logged; nothing is raised."""
    page = widgets.VBox([widgets.HTML(LOADING)], layout=widgets.Layout(width="100%"))
    page.add_class("taskops-page")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        _fill(page, _prepare(site, options))
        return page

    def prepare() -> None:
        prepared = _prepare(site, options)
        loop.call_soon_threadsafe(_fill, page, prepared)

    threading.Thread(target=prepare, name="taskops-dashboard-page", daemon=True).start()
    return page


def _prepare(site: Any, options: dict[str, Any]) -> TaskOps | BaseException:
    """What can be done away from the widgets: the imports, opening the site and reading
    its files. Returns the site's ``TaskOps``, or the error that stopped it."""
    try:
        import taskops.ui.shell
        import taskops.ui.task_list  # noqa: F401  (the first screen's module)
        from taskops.service import open_site

        ops = open_site(site, **options)
    except Exception as exc:
        return exc
    try:
        ops.site_errors()  # reads the site's files into the snapshot the screens use
    except Exception as exc:
        ops.close()
        return exc
    return ops


def _fill(page: widgets.VBox, prepared: TaskOps | BaseException) -> None:
    """Put the dashboard (or why there is none) in the page."""
    try:
        if isinstance(prepared, BaseException):
            raise prepared
        try:
            page.children = [_dashboard(prepared)]
        except BaseException:
            prepared.close()
            raise
    except Exception as exc:
        log.exception("taskops: the dashboard could not open")
        error = widgets.HTML(
            '<div style="color:#b71c1c; border:1px solid #b71c1c; padding:4px 8px">'
            f"<b>The dashboard could not open:</b> {html.escape(str(exc))}</div>"
        )
        error.add_class("taskops-page-error")
        page.children = [error]


def _dashboard(ops: TaskOps) -> Dashboard:
    from taskops.ui.shell import Dashboard

    return Dashboard(ops)
